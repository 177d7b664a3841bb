//! An nf_tables table as typed chains and rules: what the desired table
//! renders to once its sets have kernel indexes, and what the runtime reads
//! back from a dump. The planner compares the two structurally; the
//! runtime alone turns them into messages and bytes.

use std::collections::BTreeMap;

use kipvs_packet_nftables::{build::ChainType, chain::ChainPolicy, Expr, NfHook};

/// One `kube-ipvs` table.
#[derive(Debug, Clone, Default)]
pub struct RenderedTable {
    /// In creation order.
    pub chains: Vec<RenderedChain>,
    /// In append order.
    pub rules: Vec<RenderedRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedChain {
    pub name: String,
    /// `None` for a regular chain (a jump target).
    pub hook: Option<ChainHook>,
}

/// What makes a chain a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHook {
    pub chain_type: ChainType,
    pub hook: NfHook,
    pub priority: i32,
    /// `None` leaves the kernel's default, accept.
    pub policy: Option<ChainPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedRule {
    pub chain: String,
    pub exprs: Vec<Expr>,
    /// `NFTA_RULE_USERDATA` (nft keeps a rule's comment there).
    pub userdata: Option<Vec<u8>>,
}

/// Two tables are equal when they do the same: the same chains (by name:
/// kind, hook, priority, policy, accept when unset) with the same rules in
/// the same order, expressions compared as configuration
/// ([`Expr::canonical`]). Handles, use counts, counters and attribute order
/// — what a dump adds to or changes in a request — do not count.
impl PartialEq for RenderedTable {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl Eq for RenderedTable {}

type CanonicalChain = Option<(ChainType, NfHook, i32, ChainPolicy)>;
type CanonicalRule<'a> = (Option<&'a [u8]>, Vec<Expr>);

impl RenderedTable {
    fn canonical(
        &self,
    ) -> (
        BTreeMap<&str, CanonicalChain>,
        BTreeMap<&str, Vec<CanonicalRule<'_>>>,
    ) {
        let chains = self
            .chains
            .iter()
            .map(|chain| {
                let hook = chain.hook.map(|h| {
                    (
                        h.chain_type,
                        h.hook,
                        h.priority,
                        h.policy.unwrap_or(ChainPolicy::Accept),
                    )
                });
                (chain.name.as_str(), hook)
            })
            .collect();
        let mut rules: BTreeMap<&str, Vec<CanonicalRule<'_>>> = BTreeMap::new();
        for rule in &self.rules {
            rules.entry(rule.chain.as_str()).or_default().push((
                rule.userdata.as_deref(),
                rule.exprs.iter().map(Expr::canonical).collect(),
            ));
        }
        (chains, rules)
    }
}
