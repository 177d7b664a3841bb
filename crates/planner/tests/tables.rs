//! The nf_tables table spec per family and its rendering.

mod common;

use common::*;
use kipvs_packet_nftables::{
    expr::{NF_CT_STATE_ESTABLISHED_BIT, NF_CT_STATE_NEW_BIT, NF_CT_STATE_RELATED_BIT},
    exprs::{
        accept, ct_state_in, drop, fib_daddr_type_local, goto, jump, mark_and_eq, mark_set_or,
        masquerade, meta_l4proto, reject, ret, saddr_in_cidr, xt_set_match,
    },
    xt_set::SetDir,
    Expr, NfHook, NfProto,
};
use kipvs_planner::*;

fn table(d: &Desired, family: IpFamily) -> &DesiredTable {
    d.tables.iter().find(|t| t.family == family).unwrap()
}

/// The `services` rules about cluster IPs (those matching KUBE-CLUSTER-IP).
/// The services chain's cluster-IP masquerade rules (not the plain
/// `KUBE-CLUSTER-IP dst,dst return` that keeps cluster-IP traffic out of
/// the node-port rules).
fn cluster_ip_rules(t: &DesiredTable) -> Vec<&TableRule> {
    let set = SetId::new(SetRole::ClusterIp, t.family);
    let plain_return = RulePart::Exprs(vec![ret()]);
    t.rules
        .iter()
        .filter(|r| r.chain == "services")
        .filter(|r| matches!(&r.parts[0], RulePart::SetMatch { set: s, .. } if *s == set))
        .filter(|r| r.parts.get(1) != Some(&plain_return))
        .collect()
}

fn set_match(set: &str, dirs: &[SetDir], inverted: bool) -> RulePart {
    RulePart::SetMatch {
        set: id(set),
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

/// Names for the expression sequences the table is made of, so a rule
/// reads like `nft list table` would print it.
fn snippets(family: IpFamily) -> Vec<(String, Vec<Expr>)> {
    let mut known = vec![
        (
            "ip saddr 127.0.0.0/8".to_owned(),
            saddr_in_cidr(ip("127.0.0.0"), 8, false),
        ),
        (
            "ip6 saddr ::1".to_owned(),
            saddr_in_cidr(ip("::1"), 128, false),
        ),
        (
            "ip saddr != 10.244.0.0/16".to_owned(),
            saddr_in_cidr(ip("10.244.0.0"), 16, true),
        ),
        ("ct state new".to_owned(), ct_state_in(NF_CT_STATE_NEW_BIT)),
        (
            "ct state established,related".to_owned(),
            ct_state_in(NF_CT_STATE_ESTABLISHED_BIT | NF_CT_STATE_RELATED_BIT),
        ),
        ("fib daddr type local".to_owned(), fib_daddr_type_local()),
        ("meta l4proto tcp".to_owned(), meta_l4proto(6)),
        ("meta l4proto udp".to_owned(), meta_l4proto(17)),
        ("meta l4proto sctp".to_owned(), meta_l4proto(132)),
        ("mark set mark or 0x4000".to_owned(), mark_set_or(MASQ_MARK)),
        (
            "mark and 0x4000 == 0x4000".to_owned(),
            mark_and_eq(MASQ_MARK, MASQ_MARK),
        ),
        ("masquerade".to_owned(), vec![masquerade(false)]),
        ("masquerade fully-random".to_owned(), vec![masquerade(true)]),
        ("return".to_owned(), vec![ret()]),
        ("accept".to_owned(), vec![accept()]),
        ("drop".to_owned(), vec![drop()]),
        ("reject".to_owned(), vec![reject(family.nf_proto())]),
    ];
    for chain in [
        "services",
        "mark-for-masquerade",
        "load-balancer",
        "node-port",
        "source-ranges",
        "ipvs-filter",
    ] {
        known.push((format!("jump {chain}"), vec![jump(chain)]));
        known.push((format!("goto {chain}"), vec![goto(chain)]));
    }
    known
}

fn describe(family: IpFamily, exprs: &[Expr]) -> Vec<String> {
    let known = snippets(family);
    let mut words = Vec::new();
    let mut rest = exprs;
    while !rest.is_empty() {
        let Some((name, len)) = known
            .iter()
            .filter(|(_, s)| rest.starts_with(s))
            .map(|(n, s)| (n.clone(), s.len()))
            .max_by_key(|(_, len)| *len)
        else {
            panic!("no name for {:?}", rest[0]);
        };
        words.push(name);
        rest = &rest[len..];
    }
    words
}

/// `chain: part part ...` per rule, set matches as `[!]SET dir,dir`.
fn rule_lines(t: &DesiredTable) -> Vec<String> {
    t.rules
        .iter()
        .map(|rule| {
            let mut words = vec![format!("{}:", rule.chain)];
            for part in &rule.parts {
                match part {
                    RulePart::Exprs(exprs) => words.extend(describe(t.family, exprs)),
                    RulePart::SetMatch {
                        set,
                        dirs,
                        inverted,
                    } => {
                        let dirs: Vec<&str> = dirs
                            .iter()
                            .map(|d| if *d == SetDir::Src { "src" } else { "dst" })
                            .collect();
                        let not = if *inverted { "!" } else { "" };
                        words.push(format!("{not}{set} {}", dirs.join(",")));
                    }
                }
            }
            words.join(" ")
        })
        .collect()
}

#[test]
fn the_whole_v4_table() {
    let d = with(|c| c.cluster_cidrs = vec!["10.244.0.0/16".parse().unwrap()]);
    let expected = [
        "services: ip saddr 127.0.0.0/8 return",
        "services: KUBE-LOAD-BALANCER dst,dst goto load-balancer",
        "services: KUBE-CLUSTER-IP dst,dst ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
        "services: KUBE-EXTERNAL-IP dst,dst jump mark-for-masquerade",
        "services: KUBE-EXTERNAL-IP-LOCAL dst,dst return",
        "services: KUBE-CLUSTER-IP dst,dst return",
        "services: fib daddr type local goto node-port",
        "load-balancer: KUBE-LOAD-BALANCER-LOCAL dst,dst return",
        "load-balancer: jump mark-for-masquerade",
        "node-port: meta l4proto tcp KUBE-NODE-PORT-LOCAL-TCP dst return",
        "node-port: meta l4proto tcp KUBE-NODE-PORT-TCP dst jump mark-for-masquerade",
        "node-port: meta l4proto udp KUBE-NODE-PORT-LOCAL-UDP dst return",
        "node-port: meta l4proto udp KUBE-NODE-PORT-UDP dst jump mark-for-masquerade",
        "node-port: meta l4proto sctp KUBE-NODE-PORT-LOCAL-SCTP-HASH dst,dst return",
        "node-port: meta l4proto sctp KUBE-NODE-PORT-SCTP-HASH dst,dst jump mark-for-masquerade",
        "mark-for-masquerade: mark set mark or 0x4000",
        "nat-prerouting: jump services",
        "nat-output: jump services",
        "nat-postrouting: KUBE-LOOP-BACK dst,dst,src masquerade",
        "nat-postrouting: mark and 0x4000 == 0x4000 masquerade fully-random",
        "filter-input: KUBE-LOAD-BALANCER-FW dst,dst jump source-ranges",
        "source-ranges: KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src return",
        "source-ranges: KUBE-LOAD-BALANCER-SOURCE-IP dst,dst,src return",
        "source-ranges: drop",
        "filter-output: KUBE-LOAD-BALANCER-FW dst,dst jump source-ranges",
        "filter-input: ct state new KUBE-IPVS-IPS dst jump ipvs-filter",
        "ipvs-filter: KUBE-CLUSTER-IP dst,dst return",
        "ipvs-filter: KUBE-EXTERNAL-IP dst,dst return",
        "ipvs-filter: KUBE-EXTERNAL-IP-LOCAL dst,dst return",
        "ipvs-filter: KUBE-LOAD-BALANCER dst,dst return",
        "ipvs-filter: meta l4proto tcp KUBE-HEALTH-CHECK-NODE-PORT dst return",
        "ipvs-filter: reject",
        "filter-forward: ct state established,related accept",
        "filter-forward: mark and 0x4000 == 0x4000 accept",
    ];
    assert_eq!(rule_lines(table(&d, IpFamily::V4)), expected);
}

#[test]
fn the_v6_table_uses_v6_sets_and_loopback() {
    let d = with(|c| c.masquerade_all = true);
    let lines = rule_lines(table(&d, IpFamily::V6));
    assert_eq!(lines.len(), 34);
    assert_eq!(lines[0], "services: ip6 saddr ::1 return");
    assert_eq!(
        lines[2],
        "services: KUBE-6-CLUSTER-IP dst,dst jump mark-for-masquerade"
    );
    assert_eq!(
        lines[13],
        "node-port: meta l4proto sctp KUBE-6-NODE-PORT-LOCAL-SCTP-HAS dst,dst return"
    );
    assert_eq!(
        lines[21],
        "source-ranges: KUBE-6-LOAD-BALANCER-SOURCE-CID dst,dst,src return"
    );
    // Every set a v6 rule names is a v6 set.
    let t = table(&d, IpFamily::V6);
    assert!(t
        .referenced_sets()
        .iter()
        .all(|s| s.name().starts_with("KUBE-6-")));
}

#[test]
fn local_returns_come_before_any_mark() {
    // eTP Local traffic must never be marked: in each chain the Local
    // set's return precedes the rule that marks the same traffic.
    let d = with(|c| c.masquerade_all = true);
    for family in IpFamily::ALL {
        let lines = rule_lines(table(&d, family));
        let at = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} in {lines:#?}"))
        };
        let v6 = if family == IpFamily::V6 { "6-" } else { "" };
        for (local, marking) in [
            (
                format!("KUBE-{v6}LOAD-BALANCER-LOCAL dst,dst return"),
                "load-balancer: jump mark-for-masquerade".to_owned(),
            ),
            (
                format!("KUBE-{v6}NODE-PORT-LOCAL-TCP dst return"),
                format!("KUBE-{v6}NODE-PORT-TCP dst jump"),
            ),
            (
                format!("KUBE-{v6}NODE-PORT-LOCAL-UDP dst return"),
                format!("KUBE-{v6}NODE-PORT-UDP dst jump"),
            ),
            (
                format!("services: KUBE-{v6}EXTERNAL-IP-LOCAL dst,dst return"),
                "services: fib daddr type local goto node-port".to_owned(),
            ),
        ] {
            assert!(at(&local) < at(&marking), "{local} before {marking}");
        }
    }
}

#[test]
fn without_cluster_cidr_no_cluster_ip_traffic_is_marked() {
    let d = with(|_| {});
    for family in IpFamily::ALL {
        assert!(cluster_ip_rules(table(&d, family)).is_empty());
        // The rest of the services chain is still there.
        let t = table(&d, family);
        assert_eq!(t.rules.iter().filter(|r| r.chain == "services").count(), 6);
    }
}

#[test]
fn masquerade_all_marks_all_service_traffic() {
    let d = with(|c| c.masquerade_all = true);
    for (family, set) in [
        (IpFamily::V4, "KUBE-CLUSTER-IP"),
        (IpFamily::V6, "KUBE-6-CLUSTER-IP"),
    ] {
        let rules = cluster_ip_rules(table(&d, family));
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
    let v4 = cluster_ip_rules(table(&d, IpFamily::V4));
    assert_eq!(v4.len(), 1);
    assert_eq!(v4[0].parts, expect("KUBE-CLUSTER-IP", "10.244.0.0", 16));
    let v6 = cluster_ip_rules(table(&d, IpFamily::V6));
    assert_eq!(v6.len(), 1);
    assert_eq!(v6[0].parts, expect("KUBE-6-CLUSTER-IP", "fd00:244::", 56));

    // Host bits in the flag value are ignored; a v4-only config leaves v6 unmarked.
    let d = with(|c| c.cluster_cidrs = vec!["10.244.7.1/16".parse().unwrap()]);
    assert_eq!(
        cluster_ip_rules(table(&d, IpFamily::V4))[0].parts,
        expect("KUBE-CLUSTER-IP", "10.244.0.0", 16)
    );
    assert!(cluster_ip_rules(table(&d, IpFamily::V6)).is_empty());
}

#[test]
fn several_cluster_cidrs_of_one_family_return_then_mark() {
    let d = with(|c| {
        c.cluster_cidrs = vec![
            "10.244.0.0/16".parse().unwrap(),
            "10.128.0.0/14".parse().unwrap(),
        ]
    });
    let rules = cluster_ip_rules(table(&d, IpFamily::V4));
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
    // The cluster-IP rules sit after the load-balancer jump and before
    // the external-IP ones, as in kube-proxy.
    let first_set: Vec<&str> = table(&d, IpFamily::V4)
        .rules
        .iter()
        .take_while(|r| r.chain == "services")
        .map(|r| match &r.parts[0] {
            RulePart::SetMatch { set, .. } => set.name(),
            RulePart::Exprs(_) => "-",
        })
        .collect();
    assert_eq!(
        first_set,
        [
            "-",
            "KUBE-LOAD-BALANCER",
            "KUBE-CLUSTER-IP",
            "KUBE-CLUSTER-IP",
            "KUBE-CLUSTER-IP",
            "KUBE-EXTERNAL-IP",
            "KUBE-EXTERNAL-IP-LOCAL",
            "KUBE-CLUSTER-IP",
            "-"
        ]
    );
}

#[test]
fn chains_and_set_references() {
    let d = with(|c| c.masquerade_all = true);
    let t = table(&d, IpFamily::V6);
    let chains: Vec<(&str, Option<(NfHook, i32)>)> = t
        .chains
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.hook.as_ref().map(|b| (b.hook, b.priority)),
            )
        })
        .collect();
    assert_eq!(
        chains,
        [
            ("services", None),
            ("mark-for-masquerade", None),
            ("load-balancer", None),
            ("node-port", None),
            ("source-ranges", None),
            ("ipvs-filter", None),
            ("nat-prerouting", Some((NfHook::PreRouting, -100))),
            ("nat-output", Some((NfHook::LocalOut, -100))),
            ("nat-postrouting", Some((NfHook::PostRouting, 100))),
            ("filter-input", Some((NfHook::LocalIn, 0))),
            ("filter-forward", Some((NfHook::Forward, 0))),
            // Before IPVS's LOCAL_OUT hook (-98): the node's own
            // connections to a firewalled LB address.
            ("filter-output", Some((NfHook::LocalOut, -110))),
        ]
    );
    // Every v6 set is used by some rule, but KUBE-6-NODE-PORT-IPS, which
    // only records which node-port virtual services are ours.
    let mut all_v6: Vec<SetId> = SetRole::ALL
        .iter()
        .filter(|role| **role != SetRole::NodePortIps)
        .map(|role| SetId::new(*role, IpFamily::V6))
        .collect();
    all_v6.sort_unstable();
    assert_eq!(t.referenced_sets(), all_v6);
    let reject_rule = t.rules.iter().find(|r| r.chain == "ipvs-filter").unwrap();
    assert_eq!(
        reject_rule.parts[0],
        set_match("KUBE-6-CLUSTER-IP", &DST2, false)
    );
    assert_eq!(
        t.rules
            .iter()
            .rfind(|r| r.chain == "ipvs-filter")
            .unwrap()
            .parts,
        [RulePart::Exprs(vec![reject(NfProto::Ipv6)])]
    );
}

#[test]
fn rendering_resolves_set_indexes() {
    let d = with(|c| c.masquerade_all = true);
    let t = table(&d, IpFamily::V4);
    let idx = indexes();
    let rendered = t.render(&idx).unwrap();
    assert_eq!(rendered.chains, t.chains);
    assert_eq!(rendered.rules.len(), 34);
    assert_eq!(
        rendered.chains[6].hook.map(|h| (h.hook, h.priority)),
        Some((NfHook::PreRouting, -100))
    );
    // The second rule: KUBE-LOAD-BALANCER dst,dst goto load-balancer.
    assert_eq!(rendered.rules[1].chain, "services");
    assert_eq!(
        rendered.rules[1].exprs,
        [
            xt_set_match(idx[&id("KUBE-LOAD-BALANCER")], &DST2, false),
            goto("load-balancer")
        ]
    );
    // A dump of it (attributes in the kernel's order, counters counting)
    // is the same table.
    assert_eq!(as_dumped(rendered.clone()), rendered);
    // Another index is another table.
    let mut moved = idx.clone();
    moved.insert(id("KUBE-LOAD-BALANCER"), 99);
    assert_ne!(t.render(&moved).unwrap(), rendered);

    let mut missing = idx.clone();
    missing.remove(&id("KUBE-LOOP-BACK"));
    assert_eq!(
        t.render(&missing),
        Err(MissingSetIndex(id("KUBE-LOOP-BACK")))
    );
}
