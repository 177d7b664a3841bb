//! `NftMessage`: one nfnetlink message of the nf_tables subsystem (or a
//! batch delimiter), usable as `NetlinkMessage<NftMessage>`.
//!
//! Netlink header flags are the I/O layer's job; what each message needs:
//!
//! | message | `nlmsg_flags` |
//! |---|---|
//! | `BatchBegin`, `BatchEnd` | `NLM_F_REQUEST` only. No `NLM_F_ACK`: kernels before 6.10 never answer them, so waiting for that ack would hang. |
//! | `NewTable` | `NLM_F_REQUEST \| NLM_F_ACK`. nf_tables creates a table without `NLM_F_CREATE` and treats an existing one as success; add `NLM_F_EXCL` to get EEXIST instead (`nf_tables_newtable()`; nft's `create table`). |
//! | `NewChain` | `NLM_F_REQUEST \| NLM_F_ACK \| NLM_F_CREATE` (nft sends `CREATE`; an existing chain is again a success unless `NLM_F_EXCL`) |
//! | `NewRule` | `NLM_F_REQUEST \| NLM_F_ACK \| NLM_F_CREATE \| NLM_F_APPEND` (append; without `APPEND` the rule goes to the head of the chain, or before `Position`) |
//! | `DelTable`, `DelChain`, `DelRule` | `NLM_F_REQUEST \| NLM_F_ACK` |
//! | `Get*` dump | `NLM_F_REQUEST \| NLM_F_DUMP` (the kernel answers `New*` parts then `NLMSG_DONE`) |
//! | `Get*` of one object, `GetGen` | `NLM_F_REQUEST \| NLM_F_ACK` |
//!
//! [`NftMessage::request_flags`] returns exactly this table's choice. It
//! is what nft 1.0 sends plus `NLM_F_ACK` on every change: nft only learns
//! about failures (errors are always reported), while we want one answer
//! per message so the I/O layer can tell which change succeeded.
//!
//! Ordering: nf_tables changes are only accepted inside a batch
//! (`nfnetlink_rcv_batch()`): `BatchBegin`, the changes, `BatchEnd`, sent
//! in one `sendmsg()`, each with its own sequence number. See [`batch`].

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, ErrorContext, NetlinkDeserializable, NetlinkHeader,
    NetlinkSerializable, Parseable, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REQUEST,
};

use crate::chain::ChainAttr;
use crate::gen::GenAttr;
use crate::header::{NfGenMsg, NfProto, NFGENMSG_LEN, NFNETLINK_V0};
use crate::nla_util::parse_nlas;
use crate::rule::RuleAttr;
use crate::table::TableAttr;

pub const NFNL_SUBSYS_NFTABLES: u8 = 10;
pub const NFNL_SUBSYS_NFT_COMPAT: u8 = 11;

/// `NLMSG_MIN_TYPE`: the control messages carry no subsystem.
pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
pub const NFNL_MSG_BATCH_END: u16 = 0x11;

pub const NFT_MSG_NEWTABLE: u8 = 0;
pub const NFT_MSG_GETTABLE: u8 = 1;
pub const NFT_MSG_DELTABLE: u8 = 2;
pub const NFT_MSG_NEWCHAIN: u8 = 3;
pub const NFT_MSG_GETCHAIN: u8 = 4;
pub const NFT_MSG_DELCHAIN: u8 = 5;
pub const NFT_MSG_NEWRULE: u8 = 6;
pub const NFT_MSG_GETRULE: u8 = 7;
pub const NFT_MSG_DELRULE: u8 = 8;
pub const NFT_MSG_NEWSET: u8 = 9;
pub const NFT_MSG_GETSET: u8 = 10;
pub const NFT_MSG_DELSET: u8 = 11;
pub const NFT_MSG_NEWSETELEM: u8 = 12;
pub const NFT_MSG_GETSETELEM: u8 = 13;
pub const NFT_MSG_DELSETELEM: u8 = 14;
pub const NFT_MSG_NEWGEN: u8 = 15;
pub const NFT_MSG_GETGEN: u8 = 16;

/// `nlmsg_type` of an nf_tables message: `(NFNL_SUBSYS_NFTABLES << 8) | msg`.
pub const fn nft_msg_type(msg: u8) -> u16 {
    ((NFNL_SUBSYS_NFTABLES as u16) << 8) | msg as u16
}

/// The typed body of an [`NftMessage`]; the variant decides `nlmsg_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NftBody {
    NewTable(Vec<TableAttr>),
    GetTable(Vec<TableAttr>),
    DelTable(Vec<TableAttr>),
    NewChain(Vec<ChainAttr>),
    GetChain(Vec<ChainAttr>),
    DelChain(Vec<ChainAttr>),
    NewRule(Vec<RuleAttr>),
    GetRule(Vec<RuleAttr>),
    DelRule(Vec<RuleAttr>),
    NewGen(Vec<GenAttr>),
    GetGen(Vec<GenAttr>),
    /// `NFNL_MSG_BATCH_BEGIN` (may carry `NFNL_BATCH_GENID`).
    BatchBegin(Vec<DefaultNla>),
    BatchEnd(Vec<DefaultNla>),
    /// Anything else on NETLINK_NETFILTER (sets, set elements, objects,
    /// flowtables, the nft_compat subsystem iptables-nft queries, ...):
    /// the full `nlmsg_type` and the raw attributes.
    Other {
        message_type: u16,
        attrs: Vec<DefaultNla>,
    },
}

/// An nfnetlink message: `nfgenmsg` + attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftMessage {
    pub header: NfGenMsg,
    pub body: NftBody,
}

impl NftMessage {
    pub fn new(family: NfProto, body: NftBody) -> Self {
        NftMessage {
            header: NfGenMsg::new(family),
            body,
        }
    }

    /// `NFNL_MSG_BATCH_BEGIN`: family `NFPROTO_UNSPEC`, `res_id` =
    /// `NFNL_SUBSYS_NFTABLES` so the kernel routes the batch to nf_tables.
    pub fn batch_begin() -> Self {
        NftMessage {
            header: batch_header(),
            body: NftBody::BatchBegin(Vec::new()),
        }
    }

    pub fn batch_end() -> Self {
        NftMessage {
            header: batch_header(),
            body: NftBody::BatchEnd(Vec::new()),
        }
    }

    /// The `nlmsg_flags` this message should be sent with (see the module
    /// documentation); a `Get*` without a name is a dump.
    pub fn request_flags(&self) -> u16 {
        match &self.body {
            NftBody::BatchBegin(_) | NftBody::BatchEnd(_) => NLM_F_REQUEST,
            NftBody::NewTable(_) => NLM_F_REQUEST | NLM_F_ACK,
            NftBody::NewChain(_) => NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
            NftBody::NewRule(_) => NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
            NftBody::GetTable(attrs) if !attrs.iter().any(|a| matches!(a, TableAttr::Name(_))) => {
                NLM_F_REQUEST | NLM_F_DUMP
            }
            NftBody::GetChain(attrs) if !attrs.iter().any(|a| matches!(a, ChainAttr::Name(_))) => {
                NLM_F_REQUEST | NLM_F_DUMP
            }
            NftBody::GetRule(attrs) if !attrs.iter().any(|a| matches!(a, RuleAttr::Handle(_))) => {
                NLM_F_REQUEST | NLM_F_DUMP
            }
            _ => NLM_F_REQUEST | NLM_F_ACK,
        }
    }

    /// Whether the kernel acknowledges this message when asked to
    /// (the batch delimiters are not acknowledged before Linux 6.10).
    pub fn expects_ack(&self) -> bool {
        !matches!(self.body, NftBody::BatchBegin(_) | NftBody::BatchEnd(_))
    }

    fn attrs_len(&self) -> usize {
        match &self.body {
            NftBody::NewTable(a) | NftBody::GetTable(a) | NftBody::DelTable(a) => {
                a.as_slice().buffer_len()
            }
            NftBody::NewChain(a) | NftBody::GetChain(a) | NftBody::DelChain(a) => {
                a.as_slice().buffer_len()
            }
            NftBody::NewRule(a) | NftBody::GetRule(a) | NftBody::DelRule(a) => {
                a.as_slice().buffer_len()
            }
            NftBody::NewGen(a) | NftBody::GetGen(a) => a.as_slice().buffer_len(),
            NftBody::BatchBegin(a) | NftBody::BatchEnd(a) | NftBody::Other { attrs: a, .. } => {
                a.as_slice().buffer_len()
            }
        }
    }

    fn emit_attrs(&self, buffer: &mut [u8]) {
        match &self.body {
            NftBody::NewTable(a) | NftBody::GetTable(a) | NftBody::DelTable(a) => {
                a.as_slice().emit(buffer)
            }
            NftBody::NewChain(a) | NftBody::GetChain(a) | NftBody::DelChain(a) => {
                a.as_slice().emit(buffer)
            }
            NftBody::NewRule(a) | NftBody::GetRule(a) | NftBody::DelRule(a) => {
                a.as_slice().emit(buffer)
            }
            NftBody::NewGen(a) | NftBody::GetGen(a) => a.as_slice().emit(buffer),
            NftBody::BatchBegin(a) | NftBody::BatchEnd(a) | NftBody::Other { attrs: a, .. } => {
                a.as_slice().emit(buffer)
            }
        }
    }

    /// Parses a message body (the bytes after `nlmsghdr`) of `message_type`.
    pub fn parse_with_type(message_type: u16, buf: &[u8]) -> Result<Self, DecodeError> {
        let header = NfGenMsg::parse(buf).context("invalid nfgenmsg")?;
        let attrs = &buf[NFGENMSG_LEN..];
        let ctx = || format!("invalid nfnetlink message type {message_type:#06x}");
        let body = match message_type {
            NFNL_MSG_BATCH_BEGIN => NftBody::BatchBegin(parse_nlas(attrs).with_context(ctx)?),
            NFNL_MSG_BATCH_END => NftBody::BatchEnd(parse_nlas(attrs).with_context(ctx)?),
            t if (t >> 8) as u8 == NFNL_SUBSYS_NFTABLES => match (t & 0xff) as u8 {
                NFT_MSG_NEWTABLE => NftBody::NewTable(parse_nlas(attrs).with_context(ctx)?),
                NFT_MSG_GETTABLE => NftBody::GetTable(parse_nlas(attrs).with_context(ctx)?),
                NFT_MSG_DELTABLE => NftBody::DelTable(parse_nlas(attrs).with_context(ctx)?),
                NFT_MSG_NEWCHAIN => NftBody::NewChain(parse_nlas(attrs).with_context(ctx)?),
                NFT_MSG_GETCHAIN => NftBody::GetChain(parse_nlas(attrs).with_context(ctx)?),
                NFT_MSG_DELCHAIN => NftBody::DelChain(parse_nlas(attrs).with_context(ctx)?),
                NFT_MSG_NEWRULE => NftBody::NewRule(parse_nlas(attrs).with_context(ctx)?),
                NFT_MSG_GETRULE => NftBody::GetRule(parse_nlas(attrs).with_context(ctx)?),
                NFT_MSG_DELRULE => NftBody::DelRule(parse_nlas(attrs).with_context(ctx)?),
                NFT_MSG_NEWGEN => NftBody::NewGen(parse_nlas(attrs).with_context(ctx)?),
                NFT_MSG_GETGEN => NftBody::GetGen(parse_nlas(attrs).with_context(ctx)?),
                _ => NftBody::Other {
                    message_type,
                    attrs: parse_nlas(attrs).with_context(ctx)?,
                },
            },
            _ => NftBody::Other {
                message_type,
                attrs: parse_nlas(attrs).with_context(ctx)?,
            },
        };
        Ok(NftMessage { header, body })
    }
}

fn batch_header() -> NfGenMsg {
    NfGenMsg {
        family: NfProto::Unspec,
        version: NFNETLINK_V0,
        res_id: NFNL_SUBSYS_NFTABLES as u16,
    }
}

/// Wraps `messages` in `BatchBegin` … `BatchEnd`, the only way nf_tables
/// accepts changes. The I/O layer assigns sequence numbers and sets flags
/// per [`NftMessage::request_flags`].
pub fn batch(messages: Vec<NftMessage>) -> Vec<NftMessage> {
    let mut out = Vec::with_capacity(messages.len() + 2);
    out.push(NftMessage::batch_begin());
    out.extend(messages);
    out.push(NftMessage::batch_end());
    out
}

impl Emitable for NftMessage {
    fn buffer_len(&self) -> usize {
        NFGENMSG_LEN + self.attrs_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.header.emit(&mut buffer[..NFGENMSG_LEN]);
        self.emit_attrs(&mut buffer[NFGENMSG_LEN..]);
    }
}

impl NetlinkSerializable for NftMessage {
    fn message_type(&self) -> u16 {
        match &self.body {
            NftBody::NewTable(_) => nft_msg_type(NFT_MSG_NEWTABLE),
            NftBody::GetTable(_) => nft_msg_type(NFT_MSG_GETTABLE),
            NftBody::DelTable(_) => nft_msg_type(NFT_MSG_DELTABLE),
            NftBody::NewChain(_) => nft_msg_type(NFT_MSG_NEWCHAIN),
            NftBody::GetChain(_) => nft_msg_type(NFT_MSG_GETCHAIN),
            NftBody::DelChain(_) => nft_msg_type(NFT_MSG_DELCHAIN),
            NftBody::NewRule(_) => nft_msg_type(NFT_MSG_NEWRULE),
            NftBody::GetRule(_) => nft_msg_type(NFT_MSG_GETRULE),
            NftBody::DelRule(_) => nft_msg_type(NFT_MSG_DELRULE),
            NftBody::NewGen(_) => nft_msg_type(NFT_MSG_NEWGEN),
            NftBody::GetGen(_) => nft_msg_type(NFT_MSG_GETGEN),
            NftBody::BatchBegin(_) => NFNL_MSG_BATCH_BEGIN,
            NftBody::BatchEnd(_) => NFNL_MSG_BATCH_END,
            NftBody::Other { message_type, .. } => *message_type,
        }
    }

    fn buffer_len(&self) -> usize {
        Emitable::buffer_len(self)
    }

    fn serialize(&self, buffer: &mut [u8]) {
        self.emit(buffer)
    }
}

impl NetlinkDeserializable for NftMessage {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        NftMessage::parse_with_type(header.message_type, payload)
    }
}

impl From<NftMessage> for netlink_packet_core::NetlinkPayload<NftMessage> {
    fn from(message: NftMessage) -> Self {
        netlink_packet_core::NetlinkPayload::InnerMessage(message)
    }
}
