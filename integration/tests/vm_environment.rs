//! The VM the e2e suite runs in (`make e2e`, hack/vm/) has what the other
//! integration tests take for granted: IPVS loaded, dummy links, writable
//! network namespaces and the reference tools. A failure here points at the
//! harness, not at kube-ipvs.
//!
//! These tests need root and a kernel with IPVS: they run inside the VM only
//! (the workspace's default members leave this crate out of `cargo test`).

use std::{path::Path, process::Command};

/// Runs a tool and returns its stdout, panicking with its stderr on failure.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("spawning {program}: {e} (is this running in the VM? use `make e2e`)")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A named network namespace removed again when the test ends, even on panic.
struct Netns(String);

impl Netns {
    fn new(purpose: &str) -> Netns {
        let name = format!("kipvs-{purpose}-{}", std::process::id());
        run("ip", &["netns", "add", &name]);
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn ipvs_is_loaded_and_answers_over_generic_netlink() {
    assert!(
        Path::new("/proc/net/ip_vs").exists(),
        "/proc/net/ip_vs is missing: ip_vs is not loaded (hack/vm/guest-env.sh loads it)"
    );
    // ipvsadm resolves the "IPVS" genl family and dumps the (empty) table.
    let ns = Netns::new("ipvs");
    let listing = run("ip", &["netns", "exec", &ns.0, "ipvsadm", "-Ln"]);
    assert!(
        listing.contains("IP Virtual Server version"),
        "unexpected ipvsadm output: {listing}"
    );
}

#[test]
fn dummy_link_can_be_created_in_a_fresh_netns() {
    let ns = Netns::new("dummy");
    run("ip", &["-n", &ns.0, "link", "add", "x", "type", "dummy"]);
    let link = run("ip", &["-n", &ns.0, "-o", "link", "show", "x"]);
    assert!(link.contains("x:"), "link x not listed: {link}");
    assert!(
        link.contains("link/ether"),
        "x is not an ethernet-like dummy link: {link}"
    );
}

#[test]
fn ipset_and_nft_tools_run() {
    let ipset = run("ipset", &["--version"]);
    assert!(
        ipset.starts_with("ipset v"),
        "unexpected ipset --version: {ipset}"
    );
    let nft = run("nft", &["--version"]);
    assert!(
        nft.starts_with("nftables v"),
        "unexpected nft --version: {nft}"
    );
    // Both talk to the kernel too, in a namespace of their own.
    let ns = Netns::new("nfnl");
    run(
        "ip",
        &[
            "netns",
            "exec",
            &ns.0,
            "ipset",
            "create",
            "probe",
            "hash:ip,port",
        ],
    );
    let sets = run("ip", &["netns", "exec", &ns.0, "ipset", "list", "-n"]);
    assert_eq!(sets.trim(), "probe");
    run(
        "ip",
        &["netns", "exec", &ns.0, "nft", "add", "table", "ip", "probe"],
    );
    let tables = run("ip", &["netns", "exec", &ns.0, "nft", "list", "tables"]);
    assert_eq!(tables.trim(), "table ip probe");
}

#[test]
fn helper_tools_for_tests_are_on_path() {
    for tool in [
        "conntrack",
        "busybox",
        "curl",
        "socat",
        "strace",
        "tcpdump",
        "iptables-nft",
    ] {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
            .unwrap_or(false);
        assert!(found, "{tool} not found on PATH");
    }
}
