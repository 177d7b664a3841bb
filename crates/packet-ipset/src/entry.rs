//! One set member, as `ipset add` spells it.

use std::{fmt, net::IpAddr};

use crate::{constants::*, data::DataAttr, ip::IpAddrAttr};

/// A set element. Which fields apply depends on the set type:
/// - hash:ip: `ip`;
/// - hash:ip,port: `ip`, `proto`, `port` (`proto` is required by the
///   kernel for `*,port` types: `IPSET_ERR_MISSING_PROTO` otherwise);
/// - hash:ip,port,ip: plus `ip2`;
/// - hash:ip,port,net: plus `ip2` and `cidr2`;
/// - bitmap:port: `port` only.
///
/// `comment` needs a set created with the comment extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Entry {
    pub ip: Option<IpAddr>,
    /// `IPPROTO_*` (6 tcp, 17 udp, 132 sctp).
    pub proto: Option<u8>,
    pub port: Option<u16>,
    pub ip2: Option<IpAddr>,
    pub cidr2: Option<u8>,
    pub comment: Option<String>,
}

impl Entry {
    /// `ip,proto:port` (hash:ip,port).
    pub fn ip_port(ip: IpAddr, proto: u8, port: u16) -> Self {
        Self {
            ip: Some(ip),
            proto: Some(proto),
            port: Some(port),
            ..Self::default()
        }
    }

    /// `ip,proto:port,ip2` (hash:ip,port,ip).
    pub fn ip_port_ip(ip: IpAddr, proto: u8, port: u16, ip2: IpAddr) -> Self {
        Self {
            ip2: Some(ip2),
            ..Self::ip_port(ip, proto, port)
        }
    }

    /// `ip,proto:port,net/cidr` (hash:ip,port,net).
    pub fn ip_port_net(ip: IpAddr, proto: u8, port: u16, net: IpAddr, cidr: u8) -> Self {
        Self {
            ip2: Some(net),
            cidr2: Some(cidr),
            ..Self::ip_port(ip, proto, port)
        }
    }

    /// A bare port (bitmap:port).
    pub fn port(port: u16) -> Self {
        Self {
            port: Some(port),
            ..Self::default()
        }
    }

    /// A bare address (hash:ip).
    pub fn ip(ip: IpAddr) -> Self {
        Self {
            ip: Some(ip),
            ..Self::default()
        }
    }

    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// The DATA attributes for a request, in the order libipset emits them
    /// (`addattr_adt` walks the ADT attribute ids in ascending order).
    /// The restore `LINENO` is not included: the batch builder adds it last.
    pub fn to_data_attrs(&self) -> Vec<DataAttr> {
        let mut attrs = Vec::new();
        if let Some(ip) = self.ip {
            attrs.push(DataAttr::Ip(IpAddrAttr::new(ip)));
        }
        if let Some(port) = self.port {
            attrs.push(DataAttr::Port(port));
        }
        if let Some(proto) = self.proto {
            attrs.push(DataAttr::Proto(proto));
        }
        if let Some(ip2) = self.ip2 {
            attrs.push(DataAttr::Ip2(IpAddrAttr::new(ip2)));
        }
        if let Some(cidr2) = self.cidr2 {
            attrs.push(DataAttr::Cidr2(cidr2));
        }
        if let Some(comment) = &self.comment {
            attrs.push(DataAttr::Comment(comment.clone()));
        }
        attrs
    }

    /// The element described by one ADT-context DATA block (attributes it
    /// does not model, such as counters or `LINENO`, are ignored).
    pub fn from_data_attrs(attrs: &[DataAttr]) -> Self {
        let mut entry = Entry::default();
        for attr in attrs {
            match attr {
                DataAttr::Ip(ip) => entry.ip = Some(ip.addr),
                DataAttr::Port(port) => entry.port = Some(*port),
                DataAttr::Proto(proto) => entry.proto = Some(*proto),
                DataAttr::Ip2(ip) => entry.ip2 = Some(ip.addr),
                DataAttr::Cidr2(cidr) => entry.cidr2 = Some(*cidr),
                DataAttr::Comment(comment) => entry.comment = Some(comment.clone()),
                _ => {}
            }
        }
        entry
    }
}

/// The protocol name `ipset list` prints.
fn proto_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        IPPROTO_SCTP => "sctp",
        IPPROTO_ICMP => "icmp",
        IPPROTO_ICMPV6 => "icmpv6",
        _ => return None,
    })
}

/// Formats like `ipset list` members: `10.96.0.10,tcp:80,10.244.1.2`,
/// `fd00::10,udp:53`, `10.96.0.10,tcp:80,10.0.0.0/8`, `30080`, with
/// ` comment "…"` appended when there is one.
impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            if first {
                first = false;
                Ok(())
            } else {
                f.write_str(",")
            }
        };
        if let Some(ip) = self.ip {
            sep(f)?;
            write!(f, "{ip}")?;
        }
        match (self.proto, self.port) {
            (Some(proto), Some(port)) => {
                sep(f)?;
                match proto_name(proto) {
                    Some(name) => write!(f, "{name}:{port}")?,
                    None => write!(f, "{proto}:{port}")?,
                }
            }
            (None, Some(port)) => {
                sep(f)?;
                write!(f, "{port}")?;
            }
            (Some(proto), None) => {
                sep(f)?;
                match proto_name(proto) {
                    Some(name) => f.write_str(name)?,
                    None => write!(f, "{proto}")?,
                }
            }
            (None, None) => {}
        }
        if let Some(ip2) = self.ip2 {
            sep(f)?;
            write!(f, "{ip2}")?;
            if let Some(cidr2) = self.cidr2 {
                write!(f, "/{cidr2}")?;
            }
        }
        if let Some(comment) = &self.comment {
            write!(f, " comment \"{comment}\"")?;
        }
        Ok(())
    }
}
