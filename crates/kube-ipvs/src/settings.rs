//! The settings in effect: each one from its flag when given, else from
//! the `--config` file (where kube-proxy's zero values mean "the
//! default"), else kube-proxy's default. Problems with either are
//! [`ConfigError`]s naming the flag or the file's field; settings that
//! are read but not acted on become warnings.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use ipnet::IpNet;
use kipvs_planner::NodePortAddresses;
use kipvs_runtime::{parse_duration, ConntrackSettings, IpvsTimeouts, NodeSettings};

use crate::{
    config_file::{self, ConfigError, KubeProxyConfiguration},
    flags::{parse_proxy_mode, parse_scheduler, Flags, LogFormat},
};

/// kube-proxy's port for `/healthz` when an address has none.
pub const HEALTHZ_PORT: u16 = 10256;
/// kube-proxy's port for `/metrics` when an address has none.
pub const METRICS_PORT: u16 = 10249;
const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub kubeconfig: Option<PathBuf>,
    pub master: Option<String>,
    pub manifests: Option<PathBuf>,
    /// Lowercased, as kube-proxy; `None`: the hostname.
    pub node_name: Option<String>,
    pub cluster_cidrs: Vec<IpNet>,
    pub masquerade_all: bool,
    pub scheduler: String,
    pub nodeport_addresses: NodePortAddresses,
    /// `None`: off.
    pub healthz_bind_address: Option<SocketAddr>,
    /// Where `/metrics` is served (`None`: off).
    pub metrics_bind_address: Option<SocketAddr>,
    pub sync_period: Duration,
    pub min_sync_period: Duration,
    pub graceful_period: Duration,
    pub exclude_cidrs: Vec<IpNet>,
    pub max_service_addresses: usize,
    pub max_virtual_services: usize,
    pub node: NodeSettings,
    /// clientConnection.qps and .burst (0: client default). Kept for the
    /// log; kube-ipvs's client only lists and watches, unthrottled.
    pub client_qps: f64,
    pub client_burst: i64,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    pub cleanup: bool,
    pub init_only: bool,
}

impl Settings {
    /// The settings in effect as `key=value` pairs, for the start-up line.
    pub fn summary(&self) -> String {
        fn list<T: std::fmt::Display>(items: &[T]) -> String {
            let items: Vec<String> = items.iter().map(ToString::to_string).collect();
            if items.is_empty() {
                "none".to_owned()
            } else {
                items.join(",")
            }
        }
        fn address(address: Option<SocketAddr>) -> String {
            address.map_or_else(|| "off".to_owned(), |a| a.to_string())
        }
        let mut source = match (&self.manifests, &self.kubeconfig) {
            (Some(dir), _) => format!("manifests={}", dir.display()),
            (None, Some(path)) => format!("kubeconfig={}", path.display()),
            (None, None) => "kubeconfig=inferred".to_owned(),
        };
        if let Some(master) = &self.master {
            source.push_str(&format!(" master={master}"));
        }
        let node = &self.node;
        let ct = &node.conntrack;
        let t = &node.ipvs_timeouts;
        format!(
            "{source} cluster_cidr={} masquerade_all={} scheduler={} \
             nodeport_addresses={:?} healthz={} metrics={} sync_period={:?} \
             min_sync_period={:?} graceful_period={:?} exclude_cidrs={} strict_arp={} \
             ipvs_timeouts={}s/{}s/{}s conntrack_max_per_core={} conntrack_min={} \
             conntrack_tcp_established={}s conntrack_tcp_close_wait={}s \
             conntrack_udp={}s/{}s client_qps={} client_burst={}",
            list(&self.cluster_cidrs),
            self.masquerade_all,
            self.scheduler,
            self.nodeport_addresses,
            address(self.healthz_bind_address),
            address(self.metrics_bind_address),
            self.sync_period,
            self.min_sync_period,
            self.graceful_period,
            list(&self.exclude_cidrs),
            node.strict_arp,
            t.tcp.as_secs(),
            t.tcp_fin.as_secs(),
            t.udp.as_secs(),
            ct.max_per_core,
            ct.min,
            ct.tcp_established_timeout.as_secs(),
            ct.tcp_close_wait_timeout.as_secs(),
            ct.udp_timeout.as_secs(),
            ct.udp_stream_timeout.as_secs(),
            self.client_qps,
            self.client_burst,
        )
    }
}

/// Merges `flags` over `file` over the defaults. Returns the settings and
/// the warnings to log once logging is up.
pub fn resolve(
    flags: Flags,
    file: Option<KubeProxyConfiguration>,
) -> Result<(Settings, Vec<String>), ConfigError> {
    let file = file.unwrap_or_default();
    let mut warnings: Vec<String> = config_file::ignored_fields(&file)
        .iter()
        .map(ToString::to_string)
        .collect();
    let client = file.client_connection.unwrap_or_default();
    let ipvs = file.ipvs.unwrap_or_default();
    let iptables = file.iptables.unwrap_or_default();
    let conntrack = file.conntrack.unwrap_or_default();
    let logging = file.logging.unwrap_or_default();

    if flags.proxy_mode.is_none() {
        if let Some(mode) = &file.mode {
            parse_proxy_mode(mode).map_err(|e| ConfigError::new("mode", e))?;
        }
    }
    match file.detect_local_mode.as_deref().unwrap_or("") {
        "" | "ClusterCIDR" => {}
        mode @ ("NodeCIDR" | "BridgeInterface" | "InterfaceNamePrefix") => warnings.push(format!(
            "detectLocalMode={mode} is not supported: kube-ipvs tells local traffic by \
             clusterCIDR (pods outside it are masqueraded like off-cluster clients)"
        )),
        other => {
            return Err(ConfigError::new(
                "detectLocalMode",
                format!("unknown mode {other:?}"),
            ))
        }
    }

    let node_name = flags
        .node_name
        .or(file.hostname_override)
        .map(|name| name.trim().to_lowercase())
        .filter(|name| !name.is_empty());
    let kubeconfig = flags.kubeconfig.or(client
        .kubeconfig
        .filter(|path| !path.is_empty())
        .map(PathBuf::from));
    if client.qps.is_some_and(|qps| qps != 0.0) || client.burst.is_some_and(|burst| burst != 0) {
        warnings.push(
            "clientConnection.qps and .burst are not enforced: kube-ipvs only lists and \
             watches, a few requests per start"
                .to_owned(),
        );
    }

    let cluster_cidrs = match flags.cluster_cidr {
        Some(cidrs) => cidrs,
        None => parse_cidr_list(
            "clusterCIDR",
            file.cluster_cidr.as_deref().unwrap_or("").split(','),
        )?,
    };
    let scheduler = match flags.ipvs_scheduler {
        Some(name) => name,
        None => match ipvs.scheduler.as_deref().unwrap_or("") {
            "" => "rr".to_owned(),
            name => parse_scheduler(name).map_err(|e| ConfigError::new("ipvs.scheduler", e))?,
        },
    };
    let nodeport_addresses = match flags.nodeport_addresses {
        Some(values) => parse_nodeport_addresses(&values, &mut warnings)
            .map_err(|e| ConfigError::new("--nodeport-addresses", e))?,
        None => {
            parse_nodeport_addresses(&file.node_port_addresses.unwrap_or_default(), &mut warnings)
                .map_err(|e| ConfigError::new("nodePortAddresses", e))?
        }
    };
    let healthz_bind_address = bind_address(
        "--healthz-bind-address",
        "healthzBindAddress",
        flags.healthz_bind_address,
        file.healthz_bind_address,
        "0.0.0.0",
        HEALTHZ_PORT,
    )?;
    let metrics_bind_address = bind_address(
        "--metrics-bind-address",
        "metricsBindAddress",
        flags.metrics_bind_address,
        file.metrics_bind_address,
        "127.0.0.1",
        METRICS_PORT,
    )?;

    let sync_period = match flags.sync_period {
        Some(period) => period,
        None => file_duration("ipvs.syncPeriod", &ipvs.sync_period)?
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_SYNC_PERIOD),
    };
    let min_sync_period = match flags.min_sync_period {
        Some(period) => period,
        None => file_duration("ipvs.minSyncPeriod", &ipvs.min_sync_period)?.unwrap_or_default(),
    };
    if sync_period.is_zero() {
        return Err(ConfigError::new("--sync-period", "must be greater than 0"));
    }
    if min_sync_period > sync_period {
        return Err(ConfigError::new(
            "--min-sync-period",
            format!("{min_sync_period:?} is longer than the sync period {sync_period:?}"),
        ));
    }
    let exclude_cidrs = match flags.ipvs_exclude_cidrs {
        Some(cidrs) => cidrs,
        None => parse_cidr_list(
            "ipvs.excludeCIDRs",
            ipvs.exclude_cidrs.iter().flatten().map(String::as_str),
        )?,
    };

    let ipvs_timeouts = IpvsTimeouts {
        tcp: pick(flags.ipvs_tcp_timeout, "ipvs.tcpTimeout", &ipvs.tcp_timeout)?,
        tcp_fin: pick(
            flags.ipvs_tcpfin_timeout,
            "ipvs.tcpFinTimeout",
            &ipvs.tcp_fin_timeout,
        )?,
        udp: pick(flags.ipvs_udp_timeout, "ipvs.udpTimeout", &ipvs.udp_timeout)?,
    };
    let defaults = ConntrackSettings::default();
    let conntrack = ConntrackSettings {
        max_per_core: match flags.conntrack_max_per_core {
            Some(n) => u64::from(n),
            None => file_count("conntrack.maxPerCore", conntrack.max_per_core)?
                .unwrap_or(defaults.max_per_core),
        },
        min: match flags.conntrack_min {
            Some(n) => u64::from(n),
            None => file_count("conntrack.min", conntrack.min)?.unwrap_or(defaults.min),
        },
        // A pointer in kube-proxy's type: absent means the default, an
        // explicit 0 leaves the kernel's value.
        tcp_established_timeout: match flags.conntrack_tcp_timeout_established {
            Some(d) => d,
            None => file_duration(
                "conntrack.tcpEstablishedTimeout",
                &conntrack.tcp_established_timeout,
            )?
            .unwrap_or(defaults.tcp_established_timeout),
        },
        tcp_close_wait_timeout: match flags.conntrack_tcp_timeout_close_wait {
            Some(d) => d,
            None => file_duration(
                "conntrack.tcpCloseWaitTimeout",
                &conntrack.tcp_close_wait_timeout,
            )?
            .unwrap_or(defaults.tcp_close_wait_timeout),
        },
        tcp_be_liberal: flags
            .conntrack_tcp_be_liberal
            .or(conntrack.tcp_be_liberal)
            .unwrap_or(false),
        udp_timeout: pick(
            flags.conntrack_udp_timeout,
            "conntrack.udpTimeout",
            &conntrack.udp_timeout,
        )?,
        udp_stream_timeout: pick(
            flags.conntrack_udp_timeout_stream,
            "conntrack.udpStreamTimeout",
            &conntrack.udp_stream_timeout,
        )?,
    };

    let verbosity = flags.klog_verbosity.or(logging.verbosity).unwrap_or(0);
    let log_level = match flags.verbose {
        0 => LogLevel::Info,
        1 => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
    .max(match verbosity {
        0..=2 => LogLevel::Info,
        3..=4 => LogLevel::Debug,
        _ => LogLevel::Trace,
    });
    let log_format = match flags.log_format {
        Some(format) => format,
        None => match logging.format.as_deref().unwrap_or("") {
            "" | "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::new(
                    "logging.format",
                    format!("{other:?} is not text or json"),
                ))
            }
        },
    };

    let settings = Settings {
        kubeconfig,
        master: flags.master,
        manifests: flags.manifests,
        node_name,
        cluster_cidrs,
        masquerade_all: flags
            .masquerade_all
            .or(iptables.masquerade_all)
            .unwrap_or(false),
        scheduler,
        nodeport_addresses,
        healthz_bind_address,
        metrics_bind_address,
        sync_period,
        min_sync_period,
        graceful_period: flags.ipvs_graceful_period,
        exclude_cidrs,
        max_service_addresses: flags.max_service_addresses,
        max_virtual_services: flags.max_virtual_services,
        node: NodeSettings {
            strict_arp: flags.ipvs_strict_arp.or(ipvs.strict_arp).unwrap_or(false),
            ipvs_timeouts,
            conntrack,
        },
        client_qps: client.qps.unwrap_or(0.0),
        client_burst: client.burst.unwrap_or(0),
        log_level,
        log_format,
        cleanup: flags.cleanup,
        init_only: flags.init_only,
    };
    Ok((settings, warnings))
}

/// The flag's duration, else the file's, else zero.
fn pick(
    flag: Option<Duration>,
    field: &str,
    file: &Option<String>,
) -> Result<Duration, ConfigError> {
    match flag {
        Some(d) => Ok(d),
        None => Ok(file_duration(field, file)?.unwrap_or_default()),
    }
}

fn file_duration(field: &str, value: &Option<String>) -> Result<Option<Duration>, ConfigError> {
    value
        .as_deref()
        .map(|text| parse_duration(text).map_err(|e| ConfigError::new(field, e)))
        .transpose()
}

fn file_count(field: &str, value: Option<i64>) -> Result<Option<u64>, ConfigError> {
    value
        .map(|n| u64::try_from(n).map_err(|_| ConfigError::new(field, format!("{n} is negative"))))
        .transpose()
}

/// CIDRs, empty items skipped; an invalid one is named with its index.
fn parse_cidr_list<'a>(
    field: &str,
    items: impl Iterator<Item = &'a str>,
) -> Result<Vec<IpNet>, ConfigError> {
    items
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .map_err(|_| ConfigError::new(field, format!("invalid CIDR {item:?}")))
        })
        .collect()
}

/// A bind address from its flag (empty: off) or the file's field (empty:
/// the default, as kube-proxy defaults its config).
fn bind_address(
    flag_name: &str,
    field: &str,
    flag: Option<String>,
    file: Option<String>,
    default_ip: &str,
    port: u16,
) -> Result<Option<SocketAddr>, ConfigError> {
    let (origin, value) = match (flag, file) {
        (Some(value), _) => (flag_name, value),
        (None, Some(value)) if !value.is_empty() => (field, value),
        _ => (field, default_ip.to_owned()),
    };
    parse_bind_address(&value, port).map_err(|e| ConfigError::new(origin, e))
}

/// `IP:PORT`, `[IPv6]:PORT`, a bare IP (`port`) or the empty string (off).
pub fn parse_bind_address(value: &str, port: u16) -> Result<Option<SocketAddr>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(address) = value.parse::<SocketAddr>() {
        return Ok(Some(address));
    }
    match value.parse::<IpAddr>() {
        Ok(ip) => Ok(Some(SocketAddr::new(ip, port))),
        Err(_) => Err(format!("{value:?} is not IP:PORT, an IP, or empty")),
    }
}

/// Node-port addresses: CIDRs, or the single word `primary`; `all` (or
/// nothing) means every node address. `localhost` is dropped with a
/// warning: node ports never answer on loopback in IPVS mode.
pub fn parse_nodeport_addresses(
    values: &[String],
    warnings: &mut Vec<String>,
) -> Result<NodePortAddresses, String> {
    let mut values: Vec<&str> = values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect();
    if values.contains(&"localhost") {
        warnings.push(
            "nodePortAddresses: 'localhost' is ignored: node ports never answer on loopback \
             in IPVS mode"
                .to_owned(),
        );
        values.retain(|v| *v != "localhost");
    }
    if values.contains(&"all") {
        return Ok(NodePortAddresses::All);
    }
    match values[..] {
        [] => Ok(NodePortAddresses::All),
        ["primary"] => Ok(NodePortAddresses::Primary),
        _ => values
            .iter()
            .map(|value| match value.parse::<IpNet>() {
                Ok(cidr) => Ok(cidr.trunc()),
                Err(_) if *value == "primary" => {
                    Err("'primary' cannot be combined with CIDRs".to_owned())
                }
                Err(_) => Err(format!("invalid CIDR {value:?}")),
            })
            .collect::<Result<_, _>>()
            .map(NodePortAddresses::Cidrs),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config_file::{parse, tests::KUBEADM_CONFIG};

    fn flags(args: &[&str]) -> Flags {
        let mut argv = vec!["kube-ipvs"];
        argv.extend_from_slice(args);
        Flags::try_parse_from(argv).unwrap()
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    /// kubeadm's config with IPVS settings a MetalLB user has.
    fn tuned_config() -> String {
        KUBEADM_CONFIG
            .replace("  strictARP: false", "  strictARP: true")
            .replace("  tcpTimeout: 0s", "  tcpTimeout: 15m")
            .replace("  udpTimeout: 0s\nkind", "  udpTimeout: 5m0s\nkind")
            .replace("  syncPeriod: 0s\n  tcpFinTimeout", "  syncPeriod: 10s\n  tcpFinTimeout")
            .replace("  scheduler: \"\"", "  scheduler: wrr")
            .replace(
                "  excludeCIDRs: null",
                "  excludeCIDRs:\n  - 192.0.2.0/24\n  - fd00:1::/64",
            )
            .replace("  maxPerCore: null", "  maxPerCore: 0")
            .replace("  tcpEstablishedTimeout: null", "  tcpEstablishedTimeout: 2h0m0s")
            .replace("hostnameOverride: \"\"", "hostnameOverride: Node-A")
            .replace("metricsBindAddress: \"\"", "metricsBindAddress: 0.0.0.0")
            .replace("  masqueradeAll: false\n  masqueradeBit: null\n  minSyncPeriod: 0s\n  syncPeriod: 0s\nipvs:", "  masqueradeAll: true\n  masqueradeBit: null\n  minSyncPeriod: 0s\n  syncPeriod: 0s\nipvs:")
    }

    #[test]
    fn the_deploy_config_map_is_read_without_a_warning() {
        let manifests = include_str!("../../../deploy/kube-ipvs.yaml");
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(manifests).expect("deploy/kube-ipvs.yaml");
        let config = documents
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["data"]["config.conf"].is_string())
            .and_then(|d| d["data"]["config.conf"].as_str())
            .expect("a ConfigMap with config.conf");
        let (settings, warnings) = resolve(flags(&[]), Some(parse(config).unwrap())).unwrap();
        assert_eq!(warnings, Vec::<String>::new());
        assert_eq!(
            settings.healthz_bind_address,
            Some("0.0.0.0:10256".parse().unwrap())
        );
        assert_eq!(
            settings.kubeconfig,
            Some(PathBuf::from("/var/lib/kube-proxy/kubeconfig.conf"))
        );
    }

    #[test]
    fn kubeadms_config_gives_kube_proxys_defaults() {
        let (settings, warnings) =
            resolve(flags(&[]), Some(parse(KUBEADM_CONFIG).unwrap())).unwrap();
        assert_eq!(warnings, Vec::<String>::new());
        assert_eq!(
            settings.kubeconfig,
            Some(PathBuf::from("/var/lib/kube-proxy/kubeconfig.conf"))
        );
        assert_eq!(
            settings.cluster_cidrs,
            vec!["10.244.0.0/16".parse().unwrap()]
        );
        assert_eq!(settings.scheduler, "rr");
        assert_eq!(settings.sync_period, Duration::from_secs(30));
        assert_eq!(settings.min_sync_period, Duration::ZERO);
        assert_eq!(
            settings.healthz_bind_address,
            Some("0.0.0.0:10256".parse().unwrap())
        );
        assert_eq!(
            settings.metrics_bind_address,
            Some("127.0.0.1:10249".parse().unwrap())
        );
        assert_eq!(settings.nodeport_addresses, NodePortAddresses::All);
        assert_eq!(settings.node, NodeSettings::default());
        assert_eq!(settings.node_name, None);
        assert!(!settings.masquerade_all);
        assert_eq!(settings.log_level, LogLevel::Info);
        assert_eq!(settings.log_format, LogFormat::Text);
        // And the same with no file at all.
        let (bare, _) = resolve(flags(&[]), None).unwrap();
        assert_eq!(bare.node, settings.node);
        assert_eq!(bare.sync_period, settings.sync_period);
        assert_eq!(bare.kubeconfig, None);
    }

    #[test]
    fn the_files_ipvs_and_conntrack_settings_are_read() {
        let (settings, _) = resolve(flags(&[]), Some(parse(&tuned_config()).unwrap())).unwrap();
        assert_eq!(settings.node_name.as_deref(), Some("node-a"));
        assert_eq!(settings.scheduler, "wrr");
        assert_eq!(settings.sync_period, Duration::from_secs(10));
        assert!(settings.masquerade_all);
        assert_eq!(
            settings.exclude_cidrs,
            vec![
                "192.0.2.0/24".parse().unwrap(),
                "fd00:1::/64".parse().unwrap()
            ]
        );
        assert_eq!(
            settings.metrics_bind_address,
            Some("0.0.0.0:10249".parse().unwrap())
        );
        assert_eq!(
            settings.node,
            NodeSettings {
                strict_arp: true,
                ipvs_timeouts: IpvsTimeouts {
                    tcp: Duration::from_secs(900),
                    tcp_fin: Duration::ZERO,
                    udp: Duration::from_secs(300),
                },
                conntrack: ConntrackSettings {
                    max_per_core: 0,
                    tcp_established_timeout: Duration::from_secs(7200),
                    ..ConntrackSettings::default()
                },
            }
        );
    }

    #[test]
    fn flags_override_the_file() {
        let (settings, _) = resolve(
            flags(&[
                "--hostname-override=node-b",
                "--ipvs-sync-period=20s",
                "--ipvs-min-sync-period=2s",
                "--ipvs-scheduler=lc",
                "--ipvs-strict-arp=false",
                "--ipvs-tcp-timeout=0",
                "--ipvs-exclude-cidrs=198.51.100.0/24",
                "--cluster-cidr=10.0.0.0/8",
                "--masquerade-all=false",
                "--metrics-bind-address=",
                "--healthz-bind-address=127.0.0.1",
                "--conntrack-max-per-core=1000",
                "--conntrack-tcp-timeout-established=1h",
                "--kubeconfig=/etc/kube-ipvs.conf",
                "--v=3",
                "--log-format=json",
            ]),
            Some(parse(&tuned_config()).unwrap()),
        )
        .unwrap();
        assert_eq!(settings.node_name.as_deref(), Some("node-b"));
        assert_eq!(settings.sync_period, Duration::from_secs(20));
        assert_eq!(settings.min_sync_period, Duration::from_secs(2));
        assert_eq!(settings.scheduler, "lc");
        assert!(!settings.node.strict_arp);
        assert_eq!(settings.node.ipvs_timeouts.tcp, Duration::ZERO);
        assert_eq!(settings.node.ipvs_timeouts.udp, Duration::from_secs(300));
        assert_eq!(
            settings.exclude_cidrs,
            vec!["198.51.100.0/24".parse().unwrap()]
        );
        assert_eq!(settings.cluster_cidrs, vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(!settings.masquerade_all);
        assert_eq!(settings.metrics_bind_address, None);
        assert_eq!(
            settings.healthz_bind_address,
            Some("127.0.0.1:10256".parse().unwrap())
        );
        assert_eq!(settings.node.conntrack.max_per_core, 1000);
        assert_eq!(
            settings.node.conntrack.tcp_established_timeout,
            Duration::from_secs(3600)
        );
        assert_eq!(
            settings.kubeconfig,
            Some(PathBuf::from("/etc/kube-ipvs.conf"))
        );
        assert_eq!(settings.log_level, LogLevel::Debug);
        assert_eq!(settings.log_format, LogFormat::Json);
    }

    #[test]
    fn a_mode_other_than_ipvs_is_refused_unless_the_flag_says_ipvs() {
        let file = || parse(&KUBEADM_CONFIG.replace("mode: ipvs", "mode: iptables")).unwrap();
        let error = resolve(flags(&[]), Some(file())).unwrap_err();
        assert_eq!(error.field, "mode");
        assert!(
            error.message.contains("\"iptables\" is not supported"),
            "{error}"
        );
        assert!(resolve(flags(&["--proxy-mode=ipvs"]), Some(file())).is_ok());
        let empty = parse(&KUBEADM_CONFIG.replace("mode: ipvs", "mode: \"\"")).unwrap();
        assert!(resolve(flags(&[]), Some(empty)).is_ok());
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                "  tcpTimeout: 0s",
                "  tcpTimeout: 15 parsecs",
                "ipvs.tcpTimeout",
            ),
            (
                "clusterCIDR: 10.244.0.0/16",
                "clusterCIDR: 10.244.0.0/16,nope",
                "clusterCIDR",
            ),
            ("  min: null", "  min: -1", "conntrack.min"),
            (
                "  scheduler: \"\"",
                "  scheduler: fastest",
                "ipvs.scheduler",
            ),
            (
                "detectLocalMode: \"\"",
                "detectLocalMode: Magic",
                "detectLocalMode",
            ),
            (
                "healthzBindAddress: \"\"",
                "healthzBindAddress: here",
                "healthzBindAddress",
            ),
            (
                "  verbosity: 0",
                "  verbosity: 0\n  format: xml",
                "logging.format",
            ),
        ];
        for (from, to, field) in cases {
            let text = KUBEADM_CONFIG.replace(from, to);
            assert_ne!(text, KUBEADM_CONFIG, "{from}");
            let error = resolve(flags(&[]), Some(parse(&text).unwrap())).unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
        let error = resolve(flags(&["--sync-period=0s"]), None).unwrap_err();
        assert_eq!(error.field, "--sync-period");
        let error =
            resolve(flags(&["--sync-period=1s", "--min-sync-period=2s"]), None).unwrap_err();
        assert_eq!(error.field, "--min-sync-period");
    }

    #[test]
    fn other_local_detection_modes_warn() {
        let text = KUBEADM_CONFIG.replace("detectLocalMode: \"\"", "detectLocalMode: NodeCIDR");
        let (_, warnings) = resolve(flags(&[]), Some(parse(&text).unwrap())).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("detectLocalMode=NodeCIDR is not supported"));
    }

    #[test]
    fn nodeport_addresses_are_cidrs_primary_or_all() {
        let mut warnings = Vec::new();
        let mut parse = |values: &[&str]| parse_nodeport_addresses(&strings(values), &mut warnings);
        assert_eq!(parse(&[]), Ok(NodePortAddresses::All));
        assert_eq!(parse(&["all"]), Ok(NodePortAddresses::All));
        assert_eq!(parse(&["primary"]), Ok(NodePortAddresses::Primary));
        assert_eq!(
            parse(&["192.168.77.9/24", "fd00::/64"]),
            Ok(NodePortAddresses::Cidrs(vec![
                "192.168.77.0/24".parse().unwrap(),
                "fd00::/64".parse().unwrap()
            ]))
        );
        assert_eq!(
            parse(&["primary", "10.0.0.0/8"]),
            Err("'primary' cannot be combined with CIDRs".to_owned())
        );
        assert_eq!(
            parse(&["10.0.0.0/33"]),
            Err("invalid CIDR \"10.0.0.0/33\"".to_owned())
        );
        assert_eq!(
            parse(&["localhost", "primary"]),
            Ok(NodePortAddresses::Primary)
        );
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn bind_addresses_default_their_port_and_can_be_disabled() {
        assert_eq!(
            parse_bind_address("::1", HEALTHZ_PORT),
            Ok(Some("[::1]:10256".parse().unwrap()))
        );
        assert_eq!(
            parse_bind_address("[::]:9000", HEALTHZ_PORT),
            Ok(Some("[::]:9000".parse().unwrap()))
        );
        assert_eq!(parse_bind_address("", HEALTHZ_PORT), Ok(None));
        assert!(parse_bind_address("localhost:1", HEALTHZ_PORT).is_err());
        let (off, _) = resolve(flags(&["--healthz-bind-address="]), None).unwrap();
        assert_eq!(off.healthz_bind_address, None);
    }
}
