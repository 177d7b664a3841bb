//! The `kube-ipvs` table between the planner's typed form
//! ([`RenderedTable`]) and nf_tables messages: the batch that replaces it,
//! and what a chain and rule dump says it is.

use kipvs_packet_nftables::{
    build::{new_chain, new_rule, new_table, BaseChain, Chain, ChainType, Rule, Table},
    chain::HookAttr,
    del_table, ChainAttr, NfProto, NftBody, NftMessage, RuleAttr,
};
use kipvs_planner::{ChainHook, IpFamily, RenderedChain, RenderedRule, RenderedTable, TABLE_NAME};

/// The batch (without BATCH_BEGIN/END) that (re)creates `family`'s table
/// atomically: `NEWTABLE` (a no-op if it exists, so the `DELTABLE` cannot
/// fail on a missing table), `DELTABLE`, `NEWTABLE`, every chain, every
/// rule.
pub(crate) fn replace_messages(family: IpFamily, table: &RenderedTable) -> Vec<NftMessage> {
    let proto = family.nf_proto();
    let header = Table::new(proto, TABLE_NAME);
    let mut messages = vec![
        new_table(&header),
        del_table(proto, TABLE_NAME),
        new_table(&header),
    ];
    messages.extend(
        table
            .chains
            .iter()
            .map(|chain| new_chain(&chain_of(proto, chain))),
    );
    messages.extend(table.rules.iter().map(|rule| {
        let request = Rule::new(proto, TABLE_NAME, &rule.chain, rule.exprs.clone());
        let mut message = new_rule(&request);
        if let (Some(userdata), NftBody::NewRule(attrs)) = (&rule.userdata, &mut message.body) {
            attrs.insert(2, RuleAttr::Userdata(userdata.clone()));
        }
        message
    }));
    messages
}

fn chain_of(proto: NfProto, chain: &RenderedChain) -> Chain {
    Chain {
        family: proto,
        table: TABLE_NAME.to_owned(),
        name: chain.name.clone(),
        base: chain.hook.map(|hook| BaseChain {
            chain_type: hook.chain_type,
            hook: hook.hook,
            priority: hook.priority,
            policy: hook.policy,
        }),
    }
}

/// The table a chain dump and a rule dump describe (both already limited
/// to our table). What a dump adds — handles, use counts, ids, counter
/// values — is dropped or ignored by [`RenderedTable`]'s equality.
pub(crate) fn from_dump(chains: &[NftMessage], rules: &[NftMessage]) -> RenderedTable {
    RenderedTable {
        chains: chains
            .iter()
            .filter_map(|message| match &message.body {
                NftBody::NewChain(attrs) => dumped_chain(attrs),
                _ => None,
            })
            .collect(),
        rules: rules
            .iter()
            .filter_map(|message| match &message.body {
                NftBody::NewRule(attrs) => dumped_rule(attrs),
                _ => None,
            })
            .collect(),
    }
}

fn dumped_chain(attrs: &[ChainAttr]) -> Option<RenderedChain> {
    let mut name = None;
    let mut chain_type = None;
    let mut policy = None;
    let (mut hooknum, mut priority) = (None, None);
    for attr in attrs {
        match attr {
            ChainAttr::Name(n) => name = Some(n.clone()),
            ChainAttr::Type(t) => chain_type = Some(t.clone()),
            ChainAttr::Policy(p) => policy = Some(*p),
            ChainAttr::Hook(hook) => {
                for h in hook {
                    match h {
                        HookAttr::Hooknum(n) => hooknum = Some(*n),
                        HookAttr::Priority(p) => priority = Some(*p),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let name = name?;
    let Some(hook) = hooknum else {
        return Some(RenderedChain { name, hook: None });
    };
    let known = match chain_type.as_deref() {
        Some("filter") => Some(ChainType::Filter),
        Some("nat") => Some(ChainType::Nat),
        Some("route") => Some(ChainType::Route),
        _ => None,
    };
    let Some(chain_type) = known else {
        // A base chain of a type kube-ipvs never makes: named so that it
        // can equal no desired chain, and the table is replaced.
        let shown = chain_type.unwrap_or_default();
        return Some(RenderedChain {
            name: format!("{name} (type {shown:?})"),
            hook: None,
        });
    };
    Some(RenderedChain {
        name,
        hook: Some(ChainHook {
            chain_type,
            hook,
            priority: priority.unwrap_or(0),
            policy,
        }),
    })
}

fn dumped_rule(attrs: &[RuleAttr]) -> Option<RenderedRule> {
    let mut chain = None;
    let mut rule = RenderedRule {
        chain: String::new(),
        exprs: Vec::new(),
        userdata: None,
    };
    for attr in attrs {
        match attr {
            RuleAttr::Chain(c) => chain = Some(c.clone()),
            RuleAttr::Userdata(u) => rule.userdata = Some(u.clone()),
            RuleAttr::Expressions(exprs) => rule.exprs = exprs.clone(),
            _ => {}
        }
    }
    rule.chain = chain?;
    Some(rule)
}

#[cfg(test)]
mod tests {
    //! Against a real dump: `nft list table ip kube-ipvs` on kernel 6.1,
    //! captured for kipvs-packet-nftables' golden tests
    //! (`hack/capture-fixtures.sh`, fixture `list_table`).

    use kipvs_fixtures::{Direction, Fixture};
    use kipvs_packet_nftables::{
        chain::ChainPolicy,
        expr::{NF_CT_STATE_ESTABLISHED_BIT, NF_CT_STATE_NEW_BIT, NF_CT_STATE_RELATED_BIT},
        exprs,
        message::{nft_msg_type, NFT_MSG_NEWCHAIN, NFT_MSG_NEWRULE},
        Expr, NfHook,
    };

    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packet-nftables/tests/fixtures"
    );

    fn dumped(nlmsg_type: u16) -> Vec<NftMessage> {
        let fixture = Fixture::load(FIXTURES, "list_table");
        fixture
            .messages
            .iter()
            .filter(|c| c.direction == Direction::FromKernel && c.nlmsg_type == nlmsg_type)
            .map(|c| NftMessage::parse_with_type(c.nlmsg_type, &c.payload).unwrap())
            .collect()
    }

    fn dump() -> RenderedTable {
        from_dump(
            &dumped(nft_msg_type(NFT_MSG_NEWCHAIN)),
            &dumped(nft_msg_type(NFT_MSG_NEWRULE)),
        )
    }

    /// What the capture script created (base chains without an explicit
    /// policy, as the planner renders them).
    fn requested(masquerade_fully_random: bool) -> RenderedTable {
        let base = |name: &str, chain_type, hook, priority| RenderedChain {
            name: name.to_owned(),
            hook: Some(ChainHook {
                chain_type,
                hook,
                priority,
                policy: None,
            }),
        };
        let rule = |chain: &str, exprs: Vec<Vec<Expr>>| RenderedRule {
            chain: chain.to_owned(),
            exprs: exprs.concat(),
            userdata: None,
        };
        RenderedTable {
            chains: vec![
                base("nat-prerouting", ChainType::Nat, NfHook::PreRouting, -100),
                base("nat-postrouting", ChainType::Nat, NfHook::PostRouting, 100),
                base("filter-input", ChainType::Filter, NfHook::LocalIn, 0),
                base("filter-forward", ChainType::Filter, NfHook::Forward, 0),
                RenderedChain {
                    name: "mark-for-masquerade".to_owned(),
                    hook: None,
                },
            ],
            rules: vec![
                rule("mark-for-masquerade", vec![exprs::mark_set_or(0x4000)]),
                rule(
                    "nat-prerouting",
                    vec![
                        exprs::saddr_in_cidr("10.244.0.0".parse().unwrap(), 16, true),
                        vec![exprs::jump("mark-for-masquerade")],
                    ],
                ),
                rule(
                    "nat-postrouting",
                    vec![
                        exprs::mark_and_eq(0x4000, 0x4000),
                        vec![exprs::masquerade(masquerade_fully_random)],
                    ],
                ),
                rule(
                    "filter-forward",
                    vec![
                        exprs::ct_state_in(NF_CT_STATE_ESTABLISHED_BIT | NF_CT_STATE_RELATED_BIT),
                        vec![exprs::accept()],
                    ],
                ),
                rule(
                    "filter-input",
                    vec![
                        exprs::fib_daddr_type_local(),
                        exprs::meta_l4proto(6),
                        vec![exprs::counter(), exprs::ret()],
                    ],
                ),
                rule(
                    "filter-input",
                    vec![
                        exprs::ct_state_in(NF_CT_STATE_NEW_BIT),
                        vec![exprs::reject(NfProto::Ipv4)],
                    ],
                ),
            ],
        }
    }

    #[test]
    fn a_kernel_dump_is_the_table_that_was_requested() {
        let dump = dump();
        assert_eq!((dump.chains.len(), dump.rules.len()), (5, 6));
        // The dump really differs from the request, expression by
        // expression (attribute order, counter values, bitwise op) ...
        assert_ne!(dump.rules, requested(true).rules);
        // ... but it is the same table.
        assert_eq!(dump, requested(true));
        // Base chains dump their policy: accept when none was given.
        assert!(dump
            .chains
            .iter()
            .filter_map(|c| c.hook)
            .all(|h| h.policy == Some(ChainPolicy::Accept)));
    }

    #[test]
    fn a_changed_expression_rule_order_or_chain_kind_is_another_table() {
        assert_ne!(dump(), requested(false));
        let mut swapped = requested(true);
        swapped.rules.swap(4, 5);
        assert_ne!(dump(), swapped);
        let mut regular = requested(true);
        regular.chains[0].hook = None;
        assert_ne!(dump(), regular);
    }

    #[test]
    fn the_replace_batch_deletes_the_table_then_builds_it_whole() {
        let table = requested(true);
        let messages = replace_messages(IpFamily::V4, &table);
        assert_eq!(messages.len(), 3 + 5 + 6);
        assert!(matches!(messages[0].body, NftBody::NewTable(_)));
        assert!(matches!(messages[1].body, NftBody::DelTable(_)));
        assert!(matches!(messages[2].body, NftBody::NewTable(_)));
        // What goes out reads back as the same table.
        let (chains, rules) = messages[3..].split_at(5);
        assert_eq!(from_dump(chains, rules), table);
    }
}
