use std::path::PathBuf;

/// Why a cluster source stopped. Transient problems (API errors, unparsable manifests) are logged
/// and retried instead: they never end a source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The manifests directory could not be listed on the first read (it must exist at startup;
    /// later read failures keep the last snapshot and are retried).
    #[error("cannot read manifests directory {}: {source}", path.display())]
    ManifestsDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A kube-rs watcher stream ended, which it never does by design; reported rather than
    /// silently freezing the snapshot.
    #[error("the {resource} watcher ended unexpectedly")]
    WatcherEnded { resource: &'static str },
    /// The blocking task polling the manifests directory panicked or was cancelled.
    #[error("the manifests polling task failed: {0}")]
    PollTask(#[from] tokio::task::JoinError),
}
