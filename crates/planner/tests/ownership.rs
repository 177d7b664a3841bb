//! `ownership()`: which of the kernel's virtual services kube-ipvs may
//! change, and the takeover of sets kube-proxy created (`ReplaceSet`).

mod common;

use common::*;
use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::Protocol;
use kipvs_planner::*;
use serde_json::json;

/// `default/web`: cluster IP 10.96.0.10:80, node port 30080, externalIP
/// 198.51.100.7, LB IP 203.0.113.7; node address 192.168.50.10.
fn web() -> Desired {
    let service = patched(
        svc("default", "web", &["10.96.0.10"], &[("http", 80, "")]),
        json!({
            "spec": { "type": "LoadBalancer", "externalIPs": ["198.51.100.7"],
                      "ports": [{ "name": "http", "port": 80, "nodePort": 30080 }] },
            "status": { "loadBalancer": { "ingress": [{ "ip": "203.0.113.7" }] } },
        }),
    );
    let slices = [slice(
        "default",
        "web-1",
        "web",
        "IPv4",
        &[("http", 8080, "TCP")],
        &[ep("10.244.1.2")],
    )];
    desired(
        &[service],
        &slices,
        &config_with_addresses(&["192.168.50.10"]),
    )
}

fn keys(set: &std::collections::BTreeSet<VirtualServiceKey>) -> Vec<String> {
    set.iter().map(ToString::to_string).collect()
}

const CLUSTER: &str = "10.96.0.10";
const NODE: &str = "192.168.50.10";
const EXTERNAL: &str = "198.51.100.7";
const LB: &str = "203.0.113.7";

fn every_key() -> Vec<VirtualServiceKey> {
    vec![
        tcp_key(CLUSTER, 80),
        tcp_key(NODE, 30080),
        tcp_key(EXTERNAL, 80),
        tcp_key(LB, 80),
        // Nobody wants these.
        tcp_key(CLUSTER, 443),
        tcp_key("10.0.0.1", 80),
    ]
}

#[test]
fn after_drift_a_wanted_cluster_ip_key_is_still_ours_and_nothing_else_is() {
    // Someone removed every address from kube-ipvs0 and flushed every set:
    // nothing but the cluster says whose the virtual services are.
    let d = web();
    let o = Observed::default();
    let ownership = ownership(&d, &o, every_key());
    assert_eq!(keys(&ownership.ours), ["tcp 10.96.0.10:80"]);
    // The strict rule stays for addresses shared with the rest of the
    // node: reported, left alone.
    assert_eq!(
        keys(&ownership.foreign),
        [
            "tcp 192.168.50.10:30080",
            "tcp 198.51.100.7:80",
            "tcp 203.0.113.7:80"
        ]
    );
}

#[test]
fn what_our_sets_list_or_our_link_carries_is_ours() {
    let d = web();
    let mut o = observed_from(&d);
    o.addresses.clear();
    o.addresses.insert(ip(EXTERNAL));
    // KUBE-LOAD-BALANCER lists the LB key; the node port is listed in
    // KUBE-NODE-PORT-IPS; the unwanted 10.96.0.10:443 is not listed.
    let ownership = ownership(&d, &o, every_key());
    assert_eq!(
        keys(&ownership.ours),
        [
            "tcp 10.96.0.10:80",
            "tcp 192.168.50.10:30080",
            "tcp 198.51.100.7:80",
            "tcp 203.0.113.7:80"
        ]
    );
    assert!(ownership.foreign.is_empty());
}

#[test]
fn a_listed_but_unwanted_key_is_ours_to_remove() {
    let d = web();
    let mut o = observed_from(&d);
    add_entries(
        &mut o,
        "KUBE-CLUSTER-IP",
        vec![Entry::ip_port(ip(CLUSTER), 6, 443).with_comment("default/old:https")],
    );
    let ownership = ownership(&d, &o, every_key());
    assert!(ownership.ours.contains(&tcp_key(CLUSTER, 443)));
    assert!(!ownership.ours.contains(&tcp_key("10.0.0.1", 80)));
}

#[test]
fn excluded_ranges_are_never_ours_even_when_listed() {
    let mut config = config_with_addresses(&[NODE]);
    config.exclude_cidrs = vec!["10.96.0.0/16".parse().unwrap()];
    let d = desired(
        &[svc("default", "web", &[CLUSTER], &[("http", 80, "")])],
        &[],
        &config,
    );
    // Not planned...
    assert!(d.virtual_services.is_empty());
    assert_eq!(
        warning_lines(&d),
        ["Service default/web: tcp 10.96.0.10:80 is in --ipvs-exclude-cidrs; left alone"]
    );
    // ...and not adopted, even though a set of ours lists it.
    let mut o = Observed::default();
    let cluster_ips = id("KUBE-CLUSTER-IP");
    o.sets
        .insert(cluster_ips, ObservedSet::created(cluster_ips, Some(3)));
    add_entries(
        &mut o,
        "KUBE-CLUSTER-IP",
        vec![Entry::ip_port(ip(CLUSTER), 6, 80).with_comment("default/web:http")],
    );
    let ownership = ownership(&d, &o, [tcp_key(CLUSTER, 80)]);
    assert_eq!(ownership, Ownership::default());
    assert!(is_excluded(&d.excluded, &tcp_key(CLUSTER, 80)));
    assert!(!is_excluded(&d.excluded, &tcp_key(NODE, 80)));
}

/// The sets as kube-proxy leaves them: same names and types, no comments,
/// its own entries (including node ports in the bitmaps).
fn kube_proxy_sets(d: &Desired) -> Observed {
    let mut o = observed_from(d);
    o.addresses.clear();
    for info in o.sets.values_mut() {
        info.header.comment = false;
        for entry in info.entries.values_mut() {
            entry.comment = None;
        }
    }
    // kube-ipvs's own set: kube-proxy never made it.
    o.sets.remove(&id("KUBE-NODE-PORT-IPS"));
    o.sets.remove(&id("KUBE-6-NODE-PORT-IPS"));
    o.virtual_services.clear();
    o
}

#[test]
fn taking_over_from_kube_proxy_adopts_its_node_ports_by_its_bitmaps() {
    let d = web();
    let o = kube_proxy_sets(&d);
    let ownership = ownership(&d, &o, every_key());
    assert_eq!(
        keys(&ownership.ours),
        [
            "tcp 10.96.0.10:80",
            "tcp 192.168.50.10:30080",
            "tcp 198.51.100.7:80",
            "tcp 203.0.113.7:80"
        ]
    );
    // The same bitmap made by kube-ipvs (with comments) is no evidence: a
    // node port number says nothing about who made a virtual service.
    let mut ours = o.clone();
    oset(&mut ours, "KUBE-NODE-PORT-TCP").header.comment = true;
    let ownership = ownership_of_every_key(&d, &ours);
    assert!(ownership.foreign.contains(&tcp_key(NODE, 30080)));
    // A UDP virtual service on the TCP node port's number is not adopted.
    let udp = VirtualServiceKey::tuple(ip(NODE), Protocol::Udp, 30080);
    assert_eq!(ownership_of(&d, &o, udp), Ownership::default());
}

fn ownership_of_every_key(d: &Desired, o: &Observed) -> Ownership {
    ownership(d, o, every_key())
}

fn ownership_of(d: &Desired, o: &Observed, key: VirtualServiceKey) -> Ownership {
    ownership(d, o, [key])
}

#[test]
fn sets_kube_proxy_made_are_replaced_filled_and_nothing_else_touches_them() {
    let d = web();
    let mut o = kube_proxy_sets(&d);
    o.virtual_services = observed_from(&d).virtual_services;
    o.addresses = d.addresses.clone();
    let plan = plan(&d, &o, &Default::default());
    let replaced: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::ReplaceSet {
                set,
                entries,
                reason,
            } => {
                assert!(reason.contains("without comments"), "{reason}");
                assert_eq!(entries, &d.sets[set].entries().cloned().collect::<Vec<_>>());
                Some(set.name())
            }
            _ => None,
        })
        .collect();
    // Every set but KUBE-NODE-PORT-IPS (created) in both families.
    assert_eq!(replaced.len(), 34, "{replaced:?}");
    assert!(lines(&plan)
        .contains(&"[node] create set KUBE-NODE-PORT-IPS hash:ip,port family inet".to_owned()));
    let sets_only = plan.steps.iter().all(|step| match &step.action {
        Action::ReplaceSet { .. } | Action::CreateSet { .. } => step.owner.is_none(),
        Action::AddSetEntries { set, .. } => set.name() == "KUBE-NODE-PORT-IPS",
        _ => false,
    });
    assert!(sets_only, "{:#?}", lines(&plan));
    // Once the replacements are in (the runtime reads the sets back), the
    // state converges with no further step.
    let after = apply(&plan, &o);
    let again = kipvs_planner::plan(&d, &after, &Default::default());
    assert!(again.is_empty(), "{:#?}", lines(&again));
}

#[test]
fn a_set_of_another_type_or_family_is_replaced_with_the_reason() {
    let d = web();
    let mut o = observed_from(&d);
    oset(&mut o, "KUBE-CLUSTER-IP").header.type_name = "hash:ip".into();
    oset(&mut o, "KUBE-LOOP-BACK").header.family = kipvs_packet_ipset::SetFamily::Inet6;
    let plan = plan(&d, &o, &Default::default());
    let lines = lines(&plan);
    assert_eq!(
        lines,
        [
            "[node] replace set KUBE-CLUSTER-IP with a hash:ip,port of 1 entries (it is hash:ip, kube-ipvs needs hash:ip,port)",
            "[node] replace set KUBE-LOOP-BACK with a hash:ip,port,ip of 0 entries (its family is inet6, kube-ipvs needs inet)",
        ]
    );
}
