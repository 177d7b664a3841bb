//! `masq`: source NAT to the outgoing interface's address.
//! `net/netfilter/nft_masq.c`.

use crate::data::Register;
use crate::macros::attr_enum;
use crate::nla_util::Be32;

pub const NFTA_MASQ_FLAGS: u16 = 1;
pub const NFTA_MASQ_REG_PROTO_MIN: u16 = 2;
pub const NFTA_MASQ_REG_PROTO_MAX: u16 = 3;

/// `NF_NAT_RANGE_*` (`include/uapi/linux/netfilter/nf_nat.h`).
pub const NF_NAT_RANGE_MAP_IPS: u32 = 1 << 0;
pub const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 1 << 1;
pub const NF_NAT_RANGE_PROTO_RANDOM: u32 = 1 << 2;
pub const NF_NAT_RANGE_PERSISTENT: u32 = 1 << 3;
pub const NF_NAT_RANGE_PROTO_RANDOM_FULLY: u32 = 1 << 4;

attr_enum! {
    pub enum MasqAttr {
        /// `NF_NAT_RANGE_*`.
        Flags(u32) = NFTA_MASQ_FLAGS => Be32,
        RegProtoMin(Register) = NFTA_MASQ_REG_PROTO_MIN => Be32,
        RegProtoMax(Register) = NFTA_MASQ_REG_PROTO_MAX => Be32,
    }
}
