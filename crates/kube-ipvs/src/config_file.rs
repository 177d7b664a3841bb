//! `--config FILE`: kube-proxy's `KubeProxyConfiguration`
//! (`kubeproxy.config.k8s.io/v1alpha1`), YAML or JSON, as kubeadm and kind
//! write it into the `kube-proxy` ConfigMap.
//!
//! Decoding is strict like kube-proxy's: a field this version of the type
//! does not have is an error naming its path (a typo must not silently
//! fall back to a default). Fields that mean something to an IPVS proxy
//! are typed; the others are kept as raw values, so that
//! [`ignored_fields`] can warn about the ones set to anything but their
//! zero or kube-proxy default value.

use serde::Deserialize;
use serde_json::Value;

pub const API_VERSION: &str = "kubeproxy.config.k8s.io/v1alpha1";
pub const KIND: &str = "KubeProxyConfiguration";

/// Why the file was refused; `field` is its path in the file
/// (`ipvs.tcpTimeout`), empty for the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl ConfigError {
    pub fn new(field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeProxyConfiguration {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub feature_gates: Option<Value>,
    pub client_connection: Option<ClientConnection>,
    pub logging: Option<Logging>,
    pub hostname_override: Option<String>,
    pub bind_address: Option<Value>,
    pub healthz_bind_address: Option<String>,
    pub metrics_bind_address: Option<String>,
    pub bind_address_hard_fail: Option<Value>,
    pub enable_profiling: Option<Value>,
    pub show_hidden_metrics_for_version: Option<Value>,
    pub mode: Option<String>,
    pub iptables: Option<Iptables>,
    pub ipvs: Option<Ipvs>,
    pub nftables: Option<Nftables>,
    pub winkernel: Option<Winkernel>,
    pub detect_local_mode: Option<String>,
    pub detect_local: Option<DetectLocal>,
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: Option<String>,
    pub node_port_addresses: Option<Vec<String>>,
    pub oom_score_adj: Option<Value>,
    pub conntrack: Option<Conntrack>,
    pub config_sync_period: Option<Value>,
    pub port_range: Option<Value>,
    pub windows_run_as_service: Option<Value>,
}

/// `componentbaseconfig/v1alpha1.ClientConnectionConfiguration`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientConnection {
    pub kubeconfig: Option<String>,
    pub accept_content_types: Option<Value>,
    pub content_type: Option<Value>,
    pub qps: Option<f64>,
    pub burst: Option<i64>,
}

/// `logsapi/v1.LoggingConfiguration`: the format and verbosity are used;
/// the rest is klog's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Logging {
    pub format: Option<String>,
    pub verbosity: Option<u32>,
    pub flush_frequency: Option<Value>,
    pub vmodule: Option<Value>,
    pub options: Option<LoggingOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingOptions {
    pub text: Option<OutputRouting>,
    pub json: Option<OutputRouting>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutputRouting {
    pub split_stream: Option<Value>,
    pub info_buffer_size: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Iptables {
    pub masquerade_bit: Option<Value>,
    /// Despite the section, kube-proxy's IPVS mode uses it too.
    pub masquerade_all: Option<bool>,
    pub localhost_node_ports: Option<Value>,
    #[serde(rename = "snatNodeInternalIP")]
    pub snat_node_internal_ip: Option<Value>,
    pub sync_period: Option<Value>,
    pub min_sync_period: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ipvs {
    pub sync_period: Option<String>,
    pub min_sync_period: Option<String>,
    pub scheduler: Option<String>,
    #[serde(rename = "excludeCIDRs")]
    pub exclude_cidrs: Option<Vec<String>>,
    #[serde(rename = "strictARP")]
    pub strict_arp: Option<bool>,
    pub tcp_timeout: Option<String>,
    pub tcp_fin_timeout: Option<String>,
    pub udp_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Nftables {
    pub masquerade_bit: Option<Value>,
    pub masquerade_all: Option<Value>,
    pub sync_period: Option<Value>,
    pub min_sync_period: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Winkernel {
    pub network_name: Option<Value>,
    pub source_vip: Option<Value>,
    #[serde(rename = "enableDSR")]
    pub enable_dsr: Option<Value>,
    pub root_hns_endpoint_name: Option<Value>,
    pub forward_health_check_vip: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DetectLocal {
    pub bridge_interface: Option<Value>,
    pub interface_name_prefix: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Conntrack {
    pub max_per_core: Option<i64>,
    pub min: Option<i64>,
    pub tcp_established_timeout: Option<String>,
    pub tcp_close_wait_timeout: Option<String>,
    pub tcp_be_liberal: Option<bool>,
    pub udp_timeout: Option<String>,
    pub udp_stream_timeout: Option<String>,
}

/// Decodes a file's text. JSON is told apart by its first character; YAML
/// goes through a generic value first, so that both report a bad field by
/// its path.
pub fn parse(text: &str) -> Result<KubeProxyConfiguration, ConfigError> {
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| ConfigError::new("", format!("not JSON: {e}")))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| ConfigError::new("", format!("not YAML: {e}")))?
    };
    if value.is_null() {
        return Err(ConfigError::new("", "the file is empty"));
    }
    let config: KubeProxyConfiguration =
        serde_path_to_error::deserialize(value).map_err(|error| {
            let field = error.path().to_string();
            let field = if field == "." { String::new() } else { field };
            ConfigError::new(&field, error.into_inner().to_string())
        })?;
    check_type(&config)?;
    Ok(config)
}

fn check_type(config: &KubeProxyConfiguration) -> Result<(), ConfigError> {
    match config.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => {
            return Err(ConfigError::new(
                "apiVersion",
                format!("{other:?} is not supported (only {API_VERSION})"),
            ))
        }
        None => return Err(ConfigError::new("apiVersion", "missing")),
    }
    match config.kind.as_deref() {
        Some(KIND) => Ok(()),
        Some(other) => Err(ConfigError::new("kind", format!("{other:?} is not {KIND}"))),
        None => Err(ConfigError::new("kind", "missing")),
    }
}

/// One field kube-ipvs reads but does not act on, set to something other
/// than its zero or default value: a line for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub field: &'static str,
    pub value: String,
    pub why: &'static str,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={} is ignored: {}", self.field, self.value, self.why)
    }
}

const NOT_IPTABLES: &str = "kube-ipvs programs IPVS, ipset and nf_tables, not iptables";
const NOT_NFTABLES: &str = "kube-ipvs is not kube-proxy's nftables mode";
const NOT_WINDOWS: &str = "kube-ipvs runs on Linux only";
const NO_METRICS_SERVER_EXTRAS: &str = "kube-ipvs has no profiling or hidden metrics";

/// Every known field kube-ipvs does not act on that the file sets to a
/// value other than its zero or kube-proxy's default (kubeadm writes every
/// field, mostly empty, so only a real setting deserves a warning).
pub fn ignored_fields(config: &KubeProxyConfiguration) -> Vec<Ignored> {
    let mut out = Vec::new();
    check(
        &mut out,
        "featureGates",
        &config.feature_gates,
        &[],
        "kube-ipvs has no feature gates",
    );
    check(
        &mut out,
        "bindAddress",
        &config.bind_address,
        &["0.0.0.0", "::"],
        "the node's primary IPs come from its Node object's InternalIP",
    );
    check(
        &mut out,
        "bindAddressHardFail",
        &config.bind_address_hard_fail,
        &[],
        "the health server retries its bind every 5 s instead of exiting",
    );
    check(
        &mut out,
        "enableProfiling",
        &config.enable_profiling,
        &[],
        NO_METRICS_SERVER_EXTRAS,
    );
    check(
        &mut out,
        "showHiddenMetricsForVersion",
        &config.show_hidden_metrics_for_version,
        &[],
        NO_METRICS_SERVER_EXTRAS,
    );
    check(
        &mut out,
        "oomScoreAdj",
        &config.oom_score_adj,
        &["-999"],
        "set the pod's oom_score_adj (QoS class) instead",
    );
    check(
        &mut out,
        "configSyncPeriod",
        &config.config_sync_period,
        &["15m0s", "15m"],
        "kube-ipvs's watches need no periodic relist",
    );
    check(
        &mut out,
        "portRange",
        &config.port_range,
        &["0-0"],
        "it configured the removed userspace proxy",
    );
    check(
        &mut out,
        "windowsRunAsService",
        &config.windows_run_as_service,
        &[],
        NOT_WINDOWS,
    );
    if let Some(client) = &config.client_connection {
        check(
            &mut out,
            "clientConnection.acceptContentTypes",
            &client.accept_content_types,
            &["application/json"],
            "kube-ipvs's client asks for JSON",
        );
        check(
            &mut out,
            "clientConnection.contentType",
            &client.content_type,
            &["application/json", "application/vnd.kubernetes.protobuf"],
            "kube-ipvs's client sends JSON",
        );
    }
    if let Some(logging) = &config.logging {
        let why = "kube-ipvs's logger is tracing, not klog (format and verbosity are used)";
        check(
            &mut out,
            "logging.flushFrequency",
            &logging.flush_frequency,
            &["5s"],
            why,
        );
        check(&mut out, "logging.vmodule", &logging.vmodule, &[], why);
        let options = logging.options.as_ref();
        if let Some(text) = options.and_then(|o| o.text.as_ref()) {
            check(
                &mut out,
                "logging.options.text.splitStream",
                &text.split_stream,
                &[],
                why,
            );
            check(
                &mut out,
                "logging.options.text.infoBufferSize",
                &text.info_buffer_size,
                &[],
                why,
            );
        }
        if let Some(json) = options.and_then(|o| o.json.as_ref()) {
            check(
                &mut out,
                "logging.options.json.splitStream",
                &json.split_stream,
                &[],
                why,
            );
            check(
                &mut out,
                "logging.options.json.infoBufferSize",
                &json.info_buffer_size,
                &[],
                why,
            );
        }
    }
    if let Some(iptables) = &config.iptables {
        check(
            &mut out,
            "iptables.masqueradeBit",
            &iptables.masquerade_bit,
            &["14"],
            "kube-ipvs always marks with bit 14 (0x4000)",
        );
        check(
            &mut out,
            "iptables.localhostNodePorts",
            &iptables.localhost_node_ports,
            &[],
            "node ports never answer on localhost in IPVS mode",
        );
        check(
            &mut out,
            "iptables.snatNodeInternalIP",
            &iptables.snat_node_internal_ip,
            &[],
            NOT_IPTABLES,
        );
        check(
            &mut out,
            "iptables.syncPeriod",
            &iptables.sync_period,
            &["30s"],
            "IPVS mode uses ipvs.syncPeriod",
        );
        check(
            &mut out,
            "iptables.minSyncPeriod",
            &iptables.min_sync_period,
            &["1s"],
            "IPVS mode uses ipvs.minSyncPeriod",
        );
    }
    if let Some(nftables) = &config.nftables {
        check(
            &mut out,
            "nftables.masqueradeBit",
            &nftables.masquerade_bit,
            &["14"],
            NOT_NFTABLES,
        );
        check(
            &mut out,
            "nftables.masqueradeAll",
            &nftables.masquerade_all,
            &[],
            "IPVS mode uses iptables.masqueradeAll",
        );
        check(
            &mut out,
            "nftables.syncPeriod",
            &nftables.sync_period,
            &["30s"],
            NOT_NFTABLES,
        );
        check(
            &mut out,
            "nftables.minSyncPeriod",
            &nftables.min_sync_period,
            &["1s"],
            NOT_NFTABLES,
        );
    }
    if let Some(winkernel) = &config.winkernel {
        check(
            &mut out,
            "winkernel.networkName",
            &winkernel.network_name,
            &[],
            NOT_WINDOWS,
        );
        check(
            &mut out,
            "winkernel.sourceVip",
            &winkernel.source_vip,
            &[],
            NOT_WINDOWS,
        );
        check(
            &mut out,
            "winkernel.enableDSR",
            &winkernel.enable_dsr,
            &[],
            NOT_WINDOWS,
        );
        check(
            &mut out,
            "winkernel.rootHnsEndpointName",
            &winkernel.root_hns_endpoint_name,
            &[],
            NOT_WINDOWS,
        );
        check(
            &mut out,
            "winkernel.forwardHealthCheckVip",
            &winkernel.forward_health_check_vip,
            &[],
            NOT_WINDOWS,
        );
    }
    if let Some(detect) = &config.detect_local {
        let why = "kube-ipvs tells local traffic by clusterCIDR only";
        check(
            &mut out,
            "detectLocal.bridgeInterface",
            &detect.bridge_interface,
            &[],
            why,
        );
        check(
            &mut out,
            "detectLocal.interfaceNamePrefix",
            &detect.interface_name_prefix,
            &[],
            why,
        );
    }
    out
}

fn check(
    out: &mut Vec<Ignored>,
    field: &'static str,
    value: &Option<Value>,
    defaults: &[&str],
    why: &'static str,
) {
    if let Some(value) = value {
        if !is_unset(value, defaults) {
            out.push(Ignored {
                field,
                value: value.to_string(),
                why,
            });
        }
    }
}

/// Zero, empty, false, a zero duration, or one of `defaults` (compared as
/// text, so `14` matches the number 14).
fn is_unset(value: &Value, defaults: &[&str]) -> bool {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0) || defaults.contains(&text.as_str()),
        Value::String(s) => s.is_empty() || s == "0s" || s == "0" || defaults.contains(&s.as_str()),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The `config.conf` of kubeadm's `kube-proxy` ConfigMap (kubeadm
    /// 1.31), with `mode: ipvs` as a user switching to IPVS sets it.
    pub(crate) const KUBEADM_CONFIG: &str = r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
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
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
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
"#;

    #[test]
    fn kubeadms_config_parses_and_nothing_in_it_is_worth_a_warning() {
        let config = parse(KUBEADM_CONFIG).unwrap();
        assert_eq!(config.mode.as_deref(), Some("ipvs"));
        assert_eq!(config.cluster_cidr.as_deref(), Some("10.244.0.0/16"));
        let client = config.client_connection.as_ref().unwrap();
        assert_eq!(
            client.kubeconfig.as_deref(),
            Some("/var/lib/kube-proxy/kubeconfig.conf")
        );
        let ipvs = config.ipvs.as_ref().unwrap();
        assert_eq!(ipvs.strict_arp, Some(false));
        assert_eq!(ipvs.exclude_cidrs, None);
        assert_eq!(ipvs.tcp_timeout.as_deref(), Some("0s"));
        let conntrack = config.conntrack.as_ref().unwrap();
        assert_eq!(conntrack.max_per_core, None);
        assert_eq!(conntrack.tcp_established_timeout, None);
        assert_eq!(ignored_fields(&config), vec![]);
    }

    #[test]
    fn the_same_config_as_json_parses() {
        let value: Value = serde_saphyr::from_str(KUBEADM_CONFIG).unwrap();
        let config = parse(&serde_json::to_string_pretty(&value).unwrap()).unwrap();
        assert_eq!(config.cluster_cidr.as_deref(), Some("10.244.0.0/16"));
        assert_eq!(config.kind.as_deref(), Some(KIND));
    }

    #[test]
    fn an_unknown_field_is_refused_by_its_path() {
        let text = KUBEADM_CONFIG.replace("  strictARP: false", "  strictArp: true");
        let error = parse(&text).unwrap_err();
        assert_eq!(error.field, "ipvs.strictArp");
        assert!(
            error.message.contains("unknown field `strictArp`"),
            "{error}"
        );
        let error =
            parse(&format!("{KUBEADM_CONFIG}resourceContainer: /kube-proxy\n")).unwrap_err();
        assert_eq!(error.field, "resourceContainer");
        let error = parse(&KUBEADM_CONFIG.replace("    text:", "    txt:")).unwrap_err();
        assert_eq!(error.field, "logging.options.txt");
    }

    #[test]
    fn a_wrong_type_or_kind_is_refused() {
        let error =
            parse(&KUBEADM_CONFIG.replace("  strictARP: false", "  strictARP: maybe")).unwrap_err();
        assert_eq!(error.field, "ipvs.strictARP");
        let error = parse(&KUBEADM_CONFIG.replace(
            "kubeproxy.config.k8s.io/v1alpha1",
            "kubeproxy.config.k8s.io/v1alpha2",
        ))
        .unwrap_err();
        assert_eq!(error.field, "apiVersion");
        let error = parse(&KUBEADM_CONFIG.replace("kind: KubeProxyConfiguration", "kind: Pod"))
            .unwrap_err();
        assert_eq!(error.field, "kind");
        assert_eq!(parse("").unwrap_err().message, "the file is empty");
        assert!(parse("{").unwrap_err().message.starts_with("not JSON"));
    }

    #[test]
    fn only_settings_away_from_their_defaults_are_reported_as_ignored() {
        let text = KUBEADM_CONFIG
            .replace(
                "  masqueradeBit: null\n  minSyncPeriod: 0s\n  syncPeriod: 0s\nipvs:",
                "  masqueradeBit: 15\n  minSyncPeriod: 0s\n  syncPeriod: 0s\nipvs:",
            )
            .replace("oomScoreAdj: null", "oomScoreAdj: -999")
            .replace("bindAddress: 0.0.0.0", "bindAddress: 192.0.2.1")
            .replace("  networkName: \"\"", "  networkName: cbr0");
        let config = parse(&text).unwrap();
        let fields: Vec<&str> = ignored_fields(&config).iter().map(|i| i.field).collect();
        assert_eq!(
            fields,
            vec![
                "bindAddress",
                "iptables.masqueradeBit",
                "winkernel.networkName"
            ]
        );
        assert_eq!(
            ignored_fields(&config)[1].to_string(),
            "iptables.masqueradeBit=15 is ignored: kube-ipvs always marks with bit 14 (0x4000)"
        );
    }
}
