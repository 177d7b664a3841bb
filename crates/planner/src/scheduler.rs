//! IPVS schedulers: `--ipvs-scheduler` and the per-service annotations.

use std::collections::BTreeMap;

use kipvs_packet_ipvs::{
    ServiceFlags, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3,
    IP_VS_SVC_F_SCHED_MH_FALLBACK, IP_VS_SVC_F_SCHED_MH_PORT, IP_VS_SVC_F_SCHED_SH_FALLBACK,
    IP_VS_SVC_F_SCHED_SH_PORT,
};

/// Service annotation: the IPVS scheduler for this service's virtual
/// services (one of [`SCHEDULERS`]).
pub const SCHEDULER_ANNOTATION: &str = "ipvs.kube-ipvs.io/scheduler";
/// Service annotation: comma-separated scheduler flags, named as in
/// `ipvsadm` (`flag-1`, `flag-2`, `flag-3`, `sh-fallback`, `sh-port`,
/// `mh-fallback`, `mh-port`).
pub const SCHEDULER_FLAGS_ANNOTATION: &str = "ipvs.kube-ipvs.io/scheduler-flags";

/// The schedulers Kubernetes documents for IPVS mode.
pub const SCHEDULERS: [&str; 11] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh",
];

/// `ipvsadm`'s flag names, their bits, and the scheduler they belong to
/// (`None`: any scheduler).
const FLAGS: [(&str, u32, Option<&str>); 7] = [
    ("flag-1", IP_VS_SVC_F_SCHED1, None),
    ("flag-2", IP_VS_SVC_F_SCHED2, None),
    ("flag-3", IP_VS_SVC_F_SCHED3, None),
    ("sh-fallback", IP_VS_SVC_F_SCHED_SH_FALLBACK, Some("sh")),
    ("sh-port", IP_VS_SVC_F_SCHED_SH_PORT, Some("sh")),
    ("mh-fallback", IP_VS_SVC_F_SCHED_MH_FALLBACK, Some("mh")),
    ("mh-port", IP_VS_SVC_F_SCHED_MH_PORT, Some("mh")),
];

/// Checks a scheduler name (for `--ipvs-scheduler`).
pub fn validate_scheduler(name: &str) -> Result<(), String> {
    if SCHEDULERS.contains(&name) {
        Ok(())
    } else {
        Err(format!(
            "unknown IPVS scheduler {name:?} (expected one of {})",
            SCHEDULERS.join(", ")
        ))
    }
}

/// The scheduler and scheduler flags of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scheduling {
    pub scheduler: String,
    pub flags: ServiceFlags,
}

impl Scheduling {
    /// `scheduler` without flags of its own.
    pub(crate) fn plain(scheduler: &str) -> Self {
        Scheduling {
            scheduler: scheduler.to_owned(),
            flags: with_required_flags(scheduler, ServiceFlags::EMPTY),
        }
    }

    /// What a service's annotations ask for, on top of the `default`
    /// scheduler. `Err` names the bad value; the caller warns and uses
    /// [`Scheduling::plain`]`(default)`.
    pub(crate) fn for_service(
        annotations: Option<&BTreeMap<String, String>>,
        default: &str,
    ) -> Result<Self, String> {
        let get = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .map(|value| value.trim())
        };
        let scheduler = match get(SCHEDULER_ANNOTATION) {
            Some(name) => {
                validate_scheduler(name)
                    .map_err(|reason| format!("annotation {SCHEDULER_ANNOTATION}: {reason}"))?;
                name
            }
            None => default,
        };
        let flags = match get(SCHEDULER_FLAGS_ANNOTATION) {
            Some(list) => parse_flags(list, scheduler)
                .map_err(|reason| format!("annotation {SCHEDULER_FLAGS_ANNOTATION}: {reason}"))?,
            None => ServiceFlags::EMPTY,
        };
        Ok(Scheduling {
            scheduler: scheduler.to_owned(),
            flags: with_required_flags(scheduler, flags),
        })
    }
}

/// The hashing schedulers keep hashing clients to a real server at weight
/// 0 (draining): `ip_vs_mh` and `ip_vs_sh` then find it "unavailable" and,
/// without their fallback flag, answer "no destination available" — the
/// client is refused instead of sent to another real server. kube-ipvs
/// drains every removed TCP real server at weight 0, so it always sets
/// `mh-fallback` / `sh-fallback`, unlike kube-proxy (kubernetes#138688).
fn with_required_flags(scheduler: &str, flags: ServiceFlags) -> ServiceFlags {
    match scheduler {
        "mh" => flags | ServiceFlags(IP_VS_SVC_F_SCHED_MH_FALLBACK),
        "sh" => flags | ServiceFlags(IP_VS_SVC_F_SCHED_SH_FALLBACK),
        _ => flags,
    }
}

fn parse_flags(list: &str, scheduler: &str) -> Result<ServiceFlags, String> {
    let mut flags = ServiceFlags::EMPTY;
    for name in list
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let Some((_, bits, only_for)) = FLAGS.iter().find(|(known, ..)| *known == name) else {
            return Err(format!("unknown scheduler flag {name:?}"));
        };
        if let Some(only_for) = only_for {
            if *only_for != scheduler {
                return Err(format!(
                    "scheduler flag {name:?} needs scheduler {only_for}, not {scheduler}"
                ));
            }
        }
        flags |= ServiceFlags(*bits);
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_documented_scheduler_is_valid_and_nothing_else() {
        for name in SCHEDULERS {
            assert_eq!(validate_scheduler(name), Ok(()));
        }
        let err = validate_scheduler("fastest").unwrap_err();
        assert!(err.contains("\"fastest\"") && err.contains("mh"), "{err}");
        assert!(validate_scheduler("").is_err());
        assert!(validate_scheduler("RR").is_err());
    }

    #[test]
    fn flags_by_ipvsadm_name() {
        let a = annotations(&[
            (SCHEDULER_ANNOTATION, "sh"),
            (SCHEDULER_FLAGS_ANNOTATION, " sh-fallback, sh-port ,"),
        ]);
        let s = Scheduling::for_service(Some(&a), "rr").unwrap();
        assert_eq!(s.scheduler, "sh");
        assert_eq!(s.flags, ServiceFlags(0x08 | 0x10));

        let a = annotations(&[(SCHEDULER_FLAGS_ANNOTATION, "flag-3")]);
        let s = Scheduling::for_service(Some(&a), "wrr").unwrap();
        assert_eq!((s.scheduler.as_str(), s.flags), ("wrr", ServiceFlags(0x20)));
    }

    #[test]
    fn mh_always_gets_the_fallback_flag() {
        assert_eq!(Scheduling::plain("mh").flags, ServiceFlags(0x08));
        assert_eq!(Scheduling::plain("rr").flags, ServiceFlags::EMPTY);
        let a = annotations(&[
            (SCHEDULER_ANNOTATION, "mh"),
            (SCHEDULER_FLAGS_ANNOTATION, "mh-port"),
        ]);
        let s = Scheduling::for_service(Some(&a), "rr").unwrap();
        assert_eq!(s.flags, ServiceFlags(0x08 | 0x10));
    }

    #[test]
    fn bad_values_are_named() {
        let err = |pairs: &[(&str, &str)]| {
            Scheduling::for_service(Some(&annotations(pairs)), "rr").unwrap_err()
        };
        assert!(err(&[(SCHEDULER_ANNOTATION, "bogus")]).contains("\"bogus\""));
        let e = err(&[(SCHEDULER_FLAGS_ANNOTATION, "sh-port")]);
        assert!(
            e.contains("\"sh-port\"") && e.contains("needs scheduler sh"),
            "{e}"
        );
        let e = err(&[
            (SCHEDULER_ANNOTATION, "mh"),
            (SCHEDULER_FLAGS_ANNOTATION, "mh-port,turbo"),
        ]);
        assert!(e.contains("unknown scheduler flag \"turbo\""), "{e}");
    }
}
