//! `plan()`: ordering, minimality, drift repair, convergence.

mod common;

use common::*;
use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::Protocol;
use kipvs_packet_nftables::{exprs, Expr, NftBody, RuleAttr};
use kipvs_planner::*;

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

/// A v4 cluster CIDR only: the v4 table has a `services` rule (3 table
/// messages + 7 chains + 9 rules = 19), the v6 table none (18).
fn cfg() -> NodeConfig {
    let mut c = config();
    c.cluster_cidrs = vec!["10.244.0.0/16".parse().unwrap()];
    c
}

fn web_owner() -> Option<ServicePortName> {
    Some(ServicePortName::new("default", "web", "http"))
}

#[test]
fn identical_state_gives_an_empty_plan() {
    let (services, slices) = web();
    let d = desired(&services, &slices, &cfg());
    let p = plan(&d, &observed_from(&d));
    assert!(p.is_empty(), "{:#?}", lines(&p));

    // Also with dual stack and nothing at all.
    let ds = [svc(
        "default",
        "ds",
        &["10.96.0.1", "fd00::1"],
        &[("", 53, "UDP")],
    )];
    let d = desired(&ds, &[], &config());
    assert!(plan(&d, &observed_from(&d)).is_empty());
    let d = desired(&[], &[], &config());
    assert!(plan(&d, &observed_from(&d)).is_empty());
}

#[test]
fn new_service_is_complete_before_its_address_is_bound() {
    let (services, slices) = web();
    let empty = desired(&[], &[], &cfg());
    let mut observed = observed_from(&empty);
    // Start from a node where the sets do not exist yet for v6.
    observed.sets.remove("KUBE-6-CLUSTER-IP");
    observed.set_indexes.remove("KUBE-6-CLUSTER-IP");
    let d = desired(&services, &slices, &cfg());
    let p = plan(&d, &observed);
    assert_eq!(
        lines(&p),
        [
            "[node] create set KUBE-6-CLUSTER-IP hash:ip,port family inet6",
            "[default/web:http] add service tcp 10.96.0.10:80 rr",
            "[default/web:http] add real server 10.244.1.2:8080 to tcp 10.96.0.10:80 (masq weight 1)",
            "[default/web:http] add real server 10.244.2.2:8080 to tcp 10.96.0.10:80 (masq weight 1)",
            "[default/web:http] add 1 entries to KUBE-CLUSTER-IP",
            "[default/web:http] add 1 entries to KUBE-IPVS-IPS",
            "[default/web:http] add 1 entries to KUBE-LOOP-BACK",
            "[default/web:http] bind 10.96.0.10",
        ]
    );
    let create = pos(&p, |a| matches!(a, Action::CreateSet { .. }));
    let add_svc = pos(&p, |a| matches!(a, Action::AddService(_)));
    let add_dest = pos(&p, |a| matches!(a, Action::AddDestination(..)));
    let add_entries = pos(&p, |a| matches!(a, Action::AddSetEntries { .. }));
    let bind = pos(&p, |a| matches!(a, Action::BindAddress(_)));
    assert!(create < add_svc && add_svc < add_dest && add_dest < add_entries && add_entries < bind);
    // The v6 table waits for the new set's index; the v4 table was fine.
    assert!(!p
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::ReplaceTable { .. })));
    assert!(p.steps.iter().skip(1).all(|s| s.owner == web_owner()));
    let Action::AddService(service) = &p.steps[1].action else {
        unreachable!()
    };
    assert_eq!(service.key, tcp_key("10.96.0.10", 80).key());

    let after = apply(&p, &observed);
    // Re-planning right after the sets were created installs the v6 table.
    let p2 = plan(&d, &after);
    assert_eq!(
        lines(&p2),
        ["[node] replace table Ipv6 kube-ipvs (18 messages)"]
    );
    assert!(plan(&d, &apply(&p2, &after)).is_empty());
}

#[test]
fn fresh_node_converges_in_two_rounds_and_binds_only_after_the_rules() {
    let (services, slices) = web();
    let d = desired(&services, &slices, &cfg());
    let fresh = Observed::default();

    let first = plan(&d, &fresh);
    let creates = first
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::CreateSet { .. }))
        .count();
    assert_eq!(creates, 6);
    assert!(first.steps[..6].iter().all(|s| s.owner.is_none()));
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
    let second = plan(&d, &after_first);
    assert_eq!(
        lines(&second),
        [
            "[node] replace table Ipv4 kube-ipvs (19 messages)",
            "[node] replace table Ipv6 kube-ipvs (18 messages)",
            "[default/web:http] bind 10.96.0.10",
        ]
    );
    let after_second = apply(&second, &after_first);
    assert!(plan(&d, &after_second).is_empty());
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
    let p = plan(&after, &observed);
    assert_eq!(
        lines(&p),
        [
            "[default/svc-42] add real server 10.244.42.2:8080 to tcp 10.96.1.42:80 (masq weight 1)",
            "[default/svc-42] add 1 entries to KUBE-LOOP-BACK",
        ]
    );
    let Action::AddSetEntries { entries, .. } = &p.steps[1].action else {
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
    let p = plan(&desired(&services, &slices, &cfg()), &observed);
    assert_eq!(
        lines(&p),
        ["[default/svc-7] add real server 10.244.7.9:8080 to tcp 10.96.1.7:80 (masq weight 1)"]
    );
}

#[test]
fn removed_endpoint_is_deleted_with_its_loop_back_entry() {
    let (services, slices) = web();
    let observed = observed_from(&desired(&services, &slices, &cfg()));
    let fewer = [slice(
        "default",
        "web-1",
        "web",
        "IPv4",
        &[("http", 8080, "")],
        &[ep("10.244.2.2")],
    )];
    let d = desired(&services, &fewer, &cfg());
    let p = plan(&d, &observed);
    assert_eq!(
        lines(&p),
        [
            "[default/web:http] delete real server 10.244.1.2:8080 from tcp 10.96.0.10:80",
            "[default/web:http] delete 1 entries from KUBE-LOOP-BACK",
        ]
    );
    let Action::DeleteSetEntries { entries, .. } = &p.steps[1].action else {
        unreachable!()
    };
    // Deleted by content: no comment sent.
    assert_eq!(entry_strings(entries), ["10.244.1.2,tcp:8080,10.244.1.2"]);
    assert!(plan(&d, &apply(&p, &observed)).is_empty());
}

#[test]
fn removed_service_is_unbound_and_unlisted_before_it_is_deleted() {
    let (mut services, slices) = web();
    services.push(svc("default", "db", &["10.96.0.20"], &[("", 5432, "")]));
    let observed = observed_from(&desired(&services, &slices, &cfg()));
    let d = desired(&services[..1], &slices, &cfg());
    let p = plan(&d, &observed);
    let db = Some(ServicePortName::new("default", "db", ""));
    assert_eq!(
        lines(&p),
        [
            "[default/db] unbind 10.96.0.20",
            "[default/db] delete 1 entries from KUBE-CLUSTER-IP",
            "[default/db] delete service tcp 10.96.0.20:5432",
            // Last: until the virtual service is gone, this entry is what
            // marks it as ours once its address is unbound.
            "[default/db] delete 1 entries from KUBE-IPVS-IPS",
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
    assert!(plan(&d, &apply(&p, &observed)).is_empty());
}

#[test]
fn removal_without_a_readable_comment_has_no_owner() {
    let (services, slices) = web();
    let mut observed = observed_from(&desired(&services, &slices, &cfg()));
    for info in observed.sets.values_mut() {
        for e in &mut info.entries {
            e.comment = None;
        }
    }
    let d = desired(&[], &[], &cfg());
    let p = plan(&d, &observed);
    assert!(p.steps.iter().all(|s| s.owner.is_none()), "{:#?}", p.steps);
    assert!(plan(&d, &apply(&p, &observed)).is_empty());
}

#[test]
fn scheduler_change_updates_the_service_in_place() {
    let (services, slices) = web();
    let observed = observed_from(&desired(&services, &slices, &cfg()));
    let mut c = cfg();
    c.scheduler = "lc".into();
    let d = desired(&services, &slices, &c);
    let p = plan(&d, &observed);
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
    let p = plan(&d, &observed);
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
    for e in &mut observed.sets.get_mut("KUBE-CLUSTER-IP").unwrap().entries {
        e.comment = Some("someone else".into());
    }
    assert!(plan(&d, &observed).is_empty());
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
        let p = plan(&d, &o);
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
        let p = plan(&d, &o);
        assert_eq!(
            lines(&p),
            ["[default/web:http] delete real server 10.1.1.1:1 from tcp 10.96.0.10:80"]
        );
    }

    #[test]
    fn missing_virtual_service() {
        let (d, mut o) = setup();
        o.virtual_services.clear();
        let p = plan(&d, &o);
        assert_eq!(p.len(), 3, "{:#?}", lines(&p));
        assert!(matches!(p.steps[0].action, Action::AddService(_)));
        assert!(plan(&d, &apply(&p, &o)).is_empty());
    }

    #[test]
    fn flushed_set() {
        let (d, mut o) = setup();
        o.sets.get_mut("KUBE-CLUSTER-IP").unwrap().entries.clear();
        let p = plan(&d, &o);
        assert_eq!(
            lines(&p),
            ["[default/web:http] add 1 entries to KUBE-CLUSTER-IP"]
        );
        let Action::AddSetEntries { set, entries } = &p.steps[0].action else {
            unreachable!()
        };
        assert_eq!(set, "KUBE-CLUSTER-IP");
        assert_eq!(
            entries,
            &[Entry::ip_port(ip("10.96.0.10"), 6, 80).with_comment("default/web:http")]
        );
    }

    #[test]
    fn foreign_set_entry() {
        let (d, mut o) = setup();
        let stale = Entry::ip_port(ip("10.96.9.9"), 17, 53).with_comment("gone/dns:dns");
        o.sets
            .get_mut("KUBE-CLUSTER-IP")
            .unwrap()
            .entries
            .push(stale);
        let p = plan(&d, &o);
        assert_eq!(
            lines(&p),
            ["[gone/dns:dns] delete 1 entries from KUBE-CLUSTER-IP"]
        );
    }

    #[test]
    fn missing_address() {
        let (d, mut o) = setup();
        o.addresses.clear();
        let p = plan(&d, &o);
        assert_eq!(lines(&p), ["[default/web:http] bind 10.96.0.10"]);
    }

    #[test]
    fn foreign_address() {
        let (d, mut o) = setup();
        o.addresses.insert(ip("10.96.7.7"));
        let p = plan(&d, &o);
        assert_eq!(lines(&p), ["[node] unbind 10.96.7.7"]);
    }

    #[test]
    fn missing_table() {
        let (d, mut o) = setup();
        o.tables.remove(&IpFamily::V6);
        let p = plan(&d, &o);
        assert_eq!(
            lines(&p),
            ["[node] replace table Ipv6 kube-ipvs (18 messages)"]
        );
        let Action::ReplaceTable { messages, .. } = &p.steps[0].action else {
            unreachable!()
        };
        let expected = d.tables[1].replace_messages(&o.set_indexes).unwrap();
        assert_eq!(messages, &expected);
        assert!(plan(&d, &apply(&p, &o)).is_empty());
    }

    #[test]
    fn table_with_a_changed_rule() {
        let (d, mut o) = setup();
        let table = o.tables.get_mut(&IpFamily::V4).unwrap();
        // Someone changed the masquerade rule to not be fully random.
        let rule = table
            .rules
            .iter_mut()
            .find(|m| {
                let NftBody::NewRule(attrs) = &m.body else { return false };
                attrs.iter().any(|a| matches!(a, RuleAttr::Expressions(e) if e.last() == Some(&exprs::masquerade(true))))
            })
            .unwrap();
        let NftBody::NewRule(attrs) = &mut rule.body else {
            unreachable!()
        };
        for attr in attrs.iter_mut() {
            if let RuleAttr::Expressions(e) = attr {
                *e.last_mut().unwrap() = exprs::masquerade(false);
            }
        }
        let p = plan(&d, &o);
        assert_eq!(
            lines(&p),
            ["[node] replace table Ipv4 kube-ipvs (19 messages)"]
        );
        assert!(plan(&d, &apply(&p, &o)).is_empty());
    }

    #[test]
    fn table_with_an_extra_rule_or_a_recreated_set() {
        let (d, mut o) = setup();
        let extra = o.tables[&IpFamily::V4].rules[0].clone();
        o.tables.get_mut(&IpFamily::V4).unwrap().rules.push(extra);
        assert_eq!(
            lines(&plan(&d, &o)),
            ["[node] replace table Ipv4 kube-ipvs (19 messages)"]
        );

        // A set recreated under another index: the rules must follow.
        let (d, mut o) = setup();
        *o.set_indexes.get_mut("KUBE-6-LOOP-BACK").unwrap() = 40;
        let p = plan(&d, &o);
        assert_eq!(
            lines(&p),
            ["[node] replace table Ipv6 kube-ipvs (18 messages)"]
        );
        let Action::ReplaceTable { messages, .. } = &p.steps[0].action else {
            unreachable!()
        };
        let uses_40 = messages.iter().any(|m| match &m.body {
            NftBody::NewRule(attrs) => attrs.iter().any(|a| {
                matches!(a,
                    RuleAttr::Expressions(e) if e.iter().any(|x| *x == exprs::xt_set_match(
                        40, &[kipvs_packet_nftables::xt_set::SetDir::Dst,
                              kipvs_packet_nftables::xt_set::SetDir::Dst,
                              kipvs_packet_nftables::xt_set::SetDir::Src], false))
                )
            }),
            _ => false,
        });
        assert!(uses_40);
    }

    #[test]
    fn counters_in_dumped_rules_are_not_differences() {
        let (d, mut o) = setup();
        for rule in &mut o.tables.get_mut(&IpFamily::V4).unwrap().rules {
            let NftBody::NewRule(attrs) = &mut rule.body else {
                continue;
            };
            for attr in attrs.iter_mut() {
                if let RuleAttr::Expressions(e) = attr {
                    // The kernel dumps bitwise with its op.
                    for x in e.iter_mut() {
                        if let Expr::Bitwise(b) = x {
                            if !b.iter().any(|a| {
                                matches!(a, kipvs_packet_nftables::expr::BitwiseAttr::Op(_))
                            }) {
                                b.push(kipvs_packet_nftables::expr::BitwiseAttr::Op(
                                    kipvs_packet_nftables::expr::BitwiseOp::MaskXor,
                                ));
                            }
                        }
                    }
                }
            }
        }
        assert!(plan(&d, &o).is_empty());
    }

    #[test]
    fn table_withheld_while_a_set_index_is_missing() {
        let (d, mut o) = setup();
        o.tables.clear();
        o.set_indexes.remove("KUBE-IPVS-IPS");
        o.addresses.clear();
        let p = plan(&d, &o);
        // The v6 table goes in; the v4 table and the v4 address wait.
        assert_eq!(
            lines(&p),
            ["[node] replace table Ipv6 kube-ipvs (18 messages)"]
        );
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
    let p = plan(&d, &o);
    // TCP (6) sorts before UDP (17).
    assert_eq!(lines(&p), ["[default/dns:dns-tcp] bind 10.96.0.10"]);
    assert_eq!(
        d.virtual_services[&VirtualServiceKey::tuple(ip("10.96.0.10"), Protocol::Udp, 53)]
            .owner
            .port,
        "dns"
    );
}
