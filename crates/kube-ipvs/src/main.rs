//! `kube-ipvs`: the node daemon. Parses flags, picks the cluster-state
//! source, and hands over to the runtime's sync loop.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{ArgAction, Parser};
use ipnet::IpNet;
use kipvs_netlink::Counters;
use kipvs_planner::NodeConfig;
use kipvs_runtime::{parse_duration, Dataplane, SyncConfig};
use tracing_subscriber::EnvFilter;

/// An IPVS-native Kubernetes service proxy. Flags take kube-proxy's names
/// where the concept is the same.
#[derive(Debug, Parser)]
#[command(name = "kube-ipvs", version)]
struct Args {
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
    #[arg(long, default_value = "rr", value_name = "NAME")]
    ipvs_scheduler: String,
    /// Full resync period, which also repairs drift.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    sync_period: Duration,
    /// Shortest time between two syncs (coalesces bursts of changes).
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    min_sync_period: Duration,
    /// Remove everything kube-ipvs created and exit.
    #[arg(long)]
    cleanup: bool,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.verbose);
    let counters = Counters::default();
    if args.cleanup {
        let mut dataplane = Dataplane::open(counters).await?;
        let report = dataplane.cleanup().await?;
        tracing::info!(?report, "cleanup done");
        return Ok(());
    }
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
        },
        sync_period: args.sync_period,
        min_sync_period: args.min_sync_period,
    };
    match kipvs_runtime::run(config, snapshots, counters, shutdown_signal()).await {
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
