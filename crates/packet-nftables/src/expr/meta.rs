//! `meta`: load packet metadata into a register (`dreg`) or set it from
//! one (`sreg`, e.g. `meta mark set`). `net/netfilter/nft_meta.c`.

use crate::data::Register;
use crate::macros::{attr_enum, kernel_enum};
use crate::nla_util::Be32;

pub const NFTA_META_DREG: u16 = 1;
pub const NFTA_META_KEY: u16 = 2;
pub const NFTA_META_SREG: u16 = 3;

pub const NFT_META_LEN: u32 = 0;
pub const NFT_META_PROTOCOL: u32 = 1;
pub const NFT_META_PRIORITY: u32 = 2;
pub const NFT_META_MARK: u32 = 3;
pub const NFT_META_IIF: u32 = 4;
pub const NFT_META_OIF: u32 = 5;
pub const NFT_META_IIFNAME: u32 = 6;
pub const NFT_META_OIFNAME: u32 = 7;
pub const NFT_META_IIFTYPE: u32 = 8;
pub const NFT_META_OIFTYPE: u32 = 9;
pub const NFT_META_SKUID: u32 = 10;
pub const NFT_META_SKGID: u32 = 11;
pub const NFT_META_NFTRACE: u32 = 12;
pub const NFT_META_RTCLASSID: u32 = 13;
pub const NFT_META_SECMARK: u32 = 14;
pub const NFT_META_NFPROTO: u32 = 15;
pub const NFT_META_L4PROTO: u32 = 16;
pub const NFT_META_BRI_IIFNAME: u32 = 17;
pub const NFT_META_BRI_OIFNAME: u32 = 18;
pub const NFT_META_PKTTYPE: u32 = 19;

kernel_enum! {
    pub enum MetaKey: u32 {
        Len = NFT_META_LEN,
        Protocol = NFT_META_PROTOCOL,
        Priority = NFT_META_PRIORITY,
        /// `skb->mark`, a host-order u32 in the register.
        Mark = NFT_META_MARK,
        Iif = NFT_META_IIF,
        Oif = NFT_META_OIF,
        IifName = NFT_META_IIFNAME,
        OifName = NFT_META_OIFNAME,
        IifType = NFT_META_IIFTYPE,
        OifType = NFT_META_OIFTYPE,
        SkUid = NFT_META_SKUID,
        SkGid = NFT_META_SKGID,
        NfTrace = NFT_META_NFTRACE,
        RtClassId = NFT_META_RTCLASSID,
        Secmark = NFT_META_SECMARK,
        /// One byte, `NFPROTO_*`.
        NfProto = NFT_META_NFPROTO,
        /// One byte, `IPPROTO_*` of the transport header.
        L4Proto = NFT_META_L4PROTO,
        BriIifName = NFT_META_BRI_IIFNAME,
        BriOifName = NFT_META_BRI_OIFNAME,
        PktType = NFT_META_PKTTYPE,
    }
}

attr_enum! {
    pub enum MetaAttr {
        Dreg(Register) = NFTA_META_DREG => Be32,
        Key(MetaKey) = NFTA_META_KEY => Be32,
        Sreg(Register) = NFTA_META_SREG => Be32,
    }
}
