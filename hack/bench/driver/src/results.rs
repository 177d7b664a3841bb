//! The raw figures one VM run writes (`raw.json` in the results
//! directory), and the planner figures criterion writes on the host.

use std::{fs, io, path::Path};

use serde::{Deserialize, Serialize};

use crate::sync_line::SyncLine;

/// Everything one `make bench` run measured in the VM.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunResults {
    pub machine: Machine,
    /// One entry per size, in the order they ran (ascending).
    pub sizes: Vec<SizeResults>,
}

/// Where the figures were made.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// `uname -r` of the guest.
    pub kernel: String,
    /// CPUs the guest sees.
    pub cpus: usize,
    /// Guest memory (MemTotal), MiB.
    pub memory_mib: u64,
    /// When the guest started the run (UTC, RFC 3339).
    pub started: String,
    /// The daemon binary that ran, as given to the driver.
    pub daemon: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SizeResults {
    pub services: usize,
    pub endpoints_per_service: usize,
    pub reference: Reference,
    pub cold: DaemonStart,
    /// One per endpoint change, in order.
    pub changes: Vec<Change>,
    /// Peak RSS of the first daemon after all the changes, KiB.
    pub vm_hwm_after_changes_kib: u64,
    /// A second daemon started on the programmed kernel: its first sync is
    /// a full resync (everything read back) with nothing to change.
    pub resync: DaemonStart,
    /// `ipvsadm -Sn` on the state kube-ipvs programmed.
    pub readback_of_kube_ipvs_state: ToolRun,
}

/// The kernel's own tools programming the same state, each timed on its
/// own, in a fresh network namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reference {
    /// `ipvsadm -R`: the virtual services and real servers.
    pub ipvsadm_restore: ToolRun,
    /// `ipset restore`: `KUBE-CLUSTER-IP` with one entry per service.
    pub ipset_restore: ToolRun,
    /// `ip -batch`: the cluster IPs on `kube-ipvs0`.
    pub ip_batch: ToolRun,
    /// `ipvsadm -Sn`: reading the IPVS table back.
    pub ipvsadm_save: ToolRun,
}

impl Reference {
    /// The three programming tools together, seconds.
    pub fn programming_s(&self) -> f64 {
        self.ipvsadm_restore.seconds + self.ipset_restore.seconds + self.ip_batch.seconds
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolRun {
    pub seconds: f64,
    /// Lines the tool printed (the read-back's size, as a check).
    pub output_lines: usize,
}

/// A daemon started on the manifests directory, up to its first sync.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DaemonStart {
    /// From spawning the process to its first sync line.
    pub wall_s: f64,
    /// From spawning the process to "initial cluster state read".
    pub manifests_read_s: f64,
    pub sync: SyncLine,
    /// Of the first sync's read-back, the part spent reading IPVS (from
    /// the daemon's "kernel read back" line; absent from older daemons).
    #[serde(default)]
    pub ipvs_read_ms: Option<u64>,
    /// `VmHWM` (peak RSS) right after the first sync line, KiB.
    pub vm_hwm_kib: u64,
    /// `VmRSS` at the same moment, KiB.
    pub vm_rss_kib: u64,
}

/// One endpoint replaced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Change {
    /// The sync that applied it.
    pub sync: SyncLine,
    /// From the manifest rename to the sync line: includes the manifests
    /// source's poll (every 500 ms) and its re-read of the changed file.
    pub wall_ms: f64,
    /// The sync right after, which deletes the real server the change set
    /// to weight 0 once its connection counters, read again, show none.
    pub retirement: Option<SyncLine>,
}

impl RunResults {
    pub fn read(path: &Path) -> io::Result<RunResults> {
        let text = fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(io::Error::other)
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        fs::write(path, text + "\n")
    }
}

/// The median and the maximum of `values` (`None` when empty).
pub fn median_max(values: &[f64]) -> Option<(f64, f64)> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    };
    Some((median, sorted[sorted.len() - 1]))
}

/// One planner benchmark's mean time, from criterion's
/// `target/criterion/<group>/<bench>/new/estimates.json`.
pub fn criterion_mean_ns(criterion_dir: &Path, group: &str, bench: &str) -> Option<f64> {
    let path = criterion_dir
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let text = fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["mean"]["point_estimate"].as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median_max(&[3.0, 1.0, 2.0]), Some((2.0, 3.0)));
        assert_eq!(median_max(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 4.0)));
        assert_eq!(median_max(&[]), None);
    }

    #[test]
    fn criterion_estimates_are_read_from_the_mean() {
        let dir = std::env::temp_dir().join(format!("kipvs-bench-crit-{}", std::process::id()));
        let bench = dir.join("planner_noop").join("1000").join("new");
        fs::create_dir_all(&bench).unwrap();
        fs::write(
            bench.join("estimates.json"),
            r#"{"mean":{"confidence_interval":{},"point_estimate":1234.5,"standard_error":1.0}}"#,
        )
        .unwrap();
        assert_eq!(
            criterion_mean_ns(&dir, "planner_noop", "1000"),
            Some(1234.5)
        );
        assert_eq!(criterion_mean_ns(&dir, "planner_noop", "10"), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
