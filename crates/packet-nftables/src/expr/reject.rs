//! `reject`: answer with an ICMP error or a TCP reset.
//! `net/netfilter/nft_reject.c`.

use crate::macros::{attr_enum, kernel_enum};
use crate::nla_util::{Be32, U8};

pub const NFTA_REJECT_TYPE: u16 = 1;
pub const NFTA_REJECT_ICMP_CODE: u16 = 2;

pub const NFT_REJECT_ICMP_UNREACH: u32 = 0;
pub const NFT_REJECT_TCP_RST: u32 = 1;
pub const NFT_REJECT_ICMPX_UNREACH: u32 = 2;

/// `ICMP_PORT_UNREACH`: what nft's plain `reject` sends in the ip family.
pub const ICMP_PORT_UNREACH: u8 = 3;
/// `ICMPV6_PORT_UNREACH`, ditto for ip6.
pub const ICMPV6_PORT_UNREACH: u8 = 4;
/// `NFT_REJECT_ICMPX_PORT_UNREACH`, ditto for inet.
pub const NFT_REJECT_ICMPX_PORT_UNREACH: u8 = 1;

kernel_enum! {
    pub enum RejectType: u32 {
        IcmpUnreach = NFT_REJECT_ICMP_UNREACH,
        TcpRst = NFT_REJECT_TCP_RST,
        IcmpxUnreach = NFT_REJECT_ICMPX_UNREACH,
    }
}

attr_enum! {
    pub enum RejectAttr {
        Type(RejectType) = NFTA_REJECT_TYPE => Be32,
        IcmpCode(u8) = NFTA_REJECT_ICMP_CODE => U8,
    }
}
