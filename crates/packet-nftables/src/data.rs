//! Registers and `NFTA_DATA_*`: the values expressions compare against,
//! mask with, or load into a register (`nft_data_init()`/`nft_data_dump()`
//! in `net/netfilter/nf_tables_api.c`).

use netlink_packet_core::{
    parse_string, DecodeError, DefaultNla, ErrorContext, Nla, NlaBuffer, Parseable, NLA_F_NESTED,
};

use crate::macros::kernel_enum;
use crate::nla_util::{be32, emit_be32, emit_nested, emit_strz, nested_len, parse_nlas, strz_len};

pub const NFT_REG_VERDICT: u32 = 0;
pub const NFT_REG_1: u32 = 1;
pub const NFT_REG_2: u32 = 2;
pub const NFT_REG_3: u32 = 3;
pub const NFT_REG_4: u32 = 4;
pub const NFT_REG32_00: u32 = 8;

kernel_enum! {
    /// A register number as the kernel reads it (`nft_parse_register()`,
    /// big-endian). The 16-byte registers `NFT_REG_1..4` alias the 4-byte
    /// `NFT_REG32_00..15` (`NFT_REG32_00 + 4 * (n - 1)`); nft writes the
    /// 16-byte names when a value fits, so both appear on the wire.
    pub enum Register: u32 {
        Verdict = NFT_REG_VERDICT,
        Reg1 = NFT_REG_1,
        Reg2 = NFT_REG_2,
        Reg3 = NFT_REG_3,
        Reg4 = NFT_REG_4,
    }
}

impl Register {
    /// `NFT_REG32_<n>` (n in 0..=15).
    pub fn reg32(n: u32) -> Register {
        Register::Other(NFT_REG32_00 + n)
    }
}

pub const NF_DROP: i32 = 0;
pub const NF_ACCEPT: i32 = 1;
pub const NF_STOLEN: i32 = 2;
pub const NF_QUEUE: i32 = 3;
pub const NF_REPEAT: i32 = 4;
pub const NF_STOP: i32 = 5;
pub const NFT_CONTINUE: i32 = -1;
pub const NFT_BREAK: i32 = -2;
pub const NFT_JUMP: i32 = -3;
pub const NFT_GOTO: i32 = -4;
pub const NFT_RETURN: i32 = -5;

kernel_enum! {
    /// `NFTA_VERDICT_CODE`: a netfilter verdict or an nf_tables one
    /// (negative); sent as a big-endian signed 32-bit value.
    pub enum VerdictCode: i32 {
        Drop = NF_DROP,
        Accept = NF_ACCEPT,
        Stolen = NF_STOLEN,
        Queue = NF_QUEUE,
        Repeat = NF_REPEAT,
        Stop = NF_STOP,
        Continue = NFT_CONTINUE,
        Break = NFT_BREAK,
        Jump = NFT_JUMP,
        Goto = NFT_GOTO,
        Return = NFT_RETURN,
    }
}

pub const NFTA_DATA_VALUE: u16 = 1;
pub const NFTA_DATA_VERDICT: u16 = 2;

pub const NFTA_VERDICT_CODE: u16 = 1;
pub const NFTA_VERDICT_CHAIN: u16 = 2;
pub const NFTA_VERDICT_CHAIN_ID: u16 = 3;

/// One attribute of a data nest (`NFTA_CMP_DATA`, `NFTA_IMMEDIATE_DATA`,
/// `NFTA_BITWISE_MASK`, ...). A nest holds exactly one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataAttr {
    /// Raw bytes, in whatever order the matched field has: packet fields
    /// are network order, `meta mark`/`ct state` are host order.
    Value(Vec<u8>),
    Verdict(Vec<VerdictAttr>),
    Other(DefaultNla),
}

impl Nla for DataAttr {
    fn value_len(&self) -> usize {
        match self {
            DataAttr::Value(v) => v.len(),
            DataAttr::Verdict(v) => nested_len(v),
            DataAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            DataAttr::Value(_) => NFTA_DATA_VALUE,
            DataAttr::Verdict(_) => NFTA_DATA_VERDICT | NLA_F_NESTED,
            DataAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            DataAttr::Value(v) => buffer.copy_from_slice(v),
            DataAttr::Verdict(v) => emit_nested(buffer, v),
            DataAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DataAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            NFTA_DATA_VALUE => DataAttr::Value(payload.to_vec()),
            NFTA_DATA_VERDICT => {
                DataAttr::Verdict(parse_nlas(payload).context("invalid NFTA_DATA_VERDICT")?)
            }
            _ => DataAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// One attribute of `NFTA_DATA_VERDICT`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerdictAttr {
    Code(VerdictCode),
    /// Target of `jump`/`goto`.
    Chain(String),
    ChainId(u32),
    Other(DefaultNla),
}

impl Nla for VerdictAttr {
    fn value_len(&self) -> usize {
        match self {
            VerdictAttr::Code(_) | VerdictAttr::ChainId(_) => 4,
            VerdictAttr::Chain(s) => strz_len(s),
            VerdictAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            VerdictAttr::Code(_) => NFTA_VERDICT_CODE,
            VerdictAttr::Chain(_) => NFTA_VERDICT_CHAIN,
            VerdictAttr::ChainId(_) => NFTA_VERDICT_CHAIN_ID,
            VerdictAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            VerdictAttr::Code(code) => emit_be32(buffer, i32::from(*code) as u32),
            VerdictAttr::Chain(s) => emit_strz(buffer, s),
            VerdictAttr::ChainId(id) => emit_be32(buffer, *id),
            VerdictAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for VerdictAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            NFTA_VERDICT_CODE => VerdictAttr::Code(
                (be32(payload).context("invalid NFTA_VERDICT_CODE")? as i32).into(),
            ),
            NFTA_VERDICT_CHAIN => {
                VerdictAttr::Chain(parse_string(payload).context("invalid NFTA_VERDICT_CHAIN")?)
            }
            NFTA_VERDICT_CHAIN_ID => {
                VerdictAttr::ChainId(be32(payload).context("invalid NFTA_VERDICT_CHAIN_ID")?)
            }
            _ => VerdictAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// The verdict a data nest carries, if it is one: `(code, chain)`.
pub fn verdict_of(data: &[DataAttr]) -> Option<(VerdictCode, Option<&str>)> {
    data.iter().find_map(|attr| match attr {
        DataAttr::Verdict(attrs) => {
            let code = attrs.iter().find_map(|a| match a {
                VerdictAttr::Code(c) => Some(*c),
                _ => None,
            })?;
            let chain = attrs.iter().find_map(|a| match a {
                VerdictAttr::Chain(c) => Some(c.as_str()),
                _ => None,
            });
            Some((code, chain))
        }
        _ => None,
    })
}

/// The raw value a data nest carries, if it is one.
pub fn value_of(data: &[DataAttr]) -> Option<&[u8]> {
    data.iter().find_map(|attr| match attr {
        DataAttr::Value(v) => Some(v.as_slice()),
        _ => None,
    })
}
