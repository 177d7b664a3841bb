//! `struct nfgenmsg`, the 4-byte header every nfnetlink message starts with
//! (`include/uapi/linux/netfilter/nfnetlink.h`).

use netlink_packet_core::{DecodeError, Emitable, Parseable};

use crate::macros::kernel_enum;

pub const NFPROTO_UNSPEC: u8 = 0;
pub const NFPROTO_INET: u8 = 1;
pub const NFPROTO_IPV4: u8 = 2;
pub const NFPROTO_ARP: u8 = 3;
pub const NFPROTO_NETDEV: u8 = 5;
pub const NFPROTO_BRIDGE: u8 = 7;
pub const NFPROTO_IPV6: u8 = 10;

pub const NFNETLINK_V0: u8 = 0;

/// Length of `struct nfgenmsg`.
pub const NFGENMSG_LEN: usize = 4;

kernel_enum! {
    /// The nf_tables family of a table (`nfgen_family`).
    pub enum NfProto: u8 {
        Unspec = NFPROTO_UNSPEC,
        Inet = NFPROTO_INET,
        Ipv4 = NFPROTO_IPV4,
        Arp = NFPROTO_ARP,
        Netdev = NFPROTO_NETDEV,
        Bridge = NFPROTO_BRIDGE,
        Ipv6 = NFPROTO_IPV6,
    }
}

/// `struct nfgenmsg { u8 nfgen_family; u8 version; __be16 res_id; }`.
///
/// For nf_tables requests `res_id` is 0 (the kernel fills in its generation
/// id in replies, `nft_base_seq()`); for the batch control messages it
/// carries the subsystem id `NFNL_SUBSYS_NFTABLES`, big-endian like the
/// kernel reads it in `nfnetlink_rcv_batch()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NfGenMsg {
    pub family: NfProto,
    pub version: u8,
    pub res_id: u16,
}

impl NfGenMsg {
    pub fn new(family: NfProto) -> Self {
        NfGenMsg {
            family,
            version: NFNETLINK_V0,
            res_id: 0,
        }
    }
}

impl Emitable for NfGenMsg {
    fn buffer_len(&self) -> usize {
        NFGENMSG_LEN
    }

    fn emit(&self, buffer: &mut [u8]) {
        buffer[0] = self.family.into();
        buffer[1] = self.version;
        buffer[2..4].copy_from_slice(&self.res_id.to_be_bytes());
    }
}

impl Parseable<[u8]> for NfGenMsg {
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        if buf.len() < NFGENMSG_LEN {
            return Err(format!("nfgenmsg needs {NFGENMSG_LEN} bytes, got {}", buf.len()).into());
        }
        Ok(NfGenMsg {
            family: buf[0].into(),
            version: buf[1],
            res_id: u16::from_be_bytes([buf[2], buf[3]]),
        })
    }
}
