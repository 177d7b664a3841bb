//! Top-level attributes of an IPVS message (`IPVS_CMD_ATTR_*`, and the
//! `IPVS_INFO_ATTR_*` that share their numbers in the `GET_INFO` reply).

use netlink_packet_core::{
    parse_u32, DecodeError, DefaultNla, ErrorContext, Nla, NlaBuffer, Parseable,
    ParseableParametrized,
};

use crate::{
    cmd::IpvsCmd,
    dest_attr::DestAttr,
    nest::{parse_nest, Nest},
    service_attr::SvcAttr,
};

pub const IPVS_CMD_ATTR_UNSPEC: u16 = 0;
pub const IPVS_CMD_ATTR_SERVICE: u16 = 1;
pub const IPVS_CMD_ATTR_DEST: u16 = 2;
pub const IPVS_CMD_ATTR_DAEMON: u16 = 3;
pub const IPVS_CMD_ATTR_TIMEOUT_TCP: u16 = 4;
pub const IPVS_CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
pub const IPVS_CMD_ATTR_TIMEOUT_UDP: u16 = 6;

pub const IPVS_INFO_ATTR_UNSPEC: u16 = 0;
pub const IPVS_INFO_ATTR_VERSION: u16 = 1;
pub const IPVS_INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

/// One top-level attribute.
///
/// The numbering is not global: `ip_vs_genl_get_cmd` answers `GET_INFO`
/// with a `SET_INFO` message whose *top-level* attributes 1 and 2 are
/// `IPVS_INFO_ATTR_VERSION` and `IPVS_INFO_ATTR_CONN_TAB_SIZE`, not
/// `SERVICE`/`DEST`. Parsing therefore takes the command as a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IpvsCmdAttr {
    Service(Nest<SvcAttr>),
    Dest(Nest<DestAttr>),
    /// Sync-daemon settings; kube-proxy never uses them, so they stay raw.
    Daemon(Nest<DefaultNla>),
    /// Seconds; 0 in `SET_CONFIG` means "leave unchanged".
    TimeoutTcp(u32),
    TimeoutTcpFin(u32),
    TimeoutUdp(u32),
    /// `IP_VS_VERSION_CODE`, e.g. `0x010201` for 1.2.1 (SET_INFO only).
    InfoVersion(u32),
    /// Size of the connection hash table (SET_INFO only).
    InfoConnTabSize(u32),
    Other(DefaultNla),
}

impl Nla for IpvsCmdAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Service(nest) => nest.value_len(),
            Self::Dest(nest) => nest.value_len(),
            Self::Daemon(nest) => nest.value_len(),
            Self::TimeoutTcp(_)
            | Self::TimeoutTcpFin(_)
            | Self::TimeoutUdp(_)
            | Self::InfoVersion(_)
            | Self::InfoConnTabSize(_) => 4,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Service(nest) => nest.kind(IPVS_CMD_ATTR_SERVICE),
            Self::Dest(nest) => nest.kind(IPVS_CMD_ATTR_DEST),
            Self::Daemon(nest) => nest.kind(IPVS_CMD_ATTR_DAEMON),
            Self::TimeoutTcp(_) => IPVS_CMD_ATTR_TIMEOUT_TCP,
            Self::TimeoutTcpFin(_) => IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
            Self::TimeoutUdp(_) => IPVS_CMD_ATTR_TIMEOUT_UDP,
            Self::InfoVersion(_) => IPVS_INFO_ATTR_VERSION,
            Self::InfoConnTabSize(_) => IPVS_INFO_ATTR_CONN_TAB_SIZE,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Service(nest) => nest.emit_value(buffer),
            Self::Dest(nest) => nest.emit_value(buffer),
            Self::Daemon(nest) => nest.emit_value(buffer),
            Self::TimeoutTcp(v)
            | Self::TimeoutTcpFin(v)
            | Self::TimeoutUdp(v)
            | Self::InfoVersion(v)
            | Self::InfoConnTabSize(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> ParseableParametrized<NlaBuffer<&'a T>, IpvsCmd> for IpvsCmdAttr {
    fn parse_with_param(buf: &NlaBuffer<&'a T>, cmd: IpvsCmd) -> Result<Self, DecodeError> {
        let payload = buf.value();
        if cmd == IpvsCmd::SetInfo {
            return Ok(match buf.kind() {
                IPVS_INFO_ATTR_VERSION => {
                    Self::InfoVersion(parse_u32(payload).context("IPVS_INFO_ATTR_VERSION")?)
                }
                IPVS_INFO_ATTR_CONN_TAB_SIZE => Self::InfoConnTabSize(
                    parse_u32(payload).context("IPVS_INFO_ATTR_CONN_TAB_SIZE")?,
                ),
                _ => Self::Other(DefaultNla::parse(buf)?),
            });
        }
        Ok(match buf.kind() {
            IPVS_CMD_ATTR_SERVICE => {
                Self::Service(parse_nest(buf, "IPVS_CMD_ATTR_SERVICE", |n| {
                    SvcAttr::parse(n)
                })?)
            }
            IPVS_CMD_ATTR_DEST => Self::Dest(parse_nest(buf, "IPVS_CMD_ATTR_DEST", |n| {
                DestAttr::parse(n)
            })?),
            IPVS_CMD_ATTR_DAEMON => Self::Daemon(parse_nest(buf, "IPVS_CMD_ATTR_DAEMON", |n| {
                DefaultNla::parse(n)
            })?),
            IPVS_CMD_ATTR_TIMEOUT_TCP => {
                Self::TimeoutTcp(parse_u32(payload).context("IPVS_CMD_ATTR_TIMEOUT_TCP")?)
            }
            IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => {
                Self::TimeoutTcpFin(parse_u32(payload).context("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")?)
            }
            IPVS_CMD_ATTR_TIMEOUT_UDP => {
                Self::TimeoutUdp(parse_u32(payload).context("IPVS_CMD_ATTR_TIMEOUT_UDP")?)
            }
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}
