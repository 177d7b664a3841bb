//! nf_tables over nfnetlink: the kube-ipvs tables, written as atomic batches
//! and read back with dumps, without running `nft`.

use kipvs_packet_nftables::{
    batch, get_chains, get_rules, get_tables, ChainAttr, NfProto, NftBody, NftMessage,
};
use netlink_packet_core::{Emitable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_sys::protocols::NETLINK_NETFILTER;

use crate::{
    Channel, Counters, Error, Family, MessageKind, Request, Result, ANSWER_BUDGET, MAX_DATAGRAM,
};

/// nf_tables client.
pub struct NfTables {
    channel: Channel,
}

impl NfTables {
    pub fn open(counters: Counters) -> Result<NfTables> {
        Ok(NfTables {
            channel: Channel::open(Family::NfTables, NETLINK_NETFILTER, counters)?,
        })
    }

    /// Applies the changes as one transaction (`nft -f`): the kernel commits
    /// all of them or none. Returns the first failure, naming the message.
    pub async fn apply(&mut self, changes: Vec<NftMessage>) -> Result<()> {
        // nfnetlink reads a batch from one datagram: BATCH_END must arrive in
        // the same sendmsg as BATCH_BEGIN, so a batch is never split.
        let size: usize = changes
            .iter()
            .map(|m| 16 + ((m.buffer_len() + 3) & !3))
            .sum::<usize>()
            + 2 * 20;
        if size > MAX_DATAGRAM || changes.len() + 2 > ANSWER_BUDGET {
            return Err(Error::Unexpected {
                family: Family::NfTables,
                kind: "BATCH",
                detail: format!(
                    "batch of {} messages, {size} bytes, does not fit one datagram",
                    changes.len()
                ),
            });
        }
        let requests = batch(changes)
            .into_iter()
            .map(|message| {
                let flags = message.request_flags() & !(NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP);
                if message.expects_ack() {
                    Request::ack(message, flags)
                } else {
                    // Kernels before 6.10 never answer BATCH_BEGIN/END.
                    Request::unanswered(message, flags)
                }
            })
            .collect();
        for outcome in self.channel.exchange(requests).await {
            outcome?;
        }
        Ok(())
    }

    /// Every table of `family` (`nft list tables`).
    pub async fn tables(&mut self, family: NfProto) -> Result<Vec<NftMessage>> {
        self.channel
            .request(Request::dump(get_tables(family), 0))
            .await
    }

    /// The chains of one table, from one dump. The kernel's chain dump
    /// does not filter by table (`nf_tables_dump_chains()` only looks at the
    /// family; `nft` filters in user space too), so the other tables' chains
    /// are dropped here.
    pub async fn chains(&mut self, family: NfProto, table: &str) -> Result<Vec<NftMessage>> {
        let replies = self
            .channel
            .request(Request::dump(get_chains(family, table), 0))
            .await?;
        Ok(replies
            .into_iter()
            .filter(|reply| match &reply.body {
                NftBody::NewChain(attrs) => attrs
                    .iter()
                    .any(|a| matches!(a, ChainAttr::Table(t) if t == table)),
                _ => false,
            })
            .collect())
    }

    /// The rules of one table, every chain, from one dump.
    pub async fn rules(&mut self, family: NfProto, table: &str) -> Result<Vec<NftMessage>> {
        self.channel
            .request(Request::dump(get_rules(family, table), 0))
            .await
    }
}

impl MessageKind for NftMessage {
    fn kind(&self) -> &'static str {
        match &self.body {
            NftBody::NewTable(_) => "NEWTABLE",
            NftBody::GetTable(_) => "GETTABLE",
            NftBody::DelTable(_) => "DELTABLE",
            NftBody::NewChain(_) => "NEWCHAIN",
            NftBody::GetChain(_) => "GETCHAIN",
            NftBody::DelChain(_) => "DELCHAIN",
            NftBody::NewRule(_) => "NEWRULE",
            NftBody::GetRule(_) => "GETRULE",
            NftBody::DelRule(_) => "DELRULE",
            NftBody::NewGen(_) => "NEWGEN",
            NftBody::GetGen(_) => "GETGEN",
            NftBody::BatchBegin(_) => "BATCH_BEGIN",
            NftBody::BatchEnd(_) => "BATCH_END",
            _ => "OTHER",
        }
    }
}
