//! Request builders that emit what ipvsadm 1.31 (libipvs over libnl)
//! emits for the same operation, so golden captures of the real tool are
//! our byte-level oracle.
//!
//! The netlink header flags are the caller's business: mutations want
//! `NLM_F_REQUEST | NLM_F_ACK`, `dump_services`/`dump_dests` want
//! `NLM_F_DUMP` (see [`IpvsMessage::is_dump_request`]).

use std::net::IpAddr;

use crate::{
    cmd::IpvsCmd,
    cmd_attr::IpvsCmdAttr,
    flags::{IpvsFlags, ServiceFlags},
    forward::ForwardMethod,
    message::IpvsMessage,
    model::{Destination, Service, ServiceKey, Timeouts},
    nest::Nest,
    service_attr::SvcAttr,
};

/// The SERVICE nest ipvsadm sends when only the key matters (delete,
/// zero, destination commands): libipvs always writes the whole
/// `ipvs_service_t` (`ipvs_nl_fill_service_attr`), so the unset fields
/// travel as an empty scheduler, flags 0 with mask `~0`, timeout 0 and
/// `netmask` (ipvsadm's command-line default, or 0 from a zeroed entry).
fn key_only_service(key: &ServiceKey, netmask: u32) -> IpvsCmdAttr {
    let mut attrs = key.to_attrs();
    attrs.push(SvcAttr::SchedName(String::new()));
    attrs.push(SvcAttr::Flags(IpvsFlags::all(ServiceFlags::EMPTY)));
    attrs.push(SvcAttr::Timeout(0));
    attrs.push(SvcAttr::Netmask(netmask));
    IpvsCmdAttr::Service(Nest::flagged(attrs))
}

/// A key-only entry as ipvsadm's command line builds it.
fn cli_service(key: &ServiceKey) -> IpvsCmdAttr {
    key_only_service(key, key.default_netmask())
}

fn full_service(service: &Service) -> IpvsCmdAttr {
    IpvsCmdAttr::Service(Nest::flagged(service.to_attrs()))
}

fn dest(dest: &Destination) -> IpvsCmdAttr {
    IpvsCmdAttr::Dest(Nest::flagged(dest.to_attrs()))
}

impl IpvsMessage {
    /// Add a virtual service; `ipvsadm -A -t addr:port -s sched …`.
    ///
    /// The kernel wants SCHED_NAME, FLAGS, TIMEOUT and NETMASK on NEW/SET
    /// (-EINVAL otherwise), so all are always sent; [`Service::new`] fills
    /// the netmask with 0xffffffff for IPv4 and 128 (a prefix length) for
    /// IPv6.
    pub fn new_service(service: &Service) -> Self {
        Self::new(IpvsCmd::NewService, vec![full_service(service)])
    }

    /// Replace a service's settings; `ipvsadm -E …`.
    pub fn set_service(service: &Service) -> Self {
        Self::new(IpvsCmd::SetService, vec![full_service(service)])
    }

    /// Delete a service and its destinations; `ipvsadm -D -t addr:port`.
    pub fn del_service(key: &ServiceKey) -> Self {
        Self::new(IpvsCmd::DelService, vec![cli_service(key)])
    }

    /// Read one service (doit; the reply command is NEW_SERVICE);
    /// `ipvsadm -L -t addr:port` starts with this.
    ///
    /// libipvs `ipvs_get_service` fills a zeroed entry with just the key, so
    /// the netmask travels as 0 (the kernel ignores it for lookups).
    pub fn get_service(key: &ServiceKey) -> Self {
        Self::new(IpvsCmd::GetService, vec![key_only_service(key, 0)])
    }

    /// Dump all services (send with `NLM_F_DUMP`); `ipvsadm -L`.
    pub fn dump_services() -> Self {
        Self::new(IpvsCmd::GetService, vec![])
    }

    /// Add a real server; `ipvsadm -a -t addr:port -r raddr:rport -m -w N`.
    pub fn new_dest(key: &ServiceKey, destination: &Destination) -> Self {
        Self::new(IpvsCmd::NewDest, vec![cli_service(key), dest(destination)])
    }

    /// Change a real server's settings; `ipvsadm -e …`.
    pub fn set_dest(key: &ServiceKey, destination: &Destination) -> Self {
        Self::new(IpvsCmd::SetDest, vec![cli_service(key), dest(destination)])
    }

    /// Remove a real server; `ipvsadm -d -t addr:port -r raddr:rport`.
    ///
    /// The kernel only reads ADDR and PORT here, but ipvsadm still sends a
    /// whole entry with its defaults (direct routing, weight 1), and so do we.
    pub fn del_dest(key: &ServiceKey, addr: IpAddr, port: u16) -> Self {
        let mut target = Destination::new(addr, port);
        target.forward = ForwardMethod::DirectRoute;
        Self::new(IpvsCmd::DelDest, vec![cli_service(key), dest(&target)])
    }

    /// Dump a service's real servers (send with `NLM_F_DUMP`; GET_DEST has
    /// no doit handler).
    ///
    /// Unlike the other commands, libipvs `ipvs_get_dests` writes only AF
    /// and the key into the SERVICE nest.
    pub fn dump_dests(key: &ServiceKey) -> Self {
        Self::new(
            IpvsCmd::GetDest,
            vec![IpvsCmdAttr::Service(Nest::flagged(key.to_attrs()))],
        )
    }

    /// Version and connection table size; the reply command is SET_INFO.
    pub fn get_info() -> Self {
        Self::new(IpvsCmd::GetInfo, vec![])
    }

    /// Connection timeouts; `ipvsadm -L --timeout`. Reply command SET_CONFIG.
    pub fn get_config() -> Self {
        Self::new(IpvsCmd::GetConfig, vec![])
    }

    /// Set connection timeouts; `ipvsadm --set tcp tcpfin udp`.
    pub fn set_config(timeouts: &Timeouts) -> Self {
        Self::new(
            IpvsCmd::SetConfig,
            vec![
                IpvsCmdAttr::TimeoutTcp(timeouts.tcp),
                IpvsCmdAttr::TimeoutTcpFin(timeouts.tcp_fin),
                IpvsCmdAttr::TimeoutUdp(timeouts.udp),
            ],
        )
    }

    /// Zero the counters of one service, or of everything;
    /// `ipvsadm -Z [-t addr:port]`.
    pub fn zero(key: Option<&ServiceKey>) -> Self {
        Self::new(IpvsCmd::Zero, key.map(cli_service).into_iter().collect())
    }

    /// Remove every service and destination; `ipvsadm -C`.
    pub fn flush() -> Self {
        Self::new(IpvsCmd::Flush, vec![])
    }

    /// Whether this request only works as a dump (`NLM_F_DUMP`): a service
    /// list (GET_SERVICE without a key), GET_DEST and GET_DAEMON.
    pub fn is_dump_request(&self) -> bool {
        match self.cmd {
            IpvsCmd::GetDest | IpvsCmd::GetDaemon => true,
            IpvsCmd::GetService => !self.attrs.iter().any(|attr| match attr {
                IpvsCmdAttr::Service(nest) => !nest.attrs.is_empty(),
                _ => false,
            }),
            _ => false,
        }
    }
}
