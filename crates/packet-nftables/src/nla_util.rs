//! Small emit/parse helpers shared by the attribute enums.
//!
//! nf_tables puts almost every integer in network byte order
//! (`nla_put_be32`/`nla_put_be64` in `net/netfilter/nf_tables_api.c`) and
//! every name as a NUL-terminated string (`nla_put_string`, and libmnl's
//! `mnl_attr_put_strz` on the nft side), so these are the only encodings the
//! crate needs besides raw bytes and nests.

use netlink_packet_core::{
    parse_u32_be, parse_u64_be, DecodeError, Emitable, Nla, NlaBuffer, NlasIterator, Parseable,
};

pub(crate) fn strz_len(s: &str) -> usize {
    s.len() + 1
}

pub(crate) fn emit_strz(buf: &mut [u8], s: &str) {
    buf[..s.len()].copy_from_slice(s.as_bytes());
    buf[s.len()] = 0;
}

pub(crate) fn emit_be32(buf: &mut [u8], value: u32) {
    buf[..4].copy_from_slice(&value.to_be_bytes());
}

pub(crate) fn emit_be64(buf: &mut [u8], value: u64) {
    buf[..8].copy_from_slice(&value.to_be_bytes());
}

pub(crate) fn nested_len<T: Nla>(nlas: &[T]) -> usize {
    nlas.buffer_len()
}

pub(crate) fn emit_nested<T: Nla>(buf: &mut [u8], nlas: &[T]) {
    nlas.emit(buf)
}

pub(crate) fn be32(value: &[u8]) -> Result<u32, DecodeError> {
    parse_u32_be(value)
}

pub(crate) fn be64(value: &[u8]) -> Result<u64, DecodeError> {
    parse_u64_be(value)
}

/// Parses a run of attributes (a nest's payload or a message body).
pub(crate) fn parse_nlas<T>(buf: &[u8]) -> Result<Vec<T>, DecodeError>
where
    T: for<'a> Parseable<NlaBuffer<&'a [u8]>>,
{
    NlasIterator::new(buf).map(|nla| T::parse(&nla?)).collect()
}

/// How one attribute's value is encoded; used by `attr_enum!` so each
/// attribute enum only lists `Variant(Type) = KERNEL_NAME => Codec`.
pub(crate) trait Codec<T> {
    /// Whether the attribute is a nest (`NLA_F_NESTED` is set on emit, as
    /// libmnl's `mnl_attr_nest_start()` does for nft/iptables-nft).
    const NESTED: bool = false;
    fn len(value: &T) -> usize;
    fn emit(value: &T, buf: &mut [u8]);
    fn parse(payload: &[u8]) -> Result<T, DecodeError>;
}

/// Big-endian 32-bit (`nla_put_be32`), also for enums of kernel values.
pub(crate) struct Be32;
/// Big-endian signed 32-bit (hook priority, verdict code).
pub(crate) struct BeI32;
/// Big-endian 64-bit (`nla_put_be64`: handles, counters, positions).
pub(crate) struct Be64;
/// One byte (`nla_put_u8`).
pub(crate) struct U8;
/// NUL-terminated string (`nla_put_string` / `mnl_attr_put_strz`).
pub(crate) struct Strz;
/// Opaque bytes.
pub(crate) struct Raw;
/// A nest of typed attributes.
pub(crate) struct Nest;

impl<E: Copy + From<u32> + Into<u32>> Codec<E> for Be32 {
    fn len(_: &E) -> usize {
        4
    }
    fn emit(value: &E, buf: &mut [u8]) {
        emit_be32(buf, (*value).into())
    }
    fn parse(payload: &[u8]) -> Result<E, DecodeError> {
        be32(payload).map(E::from)
    }
}

impl<E: Copy + From<i32> + Into<i32>> Codec<E> for BeI32 {
    fn len(_: &E) -> usize {
        4
    }
    fn emit(value: &E, buf: &mut [u8]) {
        emit_be32(buf, (*value).into() as u32)
    }
    fn parse(payload: &[u8]) -> Result<E, DecodeError> {
        be32(payload).map(|v| E::from(v as i32))
    }
}

impl Codec<u64> for Be64 {
    fn len(_: &u64) -> usize {
        8
    }
    fn emit(value: &u64, buf: &mut [u8]) {
        emit_be64(buf, *value)
    }
    fn parse(payload: &[u8]) -> Result<u64, DecodeError> {
        be64(payload)
    }
}

impl<E: Copy + From<u8> + Into<u8>> Codec<E> for U8 {
    fn len(_: &E) -> usize {
        1
    }
    fn emit(value: &E, buf: &mut [u8]) {
        buf[0] = (*value).into()
    }
    fn parse(payload: &[u8]) -> Result<E, DecodeError> {
        netlink_packet_core::parse_u8(payload).map(E::from)
    }
}

impl Codec<String> for Strz {
    fn len(value: &String) -> usize {
        strz_len(value)
    }
    fn emit(value: &String, buf: &mut [u8]) {
        emit_strz(buf, value)
    }
    fn parse(payload: &[u8]) -> Result<String, DecodeError> {
        netlink_packet_core::parse_string(payload)
    }
}

impl Codec<Vec<u8>> for Raw {
    fn len(value: &Vec<u8>) -> usize {
        value.len()
    }
    fn emit(value: &Vec<u8>, buf: &mut [u8]) {
        buf.copy_from_slice(value)
    }
    fn parse(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
        Ok(payload.to_vec())
    }
}

impl<A> Codec<Vec<A>> for Nest
where
    A: Nla + for<'a> Parseable<NlaBuffer<&'a [u8]>>,
{
    const NESTED: bool = true;
    fn len(value: &Vec<A>) -> usize {
        nested_len(value)
    }
    fn emit(value: &Vec<A>, buf: &mut [u8]) {
        emit_nested(buf, value)
    }
    fn parse(payload: &[u8]) -> Result<Vec<A>, DecodeError> {
        parse_nlas(payload)
    }
}
