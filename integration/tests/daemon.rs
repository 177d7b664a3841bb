//! The real `kube-ipvs` binary on a node, fed through the Kubernetes path:
//! the fake API server's binary serves Services and EndpointSlices written
//! with curl, the daemon's unmodified kube-rs client lists and watches them,
//! and the results are checked the way an operator sees them (`ipvsadm -Ln`,
//! `ip addr`, `ipset save`, `nft list table`) and with real TCP and UDP
//! traffic between network namespaces.
//!
//! Each test builds its own node namespace (API server, daemon) and pods.

mod daemon_support;

use std::collections::BTreeSet;

use daemon_support::{
    dns_service, dns_slice, ipvsadm_header, service, services_path, slice, slices_path, udp_echo,
    web_service, web_slice, Node,
};
use kipvs_integration::{
    daemon::Daemon,
    http,
    operator::{lines, without_counters, IpvsTable},
    pod, Pod,
};

const WEB: &str = "http://10.96.0.10/";
const DNS: &str = "10.96.0.53:53";

fn web_block(endpoints: &[&str]) -> Vec<String> {
    let mut block = vec!["TCP  10.96.0.10:80 rr".to_owned()];
    for ep in endpoints {
        block.push(format!(
            "  -> {:<29}Masq    1      0          0",
            format!("{ep}:8080")
        ));
    }
    block[1..].sort();
    block
}

fn dns_blocks() -> Vec<Vec<String>> {
    vec![
        lines(&[
            "TCP  10.96.0.53:53 rr",
            "  -> 10.244.1.3:5353              Masq    1      0          0",
        ]),
        lines(&[
            "UDP  10.96.0.53:53 rr",
            "  -> 10.244.1.3:5353              Masq    1      0          0",
        ]),
    ]
}

/// A node with pod1 (10.244.1.2) and pod2 (10.244.1.3, also a UDP server
/// answering `pod2` on :5353), web and kube-dns created through the API,
/// the daemon running and both services programmed.
struct Cluster {
    // Dropped first: the daemon, the UDP server, the pods, then the node.
    _daemon: Daemon,
    _udp_server: daemon_support::Server,
    pod1: Pod,
    pod2: Pod,
    node: Node,
}

impl Cluster {
    fn start() -> Cluster {
        let node = Node::new();
        let pod1 = pod(&node.netns, 1, "10.244.1.2");
        let pod2 = pod(&node.netns, 2, "10.244.1.3");
        let udp_server = udp_echo(&pod2.netns, "pod2");
        node.create_node_object();
        node.create_service(&web_service(), &web_slice(&["10.244.1.2", "10.244.1.3"]));
        node.create_service(&dns_service(), &dns_slice());
        let daemon = node.start_daemon();
        node.wait_for("web and kube-dns in ipvsadm", || {
            let table = node.ipvsadm();
            table.block("TCP  10.96.0.10:80") == Some(&web_block(&["10.244.1.2", "10.244.1.3"]))
                && table
                    .block("UDP  10.96.0.53:53")
                    .is_some_and(|b| b.len() == 2)
                && table
                    .block("TCP  10.96.0.53:53")
                    .is_some_and(|b| b.len() == 2)
        });
        node.wait_for("both service addresses on kube-ipvs0", || {
            node.ipvs0_addresses().len() == 2
        });
        Cluster {
            _daemon: daemon,
            _udp_server: udp_server,
            pod1,
            pod2,
            node,
        }
    }
}

#[test]
fn services_and_slices_from_the_api_become_kernel_state_as_operators_see_it() {
    let cluster = Cluster::start();
    let node = &cluster.node;

    let table = node.ipvsadm();
    let mut want = vec![web_block(&["10.244.1.2", "10.244.1.3"])];
    want.extend(dns_blocks());
    want.sort();
    assert_eq!(
        table,
        IpvsTable {
            header: ipvsadm_header(),
            blocks: want
        }
    );

    assert_eq!(
        node.ipvs0_addresses(),
        vec![
            "kube-ipvs0 inet 10.96.0.10/32 scope global kube-ipvs0\\ valid_lft forever preferred_lft forever",
            "kube-ipvs0 inet 10.96.0.53/32 scope global kube-ipvs0\\ valid_lft forever preferred_lft forever",
        ]
    );
    // The sysctls kube-proxy's IPVS mode needs, set in the node's namespace
    // through /proc/sys.
    for (name, value) in kipvs_runtime::SYSCTLS {
        let seen = node.netns.exec(&["sysctl", "-n", name]);
        assert_eq!(seen.trim(), *value, "sysctl {name}");
    }
    // Left down, as kube-proxy does: the addresses are local, never
    // answered to ARP on a wire.
    let link = node.netns.exec(&["ip", "-o", "link", "show", "kube-ipvs0"]);
    assert!(
        link.contains("<BROADCAST,NOARP>"),
        "kube-ipvs0 flags: {link}"
    );
    assert!(link.contains(" state DOWN "), "kube-ipvs0 state: {link}");
    assert!(
        link.contains(" link/ether "),
        "kube-ipvs0 is a dummy: {link}"
    );

    // The entries, then every one of the 36 sets (18 per family, the
    // IPv6 ones and those of features no service here uses empty).
    let mut want_sets = vec![
        "add KUBE-CLUSTER-IP 10.96.0.10,tcp:80 comment \"default/web:http\"",
        "add KUBE-CLUSTER-IP 10.96.0.53,tcp:53 comment \"kube-system/kube-dns:dns-tcp\"",
        "add KUBE-CLUSTER-IP 10.96.0.53,udp:53 comment \"kube-system/kube-dns:dns\"",
        "add KUBE-IPVS-IPS 10.96.0.10 comment \"default/web\"",
        "add KUBE-IPVS-IPS 10.96.0.53 comment \"kube-system/kube-dns\"",
        "add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2 comment \"default/web:http\"",
        "add KUBE-LOOP-BACK 10.244.1.3,tcp:5353,10.244.1.3 comment \"kube-system/kube-dns:dns-tcp\"",
        "add KUBE-LOOP-BACK 10.244.1.3,tcp:8080,10.244.1.3 comment \"default/web:http\"",
        "add KUBE-LOOP-BACK 10.244.1.3,udp:5353,10.244.1.3 comment \"kube-system/kube-dns:dns\"",
        "create KUBE-6-CLUSTER-IP hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-EXTERNAL-IP hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-EXTERNAL-IP-LOCAL hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-HEALTH-CHECK-NODE-PORT bitmap:port range 0-65535 comment",
        "create KUBE-6-IPVS-IPS hash:ip family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-LOAD-BALANCER hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-LOAD-BALANCER-FW hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-LOAD-BALANCER-LOCAL hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-LOAD-BALANCER-SOURCE-CID hash:ip,port,net family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-LOAD-BALANCER-SOURCE-IP hash:ip,port,ip family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-LOOP-BACK hash:ip,port,ip family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-NODE-PORT-LOCAL-SCTP-HAS hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-NODE-PORT-LOCAL-TCP bitmap:port range 0-65535 comment",
        "create KUBE-6-NODE-PORT-LOCAL-UDP bitmap:port range 0-65535 comment",
        "create KUBE-6-NODE-PORT-IPS hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-NODE-PORT-SCTP-HASH hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-6-NODE-PORT-TCP bitmap:port range 0-65535 comment",
        "create KUBE-6-NODE-PORT-UDP bitmap:port range 0-65535 comment",
        "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-EXTERNAL-IP hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-EXTERNAL-IP-LOCAL hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-HEALTH-CHECK-NODE-PORT bitmap:port range 0-65535 comment",
        "create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-LOAD-BALANCER hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-LOAD-BALANCER-FW hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-LOAD-BALANCER-LOCAL hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-LOAD-BALANCER-SOURCE-IP hash:ip,port,ip family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-NODE-PORT-LOCAL-SCTP-HASH hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-NODE-PORT-LOCAL-TCP bitmap:port range 0-65535 comment",
        "create KUBE-NODE-PORT-LOCAL-UDP bitmap:port range 0-65535 comment",
        "create KUBE-NODE-PORT-IPS hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-NODE-PORT-SCTP-HASH hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12",
        "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535 comment",
        "create KUBE-NODE-PORT-UDP bitmap:port range 0-65535 comment",
    ];
    want_sets.sort();
    assert_eq!(node.ipset_save(), want_sets);

    let nft = node
        .netns
        .exec(&["nft", "list", "table", "ip", "kube-ipvs"]);
    assert_eq!(nft, NFT_TABLE, "nft list table ip kube-ipvs:\n{nft}");
}

/// `nft list table ip kube-ipvs` for `--cluster-cidr 10.244.0.0/16`.
const NFT_TABLE: &str = concat!(
    "table ip kube-ipvs {\n",
    "\tchain services {\n",
    "\t\tip saddr 127.0.0.0/8 return\n",
    "\t\txt match set goto load-balancer\n",
    "\t\txt match set ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n",
    "\t\txt match set jump mark-for-masquerade\n",
    "\t\txt match set return\n",
    "\t\txt match set return\n",
    "\t\tfib daddr type local goto node-port\n",
    "\t}\n",
    "\n",
    "\tchain mark-for-masquerade {\n",
    "\t\tmeta mark set meta mark | 0x00004000\n",
    "\t}\n",
    "\n",
    "\tchain load-balancer {\n",
    "\t\txt match set return\n",
    "\t\tjump mark-for-masquerade\n",
    "\t}\n",
    "\n",
    "\tchain node-port {\n",
    "\t\tmeta l4proto tcp xt match set return\n",
    "\t\tmeta l4proto tcp xt match set jump mark-for-masquerade\n",
    "\t\tmeta l4proto udp xt match set return\n",
    "\t\tmeta l4proto udp xt match set jump mark-for-masquerade\n",
    "\t\tmeta l4proto sctp xt match set return\n",
    "\t\tmeta l4proto sctp xt match set jump mark-for-masquerade\n",
    "\t}\n",
    "\n",
    "\tchain source-ranges {\n",
    "\t\txt match set return\n",
    "\t\txt match set return\n",
    "\t\tdrop\n",
    "\t}\n",
    "\n",
    "\tchain ipvs-filter {\n",
    "\t\txt match set return\n",
    "\t\txt match set return\n",
    "\t\txt match set return\n",
    "\t\txt match set return\n",
    "\t\tmeta l4proto tcp xt match set return\n",
    "\t\treject\n",
    "\t}\n",
    "\n",
    "\tchain nat-prerouting {\n",
    "\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
    "\t\tjump services\n",
    "\t}\n",
    "\n",
    "\tchain nat-output {\n",
    "\t\ttype nat hook output priority -100; policy accept;\n",
    "\t\tjump services\n",
    "\t}\n",
    "\n",
    "\tchain nat-postrouting {\n",
    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    "\t\txt match set masquerade\n",
    "\t\tmeta mark & 0x00004000 == 0x00004000 masquerade fully-random\n",
    "\t}\n",
    "\n",
    "\tchain filter-input {\n",
    "\t\ttype filter hook input priority filter; policy accept;\n",
    "\t\txt match set jump source-ranges\n",
    "\t\tct state new xt match set jump ipvs-filter\n",
    "\t}\n",
    "\n",
    "\tchain filter-forward {\n",
    "\t\ttype filter hook forward priority filter; policy accept;\n",
    "\t\tct state established,related accept\n",
    "\t\tmeta mark & 0x00004000 == 0x00004000 accept\n",
    "\t}\n",
    "\n",
    "\tchain filter-output {\n",
    "\t\ttype filter hook output priority -110; policy accept;\n",
    "\t\txt match set jump source-ranges\n",
    "\t}\n",
    "}\n",
);

#[test]
fn tcp_and_udp_traffic_from_the_node_from_a_pod_and_hairpin() {
    let cluster = Cluster::start();
    let node = &cluster.node;
    // A service whose only endpoint is pod1: pod1 reaching it hairpins.
    node.create_service(
        &service(
            "default",
            "self",
            "10.96.0.11",
            &[("http", "TCP", 80, 8080)],
        ),
        &slice("default", "self", &[("http", "TCP", 8080)], &["10.244.1.2"]),
    );
    node.wait_for("the self service in ipvsadm", || {
        node.ipvsadm()
            .block("TCP  10.96.0.11:80")
            .is_some_and(|b| b.len() == 2)
            && node.ipvs0_addresses().len() == 3
    });

    let from_node = http(&node.netns, WEB, 4);
    let seen: BTreeSet<&str> = from_node.iter().map(String::as_str).collect();
    assert_eq!(
        seen,
        BTreeSet::from(["pod1", "pod2"]),
        "node -> 10.96.0.10 reaches both pods: {from_node:?}"
    );

    let from_pod2 = http(&cluster.pod2.netns, WEB, 4);
    let seen: BTreeSet<&str> = from_pod2.iter().map(String::as_str).collect();
    assert_eq!(
        seen,
        BTreeSet::from(["pod1", "pod2"]),
        "pod2 -> 10.96.0.10 reaches pod1 and (hairpin) pod2: {from_pod2:?}"
    );

    let hairpin = http(&cluster.pod1.netns, "http://10.96.0.11/", 3);
    assert_eq!(
        hairpin,
        vec!["pod1"; 3],
        "hairpin pod1 -> 10.96.0.11 -> pod1"
    );

    let udp_from_node = Node::udp(&node.netns, DNS, 3);
    assert_eq!(udp_from_node, vec!["pod2"; 3], "UDP node -> 10.96.0.53:53");
    let udp_from_pod1 = Node::udp(&cluster.pod1.netns, DNS, 3);
    assert_eq!(udp_from_pod1, vec!["pod2"; 3], "UDP pod1 -> 10.96.0.53:53");

    // IPVS carried the datagrams: 6 connections on the UDP service. The
    // kernel folds its per-CPU counters into what it reports every 2 s
    // (the rate estimator), so poll.
    node.wait_for("6 UDP connections in ipvsadm --stats", || {
        let stats = node.netns.exec(&["ipvsadm", "-Ln", "--stats", "-u", DNS]);
        stats
            .lines()
            .find(|l| l.starts_with("UDP"))
            .and_then(|l| l.split_whitespace().nth(2))
            .is_some_and(|conns| conns == "6")
    });
}

#[test]
fn endpoint_added_and_removed() {
    let cluster = Cluster::start();
    let node = &cluster.node;
    let _pod3 = pod(&node.netns, 3, "10.244.1.4");
    let slice_path = format!("{}/web-slice", slices_path("default"));

    node.replace(
        &slice_path,
        &web_slice(&["10.244.1.2", "10.244.1.3", "10.244.1.4"]),
    );
    node.wait_for("the third endpoint in ipvsadm", || {
        node.ipvsadm().block("TCP  10.96.0.10:80")
            == Some(&web_block(&["10.244.1.2", "10.244.1.3", "10.244.1.4"]))
    });
    assert!(node.ipset_has(
        "add KUBE-LOOP-BACK 10.244.1.4,tcp:8080,10.244.1.4 comment \"default/web:http\""
    ));
    let answers = http(&node.netns, WEB, 6);
    let seen: BTreeSet<&str> = answers.iter().map(String::as_str).collect();
    assert_eq!(
        seen,
        BTreeSet::from(["pod1", "pod2", "pod3"]),
        "rr reaches all three: {answers:?}"
    );

    node.replace(&slice_path, &web_slice(&["10.244.1.3", "10.244.1.4"]));
    // The requests above left connections in TIME_WAIT (InActConn) on
    // pod1: it drains at weight 0 until they end (graceful termination,
    // tests/graceful.rs) instead of going at once. Counters cut.
    let drained: Vec<String> = web_block(&["10.244.1.2", "10.244.1.3", "10.244.1.4"])
        .iter()
        .map(|l| without_counters(l))
        .map(|l| l.replace("10.244.1.2:8080 Masq 1", "10.244.1.2:8080 Masq 0"))
        .collect();
    node.wait_for("pod1 drained at weight 0 in ipvsadm", || {
        node.ipvsadm().routes().contains(&drained)
    });
    let loop_back: Vec<String> = node
        .ipset_save()
        .into_iter()
        .filter(|l| l.starts_with("add KUBE-LOOP-BACK "))
        .collect();
    assert_eq!(
        loop_back,
        vec![
            "add KUBE-LOOP-BACK 10.244.1.3,tcp:5353,10.244.1.3 comment \"kube-system/kube-dns:dns-tcp\"",
            "add KUBE-LOOP-BACK 10.244.1.3,tcp:8080,10.244.1.3 comment \"default/web:http\"",
            "add KUBE-LOOP-BACK 10.244.1.3,udp:5353,10.244.1.3 comment \"kube-system/kube-dns:dns\"",
            "add KUBE-LOOP-BACK 10.244.1.4,tcp:8080,10.244.1.4 comment \"default/web:http\"",
        ]
    );
    let answers = http(&node.netns, WEB, 6);
    let seen: BTreeSet<&str> = answers.iter().map(String::as_str).collect();
    assert_eq!(
        seen,
        BTreeSet::from(["pod2", "pod3"]),
        "only the remaining endpoints answer: {answers:?}"
    );
}

#[test]
fn deleted_service_leaves_nothing_behind() {
    let cluster = Cluster::start();
    let node = &cluster.node;
    let before_web = node.ipvsadm().block("TCP  10.96.0.10:80").cloned();

    node.delete(&format!("{}/kube-dns", services_path("kube-system")));
    node.delete(&format!("{}/kube-dns-slice", slices_path("kube-system")));
    node.wait_for("kube-dns gone from ipvsadm", || {
        !node
            .ipvsadm()
            .blocks
            .iter()
            .any(|b| b[0].contains("10.96.0.53"))
    });
    node.wait_for("10.96.0.53 unbound", || node.ipvs0_addresses().len() == 1);

    assert_eq!(
        node.ipvsadm(),
        IpvsTable {
            header: ipvsadm_header(),
            blocks: vec![web_block(&["10.244.1.2", "10.244.1.3"])],
        }
    );
    assert_eq!(
        before_web.as_ref(),
        node.ipvsadm().block("TCP  10.96.0.10:80")
    );
    assert_eq!(
        node.ipvs0_addresses(),
        vec!["kube-ipvs0 inet 10.96.0.10/32 scope global kube-ipvs0\\ valid_lft forever preferred_lft forever"]
    );
    let entries: Vec<String> = node
        .ipset_save()
        .into_iter()
        .filter(|l| l.starts_with("add "))
        .collect();
    assert_eq!(
        entries,
        vec![
            "add KUBE-CLUSTER-IP 10.96.0.10,tcp:80 comment \"default/web:http\"",
            "add KUBE-IPVS-IPS 10.96.0.10 comment \"default/web\"",
            "add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2 comment \"default/web:http\"",
            "add KUBE-LOOP-BACK 10.244.1.3,tcp:8080,10.244.1.3 comment \"default/web:http\"",
        ]
    );
    // Web still carries traffic.
    let answers = http(&node.netns, WEB, 2);
    let seen: BTreeSet<&str> = answers.iter().map(String::as_str).collect();
    assert_eq!(seen, BTreeSet::from(["pod1", "pod2"]), "{answers:?}");
    // And nothing answers on the deleted address any more.
    assert_eq!(Node::udp(&node.netns, DNS, 1), vec![String::new()]);
}

#[test]
fn a_foreign_virtual_service_survives_syncs_and_cleanup() {
    let node = Node::new();
    let _pod1 = pod(&node.netns, 1, "10.244.1.2");
    let _pod2 = pod(&node.netns, 2, "10.244.1.3");
    // Someone else's kernel state: an IPVS service, an ipset, a table.
    node.netns
        .exec(&["ipvsadm", "-A", "-t", "192.0.2.1:80", "-s", "rr"]);
    node.netns.exec(&[
        "ipvsadm",
        "-a",
        "-t",
        "192.0.2.1:80",
        "-r",
        "10.244.1.2:8080",
        "-m",
        "-w",
        "3",
    ]);
    node.netns.exec(&["ipset", "create", "OTHER", "hash:ip"]);
    node.netns.exec(&["ipset", "add", "OTHER", "192.0.2.7"]);
    // A foreign table with chains in the same family as ours: the kernel's
    // chain dump lists every table's chains, which must not count as ours.
    node.netns.exec(&["nft", "add", "table", "ip", "other"]);
    node.netns.exec(&[
        "nft",
        "add chain ip other input { type filter hook input priority 10; }",
    ]);
    node.netns.exec(&["nft", "add rule ip other input counter"]);
    let foreign = lines(&[
        "TCP  192.0.2.1:80 rr",
        "  -> 10.244.1.2:8080              Masq    3      0          0",
    ]);
    assert_eq!(node.ipvsadm().blocks, vec![foreign.clone()]);

    node.create_service(&web_service(), &web_slice(&["10.244.1.2", "10.244.1.3"]));
    node.create_service(&dns_service(), &dns_slice());
    let mut daemon = node.start_daemon();
    node.wait_for("web and kube-dns programmed", || {
        node.ipvsadm().blocks.len() == 4 && node.ipvs0_addresses().len() == 2
    });
    // Several full resyncs (every 2 s) after the first one.
    node.wait_for("four full resyncs", || daemon.full_syncs() >= 4);

    let mut want = vec![foreign.clone(), web_block(&["10.244.1.2", "10.244.1.3"])];
    want.extend(dns_blocks());
    want.sort();
    assert_eq!(node.ipvsadm().blocks, want);

    let status = daemon.terminate();
    assert!(
        status.success(),
        "kube-ipvs on SIGTERM: {status}\n{}",
        daemon.log()
    );
    // SIGTERM leaves the rules in place.
    assert_eq!(node.ipvsadm().blocks, want);

    let cleanup = kipvs_integration::built_binary("kube-ipvs");
    let (ok, out) = node
        .netns
        .try_exec(&[cleanup.to_str().unwrap(), "--cleanup"]);
    assert!(ok, "kube-ipvs --cleanup failed: {out}");

    assert_eq!(
        node.ipvsadm(),
        IpvsTable {
            header: ipvsadm_header(),
            blocks: vec![foreign],
        }
    );
    let (exists, link) = node.netns.try_exec(&["ip", "link", "show", "kube-ipvs0"]);
    assert!(!exists, "kube-ipvs0 still exists: {link}");
    let sets = node.netns.exec(&["ipset", "list", "-n"]);
    assert_eq!(sets, "OTHER\n", "only the foreign set is left");
    assert!(node.ipset_has("add OTHER 192.0.2.7"));
    let tables = node.netns.exec(&["nft", "list", "tables"]);
    assert_eq!(tables, "table ip other\n", "only the foreign table is left");
    let other = node
        .netns
        .exec(&["nft", "list", "chain", "ip", "other", "input"]);
    assert!(
        other.contains("counter packets"),
        "the foreign chain is intact: {other}"
    );

    // The resyncs after the first one found nothing to change (so they
    // wrote nothing: the foreign service above was never touched either).
    let resyncs: Vec<String> = daemon
        .syncs()
        .into_iter()
        .filter(|s| s.full)
        .skip(1)
        .map(|s| s.line)
        .collect();
    assert!(resyncs.len() >= 3, "{}", daemon.log());
    assert!(
        resyncs.iter().all(|l| l.contains(" steps=0 ")),
        "a resync with no change made changes:\n{}",
        resyncs.join("\n")
    );
}

#[test]
fn the_daemon_never_executes_a_process() {
    let node = Node::new();
    let trace = format!("/tmp/{}-strace.txt", node.name());
    let mut traced = node.start_daemon_under(&[
        "strace",
        "-f",
        "-e",
        "trace=execve,execveat,fork,vfork",
        "-o",
        &trace,
    ]);
    node.create_service(&web_service(), &web_slice(&["10.244.1.2", "10.244.1.3"]));
    node.create_service(&dns_service(), &dns_slice());
    node.wait_for("web and kube-dns programmed", || {
        node.ipvsadm().blocks.len() == 3 && node.ipvs0_addresses().len() == 2
    });
    node.create_service(
        &service(
            "default",
            "api",
            "10.96.0.20",
            &[("https", "TCP", 443, 8443)],
        ),
        &slice("default", "api", &[("https", "TCP", 8443)], &["10.244.1.5"]),
    );
    node.wait_for("a third service and two more full resyncs", || {
        node.ipvsadm().blocks.len() == 4 && traced.full_syncs() >= 3
    });

    // Stop the daemon itself (strace's tracee: the pid of the trace's first
    // line); strace then exits with it.
    let text = std::fs::read_to_string(&trace).unwrap();
    let daemon_pid: u32 = text
        .split_whitespace()
        .next()
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in the trace:\n{text}"));
    let status = traced.terminate_pid(daemon_pid);
    assert!(
        status.success(),
        "strace/kube-ipvs: {status}\n{}",
        traced.log()
    );

    let text = std::fs::read_to_string(&trace).unwrap();
    let calls: Vec<&str> = text
        .lines()
        .filter(|l| {
            ["execve(", "execveat(", "fork(", "vfork("]
                .iter()
                .any(|c| l.contains(c))
        })
        .collect();
    let binary = kipvs_integration::built_binary("kube-ipvs");
    assert_eq!(
        calls.len(),
        1,
        "exactly one exec, of kube-ipvs itself:\n{text}"
    );
    assert!(
        calls[0].contains(&format!("execve(\"{}\"", binary.display())) && calls[0].ends_with("= 0"),
        "the one exec is kube-ipvs: {}",
        calls[0]
    );
    assert!(text.contains("+++ exited with 0 +++"), "{text}");
}

#[test]
fn a_bad_object_is_skipped_with_a_log_line_and_others_still_apply() {
    let node = Node::new();
    node.create_service(&web_service(), &web_slice(&["10.244.1.2", "10.244.1.3"]));
    // The fake server stores whatever it is given, as a buggy client or an
    // older API could produce.
    node.create_service(
        &service(
            "default",
            "bad",
            "10.96.0.300",
            &[("http", "TCP", 80, 8080)],
        ),
        &slice("default", "bad", &[("http", "TCP", 8080)], &["10.244.1.2"]),
    );
    node.create_service(
        &service(
            "default",
            "bad-proto",
            "10.96.0.77",
            &[("ping", "ICMP", 7, 7)],
        ),
        &slice(
            "default",
            "bad-proto",
            &[("ping", "ICMP", 7)],
            &["10.244.1.2"],
        ),
    );
    let mut daemon = node.start_daemon();
    node.wait_for("web programmed", || {
        node.ipvsadm().blocks == vec![web_block(&["10.244.1.2", "10.244.1.3"])]
            && node.ipvs0_addresses().len() == 1
    });
    node.wait_for("a warning naming each bad object", || {
        let log = daemon.log();
        log.lines().any(|l| {
            l.contains("WARN")
                && l.contains("Service default/bad ")
                && l.contains("invalid cluster IP \"10.96.0.300\"")
        }) && log.lines().any(|l| {
            l.contains("WARN")
                && l.contains("Service default/bad-proto ")
                && l.contains("unsupported protocol \"ICMP\"")
        })
    });
    assert!(
        !node
            .ipvs0_addresses()
            .iter()
            .any(|a| a.contains("10.96.0.77")),
        "a service with no valid port binds no address"
    );

    // Still running, and still applying what comes next.
    assert!(daemon.running(), "{}", daemon.log());
    node.create_service(&dns_service(), &dns_slice());
    node.wait_for("kube-dns programmed after the bad objects", || {
        node.ipvsadm().blocks.len() == 3
    });
    let mut want = vec![web_block(&["10.244.1.2", "10.244.1.3"])];
    want.extend(dns_blocks());
    want.sort();
    assert_eq!(node.ipvsadm().blocks, want);
    assert!(daemon.running(), "{}", daemon.log());
}
