//! Table attributes (`NFTA_TABLE_*`, `nf_tables_newtable()` /
//! `nf_tables_fill_table_info()`).

use crate::macros::attr_enum;
use crate::nla_util::{Be32, Be64, Raw, Strz};

pub const NFTA_TABLE_NAME: u16 = 1;
pub const NFTA_TABLE_FLAGS: u16 = 2;
pub const NFTA_TABLE_USE: u16 = 3;
pub const NFTA_TABLE_HANDLE: u16 = 4;
pub const NFTA_TABLE_PAD: u16 = 5;
pub const NFTA_TABLE_USERDATA: u16 = 6;
pub const NFTA_TABLE_OWNER: u16 = 7;

pub const NFT_TABLE_F_DORMANT: u32 = 0x1;
/// The table lives only as long as the netlink socket that created it
/// (and only that socket may change it).
pub const NFT_TABLE_F_OWNER: u32 = 0x2;

attr_enum! {
    pub enum TableAttr {
        Name(String) = NFTA_TABLE_NAME => Strz,
        /// `NFT_TABLE_F_*`.
        Flags(u32) = NFTA_TABLE_FLAGS => Be32,
        /// Number of chains/sets/objects referring to the table.
        Use(u32) = NFTA_TABLE_USE => Be32,
        Handle(u64) = NFTA_TABLE_HANDLE => Be64,
        Userdata(Vec<u8>) = NFTA_TABLE_USERDATA => Raw,
        /// Netlink port id of the owning socket (with `NFT_TABLE_F_OWNER`).
        Owner(u32) = NFTA_TABLE_OWNER => Be32,
    }
}
