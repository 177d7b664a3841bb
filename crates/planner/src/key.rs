//! Ordered keys: virtual services and address families as map keys.

use std::{cmp::Ordering, net::IpAddr};

use kipvs_packet_ipset::SetFamily;
use kipvs_packet_ipvs::{Protocol, ServiceKey};
use kipvs_packet_nftables::NfProto;

/// A [`ServiceKey`] with a total order, so that virtual services live in
/// `BTreeMap`s and plans come out in a stable order. Tuples sort by
/// address (IPv4 first), protocol number, port; fwmark services after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VirtualServiceKey(pub ServiceKey);

impl VirtualServiceKey {
    pub fn tuple(addr: IpAddr, protocol: Protocol, port: u16) -> Self {
        VirtualServiceKey(ServiceKey::Tuple {
            addr,
            protocol,
            port,
        })
    }

    pub fn key(&self) -> ServiceKey {
        self.0
    }

    /// The virtual address, for tuple services.
    pub fn addr(&self) -> Option<IpAddr> {
        match self.0 {
            ServiceKey::Tuple { addr, .. } => Some(addr),
            ServiceKey::Fwmark { .. } => None,
        }
    }

    fn sort_key(&self) -> (u8, Option<IpAddr>, u16, u32) {
        match self.0 {
            ServiceKey::Tuple {
                addr,
                protocol,
                port,
            } => (0, Some(addr), protocol.into(), port.into()),
            ServiceKey::Fwmark { af, mark } => (1, None, af.into(), mark),
        }
    }
}

/// As `ipvsadm -Ln` names it: `TCP 10.96.0.10:80`, `fwmark 5 (inet)`.
impl std::fmt::Display for VirtualServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            ServiceKey::Tuple {
                addr,
                protocol,
                port,
            } => write!(f, "{protocol} {}", std::net::SocketAddr::new(addr, port)),
            ServiceKey::Fwmark { af, mark } => write!(f, "fwmark {mark} ({af})"),
        }
    }
}

impl From<ServiceKey> for VirtualServiceKey {
    fn from(key: ServiceKey) -> Self {
        VirtualServiceKey(key)
    }
}

impl Ord for VirtualServiceKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for VirtualServiceKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// IPv4 or IPv6: which ipsets, which nf_tables table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub const ALL: [IpFamily; 2] = [IpFamily::V4, IpFamily::V6];

    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    /// The table family (`ip` / `ip6`).
    pub fn nf_proto(self) -> NfProto {
        match self {
            IpFamily::V4 => NfProto::Ipv4,
            IpFamily::V6 => NfProto::Ipv6,
        }
    }

    /// The table family as `nft` names it (`ip` / `ip6`).
    pub fn nf_proto_name(self) -> &'static str {
        match self {
            IpFamily::V4 => "ip",
            IpFamily::V6 => "ip6",
        }
    }

    /// The ipset family (`inet` / `inet6`).
    pub fn set_family(self) -> SetFamily {
        match self {
            IpFamily::V4 => SetFamily::Inet,
            IpFamily::V6 => SetFamily::Inet6,
        }
    }

    /// An EndpointSlice `addressType` of this family.
    pub fn address_type(self) -> &'static str {
        match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }
}
