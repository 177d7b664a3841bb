//! The command line. Flags take kube-proxy's names where the concept is the
//! same (kube-ipvs's older names stay as aliases), so kubeadm's and kind's
//! DaemonSet arguments work unchanged. A flag that is given wins over the
//! `--config` file, which wins over the default; so most flags are
//! optional here and their defaults are applied in [`crate::settings`].

use std::{path::PathBuf, time::Duration};

use clap::{ArgAction, Parser, ValueEnum};
use ipnet::IpNet;
use kipvs_runtime::parse_duration;

/// What to do instead of running the proxy.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    List(crate::list::ListArgs),
}

/// An IPVS-native Kubernetes service proxy. Flags take kube-proxy's names
/// where the concept is the same; `--config` reads kube-proxy's
/// KubeProxyConfiguration file, and flags override it.
#[derive(Debug, Default, Parser)]
#[command(name = "kube-ipvs", version)]
pub struct Flags {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// kube-proxy's KubeProxyConfiguration file (YAML or JSON), as kubeadm
    /// writes it; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Kubeconfig file for the Kubernetes API (else the config file's
    /// clientConnection.kubeconfig, else $KUBECONFIG, else the in-cluster
    /// service account).
    #[arg(long, value_name = "PATH", conflicts_with = "manifests")]
    pub kubeconfig: Option<PathBuf>,
    /// The Kubernetes API server's URL; overrides the kubeconfig's.
    #[arg(long, value_name = "URL", conflicts_with = "manifests")]
    pub master: Option<String>,
    /// Read Services, EndpointSlices and Nodes from the YAML files in DIR
    /// instead of the API; changes are picked up within about a second.
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// This node's name: its endpoints are the local ones [default: the
    /// hostname].
    #[arg(
        long,
        visible_alias = "hostname-override",
        env = "NODE_NAME",
        value_name = "NAME"
    )]
    pub node_name: Option<String>,
    /// Only `ipvs` (kube-ipvs has no other mode).
    #[arg(long, value_name = "MODE", value_parser = parse_proxy_mode)]
    pub proxy_mode: Option<String>,
    /// Pod ranges; traffic to a service from outside them is masqueraded.
    #[arg(long, value_name = "CIDR[,CIDR]", value_delimiter = ',')]
    pub cluster_cidr: Option<Vec<IpNet>>,
    /// Masquerade all traffic to services.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub masquerade_all: Option<bool>,
    /// IPVS scheduler of every virtual service [default: rr].
    #[arg(long, value_parser = parse_scheduler, value_name = "NAME")]
    pub ipvs_scheduler: Option<String>,
    /// A list of CIDR ranges that contain valid node IPs, or alternatively,
    /// the single string 'primary'. If set, connections to NodePort
    /// services will only be accepted on the specified node IPs. If unset,
    /// NodePort connections will be accepted on all local IPs.
    #[arg(long, value_name = "CIDR[,CIDR]|primary", value_delimiter = ',')]
    pub nodeport_addresses: Option<Vec<String>>,
    /// The IP address and port (default port 10256) for the health check
    /// server (/healthz, /livez) to serve on; empty to disable [default:
    /// 0.0.0.0:10256].
    #[arg(long, value_name = "IP[:PORT]")]
    pub healthz_bind_address: Option<String>,
    /// The IP address and port (default port 10249) for the metrics server;
    /// empty to disable [default: 127.0.0.1:10249].
    #[arg(long, value_name = "IP[:PORT]")]
    pub metrics_bind_address: Option<String>,
    /// Full resync period, which also repairs drift [default: 30s].
    #[arg(long, visible_alias = "ipvs-sync-period", value_parser = parse_duration, value_name = "DURATION")]
    pub sync_period: Option<Duration>,
    /// Shortest time between two syncs (coalesces bursts of changes)
    /// [default: 0s].
    #[arg(long, visible_alias = "ipvs-min-sync-period", value_parser = parse_duration, value_name = "DURATION")]
    pub min_sync_period: Option<Duration>,
    /// Virtual services whose address is in these ranges are never touched,
    /// also not by --cleanup.
    #[arg(long, value_name = "CIDR[,CIDR]", value_delimiter = ',')]
    pub ipvs_exclude_cidrs: Option<Vec<IpNet>>,
    /// Set arp_ignore=1 and arp_announce=2 on all interfaces, so the
    /// service addresses on kube-ipvs0 are not answered for by ARP.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ipvs_strict_arp: Option<bool>,
    /// IPVS's idle TCP timeout; 0 leaves the kernel's.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub ipvs_tcp_timeout: Option<Duration>,
    /// IPVS's TCP timeout after a FIN; 0 leaves the kernel's.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub ipvs_tcpfin_timeout: Option<Duration>,
    /// IPVS's UDP timeout; 0 leaves the kernel's.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub ipvs_udp_timeout: Option<Duration>,
    /// How long a removed TCP real server may drain at weight 0 before it
    /// is deleted even with connections left.
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub ipvs_graceful_period: Duration,
    /// The most externalIPs plus load-balancer ingress IPs one Service may
    /// have; a Service with more is skipped with a warning naming it.
    #[arg(long, default_value_t = kipvs_planner::DEFAULT_MAX_SERVICE_ADDRESSES, value_name = "N")]
    pub max_service_addresses: usize,
    /// The most virtual services the node programs; the Services that
    /// would take it past this are skipped with a warning naming them.
    #[arg(long, default_value_t = kipvs_planner::DEFAULT_MAX_VIRTUAL_SERVICES, value_name = "N")]
    pub max_virtual_services: usize,
    /// Conntrack entries per CPU; 0 leaves nf_conntrack_max as it is
    /// [default: 32768].
    #[arg(long, value_name = "N")]
    pub conntrack_max_per_core: Option<u32>,
    /// The smallest nf_conntrack_max [default: 131072].
    #[arg(long, value_name = "N")]
    pub conntrack_min: Option<u32>,
    /// nf_conntrack_tcp_timeout_established; 0 leaves it [default: 24h].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub conntrack_tcp_timeout_established: Option<Duration>,
    /// nf_conntrack_tcp_timeout_close_wait; 0 leaves it [default: 1h].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub conntrack_tcp_timeout_close_wait: Option<Duration>,
    /// nf_conntrack_tcp_be_liberal=1.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub conntrack_tcp_be_liberal: Option<bool>,
    /// nf_conntrack_udp_timeout; 0 leaves it.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub conntrack_udp_timeout: Option<Duration>,
    /// nf_conntrack_udp_timeout_stream; 0 leaves it.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub conntrack_udp_timeout_stream: Option<Duration>,
    /// Remove everything kube-ipvs created and exit.
    #[arg(long)]
    pub cleanup: bool,
    /// Do what needs more than CAP_NET_ADMIN (write the sysctls and the
    /// node settings, which a container's read-only /proc/sys forbids),
    /// then exit; run again without it, with only CAP_NET_ADMIN.
    #[arg(long, conflicts_with = "cleanup")]
    pub init_only: bool,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
    /// kube-proxy's log verbosity: 0-2 info, 3-4 debug, 5 and more trace.
    #[arg(long = "v", value_name = "N")]
    pub klog_verbosity: Option<u32>,
    /// Log line format [default: text; the config file's logging.format].
    #[arg(
        long,
        visible_alias = "logging-format",
        value_enum,
        value_name = "FORMAT"
    )]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--proxy-mode` / `mode:`: kube-ipvs is IPVS mode; empty is kube-proxy's
/// "the default", accepted as IPVS.
pub fn parse_proxy_mode(mode: &str) -> Result<String, String> {
    match mode {
        "" | "ipvs" => Ok("ipvs".to_owned()),
        other => Err(format!(
            "{other:?} is not supported: kube-ipvs is an IPVS proxy (use \"ipvs\")"
        )),
    }
}

/// `--ipvs-scheduler`: one of the kernel's schedulers; anything else is
/// refused at startup rather than on every virtual service.
pub fn parse_scheduler(name: &str) -> Result<String, String> {
    kipvs_planner::validate_scheduler(name).map(|()| name.to_owned())
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Flags {
        let mut argv = vec!["kube-ipvs"];
        argv.extend_from_slice(args);
        Flags::try_parse_from(argv).unwrap()
    }

    #[test]
    fn kube_proxy_names_are_aliases() {
        let flags = parse(&[
            "--hostname-override=node-b",
            "--ipvs-sync-period=10s",
            "--ipvs-min-sync-period=1s",
            "--proxy-mode=ipvs",
            "--logging-format=json",
            "--v=4",
        ]);
        assert_eq!(flags.node_name.as_deref(), Some("node-b"));
        assert_eq!(flags.sync_period, Some(Duration::from_secs(10)));
        assert_eq!(flags.min_sync_period, Some(Duration::from_secs(1)));
        assert_eq!(flags.proxy_mode.as_deref(), Some("ipvs"));
        assert_eq!(flags.log_format, Some(LogFormat::Json));
        assert_eq!(flags.klog_verbosity, Some(4));
        // kube-ipvs's own names still work.
        let flags = parse(&["--node-name", "node-c", "--sync-period", "5s"]);
        assert_eq!(flags.node_name.as_deref(), Some("node-c"));
        assert_eq!(flags.sync_period, Some(Duration::from_secs(5)));
    }

    #[test]
    fn ipvs_and_conntrack_flags_parse() {
        let flags = parse(&[
            "--ipvs-exclude-cidrs=10.0.0.0/8,fd00::/64",
            "--ipvs-strict-arp",
            "--ipvs-tcp-timeout=15m",
            "--ipvs-tcpfin-timeout=2m",
            "--ipvs-udp-timeout=5m",
            "--conntrack-max-per-core=0",
            "--conntrack-min=1000",
            "--conntrack-tcp-timeout-established=2h",
            "--conntrack-tcp-timeout-close-wait=30m",
            "--metrics-bind-address=0.0.0.0:10249",
            "--master=https://192.0.2.1:6443",
        ]);
        assert_eq!(
            flags.ipvs_exclude_cidrs,
            Some(vec![
                "10.0.0.0/8".parse().unwrap(),
                "fd00::/64".parse().unwrap()
            ])
        );
        assert_eq!(flags.ipvs_strict_arp, Some(true));
        assert_eq!(flags.ipvs_tcp_timeout, Some(Duration::from_secs(900)));
        assert_eq!(flags.ipvs_tcpfin_timeout, Some(Duration::from_secs(120)));
        assert_eq!(flags.ipvs_udp_timeout, Some(Duration::from_secs(300)));
        assert_eq!(flags.conntrack_max_per_core, Some(0));
        assert_eq!(flags.conntrack_min, Some(1000));
        assert_eq!(
            flags.conntrack_tcp_timeout_established,
            Some(Duration::from_secs(7200))
        );
        assert_eq!(
            flags.conntrack_tcp_timeout_close_wait,
            Some(Duration::from_secs(1800))
        );
        assert_eq!(flags.metrics_bind_address.as_deref(), Some("0.0.0.0:10249"));
        assert_eq!(flags.master.as_deref(), Some("https://192.0.2.1:6443"));
        // Booleans take kube-proxy's `--flag=false` too.
        assert_eq!(
            parse(&["--ipvs-strict-arp=false"]).ipvs_strict_arp,
            Some(false)
        );
        assert_eq!(parse(&["--masquerade-all"]).masquerade_all, Some(true));
    }

    #[test]
    fn a_proxy_mode_other_than_ipvs_is_refused() {
        let error = Flags::try_parse_from(["kube-ipvs", "--proxy-mode=iptables"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        assert_eq!(error.exit_code(), 2);
        assert!(
            error.to_string().contains("\"iptables\" is not supported"),
            "{error}"
        );
    }

    #[test]
    fn nodeport_addresses_flag_takes_a_comma_list() {
        let flags = parse(&["--nodeport-addresses", "10.0.0.0/8,fd00::/64"]);
        assert_eq!(
            flags.nodeport_addresses,
            Some(vec!["10.0.0.0/8".to_owned(), "fd00::/64".to_owned()])
        );
    }

    #[test]
    fn an_unknown_scheduler_is_refused_at_startup() {
        assert_eq!(
            parse(&["--ipvs-scheduler", "mh"]).ipvs_scheduler.as_deref(),
            Some("mh")
        );
        let error =
            Flags::try_parse_from(["kube-ipvs", "--ipvs-scheduler", "fastest"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        assert!(
            error
                .to_string()
                .contains("unknown IPVS scheduler \"fastest\""),
            "{error}"
        );
    }
}
