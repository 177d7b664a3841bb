//! Chain attributes (`NFTA_CHAIN_*`, `NFTA_HOOK_*`, `nf_tables_newchain()`
//! / `nf_tables_fill_chain_info()`).

use crate::expr::CounterAttr;
use crate::macros::{attr_enum, kernel_enum};
use crate::nla_util::{Be32, Be64, BeI32, Nest, Raw, Strz};

pub const NFTA_CHAIN_TABLE: u16 = 1;
pub const NFTA_CHAIN_HANDLE: u16 = 2;
pub const NFTA_CHAIN_NAME: u16 = 3;
pub const NFTA_CHAIN_HOOK: u16 = 4;
pub const NFTA_CHAIN_POLICY: u16 = 5;
pub const NFTA_CHAIN_USE: u16 = 6;
pub const NFTA_CHAIN_TYPE: u16 = 7;
pub const NFTA_CHAIN_COUNTERS: u16 = 8;
pub const NFTA_CHAIN_PAD: u16 = 9;
pub const NFTA_CHAIN_FLAGS: u16 = 10;
pub const NFTA_CHAIN_ID: u16 = 11;
pub const NFTA_CHAIN_USERDATA: u16 = 12;

pub const NFTA_HOOK_HOOKNUM: u16 = 1;
pub const NFTA_HOOK_PRIORITY: u16 = 2;
pub const NFTA_HOOK_DEV: u16 = 3;
pub const NFTA_HOOK_DEVS: u16 = 4;

pub const NFT_CHAIN_BASE: u32 = 1 << 0;
pub const NFT_CHAIN_HW_OFFLOAD: u32 = 1 << 1;
pub const NFT_CHAIN_BINDING: u32 = 1 << 2;

pub const NF_INET_PRE_ROUTING: u32 = 0;
pub const NF_INET_LOCAL_IN: u32 = 1;
pub const NF_INET_FORWARD: u32 = 2;
pub const NF_INET_LOCAL_OUT: u32 = 3;
pub const NF_INET_POST_ROUTING: u32 = 4;
pub const NF_INET_INGRESS: u32 = 5;

kernel_enum! {
    /// `NFTA_HOOK_HOOKNUM` for the ip/ip6/inet families (`enum nf_inet_hooks`).
    pub enum NfHook: u32 {
        PreRouting = NF_INET_PRE_ROUTING,
        LocalIn = NF_INET_LOCAL_IN,
        Forward = NF_INET_FORWARD,
        LocalOut = NF_INET_LOCAL_OUT,
        PostRouting = NF_INET_POST_ROUTING,
        Ingress = NF_INET_INGRESS,
    }
}

/// `NFTA_CHAIN_POLICY` values: the kernel accepts only these two
/// (`nft_chain_parse_policy()` rejects anything else with EINVAL).
pub const NFT_POLICY_DROP: u32 = 0;
pub const NFT_POLICY_ACCEPT: u32 = 1;

kernel_enum! {
    /// Base chain policy (`NF_DROP`/`NF_ACCEPT`, big-endian).
    pub enum ChainPolicy: u32 {
        Drop = NFT_POLICY_DROP,
        Accept = NFT_POLICY_ACCEPT,
    }
}

attr_enum! {
    /// `NFTA_CHAIN_HOOK` nest.
    pub enum HookAttr {
        Hooknum(NfHook) = NFTA_HOOK_HOOKNUM => Be32,
        /// Signed: nat prerouting is -100 (`NF_IP_PRI_NAT_DST`).
        Priority(i32) = NFTA_HOOK_PRIORITY => BeI32,
        Dev(String) = NFTA_HOOK_DEV => Strz,
    }
}

attr_enum! {
    pub enum ChainAttr {
        Table(String) = NFTA_CHAIN_TABLE => Strz,
        Handle(u64) = NFTA_CHAIN_HANDLE => Be64,
        Name(String) = NFTA_CHAIN_NAME => Strz,
        /// Present on base chains only.
        Hook(Vec<HookAttr>) = NFTA_CHAIN_HOOK => Nest,
        Policy(ChainPolicy) = NFTA_CHAIN_POLICY => Be32,
        Use(u32) = NFTA_CHAIN_USE => Be32,
        /// "filter", "nat" or "route".
        Type(String) = NFTA_CHAIN_TYPE => Strz,
        Counters(Vec<CounterAttr>) = NFTA_CHAIN_COUNTERS => Nest,
        /// `NFT_CHAIN_*`.
        Flags(u32) = NFTA_CHAIN_FLAGS => Be32,
        Id(u32) = NFTA_CHAIN_ID => Be32,
        Userdata(Vec<u8>) = NFTA_CHAIN_USERDATA => Raw,
    }
}
