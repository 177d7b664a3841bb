//! The privileges kube-ipvs needs, found by running the real binary with
//! fewer of them, the way a container gets them: root, but with a bounding
//! set of only CAP_NET_ADMIN (`setpriv`), and /proc/sys read-only (as every
//! non-privileged container's is).
//!
//! - CAP_NET_ADMIN alone programs everything, and the kernel loads the
//!   modules (ip_vs, ip_set types, dummy, nf_tables expressions) itself on
//!   the first request: no CAP_SYS_MODULE.
//! - A read-only /proc/sys stops every sync at the first sysctl until
//!   `--init-only`, run with full privileges, has set them; then CAP_NET_ADMIN
//!   is enough again (deploy/kube-ipvs.yaml's init container).
//! - Without CAP_NET_ADMIN the daemon keeps running and logs why each sync
//!   fails.

mod daemon_support;

use daemon_support::{web_service, web_slice, Node};
use kipvs_integration::{built_binary, daemon::Daemon, http, pod, run_checked};

/// The daemon behind this, as root: its capabilities are CAP_NET_ADMIN
/// and nothing else (permitted, effective and bounding sets).
const ONLY_NET_ADMIN: &[&str] = &[
    "setpriv",
    "--bounding-set=-all,+net_admin",
    "--inh-caps=-all",
    "--",
];

/// No capabilities at all, still uid 0.
const NO_CAPABILITIES: &[&str] = &["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"];

/// CAP_NET_ADMIN's bit in /proc/PID/status's capability masks.
const CAP_NET_ADMIN_MASK: &str = "0000000000001000";

/// Modules the daemon needs that the kernel can load on demand, unloaded
/// before the daemon starts (dependents first); hack/vm/guest-env.sh
/// preloads them all, and [`Unloaded`] loads them again.
const UNLOAD: &[&str] = &[
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_sh",
    "ip_vs_dh",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_mh",
    "ip_vs",
    "xt_set",
    "ip_set_hash_ip",
    "ip_set_hash_ipport",
    "ip_set_hash_ipportip",
    "ip_set_hash_ipportnet",
    "ip_set_hash_net",
    "ip_set_bitmap_port",
    "ip_set",
    "dummy",
];

/// Of [`UNLOAD`], those a sync of the web service needs, so the kernel
/// must have loaded them again.
const AUTOLOADED: &[&str] = &[
    "dummy",
    "ip_set",
    "ip_set_bitmap_port",
    "ip_set_hash_ip",
    "ip_set_hash_ipport",
    "ip_set_hash_ipportip",
    "ip_vs",
    "ip_vs_rr",
];

/// `/proc/modules`' names.
fn loaded_modules() -> Vec<String> {
    std::fs::read_to_string("/proc/modules")
        .expect("/proc/modules")
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The modules of [`UNLOAD`] taken out of the kernel; loaded again on drop
/// so later tests find the VM as guest-env.sh left it.
struct Unloaded;

impl Unloaded {
    fn unload() -> Unloaded {
        for module in UNLOAD {
            if loaded_modules().iter().any(|m| m == module) {
                run_checked(&["rmmod", module]);
            }
        }
        Unloaded
    }
}

impl Drop for Unloaded {
    fn drop(&mut self) {
        for module in UNLOAD {
            let _ = std::process::Command::new("modprobe").arg(module).status();
        }
    }
}

/// A capability mask line (`CapEff:`) of a process.
fn capabilities(pid: u32, mask: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(mask)?.strip_prefix(':'))
        .map(|value| value.trim().to_owned())
        .unwrap_or_else(|| panic!("no {mask} in /proc/{pid}/status"))
}

/// The web service's block in `ipvsadm -Ln`, both pods as real servers.
fn web_programmed(node: &Node) -> bool {
    node.ipvsadm()
        .block("TCP  10.96.0.10:80")
        .is_some_and(|block| {
            block.len() == 3
                && block[1].contains("10.244.1.2:8080")
                && block[2].contains("10.244.1.3:8080")
        })
}

#[test]
fn cap_net_admin_alone_programs_services_and_the_kernel_loads_the_modules() {
    let unloaded = Unloaded::unload();
    let loaded = loaded_modules();
    for module in UNLOAD {
        assert!(
            !loaded.iter().any(|m| m == module),
            "{module} still loaded: a namespace left over by an earlier test may hold it"
        );
    }

    let node = Node::new();
    let _pod1 = pod(&node.netns, 1, "10.244.1.2");
    let _pod2 = pod(&node.netns, 2, "10.244.1.3");
    node.create_node_object();
    node.create_service(&web_service(), &web_slice(&["10.244.1.2", "10.244.1.3"]));
    let daemon = node.start_daemon_under(ONLY_NET_ADMIN);
    node.wait_for("web in ipvsadm", || web_programmed(&node));

    for mask in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(
            capabilities(daemon.pid(), mask),
            CAP_NET_ADMIN_MASK,
            "{mask}"
        );
    }
    let loaded = loaded_modules();
    let missing: Vec<&&str> = AUTOLOADED
        .iter()
        .filter(|module| !loaded.iter().any(|m| m == *module))
        .collect();
    assert!(missing.is_empty(), "not loaded again: {missing:?}");
    for (name, value) in kipvs_runtime::SYSCTLS {
        let seen = node.netns.exec(&["sysctl", "-n", name]);
        assert_eq!(seen.trim(), *value, "sysctl {name}");
    }

    let mut answers = http(&node.netns, "http://10.96.0.10/", 4);
    answers.sort();
    answers.dedup();
    assert_eq!(answers, ["pod1", "pod2"], "node -> 10.96.0.10");
    let healthz = node.netns.exec(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://127.0.0.1:10256/healthz",
    ]);
    assert_eq!(healthz, "200");
    drop(daemon);
    drop(unloaded);
}

/// Mounts /proc/sys read-only in a mount namespace of its own, then runs
/// the rest of the command line with only CAP_NET_ADMIN: a non-privileged
/// container's view.
fn container_like() -> Vec<&'static str> {
    let mut wrapper = vec![
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec \"$@\"",
        "sh",
    ];
    wrapper.extend_from_slice(ONLY_NET_ADMIN);
    wrapper
}

#[test]
fn in_a_container_init_only_sets_the_sysctls_a_read_only_proc_sys_forbids() {
    let node = Node::new();
    node.create_node_object();
    node.create_service(&web_service(), &web_slice(&["10.244.1.2", "10.244.1.3"]));
    // A fresh namespace starts with forwarding off.
    assert_eq!(
        node.netns
            .exec(&["sysctl", "-n", "net.ipv4.ip_forward"])
            .trim(),
        "0"
    );

    let mut daemon = node.start_daemon_under(&container_like());
    node.wait_for("the read-only sysctl in the log", || {
        daemon
            .log()
            .contains("sync failed; retrying with a full resync error=sysctl net.ipv4.ip_forward=1: Read-only file system")
    });
    assert!(daemon.running(), "{}", daemon.log());
    assert!(!web_programmed(&node), "{}", node.logs());
    daemon.terminate();

    let binary = built_binary("kube-ipvs");
    run_checked(&[
        "ip",
        "netns",
        "exec",
        node.name(),
        binary.to_str().unwrap(),
        "--init-only",
    ]);
    for (name, value) in kipvs_runtime::SYSCTLS {
        let seen = node.netns.exec(&["sysctl", "-n", name]);
        assert_eq!(seen.trim(), *value, "sysctl {name} after --init-only");
    }
    // --init-only programs nothing.
    assert!(!web_programmed(&node));

    let mut daemon = node.start_daemon_under(&container_like());
    node.wait_for("web in ipvsadm", || web_programmed(&node));
    let syncs = daemon.wait_for_syncs(0, "a sync line");
    assert!(syncs.iter().all(|s| s.failed == 0), "{}", daemon.log());
    assert!(!daemon.log().contains("sync failed"), "{}", daemon.log());
}

#[test]
fn without_cap_net_admin_the_daemon_says_why_and_keeps_running() {
    let node = Node::new();
    node.create_node_object();
    node.create_service(&web_service(), &web_slice(&["10.244.1.2", "10.244.1.3"]));
    let mut daemon: Daemon = node.start_daemon_under(NO_CAPABILITIES);
    node.wait_for("a failed sync in the log", || {
        daemon.log().contains("WARN sync failed")
    });
    // Read once the wrappers have exec'd the daemon.
    assert_eq!(capabilities(daemon.pid(), "CapEff"), "0000000000000000");
    let log = daemon.log();
    let failure = log
        .lines()
        .find(|line| line.contains("WARN sync failed"))
        .unwrap_or_default();
    // The sysctl comes first; it needs CAP_NET_ADMIN too.
    assert!(
        failure
            .ends_with("error=sysctl net.ipv4.ip_forward=1: Operation not permitted (os error 1)"),
        "{failure}"
    );
    // Retried, not fatal.
    node.wait_for("a second failed sync", || {
        daemon.log().matches("WARN sync failed").count() >= 2
    });
    assert!(daemon.running(), "{}", daemon.log());
    assert!(!log.contains("panicked"), "{log}");
    let table = node.ipvsadm();
    assert!(table.blocks.is_empty(), "{table:?}");

    // With the sysctls already set, the first refusal is netlink's.
    drop(daemon);
    for (name, value) in kipvs_runtime::SYSCTLS {
        node.netns
            .exec(&["sysctl", "-qw", &format!("{name}={value}")]);
    }
    let mut daemon = node.start_daemon_under(NO_CAPABILITIES);
    node.wait_for("a failed sync in the log", || {
        daemon.log().contains("WARN sync failed")
    });
    let log = daemon.log();
    let failure = log
        .lines()
        .find(|line| line.contains("WARN sync failed"))
        .unwrap_or_default();
    assert!(failure.contains("Operation not permitted"), "{failure}");
    assert!(daemon.running(), "{log}");
    assert!(node.ipvsadm().blocks.is_empty());
}
