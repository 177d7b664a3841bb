//! nf_tables over nfnetlink (`NETLINK_NETFILTER`, subsystem
//! `NFNL_SUBSYS_NFTABLES`): typed messages that emit and parse, no I/O.
//!
//! # Layout
//!
//! - [`NftMessage`] = [`NfGenMsg`] + [`NftBody`]; used as
//!   `NetlinkMessage<NftMessage>`. [`batch`] wraps changes in
//!   `BATCH_BEGIN`/`BATCH_END`; [`NftMessage::request_flags`] says which
//!   `nlmsg_flags` each message needs.
//! - Attributes, one enum per kernel attribute space, each ending in
//!   `Other(DefaultNla)`: [`TableAttr`], [`ChainAttr`]/[`HookAttr`],
//!   [`RuleAttr`], [`GenAttr`], and per expression type in [`expr`].
//! - [`Expr`]: a rule expression typed by name (payload, cmp, bitwise,
//!   meta, immediate, ct, fib, counter, masq, reject, match, target;
//!   anything else is [`Expr::Other`]).
//! - [`xt_set`]: the `set` match info, to test ipset membership.
//! - [`build`] and [`exprs`]: builders for tables, chains, rules, requests
//!   and the expressions kube-proxy's static rules use.
//!
//! nf_tables integers are big-endian on the wire (unlike IPVS), except
//! where a value is copied into a register as is (`meta mark`, `ct state`,
//! the xt info blobs): those are host order.

pub mod build;
pub mod chain;
pub mod data;
pub mod expr;
pub mod exprs;
pub mod gen;
pub mod header;
mod macros;
pub mod message;
mod nla_util;
pub mod rule;
pub mod table;
pub mod xt_set;

pub use build::{
    del_chain, del_rule, del_table, get_chains, get_rules, get_table, get_tables, new_chain,
    new_rule, new_table, BaseChain, Chain, ChainType, Rule, Table,
};
pub use chain::{ChainAttr, ChainPolicy, HookAttr, NfHook};
pub use data::{DataAttr, Register, VerdictAttr, VerdictCode};
pub use expr::Expr;
pub use gen::GenAttr;
pub use header::{NfGenMsg, NfProto};
pub use message::{batch, NftBody, NftMessage};
pub use rule::{RuleAttr, RuleCompatAttr};
pub use table::TableAttr;

#[cfg(test)]
mod tests;
