//! Expression builders: the building blocks (one expression each) and the
//! statements kube-proxy's static rules are made of (a few expressions
//! each, in the order nft 1.0 generates them).
//!
//! Byte order of constants: packet fields (addresses, ports) are network
//! order; `meta mark`, `ct state` and fib's route type are host-order u32s
//! in the register, so their masks and values use `to_ne_bytes`.

use std::net::IpAddr;

use crate::data::{DataAttr, Register, VerdictAttr, VerdictCode};
use crate::expr::{
    BitwiseAttr, BitwiseOp, CmpAttr, CmpOp, CtAttr, CtKey, Expr, FibAttr, FibResult, ImmediateAttr,
    MasqAttr, MatchAttr, MetaAttr, MetaKey, PayloadAttr, PayloadBase, RejectAttr, RejectType,
    NFTA_FIB_F_DADDR, NF_NAT_RANGE_PROTO_RANDOM_FULLY, RTN_LOCAL,
};
use crate::header::NfProto;
use crate::xt_set::{SetDir, XtSetInfo, XtSetInfoMatchV4, XT_SET_MATCH_REV_4};

// === building blocks ===

/// `[ payload load <len>b @ <base> + <offset> => reg ]`.
pub fn payload_load(base: PayloadBase, offset: u32, len: u32, dreg: Register) -> Expr {
    Expr::Payload(vec![
        PayloadAttr::Dreg(dreg),
        PayloadAttr::Base(base),
        PayloadAttr::Offset(offset),
        PayloadAttr::Len(len),
    ])
}

/// `[ cmp <op> reg <data> ]`.
pub fn cmp(sreg: Register, op: CmpOp, data: Vec<u8>) -> Expr {
    Expr::Cmp(vec![
        CmpAttr::Sreg(sreg),
        CmpAttr::Op(op),
        CmpAttr::Data(vec![DataAttr::Value(data)]),
    ])
}

/// `[ bitwise reg = (reg & mask) ^ xor ]` on `mask.len()` bytes, without
/// `NFTA_BITWISE_OP` (absent means mask/xor): what nft 1.0 emits for
/// prefix masks and flag tests (`ct state established,related`).
pub fn bitwise(reg: Register, mask: Vec<u8>, xor: Vec<u8>) -> Expr {
    assert_eq!(
        mask.len(),
        xor.len(),
        "bitwise mask and xor have the same length"
    );
    Expr::Bitwise(vec![
        BitwiseAttr::Sreg(reg),
        BitwiseAttr::Dreg(reg),
        BitwiseAttr::Len(mask.len() as u32),
        BitwiseAttr::Mask(vec![DataAttr::Value(mask)]),
        BitwiseAttr::Xor(vec![DataAttr::Value(xor)]),
    ])
}

/// The same with `NFTA_BITWISE_OP` = `NFT_BITWISE_MASK_XOR` (kernel 5.6+),
/// what nft 1.0 emits for explicit `and`/`or`/`xor` (`meta mark or 0x4000`).
pub fn bitwise_bool(reg: Register, mask: Vec<u8>, xor: Vec<u8>) -> Expr {
    let Expr::Bitwise(mut attrs) = bitwise(reg, mask, xor) else {
        unreachable!("bitwise() builds a bitwise expression")
    };
    attrs.insert(2, BitwiseAttr::Op(BitwiseOp::MaskXor));
    Expr::Bitwise(attrs)
}

/// `[ meta load <key> => reg ]`.
pub fn meta_load(key: MetaKey, dreg: Register) -> Expr {
    Expr::Meta(vec![MetaAttr::Key(key), MetaAttr::Dreg(dreg)])
}

/// `[ meta set <key> with reg ]`.
pub fn meta_set(key: MetaKey, sreg: Register) -> Expr {
    Expr::Meta(vec![MetaAttr::Key(key), MetaAttr::Sreg(sreg)])
}

/// `[ ct load <key> => reg ]`.
pub fn ct_load(key: CtKey, dreg: Register) -> Expr {
    Expr::Ct(vec![CtAttr::Key(key), CtAttr::Dreg(dreg)])
}

/// `[ immediate reg 0 <verdict> ]`.
pub fn verdict(code: VerdictCode, chain: Option<&str>) -> Expr {
    let mut attrs = vec![VerdictAttr::Code(code)];
    if let Some(chain) = chain {
        attrs.push(VerdictAttr::Chain(chain.to_owned()));
    }
    Expr::Immediate(vec![
        ImmediateAttr::Dreg(Register::Verdict),
        ImmediateAttr::Data(vec![DataAttr::Verdict(attrs)]),
    ])
}

pub fn accept() -> Expr {
    verdict(VerdictCode::Accept, None)
}

pub fn drop() -> Expr {
    verdict(VerdictCode::Drop, None)
}

/// `return` (named so because `return` is a keyword).
pub fn ret() -> Expr {
    verdict(VerdictCode::Return, None)
}

pub fn jump(chain: &str) -> Expr {
    verdict(VerdictCode::Jump, Some(chain))
}

pub fn goto(chain: &str) -> Expr {
    verdict(VerdictCode::Goto, Some(chain))
}

/// `counter`, starting from zero. nft sends it without attributes.
pub fn counter() -> Expr {
    Expr::Counter(Vec::new())
}

/// `masquerade`, optionally `fully-random` (`NF_NAT_RANGE_PROTO_RANDOM_FULLY`).
pub fn masquerade(fully_random: bool) -> Expr {
    if fully_random {
        Expr::Masq(vec![MasqAttr::Flags(NF_NAT_RANGE_PROTO_RANDOM_FULLY)])
    } else {
        Expr::Masq(Vec::new())
    }
}

/// `reject` as nft writes it without arguments: ICMP port unreachable in
/// ip, ICMPv6 port unreachable in ip6, ICMPx port unreachable in inet.
pub fn reject(family: NfProto) -> Expr {
    let (kind, code) = match family {
        NfProto::Ipv6 => (RejectType::IcmpUnreach, crate::expr::ICMPV6_PORT_UNREACH),
        NfProto::Inet => (
            RejectType::IcmpxUnreach,
            crate::expr::NFT_REJECT_ICMPX_PORT_UNREACH,
        ),
        _ => (RejectType::IcmpUnreach, crate::expr::ICMP_PORT_UNREACH),
    };
    Expr::Reject(vec![RejectAttr::Type(kind), RejectAttr::IcmpCode(code)])
}

/// xt `set` match, revision 4 (what iptables-nft sends for
/// `-m set [!] --match-set NAME dirs`). `index` is the ipset's kernel
/// index (ipset `GET_BYNAME`), not its name.
pub fn xt_set_match(index: u16, dirs: &[SetDir], inverted: bool) -> Expr {
    let info = XtSetInfoMatchV4::new(XtSetInfo::new(index, dirs, inverted));
    Expr::Match(vec![
        MatchAttr::Name("set".to_owned()),
        MatchAttr::Rev(XT_SET_MATCH_REV_4),
        MatchAttr::Info(info.to_bytes()),
    ])
}

// === statements ===

/// `ip saddr [!=] addr/prefix_len` (or `ip6 saddr`, by the address type).
///
/// Like nft, a prefix on a byte boundary loads only the prefix bytes and
/// compares them; any other prefix loads the whole address, masks it with
/// `bitwise` and compares the masked network.
pub fn saddr_in_cidr(addr: IpAddr, prefix_len: u8, negate: bool) -> Vec<Expr> {
    let (offset, bytes) = match addr {
        IpAddr::V4(a) => (12, a.octets().to_vec()),
        IpAddr::V6(a) => (8, a.octets().to_vec()),
    };
    addr_in_cidr(offset, bytes, prefix_len, negate)
}

/// `ip daddr [!=] addr/prefix_len` (or `ip6 daddr`).
pub fn daddr_in_cidr(addr: IpAddr, prefix_len: u8, negate: bool) -> Vec<Expr> {
    let (offset, bytes) = match addr {
        IpAddr::V4(a) => (16, a.octets().to_vec()),
        IpAddr::V6(a) => (24, a.octets().to_vec()),
    };
    addr_in_cidr(offset, bytes, prefix_len, negate)
}

fn addr_in_cidr(offset: u32, addr: Vec<u8>, prefix_len: u8, negate: bool) -> Vec<Expr> {
    let full = addr.len();
    let prefix = (prefix_len as usize).min(full * 8);
    let op = if negate { CmpOp::Neq } else { CmpOp::Eq };
    if prefix % 8 == 0 && prefix > 0 {
        let len = prefix / 8;
        return vec![
            payload_load(PayloadBase::Network, offset, len as u32, Register::Reg1),
            cmp(Register::Reg1, op, addr[..len].to_vec()),
        ];
    }
    let mask: Vec<u8> = (0..full)
        .map(|i| {
            let bits = prefix.saturating_sub(i * 8).min(8);
            (0xffu16 << (8 - bits)) as u8
        })
        .collect();
    let network: Vec<u8> = addr.iter().zip(&mask).map(|(a, m)| a & m).collect();
    vec![
        payload_load(PayloadBase::Network, offset, full as u32, Register::Reg1),
        bitwise(Register::Reg1, mask, vec![0; full]),
        cmp(Register::Reg1, op, network),
    ]
}

/// `meta mark set mark or <bits>` (kube-proxy's KUBE-MARK-MASQ).
pub fn mark_set_or(bits: u32) -> Vec<Expr> {
    vec![
        meta_load(MetaKey::Mark, Register::Reg1),
        bitwise_bool(
            Register::Reg1,
            (!bits).to_ne_bytes().to_vec(),
            bits.to_ne_bytes().to_vec(),
        ),
        meta_set(MetaKey::Mark, Register::Reg1),
    ]
}

/// `meta mark & <mask> == <value>`.
pub fn mark_and_eq(mask: u32, value: u32) -> Vec<Expr> {
    vec![
        meta_load(MetaKey::Mark, Register::Reg1),
        bitwise_bool(Register::Reg1, mask.to_ne_bytes().to_vec(), vec![0; 4]),
        cmp(Register::Reg1, CmpOp::Eq, value.to_ne_bytes().to_vec()),
    ]
}

/// `ct state { ... }` for a set of `NF_CT_STATE_*_BIT`s: true when any of
/// them is set (`ct state established,related`).
pub fn ct_state_in(bits: u32) -> Vec<Expr> {
    vec![
        ct_load(CtKey::State, Register::Reg1),
        bitwise(Register::Reg1, bits.to_ne_bytes().to_vec(), vec![0; 4]),
        cmp(Register::Reg1, CmpOp::Neq, vec![0; 4]),
    ]
}

/// `fib daddr type local`.
pub fn fib_daddr_type_local() -> Vec<Expr> {
    vec![
        Expr::Fib(vec![
            FibAttr::Flags(NFTA_FIB_F_DADDR),
            FibAttr::Result(FibResult::AddrType),
            FibAttr::Dreg(Register::Reg1),
        ]),
        cmp(Register::Reg1, CmpOp::Eq, RTN_LOCAL.to_ne_bytes().to_vec()),
    ]
}

/// `meta l4proto <proto>` (`IPPROTO_TCP` = 6, `IPPROTO_UDP` = 17, ...).
pub fn meta_l4proto(proto: u8) -> Vec<Expr> {
    vec![
        meta_load(MetaKey::L4Proto, Register::Reg1),
        cmp(Register::Reg1, CmpOp::Eq, vec![proto]),
    ]
}
