//! Small builders for what the proxy's rule generator needs: tables, base
//! and regular chains, rules, and the request messages that carry them.
//! Attribute order follows libnftnl, so a builder's output is byte-equal
//! to what `nft` sends for the same object (the golden tests check this).

use crate::chain::{ChainAttr, ChainPolicy, HookAttr, NfHook};
use crate::expr::Expr;
use crate::header::NfProto;
use crate::message::{NftBody, NftMessage};
use crate::rule::{comment_userdata, RuleAttr};
use crate::table::TableAttr;

/// A table (`NEWTABLE`: name and flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub family: NfProto,
    pub name: String,
    /// `NFT_TABLE_F_*`; nft always sends the attribute, 0 by default.
    pub flags: u32,
}

impl Table {
    pub fn new(family: NfProto, name: impl Into<String>) -> Self {
        Table {
            family,
            name: name.into(),
            flags: 0,
        }
    }

    pub fn attrs(&self) -> Vec<TableAttr> {
        vec![
            TableAttr::Name(self.name.clone()),
            TableAttr::Flags(self.flags),
        ]
    }
}

/// `type` of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    Filter,
    Nat,
    Route,
}

impl ChainType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }
}

/// What makes a chain a base chain: attached to a netfilter hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    pub chain_type: ChainType,
    pub hook: NfHook,
    /// e.g. -100 for dstnat, 100 for srcnat, 0 for filter.
    pub priority: i32,
    /// Sent only when set (the kernel defaults to accept).
    pub policy: Option<ChainPolicy>,
}

/// A chain; regular (jump target) when `base` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub family: NfProto,
    pub table: String,
    pub name: String,
    pub base: Option<BaseChain>,
}

impl Chain {
    pub fn regular(family: NfProto, table: impl Into<String>, name: impl Into<String>) -> Self {
        Chain {
            family,
            table: table.into(),
            name: name.into(),
            base: None,
        }
    }

    pub fn base(
        family: NfProto,
        table: impl Into<String>,
        name: impl Into<String>,
        chain_type: ChainType,
        hook: NfHook,
        priority: i32,
    ) -> Self {
        Chain {
            family,
            table: table.into(),
            name: name.into(),
            base: Some(BaseChain {
                chain_type,
                hook,
                priority,
                policy: None,
            }),
        }
    }

    /// Sets the policy of a base chain (no effect on a regular chain).
    pub fn with_policy(mut self, policy: ChainPolicy) -> Self {
        if let Some(base) = &mut self.base {
            base.policy = Some(policy);
        }
        self
    }

    /// Attribute order as nft 1.0 sends it: table, name, type, policy, hook.
    pub fn attrs(&self) -> Vec<ChainAttr> {
        let mut attrs = vec![
            ChainAttr::Table(self.table.clone()),
            ChainAttr::Name(self.name.clone()),
        ];
        if let Some(base) = &self.base {
            attrs.push(ChainAttr::Type(base.chain_type.as_str().to_owned()));
            if let Some(policy) = base.policy {
                attrs.push(ChainAttr::Policy(policy));
            }
            attrs.push(ChainAttr::Hook(vec![
                HookAttr::Hooknum(base.hook),
                HookAttr::Priority(base.priority),
            ]));
        }
        attrs
    }
}

/// A rule: a list of expressions appended to a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub family: NfProto,
    pub table: String,
    pub chain: String,
    pub exprs: Vec<Expr>,
    /// nft-style comment (stored in `NFTA_RULE_USERDATA`).
    pub comment: Option<String>,
}

impl Rule {
    pub fn new(
        family: NfProto,
        table: impl Into<String>,
        chain: impl Into<String>,
        exprs: Vec<Expr>,
    ) -> Self {
        Rule {
            family,
            table: table.into(),
            chain: chain.into(),
            exprs,
            comment: None,
        }
    }

    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// libnftnl order: table, chain, userdata, expressions.
    pub fn attrs(&self) -> Vec<RuleAttr> {
        let mut attrs = vec![
            RuleAttr::Table(self.table.clone()),
            RuleAttr::Chain(self.chain.clone()),
        ];
        if let Some(comment) = &self.comment {
            attrs.push(RuleAttr::Userdata(comment_userdata(comment)));
        }
        attrs.push(RuleAttr::Expressions(self.exprs.clone()));
        attrs
    }
}

/// `NEWTABLE` (inside a batch; creates or, if it exists, is a no-op).
pub fn new_table(table: &Table) -> NftMessage {
    NftMessage::new(table.family, NftBody::NewTable(table.attrs()))
}

/// `DELTABLE` by name: removes the table with all its chains and rules.
pub fn del_table(family: NfProto, name: &str) -> NftMessage {
    NftMessage::new(
        family,
        NftBody::DelTable(vec![TableAttr::Name(name.to_owned())]),
    )
}

/// `GETTABLE` of one table.
pub fn get_table(family: NfProto, name: &str) -> NftMessage {
    NftMessage::new(
        family,
        NftBody::GetTable(vec![TableAttr::Name(name.to_owned())]),
    )
}

/// `GETTABLE` dump of every table of `family` (`NfProto::Unspec`: all).
pub fn get_tables(family: NfProto) -> NftMessage {
    NftMessage::new(family, NftBody::GetTable(Vec::new()))
}

/// `NEWCHAIN` (inside a batch; creates or, if it exists, is a no-op).
pub fn new_chain(chain: &Chain) -> NftMessage {
    NftMessage::new(chain.family, NftBody::NewChain(chain.attrs()))
}

/// `DELCHAIN` (the chain must be empty and unreferenced).
pub fn del_chain(family: NfProto, table: &str, name: &str) -> NftMessage {
    NftMessage::new(
        family,
        NftBody::DelChain(vec![
            ChainAttr::Table(table.to_owned()),
            ChainAttr::Name(name.to_owned()),
        ]),
    )
}

/// `GETCHAIN` dump asking for the chains of one table. The kernel (6.1)
/// ignores the table name in a chain dump (`nf_tables_dump_chains()` only
/// filters by family), so the reader must filter the replies by table.
pub fn get_chains(family: NfProto, table: &str) -> NftMessage {
    NftMessage::new(
        family,
        NftBody::GetChain(vec![ChainAttr::Table(table.to_owned())]),
    )
}

/// `NEWRULE` (send with `NLM_F_CREATE | NLM_F_APPEND`, inside a batch).
pub fn new_rule(rule: &Rule) -> NftMessage {
    NftMessage::new(rule.family, NftBody::NewRule(rule.attrs()))
}

/// `DELRULE` of one rule, by the handle a dump reported.
pub fn del_rule(family: NfProto, table: &str, chain: &str, handle: u64) -> NftMessage {
    NftMessage::new(
        family,
        NftBody::DelRule(vec![
            RuleAttr::Table(table.to_owned()),
            RuleAttr::Chain(chain.to_owned()),
            RuleAttr::Handle(handle),
        ]),
    )
}

/// `GETRULE` dump of every rule of one table (filtered by
/// `NFTA_RULE_TABLE` in `nf_tables_dump_rules()`).
pub fn get_rules(family: NfProto, table: &str) -> NftMessage {
    NftMessage::new(
        family,
        NftBody::GetRule(vec![RuleAttr::Table(table.to_owned())]),
    )
}
