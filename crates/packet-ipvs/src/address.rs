//! Address families and the `union nf_inet_addr` address encoding.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use netlink_packet_core::DecodeError;

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Size of `union nf_inet_addr`: libipvs sends (and the kernel dumps) the
/// whole union even for IPv4, with the address in the first 4 bytes.
pub const NF_INET_ADDR_LEN: usize = 16;

/// `IPVS_SVC_ATTR_AF` / `IPVS_DEST_ATTR_ADDR_FAMILY` (u16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressFamily {
    Inet,
    Inet6,
    Other(u16),
}

impl AddressFamily {
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Inet,
            IpAddr::V6(_) => Self::Inet6,
        }
    }
}

impl From<u16> for AddressFamily {
    fn from(value: u16) -> Self {
        match value {
            AF_INET => Self::Inet,
            AF_INET6 => Self::Inet6,
            other => Self::Other(other),
        }
    }
}

impl From<AddressFamily> for u16 {
    fn from(af: AddressFamily) -> u16 {
        match af {
            AddressFamily::Inet => AF_INET,
            AddressFamily::Inet6 => AF_INET6,
            AddressFamily::Other(other) => other,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet => f.write_str("inet"),
            Self::Inet6 => f.write_str("inet6"),
            Self::Other(other) => write!(f, "af({other})"),
        }
    }
}

/// Encodes `addr` as a 16-byte `union nf_inet_addr`, like libipvs does.
pub fn encode_addr(addr: &IpAddr) -> Vec<u8> {
    let mut bytes = vec![0; NF_INET_ADDR_LEN];
    match addr {
        IpAddr::V4(v4) => bytes[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => bytes.copy_from_slice(&v6.octets()),
    }
    bytes
}

/// Decodes an `ADDR` attribute using the family that came with it.
///
/// The attribute alone is ambiguous: the kernel dumps 16 bytes for an IPv4
/// service too (`nla_put(.., sizeof(svc->addr), ..)` in
/// `ip_vs_genl_fill_service`), so only the family says how to read it.
pub fn decode_addr(af: AddressFamily, bytes: &[u8]) -> Result<IpAddr, DecodeError> {
    match af {
        AddressFamily::Inet if bytes.len() == 4 || bytes.len() == NF_INET_ADDR_LEN => Ok(
            IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        ),
        AddressFamily::Inet6 if bytes.len() == NF_INET_ADDR_LEN => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            Ok(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        AddressFamily::Inet | AddressFamily::Inet6 => Err(DecodeError::from(format!(
            "{} byte address does not fit family {af}",
            bytes.len()
        ))),
        AddressFamily::Other(other) => Err(DecodeError::from(format!(
            "unsupported address family {other}"
        ))),
    }
}
