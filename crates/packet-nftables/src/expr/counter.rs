//! `counter` (and the `NFTA_CHAIN_COUNTERS` nest, which uses the same
//! attribute space). `net/netfilter/nft_counter.c`.

use crate::macros::attr_enum;
use crate::nla_util::{Be64, Raw};

pub const NFTA_COUNTER_BYTES: u16 = 1;
pub const NFTA_COUNTER_PACKETS: u16 = 2;
pub const NFTA_COUNTER_PAD: u16 = 3;

attr_enum! {
    pub enum CounterAttr {
        Bytes(u64) = NFTA_COUNTER_BYTES => Be64,
        Packets(u64) = NFTA_COUNTER_PACKETS => Be64,
        /// Alignment filler `nla_put_be64()` adds on some architectures.
        Pad(Vec<u8>) = NFTA_COUNTER_PAD => Raw,
    }
}
