//! Nested attribute lists that remember whether `NLA_F_NESTED` was set.
//!
//! The IPVS family is lenient (`GENL_DONT_VALIDATE_STRICT` in
//! `ip_vs_ctl.c`), so the flag is optional on the wire and both styles
//! occur: the kernel fills replies with `nla_nest_start_noflag()`, while
//! libnl's `nla_nest_start()` (used by ipvsadm's libipvs) sets the flag.
//! Keeping the bit lets a parsed message re-emit to the exact same bytes.

use netlink_packet_core::{
    DecodeError, Emitable, ErrorContext, NlaBuffer, NlasIterator, NLA_F_NESTED,
};

/// The attributes inside one nested attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nest<T> {
    pub attrs: Vec<T>,
    /// Whether the enclosing attribute carries `NLA_F_NESTED`.
    pub nested_flag: bool,
}

impl<T> Nest<T> {
    /// A nest written the way ipvsadm/libnl writes requests (flag set).
    pub fn flagged(attrs: Vec<T>) -> Self {
        Self {
            attrs,
            nested_flag: true,
        }
    }

    /// A nest written the way the kernel writes replies (no flag).
    pub fn unflagged(attrs: Vec<T>) -> Self {
        Self {
            attrs,
            nested_flag: false,
        }
    }

    pub(crate) fn kind(&self, kind: u16) -> u16 {
        if self.nested_flag {
            kind | NLA_F_NESTED
        } else {
            kind
        }
    }
}

impl<T: netlink_packet_core::Nla> Nest<T> {
    pub(crate) fn value_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    pub(crate) fn emit_value(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

/// Parses every attribute of `buf` with `parse`, stopping at the first error.
pub(crate) fn parse_attrs<T, F>(buf: &[u8], what: &str, mut parse: F) -> Result<Vec<T>, DecodeError>
where
    F: FnMut(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
{
    let mut attrs = Vec::new();
    for nla in NlasIterator::new(buf) {
        let nla = nla.with_context(|| format!("invalid {what} attribute"))?;
        attrs.push(parse(&nla).with_context(|| format!("failed to parse {what} attribute"))?);
    }
    Ok(attrs)
}

/// Parses the payload of a nested attribute, remembering its flag.
pub(crate) fn parse_nest<B, T, F>(
    nla: &NlaBuffer<&B>,
    what: &str,
    parse: F,
) -> Result<Nest<T>, DecodeError>
where
    B: AsRef<[u8]> + ?Sized,
    F: FnMut(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
{
    Ok(Nest {
        attrs: parse_attrs(nla.value(), what, parse)?,
        nested_flag: nla.nested_flag(),
    })
}
