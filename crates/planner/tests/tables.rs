//! The nf_tables table spec per family and its rendering.

mod common;

use common::*;
use kipvs_packet_nftables::{
    exprs::{jump, ret, saddr_in_cidr, xt_set_match},
    xt_set::SetDir,
    ChainAttr, Expr, HookAttr, NfHook, NfProto, NftBody, RuleAttr,
};
use kipvs_planner::*;

fn table(d: &Desired, family: IpFamily) -> &DesiredTable {
    d.tables.iter().find(|t| t.family == family).unwrap()
}

fn services_chain(t: &DesiredTable) -> Vec<&TableRule> {
    t.rules.iter().filter(|r| r.chain == "services").collect()
}

fn set_match(set: &str, dirs: &[SetDir], inverted: bool) -> RulePart {
    RulePart::SetMatch {
        set: set.to_owned(),
        dirs: dirs.to_vec(),
        inverted,
    }
}

const DST2: [SetDir; 2] = [SetDir::Dst, SetDir::Dst];

fn with(cfg: impl FnOnce(&mut NodeConfig)) -> Desired {
    let mut config = config();
    cfg(&mut config);
    desired(&[], &[], &config)
}

#[test]
fn without_cluster_cidr_nothing_is_marked() {
    let d = with(|_| {});
    for family in IpFamily::ALL {
        assert!(services_chain(table(&d, family)).is_empty());
    }
}

#[test]
fn masquerade_all_marks_all_service_traffic() {
    let d = with(|c| c.masquerade_all = true);
    for (family, set) in [
        (IpFamily::V4, "KUBE-CLUSTER-IP"),
        (IpFamily::V6, "KUBE-6-CLUSTER-IP"),
    ] {
        let rules = services_chain(table(&d, family));
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].parts,
            [
                set_match(set, &DST2, false),
                RulePart::Exprs(vec![jump("mark-for-masquerade")])
            ]
        );
    }
}

#[test]
fn cluster_cidrs_mark_traffic_from_outside_per_family() {
    let d = with(|c| {
        c.cluster_cidrs = vec![
            "10.244.0.0/16".parse().unwrap(),
            "fd00:244::/56".parse().unwrap(),
        ]
    });
    let expect = |set: &str, net: &str, len| {
        let mut exprs = saddr_in_cidr(ip(net), len, true);
        exprs.push(jump("mark-for-masquerade"));
        vec![set_match(set, &DST2, false), RulePart::Exprs(exprs)]
    };
    let v4 = services_chain(table(&d, IpFamily::V4));
    assert_eq!(v4.len(), 1);
    assert_eq!(v4[0].parts, expect("KUBE-CLUSTER-IP", "10.244.0.0", 16));
    let v6 = services_chain(table(&d, IpFamily::V6));
    assert_eq!(v6.len(), 1);
    assert_eq!(v6[0].parts, expect("KUBE-6-CLUSTER-IP", "fd00:244::", 56));

    // Host bits in the flag value are ignored; a v4-only config leaves v6 unmarked.
    let d = with(|c| c.cluster_cidrs = vec!["10.244.7.1/16".parse().unwrap()]);
    assert_eq!(
        services_chain(table(&d, IpFamily::V4))[0].parts,
        expect("KUBE-CLUSTER-IP", "10.244.0.0", 16)
    );
    assert!(services_chain(table(&d, IpFamily::V6)).is_empty());
}

#[test]
fn several_cluster_cidrs_of_one_family_return_then_mark() {
    let d = with(|c| {
        c.cluster_cidrs = vec![
            "10.244.0.0/16".parse().unwrap(),
            "10.128.0.0/14".parse().unwrap(),
        ]
    });
    let rules = services_chain(table(&d, IpFamily::V4));
    let ret_from = |net: &str, len| {
        let mut exprs = saddr_in_cidr(ip(net), len, false);
        exprs.push(ret());
        vec![
            set_match("KUBE-CLUSTER-IP", &DST2, false),
            RulePart::Exprs(exprs),
        ]
    };
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0].parts, ret_from("10.244.0.0", 16));
    assert_eq!(rules[1].parts, ret_from("10.128.0.0", 14));
    assert_eq!(
        rules[2].parts,
        [
            set_match("KUBE-CLUSTER-IP", &DST2, false),
            RulePart::Exprs(vec![jump("mark-for-masquerade")])
        ]
    );
}

#[test]
fn chains_rules_and_set_references() {
    let d = with(|c| c.masquerade_all = true);
    let t = table(&d, IpFamily::V6);
    let chains: Vec<(&str, Option<(NfHook, i32)>)> = t
        .chains
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.base.as_ref().map(|b| (b.hook, b.priority)),
            )
        })
        .collect();
    assert_eq!(
        chains,
        [
            ("services", None),
            ("mark-for-masquerade", None),
            ("nat-prerouting", Some((NfHook::PreRouting, -100))),
            ("nat-output", Some((NfHook::LocalOut, -100))),
            ("nat-postrouting", Some((NfHook::PostRouting, 100))),
            ("filter-input", Some((NfHook::LocalIn, 0))),
            ("filter-forward", Some((NfHook::Forward, 0))),
        ]
    );
    let rule_chains: Vec<&str> = t.rules.iter().map(|r| r.chain.as_str()).collect();
    assert_eq!(
        rule_chains,
        [
            "services",
            "mark-for-masquerade",
            "nat-prerouting",
            "nat-output",
            "nat-postrouting",
            "nat-postrouting",
            "filter-input",
            "filter-forward",
            "filter-forward",
        ]
    );
    assert_eq!(
        t.referenced_sets(),
        ["KUBE-6-CLUSTER-IP", "KUBE-6-IPVS-IPS", "KUBE-6-LOOP-BACK"]
    );
    // filter-input: ct state new, in KUBE-6-IPVS-IPS, NOT in KUBE-6-CLUSTER-IP, reject.
    let input = t.rules.iter().find(|r| r.chain == "filter-input").unwrap();
    assert_eq!(
        input.parts[1],
        set_match("KUBE-6-IPVS-IPS", &[SetDir::Dst], false)
    );
    assert_eq!(input.parts[2], set_match("KUBE-6-CLUSTER-IP", &DST2, true));
    assert_eq!(
        input.parts[3],
        RulePart::Exprs(vec![kipvs_packet_nftables::exprs::reject(NfProto::Ipv6)])
    );
}

#[test]
fn rendering_resolves_set_indexes() {
    let d = with(|c| c.masquerade_all = true);
    let t = table(&d, IpFamily::V4);
    let idx = indexes();
    let contents = t.contents(&idx).unwrap();
    assert_eq!(contents.len(), 7 + 9);
    assert!(contents[..7]
        .iter()
        .all(|m| matches!(m.body, NftBody::NewChain(_))));
    assert!(contents.iter().all(|m| m.header.family == NfProto::Ipv4));
    let NftBody::NewChain(attrs) = &contents[2].body else {
        unreachable!()
    };
    assert!(attrs.contains(&ChainAttr::Hook(vec![
        HookAttr::Hooknum(NfHook::PreRouting),
        HookAttr::Priority(-100)
    ])));
    let NftBody::NewRule(attrs) = &contents[7].body else {
        unreachable!()
    };
    let exprs: &Vec<Expr> = attrs
        .iter()
        .find_map(|a| match a {
            RuleAttr::Expressions(e) => Some(e),
            _ => None,
        })
        .unwrap();
    assert_eq!(exprs[0], xt_set_match(idx["KUBE-CLUSTER-IP"], &DST2, false));

    let replace = t.replace_messages(&idx).unwrap();
    assert!(matches!(replace[0].body, NftBody::NewTable(_)));
    assert!(matches!(replace[1].body, NftBody::DelTable(_)));
    assert!(matches!(replace[2].body, NftBody::NewTable(_)));
    assert_eq!(replace[3..], contents[..]);

    let mut missing = idx.clone();
    missing.remove("KUBE-LOOP-BACK");
    assert_eq!(
        t.contents(&missing),
        Err(MissingSetIndex("KUBE-LOOP-BACK".into()))
    );
}
