//! How a destination is reached: forwarding method and tunnel type.

use std::fmt;

pub const IP_VS_CONN_F_FWD_MASK: u32 = 0x0007;
pub const IP_VS_CONN_F_MASQ: u32 = 0x0000;
pub const IP_VS_CONN_F_LOCALNODE: u32 = 0x0001;
pub const IP_VS_CONN_F_TUNNEL: u32 = 0x0002;
pub const IP_VS_CONN_F_DROUTE: u32 = 0x0003;
pub const IP_VS_CONN_F_BYPASS: u32 = 0x0004;

pub const IP_VS_CONN_F_TUNNEL_TYPE_IPIP: u8 = 0;
pub const IP_VS_CONN_F_TUNNEL_TYPE_GUE: u8 = 1;
pub const IP_VS_CONN_F_TUNNEL_TYPE_GRE: u8 = 2;

pub const IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM: u16 = 0;
pub const IP_VS_TUNNEL_ENCAP_FLAG_CSUM: u16 = 1 << 0;
pub const IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM: u16 = 1 << 1;

/// `IPVS_DEST_ATTR_FWD_METHOD` (u32, `conn_flags & IP_VS_CONN_F_FWD_MASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForwardMethod {
    /// NAT; what kube-proxy uses (`ipvsadm -m`).
    Masq,
    LocalNode,
    /// IP-in-IP and friends (`ipvsadm -i`).
    Tunnel,
    /// Direct routing (`ipvsadm -g`, ipvsadm's default).
    DirectRoute,
    Bypass,
    Other(u32),
}

impl From<u32> for ForwardMethod {
    fn from(value: u32) -> Self {
        match value {
            IP_VS_CONN_F_MASQ => Self::Masq,
            IP_VS_CONN_F_LOCALNODE => Self::LocalNode,
            IP_VS_CONN_F_TUNNEL => Self::Tunnel,
            IP_VS_CONN_F_DROUTE => Self::DirectRoute,
            IP_VS_CONN_F_BYPASS => Self::Bypass,
            other => Self::Other(other),
        }
    }
}

impl From<ForwardMethod> for u32 {
    fn from(method: ForwardMethod) -> u32 {
        match method {
            ForwardMethod::Masq => IP_VS_CONN_F_MASQ,
            ForwardMethod::LocalNode => IP_VS_CONN_F_LOCALNODE,
            ForwardMethod::Tunnel => IP_VS_CONN_F_TUNNEL,
            ForwardMethod::DirectRoute => IP_VS_CONN_F_DROUTE,
            ForwardMethod::Bypass => IP_VS_CONN_F_BYPASS,
            ForwardMethod::Other(other) => other,
        }
    }
}

impl fmt::Display for ForwardMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Masq => f.write_str("masq"),
            Self::LocalNode => f.write_str("local"),
            Self::Tunnel => f.write_str("tunnel"),
            Self::DirectRoute => f.write_str("route"),
            Self::Bypass => f.write_str("bypass"),
            Self::Other(other) => write!(f, "fwd({other})"),
        }
    }
}

/// `IPVS_DEST_ATTR_TUN_TYPE` (u8), meaningful with `ForwardMethod::Tunnel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TunnelType {
    #[default]
    Ipip,
    Gue,
    Gre,
    Other(u8),
}

impl From<u8> for TunnelType {
    fn from(value: u8) -> Self {
        match value {
            IP_VS_CONN_F_TUNNEL_TYPE_IPIP => Self::Ipip,
            IP_VS_CONN_F_TUNNEL_TYPE_GUE => Self::Gue,
            IP_VS_CONN_F_TUNNEL_TYPE_GRE => Self::Gre,
            other => Self::Other(other),
        }
    }
}

impl From<TunnelType> for u8 {
    fn from(kind: TunnelType) -> u8 {
        match kind {
            TunnelType::Ipip => IP_VS_CONN_F_TUNNEL_TYPE_IPIP,
            TunnelType::Gue => IP_VS_CONN_F_TUNNEL_TYPE_GUE,
            TunnelType::Gre => IP_VS_CONN_F_TUNNEL_TYPE_GRE,
            TunnelType::Other(other) => other,
        }
    }
}

impl fmt::Display for TunnelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ipip => f.write_str("ipip"),
            Self::Gue => f.write_str("gue"),
            Self::Gre => f.write_str("gre"),
            Self::Other(other) => write!(f, "tun({other})"),
        }
    }
}
