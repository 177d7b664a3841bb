//! `ct`: conntrack state of the packet. `net/netfilter/nft_ct.c`.

use crate::data::Register;
use crate::macros::{attr_enum, kernel_enum};
use crate::nla_util::{Be32, U8};

pub const NFTA_CT_DREG: u16 = 1;
pub const NFTA_CT_KEY: u16 = 2;
pub const NFTA_CT_DIRECTION: u16 = 3;
pub const NFTA_CT_SREG: u16 = 4;

pub const NFT_CT_STATE: u32 = 0;
pub const NFT_CT_DIRECTION: u32 = 1;
pub const NFT_CT_STATUS: u32 = 2;
pub const NFT_CT_MARK: u32 = 3;
pub const NFT_CT_SECMARK: u32 = 4;
pub const NFT_CT_EXPIRATION: u32 = 5;
pub const NFT_CT_HELPER: u32 = 6;
pub const NFT_CT_L3PROTOCOL: u32 = 7;
pub const NFT_CT_SRC: u32 = 8;
pub const NFT_CT_DST: u32 = 9;
pub const NFT_CT_PROTOCOL: u32 = 10;
pub const NFT_CT_PROTO_SRC: u32 = 11;
pub const NFT_CT_PROTO_DST: u32 = 12;

kernel_enum! {
    pub enum CtKey: u32 {
        State = NFT_CT_STATE,
        Direction = NFT_CT_DIRECTION,
        Status = NFT_CT_STATUS,
        Mark = NFT_CT_MARK,
        Secmark = NFT_CT_SECMARK,
        Expiration = NFT_CT_EXPIRATION,
        Helper = NFT_CT_HELPER,
        L3Protocol = NFT_CT_L3PROTOCOL,
        Src = NFT_CT_SRC,
        Dst = NFT_CT_DST,
        Protocol = NFT_CT_PROTOCOL,
        ProtoSrc = NFT_CT_PROTO_SRC,
        ProtoDst = NFT_CT_PROTO_DST,
    }
}

/// `ct state` bits as loaded by `NFT_CT_STATE` (host-order u32):
/// `NF_CT_STATE_BIT(ctinfo) = 1 << (ctinfo + 1)`, invalid is bit 0 and
/// untracked bit 6 (`include/uapi/linux/netfilter/nf_conntrack_common.h`).
pub const NF_CT_STATE_INVALID_BIT: u32 = 1 << 0;
pub const NF_CT_STATE_ESTABLISHED_BIT: u32 = 1 << 1;
pub const NF_CT_STATE_RELATED_BIT: u32 = 1 << 2;
pub const NF_CT_STATE_NEW_BIT: u32 = 1 << 3;
pub const NF_CT_STATE_UNTRACKED_BIT: u32 = 1 << 6;

attr_enum! {
    pub enum CtAttr {
        Dreg(Register) = NFTA_CT_DREG => Be32,
        Key(CtKey) = NFTA_CT_KEY => Be32,
        /// `IP_CT_DIR_ORIGINAL` (0) or `IP_CT_DIR_REPLY` (1).
        Direction(u8) = NFTA_CT_DIRECTION => U8,
        Sreg(Register) = NFTA_CT_SREG => Be32,
    }
}
