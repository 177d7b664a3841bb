//! `immediate`: load a constant or a verdict into a register.
//! `net/netfilter/nft_immediate.c`.

use crate::data::{DataAttr, Register};
use crate::macros::attr_enum;
use crate::nla_util::{Be32, Nest};

pub const NFTA_IMMEDIATE_DREG: u16 = 1;
pub const NFTA_IMMEDIATE_DATA: u16 = 2;

attr_enum! {
    pub enum ImmediateAttr {
        /// `Register::Verdict` for accept/drop/jump/return.
        Dreg(Register) = NFTA_IMMEDIATE_DREG => Be32,
        Data(Vec<DataAttr>) = NFTA_IMMEDIATE_DATA => Nest,
    }
}
