//! Attributes nested in `IPVS_CMD_ATTR_DEST` (`IPVS_DEST_ATTR_*`).

use netlink_packet_core::{
    parse_u16, parse_u16_be, parse_u32, parse_u8, DecodeError, DefaultNla, Emitable, ErrorContext,
    Nla, NlaBuffer, Parseable,
};

use crate::{
    address::AddressFamily,
    forward::{ForwardMethod, TunnelType},
    nest::parse_attrs,
    stats::{Stats64Attr, StatsAttr},
};

pub const IPVS_DEST_ATTR_UNSPEC: u16 = 0;
pub const IPVS_DEST_ATTR_ADDR: u16 = 1;
pub const IPVS_DEST_ATTR_PORT: u16 = 2;
pub const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
pub const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
pub const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
pub const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
pub const IPVS_DEST_ATTR_ACTIVE_CONNS: u16 = 7;
pub const IPVS_DEST_ATTR_INACT_CONNS: u16 = 8;
pub const IPVS_DEST_ATTR_PERSIST_CONNS: u16 = 9;
pub const IPVS_DEST_ATTR_STATS: u16 = 10;
pub const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;
pub const IPVS_DEST_ATTR_STATS64: u16 = 12;
pub const IPVS_DEST_ATTR_TUN_TYPE: u16 = 13;
pub const IPVS_DEST_ATTR_TUN_PORT: u16 = 14;
pub const IPVS_DEST_ATTR_TUN_FLAGS: u16 = 15;

/// One real-server (destination) attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestAttr {
    /// Raw `union nf_inet_addr` bytes; read them with `AddrFamily`.
    Addr(Vec<u8>),
    /// Host-order value; network byte order on the wire.
    Port(u16),
    FwdMethod(ForwardMethod),
    Weight(u32),
    UThresh(u32),
    LThresh(u32),
    ActiveConns(u32),
    InactConns(u32),
    PersistConns(u32),
    Stats(Vec<StatsAttr>),
    /// Kernel >= 3.18; when absent the kernel assumes the service's family.
    AddrFamily(AddressFamily),
    Stats64(Vec<Stats64Attr>),
    TunType(TunnelType),
    /// Host-order value; network byte order on the wire (`nla_put_be16`).
    TunPort(u16),
    TunFlags(u16),
    Other(DefaultNla),
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Addr(bytes) => bytes.len(),
            Self::Port(_) | Self::AddrFamily(_) | Self::TunPort(_) | Self::TunFlags(_) => 2,
            Self::TunType(_) => 1,
            Self::FwdMethod(_)
            | Self::Weight(_)
            | Self::UThresh(_)
            | Self::LThresh(_)
            | Self::ActiveConns(_)
            | Self::InactConns(_)
            | Self::PersistConns(_) => 4,
            Self::Stats(attrs) => attrs.as_slice().buffer_len(),
            Self::Stats64(attrs) => attrs.as_slice().buffer_len(),
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Addr(_) => IPVS_DEST_ATTR_ADDR,
            Self::Port(_) => IPVS_DEST_ATTR_PORT,
            Self::FwdMethod(_) => IPVS_DEST_ATTR_FWD_METHOD,
            Self::Weight(_) => IPVS_DEST_ATTR_WEIGHT,
            Self::UThresh(_) => IPVS_DEST_ATTR_U_THRESH,
            Self::LThresh(_) => IPVS_DEST_ATTR_L_THRESH,
            Self::ActiveConns(_) => IPVS_DEST_ATTR_ACTIVE_CONNS,
            Self::InactConns(_) => IPVS_DEST_ATTR_INACT_CONNS,
            Self::PersistConns(_) => IPVS_DEST_ATTR_PERSIST_CONNS,
            Self::Stats(_) => IPVS_DEST_ATTR_STATS,
            Self::AddrFamily(_) => IPVS_DEST_ATTR_ADDR_FAMILY,
            Self::Stats64(_) => IPVS_DEST_ATTR_STATS64,
            Self::TunType(_) => IPVS_DEST_ATTR_TUN_TYPE,
            Self::TunPort(_) => IPVS_DEST_ATTR_TUN_PORT,
            Self::TunFlags(_) => IPVS_DEST_ATTR_TUN_FLAGS,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Addr(bytes) => buffer.copy_from_slice(bytes),
            Self::Port(port) | Self::TunPort(port) => buffer.copy_from_slice(&port.to_be_bytes()),
            Self::FwdMethod(method) => buffer.copy_from_slice(&u32::from(*method).to_ne_bytes()),
            Self::Weight(v)
            | Self::UThresh(v)
            | Self::LThresh(v)
            | Self::ActiveConns(v)
            | Self::InactConns(v)
            | Self::PersistConns(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Stats(attrs) => attrs.as_slice().emit(buffer),
            Self::AddrFamily(af) => buffer.copy_from_slice(&u16::from(*af).to_ne_bytes()),
            Self::Stats64(attrs) => attrs.as_slice().emit(buffer),
            Self::TunType(kind) => buffer[0] = u8::from(*kind),
            Self::TunFlags(flags) => buffer.copy_from_slice(&flags.to_ne_bytes()),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DestAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        let u32_of = |name: &str| parse_u32(payload).with_context(|| name.to_owned());
        Ok(match buf.kind() {
            IPVS_DEST_ATTR_ADDR => {
                if payload.len() > 16 {
                    return Err(DecodeError::from(format!(
                        "IPVS_DEST_ATTR_ADDR has {} bytes, at most 16 allowed",
                        payload.len()
                    )));
                }
                Self::Addr(payload.to_vec())
            }
            IPVS_DEST_ATTR_PORT => {
                Self::Port(parse_u16_be(payload).context("IPVS_DEST_ATTR_PORT")?)
            }
            IPVS_DEST_ATTR_FWD_METHOD => {
                Self::FwdMethod(u32_of("IPVS_DEST_ATTR_FWD_METHOD")?.into())
            }
            IPVS_DEST_ATTR_WEIGHT => Self::Weight(u32_of("IPVS_DEST_ATTR_WEIGHT")?),
            IPVS_DEST_ATTR_U_THRESH => Self::UThresh(u32_of("IPVS_DEST_ATTR_U_THRESH")?),
            IPVS_DEST_ATTR_L_THRESH => Self::LThresh(u32_of("IPVS_DEST_ATTR_L_THRESH")?),
            IPVS_DEST_ATTR_ACTIVE_CONNS => {
                Self::ActiveConns(u32_of("IPVS_DEST_ATTR_ACTIVE_CONNS")?)
            }
            IPVS_DEST_ATTR_INACT_CONNS => Self::InactConns(u32_of("IPVS_DEST_ATTR_INACT_CONNS")?),
            IPVS_DEST_ATTR_PERSIST_CONNS => {
                Self::PersistConns(u32_of("IPVS_DEST_ATTR_PERSIST_CONNS")?)
            }
            IPVS_DEST_ATTR_STATS => {
                Self::Stats(parse_attrs(payload, "IPVS_DEST_ATTR_STATS", |nla| {
                    StatsAttr::parse(nla)
                })?)
            }
            IPVS_DEST_ATTR_ADDR_FAMILY => Self::AddrFamily(
                parse_u16(payload)
                    .context("IPVS_DEST_ATTR_ADDR_FAMILY")?
                    .into(),
            ),
            IPVS_DEST_ATTR_STATS64 => {
                Self::Stats64(parse_attrs(payload, "IPVS_DEST_ATTR_STATS64", |nla| {
                    Stats64Attr::parse(nla)
                })?)
            }
            IPVS_DEST_ATTR_TUN_TYPE => {
                Self::TunType(parse_u8(payload).context("IPVS_DEST_ATTR_TUN_TYPE")?.into())
            }
            IPVS_DEST_ATTR_TUN_PORT => {
                Self::TunPort(parse_u16_be(payload).context("IPVS_DEST_ATTR_TUN_PORT")?)
            }
            IPVS_DEST_ATTR_TUN_FLAGS => {
                Self::TunFlags(parse_u16(payload).context("IPVS_DEST_ATTR_TUN_FLAGS")?)
            }
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}
