//! Support for the kernel tests that run inside the VM (`make e2e`).
//!
//! Each test gets its own named network namespace, so it has its own IPVS
//! table, ipsets, nf_tables and links, and the operator tools (`ipvsadm`,
//! `ipset`, `nft`, `ip`) can be pointed at it with `ip netns exec`.

use std::{
    fs::File,
    future::Future,
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use nix::sched::{setns, CloneFlags};

pub mod cluster;
pub mod daemon;
pub mod operator;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace (`ip netns add`), deleted on drop.
pub struct TestNetns {
    name: String,
}

impl TestNetns {
    pub fn new(label: &str) -> TestNetns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("kipvs-{label}-{}-{n}", std::process::id());
        run_checked(&["ip", "netns", "add", &name]);
        let netns = TestNetns { name };
        netns.exec(&["ip", "link", "set", "lo", "up"]);
        netns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `body` on a fresh thread that has entered this namespace, on a
    /// current-thread runtime, so every socket our code opens lives in it.
    pub fn run<F, Fut, T>(&self, body: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(body())
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Runs an operator tool inside the namespace; panics unless it succeeds.
    /// Returns its standard output.
    pub fn exec(&self, argv: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        run_checked(&full)
    }

    /// Like [`exec`](Self::exec) but returns (success, stdout + stderr).
    pub fn try_exec(&self, argv: &[&str]) -> (bool, String) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        let out = Command::new(full[0])
            .args(&full[1..])
            .output()
            .expect("spawn ip netns exec");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }
}

impl TestNetns {
    /// Kills every process running in the namespace (servers, daemons).
    pub fn kill_processes(&self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        self.kill_processes();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A pod: its own namespace behind a veth into the node namespace, wired
/// the way a simple routed CNI plugin wires it (the node side of every veth
/// holds the gateway 10.244.1.254/32, a /32 route per pod, proxy ARP), with
/// a web server answering `pod<n>` on :8080.
pub struct Pod {
    pub netns: TestNetns,
    pub addr: &'static str,
}

pub fn pod(node: &TestNetns, n: u8, addr: &'static str) -> Pod {
    let netns = TestNetns::new(&format!("pod{n}"));
    let veth = format!("veth{n}");
    run_checked(&[
        "ip",
        "-n",
        node.name(),
        "link",
        "add",
        &veth,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        netns.name(),
    ]);
    node.exec(&["ip", "link", "set", &veth, "up"]);
    node.exec(&["ip", "addr", "add", "10.244.1.254/32", "dev", &veth]);
    node.exec(&["ip", "route", "add", &format!("{addr}/32"), "dev", &veth]);
    node.exec(&[
        "sysctl",
        "-qw",
        &format!("net.ipv4.conf.{veth}.proxy_arp=1"),
    ]);
    netns.exec(&["ip", "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
    netns.exec(&["ip", "link", "set", "eth0", "up"]);
    netns.exec(&["ip", "route", "add", "10.244.1.254", "dev", "eth0"]);
    netns.exec(&["ip", "route", "add", "default", "via", "10.244.1.254"]);
    let root = format!("/tmp/{}-www", netns.name());
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(format!("{root}/index.html"), format!("pod{n}\n")).unwrap();
    // busybox httpd forks into the background; the namespace's processes
    // are killed when it is dropped.
    netns.exec(&["busybox", "httpd", "-p", "8080", "-h", &root]);
    Pod { netns, addr }
}

/// A binary of this workspace (`kube-ipvs`, `fake-apiserver`), built next
/// to the test binaries (`make e2e` builds them): target/<profile>/<name>.
pub fn built_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built (cargo build -p {name})",
        path.display()
    );
    path
}

/// The pause between two polls of a bounded wait.
pub const PAUSE: Duration = Duration::from_millis(500);

/// Appends a line to a file shared with a shell loop (say the log of a
/// client that runs while the daemon restarts).
pub fn append_line(path: impl AsRef<std::path::Path>, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

/// Polls `check` every [`PAUSE`], up to `tries` times; whether it held.
pub fn eventually(tries: usize, mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if check() {
            return true;
        }
        std::thread::sleep(PAUSE);
    }
    false
}

/// Answers of `count` HTTP requests to `url` from `netns` (an empty string
/// for a failed one).
pub fn http(netns: &TestNetns, url: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let (ok, body) = netns.try_exec(&["curl", "-s", "-m", "5", url]);
            if ok {
                body.trim().to_owned()
            } else {
                String::new()
            }
        })
        .collect()
}

/// Runs a command; panics with its output unless it succeeds.
pub fn run_checked(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The static masquerade rules of kube-proxy's IPVS mode (the chains
/// kube-proxy installs through iptables, which iptables-nft turns into
/// nf_tables rules), as one nf_tables table built with our own messages:
///
/// - traffic to a cluster IP:port (`KUBE-CLUSTER-IP`, matched through the xt
///   `set` match) from outside the pod range is marked for masquerade;
/// - marked traffic, and hairpin traffic (`KUBE-LOOP-BACK`: a pod reaching
///   itself through a service), is masqueraded on the way out.
pub mod rules {
    use std::net::IpAddr;

    use kipvs_netlink::{Ipset, NfTables};
    use kipvs_packet_ipset::{CreateOptions, SetFamily, SetType};
    use kipvs_packet_nftables::{
        exprs::{jump, mark_and_eq, mark_set_or, masquerade, saddr_in_cidr, xt_set_match},
        new_chain, new_rule, new_table,
        xt_set::SetDir,
        Chain, ChainType, NfHook, NfProto, NftMessage, Rule, Table,
    };

    pub const TABLE: &str = "kube-ipvs";
    /// kube-proxy's masquerade mark bit.
    pub const MASQ_MARK: u32 = 0x4000;

    /// kube-proxy's two IPv4 sets the rules match on.
    pub const CLUSTER_IP_SET: &str = "KUBE-CLUSTER-IP";
    pub const LOOP_BACK_SET: &str = "KUBE-LOOP-BACK";

    /// Creates [`CLUSTER_IP_SET`] (hash:ip,port) and [`LOOP_BACK_SET`]
    /// (hash:ip,port,ip) with `options`, then installs
    /// [`masquerade_ruleset`] matching them by their kernel indexes, which
    /// it returns (cluster IP set, loop-back set). Fill the sets before
    /// binding any service address.
    pub async fn install_masquerade(
        ipset: &mut Ipset,
        nft: &mut NfTables,
        options: &CreateOptions,
        cluster_cidr: (IpAddr, u8),
    ) -> (u16, u16) {
        ipset
            .create(
                CLUSTER_IP_SET,
                &SetType::HashIpPort,
                SetFamily::Inet,
                options,
            )
            .await
            .unwrap();
        ipset
            .create(
                LOOP_BACK_SET,
                &SetType::HashIpPortIp,
                SetFamily::Inet,
                options,
            )
            .await
            .unwrap();
        let cluster = ipset.index(CLUSTER_IP_SET).await.unwrap();
        let loop_back = ipset.index(LOOP_BACK_SET).await.unwrap();
        nft.apply(masquerade_ruleset(cluster, loop_back, cluster_cidr))
            .await
            .unwrap();
        (cluster, loop_back)
    }

    pub fn masquerade_ruleset(
        cluster_ip_set: u16,
        loop_back_set: u16,
        cluster_cidr: (IpAddr, u8),
    ) -> Vec<NftMessage> {
        let family = NfProto::Ipv4;
        let base = |name: &str, hook, priority| {
            new_chain(&Chain::base(
                family,
                TABLE,
                name,
                ChainType::Nat,
                hook,
                priority,
            ))
        };
        let rule = |chain: &str, exprs| new_rule(&Rule::new(family, TABLE, chain, exprs));
        let mut services = vec![xt_set_match(
            cluster_ip_set,
            &[SetDir::Dst, SetDir::Dst],
            false,
        )];
        services.extend(saddr_in_cidr(cluster_cidr.0, cluster_cidr.1, true));
        services.push(jump("mark-for-masquerade"));
        let mut hairpin = vec![xt_set_match(
            loop_back_set,
            &[SetDir::Dst, SetDir::Dst, SetDir::Src],
            false,
        )];
        hairpin.push(masquerade(false));
        let mut marked = mark_and_eq(MASQ_MARK, MASQ_MARK);
        marked.push(masquerade(true));
        vec![
            new_table(&Table::new(family, TABLE)),
            new_chain(&Chain::regular(family, TABLE, "services")),
            new_chain(&Chain::regular(family, TABLE, "mark-for-masquerade")),
            base("nat-prerouting", NfHook::PreRouting, -100),
            base("nat-output", NfHook::LocalOut, -100),
            base("nat-postrouting", NfHook::PostRouting, 100),
            rule("nat-prerouting", vec![jump("services")]),
            rule("nat-output", vec![jump("services")]),
            rule("services", services),
            rule("mark-for-masquerade", mark_set_or(MASQ_MARK)),
            rule("nat-postrouting", hairpin),
            rule("nat-postrouting", marked),
        ]
    }
}
