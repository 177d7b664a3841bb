//! `Desired::update` folds a change to a few services into the previous
//! desired state. It must give exactly what `desired()` computes from the
//! whole new snapshot, and name in its `Dirty` everything that differs, so
//! a plan scoped to it converges the kernel; where it cannot be exact (a
//! changed service shares or contests something with another one) it must
//! decline.

mod common;

use std::{collections::BTreeSet, sync::Arc};

use common::*;
use k8s_openapi::api::{core::v1::Service as K8sService, discovery::v1::EndpointSlice};
use kipvs_planner::*;
use serde_json::json;

#[derive(Clone)]
struct Cluster {
    services: Vec<Arc<K8sService>>,
    slices: Vec<Arc<EndpointSlice>>,
}

impl Cluster {
    fn without_service(&self, name: &str) -> Cluster {
        let mut next = self.clone();
        next.services
            .retain(|s| s.metadata.name.as_deref() != Some(name));
        next.slices.retain(|s| service_label(s) != Some(name));
        next
    }

    fn with_service(&self, service: Arc<K8sService>) -> Cluster {
        let name = service.metadata.name.clone();
        let mut next = self.clone();
        next.services.retain(|s| s.metadata.name != name);
        next.services.push(service);
        next
    }

    fn with_slice(&self, slice: Arc<EndpointSlice>) -> Cluster {
        let name = slice.metadata.name.clone();
        let mut next = self.clone();
        next.slices.retain(|s| s.metadata.name != name);
        next.slices.push(slice);
        next
    }

    fn desired(&self, config: &NodeConfig) -> Desired {
        desired(&self.services, &self.slices, config)
    }
}

fn local(addr: &str) -> Ep<'_> {
    (addr, Some(true), Some("node-a"))
}

const HTTP: &[Port] = &[("http", 80, "TCP")];
const WEB: &[Port] = &[("http", 8080, "TCP")];

fn web_slice(service: &str, endpoints: &[Ep]) -> Arc<EndpointSlice> {
    slice(
        "default",
        &format!("{service}-1"),
        service,
        "IPv4",
        WEB,
        endpoints,
    )
}

/// Services of every kind: plain cluster IPs with local and remote
/// endpoints, a local-traffic load balancer with a health-check node port,
/// two services sharing one load-balancer address (entangled), an
/// externalIP, one the planner refuses.
fn base() -> Cluster {
    let lb = |name: &str, ip: &str, port: i64, node_port: i64| {
        patched(
            node_port_svc(
                "LoadBalancer",
                "default",
                name,
                &[ip],
                &[("http", port, "TCP", node_port)],
            ),
            ingress(&["203.0.113.9"]),
        )
    };
    let services = vec![
        svc("default", "a", &["10.96.0.1"], HTTP),
        svc("default", "b", &["10.96.0.2"], HTTP),
        patched(
            node_port_svc(
                "LoadBalancer",
                "default",
                "local",
                &["10.96.0.3"],
                &[("http", 80, "TCP", 30080)],
            ),
            json!({
                "spec": { "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000 },
                "status": { "loadBalancer": { "ingress": [{ "ip": "203.0.113.1" }] } },
            }),
        ),
        lb("shared-1", "10.96.0.4", 80, 30081),
        lb("shared-2", "10.96.0.5", 443, 30082),
        patched(
            svc("default", "ext", &["10.96.0.6"], HTTP),
            json!({ "spec": { "externalIPs": ["198.51.100.5"] } }),
        ),
        patched(
            svc("default", "bad", &["10.96.0.7"], HTTP),
            json!({ "spec": { "clusterIP": "10.96.0.300", "clusterIPs": ["10.96.0.300"] } }),
        ),
    ];
    let slices = vec![
        web_slice("a", &[local("10.244.1.1"), ep("10.244.2.1")]),
        web_slice("b", &[ep("10.244.2.2")]),
        web_slice("local", &[local("10.244.1.3"), ep("10.244.2.3")]),
        web_slice("shared-1", &[ep("10.244.2.4")]),
        web_slice("shared-2", &[ep("10.244.2.5")]),
        web_slice("ext", &[local("10.244.1.6")]),
    ];
    Cluster { services, slices }
}

/// What must hold of one change from `before` to `after`: the update is
/// exact, and the plan scoped to its `Dirty` (applied to a kernel holding
/// `before`) leaves nothing for a full plan to do. `Err` when the update
/// declined.
fn check_change(before: &Cluster, after: &Cluster, config: &NodeConfig) -> Result<Dirty, ()> {
    let old = before.desired(config);
    let full = after.desired(config);
    let changed = changed_services(
        (&before.services, &before.slices),
        (&after.services, &after.slices),
    );
    let mut updated = old.clone();
    let (services, slices) = objects_of(&after.services, &after.slices, &changed);
    let Some(dirty) = updated.update(&services, &slices, config, &changed) else {
        assert_eq!(updated, old, "a declined update leaves the state as it was");
        return Err(());
    };
    assert_eq!(updated, full, "the update differs from a full computation");

    let kernel = observed_from(&old);
    let none = BTreeSet::new();
    let scoped = plan_scoped(&updated, &kernel, &none, Scope::Only(&dirty));
    let converged = apply(&scoped, &kernel);
    let rest = plan(&full, &converged, &none);
    assert!(
        rest.steps.is_empty(),
        "the scoped plan missed {:#?}",
        lines(&rest)
    );
    Ok(dirty)
}

fn changes() -> Vec<(&'static str, Cluster, bool)> {
    let base = base();
    let newcomer = || svc("default", "new", &["10.96.0.50"], HTTP);
    vec![
        (
            "a local endpoint added",
            base.with_slice(web_slice("a", &[local("10.244.1.1"), local("10.244.1.9"), ep("10.244.2.1")])),
            true,
        ),
        (
            "the local endpoint removed",
            base.with_slice(web_slice("a", &[ep("10.244.2.1")])),
            true,
        ),
        (
            "a service added, with its slice",
            base.with_service(newcomer())
                .with_slice(web_slice("new", &[local("10.244.1.50")])),
            true,
        ),
        ("a service deleted with its slice", base.without_service("a"), true),
        (
            "the local load balancer's policy becomes Cluster",
            base.with_service(patched(
                base.services[2].clone(),
                json!({ "spec": { "externalTrafficPolicy": "Cluster", "healthCheckNodePort": null } }),
            )),
            true,
        ),
        (
            "the refused service fixed",
            base.with_service(svc("default", "bad", &["10.96.0.7"], HTTP)),
            true,
        ),
        (
            "a service breaks (its warning joins the refused one's)",
            base.with_service(patched(
                svc("default", "b", &["10.96.0.2"], HTTP),
                json!({ "spec": { "clusterIP": "10.96.0.301", "clusterIPs": ["10.96.0.301"] } }),
            )),
            true,
        ),
        (
            "the Local service loses its local endpoint (its traffic is dropped)",
            base.with_slice(web_slice("local", &[ep("10.244.2.3")])),
            true,
        ),
        (
            "a slice for a service that does not exist",
            base.with_slice(web_slice("ghost", &[local("10.244.1.77")])),
            true,
        ),
        (
            "a service's port renamed",
            base.with_service(svc("default", "b", &["10.96.0.2"], &[("web", 80, "TCP")])),
            true,
        ),
        (
            "a new service asks for another's cluster IP and port",
            base.with_service(svc("default", "new", &["10.96.0.1"], HTTP)),
            false,
        ),
        (
            "a new service asks for the externalIP's address and port",
            base.with_service(patched(
                newcomer(),
                json!({ "spec": { "externalIPs": ["198.51.100.5"] } }),
            )),
            false,
        ),
        (
            "one of two services sharing a load-balancer address changes its port",
            base.with_service(patched(
                node_port_svc("LoadBalancer", "default", "shared-2", &["10.96.0.5"], &[("http", 8443, "TCP", 30082)]),
                ingress(&["203.0.113.9"]),
            )),
            false,
        ),
        (
            "one of two services sharing a load-balancer address deleted",
            base.without_service("shared-1"),
            false,
        ),
        (
            "a new service takes the health-check node port",
            base.with_service(patched(
                node_port_svc("LoadBalancer", "default", "aaa", &["10.96.0.51"], &[("http", 80, "TCP", 30090)]),
                json!({
                    "spec": { "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000 },
                    "status": { "loadBalancer": { "ingress": [{ "ip": "203.0.113.2" }] } },
                }),
            )),
            false,
        ),
    ]
}

#[test]
fn each_change_is_folded_in_exactly_or_declined() {
    let config = config();
    let base = base();
    for (name, after, folds) in changes() {
        // A failed assertion inside shows after this line.
        eprintln!("change: {name}");
        match check_change(&base, &after, &config) {
            Ok(_) => assert!(folds, "{name}: folded in, but it should be declined"),
            Err(()) => assert!(!folds, "{name}: declined, but it can be folded in"),
        }
    }
}

#[test]
fn an_endpoint_change_touches_only_its_service() {
    let config = config();
    let base = base();
    let after = base.with_slice(web_slice("a", &[local("10.244.1.1")]));
    let dirty = check_change(&base, &after, &config).expect("folded in");
    let keys: Vec<String> = dirty
        .virtual_services
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(keys, ["tcp 10.96.0.1:80"]);
    // The remote endpoint's real server is the change; the set entries
    // (cluster IP, the local endpoint's hairpin) and the bound address
    // stay, but are named for the plan to check.
    assert_eq!(dirty.addresses, BTreeSet::from([ip("10.96.0.1")]));
}

#[test]
fn no_change_is_an_empty_update() {
    let config = config();
    let base = base();
    let mut state = base.desired(&config);
    let dirty = state
        .update(&[], &[], &config, &BTreeSet::new())
        .expect("nothing to decline");
    assert!(dirty.is_empty());
    assert_eq!(state, base.desired(&config));
}

#[test]
fn a_sequence_of_changes_stays_exact() {
    let config = config();
    let mut before = base();
    let mut state = before.desired(&config);
    let mut folded = 0;
    for (_, after, _) in changes() {
        // Each change is made on top of the previous ones' result.
        let mut next = before.clone();
        for service in &after.services {
            if !before.services.iter().any(|s| Arc::ptr_eq(s, service)) {
                next = next.with_service(service.clone());
            }
        }
        for slice in &after.slices {
            if !before.slices.iter().any(|s| Arc::ptr_eq(s, slice)) {
                next = next.with_slice(slice.clone());
            }
        }
        let changed = changed_services(
            (&before.services, &before.slices),
            (&next.services, &next.slices),
        );
        let (services, slices) = objects_of(&next.services, &next.slices, &changed);
        match state.update(&services, &slices, &config, &changed) {
            Some(_) => folded += 1,
            None => state = next.desired(&config),
        }
        assert_eq!(state, next.desired(&config));
        before = next;
    }
    assert!(folded >= 5, "only {folded} changes folded in");
}
