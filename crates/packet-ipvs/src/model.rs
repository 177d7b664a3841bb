//! The friendly layer: services, destinations and settings as plain
//! structs, converted to and from attribute lists.

use std::net::IpAddr;

use netlink_packet_core::{DecodeError, ErrorContext};

use crate::{
    address::{decode_addr, encode_addr, AddressFamily},
    dest_attr::DestAttr,
    flags::{IpvsFlags, ServiceFlags},
    forward::{ForwardMethod, TunnelType},
    protocol::Protocol,
    service_attr::SvcAttr,
    stats::Stats,
};

/// IPv4 persistence granularity /32 (`ce.svc.netmask = 0xffffffff` in ipvsadm).
pub const DEFAULT_NETMASK_V4: u32 = 0xffff_ffff;
/// IPv6 persistence granularity: a prefix length, not a mask. The kernel
/// rejects anything outside 1..=128 for AF_INET6 (`ip_vs_add_service`,
/// `ip_vs_edit_service`), so the v4 default would fail with EINVAL.
pub const DEFAULT_NETMASK_V6: u32 = 128;

/// What identifies a virtual service to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// `ipvsadm -t|-u|--sctp-service addr:port`; the family follows `addr`.
    Tuple {
        addr: IpAddr,
        protocol: Protocol,
        port: u16,
    },
    /// `ipvsadm -f mark [-6]`.
    Fwmark { af: AddressFamily, mark: u32 },
}

impl ServiceKey {
    pub fn af(&self) -> AddressFamily {
        match self {
            Self::Tuple { addr, .. } => AddressFamily::of(addr),
            Self::Fwmark { af, .. } => *af,
        }
    }

    /// The persistence netmask ipvsadm uses when none is given.
    pub fn default_netmask(&self) -> u32 {
        match self.af() {
            AddressFamily::Inet6 => DEFAULT_NETMASK_V6,
            _ => DEFAULT_NETMASK_V4,
        }
    }

    /// `AF`, then `FWMARK` or `PROTOCOL`/`ADDR`/`PORT`, in libipvs order
    /// (`ipvs_nl_fill_service_attr`). ADDR is always the 16-byte union.
    pub(crate) fn to_attrs(self) -> Vec<SvcAttr> {
        let mut attrs = vec![SvcAttr::Af(self.af())];
        match self {
            Self::Fwmark { mark, .. } => attrs.push(SvcAttr::Fwmark(mark)),
            Self::Tuple {
                addr,
                protocol,
                port,
            } => {
                attrs.push(SvcAttr::Protocol(protocol));
                attrs.push(SvcAttr::Addr(encode_addr(&addr)));
                attrs.push(SvcAttr::Port(port));
            }
        }
        attrs
    }

    /// Reads the key the way the kernel does (`ip_vs_genl_parse_service`):
    /// AF is mandatory, a non-zero FWMARK wins, otherwise PROTOCOL, ADDR
    /// and PORT must all be present.
    pub fn from_attrs(attrs: &[SvcAttr]) -> Result<Self, DecodeError> {
        let mut af = None;
        let mut fwmark = None;
        let mut protocol = None;
        let mut addr = None;
        let mut port = None;
        for attr in attrs {
            match attr {
                SvcAttr::Af(v) => af = Some(*v),
                SvcAttr::Fwmark(v) => fwmark = Some(*v),
                SvcAttr::Protocol(v) => protocol = Some(*v),
                SvcAttr::Addr(v) => addr = Some(v.as_slice()),
                SvcAttr::Port(v) => port = Some(*v),
                _ => {}
            }
        }
        let af = af.ok_or_else(|| DecodeError::from("service without IPVS_SVC_ATTR_AF"))?;
        if let Some(mark) = fwmark.filter(|mark| *mark != 0) {
            return Ok(Self::Fwmark { af, mark });
        }
        match (protocol, addr, port) {
            (Some(protocol), Some(addr), Some(port)) => Ok(Self::Tuple {
                addr: decode_addr(af, addr).context("IPVS_SVC_ATTR_ADDR")?,
                protocol,
                port,
            }),
            _ => Err(DecodeError::from(
                "service has neither FWMARK nor PROTOCOL+ADDR+PORT",
            )),
        }
    }
}

/// A virtual service (`ipvsadm -A`), as desired or as dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    /// `rr`, `wrr`, `sh`, `mh`, … (at most 15 bytes).
    pub scheduler: String,
    /// Never contains `IP_VS_SVC_F_HASHED` after [`Service::from_attrs`].
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (with `IP_VS_SVC_F_PERSISTENT`).
    pub timeout: u32,
    /// See [`SvcAttr::Netmask`]; [`Service::new`] picks the family default.
    pub netmask: u32,
    pub pe_name: Option<String>,
    /// Only in replies; ignored when building requests.
    pub stats: Option<Stats>,
}

impl Service {
    /// A non-persistent service with ipvsadm's defaults for everything else.
    pub fn new(key: ServiceKey, scheduler: impl Into<String>) -> Self {
        Self {
            netmask: key.default_netmask(),
            key,
            scheduler: scheduler.into(),
            flags: ServiceFlags::EMPTY,
            timeout: 0,
            pe_name: None,
            stats: None,
        }
    }

    /// Interprets a `SERVICE` nest, as dumped by the kernel.
    ///
    /// `IP_VS_SVC_F_HASHED` is masked off: the kernel sets it on every
    /// service it has hashed (`ip_vs_svc_hash`), so it would make every
    /// desired-vs-observed comparison differ. Prefers `STATS64` over `STATS`.
    pub fn from_attrs(attrs: &[SvcAttr]) -> Result<Self, DecodeError> {
        let key = ServiceKey::from_attrs(attrs)?;
        let mut scheduler = None;
        let mut flags = None;
        let mut timeout = None;
        let mut netmask = None;
        let mut pe_name = None;
        let mut stats = None;
        let mut stats64 = None;
        for attr in attrs {
            match attr {
                SvcAttr::SchedName(v) => scheduler = Some(v.clone()),
                SvcAttr::Flags(v) => flags = Some(*v),
                SvcAttr::Timeout(v) => timeout = Some(*v),
                SvcAttr::Netmask(v) => netmask = Some(*v),
                SvcAttr::PeName(v) => pe_name = Some(v.clone()),
                SvcAttr::Stats(v) => stats = Some(Stats::from_stats(v)),
                SvcAttr::Stats64(v) => stats64 = Some(Stats::from_stats64(v)),
                _ => {}
            }
        }
        let missing = |name: &str| DecodeError::from(format!("service without {name}"));
        let flags = flags.ok_or_else(|| missing("IPVS_SVC_ATTR_FLAGS"))?;
        Ok(Self {
            key,
            scheduler: scheduler.ok_or_else(|| missing("IPVS_SVC_ATTR_SCHED_NAME"))?,
            flags: ServiceFlags(flags.flags & flags.mask).without(ServiceFlags::HASHED),
            timeout: timeout.ok_or_else(|| missing("IPVS_SVC_ATTR_TIMEOUT"))?,
            netmask: netmask.ok_or_else(|| missing("IPVS_SVC_ATTR_NETMASK"))?,
            pe_name,
            stats: stats64.or(stats),
        })
    }

    /// The full entry NEW/SET_SERVICE require, in libipvs order: key,
    /// SCHED_NAME, PE_NAME (if any), FLAGS (mask `~0`), TIMEOUT, NETMASK.
    pub fn to_attrs(&self) -> Vec<SvcAttr> {
        let mut attrs = self.key.to_attrs();
        attrs.push(SvcAttr::SchedName(self.scheduler.clone()));
        if let Some(pe) = &self.pe_name {
            attrs.push(SvcAttr::PeName(pe.clone()));
        }
        attrs.push(SvcAttr::Flags(IpvsFlags::all(self.flags)));
        attrs.push(SvcAttr::Timeout(self.timeout));
        attrs.push(SvcAttr::Netmask(self.netmask));
        attrs
    }
}

/// A real server (`ipvsadm -a`), as desired or as dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: ForwardMethod,
    pub weight: u32,
    /// 0 = no limit.
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    /// Read-only counters; 0 in requests.
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    /// Tunnel encapsulation; only meaningful with `ForwardMethod::Tunnel`.
    pub tun_type: TunnelType,
    pub tun_port: u16,
    pub tun_flags: u16,
    /// Only in replies; ignored when building requests.
    pub stats: Option<Stats>,
}

impl Destination {
    /// A NAT (masquerading) destination with weight 1, kube-proxy style.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        Self {
            addr,
            port,
            forward: ForwardMethod::Masq,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: 0,
            tun_type: TunnelType::Ipip,
            tun_port: 0,
            tun_flags: 0,
            stats: None,
        }
    }

    /// Interprets a `DEST` nest, as dumped by the kernel.
    ///
    /// The family comes from `ADDR_FAMILY` (kernel >= 3.18); without it a
    /// 4-byte address is read as IPv4 and anything else is an error, because
    /// a 16-byte union is ambiguous.
    pub fn from_attrs(attrs: &[DestAttr]) -> Result<Self, DecodeError> {
        let mut addr = None;
        let mut af = None;
        let mut dest = Self::new(IpAddr::from([0, 0, 0, 0]), 0);
        let mut port = None;
        let mut stats = None;
        let mut stats64 = None;
        for attr in attrs {
            match attr {
                DestAttr::Addr(v) => addr = Some(v.as_slice()),
                DestAttr::AddrFamily(v) => af = Some(*v),
                DestAttr::Port(v) => port = Some(*v),
                DestAttr::FwdMethod(v) => dest.forward = *v,
                DestAttr::Weight(v) => dest.weight = *v,
                DestAttr::UThresh(v) => dest.upper_threshold = *v,
                DestAttr::LThresh(v) => dest.lower_threshold = *v,
                DestAttr::ActiveConns(v) => dest.active_conns = *v,
                DestAttr::InactConns(v) => dest.inactive_conns = *v,
                DestAttr::PersistConns(v) => dest.persistent_conns = *v,
                DestAttr::TunType(v) => dest.tun_type = *v,
                DestAttr::TunPort(v) => dest.tun_port = *v,
                DestAttr::TunFlags(v) => dest.tun_flags = *v,
                DestAttr::Stats(v) => stats = Some(Stats::from_stats(v)),
                DestAttr::Stats64(v) => stats64 = Some(Stats::from_stats64(v)),
                _ => {}
            }
        }
        let addr =
            addr.ok_or_else(|| DecodeError::from("destination without IPVS_DEST_ATTR_ADDR"))?;
        let af = match af {
            Some(af) => af,
            None if addr.len() == 4 => AddressFamily::Inet,
            None => {
                return Err(DecodeError::from(
                    "destination without IPVS_DEST_ATTR_ADDR_FAMILY and a 16-byte address",
                ))
            }
        };
        dest.addr = decode_addr(af, addr).context("IPVS_DEST_ATTR_ADDR")?;
        dest.port =
            port.ok_or_else(|| DecodeError::from("destination without IPVS_DEST_ATTR_PORT"))?;
        dest.stats = stats64.or(stats);
        Ok(dest)
    }

    /// The `DEST` nest in libipvs order (`ipvs_nl_fill_dest_attr` in
    /// ipvsadm 1.31): ADDR_FAMILY, ADDR (16 bytes), PORT, FWD_METHOD,
    /// WEIGHT, TUN_TYPE, TUN_PORT, TUN_FLAGS, U_THRESH, L_THRESH.
    pub fn to_attrs(&self) -> Vec<DestAttr> {
        vec![
            DestAttr::AddrFamily(AddressFamily::of(&self.addr)),
            DestAttr::Addr(encode_addr(&self.addr)),
            DestAttr::Port(self.port),
            DestAttr::FwdMethod(self.forward),
            DestAttr::Weight(self.weight),
            DestAttr::TunType(self.tun_type),
            DestAttr::TunPort(self.tun_port),
            DestAttr::TunFlags(self.tun_flags),
            DestAttr::UThresh(self.upper_threshold),
            DestAttr::LThresh(self.lower_threshold),
        ]
    }
}

/// The `GET_INFO` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// `IP_VS_VERSION_CODE`, `0x010201` for 1.2.1.
    pub version: u32,
    pub conn_tab_size: u32,
}

impl Info {
    /// `(major, minor, patch)` of [`Info::version`].
    pub fn version_triple(&self) -> (u8, u8, u8) {
        let [_, major, minor, patch] = self.version.to_be_bytes();
        (major, minor, patch)
    }
}

/// Connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`).
/// In `SET_CONFIG`, 0 leaves a value unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}
