//! `kube-ipvs`: the node daemon. Reads its settings (flags over
//! kube-proxy's config file), makes the node settings, picks the
//! cluster-state source, and hands over to the runtime's sync loop.

mod config_file;
mod flags;
mod list;
mod logging;
mod settings;

use std::path::Path;

use anyhow::Context;
use clap::{error::ErrorKind, CommandFactory, Parser};
use flags::Flags;
use kipvs_netlink::Counters;
use kipvs_planner::NodeConfig;
use kipvs_runtime::{Metrics, NetlinkKernel, ProxyHealth, SyncConfig};
use settings::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    if let Some(flags::Command::List(list)) = &flags.command {
        return list::run(list).await;
    }
    let config_path = flags.config.clone();
    let file = config_path.as_deref().map(|path| {
        read_config(path)
            .unwrap_or_else(|e| usage_error(&format!("--config {}: {e}", path.display())))
    });
    let (settings, warnings) = settings::resolve(flags, file).unwrap_or_else(|e| {
        match (&config_path, e.field.starts_with("--")) {
            (Some(path), false) => usage_error(&format!("--config {}: {e}", path.display())),
            _ => usage_error(&e.to_string()),
        }
    });
    logging::init(settings.log_level, settings.log_format);
    let config_name = config_path.as_deref().map(|p| p.display().to_string());
    for warning in &warnings {
        tracing::warn!(
            config = config_name.as_deref().unwrap_or("flags"),
            "{warning}"
        );
    }
    let counters = Counters::default();
    if settings.cleanup {
        let mut kernel = NetlinkKernel::open(counters).await?;
        let report = kernel.cleanup(&settings.exclude_cidrs).await?;
        tracing::info!(?report, "cleanup done");
        return Ok(());
    }
    if settings.init_only {
        // Opening the IPVS client looks the genl family up, which makes
        // the kernel load ip_vs: net.ipv4.vs.* exist only after that.
        NetlinkKernel::open(counters.clone()).await?;
        for (name, value) in kipvs_runtime::SYSCTLS {
            kipvs_netlink::set_sysctl(name, value)?;
        }
        kipvs_runtime::apply_node_settings(&settings.node, counters).await;
        tracing::info!("sysctls and node settings made; run again without --init-only");
        return Ok(());
    }
    let node_name = match settings.node_name.clone() {
        Some(name) => name,
        None => hostname().context("no --node-name and no hostname")?,
    };
    let node = kipvs_runtime::apply_node_settings(&settings.node, counters.clone()).await;
    tracing::info!(
        version = %env!("CARGO_PKG_VERSION"),
        ipvs = %node.ipvs_version.as_deref().unwrap_or("unknown"),
        node = %node_name,
        settings = %settings.summary(),
        "kube-ipvs starting"
    );
    run(settings, node_name, counters).await
}

async fn run(settings: Settings, node_name: String, counters: Counters) -> anyhow::Result<()> {
    let (snapshots, source) = match &settings.manifests {
        Some(dir) => {
            let (rx, driver) = kipvs_cluster::manifests_source(dir.clone(), &node_name);
            (
                rx,
                Box::pin(driver) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>,
            )
        }
        None => {
            let client =
                kube_client(settings.kubeconfig.as_deref(), settings.master.as_deref()).await?;
            let (rx, driver) = kipvs_cluster::kube_source(client, &node_name);
            (rx, Box::pin(driver) as _)
        }
    };
    let source = tokio::spawn(source);
    let config = SyncConfig {
        node: NodeConfig {
            node_name,
            cluster_cidrs: settings.cluster_cidrs,
            masquerade_all: settings.masquerade_all,
            scheduler: settings.scheduler,
            nodeport_addresses: settings.nodeport_addresses,
            exclude_cidrs: settings.exclude_cidrs,
            max_service_addresses: settings.max_service_addresses,
            max_virtual_services: settings.max_virtual_services,
            ..NodeConfig::new("")
        },
        sync_period: settings.sync_period,
        min_sync_period: settings.min_sync_period,
        graceful_period: settings.graceful_period,
    };
    // kube-proxy's health timeout: a change not applied within two sync
    // periods makes the proxy unhealthy.
    let health = ProxyHealth::new(settings.sync_period.saturating_mul(2));
    if let Some(address) = settings.healthz_bind_address {
        tokio::spawn(kipvs_runtime::serve_healthz(address, health.clone()));
    }
    let metrics = Metrics::new(counters.clone());
    if let Some(address) = settings.metrics_bind_address {
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

fn read_config(path: &Path) -> Result<config_file::KubeProxyConfiguration, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    config_file::parse(&text).map_err(|e| e.to_string())
}

/// The API client: the kubeconfig (flag or config file), else
/// `$KUBECONFIG` or the in-cluster service account; `--master` replaces
/// the server URL of either, as kube-proxy's does, so a pod can reach the
/// API server directly before any service address is programmed.
async fn kube_client(
    kubeconfig: Option<&Path>,
    master: Option<&str>,
) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => match (kube::Config::infer().await, master) {
            (Ok(config), _) => config,
            // No credentials anywhere: an unauthenticated client of the
            // given URL (kube-proxy's behaviour with only --master).
            (Err(_), Some(url)) => kube::Config::new(
                url.parse()
                    .with_context(|| format!("--master {url:?} is not a URL"))?,
            ),
            (Err(error), None) => return Err(error.into()),
        },
    };
    if let Some(url) = master {
        config.cluster_url = url
            .parse()
            .with_context(|| format!("--master {url:?} is not a URL"))?;
    }
    Ok(kube::Client::try_from(config)?)
}

/// A command-line or config-file error found after parsing: reported like
/// clap's own (usage, exit status 2).
fn usage_error(message: &str) -> ! {
    Flags::command()
        .error(ErrorKind::ValueValidation, message)
        .exit()
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
    (!name.is_empty()).then(|| name.to_lowercase())
}
