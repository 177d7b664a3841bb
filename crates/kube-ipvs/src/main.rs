//! `kube-ipvs`: the node daemon. Parses flags, picks the cluster-state
//! source, and hands over to the runtime's sync loop.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use anyhow::Context;
use clap::{error::ErrorKind, ArgAction, CommandFactory, Parser};
use ipnet::IpNet;
use kipvs_netlink::Counters;
use kipvs_planner::{NodeConfig, NodePortAddresses};
use kipvs_runtime::{parse_duration, Metrics, NetlinkKernel, ProxyHealth, SyncConfig};
use tracing_subscriber::EnvFilter;

mod list;

/// An IPVS-native Kubernetes service proxy. Flags take kube-proxy's names
/// where the concept is the same.
#[derive(Debug, Parser)]
#[command(name = "kube-ipvs", version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Kubeconfig file for the Kubernetes API (else $KUBECONFIG, else the
    /// in-cluster service account).
    #[arg(long, value_name = "PATH", conflicts_with = "manifests")]
    kubeconfig: Option<PathBuf>,
    /// Read Services, EndpointSlices and Nodes from the YAML files in DIR
    /// instead of the API; changes are picked up within about a second.
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// This node's name: its endpoints are the local ones.
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    node_name: Option<String>,
    /// Pod ranges; traffic to a service from outside them is masqueraded.
    #[arg(long, value_name = "CIDR[,CIDR]", value_delimiter = ',')]
    cluster_cidr: Vec<IpNet>,
    /// Masquerade all traffic to services.
    #[arg(long)]
    masquerade_all: bool,
    /// IPVS scheduler of every virtual service.
    #[arg(long, default_value = "rr", value_parser = parse_scheduler, value_name = "NAME")]
    ipvs_scheduler: String,
    /// A list of CIDR ranges that contain valid node IPs, or alternatively,
    /// the single string 'primary'. If set, connections to NodePort
    /// services will only be accepted on the specified node IPs. If unset,
    /// NodePort connections will be accepted on all local IPs.
    #[arg(long, value_name = "CIDR[,CIDR]|primary", value_delimiter = ',')]
    nodeport_addresses: Vec<String>,
    /// The IP address and port (default port 10256) for the health check
    /// server (/healthz, /livez) to serve on; empty to disable.
    #[arg(long, default_value = "0.0.0.0:10256", value_parser = parse_bind_address, value_name = "IP[:PORT]")]
    healthz_bind_address: BindAddress,
    /// The IP address and port (default port 10249) for the metrics server
    /// (/metrics) to serve on; empty to disable.
    #[arg(long, default_value = "127.0.0.1:10249", value_parser = parse_metrics_bind_address, value_name = "IP[:PORT]")]
    metrics_bind_address: BindAddress,
    /// Full resync period, which also repairs drift.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    sync_period: Duration,
    /// Shortest time between two syncs (coalesces bursts of changes).
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    min_sync_period: Duration,
    /// How long a removed TCP real server may drain at weight 0 before it
    /// is deleted even with connections left.
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    ipvs_graceful_period: Duration,
    /// Remove everything kube-ipvs created and exit.
    #[arg(long)]
    cleanup: bool,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    List(list::ListArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.verbose);
    if let Some(Command::List(list)) = &args.command {
        return list::run(list).await;
    }
    let counters = Counters::default();
    if args.cleanup {
        let mut kernel = NetlinkKernel::open(counters).await?;
        let report = kernel.cleanup(&[]).await?;
        tracing::info!(?report, "cleanup done");
        return Ok(());
    }
    let nodeport_addresses = parse_nodeport_addresses(&args.nodeport_addresses)
        .unwrap_or_else(|e| usage_error(&format!("--nodeport-addresses: {e}")));
    let node_name = match args.node_name {
        Some(name) => name,
        None => hostname().context("no --node-name and no hostname")?,
    };
    let (snapshots, source) = match &args.manifests {
        Some(dir) => {
            let (rx, driver) = kipvs_cluster::manifests_source(dir.clone(), &node_name);
            (
                rx,
                Box::pin(driver) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>,
            )
        }
        None => {
            let client = kube_client(args.kubeconfig.as_deref()).await?;
            let (rx, driver) = kipvs_cluster::kube_source(client, &node_name);
            (rx, Box::pin(driver) as _)
        }
    };
    let source = tokio::spawn(source);
    let config = SyncConfig {
        node: NodeConfig {
            node_name,
            cluster_cidrs: args.cluster_cidr,
            masquerade_all: args.masquerade_all,
            scheduler: args.ipvs_scheduler,
            nodeport_addresses,
            ..NodeConfig::new("")
        },
        sync_period: args.sync_period,
        min_sync_period: args.min_sync_period,
        graceful_period: args.ipvs_graceful_period,
    };
    // kube-proxy's health timeout: a change not applied within two sync
    // periods makes the proxy unhealthy.
    let health = ProxyHealth::new(2 * args.sync_period);
    if let BindAddress(Some(address)) = args.healthz_bind_address {
        tokio::spawn(kipvs_runtime::serve_healthz(address, health.clone()));
    }
    let metrics = Metrics::new(counters.clone());
    if let BindAddress(Some(address)) = args.metrics_bind_address {
        tokio::spawn(kipvs_runtime::serve_metrics(address, metrics.clone()));
    }
    let run = kipvs_runtime::run(
        config,
        health,
        metrics,
        snapshots,
        counters,
        shutdown_signal(),
    );
    match run.await {
        // The source ended: its own error says why (say, no manifests dir).
        Err(kipvs_runtime::RuntimeError::SourceStopped) => match source.await {
            Ok(Err(error)) => Err(error).context("reading the cluster state"),
            _ => Err(kipvs_runtime::RuntimeError::SourceStopped.into()),
        },
        outcome => {
            source.abort();
            Ok(outcome?)
        }
    }
}

async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// A command-line error found after parsing: reported like clap's own
/// (usage, exit status 2).
fn usage_error(message: &str) -> ! {
    Args::command()
        .error(ErrorKind::ValueValidation, message)
        .exit()
}

/// `--ipvs-scheduler`: one of the kernel's schedulers; anything else is
/// refused at startup rather than on every virtual service.
fn parse_scheduler(name: &str) -> Result<String, String> {
    kipvs_planner::validate_scheduler(name).map(|()| name.to_owned())
}

/// `--nodeport-addresses`: CIDRs, or the single word `primary`; none (or
/// an empty flag) means every node address.
fn parse_nodeport_addresses(values: &[String]) -> Result<NodePortAddresses, String> {
    let values: Vec<&str> = values
        .iter()
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .collect();
    match values[..] {
        [] => Ok(NodePortAddresses::All),
        ["primary"] => Ok(NodePortAddresses::Primary),
        _ => values
            .iter()
            .map(|value| match value.parse::<ipnet::IpNet>() {
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

/// Where the health check server listens; `None` (an empty flag) turns it
/// off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BindAddress(Option<SocketAddr>);

/// kube-proxy's port for `/healthz` when the flag gives only an address.
const HEALTHZ_PORT: u16 = 10256;

/// `IP:PORT`, `[IPv6]:PORT`, a bare IP (port 10256) or the empty string.
fn parse_bind_address(value: &str) -> Result<BindAddress, String> {
    parse_bind_address_or(value, HEALTHZ_PORT)
}

/// kube-proxy's port for `/metrics` when the flag gives only an address.
const METRICS_PORT: u16 = 10249;

/// As [`parse_bind_address`], a bare IP getting port 10249.
fn parse_metrics_bind_address(value: &str) -> Result<BindAddress, String> {
    parse_bind_address_or(value, METRICS_PORT)
}

fn parse_bind_address_or(value: &str, default_port: u16) -> Result<BindAddress, String> {
    if value.is_empty() {
        return Ok(BindAddress(None));
    }
    if let Ok(address) = value.parse::<SocketAddr>() {
        return Ok(BindAddress(Some(address)));
    }
    match value.parse::<IpAddr>() {
        Ok(ip) => Ok(BindAddress(Some(SocketAddr::new(ip, default_port)))),
        Err(_) => Err(format!("{value:?} is not IP:PORT, an IP, or empty")),
    }
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The kernel's hostname, without running `hostname`.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn nodeport_addresses_are_cidrs_or_primary() {
        assert_eq!(parse_nodeport_addresses(&[]), Ok(NodePortAddresses::All));
        assert_eq!(
            parse_nodeport_addresses(&strings(&["primary"])),
            Ok(NodePortAddresses::Primary)
        );
        assert_eq!(
            parse_nodeport_addresses(&strings(&["192.168.77.9/24", "fd00::/64"])),
            Ok(NodePortAddresses::Cidrs(vec![
                "192.168.77.0/24".parse().unwrap(),
                "fd00::/64".parse().unwrap()
            ]))
        );
        assert_eq!(
            parse_nodeport_addresses(&strings(&["primary", "10.0.0.0/8"])),
            Err("'primary' cannot be combined with CIDRs".to_owned())
        );
        assert_eq!(
            parse_nodeport_addresses(&strings(&["10.0.0.0/33"])),
            Err("invalid CIDR \"10.0.0.0/33\"".to_owned())
        );
    }

    #[test]
    fn nodeport_addresses_flag_takes_a_comma_list() {
        let args =
            Args::try_parse_from(["kube-ipvs", "--nodeport-addresses", "10.0.0.0/8,fd00::/64"])
                .unwrap();
        assert_eq!(
            args.nodeport_addresses,
            strings(&["10.0.0.0/8", "fd00::/64"])
        );
    }

    #[test]
    fn an_unknown_scheduler_is_refused_at_startup() {
        let args = Args::try_parse_from(["kube-ipvs", "--ipvs-scheduler", "mh"]).unwrap();
        assert_eq!(args.ipvs_scheduler, "mh");
        let error = Args::try_parse_from(["kube-ipvs", "--ipvs-scheduler", "fastest"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        assert!(
            error
                .to_string()
                .contains("unknown IPVS scheduler \"fastest\""),
            "{error}"
        );
    }

    #[test]
    fn healthz_bind_address_defaults_and_can_be_disabled() {
        let default = Args::try_parse_from(["kube-ipvs"]).unwrap();
        assert_eq!(
            default.healthz_bind_address,
            BindAddress(Some("0.0.0.0:10256".parse().unwrap()))
        );
        let off = Args::try_parse_from(["kube-ipvs", "--healthz-bind-address", ""]).unwrap();
        assert_eq!(off.healthz_bind_address, BindAddress(None));
        assert_eq!(
            parse_bind_address("::1"),
            Ok(BindAddress(Some("[::1]:10256".parse().unwrap())))
        );
        assert_eq!(
            parse_bind_address("[::]:9000"),
            Ok(BindAddress(Some("[::]:9000".parse().unwrap())))
        );
        assert!(parse_bind_address("localhost:1").is_err());
    }

    #[test]
    fn metrics_bind_address_is_kube_proxys() {
        let default = Args::try_parse_from(["kube-ipvs"]).unwrap();
        assert_eq!(
            default.metrics_bind_address,
            BindAddress(Some("127.0.0.1:10249".parse().unwrap()))
        );
        let off = Args::try_parse_from(["kube-ipvs", "--metrics-bind-address", ""]).unwrap();
        assert_eq!(off.metrics_bind_address, BindAddress(None));
        assert_eq!(
            parse_metrics_bind_address("0.0.0.0"),
            Ok(BindAddress(Some("0.0.0.0:10249".parse().unwrap())))
        );
    }

    #[test]
    fn list_is_a_subcommand_with_an_output_format() {
        let args = Args::try_parse_from(["kube-ipvs", "list", "-o", "json"]).unwrap();
        assert!(matches!(args.command, Some(Command::List(_))));
        assert!(Args::try_parse_from(["kube-ipvs", "list", "-o", "yaml"]).is_err());
    }
}
