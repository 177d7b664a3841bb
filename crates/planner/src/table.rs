//! The nf_tables table `kube-ipvs` of one family, as a spec.
//!
//! Rules test ipset membership with the xt `set` match, which names a set
//! by its kernel index, and an index only exists once the set does. So
//! [`crate::desired`] stores the table with sets named ([`RulePart::SetMatch`])
//! and [`crate::plan`] renders it with [`crate::Observed::set_indexes`]
//! ([`DesiredTable::contents`]). This keeps `desired()` independent of
//! kernel state, and a set recreated under a new index shows up as a
//! changed table, which is then replaced.

use std::{collections::BTreeMap, fmt};

use ipnet::IpNet;
use kipvs_packet_nftables::{
    build::{del_table, new_chain, new_rule, new_table, Chain, ChainType, Rule, Table},
    expr::NF_CT_STATE_ESTABLISHED_BIT,
    expr::{NF_CT_STATE_NEW_BIT, NF_CT_STATE_RELATED_BIT},
    exprs::{
        accept, ct_state_in, jump, mark_and_eq, mark_set_or, masquerade, reject, ret,
        saddr_in_cidr, xt_set_match,
    },
    xt_set::SetDir,
    Expr, NfHook, NfProto, NftMessage,
};

use crate::{config::NodeConfig, key::IpFamily, sets::SetRole};

/// The table's name in both families.
pub const TABLE_NAME: &str = "kube-ipvs";
/// kube-proxy's masquerade mark (`--masquerade-bit 14`).
pub const MASQ_MARK: u32 = 0x4000;

const SERVICES: &str = "services";
const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";

/// Part of a rule: fixed expressions, or an ipset match to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulePart {
    Exprs(Vec<Expr>),
    /// `-m set [!] --match-set <set> <dirs>`.
    SetMatch {
        set: String,
        dirs: Vec<SetDir>,
        inverted: bool,
    },
}

/// A rule appended to `chain`: its parts, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRule {
    pub chain: String,
    pub parts: Vec<RulePart>,
}

/// A rule references a set the kernel has not (yet) given an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSetIndex(pub String);

impl fmt::Display for MissingSetIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no kernel index for ipset {}", self.0)
    }
}

/// The table `kube-ipvs` of one family: chains in creation order, rules in
/// append order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTable {
    pub family: IpFamily,
    pub chains: Vec<Chain>,
    pub rules: Vec<TableRule>,
}

impl DesiredTable {
    /// The table for `family` under `config`: kube-proxy's IPVS-mode
    /// static rules (KUBE-SERVICES, KUBE-MARK-MASQ, KUBE-POSTROUTING and the
    /// filter rules) as chains of one table owned by kube-ipvs.
    pub fn for_family(family: IpFamily, config: &NodeConfig) -> Self {
        let proto = family.nf_proto();
        let cluster_ip = SetRole::ClusterIp.set_name(family);
        let loop_back = SetRole::LoopBack.set_name(family);
        let ipvs_ips = SetRole::IpvsIps.set_name(family);
        let set = |name: &str, dirs: &[SetDir], inverted| RulePart::SetMatch {
            set: name.to_owned(),
            dirs: dirs.to_vec(),
            inverted,
        };
        let to_service = || set(cluster_ip, &[SetDir::Dst, SetDir::Dst], false);
        let rule = |chain: &str, parts: Vec<RulePart>| TableRule {
            chain: chain.to_owned(),
            parts,
        };
        let base = |name: &str, chain_type, hook, priority| {
            Chain::base(proto, TABLE_NAME, name, chain_type, hook, priority)
        };

        let mut rules = services_rules(family, config, &to_service);
        rules.extend([
            rule(
                MARK_FOR_MASQUERADE,
                vec![RulePart::Exprs(mark_set_or(MASQ_MARK))],
            ),
            rule(
                "nat-prerouting",
                vec![RulePart::Exprs(vec![jump(SERVICES)])],
            ),
            rule("nat-output", vec![RulePart::Exprs(vec![jump(SERVICES)])]),
            // Hairpin: a pod reaching itself through a service.
            rule(
                "nat-postrouting",
                vec![
                    set(loop_back, &[SetDir::Dst, SetDir::Dst, SetDir::Src], false),
                    RulePart::Exprs(vec![masquerade(false)]),
                ],
            ),
            rule(
                "nat-postrouting",
                vec![RulePart::Exprs(
                    [mark_and_eq(MASQ_MARK, MASQ_MARK), vec![masquerade(true)]].concat(),
                )],
            ),
            // A service IP answers only on its service ports.
            rule(
                "filter-input",
                vec![
                    RulePart::Exprs(ct_state_in(NF_CT_STATE_NEW_BIT)),
                    set(ipvs_ips, &[SetDir::Dst], false),
                    set(cluster_ip, &[SetDir::Dst, SetDir::Dst], true),
                    RulePart::Exprs(vec![reject(proto)]),
                ],
            ),
            rule(
                "filter-forward",
                vec![RulePart::Exprs(
                    [
                        ct_state_in(NF_CT_STATE_ESTABLISHED_BIT | NF_CT_STATE_RELATED_BIT),
                        vec![accept()],
                    ]
                    .concat(),
                )],
            ),
            rule(
                "filter-forward",
                vec![RulePart::Exprs(
                    [mark_and_eq(MASQ_MARK, MASQ_MARK), vec![accept()]].concat(),
                )],
            ),
        ]);

        DesiredTable {
            family,
            chains: vec![
                Chain::regular(proto, TABLE_NAME, SERVICES),
                Chain::regular(proto, TABLE_NAME, MARK_FOR_MASQUERADE),
                base("nat-prerouting", ChainType::Nat, NfHook::PreRouting, -100),
                base("nat-output", ChainType::Nat, NfHook::LocalOut, -100),
                base("nat-postrouting", ChainType::Nat, NfHook::PostRouting, 100),
                base("filter-input", ChainType::Filter, NfHook::LocalIn, 0),
                base("filter-forward", ChainType::Filter, NfHook::Forward, 0),
            ],
            rules,
        }
    }

    pub fn nf_proto(&self) -> NfProto {
        self.family.nf_proto()
    }

    /// Every set a rule matches on.
    pub fn referenced_sets(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .rules
            .iter()
            .flat_map(|rule| &rule.parts)
            .filter_map(|part| match part {
                RulePart::SetMatch { set, .. } => Some(set.as_str()),
                RulePart::Exprs(_) => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// `NEWCHAIN` for every chain, then `NEWRULE` for every rule, with set
    /// names resolved to kernel indexes.
    pub fn contents(
        &self,
        set_indexes: &BTreeMap<String, u16>,
    ) -> Result<Vec<NftMessage>, MissingSetIndex> {
        let proto = self.nf_proto();
        let mut messages: Vec<NftMessage> = self.chains.iter().map(new_chain).collect();
        for rule in &self.rules {
            let mut exprs = Vec::new();
            for part in &rule.parts {
                match part {
                    RulePart::Exprs(e) => exprs.extend(e.iter().cloned()),
                    RulePart::SetMatch {
                        set,
                        dirs,
                        inverted,
                    } => {
                        let index = set_indexes
                            .get(set)
                            .ok_or_else(|| MissingSetIndex(set.clone()))?;
                        exprs.push(xt_set_match(*index, dirs, *inverted));
                    }
                }
            }
            messages.push(new_rule(&Rule::new(proto, TABLE_NAME, &rule.chain, exprs)));
        }
        Ok(messages)
    }

    /// The batch that (re)creates the whole table atomically: `NEWTABLE`
    /// (a no-op if it exists, so the `DELTABLE` cannot fail on a missing
    /// table), `DELTABLE`, then `NEWTABLE` and [`DesiredTable::contents`].
    pub fn replace_messages(
        &self,
        set_indexes: &BTreeMap<String, u16>,
    ) -> Result<Vec<NftMessage>, MissingSetIndex> {
        let contents = self.contents(set_indexes)?;
        Ok(Self::replace_with(self.nf_proto(), contents))
    }

    pub(crate) fn replace_with(proto: NfProto, contents: Vec<NftMessage>) -> Vec<NftMessage> {
        let table = Table::new(proto, TABLE_NAME);
        let mut messages = vec![
            new_table(&table),
            del_table(proto, TABLE_NAME),
            new_table(&table),
        ];
        messages.extend(contents);
        messages
    }
}

/// The `services` chain: mark traffic to a service for masquerading.
///
/// One cluster CIDR per family (the usual case) is kube-proxy's rule,
/// `dst in KUBE-CLUSTER-IP, saddr != CIDR → mark`. With several CIDRs
/// one `!=` rule each would mark traffic from every CIDR but one, so
/// traffic from any of them returns first and the rest is marked.
fn services_rules(
    family: IpFamily,
    config: &NodeConfig,
    to_service: &dyn Fn() -> RulePart,
) -> Vec<TableRule> {
    let rule = |parts: Vec<RulePart>| TableRule {
        chain: SERVICES.to_owned(),
        parts,
    };
    if config.masquerade_all {
        return vec![rule(vec![
            to_service(),
            RulePart::Exprs(vec![jump(MARK_FOR_MASQUERADE)]),
        ])];
    }
    let cidrs: Vec<IpNet> = config
        .cluster_cidrs
        .iter()
        .filter(|cidr| IpFamily::of(&cidr.addr()) == family)
        .map(IpNet::trunc)
        .collect();
    let saddr = |cidr: &IpNet, negate| saddr_in_cidr(cidr.network(), cidr.prefix_len(), negate);
    match cidrs.as_slice() {
        [] => Vec::new(),
        [cidr] => vec![rule(vec![
            to_service(),
            RulePart::Exprs([saddr(cidr, true), vec![jump(MARK_FOR_MASQUERADE)]].concat()),
        ])],
        several => {
            let mut rules: Vec<TableRule> = several
                .iter()
                .map(|cidr| {
                    rule(vec![
                        to_service(),
                        RulePart::Exprs([saddr(cidr, false), vec![ret()]].concat()),
                    ])
                })
                .collect();
            rules.push(rule(vec![
                to_service(),
                RulePart::Exprs(vec![jump(MARK_FOR_MASQUERADE)]),
            ]));
            rules
        }
    }
}
