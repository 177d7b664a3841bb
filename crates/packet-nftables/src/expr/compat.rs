//! `match` and `target`: x_tables extensions run inside nf_tables
//! (`net/netfilter/nft_compat.c`), as iptables-nft emits them. The info
//! blob is the extension's own C struct in host byte order; its length must
//! round up (`XT_ALIGN`, 8 bytes) to the extension's size or
//! `xt_check_match()` answers EINVAL.

use crate::macros::attr_enum;
use crate::nla_util::{Be32, Raw, Strz};

pub const NFTA_MATCH_NAME: u16 = 1;
pub const NFTA_MATCH_REV: u16 = 2;
pub const NFTA_MATCH_INFO: u16 = 3;

pub const NFTA_TARGET_NAME: u16 = 1;
pub const NFTA_TARGET_REV: u16 = 2;
pub const NFTA_TARGET_INFO: u16 = 3;

attr_enum! {
    pub enum MatchAttr {
        Name(String) = NFTA_MATCH_NAME => Strz,
        /// Big-endian (`ntohl(nla_get_be32(tb[NFTA_MATCH_REV]))`).
        Rev(u32) = NFTA_MATCH_REV => Be32,
        Info(Vec<u8>) = NFTA_MATCH_INFO => Raw,
    }
}

attr_enum! {
    pub enum TargetAttr {
        Name(String) = NFTA_TARGET_NAME => Strz,
        Rev(u32) = NFTA_TARGET_REV => Be32,
        Info(Vec<u8>) = NFTA_TARGET_INFO => Raw,
    }
}
