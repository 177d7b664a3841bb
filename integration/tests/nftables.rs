//! The kube-ipvs nf_tables table installed through our client as one batch,
//! checked with `nft list table` and read back through our own dumps.

use kipvs_integration::{rules, TestNetns};
use kipvs_netlink::{Counters, ErrorClass, Family, Ipset, NfTables};
use kipvs_packet_ipset::CreateOptions;
use kipvs_packet_nftables::{
    del_table,
    expr::MatchAttr,
    xt_set::{SetDir, XtSetInfoMatchV4},
    ChainAttr, Expr, NfProto, NftBody, RuleAttr, TableAttr,
};

#[test]
fn static_rules_install_atomically_and_list_as_written() {
    let netns = TestNetns::new("nft");
    let counters = Counters::default();
    let c = counters.clone();
    let (tables, chains, rules_read, indexes) = netns.run(move || async move {
        let mut ipset = Ipset::open(c.clone()).unwrap();
        let mut nft = NfTables::open(c).unwrap();
        let (cluster, loop_back) = rules::install_masquerade(
            &mut ipset,
            &mut nft,
            &CreateOptions::default(),
            ("10.244.0.0".parse().unwrap(), 16),
        )
        .await;
        let tables = nft.tables(NfProto::Ipv4).await.unwrap();
        let chains = nft.chains(NfProto::Ipv4, rules::TABLE).await.unwrap();
        let rules_read = nft.rules(NfProto::Ipv4, rules::TABLE).await.unwrap();
        (tables, chains, rules_read, (cluster, loop_back))
    });

    let listed = netns.exec(&["nft", "list", "table", "ip", rules::TABLE]);
    // nft names an xt match but cannot show its contents: which set and
    // which directions are checked through our own dump below.
    let want = "\
table ip kube-ipvs {
	chain services {
		xt match set ip saddr != 10.244.0.0/16 jump mark-for-masquerade
	}

	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}

	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}

	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}

	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		xt match set masquerade
		meta mark & 0x00004000 == 0x00004000 masquerade fully-random
	}
}
";
    assert_eq!(listed, want);

    // Our dumps see the same table, chains and rules.
    let table_names: Vec<&String> = tables
        .iter()
        .filter_map(|t| match &t.body {
            NftBody::NewTable(attrs) => attrs.iter().find_map(|a| match a {
                TableAttr::Name(n) => Some(n),
                _ => None,
            }),
            _ => None,
        })
        .collect();
    assert_eq!(table_names, vec!["kube-ipvs"]);
    let mut chain_names: Vec<&String> = chains
        .iter()
        .filter_map(|m| match &m.body {
            NftBody::NewChain(attrs) => attrs.iter().find_map(|a| match a {
                ChainAttr::Name(n) => Some(n),
                _ => None,
            }),
            _ => None,
        })
        .collect();
    chain_names.sort();
    assert_eq!(
        chain_names,
        vec![
            "mark-for-masquerade",
            "nat-output",
            "nat-postrouting",
            "nat-prerouting",
            "services"
        ]
    );
    let expression_counts: Vec<usize> = rules_read
        .iter()
        .filter_map(|m| match &m.body {
            NftBody::NewRule(attrs) => attrs.iter().find_map(|a| match a {
                RuleAttr::Expressions(e) => Some(e.len()),
                _ => None,
            }),
            _ => None,
        })
        .collect();
    assert_eq!(expression_counts.len(), 6, "{rules_read:?}");
    let set_matches: Vec<(u16, Vec<SetDir>)> = rules_read
        .iter()
        .filter_map(|m| match &m.body {
            NftBody::NewRule(attrs) => attrs.iter().find_map(|a| match a {
                RuleAttr::Expressions(e) => Some(e.clone()),
                _ => None,
            }),
            _ => None,
        })
        .flatten()
        .filter_map(|expr| match expr {
            Expr::Match(attrs) => attrs.into_iter().find_map(|a| match a {
                MatchAttr::Info(info) => Some(XtSetInfoMatchV4::parse(&info).unwrap().match_set),
                _ => None,
            }),
            _ => None,
        })
        .map(|set| (set.index, set.dirs()))
        .collect();
    assert_eq!(
        set_matches,
        vec![
            (indexes.0, vec![SetDir::Dst, SetDir::Dst]),
            (indexes.1, vec![SetDir::Dst, SetDir::Dst, SetDir::Src]),
        ]
    );

    // One batch: 12 changes, one dump each for tables, chains and rules.
    let sent = counters.snapshot();
    assert_eq!(sent.sent(Family::NfTables, "NEWRULE"), 6);
    assert_eq!(sent.sent(Family::NfTables, "BATCH_BEGIN"), 1);
    assert_eq!(sent.sent(Family::NfTables, "GETRULE"), 1);
}

#[test]
fn a_failing_batch_changes_nothing_and_reports_the_bad_message() {
    let netns = TestNetns::new("nft-abort");
    netns.run(move || async move {
        let mut nft = NfTables::open(Counters::default()).unwrap();
        // The table is created, then a rule references a chain that does not
        // exist: the kernel rejects the rule and aborts the whole batch.
        let mut batch = rules::masquerade_ruleset(0, 0, ("10.244.0.0".parse().unwrap(), 16));
        batch.truncate(6);
        batch.push(kipvs_packet_nftables::new_rule(
            &kipvs_packet_nftables::Rule::new(
                NfProto::Ipv4,
                rules::TABLE,
                "no-such-chain",
                vec![kipvs_packet_nftables::exprs::accept()],
            ),
        ));
        let err = nft.apply(batch).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::NotFound, "{err}");
        assert!(
            err.to_string().starts_with("nftables NEWRULE failed"),
            "{err}"
        );
        assert!(
            nft.tables(NfProto::Ipv4).await.unwrap().is_empty(),
            "the batch must not half-apply"
        );

        // Deleting a table that is not there is a NotFound error.
        let err = nft
            .apply(vec![del_table(NfProto::Ipv4, rules::TABLE)])
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::NotFound);
    });
    let (ok, listed) = netns.try_exec(&["nft", "list", "tables"]);
    assert!(ok && listed.trim().is_empty(), "{listed}");
}
