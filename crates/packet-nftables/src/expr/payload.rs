//! `payload`: load packet bytes into a register (or write them back).
//! `net/netfilter/nft_payload.c`.

use crate::data::Register;
use crate::macros::{attr_enum, kernel_enum};
use crate::nla_util::Be32;

pub const NFTA_PAYLOAD_DREG: u16 = 1;
pub const NFTA_PAYLOAD_BASE: u16 = 2;
pub const NFTA_PAYLOAD_OFFSET: u16 = 3;
pub const NFTA_PAYLOAD_LEN: u16 = 4;
pub const NFTA_PAYLOAD_SREG: u16 = 5;
pub const NFTA_PAYLOAD_CSUM_TYPE: u16 = 6;
pub const NFTA_PAYLOAD_CSUM_OFFSET: u16 = 7;
pub const NFTA_PAYLOAD_CSUM_FLAGS: u16 = 8;

pub const NFT_PAYLOAD_LL_HEADER: u32 = 0;
pub const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
pub const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
pub const NFT_PAYLOAD_INNER_HEADER: u32 = 3;

kernel_enum! {
    pub enum PayloadBase: u32 {
        LinkLayer = NFT_PAYLOAD_LL_HEADER,
        Network = NFT_PAYLOAD_NETWORK_HEADER,
        Transport = NFT_PAYLOAD_TRANSPORT_HEADER,
        Inner = NFT_PAYLOAD_INNER_HEADER,
    }
}

attr_enum! {
    pub enum PayloadAttr {
        Dreg(Register) = NFTA_PAYLOAD_DREG => Be32,
        Base(PayloadBase) = NFTA_PAYLOAD_BASE => Be32,
        Offset(u32) = NFTA_PAYLOAD_OFFSET => Be32,
        Len(u32) = NFTA_PAYLOAD_LEN => Be32,
        Sreg(Register) = NFTA_PAYLOAD_SREG => Be32,
        CsumType(u32) = NFTA_PAYLOAD_CSUM_TYPE => Be32,
        CsumOffset(u32) = NFTA_PAYLOAD_CSUM_OFFSET => Be32,
        CsumFlags(u32) = NFTA_PAYLOAD_CSUM_FLAGS => Be32,
    }
}
