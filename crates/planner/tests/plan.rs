//! `plan()`: ordering, minimality, drift repair, convergence, graceful
//! termination, ownership.

mod common;

use common::*;
use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::Protocol;
use kipvs_packet_nftables::{exprs, Expr};
use kipvs_planner::*;

/// No draining real server's grace is over.
const NONE_EXPIRED: std::collections::BTreeSet<RealServerKey> = std::collections::BTreeSet::new();

fn web() -> (
    Vec<std::sync::Arc<k8s_openapi::api::core::v1::Service>>,
    Vec<std::sync::Arc<k8s_openapi::api::discovery::v1::EndpointSlice>>,
) {
    (
        vec![svc("default", "web", &["10.96.0.10"], &[("http", 80, "")])],
        vec![slice(
            "default",
            "web-1",
            "web",
            "IPv4",
            &[("http", 8080, "")],
            &[("10.244.1.2", Some(true), Some("node-a")), ep("10.244.2.2")],
        )],
    )
}

/// A v4 cluster CIDR only: the v4 table has a `services` rule, the v6
/// table none.
fn cfg() -> NodeConfig {
    let mut c = config();
    c.cluster_cidrs = vec!["10.244.0.0/16".parse().unwrap()];
    c
}

/// The plan line that replaces `family`'s table with the one `desired`
/// wants (its size follows the table's rules, tested in `tables.rs`).
fn replace_line(desired: &Desired, family: IpFamily) -> String {
    let table = desired.tables.iter().find(|t| t.family == family).unwrap();
    format!(
        "[node] replace table {} kube-ipvs ({} chains, {} rules)",
        family.nf_proto_name(),
        table.chains.len(),
        table.rules.len()
    )
}

#[test]
fn the_cluster_cidr_adds_one_rule_to_its_family_only() {
    let d = desired(&[], &[], &cfg());
    let size = |family| {
        let table = d.tables.iter().find(|t| t.family == family).unwrap();
        table.render(&indexes()).unwrap().rules.len()
    };
    assert_eq!(size(IpFamily::V4), size(IpFamily::V6) + 1);
}

fn web_owner() -> Option<ServicePortName> {
    Some(ServicePortName::new("default", "web", "http"))
}

#[test]
fn identical_state_gives_an_empty_plan() {
    let (services, slices) = web();
    let d = desired(&services, &slices, &cfg());
    let p = plan(&d, &observed_from(&d), &NONE_EXPIRED);
    assert!(p.is_empty(), "{:#?}", lines(&p));

    // Also with dual stack and nothing at all.
    let ds = [svc(
        "default",
        "ds",
        &["10.96.0.1", "fd00::1"],
        &[("", 53, "UDP")],
    )];
    let d = desired(&ds, &[], &config());
    assert!(plan(&d, &observed_from(&d), &NONE_EXPIRED).is_empty());
    let d = desired(&[], &[], &config());
    assert!(plan(&d, &observed_from(&d), &NONE_EXPIRED).is_empty());
}

#[test]
fn new_service_is_complete_before_its_address_is_bound() {
    let (services, slices) = web();
    let empty = desired(&[], &[], &cfg());
    let mut observed = observed_from(&empty);
    // Start from a node where the sets do not exist yet for v6.
    observed.sets.remove(&id("KUBE-6-CLUSTER-IP"));
    let d = desired(&services, &slices, &cfg());
    let p = plan(&d, &observed, &NONE_EXPIRED);
    assert_eq!(
        lines(&p),
        [
            "[node] create set KUBE-6-CLUSTER-IP hash:ip,port family inet6",
            // Entries first: the KUBE-CLUSTER-IP one makes the virtual
            // service ours from the moment it exists.
            "[default/web:http] add 1 entries to KUBE-CLUSTER-IP",
            "[default/web:http] add 1 entries to KUBE-IPVS-IPS",
            "[default/web:http] add 1 entries to KUBE-LOOP-BACK",
            "[default/web:http] add service tcp 10.96.0.10:80 rr",
            "[default/web:http] add real server 10.244.1.2:8080 to tcp 10.96.0.10:80 (masq weight 1)",
            "[default/web:http] add real server 10.244.2.2:8080 to tcp 10.96.0.10:80 (masq weight 1)",
            "[default/web:http] bind 10.96.0.10",
        ]
    );
    let create = pos(&p, |a| matches!(a, Action::CreateSet { .. }));
    let add_svc = pos(&p, |a| matches!(a, Action::AddService(_)));
    let add_dest = pos(&p, |a| matches!(a, Action::AddDestination(..)));
    let add_entries = pos(&p, |a| matches!(a, Action::AddSetEntries { .. }));
    let bind = pos(&p, |a| matches!(a, Action::BindAddress(_)));
    assert!(create < add_entries && add_entries < add_svc && add_svc < add_dest && add_dest < bind);
    // The v6 table waits for the new set's index; the v4 table was fine.
    assert!(!p
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::ReplaceTable { .. })));
    assert!(p.steps.iter().skip(1).all(|s| s.owner == web_owner()));
    let Action::AddService(service) = &p.steps[add_svc].action else {
        unreachable!()
    };
    assert_eq!(service.key, tcp_key("10.96.0.10", 80).key());

    let after = apply(&p, &observed);
    // Re-planning right after the sets were created installs the v6 table.
    let p2 = plan(&d, &after, &NONE_EXPIRED);
    assert_eq!(lines(&p2), [replace_line(&d, IpFamily::V6)]);
    assert!(plan(&d, &apply(&p2, &after), &NONE_EXPIRED).is_empty());
}

#[test]
fn fresh_node_converges_in_two_rounds_and_binds_only_after_the_rules() {
    let (services, slices) = web();
    let d = desired(&services, &slices, &cfg());
    let fresh = Observed::default();

    let first = plan(&d, &fresh, &NONE_EXPIRED);
    let creates = first
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::CreateSet { .. }))
        .count();
    // Every set of both families, also the empty ones.
    assert_eq!(creates, SetRole::ALL.len() * 2);
    assert_eq!(creates, d.sets.len());
    assert!(first.steps[..creates].iter().all(|s| s.owner.is_none()));
    // No set index yet: no table, and so no address either.
    assert!(!first.steps.iter().any(|s| matches!(
        s.action,
        Action::ReplaceTable { .. } | Action::BindAddress(_)
    )));
    assert!(first
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::AddService(_))));

    let after_first = apply(&first, &fresh);
    let second = plan(&d, &after_first, &NONE_EXPIRED);
    assert_eq!(
        lines(&second),
        [
            replace_line(&d, IpFamily::V4),
            replace_line(&d, IpFamily::V6),
            "[default/web:http] bind 10.96.0.10".to_owned(),
        ]
    );
    let after_second = apply(&second, &after_first);
    assert!(plan(&d, &after_second, &NONE_EXPIRED).is_empty());
}

#[test]
fn one_new_endpoint_among_100_services_is_one_destination_and_one_entry() {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..100 {
        let name = format!("svc-{i}");
        services.push(svc(
            "default",
            &name,
            &[&format!("10.96.1.{i}")],
            &[("", 80, "")],
        ));
        slices.push(slice(
            "default",
            &format!("{name}-1"),
            &name,
            "IPv4",
            &[("", 8080, "")],
            &[ep(&format!("10.244.{i}.1"))],
        ));
    }
    let before = desired(&services, &slices, &cfg());
    let observed = observed_from(&before);

    slices[42] = slice(
        "default",
        "svc-42-1",
        "svc-42",
        "IPv4",
        &[("", 8080, "")],
        &[
            ep("10.244.42.1"),
            ("10.244.42.2", Some(true), Some("node-a")),
        ],
    );
    let after = desired(&services, &slices, &cfg());
    let p = plan(&after, &observed, &NONE_EXPIRED);
    assert_eq!(
        lines(&p),
        [
            "[default/svc-42] add 1 entries to KUBE-LOOP-BACK",
            "[default/svc-42] add real server 10.244.42.2:8080 to tcp 10.96.1.42:80 (masq weight 1)",
        ]
    );
    let Action::AddSetEntries { entries, .. } = &p.steps[0].action else {
        unreachable!()
    };
    assert_eq!(
        entry_strings(entries),
        [r#"10.244.42.2,tcp:8080,10.244.42.2 comment "default/svc-42""#]
    );
    // A remote endpoint (on top of the local one): only the real server.
    let observed = observed_from(&after);
    slices[7] = slice(
        "default",
        "svc-7-1",
        "svc-7",
        "IPv4",
        &[("", 8080, "")],
        &[ep("10.244.7.1"), ep("10.244.7.9")],
    );
    let p = plan(
        &desired(&services, &slices, &cfg()),
        &observed,
        &NONE_EXPIRED,
    );
    assert_eq!(
        lines(&p),
        ["[default/svc-7] add real server 10.244.7.9:8080 to tcp 10.96.1.7:80 (masq weight 1)"]
    );
}

#[test]
fn removed_endpoint_without_connections_goes_to_weight_0_first() {
    let (services, slices) = web();
    let mut observed = observed_from(&desired(&services, &slices, &cfg()));
    for (_, dests) in observed.virtual_services.values_mut() {
        for dest in dests {
            (dest.active_conns, dest.inactive_conns) = (0, 0);
        }
    }
    let fewer = [slice(
        "default",
        "web-1",
        "web",
        "IPv4",
        &[("http", 8080, "")],
        &[ep("10.244.2.2")],
    )];
    let d = desired(&services, &fewer, &cfg());
    let p = plan(&d, &observed, &NONE_EXPIRED);
    assert_eq!(
        lines(&p),
        [
            // Not deleted yet, even with no connection in the cache: its
            // counters are read again once nothing new can reach it.
            "[default/web:http] update real server 10.244.1.2:8080 to tcp 10.96.0.10:80 (masq weight 0)",
            "[default/web:http] delete 1 entries from KUBE-LOOP-BACK",
        ]
    );
    let Action::DeleteSetEntries { entries, .. } = &p.steps[1].action else {
        unreachable!()
    };
    // Deleted by content: no comment sent.
    assert_eq!(entry_strings(entries), ["10.244.1.2,tcp:8080,10.244.1.2"]);
    // At weight 0 with no connection: deleted by the next plan.
    let drained = apply(&p, &observed);
    assert_eq!(
        lines(&plan(&d, &drained, &NONE_EXPIRED)),
        ["[default/web:http] delete real server 10.244.1.2:8080 from tcp 10.96.0.10:80"]
    );
}

#[test]
fn removed_service_is_unbound_and_unlisted_before_it_is_deleted() {
    let (mut services, slices) = web();
    services.push(svc("default", "db", &["10.96.0.20"], &[("", 5432, "")]));
    let observed = observed_from(&desired(&services, &slices, &cfg()));
    let d = desired(&services[..1], &slices, &cfg());
    let p = plan(&d, &observed, &NONE_EXPIRED);
    let db = Some(ServicePortName::new("default", "db", ""));
    assert_eq!(
        lines(&p),
        [
            "[default/db] unbind 10.96.0.20",
            "[default/db] delete 1 entries from KUBE-IPVS-IPS",
            "[default/db] delete service tcp 10.96.0.20:5432",
            // Last: until the virtual service is gone, this entry is what
            // marks it as ours.
            "[default/db] delete 1 entries from KUBE-CLUSTER-IP",
        ]
    );
    assert!(p.steps.iter().all(|s| s.owner == db));
    let unbind = pos(&p, |a| matches!(a, Action::UnbindAddress(_)));
    let del_entries = pos(&p, |a| matches!(a, Action::DeleteSetEntries { .. }));
    let del_svc = pos(&p, |a| matches!(a, Action::DeleteService(_)));
    assert!(unbind < del_svc && del_entries < del_svc);
    // No separate DeleteDestination for a deleted service.
    assert!(!p
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::DeleteDestination(..))));
    assert!(plan(&d, &apply(&p, &observed), &NONE_EXPIRED).is_empty());
}

#[test]
fn removal_without_a_readable_comment_has_no_owner() {
    let (services, slices) = web();
    let mut observed = observed_from(&desired(&services, &slices, &cfg()));
    for info in observed.sets.values_mut() {
        for e in info.entries.values_mut() {
            e.comment = None;
        }
    }
    let d = desired(&[], &[], &cfg());
    let p = plan(&d, &observed, &NONE_EXPIRED);
    assert!(p.steps.iter().all(|s| s.owner.is_none()), "{:#?}", p.steps);
    assert!(plan(&d, &apply(&p, &observed), &NONE_EXPIRED).is_empty());
}

#[test]
fn scheduler_change_updates_the_service_in_place() {
    let (services, slices) = web();
    let observed = observed_from(&desired(&services, &slices, &cfg()));
    let mut c = cfg();
    c.scheduler = "lc".into();
    let d = desired(&services, &slices, &c);
    let p = plan(&d, &observed, &NONE_EXPIRED);
    assert_eq!(
        lines(&p),
        ["[default/web:http] update service tcp 10.96.0.10:80 lc"]
    );
}

#[test]
fn destination_weight_drift_is_updated() {
    let (services, slices) = web();
    let d = desired(&services, &slices, &cfg());
    let mut observed = observed_from(&d);
    let vs = observed
        .virtual_services
        .get_mut(&tcp_key("10.96.0.10", 80))
        .unwrap();
    vs.1[0].weight = 0;
    let p = plan(&d, &observed, &NONE_EXPIRED);
    assert_eq!(
        lines(&p),
        ["[default/web:http] update real server 10.244.1.2:8080 to tcp 10.96.0.10:80 (masq weight 1)"]
    );
}

#[test]
fn stats_counters_and_entry_comments_are_not_differences() {
    let (services, slices) = web();
    let d = desired(&services, &slices, &cfg());
    let mut observed = observed_from(&d);
    for (service, dests) in observed.virtual_services.values_mut() {
        service.stats = None;
        for dest in dests {
            dest.active_conns = 1000;
            dest.persistent_conns = 5;
        }
    }
    // Added earlier under another comment: still the same entry.
    for e in oset(&mut observed, "KUBE-CLUSTER-IP").entries.values_mut() {
        e.comment = Some("someone else".into());
    }
    assert!(plan(&d, &observed, &NONE_EXPIRED).is_empty());
}

mod drift {
    use super::*;

    fn setup() -> (Desired, Observed) {
        let (services, slices) = web();
        let d = desired(&services, &slices, &cfg());
        let observed = observed_from(&d);
        (d, observed)
    }

    #[test]
    fn missing_real_server() {
        let (d, mut o) = setup();
        o.virtual_services
            .get_mut(&tcp_key("10.96.0.10", 80))
            .unwrap()
            .1
            .retain(|dest| dest.addr != ip("10.244.2.2"));
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(
            lines(&p),
            ["[default/web:http] add real server 10.244.2.2:8080 to tcp 10.96.0.10:80 (masq weight 1)"]
        );
    }

    #[test]
    fn foreign_real_server() {
        let (d, mut o) = setup();
        let vs = o
            .virtual_services
            .get_mut(&tcp_key("10.96.0.10", 80))
            .unwrap();
        vs.1.push(kipvs_packet_ipvs::Destination::new(ip("10.1.1.1"), 1));
        let p = plan(&d, &o, &NONE_EXPIRED);
        // Retired like any real server the cluster does not list.
        assert_eq!(
            lines(&p),
            ["[default/web:http] update real server 10.1.1.1:1 to tcp 10.96.0.10:80 (masq weight 0)"]
        );
    }

    #[test]
    fn missing_virtual_service() {
        let (d, mut o) = setup();
        o.virtual_services.clear();
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(p.len(), 3, "{:#?}", lines(&p));
        assert!(matches!(p.steps[0].action, Action::AddService(_)));
        assert!(plan(&d, &apply(&p, &o), &NONE_EXPIRED).is_empty());
    }

    #[test]
    fn flushed_set() {
        let (d, mut o) = setup();
        oset(&mut o, "KUBE-CLUSTER-IP").entries.clear();
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(
            lines(&p),
            ["[default/web:http] add 1 entries to KUBE-CLUSTER-IP"]
        );
        let Action::AddSetEntries { set, entries } = &p.steps[0].action else {
            unreachable!()
        };
        assert_eq!(set.name(), "KUBE-CLUSTER-IP");
        assert_eq!(
            entries,
            &[Entry::ip_port(ip("10.96.0.10"), 6, 80).with_comment("default/web:http")]
        );
    }

    #[test]
    fn foreign_set_entry() {
        let (d, mut o) = setup();
        let stale = Entry::ip_port(ip("10.96.9.9"), 17, 53).with_comment("gone/dns:dns");
        add_entries(&mut o, "KUBE-CLUSTER-IP", vec![stale]);
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(
            lines(&p),
            ["[gone/dns:dns] delete 1 entries from KUBE-CLUSTER-IP"]
        );
    }

    #[test]
    fn missing_address() {
        let (d, mut o) = setup();
        o.addresses.clear();
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(lines(&p), ["[default/web:http] bind 10.96.0.10"]);
    }

    #[test]
    fn foreign_address() {
        let (d, mut o) = setup();
        o.addresses.insert(ip("10.96.7.7"));
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(lines(&p), ["[node] unbind 10.96.7.7"]);
    }

    #[test]
    fn missing_table() {
        let (d, mut o) = setup();
        o.tables.remove(&IpFamily::V6);
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(lines(&p), [replace_line(&d, IpFamily::V6)]);
        let Action::ReplaceTable { table, .. } = &p.steps[0].action else {
            unreachable!()
        };
        assert_eq!(table, &d.tables[1].render(&o.set_indexes()).unwrap());
        assert!(plan(&d, &apply(&p, &o), &NONE_EXPIRED).is_empty());
    }

    #[test]
    fn table_with_a_changed_rule() {
        let (d, mut o) = setup();
        let table = o.tables.get_mut(&IpFamily::V4).unwrap();
        // Someone changed the masquerade rule to not be fully random.
        let rule = table
            .rules
            .iter_mut()
            .find(|r| r.exprs.last() == Some(&exprs::masquerade(true)))
            .unwrap();
        *rule.exprs.last_mut().unwrap() = exprs::masquerade(false);
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(lines(&p), [replace_line(&d, IpFamily::V4)]);
        assert!(plan(&d, &apply(&p, &o), &NONE_EXPIRED).is_empty());
    }

    #[test]
    fn table_with_an_extra_rule_or_a_recreated_set() {
        let (d, mut o) = setup();
        let extra = o.tables[&IpFamily::V4].rules[0].clone();
        o.tables.get_mut(&IpFamily::V4).unwrap().rules.push(extra);
        assert_eq!(
            lines(&plan(&d, &o, &NONE_EXPIRED)),
            [replace_line(&d, IpFamily::V4)]
        );

        // A set recreated under another index: the rules must follow.
        let (d, mut o) = setup();
        oset(&mut o, "KUBE-6-LOOP-BACK").header.index = Some(40);
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(lines(&p), [replace_line(&d, IpFamily::V6)]);
        let Action::ReplaceTable { table, .. } = &p.steps[0].action else {
            unreachable!()
        };
        let uses_40 = table.rules.iter().any(|rule| {
            rule.exprs.iter().any(|x| {
                *x == exprs::xt_set_match(
                    40,
                    &[
                        kipvs_packet_nftables::xt_set::SetDir::Dst,
                        kipvs_packet_nftables::xt_set::SetDir::Dst,
                        kipvs_packet_nftables::xt_set::SetDir::Src,
                    ],
                    false,
                )
            })
        });
        assert!(uses_40);
    }

    #[test]
    fn counters_in_dumped_rules_are_not_differences() {
        let (d, mut o) = setup();
        for rule in &mut o.tables.get_mut(&IpFamily::V4).unwrap().rules {
            // The kernel dumps bitwise with its op.
            for x in rule.exprs.iter_mut() {
                if let Expr::Bitwise(b) = x {
                    if !b
                        .iter()
                        .any(|a| matches!(a, kipvs_packet_nftables::expr::BitwiseAttr::Op(_)))
                    {
                        b.push(kipvs_packet_nftables::expr::BitwiseAttr::Op(
                            kipvs_packet_nftables::expr::BitwiseOp::MaskXor,
                        ));
                    }
                }
            }
        }
        assert!(plan(&d, &o, &NONE_EXPIRED).is_empty());
    }

    #[test]
    fn table_withheld_while_a_set_index_is_missing() {
        let (d, mut o) = setup();
        o.tables.clear();
        oset(&mut o, "KUBE-IPVS-IPS").header.index = None;
        o.addresses.clear();
        let p = plan(&d, &o, &NONE_EXPIRED);
        // The v6 table goes in; the v4 table and the v4 address wait.
        assert_eq!(lines(&p), [replace_line(&d, IpFamily::V6)]);
    }
}

#[test]
fn shared_cluster_ip_address_belongs_to_its_first_port() {
    let services = [svc(
        "default",
        "dns",
        &["10.96.0.10"],
        &[("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")],
    )];
    let d = desired(&services, &[], &cfg());
    let mut o = observed_from(&d);
    o.addresses.clear();
    let p = plan(&d, &o, &NONE_EXPIRED);
    // TCP (6) sorts before UDP (17).
    assert_eq!(lines(&p), ["[default/dns:dns-tcp] bind 10.96.0.10"]);
    assert_eq!(
        d.virtual_services[&VirtualServiceKey::tuple(ip("10.96.0.10"), Protocol::Udp, 53)]
            .owner
            .port
            .as_ref(),
        "dns"
    );
}

/// Graceful termination: what becomes of a real server the cluster no
/// longer lists. `observed_from` reports 3 active + 7 inactive connections
/// on every real server.
mod drain {
    use std::collections::BTreeSet;

    use kipvs_packet_ipvs::Destination;

    use super::*;

    /// `web` with only the remote endpoint left (10.244.1.2 went away).
    fn without_local_endpoint(protocol: &str) -> (Desired, Observed) {
        let services = [svc(
            "default",
            "web",
            &["10.96.0.10"],
            &[("http", 80, protocol)],
        )];
        let slices = |endpoints: &[Ep]| {
            [slice(
                "default",
                "web-1",
                "web",
                "IPv4",
                &[("http", 8080, protocol)],
                endpoints,
            )]
        };
        let before = desired(
            &services,
            &slices(&[("10.244.1.2", Some(true), Some("node-a")), ep("10.244.2.2")]),
            &cfg(),
        );
        let after = desired(&services, &slices(&[ep("10.244.2.2")]), &cfg());
        (after, observed_from(&before))
    }

    fn key(protocol: Protocol) -> VirtualServiceKey {
        VirtualServiceKey::tuple(ip("10.96.0.10"), protocol, 80)
    }

    fn gone(protocol: Protocol) -> RealServerKey {
        RealServerKey {
            service: key(protocol),
            addr: ip("10.244.1.2"),
            port: 8080,
        }
    }

    fn real_server(o: &mut Observed, protocol: Protocol) -> &mut Destination {
        let dests = &mut o.virtual_services.get_mut(&key(protocol)).unwrap().1;
        dests
            .iter_mut()
            .find(|d| d.addr == ip("10.244.1.2"))
            .unwrap()
    }

    #[test]
    fn tcp_real_server_with_connections_goes_to_weight_0_and_waits() {
        let (d, o) = without_local_endpoint("");
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(
            lines(&p),
            [
                "[default/web:http] update real server 10.244.1.2:8080 to tcp 10.96.0.10:80 (masq weight 0)",
                "[default/web:http] delete 1 entries from KUBE-LOOP-BACK",
            ]
        );
        // Only the weight changes; the counters it was planned from stay.
        let Action::UpdateDestination(_, dest) = &p.steps[0].action else {
            unreachable!()
        };
        assert_eq!(
            (dest.weight, dest.active_conns, dest.inactive_conns),
            (0, 3, 7)
        );
        let after = apply(&p, &o);
        assert_eq!(draining(&d, &after), BTreeSet::from([gone(Protocol::Tcp)]));
        // At weight 0 with connections and time left: nothing to do.
        assert!(plan(&d, &after, &NONE_EXPIRED).is_empty());
    }

    #[test]
    fn counters_are_read_again_only_where_a_real_server_would_be_deleted() {
        let (d, o) = without_local_endpoint("");
        // In service: it goes to weight 0 whatever its counters say.
        assert!(retiring(&d, &o).is_empty());
        let mut drained = apply(&plan(&d, &o, &NONE_EXPIRED), &o);
        // At weight 0 with connections: the periodic refresh takes over.
        assert!(retiring(&d, &drained).is_empty());
        // At weight 0 and no connection in the cache: read before deleting.
        let rs = real_server(&mut drained, Protocol::Tcp);
        (rs.active_conns, rs.inactive_conns) = (0, 0);
        assert_eq!(retiring(&d, &drained), BTreeSet::from([key(Protocol::Tcp)]));
        // Nothing removed; or UDP, deleted whatever its counters say.
        assert!(retiring(&d, &observed_from(&d)).is_empty());
        let (d, o) = without_local_endpoint("UDP");
        assert!(retiring(&d, &o).is_empty());
    }

    #[test]
    fn only_inactive_connections_still_drain() {
        let (d, mut o) = without_local_endpoint("");
        real_server(&mut o, Protocol::Tcp).active_conns = 0;
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert!(matches!(
            &p.steps[0].action,
            Action::UpdateDestination(_, dest) if dest.weight == 0
        ));
    }

    #[test]
    fn tcp_real_server_without_connections_goes_to_weight_0_then_is_deleted() {
        let (d, mut o) = without_local_endpoint("");
        let rs = real_server(&mut o, Protocol::Tcp);
        rs.active_conns = 0;
        rs.inactive_conns = 0;
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(
            lines(&p)[0],
            "[default/web:http] update real server 10.244.1.2:8080 to tcp 10.96.0.10:80 (masq weight 0)"
        );
        assert_eq!(p.len(), 2);
        let drained = apply(&p, &o);
        assert_eq!(
            draining(&d, &drained),
            BTreeSet::from([gone(Protocol::Tcp)])
        );
        let p = plan(&d, &drained, &NONE_EXPIRED);
        assert_eq!(
            lines(&p),
            ["[default/web:http] delete real server 10.244.1.2:8080 from tcp 10.96.0.10:80"]
        );
        let after = apply(&p, &drained);
        assert!(draining(&d, &after).is_empty());
        assert!(plan(&d, &after, &NONE_EXPIRED).is_empty());
    }

    #[test]
    fn draining_real_server_goes_when_its_connections_end_or_its_grace_expires() {
        let (d, o) = without_local_endpoint("");
        let mut o = apply(&plan(&d, &o, &NONE_EXPIRED), &o);
        assert_eq!(real_server(&mut o, Protocol::Tcp).weight, 0);
        let delete =
            ["[default/web:http] delete real server 10.244.1.2:8080 from tcp 10.96.0.10:80"];

        // Grace over with connections left: deleted anyway.
        let expired = BTreeSet::from([gone(Protocol::Tcp)]);
        assert_eq!(lines(&plan(&d, &o, &expired)), delete);
        // Another real server's expiry changes nothing here.
        let other = BTreeSet::from([RealServerKey {
            port: 9090,
            ..gone(Protocol::Tcp)
        }]);
        assert!(plan(&d, &o, &other).is_empty());

        // Counters read again: the last connection ended.
        let rs = real_server(&mut o, Protocol::Tcp);
        rs.active_conns = 0;
        rs.inactive_conns = 0;
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(lines(&p), delete);
        assert!(draining(&d, &apply(&p, &o)).is_empty());
    }

    #[test]
    fn udp_and_sctp_real_servers_are_deleted_at_once_despite_connections() {
        for (protocol, name) in [(Protocol::Udp, "UDP"), (Protocol::Sctp, "SCTP")] {
            let (d, o) = without_local_endpoint(name);
            let p = plan(&d, &o, &NONE_EXPIRED);
            assert_eq!(
                lines(&p)[0],
                format!(
                    "[default/web:http] delete real server 10.244.1.2:8080 from {protocol} 10.96.0.10:80"
                )
            );
            assert!(!p
                .steps
                .iter()
                .any(|s| matches!(s.action, Action::UpdateDestination(..))));
            // Even one found at weight 0 (left by someone else) never drains.
            let (d, mut o) = without_local_endpoint(name);
            real_server(&mut o, protocol).weight = 0;
            assert!(draining(&d, &o).is_empty());
            assert!(matches!(
                plan(&d, &o, &NONE_EXPIRED).steps[0].action,
                Action::DeleteDestination(..)
            ));
        }
    }

    #[test]
    fn endpoint_that_comes_back_returns_to_weight_1() {
        let (d, o) = without_local_endpoint("");
        let drained = apply(&plan(&d, &o, &NONE_EXPIRED), &o);
        let (services, slices) = web();
        let back = desired(&services, &slices, &cfg());
        assert!(draining(&back, &drained).is_empty());
        let p = plan(&back, &drained, &NONE_EXPIRED);
        assert_eq!(
            lines(&p),
            [
                "[default/web:http] add 1 entries to KUBE-LOOP-BACK",
                "[default/web:http] update real server 10.244.1.2:8080 to tcp 10.96.0.10:80 (masq weight 1)",
            ]
        );
        assert!(plan(&back, &apply(&p, &drained), &NONE_EXPIRED).is_empty());
    }

    #[test]
    fn draining_is_rebuilt_from_weight_0_real_servers_the_cluster_no_longer_lists() {
        // After a restart: the kernel shows a weight-0 real server the
        // cluster does not list (and one it lists, still at weight 1).
        let (d, mut o) = without_local_endpoint("");
        real_server(&mut o, Protocol::Tcp).weight = 0;
        assert_eq!(draining(&d, &o), BTreeSet::from([gone(Protocol::Tcp)]));
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(
            lines(&p),
            ["[default/web:http] delete 1 entries from KUBE-LOOP-BACK"]
        );
    }

    #[test]
    fn removed_service_is_deleted_at_once_with_its_real_servers() {
        let (services, slices) = web();
        let o = observed_from(&desired(&services, &slices, &cfg()));
        let d = desired(&[], &[], &cfg());
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert!(p
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::DeleteService(_))));
        assert!(!p.steps.iter().any(|s| matches!(
            s.action,
            Action::UpdateDestination(..) | Action::DeleteDestination(..)
        )));
        assert!(draining(&d, &o).is_empty());
        assert!(plan(&d, &apply(&p, &o), &NONE_EXPIRED).is_empty());
    }
}

/// Which virtual services the kernel shows as ours, and the order that
/// keeps them ours through a half-done removal.
mod ownership {
    use kipvs_packet_ipvs::{Destination, Service};

    use super::*;

    const NODE_IP: &str = "192.168.1.10";

    fn key(addr: &str, protocol: Protocol, port: u16) -> VirtualServiceKey {
        VirtualServiceKey::tuple(ip(addr), protocol, port)
    }

    /// Nothing desired; the kernel holds what a node-port service and an
    /// externalIP service (on another interface's address) left: their
    /// virtual services and the set entries that claim them.
    fn leftovers() -> (Desired, Observed) {
        let d = desired(&[], &[], &cfg());
        let mut o = observed_from(&d);
        let entries = add_entries;
        entries(
            &mut o,
            "KUBE-NODE-PORT-TCP",
            vec![Entry::port(30080).with_comment("default/np:http")],
        );
        entries(
            &mut o,
            "KUBE-NODE-PORT-IPS",
            vec![Entry::ip_port(ip(NODE_IP), 6, 30080).with_comment("default/np:http")],
        );
        entries(
            &mut o,
            "KUBE-EXTERNAL-IP",
            vec![Entry::ip_port(ip("203.0.113.7"), 6, 80).with_comment("default/ext:http")],
        );
        for k in [
            key(NODE_IP, Protocol::Tcp, 30080),
            key("203.0.113.7", Protocol::Tcp, 80),
        ] {
            let mut dest = Destination::new(ip("10.244.2.2"), 8080);
            dest.active_conns = 4;
            o.virtual_services
                .insert(k, (Service::new(k.key(), "rr"), vec![dest]));
        }
        (d, o)
    }

    #[test]
    fn only_exact_set_entries_claim_virtual_services() {
        let (_, mut o) = leftovers();
        let claimed = o.claimed();
        assert!(claimed.contains(&key(NODE_IP, Protocol::Tcp, 30080)));
        assert!(claimed.contains(&key("203.0.113.7", Protocol::Tcp, 80)));
        // A node port number claims nothing by itself: another program's
        // service on that port of another address stays its own; so do
        // another port, protocol or family on a claimed address.
        assert!(!claimed.contains(&key("10.0.0.5", Protocol::Tcp, 30080)));
        assert!(!claimed.contains(&key(NODE_IP, Protocol::Tcp, 22)));
        assert!(!claimed.contains(&key(NODE_IP, Protocol::Udp, 30080)));
        assert!(!claimed.contains(&key("fd00::10", Protocol::Tcp, 30080)));
        assert!(!claimed.contains(&key("203.0.113.7", Protocol::Tcp, 443)));

        for (set, entry) in [
            (
                "KUBE-LOAD-BALANCER",
                Entry::ip_port(ip("198.51.100.1"), 17, 53),
            ),
            ("KUBE-CLUSTER-IP", Entry::ip_port(ip("10.96.0.99"), 6, 1234)),
            (
                "KUBE-6-NODE-PORT-IPS",
                Entry::ip_port(ip("fd00::10"), 132, 30132),
            ),
            // Sets that claim nothing: addresses, bare ports, -LOCAL.
            ("KUBE-6-IPVS-IPS", Entry::ip(ip("fd00::10"))),
            ("KUBE-HEALTH-CHECK-NODE-PORT", Entry::port(31000)),
            (
                "KUBE-LOAD-BALANCER-LOCAL",
                Entry::ip_port(ip("198.51.100.2"), 6, 80),
            ),
        ] {
            add_entries(&mut o, set, vec![entry]);
        }
        o.addresses.insert(ip("10.96.0.99"));
        let claimed = o.claimed();
        assert!(claimed.contains(&key("198.51.100.1", Protocol::Udp, 53)));
        assert!(!claimed.contains(&key("198.51.100.1", Protocol::Tcp, 53)));
        assert!(claimed.contains(&key("10.96.0.99", Protocol::Tcp, 1234)));
        // Bound to kube-ipvs0 is not enough: other ports there are not ours.
        assert!(!claimed.contains(&key("10.96.0.99", Protocol::Tcp, 443)));
        assert!(claimed.contains(&key("fd00::10", Protocol::Sctp, 30132)));
        assert!(!claimed.contains(&key("fd00::10", Protocol::Tcp, 1)));
        assert!(!claimed.contains(&key(NODE_IP, Protocol::Tcp, 31000)));
        assert!(!claimed.contains(&key("198.51.100.2", Protocol::Tcp, 80)));
        assert_eq!(claimed.len(), 5);
    }

    #[test]
    fn a_foreign_virtual_service_at_a_desired_key_is_left_alone() {
        // default/web wants TCP 10.96.0.10:80, but another program's
        // virtual service (no claiming entry of ours) holds that key.
        let d = desired(
            &[svc("default", "web", &["10.96.0.10"], &[("http", 80, "")])],
            &[slice(
                "default",
                "web-1",
                "web",
                "IPv4",
                &[("http", 8080, "")],
                &[ep("10.244.2.2")],
            )],
            &cfg(),
        );
        let mut o = observed_from(&desired(&[], &[], &cfg()));
        let held = key("10.96.0.10", Protocol::Tcp, 80);
        o.foreign.insert(held);
        let p = plan(&d, &o, &NONE_EXPIRED);
        let touches_it = p.steps.iter().any(|step| match &step.action {
            Action::AddService(s) | Action::UpdateService(s) => s.key == held.key(),
            Action::AddDestination(k, _) | Action::DeleteService(k) => *k == held.key(),
            Action::AddSetEntries { set, entries } => {
                set.name() == "KUBE-CLUSTER-IP" && entries.iter().any(|e| e.port == Some(80))
            }
            _ => false,
        });
        assert!(!touches_it, "{:#?}", lines(&p));
        let warnings = conflicts(&d, &o);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].object, "Service default/web");
        assert!(
            warnings[0].reason.contains(
                "tcp 10.96.0.10:80 is held by an IPVS virtual service kube-ipvs did not create"
            ),
            "{}",
            warnings[0].reason
        );
    }

    #[test]
    fn claiming_entries_are_deleted_only_after_their_virtual_services() {
        let (d, o) = leftovers();
        let p = plan(&d, &o, &NONE_EXPIRED);
        assert_eq!(
            lines(&p),
            [
                // Deleted at once, with connections: no draining for a
                // removed service.
                "[default/np:http] delete 1 entries from KUBE-NODE-PORT-TCP",
                "[default/np:http] delete service tcp 192.168.1.10:30080",
                "[default/ext:http] delete service tcp 203.0.113.7:80",
                "[default/ext:http] delete 1 entries from KUBE-EXTERNAL-IP",
                "[default/np:http] delete 1 entries from KUBE-NODE-PORT-IPS",
            ]
        );
        assert!(plan(&d, &apply(&p, &o), &NONE_EXPIRED).is_empty());
        // Stopped after the first deletion: the rest is still ours.
        let mut half = o.clone();
        half.virtual_services
            .remove(&key(NODE_IP, Protocol::Tcp, 30080));
        assert!(half
            .claimed()
            .contains(&key("203.0.113.7", Protocol::Tcp, 80)));
    }
}
