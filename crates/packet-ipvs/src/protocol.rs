//! `IPVS_SVC_ATTR_PROTOCOL`: the IP protocol number, sent as a u16.

use std::fmt;

pub const IPPROTO_TCP: u16 = 6;
pub const IPPROTO_UDP: u16 = 17;
pub const IPPROTO_SCTP: u16 = 132;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Other(u16),
}

impl From<u16> for Protocol {
    fn from(value: u16) -> Self {
        match value {
            IPPROTO_TCP => Self::Tcp,
            IPPROTO_UDP => Self::Udp,
            IPPROTO_SCTP => Self::Sctp,
            other => Self::Other(other),
        }
    }
}

impl From<Protocol> for u16 {
    fn from(protocol: Protocol) -> u16 {
        match protocol {
            Protocol::Tcp => IPPROTO_TCP,
            Protocol::Udp => IPPROTO_UDP,
            Protocol::Sctp => IPPROTO_SCTP,
            Protocol::Other(other) => other,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp => f.write_str("tcp"),
            Self::Udp => f.write_str("udp"),
            Self::Sctp => f.write_str("sctp"),
            Self::Other(other) => write!(f, "proto({other})"),
        }
    }
}
