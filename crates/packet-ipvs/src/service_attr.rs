//! Attributes nested in `IPVS_CMD_ATTR_SERVICE` (`IPVS_SVC_ATTR_*`).

use netlink_packet_core::{
    parse_string, parse_u16, parse_u16_be, parse_u32, DecodeError, DefaultNla, Emitable,
    ErrorContext, Nla, NlaBuffer, Parseable,
};

use crate::{
    address::AddressFamily,
    flags::IpvsFlags,
    nest::parse_attrs,
    protocol::Protocol,
    stats::{Stats64Attr, StatsAttr},
    wire::{emit_nul_string, nul_string_len},
};

pub const IPVS_SVC_ATTR_UNSPEC: u16 = 0;
pub const IPVS_SVC_ATTR_AF: u16 = 1;
pub const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
pub const IPVS_SVC_ATTR_ADDR: u16 = 3;
pub const IPVS_SVC_ATTR_PORT: u16 = 4;
pub const IPVS_SVC_ATTR_FWMARK: u16 = 5;
pub const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
pub const IPVS_SVC_ATTR_FLAGS: u16 = 7;
pub const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
pub const IPVS_SVC_ATTR_NETMASK: u16 = 9;
pub const IPVS_SVC_ATTR_STATS: u16 = 10;
pub const IPVS_SVC_ATTR_PE_NAME: u16 = 11;
pub const IPVS_SVC_ATTR_STATS64: u16 = 12;

/// One virtual-service attribute.
///
/// `Addr` keeps the raw bytes because their meaning depends on `Af` (the
/// kernel dumps 16 bytes for IPv4 too); use [`crate::Service::from_attrs`]
/// for the interpreted form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SvcAttr {
    Af(AddressFamily),
    Protocol(Protocol),
    Addr(Vec<u8>),
    /// Host-order value; network byte order on the wire.
    Port(u16),
    Fwmark(u32),
    /// Sent NUL-terminated (`NLA_NUL_STRING`, max 16 bytes with the NUL).
    SchedName(String),
    Flags(IpvsFlags),
    /// Persistence timeout in seconds.
    Timeout(u32),
    /// Persistence granularity: for IPv4 the mask's bytes read as a host
    /// u32 (`nla_get_be32` into a `__be32`), for IPv6 a prefix length 1..=128.
    Netmask(u32),
    /// Written by the kernel only, without `NLA_F_NESTED`.
    Stats(Vec<StatsAttr>),
    PeName(String),
    /// Written by the kernel only (>= 4.1), without `NLA_F_NESTED`.
    Stats64(Vec<Stats64Attr>),
    Other(DefaultNla),
}

impl Nla for SvcAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Af(_) | Self::Protocol(_) | Self::Port(_) => 2,
            Self::Fwmark(_) | Self::Timeout(_) | Self::Netmask(_) => 4,
            Self::Addr(bytes) => bytes.len(),
            Self::SchedName(s) | Self::PeName(s) => nul_string_len(s),
            Self::Flags(_) => IpvsFlags::LEN,
            Self::Stats(attrs) => attrs.as_slice().buffer_len(),
            Self::Stats64(attrs) => attrs.as_slice().buffer_len(),
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Af(_) => IPVS_SVC_ATTR_AF,
            Self::Protocol(_) => IPVS_SVC_ATTR_PROTOCOL,
            Self::Addr(_) => IPVS_SVC_ATTR_ADDR,
            Self::Port(_) => IPVS_SVC_ATTR_PORT,
            Self::Fwmark(_) => IPVS_SVC_ATTR_FWMARK,
            Self::SchedName(_) => IPVS_SVC_ATTR_SCHED_NAME,
            Self::Flags(_) => IPVS_SVC_ATTR_FLAGS,
            Self::Timeout(_) => IPVS_SVC_ATTR_TIMEOUT,
            Self::Netmask(_) => IPVS_SVC_ATTR_NETMASK,
            Self::Stats(_) => IPVS_SVC_ATTR_STATS,
            Self::PeName(_) => IPVS_SVC_ATTR_PE_NAME,
            Self::Stats64(_) => IPVS_SVC_ATTR_STATS64,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Af(af) => buffer.copy_from_slice(&u16::from(*af).to_ne_bytes()),
            Self::Protocol(p) => buffer.copy_from_slice(&u16::from(*p).to_ne_bytes()),
            Self::Addr(bytes) => buffer.copy_from_slice(bytes),
            Self::Port(port) => buffer.copy_from_slice(&port.to_be_bytes()),
            Self::Fwmark(v) | Self::Timeout(v) | Self::Netmask(v) => {
                buffer.copy_from_slice(&v.to_ne_bytes())
            }
            Self::SchedName(s) | Self::PeName(s) => emit_nul_string(buffer, s),
            Self::Flags(flags) => flags.emit(buffer),
            Self::Stats(attrs) => attrs.as_slice().emit(buffer),
            Self::Stats64(attrs) => attrs.as_slice().emit(buffer),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for SvcAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            IPVS_SVC_ATTR_AF => Self::Af(parse_u16(payload).context("IPVS_SVC_ATTR_AF")?.into()),
            IPVS_SVC_ATTR_PROTOCOL => {
                Self::Protocol(parse_u16(payload).context("IPVS_SVC_ATTR_PROTOCOL")?.into())
            }
            IPVS_SVC_ATTR_ADDR => {
                if payload.len() > 16 {
                    return Err(DecodeError::from(format!(
                        "IPVS_SVC_ATTR_ADDR has {} bytes, at most 16 allowed",
                        payload.len()
                    )));
                }
                Self::Addr(payload.to_vec())
            }
            IPVS_SVC_ATTR_PORT => Self::Port(parse_u16_be(payload).context("IPVS_SVC_ATTR_PORT")?),
            IPVS_SVC_ATTR_FWMARK => {
                Self::Fwmark(parse_u32(payload).context("IPVS_SVC_ATTR_FWMARK")?)
            }
            IPVS_SVC_ATTR_SCHED_NAME => {
                Self::SchedName(parse_string(payload).context("IPVS_SVC_ATTR_SCHED_NAME")?)
            }
            IPVS_SVC_ATTR_FLAGS => {
                Self::Flags(IpvsFlags::parse(payload).context("IPVS_SVC_ATTR_FLAGS")?)
            }
            IPVS_SVC_ATTR_TIMEOUT => {
                Self::Timeout(parse_u32(payload).context("IPVS_SVC_ATTR_TIMEOUT")?)
            }
            IPVS_SVC_ATTR_NETMASK => {
                Self::Netmask(parse_u32(payload).context("IPVS_SVC_ATTR_NETMASK")?)
            }
            IPVS_SVC_ATTR_STATS => {
                Self::Stats(parse_attrs(payload, "IPVS_SVC_ATTR_STATS", |nla| {
                    StatsAttr::parse(nla)
                })?)
            }
            IPVS_SVC_ATTR_PE_NAME => {
                Self::PeName(parse_string(payload).context("IPVS_SVC_ATTR_PE_NAME")?)
            }
            IPVS_SVC_ATTR_STATS64 => {
                Self::Stats64(parse_attrs(payload, "IPVS_SVC_ATTR_STATS64", |nla| {
                    Stats64Attr::parse(nla)
                })?)
            }
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}
