//! `NFTA_GEN_*`: the ruleset generation, answered to GETGEN and announced
//! as NEWGEN after every committed batch (`nf_tables_fill_gen_info()`).

use crate::macros::attr_enum;
use crate::nla_util::{Be32, Strz};

pub const NFTA_GEN_ID: u16 = 1;
pub const NFTA_GEN_PROC_PID: u16 = 2;
pub const NFTA_GEN_PROC_NAME: u16 = 3;

attr_enum! {
    pub enum GenAttr {
        Id(u32) = NFTA_GEN_ID => Be32,
        ProcPid(u32) = NFTA_GEN_PROC_PID => Be32,
        ProcName(String) = NFTA_GEN_PROC_NAME => Strz,
    }
}
