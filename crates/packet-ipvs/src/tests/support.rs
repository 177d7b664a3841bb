//! An encoder independent of the crate's own emit code, so tests compare
//! against bytes built straight from the kernel's TLV rules.

use netlink_packet_core::{Emitable, ParseableParametrized};
use netlink_packet_generic::GenlHeader;

use crate::IpvsMessage;

/// One attribute: `len u16 | type u16 | payload | pad to 4`.
pub fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((payload.len() + 4) as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

pub fn nested(kind: u16, children: &[Vec<u8>]) -> Vec<u8> {
    nla(kind, &children.concat())
}

pub const F_NESTED: u16 = 0x8000;

pub fn u16_ne(v: u16) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

pub fn u32_ne(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

pub fn u64_ne(v: u64) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// 16-byte `union nf_inet_addr` holding `v4`.
pub fn addr4(v4: [u8; 4]) -> Vec<u8> {
    let mut a = v4.to_vec();
    a.resize(16, 0);
    a
}

/// A whole genl payload: `cmd | version 1 | reserved 0 | attributes`.
pub fn genl(cmd: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![cmd, 1, 0, 0];
    out.extend(attrs.concat());
    out
}

pub fn parse(raw: &[u8]) -> IpvsMessage {
    let header = GenlHeader::parse(raw).expect("genl header");
    assert_eq!(header.version, 1);
    IpvsMessage::parse_with_param(&raw[4..], header).expect("parse")
}

/// The genl payload (header + attributes) of `msg`.
pub fn emit(msg: &IpvsMessage) -> Vec<u8> {
    let mut out = vec![u8::from(msg.cmd), 1, 0, 0];
    let mut body = vec![0; msg.buffer_len()];
    msg.emit(&mut body);
    out.extend(body);
    out
}

/// Asserts parse(raw) == expected and emit(expected) == raw.
pub fn assert_golden(raw: &[u8], expected: &IpvsMessage) {
    assert_eq!(&parse(raw), expected);
    assert_eq!(emit(expected), raw);
}
