//! `target/bench/report.md`: one row per size, one column per figure, the
//! ratios to the kernel's own tools, and each goal marked met or missed.

use std::fmt::Write as _;

use crate::results::{median_max, RunResults, SizeResults};
use crate::sync_line::SyncLine;

/// Planner-only figures measured on the host (criterion), per size.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PlannerFigures {
    /// `desired` + `plan` against a kernel that already matches, ms.
    pub noop_ms: Option<f64>,
    /// The same with one endpoint replaced, ms.
    pub change_ms: Option<f64>,
    /// That change folded into the previous desired state
    /// (`Desired::update`) and planned where it touched (`plan_scoped`):
    /// what the daemon's planner does for it, ms.
    pub incremental_ms: Option<f64>,
    /// `plan` alone against an empty kernel (the cold sync's plan), ms.
    pub cold_plan_ms: Option<f64>,
}

/// What the report says about where the run came from.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub commit: String,
    pub host: String,
    pub command: String,
    pub note: String,
}

/// The goals of the benchmark.
pub const COLD_SYNC_GOAL: f64 = 0.5;
pub const CHANGE_GROWTH_GOAL: f64 = 1.2;
pub const RESYNC_GOAL: f64 = 1.0;
pub const RSS_GOAL_MB: f64 = 50.0;

/// The dumps a full resync sends when nothing changed: one per owned
/// virtual service (its real servers) and 8 others (the services, the
/// ipsets, the link, the addresses, and chains and rules of both tables).
pub fn full_resync_reads(virtual_services: u64) -> u64 {
    virtual_services + 8
}

fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1_000_000.0
}

fn secs(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        ms(s * 1000.0)
    }
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        secs(v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else if v >= 1.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.3} ms")
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), ms)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "–".into()
    }
}

/// Per-size figures derived from the raw results.
pub struct Derived<'a> {
    pub size: &'a SizeResults,
    /// Endpoint change: sync elapsed_ms median and max.
    pub change_elapsed: Option<(f64, f64)>,
    /// Endpoint change: rename → sync line, ms, median and max.
    pub change_wall: Option<(f64, f64)>,
    /// Messages of each change sync (all equal when the cost is constant).
    pub change_messages: Vec<u64>,
    pub retirement_elapsed: Option<(f64, f64)>,
    pub retirement_messages: Vec<u64>,
}

impl<'a> Derived<'a> {
    pub fn of(size: &'a SizeResults) -> Self {
        let elapsed: Vec<f64> = size
            .changes
            .iter()
            .map(|c| c.sync.elapsed_ms as f64)
            .collect();
        let wall: Vec<f64> = size.changes.iter().map(|c| c.wall_ms).collect();
        let retirements: Vec<_> = size
            .changes
            .iter()
            .filter_map(|c| c.retirement.as_ref())
            .collect();
        let retirement_elapsed: Vec<f64> =
            retirements.iter().map(|r| r.elapsed_ms as f64).collect();
        let mut change_messages: Vec<u64> =
            size.changes.iter().map(|c| c.sync.messages_sent).collect();
        change_messages.dedup();
        let mut retirement_messages: Vec<u64> =
            retirements.iter().map(|r| r.messages_sent).collect();
        retirement_messages.dedup();
        Derived {
            size,
            change_elapsed: median_max(&elapsed),
            change_wall: median_max(&wall),
            change_messages,
            retirement_elapsed: median_max(&retirement_elapsed),
            retirement_messages,
        }
    }
}

fn list(values: &[u64]) -> String {
    values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("/")
}

fn median_and_max(v: Option<(f64, f64)>) -> String {
    v.map_or_else(
        || "–".into(),
        |(median, max)| format!("{} ({})", ms(median), ms(max)),
    )
}

/// The main table: one row per size.
pub fn table(run: &RunResults, planner: &[(usize, PlannerFigures)]) -> String {
    let mut out = String::new();
    out.push_str(
        "| services × endpoints | reference: ipvsadm -R + ipset restore + ip -batch | kube-ipvs cold sync (`elapsed_ms`) | ratio to reference | cold sync wall (start → sync line) | of which manifest read | steps / messages | peak RSS after cold sync | endpoint change: sync median (max) | change: wall median (max) | change messages | retirement sync median (max) | full resync, nothing changed | of which read-back | of which IPVS | messages (writes) | `ipvsadm -Sn` | read-back to `ipvsadm -Sn` | peak RSS, restarted daemon | planner (host): no-op | planner: one endpoint | planner: one endpoint, incremental | planner: cold plan |\n",
    );
    out.push_str(
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for size in &run.sizes {
        let d = Derived::of(size);
        let reference = size.reference.programming_s();
        let cold_s = size.cold.sync.elapsed_ms as f64 / 1000.0;
        let resync = &size.resync.sync;
        let writes = resync
            .messages_sent
            .saturating_sub(full_resync_reads(resync.virtual_services));
        let readback = size.reference.ipvsadm_save.seconds;
        let p = planner
            .iter()
            .find(|(n, _)| *n == size.services)
            .map(|(_, p)| *p)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} × {} | {} | {} | {} | {} | {} | {} / {} | {:.0} MB | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {} | {:.0} MB | {} | {} | {} | {} |",
            size.services,
            size.endpoints_per_service,
            secs(reference),
            secs(cold_s),
            ratio(cold_s, reference),
            secs(size.cold.wall_s),
            secs(size.cold.manifests_read_s),
            size.cold.sync.steps,
            size.cold.sync.messages_sent,
            mb(size.cold.vm_hwm_kib),
            median_and_max(d.change_elapsed),
            median_and_max(d.change_wall),
            list(&d.change_messages),
            median_and_max(d.retirement_elapsed),
            ms(resync.elapsed_ms as f64),
            opt_ms(resync.read_ms.map(|v| v as f64)),
            opt_ms(size.resync.ipvs_read_ms.map(|v| v as f64)),
            resync.messages_sent,
            writes,
            secs(readback),
            ratio(read_back_s(resync), readback),
            mb(size.resync.vm_hwm_kib),
            opt_ms(p.noop_ms),
            opt_ms(p.change_ms),
            opt_ms(p.incremental_ms),
            opt_ms(p.cold_plan_ms),
        );
    }
    out
}

/// A full resync's read-back, s: its `read_ms`, or (from a daemon that
/// did not log it) the whole sync.
fn read_back_s(sync: &SyncLine) -> f64 {
    sync.read_ms.unwrap_or(sync.elapsed_ms) as f64 / 1000.0
}

/// The reference broken down by tool.
pub fn reference_table(run: &RunResults) -> String {
    let mut out = String::from(
        "| services | `ipvsadm -R` | `ipset restore` | `ip -batch` | sum | `ipvsadm -Sn` (reference) | `ipvsadm -Sn` (kube-ipvs's state) |\n|---|---|---|---|---|---|---|\n",
    );
    for size in &run.sizes {
        let r = &size.reference;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            size.services,
            secs(r.ipvsadm_restore.seconds),
            secs(r.ipset_restore.seconds),
            secs(r.ip_batch.seconds),
            secs(r.programming_s()),
            secs(r.ipvsadm_save.seconds),
            secs(size.readback_of_kube_ipvs_state.seconds),
        );
    }
    out
}

/// One goal's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub goal: &'static str,
    pub met: Option<bool>,
    pub detail: String,
}

/// Each goal, judged at the largest size run (and, for the endpoint
/// change, against the smallest).
pub fn verdicts(run: &RunResults) -> Vec<Verdict> {
    let (Some(small), Some(large)) = (run.sizes.first(), run.sizes.last()) else {
        return Vec::new();
    };
    let n = large.services;
    let mut verdicts = Vec::new();

    let cold = large.cold.sync.elapsed_ms as f64 / 1000.0;
    let reference = large.reference.programming_s();
    verdicts.push(Verdict {
        goal: "cold sync ≤ 0.5× the reference",
        met: Some(cold <= COLD_SYNC_GOAL * reference),
        detail: format!(
            "{n} services: {} vs {} ({}; goal {COLD_SYNC_GOAL}×)",
            secs(cold),
            secs(reference),
            ratio(cold, reference)
        ),
    });

    let (ds, dl) = (Derived::of(small), Derived::of(large));
    let growth = match (ds.change_elapsed, dl.change_elapsed) {
        (Some((a, _)), Some((b, _))) => Some((a, b)),
        _ => None,
    };
    let same_messages = ds.change_messages.len() == 1 && ds.change_messages == dl.change_messages;
    verdicts.push(Verdict {
        goal: "endpoint change: median at the largest size ≤ 1.2× the smallest, same messages",
        met: growth.map(|(a, b)| b <= CHANGE_GROWTH_GOAL * a.max(1.0) && same_messages),
        detail: match growth {
            Some((a, b)) => format!(
                "{} services {} vs {} services {} ({}); messages {} vs {}",
                large.services,
                ms(b),
                small.services,
                ms(a),
                ratio(b, a.max(1.0)),
                list(&dl.change_messages),
                list(&ds.change_messages)
            ),
            None => "no endpoint change measured".into(),
        },
    });

    let resync = &large.resync.sync;
    let writes = resync
        .messages_sent
        .saturating_sub(full_resync_reads(resync.virtual_services));
    let readback = large.reference.ipvsadm_save.seconds;
    let read_s = read_back_s(resync);
    verdicts.push(Verdict {
        goal: "no-op full resync: 0 writes, read-back ≤ 1.0× `ipvsadm -Sn`",
        met: Some(resync.steps == 0 && writes == 0 && read_s <= RESYNC_GOAL * readback),
        detail: format!(
            "{n} services: {} steps, {} messages = {} reads + {writes} writes; read-back {} vs `ipvsadm -Sn` {} ({}); the whole sync, with the desired state computed from every object, {}",
            resync.steps,
            resync.messages_sent,
            full_resync_reads(resync.virtual_services),
            secs(read_s),
            secs(readback),
            ratio(read_s, readback),
            secs(resync.elapsed_ms as f64 / 1000.0),
        ) + &large.resync.ipvs_read_ms.map_or(String::new(), |ipvs_ms| {
            let ipvs_s = ipvs_ms as f64 / 1000.0;
            format!(
                "; of the read-back, IPVS (what `ipvsadm -Sn` reads) {} ({})",
                secs(ipvs_s),
                ratio(ipvs_s, readback)
            )
        }),
    });

    let rss = mb(large.cold.vm_hwm_kib.max(large.vm_hwm_after_changes_kib));
    verdicts.push(Verdict {
        goal: "peak RSS ≤ 50 MB",
        met: Some(rss <= RSS_GOAL_MB),
        detail: format!(
            "{n} services: {rss:.0} MB (restarted daemon, after a full resync: {:.0} MB)",
            mb(large.resync.vm_hwm_kib)
        ),
    });
    verdicts
}

/// The whole report.
pub fn markdown(
    run: &RunResults,
    planner: &[(usize, PlannerFigures)],
    provenance: &Provenance,
) -> String {
    let m = &run.machine;
    let mut out = String::from("# kube-ipvs scale benchmark\n\n");
    let _ = writeln!(
        out,
        "Made by `{}` at commit {} on {} — VM: Linux {}, {} CPUs, {} MiB, run started {}. \
         Daemon: target/release/{} (release build). Each service is a ClusterIP service with one TCP port and {} ready endpoints on another node.\n",
        provenance.command,
        provenance.commit,
        provenance.host,
        m.kernel,
        m.cpus,
        m.memory_mib,
        m.started,
        std::path::Path::new(&m.daemon)
            .file_name()
            .map_or(std::borrow::Cow::Borrowed(""), |name| name.to_string_lossy()),
        run.sizes.first().map_or(0, |s| s.endpoints_per_service),
    );
    if !provenance.note.is_empty() {
        let _ = writeln!(out, "{}\n", provenance.note);
    }
    out.push_str(&table(run, planner));
    out.push_str("\n## Goals\n\n");
    for v in verdicts(run) {
        let mark = match v.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(out, "- {} — {mark}: {}", v.goal, v.detail);
    }
    out.push_str("\n## Reference tools\n\n");
    out.push_str(&reference_table(run));
    out.push_str(
        "\n## How to read it\n\n\
- *cold sync*: kube-ipvs started on the manifests directory with an empty kernel; `elapsed_ms` is the sync's own figure (desired state, read-back, plan, apply), the wall time runs from the process start to the sync line and includes reading the manifests.\n\
- *endpoint change*: endpoint 0 of one service is replaced by rewriting its EndpointSlice file, 10 times; wall time runs from the file's rename to the sync line and includes the manifests source's poll (every 500 ms). The replaced TCP real server first goes to weight 0; the *retirement* sync right after reads its counters again (one dump) and deletes it.\n\
- *full resync, nothing changed*: a second daemon started on the programmed kernel; its first sync reads everything back (*of which read-back*: the sync's `read_ms`, compared with `ipvsadm -Sn`), computes the desired state from every object and plans nothing; *of which IPVS*: the part of the read-back spent on the virtual services and their real servers (the daemon's `kernel read back` line), which is what `ipvsadm -Sn` reads — the rest reads the ipsets, the addresses and the tables. Its messages are requests of any kind; a full read sends one dump per virtual service plus 8, so the writes are the difference.\n\
- *peak RSS*: `VmHWM` of the daemon after its first sync.\n\
- *planner (host)*: criterion, `cargo bench -p kipvs-planner`, on the host, outside the VM: `desired` + `plan` for a kernel that already matches (no-op) and with one endpoint replaced; the same change as the daemon plans it (`Desired::update` of the one changed service into the previous desired state, then `plan_scoped` over what it touched; back and forth between the two states); and `plan` alone against an empty kernel.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        results::{Change, DaemonStart, Reference, ToolRun},
        sync_line::SyncLine,
    };

    fn sync(full: bool, steps: u64, messages: u64, vs: u64, elapsed: u64) -> SyncLine {
        SyncLine {
            full,
            steps,
            failed: 0,
            messages_sent: messages,
            virtual_services: vs,
            elapsed_ms: elapsed,
            read_ms: None,
        }
    }

    fn size(n: usize, cold_ms: u64, change_ms: u64, resync_ms: u64, hwm_kib: u64) -> SizeResults {
        let tool = |seconds| ToolRun {
            seconds,
            output_lines: 0,
        };
        SizeResults {
            services: n,
            endpoints_per_service: 10,
            reference: Reference {
                ipvsadm_restore: tool(n as f64 * 0.004),
                ipset_restore: tool(n as f64 * 0.003),
                ip_batch: tool(n as f64 * 0.001),
                ipvsadm_save: tool(n as f64 * 0.0005),
            },
            cold: DaemonStart {
                wall_s: cold_ms as f64 / 1000.0 + 1.0,
                manifests_read_s: 1.0,
                sync: sync(
                    true,
                    14 * n as u64 + 44,
                    14 * n as u64 + 300,
                    n as u64,
                    cold_ms,
                ),
                ipvs_read_ms: None,
                vm_hwm_kib: hwm_kib,
                vm_rss_kib: hwm_kib / 2,
            },
            changes: (0..10)
                .map(|k| Change {
                    sync: sync(false, 2, 2, n as u64, change_ms + k),
                    wall_ms: 300.0 + change_ms as f64,
                    retirement: Some(sync(false, 1, 2, n as u64, change_ms)),
                })
                .collect(),
            vm_hwm_after_changes_kib: hwm_kib,
            resync: DaemonStart {
                sync: sync(true, 0, n as u64 + 8, n as u64, resync_ms),
                ..DaemonStart::default()
            },
            readback_of_kube_ipvs_state: tool(0.1),
        }
    }

    #[test]
    fn goals_are_judged_at_the_largest_size() {
        let run = RunResults {
            sizes: vec![
                size(100, 400, 10, 20, 20_000),
                size(10_000, 30_000, 11, 4_000, 40_000),
            ],
            ..RunResults::default()
        };
        let judged = verdicts(&run);
        let met: Vec<Option<bool>> = judged.iter().map(|v| v.met).collect();
        // Cold: 30 s vs 80 s reference (0.375×); change 15 vs 14.5 ms;
        // resync 4 s vs 5 s; 41 MB.
        assert_eq!(
            met,
            [Some(true), Some(true), Some(true), Some(true)],
            "{judged:#?}"
        );

        let run = RunResults {
            sizes: vec![
                size(100, 400, 10, 20, 20_000),
                size(10_000, 60_000, 30, 6_000, 300_000),
            ],
            ..RunResults::default()
        };
        let met: Vec<Option<bool>> = verdicts(&run).iter().map(|v| v.met).collect();
        assert_eq!(met, [Some(false), Some(false), Some(false), Some(false)]);
    }

    #[test]
    fn the_resync_goal_compares_the_read_back_when_the_daemon_logs_it() {
        // The whole sync (6 s) is over `ipvsadm -Sn` (5 s); its read-back
        // (4.5 s) is not.
        let mut large = size(10_000, 30_000, 11, 6_000, 40_000);
        let run = |large: SizeResults| RunResults {
            sizes: vec![size(100, 400, 10, 20, 20_000), large],
            ..RunResults::default()
        };
        assert_eq!(verdicts(&run(large.clone()))[2].met, Some(false));
        large.resync.sync.read_ms = Some(4_500);
        large.resync.ipvs_read_ms = Some(4_000);
        let resync = &verdicts(&run(large))[2];
        assert_eq!(resync.met, Some(true), "{}", resync.detail);
        assert!(
            resync
                .detail
                .contains("read-back 4.50 s vs `ipvsadm -Sn` 5.00 s (0.90×)"),
            "{}",
            resync.detail
        );
    }

    #[test]
    fn writes_of_a_full_resync_are_what_is_left_after_the_reads() {
        let mut large = size(10_000, 30_000, 11, 4_000, 40_000);
        large.resync.sync.messages_sent += 3;
        let run = RunResults {
            sizes: vec![size(100, 400, 10, 20, 20_000), large],
            ..RunResults::default()
        };
        let resync = &verdicts(&run)[2];
        assert_eq!(resync.met, Some(false));
        assert!(
            resync
                .detail
                .contains("10011 messages = 10008 reads + 3 writes"),
            "{}",
            resync.detail
        );
    }

    #[test]
    fn the_table_has_one_row_per_size_and_as_many_cells_as_columns() {
        let run = RunResults {
            sizes: vec![
                size(100, 400, 10, 20, 20_000),
                size(1000, 4_000, 10, 200, 30_000),
            ],
            ..RunResults::default()
        };
        let planner = [(
            100,
            PlannerFigures {
                noop_ms: Some(0.2),
                change_ms: Some(0.25),
                incremental_ms: Some(0.05),
                cold_plan_ms: Some(1.5),
            },
        )];
        let text = table(&run, &planner);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 4);
        let cells = |row: &str| row.matches('|').count();
        assert!(
            rows.iter().all(|row| cells(row) == cells(rows[0])),
            "{text}"
        );
        assert!(
            rows[2].starts_with("| 100 × 10 | 800 ms | 400 ms | 0.50× |"),
            "{}",
            rows[2]
        );
        assert!(
            rows[2].ends_with("| 0.200 ms | 0.250 ms | 0.050 ms | 1.5 ms |"),
            "{}",
            rows[2]
        );
    }
}
