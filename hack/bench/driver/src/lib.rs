//! `make bench`: kube-ipvs against the kernel's own tools at 100, 1 000
//! and 10 000 services, in one VM run.
//!
//! - [`cluster`]: the generated cluster (manifests, and the same state as
//!   `ipvsadm -R` / `ipset restore` / `ip -batch` input);
//! - [`guest`]: the driver that measures inside the VM;
//! - [`results`], [`sync_line`]: what it records and how it reads the
//!   daemon's log;
//! - [`report`], [`plot`]: the table and the log-log plot, on the host.

pub mod cluster;
pub mod guest;
pub mod plot;
pub mod report;
pub mod results;
pub mod sync_line;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(String),
    #[error("{0}")]
    Check(String),
    #[error("plot: {0}")]
    Plot(String),
}

impl BenchError {
    pub fn json(error: serde_json::Error) -> Self {
        BenchError::Json(error.to_string())
    }
}

pub type Result<T, E = BenchError> = std::result::Result<T, E>;
