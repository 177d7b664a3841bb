//! `kube-ipvs list`: the table `ipvsadm -Ln` prints, with the service port
//! each virtual service serves. Read-only, over netlink, without the API:
//! the owner of a virtual service is the comment (`namespace/name:port`)
//! of its entry in the set that claims it (`KUBE-CLUSTER-IP`,
//! `KUBE-EXTERNAL-IP(-LOCAL)`, `KUBE-LOAD-BALANCER`, `KUBE-NODE-PORT-IPS`).
//! Real servers are shown by address: which pod has an address is only
//! known to the API, and no set of ours names pods.

use std::{collections::BTreeMap, fmt::Write, net::SocketAddr};

use kipvs_netlink::{Counters, Ipset, Ipvs};
use kipvs_packet_ipset::SetInfo;
use kipvs_packet_ipvs::{Destination, Service, ServiceFlags, ServiceKey};
use kipvs_planner::{SetId, SetRole, VirtualServiceKey};
use serde_json::{json, Value};

use crate::{kernel::StepError, RuntimeError};

/// One virtual service as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedService {
    pub service: Service,
    pub real_servers: Vec<Destination>,
    /// `namespace/name:port`, from the claiming entry's comment.
    pub owner: Option<String>,
    /// The kind of address, from the set that claims it.
    pub kind: Option<&'static str>,
}

/// Every virtual service of the kernel, kube-ipvs's with their owners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub services: Vec<ListedService>,
}

/// Reads the listing from the kernel of this network namespace: one set
/// dump, one service dump, one real-server dump per virtual service.
pub async fn read_listing(counters: Counters) -> Result<Listing, RuntimeError> {
    let mut ipset = Ipset::open(counters.clone())?;
    let sets = ipset.list_all().await?;
    let mut ipvs = Ipvs::open(counters).await?;
    let services = ipvs.services().await?;
    let keys: Vec<ServiceKey> = services.iter().map(|s| s.key).collect();
    let mut with_dests = Vec::with_capacity(services.len());
    for (service, dests) in services.into_iter().zip(ipvs.destinations_of(&keys).await) {
        with_dests.push((service, dests.map_err(StepError::from)?));
    }
    Ok(Listing::of(&sets, with_dests))
}

impl Listing {
    /// The listing of `services` with owners from `sets` (ours by name,
    /// others ignored), in the planner's key order.
    pub fn of(sets: &[SetInfo], services: Vec<(Service, Vec<Destination>)>) -> Listing {
        let mut owners: BTreeMap<VirtualServiceKey, (Option<String>, &'static str)> =
            BTreeMap::new();
        for set in sets {
            let Some(id) = SetId::from_name(&set.name) else {
                continue;
            };
            let Some(kind) = kind_of(id.role) else {
                continue;
            };
            for entry in &set.entries {
                let (Some(ip), Some(proto), Some(port)) = (entry.ip, entry.proto, entry.port)
                else {
                    continue;
                };
                let key = VirtualServiceKey::tuple(ip, u16::from(proto).into(), port);
                owners.entry(key).or_insert((entry.comment.clone(), kind));
            }
        }
        let mut services: Vec<ListedService> = services
            .into_iter()
            .map(|(service, mut real_servers)| {
                real_servers.sort_by_key(|d| (d.addr, d.port));
                let owner = owners.get(&VirtualServiceKey(service.key));
                ListedService {
                    owner: owner.and_then(|(comment, _)| comment.clone()),
                    kind: owner.map(|(_, kind)| *kind),
                    service,
                    real_servers,
                }
            })
            .collect();
        services.sort_by_key(|s| VirtualServiceKey(s.service.key));
        Listing { services }
    }

    /// As `ipvsadm -Ln`, each virtual service followed by its owner and
    /// the kind of address.
    pub fn table(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "Prot LocalAddress:Port Scheduler Flags  Service (kind)"
        );
        let _ = writeln!(
            text,
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
        );
        for listed in &self.services {
            let service = &listed.service;
            let mut line = format!("{} {}", service_column(&service.key), service.scheduler);
            if let Some(flags) = flags(service) {
                line.push(' ');
                line.push_str(&flags);
            }
            match (&listed.owner, listed.kind) {
                (Some(owner), Some(kind)) => {
                    let _ = write!(line, "  {owner} ({kind})");
                }
                (None, Some(kind)) => {
                    let _ = write!(line, "  - ({kind})");
                }
                _ => line.push_str("  -"),
            }
            let _ = writeln!(text, "{line}");
            for dest in &listed.real_servers {
                let _ = writeln!(
                    text,
                    "  -> {:<28} {:<7} {:<6} {:<10} {}",
                    SocketAddr::new(dest.addr, dest.port),
                    forward(dest),
                    dest.weight,
                    dest.active_conns,
                    dest.inactive_conns
                );
            }
        }
        text
    }

    /// The same as JSON: `{"virtualServices": [...]}`.
    pub fn json(&self) -> Value {
        let services: Vec<Value> = self
            .services
            .iter()
            .map(|listed| {
                let service = &listed.service;
                let (protocol, address) = match service.key {
                    ServiceKey::Tuple {
                        addr,
                        protocol,
                        port,
                    } => (
                        protocol.to_string().to_uppercase(),
                        SocketAddr::new(addr, port).to_string(),
                    ),
                    ServiceKey::Fwmark { mark, .. } => ("FWM".to_owned(), mark.to_string()),
                };
                let real_servers: Vec<Value> = listed
                    .real_servers
                    .iter()
                    .map(|d| {
                        json!({
                            "address": SocketAddr::new(d.addr, d.port).to_string(),
                            "forward": forward(d),
                            "weight": d.weight,
                            "activeConnections": d.active_conns,
                            "inactiveConnections": d.inactive_conns,
                        })
                    })
                    .collect();
                json!({
                    "protocol": protocol,
                    "address": address,
                    "scheduler": service.scheduler,
                    "flags": flags(service),
                    "service": listed.owner,
                    "kind": listed.kind,
                    "realServers": real_servers,
                })
            })
            .collect();
        json!({ "virtualServices": services })
    }
}

/// The kind of address a claiming set holds.
fn kind_of(role: SetRole) -> Option<&'static str> {
    match role {
        SetRole::ClusterIp => Some("ClusterIP"),
        SetRole::ExternalIp | SetRole::ExternalIpLocal => Some("ExternalIP"),
        SetRole::LoadBalancer => Some("LoadBalancer"),
        SetRole::NodePortIps => Some("NodePort"),
        _ => None,
    }
}

/// `TCP  10.96.0.10:80` as ipvsadm prints it.
fn service_column(key: &ServiceKey) -> String {
    match *key {
        ServiceKey::Tuple {
            addr,
            protocol,
            port,
        } => format!(
            "{:<4} {}",
            protocol.to_string().to_uppercase(),
            SocketAddr::new(addr, port)
        ),
        ServiceKey::Fwmark { mark, .. } => format!("FWM  {mark}"),
    }
}

/// `persistent 10800`, as ipvsadm prints it.
fn flags(service: &Service) -> Option<String> {
    let persistent = service.flags.0 & ServiceFlags::PERSISTENT.0 != 0;
    persistent.then(|| format!("persistent {}", service.timeout))
}

/// ipvsadm's names: `Masq`, `Route`, `Tunnel`, `Local`.
fn forward(dest: &Destination) -> String {
    let name = dest.forward.to_string();
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use kipvs_packet_ipset::{Entry, SetInfo};
    use kipvs_packet_ipvs::Protocol;

    use super::*;

    fn set(name: &str, entries: Vec<Entry>) -> SetInfo {
        SetInfo {
            name: name.to_owned(),
            entries,
            ..SetInfo::default()
        }
    }

    fn dest(addr: &str, active: u32) -> Destination {
        let mut dest = Destination::new(addr.parse().unwrap(), 8080);
        dest.weight = 1;
        dest.active_conns = active;
        dest
    }

    fn listing() -> Listing {
        let web = VirtualServiceKey::tuple("10.96.0.10".parse().unwrap(), Protocol::Tcp, 80);
        let node_port =
            VirtualServiceKey::tuple("192.168.1.5".parse().unwrap(), Protocol::Tcp, 30080);
        let foreign = VirtualServiceKey::tuple("10.1.1.1".parse().unwrap(), Protocol::Udp, 53);
        let sets = vec![
            set(
                "KUBE-CLUSTER-IP",
                vec![Entry::ip_port("10.96.0.10".parse().unwrap(), 6, 80)
                    .with_comment("default/web:http".to_owned())],
            ),
            set(
                "KUBE-NODE-PORT-IPS",
                vec![Entry::ip_port("192.168.1.5".parse().unwrap(), 6, 30080)
                    .with_comment("default/web:http".to_owned())],
            ),
            // Not ours: ignored.
            set(
                "OTHER",
                vec![Entry::ip_port("10.1.1.1".parse().unwrap(), 17, 53)
                    .with_comment("kube-system/dns:dns".to_owned())],
            ),
        ];
        let mut persistent = Service::new(web.key(), "rr");
        persistent.flags = ServiceFlags::PERSISTENT;
        persistent.timeout = 10800;
        Listing::of(
            &sets,
            vec![
                (
                    Service::new(node_port.key(), "rr"),
                    vec![dest("10.244.2.1", 0)],
                ),
                (Service::new(foreign.key(), "wrr"), Vec::new()),
                (
                    persistent,
                    vec![dest("10.244.2.2", 0), dest("10.244.2.1", 3)],
                ),
            ],
        )
    }

    #[test]
    fn the_table_is_ipvsadms_with_owners() {
        assert_eq!(
            listing().table(),
            "\
Prot LocalAddress:Port Scheduler Flags  Service (kind)
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  10.1.1.1:53 wrr  -
TCP  10.96.0.10:80 rr persistent 10800  default/web:http (ClusterIP)
  -> 10.244.2.1:8080              Masq    1      3          0
  -> 10.244.2.2:8080              Masq    1      0          0
TCP  192.168.1.5:30080 rr  default/web:http (NodePort)
  -> 10.244.2.1:8080              Masq    1      0          0
"
        );
    }

    #[test]
    fn the_json_has_the_same_content() {
        let json = listing().json();
        let services = json["virtualServices"].as_array().unwrap();
        assert_eq!(services.len(), 3);
        // Another program's virtual service: listed, no owner.
        assert_eq!(services[0]["service"], Value::Null);
        assert_eq!(services[0]["protocol"], "UDP");
        assert_eq!(services[1]["service"], "default/web:http");
        assert_eq!(services[1]["kind"], "ClusterIP");
        assert_eq!(services[1]["address"], "10.96.0.10:80");
        assert_eq!(services[1]["protocol"], "TCP");
        assert_eq!(services[1]["flags"], "persistent 10800");
        assert_eq!(services[1]["realServers"][0]["address"], "10.244.2.1:8080");
        assert_eq!(services[1]["realServers"][0]["activeConnections"], 3);
        assert_eq!(services[2]["kind"], "NodePort");
    }
}
