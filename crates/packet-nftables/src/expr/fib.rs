//! `fib`: route lookup, e.g. `fib daddr type local`.
//! `net/netfilter/nft_fib.c`.

use crate::data::Register;
use crate::macros::{attr_enum, kernel_enum};
use crate::nla_util::Be32;

pub const NFTA_FIB_DREG: u16 = 1;
pub const NFTA_FIB_RESULT: u16 = 2;
pub const NFTA_FIB_FLAGS: u16 = 3;

pub const NFT_FIB_RESULT_OIF: u32 = 1;
pub const NFT_FIB_RESULT_OIFNAME: u32 = 2;
/// The route type (`RTN_*`, host-order u32 in the register).
pub const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;

pub const NFTA_FIB_F_SADDR: u32 = 1 << 0;
pub const NFTA_FIB_F_DADDR: u32 = 1 << 1;
pub const NFTA_FIB_F_MARK: u32 = 1 << 2;
pub const NFTA_FIB_F_IIF: u32 = 1 << 3;
pub const NFTA_FIB_F_OIF: u32 = 1 << 4;
pub const NFTA_FIB_F_PRESENT: u32 = 1 << 5;

/// `RTN_LOCAL` from `include/uapi/linux/rtnetlink.h`.
pub const RTN_LOCAL: u32 = 2;

kernel_enum! {
    pub enum FibResult: u32 {
        Oif = NFT_FIB_RESULT_OIF,
        OifName = NFT_FIB_RESULT_OIFNAME,
        AddrType = NFT_FIB_RESULT_ADDRTYPE,
    }
}

attr_enum! {
    pub enum FibAttr {
        Dreg(Register) = NFTA_FIB_DREG => Be32,
        Result(FibResult) = NFTA_FIB_RESULT => Be32,
        /// `NFTA_FIB_F_*`.
        Flags(u32) = NFTA_FIB_FLAGS => Be32,
    }
}
