//! The addresses a service is reached on from outside the cluster network:
//! node ports, externalIPs and load-balancer IPs (with their source
//! ranges), and its health-check node port.

use std::net::IpAddr;

use ipnet::IpNet;
use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::Protocol;

use crate::{
    contributions::entangle,
    desired::{ip_port, AddressKind, Builder, HealthCheck},
    k8s,
    key::IpFamily,
    names::{ServiceId, ServicePortName},
    service_ports::ServiceView,
    sets::{SetId, SetRole},
    targets::PortTargets,
};

impl Builder<'_> {
    /// Node ports: a virtual service per node address (never bound to
    /// `kube-ipvs0`), and the port in the node-port sets, which mark the
    /// traffic for masquerade unless the policy is Local.
    pub(crate) fn add_node_ports(&mut self, view: &ServiceView, t: &PortTargets) {
        let Some(node_port) = t.port.node_port else {
            return;
        };
        let addresses: Vec<IpAddr> = self
            .node_port_ips
            .iter()
            .copied()
            .filter(|ip| IpFamily::of(ip) == t.family)
            .collect();
        let local = view.external_local;
        let mut served = false;
        for addr in addresses {
            if !self.add_virtual_service(
                view,
                t,
                AddressKind::NodePort,
                addr,
                node_port,
                &t.external,
            ) {
                continue;
            }
            served = true;
            let proto = k8s::ip_proto(t.port.protocol);
            self.add_entry(
                SetRole::NodePortIps,
                t,
                Entry::ip_port(addr, proto, node_port),
            );
            // A bitmap:port cannot tell SCTP from TCP: SCTP node ports are
            // listed per node address in hash:ip,port sets instead.
            if t.port.protocol == Protocol::Sctp {
                let entry = Entry::ip_port(addr, k8s::ip_proto(Protocol::Sctp), node_port);
                self.add_entry(SetRole::NodePortSctp, t, entry.clone());
                if local {
                    self.add_entry(SetRole::NodePortLocalSctp, t, entry);
                }
            }
        }
        let (all, only_local) = match t.port.protocol {
            Protocol::Tcp => (SetRole::NodePortTcp, SetRole::NodePortLocalTcp),
            Protocol::Udp => (SetRole::NodePortUdp, SetRole::NodePortLocalUdp),
            _ => return,
        };
        if served {
            self.add_entry(all, t, Entry::port(node_port));
            if local {
                self.add_entry(only_local, t, Entry::port(node_port));
            }
        }
    }

    pub(crate) fn add_external_ips(&mut self, view: &ServiceView, t: &PortTargets) {
        let role = if view.external_local {
            SetRole::ExternalIpLocal
        } else {
            SetRole::ExternalIp
        };
        for &ip in view
            .external_ips
            .iter()
            .filter(|ip| IpFamily::of(ip) == t.family)
        {
            if self.add_virtual_service(
                view,
                t,
                AddressKind::ExternalIp,
                ip,
                t.port.port,
                &t.external,
            ) {
                self.add_entry(role, t, ip_port(ip, t.port));
                self.bind_unless_local(ip, &t.owner);
            }
        }
    }

    pub(crate) fn add_load_balancer_ips(&mut self, view: &ServiceView, t: &PortTargets) {
        for &ip in view
            .load_balancer_ips
            .iter()
            .filter(|ip| IpFamily::of(ip) == t.family)
        {
            if !self.add_virtual_service(
                view,
                t,
                AddressKind::LoadBalancer,
                ip,
                t.port.port,
                &t.external,
            ) {
                continue;
            }
            self.add_entry(SetRole::LoadBalancer, t, ip_port(ip, t.port));
            if view.external_local {
                self.add_entry(SetRole::LoadBalancerLocal, t, ip_port(ip, t.port));
            }
            if let Some(ranges) = &view.source_ranges {
                self.add_source_ranges(t, ip, ranges);
            }
            self.bind_unless_local(ip, &t.owner);
        }
    }

    /// `loadBalancerSourceRanges` for one LB address: the address is
    /// firewalled (`KUBE-LOAD-BALANCER-FW`) and only the ranges of its
    /// family may pass. With no valid range of its family nothing passes:
    /// the owner asked for a restriction, so failing closed is the safe
    /// reading of a range list we cannot use.
    fn add_source_ranges(&mut self, t: &PortTargets, ip: IpAddr, ranges: &[IpNet]) {
        let proto = k8s::ip_proto(t.port.protocol);
        self.add_entry(SetRole::LoadBalancerFw, t, ip_port(ip, t.port));
        let mut covers_node = false;
        for range in ranges
            .iter()
            .filter(|r| IpFamily::of(&r.addr()) == t.family)
        {
            let entry =
                Entry::ip_port_net(ip, proto, t.port.port, range.network(), range.prefix_len());
            self.add_entry(SetRole::LoadBalancerSourceCidr, t, entry);
            covers_node |= self
                .config
                .local_addresses
                .iter()
                .any(|a| range.contains(a));
        }
        if covers_node {
            // The node reaches its own LB address from that address.
            let entry = Entry::ip_port_ip(ip, proto, t.port.port, ip);
            self.add_entry(SetRole::LoadBalancerSourceIp, t, entry);
        }
    }

    pub(crate) fn add_health_check(&mut self, view: &ServiceView, local_endpoints: usize) {
        let Some(port) = view.health_check_node_port else {
            return;
        };
        if let Some(existing) = self.health_checks.get(&port) {
            let first = ServiceId::new(existing.namespace.as_str(), existing.name.as_str());
            let reason = format!("healthCheckNodePort {port} is already used by {first}");
            self.warn(view, reason);
            entangle(&mut self.contributions, &first, &view.id());
            return;
        }
        self.contribution(view).health_checks.insert(port);
        self.health_checks.insert(
            port,
            HealthCheck {
                namespace: view.namespace.to_string(),
                name: view.name.to_string(),
                local_endpoints,
            },
        );
        let owner = ServicePortName::new(view.namespace.clone(), view.name.clone(), "");
        for family in view.families() {
            let entry = Entry::port(port).with_comment(owner.comment());
            let set = SetId::new(SetRole::HealthCheckNodePort, family);
            self.add_owned_entry(set, entry, &owner);
        }
    }
}
