//! Command-level attributes.

use netlink_packet_core::{
    emit_u16_be, emit_u32_be, parse_u16_be, parse_u32_be, parse_u8, DecodeError, DefaultNla,
    Emitable, ErrorContext, Nla, NlaBuffer, NlasIterator, Parseable, ParseableParametrized,
    NLA_F_NESTED, NLA_F_NET_BYTEORDER,
};

use crate::{
    cmd::IpsetCmd,
    constants::*,
    data::{parse_data, DataAttr, DataContext},
    strings,
};

/// One attribute at command level (`IPSET_ATTR_*` of the first enum in
/// `ip_set.h`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IpsetAttr {
    Protocol(u8),
    SetName(String),
    /// `IPSET_ATTR_TYPENAME`; the same id is `IPSET_ATTR_SETNAME2`, the
    /// second name of RENAME and SWAP.
    TypeName(String),
    Revision(u8),
    Family(u8),
    Flags(u32),
    /// `IPSET_ATTR_DATA` (nested). See [`DataContext`] for which table its
    /// contents follow.
    Data(Vec<DataAttr>),
    /// `IPSET_ATTR_ADT` (nested): a list of `IPSET_ATTR_DATA` blocks, one per
    /// element (batched ADD/DEL and the members of a LIST reply).
    Adt(Vec<Vec<DataAttr>>),
    /// Restore line number. In a request it is the line of the first
    /// element; in an error reply the kernel overwrites it with the line of
    /// the failing element (`call_ad` in `ip_set_core.c`).
    LineNo(u32),
    /// `IPSET_ATTR_PROTOCOL_MIN`; the same id is `IPSET_ATTR_REVISION_MIN`
    /// in a TYPE reply.
    ProtocolMin(u8),
    Index(u16),
    Other(DefaultNla),
}

/// Length of a list of `DATA` blocks nested in `ADT`.
fn adt_len(elements: &[Vec<DataAttr>]) -> usize {
    elements
        .iter()
        .map(|data| DataBlock(data).buffer_len())
        .sum()
}

/// One `IPSET_ATTR_DATA` block, so the core `Nla` emitter writes its header.
pub(crate) struct DataBlock<'a>(pub(crate) &'a [DataAttr]);

impl Nla for DataBlock<'_> {
    fn value_len(&self) -> usize {
        self.0.buffer_len()
    }

    fn kind(&self) -> u16 {
        IPSET_ATTR_DATA | NLA_F_NESTED
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        self.0.emit(buffer)
    }
}

impl Nla for IpsetAttr {
    fn value_len(&self) -> usize {
        use IpsetAttr::*;
        match self {
            Protocol(_) | Revision(_) | Family(_) | ProtocolMin(_) => 1,
            SetName(s) | TypeName(s) => strings::nul_len(s),
            Flags(_) | LineNo(_) => 4,
            Index(_) => 2,
            Data(attrs) => attrs.as_slice().buffer_len(),
            Adt(elements) => adt_len(elements),
            Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use IpsetAttr::*;
        match self {
            Protocol(_) => IPSET_ATTR_PROTOCOL,
            SetName(_) => IPSET_ATTR_SETNAME,
            TypeName(_) => IPSET_ATTR_TYPENAME,
            Revision(_) => IPSET_ATTR_REVISION,
            Family(_) => IPSET_ATTR_FAMILY,
            Flags(_) => IPSET_ATTR_FLAGS | NLA_F_NET_BYTEORDER,
            // The kernel checks `flag_nested()` on both (ip_set_core.c).
            Data(_) => IPSET_ATTR_DATA | NLA_F_NESTED,
            Adt(_) => IPSET_ATTR_ADT | NLA_F_NESTED,
            LineNo(_) => IPSET_ATTR_LINENO | NLA_F_NET_BYTEORDER,
            ProtocolMin(_) => IPSET_ATTR_PROTOCOL_MIN,
            // `nla_put_net16` in the kernel; libipset's policy is U16 too.
            Index(_) => IPSET_ATTR_INDEX | NLA_F_NET_BYTEORDER,
            Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        use IpsetAttr::*;
        match self {
            Protocol(v) | Revision(v) | Family(v) | ProtocolMin(v) => buffer[0] = *v,
            SetName(s) | TypeName(s) => strings::emit_nul(s, buffer),
            Flags(v) | LineNo(v) => emit_u32_be(buffer, *v).unwrap(),
            Index(v) => emit_u16_be(buffer, *v).unwrap(),
            Data(attrs) => attrs.as_slice().emit(buffer),
            Adt(elements) => {
                let mut offset = 0;
                for data in elements {
                    let block = DataBlock(data);
                    let len = block.buffer_len();
                    block.emit(&mut buffer[offset..offset + len]);
                    offset += len;
                }
            }
            Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> ParseableParametrized<NlaBuffer<&'a T>, IpsetCmd> for IpsetAttr {
    fn parse_with_param(buf: &NlaBuffer<&'a T>, cmd: IpsetCmd) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            IPSET_ATTR_PROTOCOL => {
                Self::Protocol(parse_u8(payload).context("invalid IPSET_ATTR_PROTOCOL")?)
            }
            IPSET_ATTR_SETNAME => {
                Self::SetName(strings::parse_nul(payload).context("invalid IPSET_ATTR_SETNAME")?)
            }
            IPSET_ATTR_TYPENAME => {
                Self::TypeName(strings::parse_nul(payload).context("invalid IPSET_ATTR_TYPENAME")?)
            }
            IPSET_ATTR_REVISION => {
                Self::Revision(parse_u8(payload).context("invalid IPSET_ATTR_REVISION")?)
            }
            IPSET_ATTR_FAMILY => {
                Self::Family(parse_u8(payload).context("invalid IPSET_ATTR_FAMILY")?)
            }
            IPSET_ATTR_FLAGS => {
                Self::Flags(parse_u32_be(payload).context("invalid IPSET_ATTR_FLAGS")?)
            }
            IPSET_ATTR_DATA => {
                let ctx = if cmd.is_adt() {
                    DataContext::Adt
                } else {
                    DataContext::Create
                };
                Self::Data(parse_data(payload, ctx).context("invalid IPSET_ATTR_DATA")?)
            }
            IPSET_ATTR_ADT => Self::Adt(parse_adt(payload).context("invalid IPSET_ATTR_ADT")?),
            IPSET_ATTR_LINENO => {
                Self::LineNo(parse_u32_be(payload).context("invalid IPSET_ATTR_LINENO")?)
            }
            IPSET_ATTR_PROTOCOL_MIN => {
                Self::ProtocolMin(parse_u8(payload).context("invalid IPSET_ATTR_PROTOCOL_MIN")?)
            }
            IPSET_ATTR_INDEX => {
                Self::Index(parse_u16_be(payload).context("invalid IPSET_ATTR_INDEX")?)
            }
            _ => Self::Other(DefaultNla::parse(buf).context("invalid ipset attribute")?),
        })
    }
}

/// `ADT` holds only `DATA` blocks (`ip_set_ad` rejects anything else with
/// `-IPSET_ERR_PROTOCOL`), so anything else is a decode error here too.
fn parse_adt(value: &[u8]) -> Result<Vec<Vec<DataAttr>>, DecodeError> {
    let mut elements = Vec::new();
    for nla in NlasIterator::new(value) {
        let nla = nla?;
        if nla.kind() != IPSET_ATTR_DATA {
            return Err(format!("attribute {} inside IPSET_ATTR_ADT", nla.kind()).into());
        }
        elements.push(parse_data(nla.value(), DataContext::Adt)?);
    }
    Ok(elements)
}
