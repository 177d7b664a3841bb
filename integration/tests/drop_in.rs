//! kube-ipvs run the way kubeadm runs kube-proxy: only
//! `--config=<KubeProxyConfiguration> --hostname-override=<node>`, the
//! settings in kubeadm's config file. The result is checked as an operator
//! would after the swap: `ipvsadm -Ln` and `ipvsadm -L --timeout`, the
//! sysctls under /proc/sys of the node's namespace, and a virtual service
//! in `ipvs.excludeCIDRs` left alone by the sync and by `--cleanup`. The
//! daemon runs with only the capability deploy/kube-ipvs.yaml gives it
//! (CAP_NET_ADMIN, see capabilities.rs), serves kube-proxy's metrics on the
//! default metrics address, and `kube-ipvs list` names each virtual
//! service's Service port. (A bad config file's exit status is tested on
//! the host: crates/kube-ipvs/tests/config_errors.rs.)

mod daemon_support;

use daemon_support::{dns_service, dns_slice, web_service, web_slice, Node};
use kipvs_integration::{built_binary, daemon::NODE_NAME, operator::lines, pod};

/// kubeadm's `config.conf` (kube-proxy ConfigMap) with an IPVS user's
/// settings: strict ARP for MetalLB, IPVS and conntrack timeouts, a range
/// another program owns, and a 2 s resync so the test sees several.
fn config_file(kubeconfig: &str) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: {kubeconfig}
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: 1024
  min: 4096
  tcpBeLiberal: false
  tcpCloseWaitTimeout: 30m0s
  tcpEstablishedTimeout: 2h0m0s
  udpStreamTimeout: 150s
  udpTimeout: 33s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs:
  - 10.96.0.53/32
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: true
  syncPeriod: 2s
  tcpFinTimeout: 2m0s
  tcpTimeout: 15m0s
  udpTimeout: 5m0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: ""
mode: ipvs
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
"#
    )
}

/// As deploy/kube-ipvs.yaml runs it: root, with CAP_NET_ADMIN alone in
/// its permitted, effective and bounding sets.
const ONLY_NET_ADMIN: &[&str] = &[
    "setpriv",
    "--bounding-set=-all,+net_admin",
    "--inh-caps=-all",
    "--",
];

/// The value of the series named exactly `series` in a scrape.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn read_proc(node: &Node, path: &str) -> String {
    node.netns.exec(&["cat", path]).trim().to_owned()
}

#[test]
fn kubeadms_arguments_and_config_run_the_daemon_and_make_the_node_settings() {
    let node = Node::new();
    let _pod1 = pod(&node.netns, 1, "10.244.1.2");
    let _pod2 = pod(&node.netns, 2, "10.244.1.3");
    // Another program's virtual service on kube-dns's cluster IP, which is
    // in ipvs.excludeCIDRs: without the exclusion kube-ipvs would take it
    // over (a ClusterIP key the cluster wants).
    node.netns
        .exec(&["ipvsadm", "-A", "-t", "10.96.0.53:53", "-s", "wlc"]);
    node.netns.exec(&[
        "ipvsadm",
        "-a",
        "-t",
        "10.96.0.53:53",
        "-r",
        "10.244.1.2:8080",
        "-m",
        "-w",
        "3",
    ]);
    let foreign = lines(&[
        "TCP  10.96.0.53:53 wlc",
        "  -> 10.244.1.2:8080              Masq    3      0          0",
    ]);
    node.create_node_object();
    node.create_service(&web_service(), &web_slice(&["10.244.1.2", "10.244.1.3"]));
    node.create_service(&dns_service(), &dns_slice());

    let config = format!("/tmp/{}-kube-proxy-config.conf", node.name());
    std::fs::write(&config, config_file(node.kubeconfig().to_str().unwrap())).unwrap();
    let config_flag = format!("--config={config}");
    let hostname_flag = format!("--hostname-override={NODE_NAME}");
    let mut daemon = node.start_daemon_under_with(ONLY_NET_ADMIN, &[&config_flag, &hostname_flag]);

    let web = lines(&[
        "TCP  10.96.0.10:80 rr",
        "  -> 10.244.1.2:8080              Masq    1      0          0",
        "  -> 10.244.1.3:8080              Masq    1      0          0",
    ]);
    node.wait_for("web programmed", || {
        node.ipvsadm().block("TCP  10.96.0.10:80") == Some(&web)
    });
    node.wait_for("three full resyncs", || daemon.full_syncs() >= 3);
    // kube-dns is excluded: its TCP key stays the other program's and its
    // UDP one is not created.
    assert_eq!(node.ipvsadm().blocks, vec![web.clone(), foreign.clone()]);

    // Strict ARP.
    assert_eq!(
        read_proc(&node, "/proc/sys/net/ipv4/conf/all/arp_ignore"),
        "1"
    );
    assert_eq!(
        read_proc(&node, "/proc/sys/net/ipv4/conf/all/arp_announce"),
        "2"
    );
    // IPVS's timeouts, as `ipvsadm --set 900 120 300` would have made them.
    let timeouts = node.netns.exec(&["ipvsadm", "-L", "--timeout"]);
    assert_eq!(timeouts.trim(), "Timeout (tcp tcpfin udp): 900 120 300");
    // conntrack's per-namespace timeouts.
    let netfilter = "/proc/sys/net/netfilter";
    for (name, want) in [
        ("nf_conntrack_tcp_timeout_established", "7200"),
        ("nf_conntrack_tcp_timeout_close_wait", "1800"),
        ("nf_conntrack_udp_timeout", "33"),
        ("nf_conntrack_udp_timeout_stream", "150"),
    ] {
        assert_eq!(
            read_proc(&node, &format!("{netfilter}/{name}")),
            want,
            "{name}"
        );
    }
    // nf_conntrack_max is the whole machine's: outside the initial network
    // namespace the kernel refuses it, and the daemon says so by name and
    // goes on (it is running and syncing above).
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let cpus = kipvs_runtime::count_cpu_list(&cpus).unwrap();
    let want_max = (1024 * cpus).max(4096).to_string();
    let log = daemon.log();
    let max = read_proc(&node, &format!("{netfilter}/nf_conntrack_max"));
    assert!(
        max == want_max
            || log.contains("setting=net.netfilter.nf_conntrack_max reason=Permission denied"),
        "nf_conntrack_max={max}, want {want_max} or a warning naming it\n{log}"
    );

    // One start-up line with the version, the kernel's IPVS and the
    // settings read from the file.
    let start: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("kube-ipvs starting"))
        .collect();
    assert_eq!(start.len(), 1, "{log}");
    for part in [
        "version=0.1.0",
        "ipvs=1.2.1",
        "node=node-a",
        "cluster_cidr=10.244.0.0/16",
        "exclude_cidrs=10.96.0.53/32",
        "strict_arp=true",
        "ipvs_timeouts=900s/120s/300s",
        "sync_period=2s",
        "metrics=127.0.0.1:10249",
    ] {
        assert!(start[0].contains(part), "{part} missing in {}", start[0]);
    }

    // kube-proxy's metrics on its default address (the file leaves
    // metricsBindAddress empty): three full syncs counted, the messages
    // that programmed web among kube-ipvs's own.
    let scrape = node
        .netns
        .exec(&["curl", "-sS", "-m", "5", "http://127.0.0.1:10249/metrics"]);
    let full_syncs = metric(
        &scrape,
        "kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"}",
    );
    assert!(full_syncs.is_some_and(|n| n >= 3.0), "{scrape}");
    let new_dests = metric(
        &scrape,
        "kube_ipvs_netlink_messages_total{family=\"ipvs\",kind=\"NEW_DEST\",direction=\"sent\"}",
    );
    assert!(new_dests.is_some_and(|n| n >= 2.0), "{scrape}");

    // `kube-ipvs list` (as the operator, with every capability) names web's
    // Service port and shows the other program's service without one.
    let binary = built_binary("kube-ipvs");
    let table = node.netns.exec(&[binary.to_str().unwrap(), "list"]);
    assert!(
        table
            .lines()
            .any(|l| l == "TCP  10.96.0.10:80 rr  default/web:http (ClusterIP)"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("TCP  10.96.0.53:53 wlc")),
        "{table}"
    );

    let status = daemon.terminate();
    assert!(
        status.success(),
        "kube-ipvs on SIGTERM: {status}\n{}",
        daemon.log()
    );

    // `--cleanup` with the same file removes web and leaves the excluded
    // service.
    let (ok, out) = node
        .netns
        .try_exec(&[binary.to_str().unwrap(), &config_flag, "--cleanup"]);
    assert!(ok, "kube-ipvs --cleanup failed: {out}");
    assert_eq!(node.ipvsadm().blocks, vec![foreign]);
}
