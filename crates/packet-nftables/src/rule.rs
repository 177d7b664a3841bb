//! Rule attributes (`NFTA_RULE_*`, `nf_tables_newrule()` /
//! `nf_tables_fill_rule_info()`), and the nft comment kept in
//! `NFTA_RULE_USERDATA`.

use netlink_packet_core::{
    parse_string, DecodeError, DefaultNla, Emitable, ErrorContext, Nla, NlaBuffer, NlasIterator,
    Parseable, NLA_F_NESTED,
};

use crate::expr::Expr;
use crate::macros::attr_enum;
use crate::nla_util::{be32, be64, emit_be32, emit_be64, emit_strz, nested_len, parse_nlas, Be32};

pub const NFTA_RULE_TABLE: u16 = 1;
pub const NFTA_RULE_CHAIN: u16 = 2;
pub const NFTA_RULE_HANDLE: u16 = 3;
pub const NFTA_RULE_EXPRESSIONS: u16 = 4;
pub const NFTA_RULE_COMPAT: u16 = 5;
pub const NFTA_RULE_POSITION: u16 = 6;
pub const NFTA_RULE_USERDATA: u16 = 7;
pub const NFTA_RULE_PAD: u16 = 8;
pub const NFTA_RULE_ID: u16 = 9;
pub const NFTA_RULE_POSITION_ID: u16 = 10;
pub const NFTA_RULE_CHAIN_ID: u16 = 11;

pub const NFTA_RULE_COMPAT_PROTO: u16 = 1;
pub const NFTA_RULE_COMPAT_FLAGS: u16 = 2;

pub const NFT_RULE_COMPAT_F_INV: u32 = 1 << 1;

attr_enum! {
    /// `NFTA_RULE_COMPAT` nest: the `-p proto` an xt match/target was
    /// checked against (`nft_parse_compat()` in `nft_compat.c`).
    pub enum RuleCompatAttr {
        Proto(u32) = NFTA_RULE_COMPAT_PROTO => Be32,
        Flags(u32) = NFTA_RULE_COMPAT_FLAGS => Be32,
    }
}

/// One attribute of a rule message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleAttr {
    Table(String),
    Chain(String),
    Handle(u64),
    /// `NFTA_RULE_EXPRESSIONS`: the list of `NFTA_LIST_ELEM`s, in order.
    Expressions(Vec<Expr>),
    Compat(Vec<RuleCompatAttr>),
    /// Insert after (with `NLM_F_APPEND`) or before this rule handle.
    Position(u64),
    /// Opaque to the kernel; nft stores the comment here as a TLV
    /// (see [`comment_userdata`]).
    Userdata(Vec<u8>),
    Id(u32),
    Other(DefaultNla),
}

impl Nla for RuleAttr {
    fn value_len(&self) -> usize {
        match self {
            RuleAttr::Table(s) | RuleAttr::Chain(s) => s.len() + 1,
            RuleAttr::Handle(_) | RuleAttr::Position(_) => 8,
            RuleAttr::Expressions(exprs) => exprs.as_slice().buffer_len(),
            RuleAttr::Compat(attrs) => nested_len(attrs),
            RuleAttr::Userdata(data) => data.len(),
            RuleAttr::Id(_) => 4,
            RuleAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            RuleAttr::Table(_) => NFTA_RULE_TABLE,
            RuleAttr::Chain(_) => NFTA_RULE_CHAIN,
            RuleAttr::Handle(_) => NFTA_RULE_HANDLE,
            RuleAttr::Expressions(_) => NFTA_RULE_EXPRESSIONS | NLA_F_NESTED,
            RuleAttr::Compat(_) => NFTA_RULE_COMPAT | NLA_F_NESTED,
            RuleAttr::Position(_) => NFTA_RULE_POSITION,
            RuleAttr::Userdata(_) => NFTA_RULE_USERDATA,
            RuleAttr::Id(_) => NFTA_RULE_ID,
            RuleAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            RuleAttr::Table(s) | RuleAttr::Chain(s) => emit_strz(buffer, s),
            RuleAttr::Handle(v) | RuleAttr::Position(v) => emit_be64(buffer, *v),
            RuleAttr::Expressions(exprs) => exprs.as_slice().emit(buffer),
            RuleAttr::Compat(attrs) => attrs.as_slice().emit(buffer),
            RuleAttr::Userdata(data) => buffer.copy_from_slice(data),
            RuleAttr::Id(v) => emit_be32(buffer, *v),
            RuleAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for RuleAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            NFTA_RULE_TABLE => {
                RuleAttr::Table(parse_string(payload).context("invalid NFTA_RULE_TABLE")?)
            }
            NFTA_RULE_CHAIN => {
                RuleAttr::Chain(parse_string(payload).context("invalid NFTA_RULE_CHAIN")?)
            }
            NFTA_RULE_HANDLE => {
                RuleAttr::Handle(be64(payload).context("invalid NFTA_RULE_HANDLE")?)
            }
            NFTA_RULE_EXPRESSIONS => {
                let mut exprs = Vec::new();
                for nla in NlasIterator::new(payload) {
                    let nla = nla.context("invalid NFTA_RULE_EXPRESSIONS")?;
                    exprs.push(Expr::parse(&nla).context("invalid NFTA_LIST_ELEM")?);
                }
                RuleAttr::Expressions(exprs)
            }
            NFTA_RULE_COMPAT => {
                RuleAttr::Compat(parse_nlas(payload).context("invalid NFTA_RULE_COMPAT")?)
            }
            NFTA_RULE_POSITION => {
                RuleAttr::Position(be64(payload).context("invalid NFTA_RULE_POSITION")?)
            }
            NFTA_RULE_USERDATA => RuleAttr::Userdata(payload.to_vec()),
            NFTA_RULE_ID => RuleAttr::Id(be32(payload).context("invalid NFTA_RULE_ID")?),
            _ => RuleAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// `NFTNL_UDATA_RULE_COMMENT` (libnftnl `udata.h`): nft keeps a rule's
/// comment in `NFTA_RULE_USERDATA` as TLVs `{ u8 type; u8 len; value }`.
pub const NFTNL_UDATA_RULE_COMMENT: u8 = 0;

/// `NFTA_RULE_USERDATA` bytes carrying `comment` the way nft writes it
/// (NUL-terminated, at most 255 bytes including the NUL; longer comments
/// are cut).
pub fn comment_userdata(comment: &str) -> Vec<u8> {
    let text = &comment.as_bytes()[..comment.len().min(254)];
    let mut out = Vec::with_capacity(text.len() + 3);
    out.push(NFTNL_UDATA_RULE_COMMENT);
    out.push((text.len() + 1) as u8);
    out.extend_from_slice(text);
    out.push(0);
    out
}

/// The nft comment in a rule's userdata, if there is one.
pub fn comment_of(userdata: &[u8]) -> Option<String> {
    let mut rest = userdata;
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], rest[1] as usize);
        let value = rest.get(2..2 + len)?;
        if kind == NFTNL_UDATA_RULE_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return String::from_utf8(text.to_vec()).ok();
        }
        rest = &rest[2 + len..];
    }
    None
}
