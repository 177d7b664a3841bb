//! Graceful termination (kube-proxy's `graceful_termination.go`, with a
//! bound): a real server present but no longer desired, on a TCP (or
//! fwmark) virtual service, is set to weight 0 — new connections go
//! elsewhere, established ones go on. At weight 0 it is left alone until
//! its connections (active + inactive, read after the weight went to 0)
//! reach 0 or the runtime reports its grace `expired` (the planner has no
//! clock), then deleted. UDP and SCTP real servers are deleted at once (a
//! datagram "connection" has no end to wait for). A desired real server
//! found at weight 0 (its endpoint came back) is updated to its desired
//! weight.

use std::collections::BTreeSet;

use kipvs_packet_ipvs::{Destination, Protocol, ServiceKey};

use super::RealServerKey;
use crate::{desired::Desired, key::VirtualServiceKey, observed::Observed};

pub fn draining(desired: &Desired, observed: &Observed) -> BTreeSet<RealServerKey> {
    draining_among(desired, observed, desired.virtual_services.keys())
}

/// [`draining`] on the virtual services `keys` only: after an incremental
/// plan, those it touched and those that drained before are the only ones
/// where a real server can drain.
pub fn draining_in(
    desired: &Desired,
    observed: &Observed,
    keys: &BTreeSet<VirtualServiceKey>,
) -> BTreeSet<RealServerKey> {
    draining_among(desired, observed, keys.iter())
}

fn draining_among<'k>(
    desired: &Desired,
    observed: &Observed,
    keys: impl Iterator<Item = &'k VirtualServiceKey>,
) -> BTreeSet<RealServerKey> {
    let mut draining = BTreeSet::new();
    for key in keys {
        let Some(vs) = desired.virtual_services.get(key) else {
            continue;
        };
        let Some((_, current)) = observed.virtual_services.get(key) else {
            continue;
        };
        if !drains_gracefully(key) {
            continue;
        }
        for dest in current {
            if dest.weight == 0 && !vs.destinations.contains_key(&(dest.addr, dest.port)) {
                draining.insert(RealServerKey {
                    service: *key,
                    addr: dest.addr,
                    port: dest.port,
                });
            }
        }
    }
    draining
}

/// Virtual services where a draining real server (weight 0, no longer
/// listed) would be deleted because the cache shows no connection: the
/// runtime reads their real servers again first, so the delete is decided
/// on counters read after the weight went to 0, never on the older ones
/// the cache may hold (a connection opened before must not be cut).
pub fn retiring(desired: &Desired, observed: &Observed) -> BTreeSet<VirtualServiceKey> {
    retiring_among(desired, observed, desired.virtual_services.keys())
}

/// [`retiring`] among the virtual services `keys` only (see
/// [`draining_in`]).
pub fn retiring_in(
    desired: &Desired,
    observed: &Observed,
    keys: &BTreeSet<VirtualServiceKey>,
) -> BTreeSet<VirtualServiceKey> {
    retiring_among(desired, observed, keys.iter())
}

fn retiring_among<'k>(
    desired: &Desired,
    observed: &Observed,
    keys: impl Iterator<Item = &'k VirtualServiceKey>,
) -> BTreeSet<VirtualServiceKey> {
    keys.filter_map(|key| desired.virtual_services.get_key_value(key))
        .filter(|(key, _)| drains_gracefully(key))
        .filter(|(key, vs)| {
            observed
                .virtual_services
                .get(key)
                .is_some_and(|(_, current)| {
                    current.iter().any(|dest| {
                        dest.weight == 0
                            && dest.active_conns == 0
                            && dest.inactive_conns == 0
                            && !vs.destinations.contains_key(&(dest.addr, dest.port))
                    })
                })
        })
        .map(|(key, _)| *key)
        .collect()
}

/// What becomes of a real server the cluster no longer lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retirement {
    Delete,
    /// To weight 0: no new connections, established ones go on.
    Drain,
    /// At weight 0 already, connections left, grace not over.
    Wait,
}

/// A real server still in service always goes to weight 0 first, even when
/// the counters say it has no connection: they are only as fresh as the
/// last read, and a connection scheduled since would be cut by the delete
/// (`expire_nodest_conn`). Once at weight 0 it gets no new connection, so
/// counters read after that (see [`retiring`]) can be trusted to reach 0.
pub(super) fn retirement(
    key: &VirtualServiceKey,
    current: &Destination,
    expired: bool,
) -> Retirement {
    let connections = u64::from(current.active_conns) + u64::from(current.inactive_conns);
    if !drains_gracefully(key) {
        Retirement::Delete
    } else if current.weight > 0 {
        Retirement::Drain
    } else if connections == 0 || expired {
        Retirement::Delete
    } else {
        Retirement::Wait
    }
}

/// kube-proxy's `IsRsGracefulTerminationNeeded`: everything but UDP and
/// SCTP, whose real servers are deleted at once (IPVS expires their
/// entries on the next packet, `expire_nodest_conn`).
fn drains_gracefully(key: &VirtualServiceKey) -> bool {
    !matches!(
        key.key(),
        ServiceKey::Tuple {
            protocol: Protocol::Udp | Protocol::Sctp,
            ..
        }
    )
}
