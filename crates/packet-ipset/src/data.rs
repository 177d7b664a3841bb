//! Attributes inside `IPSET_ATTR_DATA`.

use netlink_packet_core::{
    emit_u16_be, emit_u32_be, emit_u64_be, parse_u16_be, parse_u32_be, parse_u64_be, parse_u8,
    DecodeError, DefaultNla, ErrorContext, Nla, NlaBuffer, Parseable, ParseableParametrized,
    NLA_F_NESTED, NLA_F_NET_BYTEORDER,
};

use crate::{constants::*, ip::IpAddrAttr, strings};

/// Which attribute table a `DATA` block follows.
///
/// `ip_set.h` numbers the create-only attributes (`INITVAL`=17 …
/// `MEMSIZE`=26) and the ADT-only attributes (`ETHER`=17 … `COMMENT`=26)
/// from the same base, so id 17 is `INITVAL` in a CREATE but `ETHER` in an
/// ADD, and id 26 is `MEMSIZE` in a LIST header but `COMMENT` in a LIST
/// element. The kernel picks the table by position (`create_policy` vs
/// `adt_policy` of the set type); so does this parser:
/// - `Create`: the command-level `DATA` of every command except ADD, DEL and
///   TEST (CREATE, and the header part of LIST/SAVE replies);
/// - `Adt`: the command-level `DATA` of ADD/DEL/TEST, and every `DATA`
///   inside `IPSET_ATTR_ADT` (batched requests and LIST elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataContext {
    Create,
    Adt,
}

/// One attribute of a `DATA` block. Unsigned 16/32/64-bit values travel big
/// endian with `NLA_F_NET_BYTEORDER` (the kernel's `ip_set_attr_netorder`
/// rejects them otherwise); `u8` values and strings carry no flag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataAttr {
    // Both contexts (CADT)
    Ip(IpAddrAttr),
    IpTo(IpAddrAttr),
    Cidr(u8),
    /// `PORT`, also `PORT_FROM` of a bitmap:port range.
    Port(u16),
    PortTo(u16),
    Timeout(u32),
    Proto(u8),
    CadtFlags(u32),
    /// The restore line number of one element.
    LineNo(u32),
    Mark(u32),
    MarkMask(u32),
    // Create context only
    InitVal(u32),
    HashSize(u32),
    MaxElem(u32),
    NetMask(u8),
    BucketSize(u8),
    Resize(u8),
    Size(u32),
    Elements(u32),
    References(u32),
    MemSize(u32),
    // ADT context only
    Ip2(IpAddrAttr),
    Cidr2(u8),
    Bytes(u64),
    Packets(u64),
    Comment(String),
    Other(DefaultNla),
}

impl Nla for DataAttr {
    fn value_len(&self) -> usize {
        use DataAttr::*;
        match self {
            Ip(ip) | IpTo(ip) | Ip2(ip) => ip.value_len(),
            Cidr(_) | Proto(_) | NetMask(_) | BucketSize(_) | Resize(_) | Cidr2(_) => 1,
            Port(_) | PortTo(_) => 2,
            Timeout(_) | CadtFlags(_) | LineNo(_) | Mark(_) | MarkMask(_) | InitVal(_)
            | HashSize(_) | MaxElem(_) | Size(_) | Elements(_) | References(_) | MemSize(_) => 4,
            Bytes(_) | Packets(_) => 8,
            Comment(s) => strings::nul_len(s),
            Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use DataAttr::*;
        let be = NLA_F_NET_BYTEORDER;
        match self {
            Ip(_) => IPSET_ATTR_IP | NLA_F_NESTED,
            IpTo(_) => IPSET_ATTR_IP_TO | NLA_F_NESTED,
            Cidr(_) => IPSET_ATTR_CIDR,
            Port(_) => IPSET_ATTR_PORT | be,
            PortTo(_) => IPSET_ATTR_PORT_TO | be,
            Timeout(_) => IPSET_ATTR_TIMEOUT | be,
            Proto(_) => IPSET_ATTR_PROTO,
            CadtFlags(_) => IPSET_ATTR_CADT_FLAGS | be,
            LineNo(_) => IPSET_ATTR_CADT_LINENO | be,
            Mark(_) => IPSET_ATTR_MARK | be,
            MarkMask(_) => IPSET_ATTR_MARKMASK | be,
            InitVal(_) => IPSET_ATTR_INITVAL | be,
            HashSize(_) => IPSET_ATTR_HASHSIZE | be,
            MaxElem(_) => IPSET_ATTR_MAXELEM | be,
            NetMask(_) => IPSET_ATTR_NETMASK,
            BucketSize(_) => IPSET_ATTR_BUCKETSIZE,
            Resize(_) => IPSET_ATTR_RESIZE,
            Size(_) => IPSET_ATTR_SIZE | be,
            Elements(_) => IPSET_ATTR_ELEMENTS | be,
            References(_) => IPSET_ATTR_REFERENCES | be,
            MemSize(_) => IPSET_ATTR_MEMSIZE | be,
            Ip2(_) => IPSET_ATTR_IP2 | NLA_F_NESTED,
            Cidr2(_) => IPSET_ATTR_CIDR2,
            Bytes(_) => IPSET_ATTR_BYTES | be,
            Packets(_) => IPSET_ATTR_PACKETS | be,
            Comment(_) => IPSET_ATTR_COMMENT,
            Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        use DataAttr::*;
        match self {
            Ip(ip) | IpTo(ip) | Ip2(ip) => ip.emit_value(buffer),
            Cidr(v) | Proto(v) | NetMask(v) | BucketSize(v) | Resize(v) | Cidr2(v) => {
                buffer[0] = *v
            }
            Port(v) | PortTo(v) => emit_u16_be(buffer, *v).unwrap(),
            Timeout(v) | CadtFlags(v) | LineNo(v) | Mark(v) | MarkMask(v) | InitVal(v)
            | HashSize(v) | MaxElem(v) | Size(v) | Elements(v) | References(v) | MemSize(v) => {
                emit_u32_be(buffer, *v).unwrap()
            }
            Bytes(v) | Packets(v) => emit_u64_be(buffer, *v).unwrap(),
            Comment(s) => strings::emit_nul(s, buffer),
            Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> ParseableParametrized<NlaBuffer<&'a T>, DataContext>
    for DataAttr
{
    fn parse_with_param(buf: &NlaBuffer<&'a T>, ctx: DataContext) -> Result<Self, DecodeError> {
        let payload = buf.value();
        let kind = buf.kind();
        let u8_ = |what: &str| parse_u8(payload).context(format!("invalid {what}"));
        let u16_ = |what: &str| parse_u16_be(payload).context(format!("invalid {what}"));
        let u32_ = |what: &str| parse_u32_be(payload).context(format!("invalid {what}"));
        let u64_ = |what: &str| parse_u64_be(payload).context(format!("invalid {what}"));
        let ip = |what: &str| IpAddrAttr::parse_value(payload).context(format!("invalid {what}"));
        Ok(match (kind, ctx) {
            (IPSET_ATTR_IP, _) => Self::Ip(ip("IPSET_ATTR_IP")?),
            (IPSET_ATTR_IP_TO, _) => Self::IpTo(ip("IPSET_ATTR_IP_TO")?),
            (IPSET_ATTR_CIDR, _) => Self::Cidr(u8_("IPSET_ATTR_CIDR")?),
            (IPSET_ATTR_PORT, _) => Self::Port(u16_("IPSET_ATTR_PORT")?),
            (IPSET_ATTR_PORT_TO, _) => Self::PortTo(u16_("IPSET_ATTR_PORT_TO")?),
            (IPSET_ATTR_TIMEOUT, _) => Self::Timeout(u32_("IPSET_ATTR_TIMEOUT")?),
            (IPSET_ATTR_PROTO, _) => Self::Proto(u8_("IPSET_ATTR_PROTO")?),
            (IPSET_ATTR_CADT_FLAGS, _) => Self::CadtFlags(u32_("IPSET_ATTR_CADT_FLAGS")?),
            (IPSET_ATTR_CADT_LINENO, _) => Self::LineNo(u32_("IPSET_ATTR_LINENO")?),
            (IPSET_ATTR_MARK, _) => Self::Mark(u32_("IPSET_ATTR_MARK")?),
            (IPSET_ATTR_MARKMASK, _) => Self::MarkMask(u32_("IPSET_ATTR_MARKMASK")?),

            (IPSET_ATTR_INITVAL, DataContext::Create) => Self::InitVal(u32_("IPSET_ATTR_INITVAL")?),
            (IPSET_ATTR_HASHSIZE, DataContext::Create) => {
                Self::HashSize(u32_("IPSET_ATTR_HASHSIZE")?)
            }
            (IPSET_ATTR_MAXELEM, DataContext::Create) => Self::MaxElem(u32_("IPSET_ATTR_MAXELEM")?),
            (IPSET_ATTR_NETMASK, DataContext::Create) => Self::NetMask(u8_("IPSET_ATTR_NETMASK")?),
            (IPSET_ATTR_BUCKETSIZE, DataContext::Create) => {
                Self::BucketSize(u8_("IPSET_ATTR_BUCKETSIZE")?)
            }
            (IPSET_ATTR_RESIZE, DataContext::Create) => Self::Resize(u8_("IPSET_ATTR_RESIZE")?),
            (IPSET_ATTR_SIZE, DataContext::Create) => Self::Size(u32_("IPSET_ATTR_SIZE")?),
            (IPSET_ATTR_ELEMENTS, DataContext::Create) => {
                Self::Elements(u32_("IPSET_ATTR_ELEMENTS")?)
            }
            (IPSET_ATTR_REFERENCES, DataContext::Create) => {
                Self::References(u32_("IPSET_ATTR_REFERENCES")?)
            }
            (IPSET_ATTR_MEMSIZE, DataContext::Create) => Self::MemSize(u32_("IPSET_ATTR_MEMSIZE")?),

            (IPSET_ATTR_IP2, DataContext::Adt) => Self::Ip2(ip("IPSET_ATTR_IP2")?),
            (IPSET_ATTR_CIDR2, DataContext::Adt) => Self::Cidr2(u8_("IPSET_ATTR_CIDR2")?),
            (IPSET_ATTR_BYTES, DataContext::Adt) => Self::Bytes(u64_("IPSET_ATTR_BYTES")?),
            (IPSET_ATTR_PACKETS, DataContext::Adt) => Self::Packets(u64_("IPSET_ATTR_PACKETS")?),
            (IPSET_ATTR_COMMENT, DataContext::Adt) => {
                Self::Comment(strings::parse_nul(payload).context("invalid IPSET_ATTR_COMMENT")?)
            }
            _ => Self::Other(DefaultNla::parse(buf).context("invalid ipset DATA attribute")?),
        })
    }
}

/// Parses the value of one `DATA` attribute.
pub(crate) fn parse_data(value: &[u8], ctx: DataContext) -> Result<Vec<DataAttr>, DecodeError> {
    let mut attrs = Vec::new();
    for nla in netlink_packet_core::NlasIterator::new(value) {
        let nla = nla.context("invalid IPSET_ATTR_DATA")?;
        attrs.push(DataAttr::parse_with_param(&nla, ctx)?);
    }
    Ok(attrs)
}
