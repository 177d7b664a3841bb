//! Series read when scraped rather than recorded: the netlink message
//! counters, and the IPVS counters of each virtual service.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use kipvs_netlink::{Counters, CountersSnapshot};
use kipvs_packet_ipvs::{Service, Stats};
use kipvs_planner::{AddressKind, VirtualServiceKey};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, MetricType},
};
use tokio::time::Instant;

use crate::sync_summary::Owners;

/// `kube_ipvs_netlink_messages_total{family,kind,direction}` and
/// `kube_ipvs_netlink_sendmsg_total{family}`, the sum of several
/// [`Counters`] (the sync loop's, the metrics server's own).
#[derive(Debug)]
pub(super) struct NetlinkMessages {
    counters: Vec<Counters>,
}

impl NetlinkMessages {
    pub fn new(counters: Vec<Counters>) -> Self {
        NetlinkMessages { counters }
    }

    fn sum(&self) -> CountersSnapshot {
        let mut sum = CountersSnapshot::default();
        for counters in &self.counters {
            let counts = counters.snapshot();
            for (key, count) in counts.messages {
                let total = sum.messages.entry(key).or_default();
                total.sent = total.sent.saturating_add(count.sent);
                total.received = total.received.saturating_add(count.received);
            }
            for (family, calls) in counts.sendmsg {
                let total = sum.sendmsg.entry(family).or_default();
                *total = total.saturating_add(calls);
            }
        }
        sum
    }
}

impl Collector for NetlinkMessages {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.sum();
        let mut messages = encoder.encode_descriptor(
            "kube_ipvs_netlink_messages",
            "Netlink messages sent to and received from the kernel, by family and message kind",
            None,
            MetricType::Counter,
        )?;
        for ((family, kind), count) in &counts.messages {
            for (direction, value) in [("sent", count.sent), ("received", count.received)] {
                let labels = [
                    ("family", family.name()),
                    ("kind", kind),
                    ("direction", direction),
                ];
                ConstCounter::new(value).encode(messages.encode_family(&labels)?)?;
            }
        }
        let mut calls = encoder.encode_descriptor(
            "kube_ipvs_netlink_sendmsg",
            "sendmsg calls per netlink family (several messages go in one when pipelined)",
            None,
            MetricType::Counter,
        )?;
        for (family, value) in &counts.sendmsg {
            let labels = [("family", family.name())];
            ConstCounter::new(*value).encode(calls.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The IPVS counters of kube-ipvs's virtual services, as last read from
/// the kernel, summed per service port and kind of address (a node port
/// has a virtual service per node address).
#[derive(Debug, Default)]
pub(super) struct VirtualServiceStats {
    state: Mutex<StatsState>,
}

#[derive(Debug, Default)]
struct StatsState {
    owners: Arc<Owners>,
    services: Vec<Service>,
    read_at: Option<Instant>,
}

/// namespace, name, port name, protocol, kind of address.
type StatsKey = (String, String, String, String, &'static str);

impl VirtualServiceStats {
    pub fn set_owners(&self, owners: Arc<Owners>) {
        self.lock().owners = owners;
    }

    pub fn set_services(&self, services: Vec<Service>, read_at: Instant) {
        let mut state = self.lock();
        state.services = services;
        state.read_at = Some(read_at);
    }

    pub fn read_at(&self) -> Option<Instant> {
        self.lock().read_at
    }

    fn lock(&self) -> MutexGuard<'_, StatsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sums per service port; virtual services without an owner
    /// (another program's, or gone from the cluster) are left out.
    fn sums(&self) -> BTreeMap<StatsKey, Stats> {
        let state = self.lock();
        let mut sums: BTreeMap<StatsKey, Stats> = BTreeMap::new();
        for service in &state.services {
            let key = VirtualServiceKey(service.key);
            let (Some((owner, kind)), Some(stats)) = (state.owners.get(&key), &service.stats)
            else {
                continue;
            };
            let protocol = match service.key {
                kipvs_packet_ipvs::ServiceKey::Tuple { protocol, .. } => {
                    protocol.to_string().to_uppercase()
                }
                kipvs_packet_ipvs::ServiceKey::Fwmark { .. } => continue,
            };
            let sum = sums
                .entry((
                    owner.namespace.to_string(),
                    owner.name.to_string(),
                    owner.port.to_string(),
                    protocol,
                    kind_label(*kind),
                ))
                .or_default();
            sum.conns = sum.conns.saturating_add(stats.conns);
            sum.inpkts = sum.inpkts.saturating_add(stats.inpkts);
            sum.outpkts = sum.outpkts.saturating_add(stats.outpkts);
            sum.inbytes = sum.inbytes.saturating_add(stats.inbytes);
            sum.outbytes = sum.outbytes.saturating_add(stats.outbytes);
        }
        sums
    }
}

fn kind_label(kind: AddressKind) -> &'static str {
    match kind {
        AddressKind::ClusterIp => "cluster_ip",
        AddressKind::NodePort => "node_port",
        AddressKind::ExternalIp => "external_ip",
        AddressKind::LoadBalancer => "load_balancer",
    }
}

/// One per-service-port series: name, help, and the values by direction
/// (`None`: no direction label).
type Series = (
    &'static str,
    &'static str,
    &'static [(Option<&'static str>, fn(&Stats) -> u64)],
);

const SERIES: [Series; 3] = [
    (
        "kube_ipvs_virtual_service_connections",
        "Connections scheduled by the service port's IPVS virtual services",
        &[(None, |s| s.conns)],
    ),
    (
        "kube_ipvs_virtual_service_packets",
        "Packets through the service port's IPVS virtual services",
        &[(Some("in"), |s| s.inpkts), (Some("out"), |s| s.outpkts)],
    ),
    (
        "kube_ipvs_virtual_service_bytes",
        "Bytes through the service port's IPVS virtual services",
        &[(Some("in"), |s| s.inbytes), (Some("out"), |s| s.outbytes)],
    ),
];

impl Collector for VirtualServiceStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sums = self.sums();
        for (name, help, values) in SERIES {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (direction, value) in values {
                for ((namespace, service, port, protocol, kind), stats) in &sums {
                    let mut labels = vec![
                        ("namespace", namespace.as_str()),
                        ("name", service.as_str()),
                        ("port", port.as_str()),
                        ("protocol", protocol.as_str()),
                        ("kind", kind),
                    ];
                    if let Some(direction) = direction {
                        labels.push(("direction", direction));
                    }
                    ConstCounter::new(value(stats)).encode(metric.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}
