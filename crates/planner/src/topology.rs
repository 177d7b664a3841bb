//! Which endpoints a virtual service uses: kube-proxy's
//! `CategorizeEndpoints` and `topologyModeFromHints` (`pkg/proxy/topology.go`),
//! without IPVS mode's fallback from local to remote endpoints.

use crate::endpoints::Endpoint;

/// The endpoints of one service port in one family, split by traffic
/// policy.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Categorized {
    /// For policy `Cluster`: ready endpoints (narrowed by topology hints),
    /// else every serving-and-terminating one.
    pub cluster: Vec<Endpoint>,
    /// For policy `Local`: this node's ready endpoints, else its
    /// serving-and-terminating ones. May be empty: then traffic under a
    /// `Local` policy has nowhere to go and the kernel refuses it, as
    /// Kubernetes specifies.
    pub local: Vec<Endpoint>,
}

/// Splits `endpoints` for this node (`node_name`, `zone`).
pub(crate) fn categorize(
    endpoints: &[Endpoint],
    node_name: &str,
    zone: Option<&str>,
) -> Categorized {
    let mode = topology_mode(endpoints, node_name, zone);
    let mut cluster: Vec<Endpoint> = endpoints
        .iter()
        .filter(|e| e.conditions.ready && mode.admits(e, node_name, zone))
        .cloned()
        .collect();
    if cluster.is_empty() {
        // Best effort not to drop connections while a rollout ends: topology
        // is not considered for the fallback (kube-proxy does the same).
        cluster = serving_terminating(endpoints.iter()).cloned().collect();
    }

    let local_ready: Vec<Endpoint> = endpoints
        .iter()
        .filter(|e| e.local && e.conditions.ready)
        .cloned()
        .collect();
    let local = if local_ready.is_empty() {
        serving_terminating(endpoints.iter().filter(|e| e.local))
            .cloned()
            .collect()
    } else {
        local_ready
    };
    Categorized { cluster, local }
}

fn serving_terminating<'a>(
    endpoints: impl Iterator<Item = &'a Endpoint>,
) -> impl Iterator<Item = &'a Endpoint> {
    endpoints.filter(|e| e.conditions.draining())
}

/// How hints narrow the cluster endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopologyMode {
    /// No narrowing.
    All,
    /// Only endpoints whose `forNodes` names this node.
    SameNode,
    /// Only endpoints whose `forZones` names this node's zone.
    SameZone,
}

impl TopologyMode {
    fn admits(self, endpoint: &Endpoint, node_name: &str, zone: Option<&str>) -> bool {
        match self {
            TopologyMode::All => true,
            TopologyMode::SameNode => endpoint.hints.nodes.contains(node_name),
            TopologyMode::SameZone => zone.is_some_and(|zone| endpoint.hints.zones.contains(zone)),
        }
    }
}

/// Hints count only when every ready endpoint carries them (an endpoint
/// without one would otherwise never get traffic from anywhere) and one of
/// them is for this node or zone (else this node would get nothing).
/// Node hints first (`trafficDistribution: PreferSameNode`), then zones.
fn topology_mode(endpoints: &[Endpoint], node_name: &str, zone: Option<&str>) -> TopologyMode {
    let ready: Vec<&Endpoint> = endpoints.iter().filter(|e| e.conditions.ready).collect();
    if ready.is_empty() {
        return TopologyMode::All;
    }
    let all_have = |has: fn(&Endpoint) -> bool| ready.iter().all(|e| has(e));
    if all_have(|e| !e.hints.nodes.is_empty())
        && ready.iter().any(|e| e.hints.nodes.contains(node_name))
    {
        return TopologyMode::SameNode;
    }
    if let Some(zone) = zone {
        if all_have(|e| !e.hints.zones.is_empty())
            && ready.iter().any(|e| e.hints.zones.contains(zone))
        {
            return TopologyMode::SameZone;
        }
    }
    TopologyMode::All
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::{Conditions, Hints};

    const READY: Conditions = Conditions {
        ready: true,
        serving: true,
        terminating: false,
    };
    const DRAINING: Conditions = Conditions {
        ready: false,
        serving: true,
        terminating: true,
    };

    fn ep(
        last: u8,
        local: bool,
        conditions: Conditions,
        zones: &[&str],
        nodes: &[&str],
    ) -> Endpoint {
        Endpoint {
            addr: std::net::IpAddr::from([10, 244, 0, last]),
            port: 8080,
            local,
            conditions,
            hints: Hints {
                zones: zones.iter().map(|z| (*z).to_owned()).collect(),
                nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
            },
        }
    }

    fn lasts(endpoints: &[Endpoint]) -> Vec<u8> {
        endpoints
            .iter()
            .map(|e| match e.addr {
                std::net::IpAddr::V4(a) => a.octets()[3],
                std::net::IpAddr::V6(_) => 0,
            })
            .collect()
    }

    #[test]
    fn node_hints_win_over_zone_hints() {
        let eps = [
            ep(1, true, READY, &["z1"], &["me"]),
            ep(2, false, READY, &["z1"], &["other"]),
            ep(3, false, READY, &["z2"], &["other"]),
        ];
        let c = categorize(&eps, "me", Some("z1"));
        assert_eq!(lasts(&c.cluster), [1]);
        // Without a node hint for this node, zones apply.
        let c = categorize(&eps, "nobody", Some("z1"));
        assert_eq!(lasts(&c.cluster), [1, 2]);
        // Without a zone label either: no narrowing.
        let c = categorize(&eps, "nobody", None);
        assert_eq!(lasts(&c.cluster), [1, 2, 3]);
    }

    #[test]
    fn terminating_endpoints_do_not_count_for_hints() {
        // The draining endpoint has no hints; only ready ones must.
        let eps = [
            ep(1, false, READY, &["z1"], &[]),
            ep(2, false, DRAINING, &[], &[]),
            ep(3, false, READY, &["z2"], &[]),
        ];
        let c = categorize(&eps, "me", Some("z1"));
        assert_eq!(lasts(&c.cluster), [1]);
        assert!(c.local.is_empty());
    }

    #[test]
    fn fallback_to_terminating_ignores_hints() {
        let eps = [
            ep(1, false, DRAINING, &["z2"], &[]),
            ep(2, true, DRAINING, &["z2"], &[]),
        ];
        let c = categorize(&eps, "me", Some("z1"));
        assert_eq!(lasts(&c.cluster), [1, 2]);
        assert_eq!(lasts(&c.local), [2]);
    }
}
