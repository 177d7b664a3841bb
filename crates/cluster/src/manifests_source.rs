//! The offline source: a directory of manifest files, polled for changes. Polling (rather than
//! inotify) needs no extra dependency and also sees ConfigMap volume updates, which swap a
//! symlinked directory underneath unchanged file names.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::manifest::{assemble, parse_manifest, ManifestObject};
use crate::{ClusterError, Snapshot, SnapshotReceiver};

/// How often the directory is compared with what was last read.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Watches `dir` (not recursively) for `*.yaml`/`*.yml` manifests and publishes a snapshot for
/// node `node_name` after the first full read, then whenever the parsed content changes.
///
/// Documents that do not parse are logged and skipped. The directory must be readable at the
/// first read (else the future returns [`ClusterError::ManifestsDir`]); afterwards read failures
/// are logged and the last snapshot stays. Hidden files (names starting with `.`, e.g. editor swap
/// files and the `..data` links of ConfigMap volumes) are ignored. The future runs until dropped.
pub fn manifests_source(
    dir: PathBuf,
    node_name: &str,
) -> (
    SnapshotReceiver,
    impl Future<Output = Result<(), ClusterError>> + Send + 'static,
) {
    let (sender, receiver) = watch::channel(None);
    let node_name = node_name.to_string();
    let driver = async move {
        let mut files = BTreeMap::new();
        let mut first_read = true;
        let mut dir_error_logged = false;
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let scan_dir = dir.clone();
            let (scanned, changed) = tokio::task::spawn_blocking(move || {
                let changed = rescan(&scan_dir, &mut files);
                (files, changed)
            })
            .await?;
            files = scanned;
            let changed = match changed {
                Ok(changed) => {
                    dir_error_logged = false;
                    changed
                }
                Err(source) if first_read => {
                    return Err(ClusterError::ManifestsDir {
                        path: dir.clone(),
                        source,
                    })
                }
                Err(error) => {
                    if !dir_error_logged {
                        tracing::warn!(dir = %dir.display(), %error, "cannot read the manifests directory; keeping the last snapshot");
                        dir_error_logged = true;
                    }
                    false
                }
            };
            if changed || first_read {
                first_read = false;
                let snapshot = assemble(files.values().flat_map(|f| &f.objects), &node_name);
                publish(&sender, snapshot);
            }
        }
    };
    (receiver, driver)
}

/// Publishes `snapshot` unless the current one has the same content.
pub(crate) fn publish(sender: &watch::Sender<Option<Arc<Snapshot>>>, snapshot: Snapshot) -> bool {
    sender.send_if_modified(|current| {
        if current.as_deref() == Some(&snapshot) {
            return false;
        }
        *current = Some(Arc::new(snapshot));
        true
    })
}

/// What was read from one file, and the metadata it was read at.
struct ManifestFile {
    len: u64,
    modified: Option<SystemTime>,
    objects: Vec<ManifestObject>,
}

/// Brings `files` up to date with the directory, re-reading only files whose size or
/// modification time changed. Returns whether anything was added, changed or removed.
fn rescan(dir: &Path, files: &mut BTreeMap<String, ManifestFile>) -> std::io::Result<bool> {
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_manifest = name.ends_with(".yaml") || name.ends_with(".yml");
        if !is_manifest || name.starts_with('.') {
            continue;
        }
        // `metadata` follows symlinks: ConfigMap volumes are symlinks into a hidden directory.
        match std::fs::metadata(entry.path()) {
            Ok(metadata) if metadata.is_file() => {
                seen.insert(name, (metadata.len(), metadata.modified().ok()));
            }
            Ok(_) => {}
            // Removed between the listing and now, or a dangling link: not a manifest (now).
            Err(error) => tracing::debug!(file = %name, %error, "skipping"),
        }
    }

    let before = files.len();
    files.retain(|name, _| seen.contains_key(name));
    let mut changed = files.len() != before;
    for (name, (len, modified)) in seen {
        if let Some(known) = files.get(&name) {
            if known.len == len && known.modified == modified {
                continue;
            }
        }
        changed = true;
        let path = dir.join(&name);
        let objects = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let (objects, errors) = parse_manifest(&name, &text);
                for error in errors {
                    tracing::warn!(file = %path.display(), line = error.line, reason = %error.reason, "skipping a manifest document");
                }
                objects
            }
            Err(error) => {
                // Keep what the file held before (if anything): a transient read failure must
                // not withdraw its services.
                tracing::warn!(file = %path.display(), %error, "cannot read manifest file");
                files
                    .get(&name)
                    .map(|f| f.objects.clone())
                    .unwrap_or_default()
            }
        };
        files.insert(
            name,
            ManifestFile {
                len,
                modified,
                objects,
            },
        );
    }
    Ok(changed)
}
