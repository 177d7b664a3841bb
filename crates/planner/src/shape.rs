//! Structural comparison of an nf_tables table: what the kernel dumps
//! against what we would send.
//!
//! A dump is not byte-equal to the request that created it (see the
//! `list_table` golden test of kipvs-packet-nftables, kernel 6.1):
//! - chains and rules carry handles, use counts, chain flags and ids;
//!   base chains carry their policy even when none was given (accept);
//! - expressions list attributes in the kernel's order (`ct`: dreg before
//!   key; `fib`: dreg first), `bitwise` always includes
//!   `NFTA_BITWISE_OP` (`nft_bitwise_dump()`), `counter` its values.
//!
//! So both sides are reduced to a [`TableShape`]: per chain its kind, hook,
//! priority and policy, and its rules in order; per rule its comment and
//! expressions; per expression its name and the *set* of its attributes,
//! each compared by emitted bytes, after dropping what the kernel adds.

use std::collections::BTreeMap;

use kipvs_packet_nftables::{
    chain::{ChainPolicy, HookAttr},
    expr::{NFTA_BITWISE_OP, NFTA_EXPR_DATA, NFTA_EXPR_NAME, NFT_BITWISE_MASK_XOR},
    ChainAttr, Expr, NftBody, NftMessage, RuleAttr,
};
use netlink_packet_core::{Emitable, NlaBuffer, NlasIterator, NLA_TYPE_MASK};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TableShape {
    chains: BTreeMap<String, ChainShape>,
    /// Rules per chain name, in chain order.
    rules: BTreeMap<String, Vec<RuleShape>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ChainShape {
    chain_type: Option<String>,
    hook: Option<u32>,
    priority: Option<i32>,
    policy: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RuleShape {
    userdata: Option<Vec<u8>>,
    exprs: Vec<ExprShape>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ExprShape {
    name: String,
    /// `(attribute type, value bytes)`, sorted.
    attrs: Vec<(u16, Vec<u8>)>,
}

impl TableShape {
    /// The shape of `NEWCHAIN`/`NEWRULE` messages (requests or dump
    /// replies); anything else is ignored.
    pub(crate) fn of<'a>(messages: impl IntoIterator<Item = &'a NftMessage>) -> Self {
        let mut shape = TableShape::default();
        for message in messages {
            match &message.body {
                NftBody::NewChain(attrs) => {
                    if let Some((name, chain)) = chain_shape(attrs) {
                        shape.chains.insert(name, chain);
                    }
                }
                NftBody::NewRule(attrs) => {
                    if let Some((chain, rule)) = rule_shape(attrs) {
                        shape.rules.entry(chain).or_default().push(rule);
                    }
                }
                _ => {}
            }
        }
        shape
    }
}

fn chain_shape(attrs: &[ChainAttr]) -> Option<(String, ChainShape)> {
    let mut name = None;
    let mut chain = ChainShape {
        chain_type: None,
        hook: None,
        priority: None,
        policy: None,
    };
    for attr in attrs {
        match attr {
            ChainAttr::Name(n) => name = Some(n.clone()),
            ChainAttr::Type(t) => chain.chain_type = Some(t.clone()),
            ChainAttr::Policy(p) => chain.policy = Some((*p).into()),
            ChainAttr::Hook(hook) => {
                for h in hook {
                    match h {
                        HookAttr::Hooknum(n) => chain.hook = Some((*n).into()),
                        HookAttr::Priority(p) => chain.priority = Some(*p),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    // The kernel reports a base chain's policy, accept unless set.
    if chain.hook.is_some() && chain.policy.is_none() {
        chain.policy = Some(ChainPolicy::Accept.into());
    }
    Some((name?, chain))
}

fn rule_shape(attrs: &[RuleAttr]) -> Option<(String, RuleShape)> {
    let mut chain = None;
    let mut rule = RuleShape {
        userdata: None,
        exprs: Vec::new(),
    };
    for attr in attrs {
        match attr {
            RuleAttr::Chain(c) => chain = Some(c.clone()),
            RuleAttr::Userdata(u) => rule.userdata = Some(u.clone()),
            RuleAttr::Expressions(exprs) => rule.exprs = exprs.iter().map(expr_shape).collect(),
            _ => {}
        }
    }
    Some((chain?, rule))
}

/// Re-reads the expression's emitted bytes generically, so every
/// expression type (also `Expr::Other`) is compared the same way.
fn expr_shape(expr: &Expr) -> ExprShape {
    let mut bytes = vec![0; expr.buffer_len()];
    expr.emit(&mut bytes);
    let mut shape = ExprShape {
        name: expr.name().to_owned(),
        attrs: Vec::new(),
    };
    let Ok(elem) = NlaBuffer::new_checked(&bytes[..]) else {
        return shape;
    };
    for nla in NlasIterator::new(elem.value()).flatten() {
        match nla.kind() & NLA_TYPE_MASK {
            NFTA_EXPR_NAME => {}
            NFTA_EXPR_DATA => {
                for attr in NlasIterator::new(nla.value()).flatten() {
                    shape
                        .attrs
                        .push((attr.kind() & NLA_TYPE_MASK, attr.value().to_vec()));
                }
            }
            _ => {}
        }
    }
    match shape.name.as_str() {
        // Packet and byte counts are state, not configuration.
        "counter" => shape.attrs.clear(),
        // Absent means mask/xor; the kernel always dumps it.
        "bitwise" => shape.attrs.retain(|(kind, value)| {
            !(*kind == NFTA_BITWISE_OP && value[..] == NFT_BITWISE_MASK_XOR.to_be_bytes())
        }),
        _ => {}
    }
    shape.attrs.sort();
    shape
}

#[cfg(test)]
mod tests {
    //! Against a real dump: `nft list table ip kube-ipvs` on kernel 6.1,
    //! captured for kipvs-packet-nftables' golden tests
    //! (`hack/capture-fixtures.sh`, fixture `list_table`).

    use kipvs_fixtures::{Direction, Fixture};
    use kipvs_packet_nftables::{
        build::{new_chain, new_rule, Chain, ChainType, Rule},
        expr::{NF_CT_STATE_ESTABLISHED_BIT, NF_CT_STATE_NEW_BIT, NF_CT_STATE_RELATED_BIT},
        exprs,
        message::nft_msg_type,
        message::NFT_MSG_NEWCHAIN,
        message::NFT_MSG_NEWRULE,
        NfHook, NfProto,
    };

    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packet-nftables/tests/fixtures"
    );
    const T: &str = "kube-ipvs";

    fn dumped() -> Vec<NftMessage> {
        let fixture = Fixture::load(FIXTURES, "list_table");
        fixture
            .messages
            .iter()
            .filter(|c| c.direction == Direction::FromKernel)
            .filter(|c| {
                c.nlmsg_type == nft_msg_type(NFT_MSG_NEWCHAIN)
                    || c.nlmsg_type == nft_msg_type(NFT_MSG_NEWRULE)
            })
            .map(|c| NftMessage::parse_with_type(c.nlmsg_type, &c.payload).unwrap())
            .collect()
    }

    /// What the capture script created, written with our builders (base
    /// chains without an explicit policy, as `DesiredTable` builds them).
    fn requested(masquerade_fully_random: bool) -> Vec<NftMessage> {
        let f = NfProto::Ipv4;
        let base =
            |name: &str, kind, hook, prio| new_chain(&Chain::base(f, T, name, kind, hook, prio));
        let rule =
            |chain: &str, exprs: Vec<Vec<Expr>>| new_rule(&Rule::new(f, T, chain, exprs.concat()));
        vec![
            base("nat-prerouting", ChainType::Nat, NfHook::PreRouting, -100),
            base("nat-postrouting", ChainType::Nat, NfHook::PostRouting, 100),
            base("filter-input", ChainType::Filter, NfHook::LocalIn, 0),
            base("filter-forward", ChainType::Filter, NfHook::Forward, 0),
            new_chain(&Chain::regular(f, T, "mark-for-masquerade")),
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
        ]
    }

    #[test]
    fn kernel_dump_has_the_shape_of_the_requests() {
        let dump = dumped();
        assert_eq!(dump.len(), 5 + 6);
        // The dump really differs from the requests byte for byte ...
        assert_ne!(dump, requested(true));
        // ... but not in shape.
        assert_eq!(TableShape::of(&dump), TableShape::of(&requested(true)));
    }

    #[test]
    fn a_changed_expression_changes_the_shape() {
        assert_ne!(TableShape::of(&dumped()), TableShape::of(&requested(false)));
    }

    #[test]
    fn rule_order_and_chain_kind_matter() {
        let mut swapped = requested(true);
        swapped.swap(9, 10);
        assert_ne!(TableShape::of(&swapped), TableShape::of(&requested(true)));
        let mut regular = requested(true);
        regular[0] = new_chain(&Chain::regular(NfProto::Ipv4, T, "nat-prerouting"));
        assert_ne!(TableShape::of(&regular), TableShape::of(&requested(true)));
    }
}
