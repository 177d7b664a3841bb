//! Set types and families, and the options of `ipset create`.

use std::fmt;

use crate::constants::{NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_UNSPEC};

/// The set types kube-proxy's IPVS mode uses, plus a catch-all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetType {
    HashIp,
    HashIpPort,
    HashIpPortIp,
    HashIpPortNet,
    BitmapPort,
    Other(String),
}

impl SetType {
    /// The kernel's type name (`IPSET_ATTR_TYPENAME`).
    pub fn type_name(&self) -> &str {
        match self {
            SetType::HashIp => "hash:ip",
            SetType::HashIpPort => "hash:ip,port",
            SetType::HashIpPortIp => "hash:ip,port,ip",
            SetType::HashIpPortNet => "hash:ip,port,net",
            SetType::BitmapPort => "bitmap:port",
            SetType::Other(name) => name,
        }
    }

    /// bitmap:port (like list:set) has no address family: libipset sends
    /// `NFPROTO_UNSPEC` for its TYPE query and CREATE.
    pub fn has_family(&self) -> bool {
        !matches!(self, SetType::BitmapPort)
    }
}

impl From<&str> for SetType {
    fn from(name: &str) -> Self {
        match name {
            "hash:ip" => SetType::HashIp,
            "hash:ip,port" => SetType::HashIpPort,
            "hash:ip,port,ip" => SetType::HashIpPortIp,
            "hash:ip,port,net" => SetType::HashIpPortNet,
            "bitmap:port" => SetType::BitmapPort,
            other => SetType::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for SetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

/// `IPSET_ATTR_FAMILY` (an `NFPROTO_*` value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetFamily {
    Unspec,
    Inet,
    Inet6,
    Other(u8),
}

impl From<u8> for SetFamily {
    fn from(value: u8) -> Self {
        match value {
            NFPROTO_UNSPEC => SetFamily::Unspec,
            NFPROTO_IPV4 => SetFamily::Inet,
            NFPROTO_IPV6 => SetFamily::Inet6,
            other => SetFamily::Other(other),
        }
    }
}

impl From<SetFamily> for u8 {
    fn from(value: SetFamily) -> Self {
        match value {
            SetFamily::Unspec => NFPROTO_UNSPEC,
            SetFamily::Inet => NFPROTO_IPV4,
            SetFamily::Inet6 => NFPROTO_IPV6,
            SetFamily::Other(other) => other,
        }
    }
}

impl fmt::Display for SetFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetFamily::Unspec => f.write_str("unspec"),
            SetFamily::Inet => f.write_str("inet"),
            SetFamily::Inet6 => f.write_str("inet6"),
            SetFamily::Other(other) => write!(f, "family {other}"),
        }
    }
}

/// Options of `ipset create`; only what is set goes on the wire, as with
/// the tool (which sends an empty DATA when no option is given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// `hashsize N` (`IPSET_ATTR_HASHSIZE`).
    pub hash_size: Option<u32>,
    /// `maxelem N` (`IPSET_ATTR_MAXELEM`).
    pub max_elem: Option<u32>,
    /// `comment`: `IPSET_FLAG_WITH_COMMENT` in `IPSET_ATTR_CADT_FLAGS`.
    pub comment: bool,
    /// `range FROM-TO` of bitmap:port (`IPSET_ATTR_PORT` / `PORT_TO`).
    pub port_range: Option<(u16, u16)>,
}
