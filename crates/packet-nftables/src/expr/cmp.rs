//! `cmp`: compare a register with a constant. `net/netfilter/nft_cmp.c`.

use crate::data::{DataAttr, Register};
use crate::macros::{attr_enum, kernel_enum};
use crate::nla_util::{Be32, Nest};

pub const NFTA_CMP_SREG: u16 = 1;
pub const NFTA_CMP_OP: u16 = 2;
pub const NFTA_CMP_DATA: u16 = 3;

pub const NFT_CMP_EQ: u32 = 0;
pub const NFT_CMP_NEQ: u32 = 1;
pub const NFT_CMP_LT: u32 = 2;
pub const NFT_CMP_LTE: u32 = 3;
pub const NFT_CMP_GT: u32 = 4;
pub const NFT_CMP_GTE: u32 = 5;

kernel_enum! {
    pub enum CmpOp: u32 {
        Eq = NFT_CMP_EQ,
        Neq = NFT_CMP_NEQ,
        Lt = NFT_CMP_LT,
        Lte = NFT_CMP_LTE,
        Gt = NFT_CMP_GT,
        Gte = NFT_CMP_GTE,
    }
}

attr_enum! {
    pub enum CmpAttr {
        Sreg(Register) = NFTA_CMP_SREG => Be32,
        Op(CmpOp) = NFTA_CMP_OP => Be32,
        /// A nest holding one `NFTA_DATA_VALUE`.
        Data(Vec<DataAttr>) = NFTA_CMP_DATA => Nest,
    }
}
