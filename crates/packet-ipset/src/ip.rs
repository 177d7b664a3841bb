//! The nested address of `IPSET_ATTR_IP`, `IP_TO` and `IP2`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DecodeError, Emitable, Nla, NlaBuffer, NlasIterator, NLA_F_NET_BYTEORDER,
};

use crate::constants::{IPSET_ATTR_IPADDR_IPV4, IPSET_ATTR_IPADDR_IPV6};

/// An address nested as `IPSET_ATTR_IPADDR_IPV4` or `IPSET_ATTR_IPADDR_IPV6`.
///
/// The two directions disagree on one flag bit, so it is kept:
/// - requests must set `NLA_F_NET_BYTEORDER` on the inner attribute, or
///   `ip_set_get_ipaddr4`/`ip_set_get_ipaddr6` (`ip_set_core.c`) answer
///   `-IPSET_ERR_PROTOCOL`; libipset (`rawdata2attr`) sets it;
/// - the kernel's own replies (`nla_put_ipaddr4` → `nla_put_in_addr`) leave
///   it clear.
///
/// Keeping the bit lets a parsed LIST reply re-emit byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpAddrAttr {
    pub addr: IpAddr,
    /// Whether the inner attribute carries `NLA_F_NET_BYTEORDER`.
    pub net_byteorder: bool,
}

impl IpAddrAttr {
    /// The request form (flag set), as the kernel requires it.
    pub fn new(addr: IpAddr) -> Self {
        Self {
            addr,
            net_byteorder: true,
        }
    }

    /// The form the kernel sends back in dumps (flag clear).
    pub fn from_kernel(addr: IpAddr) -> Self {
        Self {
            addr,
            net_byteorder: false,
        }
    }

    fn inner_kind(&self) -> u16 {
        let kind = match self.addr {
            IpAddr::V4(_) => IPSET_ATTR_IPADDR_IPV4,
            IpAddr::V6(_) => IPSET_ATTR_IPADDR_IPV6,
        };
        if self.net_byteorder {
            kind | NLA_F_NET_BYTEORDER
        } else {
            kind
        }
    }

    /// Length of the nested value: one inner attribute.
    pub(crate) fn value_len(&self) -> usize {
        InnerAddr(*self).buffer_len()
    }

    pub(crate) fn emit_value(&self, buffer: &mut [u8]) {
        InnerAddr(*self).emit(buffer)
    }

    /// Parses the value of an `IP`/`IP2`/`IP_TO` attribute.
    pub(crate) fn parse_value(value: &[u8]) -> Result<Self, DecodeError> {
        let mut found = None;
        for nla in NlasIterator::new(value) {
            let nla = nla?;
            found = Some(parse_inner(&nla)?);
        }
        found.ok_or_else(|| DecodeError::from("nested IP attribute without an address"))
    }
}

impl From<IpAddr> for IpAddrAttr {
    fn from(addr: IpAddr) -> Self {
        Self::new(addr)
    }
}

fn parse_inner(nla: &NlaBuffer<&[u8]>) -> Result<IpAddrAttr, DecodeError> {
    let value = nla.value();
    let addr = match nla.kind() {
        IPSET_ATTR_IPADDR_IPV4 => {
            let octets: [u8; 4] = value.try_into().map_err(|_| {
                DecodeError::from(format!("IPSET_ATTR_IPADDR_IPV4 of {} bytes", value.len()))
            })?;
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        IPSET_ATTR_IPADDR_IPV6 => {
            let octets: [u8; 16] = value.try_into().map_err(|_| {
                DecodeError::from(format!("IPSET_ATTR_IPADDR_IPV6 of {} bytes", value.len()))
            })?;
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        other => {
            return Err(DecodeError::from(format!(
                "unknown attribute {other} inside a nested IP attribute"
            )))
        }
    };
    Ok(IpAddrAttr {
        addr,
        net_byteorder: nla.network_byte_order_flag(),
    })
}

/// The single inner attribute, so the core `Nla` emitter writes the header.
struct InnerAddr(IpAddrAttr);

impl Nla for InnerAddr {
    fn value_len(&self) -> usize {
        match self.0.addr {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 16,
        }
    }

    fn kind(&self) -> u16 {
        self.0.inner_kind()
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self.0.addr {
            IpAddr::V4(a) => buffer.copy_from_slice(&a.octets()),
            IpAddr::V6(a) => buffer.copy_from_slice(&a.octets()),
        }
    }
}
