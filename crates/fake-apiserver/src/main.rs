//! `fake-apiserver --listen 127.0.0.1:6443 [--kubeconfig-out PATH]`: serves the fake Kubernetes
//! API until killed. Objects are written with curl, e.g.
//! `curl -X POST -d @svc.json http://127.0.0.1:6443/api/v1/namespaces/default/services`.
//! Set `RUST_LOG=debug` to log every request.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use kipvs_fake_apiserver::FakeApiServer;

#[derive(Parser)]
#[command(
    about = "A fake Kubernetes API server (Services, EndpointSlices, Nodes) speaking list/watch"
)]
struct Args {
    /// Address to serve plain HTTP on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Write a kubeconfig (no auth, current-context set) pointing at this server here.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let server = FakeApiServer::start_on(args.listen).await?;
    if let Some(path) = &args.kubeconfig_out {
        std::fs::write(path, server.kubeconfig_yaml())?;
    }
    // Printed (not only logged) so that scripts can wait for it.
    println!("fake-apiserver listening on {}", server.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
