//! The node settings kube-proxy makes once at start, besides the ones the
//! sync keeps ([`crate::SYSCTLS`]): strict ARP, IPVS's connection
//! timeouts, and conntrack's table size and timeouts.
//!
//! A setting that cannot be made is logged with its name and the reason,
//! and the daemon goes on: the services work without it, and a read-only
//! /proc/sys or a network namespace that does not own a global value (say
//! `nf_conntrack_max` outside the initial one) should not keep a node's
//! services down. kube-proxy exits instead, except for the IPVS timeouts.

use std::time::Duration;

use kipvs_netlink::{raise_module_parameter, set_sysctl, Counters, Ipvs};
use kipvs_packet_ipvs::Timeouts;
use tracing::{info, warn};

/// What to set; built from flags and the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSettings {
    /// `--ipvs-strict-arp`: `arp_ignore=1`, `arp_announce=2` on all
    /// interfaces, so the service addresses on `kube-ipvs0` are not
    /// answered for by ARP.
    pub strict_arp: bool,
    pub ipvs_timeouts: IpvsTimeouts,
    pub conntrack: ConntrackSettings,
}

/// IPVS's idle timeouts; zero leaves the kernel's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpvsTimeouts {
    pub tcp: Duration,
    pub tcp_fin: Duration,
    pub udp: Duration,
}

/// kube-proxy's `conntrack.*`; zero leaves the kernel's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConntrackSettings {
    /// `nf_conntrack_max` is `max(max_per_core × CPUs, min)`; 0 leaves it
    /// (and ignores `min`).
    pub max_per_core: u64,
    pub min: u64,
    pub tcp_established_timeout: Duration,
    pub tcp_close_wait_timeout: Duration,
    pub tcp_be_liberal: bool,
    pub udp_timeout: Duration,
    pub udp_stream_timeout: Duration,
}

impl Default for ConntrackSettings {
    /// kube-proxy's defaults.
    fn default() -> Self {
        ConntrackSettings {
            max_per_core: 32 * 1024,
            min: 128 * 1024,
            tcp_established_timeout: Duration::from_secs(24 * 3600),
            tcp_close_wait_timeout: Duration::from_secs(3600),
            tcp_be_liberal: false,
            udp_timeout: Duration::ZERO,
            udp_stream_timeout: Duration::ZERO,
        }
    }
}

/// What the kernel said, for the start-up log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeReport {
    /// IPVS's version (`1.2.1`), when IPVS answered.
    pub ipvs_version: Option<String>,
    /// Settings made or already in effect, as `name=value`.
    pub set: Vec<String>,
    /// Settings that could not be made: name, reason.
    pub failed: Vec<(String, String)>,
}

/// `nf_conntrack_max` as kube-proxy computes it: none when `max_per_core`
/// is 0; an error when it does not fit the kernel's `unsigned int`.
pub fn conntrack_max(settings: &ConntrackSettings, cpus: u64) -> Result<Option<u64>, String> {
    if settings.max_per_core == 0 {
        return Ok(None);
    }
    let scaled = settings
        .max_per_core
        .checked_mul(cpus)
        .ok_or_else(|| format!("{} per core × {cpus} CPUs overflows", settings.max_per_core))?;
    let max = scaled.max(settings.min);
    if max > u64::from(u32::MAX) {
        return Err(format!("{max} is larger than the kernel accepts"));
    }
    Ok(Some(max))
}

/// The sysctls to write, in order, as `(name, value)`; `nf_conntrack_max`
/// is handled apart (it also sizes the hash table).
pub fn sysctls(settings: &NodeSettings) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if settings.strict_arp {
        out.push(("net.ipv4.conf.all.arp_ignore", "1".to_owned()));
        out.push(("net.ipv4.conf.all.arp_announce", "2".to_owned()));
    }
    let ct = &settings.conntrack;
    let seconds = [
        (
            "net.netfilter.nf_conntrack_tcp_timeout_established",
            ct.tcp_established_timeout,
        ),
        (
            "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
            ct.tcp_close_wait_timeout,
        ),
        ("net.netfilter.nf_conntrack_udp_timeout", ct.udp_timeout),
        (
            "net.netfilter.nf_conntrack_udp_timeout_stream",
            ct.udp_stream_timeout,
        ),
    ];
    if ct.tcp_be_liberal {
        out.push(("net.netfilter.nf_conntrack_tcp_be_liberal", "1".to_owned()));
    }
    // Whole seconds, as kube-proxy; under a second means "leave it".
    for (name, value) in seconds {
        if value.as_secs() > 0 {
            out.push((name, value.as_secs().to_string()));
        }
    }
    out
}

/// IPVS's timeouts in whole seconds for SET_CONFIG, or none when all are
/// zero (kube-proxy then leaves the kernel's).
pub fn ipvs_timeouts(timeouts: &IpvsTimeouts) -> Result<Option<Timeouts>, String> {
    let seconds = |d: Duration| {
        u32::try_from(d.as_secs()).map_err(|_| format!("{d:?} is longer than the kernel accepts"))
    };
    let timeouts = Timeouts {
        tcp: seconds(timeouts.tcp)?,
        tcp_fin: seconds(timeouts.tcp_fin)?,
        udp: seconds(timeouts.udp)?,
    };
    Ok((timeouts != Timeouts::default()).then_some(timeouts))
}

/// The node's CPU count as kube-proxy counts it for `nf_conntrack_max`:
/// every online CPU of the machine (the table is shared by the whole
/// node), not the ones this process may use; else what the process may
/// use.
pub fn node_cpus() -> u64 {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| count_cpu_list(&list))
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .and_then(|n| u64::try_from(n.get()).ok())
        })
        .unwrap_or(1)
}

/// Counts a kernel CPU list (`0-3,8,10-11`); none if it does not parse.
pub fn count_cpu_list(list: &str) -> Option<u64> {
    let mut count: u64 = 0;
    for part in list.trim().split(',') {
        let n = match part.split_once('-') {
            Some((first, last)) => {
                let first: u64 = first.parse().ok()?;
                let last: u64 = last.parse().ok()?;
                last.checked_sub(first)?.checked_add(1)?
            }
            None => {
                part.parse::<u64>().ok()?;
                1
            }
        };
        count = count.checked_add(n)?;
    }
    (count > 0).then_some(count)
}

/// Reads IPVS's version and makes every setting, in the network namespace
/// of the calling thread. Failures are logged (setting and reason) and
/// reported, never returned: the daemon goes on.
pub async fn apply_node_settings(settings: &NodeSettings, counters: Counters) -> NodeReport {
    let mut report = NodeReport::default();
    let fail = |report: &mut NodeReport, setting: &str, reason: String| {
        warn!(setting = %setting, %reason, "a node setting could not be made; going on without it");
        report.failed.push((setting.to_owned(), reason));
    };
    match Ipvs::open(counters).await {
        Ok(mut ipvs) => {
            match ipvs.info().await {
                Ok(info) => {
                    let (major, minor, patch) = info.version_triple();
                    report.ipvs_version = Some(format!("{major}.{minor}.{patch}"));
                }
                Err(error) => fail(&mut report, "IPVS version", error.to_string()),
            }
            match ipvs_timeouts(&settings.ipvs_timeouts) {
                Ok(None) => {}
                Ok(Some(timeouts)) => match ipvs.set_timeouts(&timeouts).await {
                    Ok(()) => report.set.push(format!(
                        "ipvs timeouts tcp={}s tcpfin={}s udp={}s",
                        timeouts.tcp, timeouts.tcp_fin, timeouts.udp
                    )),
                    Err(error) => fail(&mut report, "IPVS timeouts", error.to_string()),
                },
                Err(reason) => fail(&mut report, "IPVS timeouts", reason),
            }
        }
        Err(error) => fail(&mut report, "IPVS", error.to_string()),
    }
    match conntrack_max(&settings.conntrack, node_cpus()) {
        Ok(None) => {}
        Ok(Some(max)) => {
            let name = "net.netfilter.nf_conntrack_max";
            match set_sysctl(name, &max.to_string()) {
                Ok(()) => {
                    report.set.push(format!("{name}={max}"));
                    // kube-proxy's ratio: a quarter of the entries as
                    // buckets. Only the initial network namespace may
                    // write it.
                    match raise_module_parameter("nf_conntrack", "hashsize", max / 4) {
                        Ok(true) => report
                            .set
                            .push(format!("nf_conntrack hashsize={}", max / 4)),
                        Ok(false) => {}
                        Err(error) => fail(&mut report, "nf_conntrack hashsize", error.to_string()),
                    }
                }
                Err(error) => fail(&mut report, name, error.source.to_string()),
            }
        }
        Err(reason) => fail(&mut report, "net.netfilter.nf_conntrack_max", reason),
    }
    for (name, value) in sysctls(settings) {
        match set_sysctl(name, &value) {
            Ok(()) => report.set.push(format!("{name}={value}")),
            Err(error) => fail(&mut report, name, error.source.to_string()),
        }
    }
    if !report.set.is_empty() {
        info!(settings = %report.set.join(" "), "node settings in effect");
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_max_is_per_core_times_cpus_with_a_floor() {
        let mut ct = ConntrackSettings::default();
        assert_eq!(conntrack_max(&ct, 2), Ok(Some(131_072)));
        assert_eq!(conntrack_max(&ct, 8), Ok(Some(262_144)));
        ct.max_per_core = 0;
        assert_eq!(conntrack_max(&ct, 8), Ok(None));
        ct.max_per_core = u64::MAX;
        assert!(conntrack_max(&ct, 2).unwrap_err().contains("overflows"));
        ct.max_per_core = u64::from(u32::MAX);
        assert!(conntrack_max(&ct, 2)
            .unwrap_err()
            .contains("larger than the kernel accepts"));
    }

    #[test]
    fn sysctls_follow_the_settings() {
        assert_eq!(
            sysctls(&NodeSettings::default()),
            vec![
                (
                    "net.netfilter.nf_conntrack_tcp_timeout_established",
                    "86400".to_owned()
                ),
                (
                    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
                    "3600".to_owned()
                ),
            ]
        );
        let settings = NodeSettings {
            strict_arp: true,
            conntrack: ConntrackSettings {
                tcp_established_timeout: Duration::ZERO,
                tcp_close_wait_timeout: Duration::from_millis(500),
                tcp_be_liberal: true,
                udp_timeout: Duration::from_secs(33),
                udp_stream_timeout: Duration::from_secs(150),
                ..ConntrackSettings::default()
            },
            ..NodeSettings::default()
        };
        assert_eq!(
            sysctls(&settings),
            vec![
                ("net.ipv4.conf.all.arp_ignore", "1".to_owned()),
                ("net.ipv4.conf.all.arp_announce", "2".to_owned()),
                ("net.netfilter.nf_conntrack_tcp_be_liberal", "1".to_owned()),
                ("net.netfilter.nf_conntrack_udp_timeout", "33".to_owned()),
                (
                    "net.netfilter.nf_conntrack_udp_timeout_stream",
                    "150".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn ipvs_timeouts_are_set_only_when_one_is_given() {
        assert_eq!(ipvs_timeouts(&IpvsTimeouts::default()), Ok(None));
        let timeouts = IpvsTimeouts {
            tcp: Duration::from_secs(900),
            tcp_fin: Duration::ZERO,
            udp: Duration::from_millis(1500),
        };
        assert_eq!(
            ipvs_timeouts(&timeouts),
            Ok(Some(Timeouts {
                tcp: 900,
                tcp_fin: 0,
                udp: 1
            }))
        );
        let huge = IpvsTimeouts {
            tcp: Duration::from_secs(u64::from(u32::MAX) + 1),
            ..IpvsTimeouts::default()
        };
        assert!(ipvs_timeouts(&huge).is_err());
    }

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(count_cpu_list("0\n"), Some(1));
        assert_eq!(count_cpu_list("0-3"), Some(4));
        assert_eq!(count_cpu_list("0-3,8,10-11\n"), Some(7));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("0-18446744073709551615"), None);
    }
}
