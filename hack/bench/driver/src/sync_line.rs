//! The daemon's per-sync info line, as the benchmark reads it:
//! `... INFO sync full=true steps=140044 failed=0 messages_sent=140300
//! draining=0 conntrack_deleted=0 virtual_services=10000 elapsed_ms=441100
//! read_ms=12000` (`read_ms`, the part spent reading the kernel, is absent
//! from daemons older than the field).

use serde::{Deserialize, Serialize};

/// One parsed sync line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncLine {
    pub full: bool,
    pub steps: u64,
    pub failed: u64,
    /// Every request the sync sent through the kernel funnel: writes and
    /// dump requests alike (the runtime's counters do not tell them apart
    /// on this line).
    pub messages_sent: u64,
    pub virtual_services: u64,
    pub elapsed_ms: u64,
    /// Of `elapsed_ms`, reading the kernel (the whole read-back on a full
    /// resync).
    #[serde(default)]
    pub read_ms: Option<u64>,
}

impl SyncLine {
    /// `None` unless `line` is a sync line with every field present.
    pub fn parse(line: &str) -> Option<SyncLine> {
        let rest = &line[line.find(" sync full=")? + 1..];
        let field = |name: &str| {
            rest.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        let number = |name: &str| field(name)?.parse::<u64>().ok();
        Some(SyncLine {
            full: field("full")? == "true",
            steps: number("steps")?,
            failed: number("failed")?,
            messages_sent: number("messages_sent")?,
            virtual_services: number("virtual_services")?,
            elapsed_ms: number("elapsed_ms")?,
            read_ms: number("read_ms"),
        })
    }
}

/// From the line a full read of the kernel logs (`... INFO kernel read
/// back ipvs_ms=9000 sets_ms=...`): the milliseconds spent reading IPVS
/// (virtual services and their real servers), what `ipvsadm -Sn` reads.
pub fn ipvs_read_ms(line: &str) -> Option<u64> {
    let rest = &line[line.find(" kernel read back ")?..];
    rest.split_whitespace()
        .find_map(|kv| kv.strip_prefix("ipvs_ms="))?
        .parse()
        .ok()
}

/// The line the sync loop logs once the initial cluster state is read,
/// just before the first sync.
pub fn is_initial_state_line(line: &str) -> bool {
    line.contains("initial cluster state read")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_field_of_the_info_line() {
        let line = "2026-12-06T20:03:14.123456Z  INFO sync full=true steps=140044 failed=0 messages_sent=140300 draining=0 conntrack_deleted=0 virtual_services=10000 elapsed_ms=441100 read_ms=9000";
        assert_eq!(
            SyncLine::parse(line),
            Some(SyncLine {
                full: true,
                steps: 140_044,
                failed: 0,
                messages_sent: 140_300,
                virtual_services: 10_000,
                elapsed_ms: 441_100,
                read_ms: Some(9000),
            })
        );
        let older = line.trim_end_matches(" read_ms=9000");
        assert_eq!(SyncLine::parse(older).map(|s| s.read_ms), Some(None));
    }

    #[test]
    fn the_ipvs_part_of_a_read_back_is_read_off_its_line() {
        let line = "2026-12-07T05:10:00.1Z  INFO kernel read back ipvs_ms=9120 sets_ms=2100 addresses_ms=800 tables_ms=3 link_ms=1 virtual_services=10000";
        assert_eq!(ipvs_read_ms(line), Some(9120));
        assert_eq!(
            ipvs_read_ms("2026-12-07T05:10:00Z  INFO sync full=true"),
            None
        );
    }

    #[test]
    fn other_lines_are_not_sync_lines() {
        assert_eq!(
            SyncLine::parse("2026-12-06T20:03:14Z DEBUG sync: nothing to do elapsed_ms=3"),
            None
        );
        assert_eq!(
            SyncLine::parse("2026-12-06T20:03:14Z  INFO sync full=false steps=2"),
            None
        );
        assert!(is_initial_state_line(
            "2026-12-06T20:03:14Z  INFO initial cluster state read; starting to sync node=node-a"
        ));
    }
}
