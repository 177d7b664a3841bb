//! `bitwise`: `dreg = (sreg & mask) ^ xor`, or a shift.
//! `net/netfilter/nft_bitwise.c`.

use crate::data::{DataAttr, Register};
use crate::macros::{attr_enum, kernel_enum};
use crate::nla_util::{Be32, Nest};

pub const NFTA_BITWISE_SREG: u16 = 1;
pub const NFTA_BITWISE_DREG: u16 = 2;
pub const NFTA_BITWISE_LEN: u16 = 3;
pub const NFTA_BITWISE_MASK: u16 = 4;
pub const NFTA_BITWISE_XOR: u16 = 5;
pub const NFTA_BITWISE_OP: u16 = 6;
pub const NFTA_BITWISE_DATA: u16 = 7;

/// Also called `NFT_BITWISE_BOOL`.
pub const NFT_BITWISE_MASK_XOR: u32 = 0;
pub const NFT_BITWISE_LSHIFT: u32 = 1;
pub const NFT_BITWISE_RSHIFT: u32 = 2;

kernel_enum! {
    pub enum BitwiseOp: u32 {
        MaskXor = NFT_BITWISE_MASK_XOR,
        Lshift = NFT_BITWISE_LSHIFT,
        Rshift = NFT_BITWISE_RSHIFT,
    }
}

attr_enum! {
    pub enum BitwiseAttr {
        Sreg(Register) = NFTA_BITWISE_SREG => Be32,
        Dreg(Register) = NFTA_BITWISE_DREG => Be32,
        Len(u32) = NFTA_BITWISE_LEN => Be32,
        Mask(Vec<DataAttr>) = NFTA_BITWISE_MASK => Nest,
        Xor(Vec<DataAttr>) = NFTA_BITWISE_XOR => Nest,
        /// Absent means mask/xor (kernels before 5.6 know nothing else).
        Op(BitwiseOp) = NFTA_BITWISE_OP => Be32,
        /// Shift amount.
        Data(Vec<DataAttr>) = NFTA_BITWISE_DATA => Nest,
    }
}
