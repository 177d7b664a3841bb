//! Rule expressions: each is an `NFTA_LIST_ELEM` nest holding
//! `NFTA_EXPR_NAME` (the expression type, e.g. "payload") and
//! `NFTA_EXPR_DATA` (that type's own attribute space).
//! `nf_tables_expr_parse()` / `nf_tables_fill_expr_info()`.

mod bitwise;
mod cmp;
mod compat;
mod counter;
mod ct;
mod fib;
mod immediate;
mod masq;
mod meta;
mod payload;
mod reject;

pub use bitwise::*;
pub use cmp::*;
pub use compat::*;
pub use counter::*;
pub use ct::*;
pub use fib::*;
pub use immediate::*;
pub use masq::*;
pub use meta::*;
pub use payload::*;
pub use reject::*;

use netlink_packet_core::{
    parse_string, DecodeError, DefaultNla, Emitable, ErrorContext, Nla, NlaBuffer, NlasIterator,
    Parseable, NLA_F_NESTED,
};

use crate::nla_util::{emit_strz, parse_nlas, strz_len};

pub const NFTA_LIST_ELEM: u16 = 1;
pub const NFTA_EXPR_NAME: u16 = 1;
pub const NFTA_EXPR_DATA: u16 = 2;

/// One expression of a rule, typed by its name.
///
/// An expression whose name this crate does not know (lookup, nat, limit,
/// ...) parses into [`Expr::Other`] with its data kept as raw attributes,
/// so it re-emits unchanged. `NFTA_EXPR_DATA` is always emitted (possibly
/// empty), as libnftnl does for every expression type we model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expr {
    Payload(Vec<PayloadAttr>),
    Cmp(Vec<CmpAttr>),
    Bitwise(Vec<BitwiseAttr>),
    Meta(Vec<MetaAttr>),
    Immediate(Vec<ImmediateAttr>),
    Ct(Vec<CtAttr>),
    Fib(Vec<FibAttr>),
    Counter(Vec<CounterAttr>),
    Masq(Vec<MasqAttr>),
    Reject(Vec<RejectAttr>),
    /// xt match (`nft_compat.c`), e.g. iptables' `-m set`.
    Match(Vec<MatchAttr>),
    /// xt target (`nft_compat.c`), e.g. iptables' `-j MASQUERADE`.
    Target(Vec<TargetAttr>),
    Other {
        name: String,
        data: Vec<DefaultNla>,
    },
}

impl Expr {
    /// The `NFTA_EXPR_NAME` of this expression.
    pub fn name(&self) -> &str {
        match self {
            Expr::Payload(_) => "payload",
            Expr::Cmp(_) => "cmp",
            Expr::Bitwise(_) => "bitwise",
            Expr::Meta(_) => "meta",
            Expr::Immediate(_) => "immediate",
            Expr::Ct(_) => "ct",
            Expr::Fib(_) => "fib",
            Expr::Counter(_) => "counter",
            Expr::Masq(_) => "masq",
            Expr::Reject(_) => "reject",
            Expr::Match(_) => "match",
            Expr::Target(_) => "target",
            Expr::Other { name, .. } => name,
        }
    }

    /// The expression as configuration, for telling whether a dumped rule
    /// does what a requested one does. A dump differs from the request
    /// that made it (kernel 6.1, see the `list_table` golden test): the
    /// attributes come in the kernel's order (`ct`: dreg before key; `fib`:
    /// dreg first), `counter` carries its packet and byte counts (state,
    /// not configuration), and `bitwise` always carries `NFTA_BITWISE_OP`
    /// (`nft_bitwise_dump()`), absent from a mask/xor request. So: counts
    /// dropped, a mask/xor op dropped, attributes sorted by type.
    pub fn canonical(&self) -> Expr {
        let mut expr = self.clone();
        match &mut expr {
            Expr::Counter(attrs) => attrs.clear(),
            Expr::Bitwise(attrs) => {
                attrs.retain(|attr| !matches!(attr, BitwiseAttr::Op(BitwiseOp::MaskXor)))
            }
            _ => {}
        }
        fn by_kind<A: Nla>(attrs: &mut [A]) {
            attrs.sort_by_key(|attr| attr.kind());
        }
        match &mut expr {
            Expr::Payload(a) => by_kind(a),
            Expr::Cmp(a) => by_kind(a),
            Expr::Bitwise(a) => by_kind(a),
            Expr::Meta(a) => by_kind(a),
            Expr::Immediate(a) => by_kind(a),
            Expr::Ct(a) => by_kind(a),
            Expr::Fib(a) => by_kind(a),
            Expr::Counter(a) => by_kind(a),
            Expr::Masq(a) => by_kind(a),
            Expr::Reject(a) => by_kind(a),
            Expr::Match(a) => by_kind(a),
            Expr::Target(a) => by_kind(a),
            Expr::Other { data, .. } => by_kind(data),
        }
        expr
    }

    /// Calls `f` with the expression's data attributes as one emitable run.
    fn with_data<R>(&self, f: impl FnOnce(&dyn Emitable) -> R) -> R {
        match self {
            Expr::Payload(a) => f(&a.as_slice()),
            Expr::Cmp(a) => f(&a.as_slice()),
            Expr::Bitwise(a) => f(&a.as_slice()),
            Expr::Meta(a) => f(&a.as_slice()),
            Expr::Immediate(a) => f(&a.as_slice()),
            Expr::Ct(a) => f(&a.as_slice()),
            Expr::Fib(a) => f(&a.as_slice()),
            Expr::Counter(a) => f(&a.as_slice()),
            Expr::Masq(a) => f(&a.as_slice()),
            Expr::Reject(a) => f(&a.as_slice()),
            Expr::Match(a) => f(&a.as_slice()),
            Expr::Target(a) => f(&a.as_slice()),
            Expr::Other { data, .. } => f(&data.as_slice()),
        }
    }

    fn data_len(&self) -> usize {
        self.with_data(|d| d.buffer_len())
    }

    fn parse_data(name: &str, data: &[u8]) -> Result<Expr, DecodeError> {
        Ok(match name {
            "payload" => Expr::Payload(parse_nlas(data)?),
            "cmp" => Expr::Cmp(parse_nlas(data)?),
            "bitwise" => Expr::Bitwise(parse_nlas(data)?),
            "meta" => Expr::Meta(parse_nlas(data)?),
            "immediate" => Expr::Immediate(parse_nlas(data)?),
            "ct" => Expr::Ct(parse_nlas(data)?),
            "fib" => Expr::Fib(parse_nlas(data)?),
            "counter" => Expr::Counter(parse_nlas(data)?),
            "masq" => Expr::Masq(parse_nlas(data)?),
            "reject" => Expr::Reject(parse_nlas(data)?),
            "match" => Expr::Match(parse_nlas(data)?),
            "target" => Expr::Target(parse_nlas(data)?),
            other => Expr::Other {
                name: other.to_owned(),
                data: parse_nlas(data)?,
            },
        })
    }
}

const NLA_HEADER: usize = 4;

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

impl Nla for Expr {
    fn value_len(&self) -> usize {
        NLA_HEADER + align4(strz_len(self.name())) + NLA_HEADER + self.data_len()
    }

    fn kind(&self) -> u16 {
        NFTA_LIST_ELEM | NLA_F_NESTED
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        let name = self.name();
        let name_len = NLA_HEADER + strz_len(name);
        buffer[0..2].copy_from_slice(&(name_len as u16).to_ne_bytes());
        buffer[2..4].copy_from_slice(&NFTA_EXPR_NAME.to_ne_bytes());
        emit_strz(&mut buffer[NLA_HEADER..], name);
        let padded = align4(name_len);
        buffer[name_len..padded].fill(0);

        let data = &mut buffer[padded..];
        let data_len = NLA_HEADER + self.data_len();
        data[0..2].copy_from_slice(&(data_len as u16).to_ne_bytes());
        data[2..4].copy_from_slice(&(NFTA_EXPR_DATA | NLA_F_NESTED).to_ne_bytes());
        self.with_data(|d| d.emit(&mut data[NLA_HEADER..data_len]));
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for Expr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let mut name = None;
        let mut data: &[u8] = &[];
        for nla in NlasIterator::new(buf.value()) {
            let nla = nla.context("invalid expression attribute")?;
            match nla.kind() {
                NFTA_EXPR_NAME => {
                    name = Some(parse_string(nla.value()).context("invalid NFTA_EXPR_NAME")?)
                }
                NFTA_EXPR_DATA => {
                    let len = nla.length() as usize;
                    data = &nla.into_inner()[NLA_HEADER..len];
                }
                // Nothing else is defined; an unknown attribute at this
                // level would be lost on re-emit, which is acceptable for
                // a kernel that has grown one.
                _ => {}
            }
        }
        let name = name.ok_or_else(|| DecodeError::from("expression without NFTA_EXPR_NAME"))?;
        Expr::parse_data(&name, data).with_context(|| format!("invalid {name} expression"))
    }
}
