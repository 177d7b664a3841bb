//! The nf_tables table `kube-ipvs` of one family, as a spec.
//!
//! Rules test ipset membership with the xt `set` match, which names a set
//! by its kernel index, and an index only exists once the set does. So
//! [`crate::desired`] stores the table with sets named ([`RulePart::SetMatch`])
//! and [`crate::plan`] renders it with [`crate::Observed::set_indexes`]
//! ([`DesiredTable::render`]). This keeps `desired()` independent of
//! kernel state, and a set recreated under a new index shows up as a
//! changed table, which is then replaced.

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, Ipv6Addr},
};

use ipnet::IpNet;
use kipvs_packet_nftables::{
    build::ChainType,
    expr::NF_CT_STATE_ESTABLISHED_BIT,
    expr::{NF_CT_STATE_NEW_BIT, NF_CT_STATE_RELATED_BIT},
    exprs::{
        accept, ct_state_in, drop, fib_daddr_type_local, goto, jump, mark_and_eq, mark_set_or,
        masquerade, meta_l4proto, reject, ret, saddr_in_cidr, xt_set_match,
    },
    xt_set::SetDir,
    Expr, NfHook, NfProto,
};

use kipvs_packet_ipvs::Protocol;

use crate::{
    config::NodeConfig,
    k8s::ip_proto,
    key::IpFamily,
    rendered::{ChainHook, RenderedChain, RenderedRule, RenderedTable},
    sets::{SetId, SetRole},
};

/// The table's name in both families.
pub const TABLE_NAME: &str = "kube-ipvs";
/// kube-proxy's masquerade mark (`--masquerade-bit 14`).
pub const MASQ_MARK: u32 = 0x4000;

const SERVICES: &str = "services";
const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";
const LOAD_BALANCER: &str = "load-balancer";
const NODE_PORT: &str = "node-port";
const SOURCE_RANGES: &str = "source-ranges";
/// Before IPVS in LOCAL_OUT: the node's own connections to LB addresses.
const FILTER_OUTPUT: &str = "filter-output";
const IPVS_FILTER: &str = "ipvs-filter";

/// Part of a rule: fixed expressions, or an ipset match to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulePart {
    Exprs(Vec<Expr>),
    /// `-m set [!] --match-set <set> <dirs>`.
    SetMatch {
        set: SetId,
        dirs: Vec<SetDir>,
        inverted: bool,
    },
}

/// A rule appended to `chain`: its parts, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRule {
    pub chain: String,
    pub parts: Vec<RulePart>,
}

/// A rule references a set the kernel has not (yet) given an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSetIndex(pub SetId);

impl fmt::Display for MissingSetIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no kernel index for ipset {}", self.0)
    }
}

/// The table `kube-ipvs` of one family: chains in creation order, rules in
/// append order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTable {
    pub family: IpFamily,
    pub chains: Vec<RenderedChain>,
    pub rules: Vec<TableRule>,
}

/// Builds the rules of one family's table.
struct Rules {
    family: IpFamily,
    rules: Vec<TableRule>,
}

impl Rules {
    fn add(&mut self, chain: &str, parts: Vec<RulePart>) {
        self.rules.push(TableRule {
            chain: chain.to_owned(),
            parts,
        });
    }

    /// `-m set --match-set <role's set of this family> <dirs>`.
    fn set(&self, role: SetRole, dirs: &[SetDir]) -> RulePart {
        set_match(SetId::new(role, self.family), dirs, false)
    }
}

fn set_match(set: SetId, dirs: &[SetDir], inverted: bool) -> RulePart {
    RulePart::SetMatch {
        set,
        dirs: dirs.to_vec(),
        inverted,
    }
}

fn exprs(exprs: Vec<Expr>) -> RulePart {
    RulePart::Exprs(exprs)
}

const DST: &[SetDir] = &[SetDir::Dst];
const DST_DST: &[SetDir] = &[SetDir::Dst, SetDir::Dst];
const DST_DST_SRC: &[SetDir] = &[SetDir::Dst, SetDir::Dst, SetDir::Src];

impl DesiredTable {
    /// The table for `family` under `config`: kube-proxy's IPVS-mode
    /// iptables rules (§2.2 of the reference: KUBE-SERVICES,
    /// KUBE-LOAD-BALANCER, KUBE-NODE-PORT, KUBE-MARK-MASQ, KUBE-POSTROUTING,
    /// KUBE-PROXY-FIREWALL, KUBE-SOURCE-RANGES-FIREWALL, KUBE-IPVS-FILTER,
    /// KUBE-FORWARD) as chains of one table owned by kube-ipvs.
    pub fn for_family(family: IpFamily, config: &NodeConfig) -> Self {
        let mut r = Rules {
            family,
            rules: Vec::new(),
        };
        services_rules(&mut r, config);
        load_balancer_rules(&mut r);
        node_port_rules(&mut r);
        r.add(MARK_FOR_MASQUERADE, vec![exprs(mark_set_or(MASQ_MARK))]);
        r.add("nat-prerouting", vec![exprs(vec![jump(SERVICES)])]);
        r.add("nat-output", vec![exprs(vec![jump(SERVICES)])]);
        // Hairpin: a pod reaching itself through a service.
        r.add(
            "nat-postrouting",
            vec![
                r.set(SetRole::LoopBack, DST_DST_SRC),
                exprs(vec![masquerade(false)]),
            ],
        );
        r.add(
            "nat-postrouting",
            vec![exprs(
                [mark_and_eq(MASQ_MARK, MASQ_MARK), vec![masquerade(true)]].concat(),
            )],
        );
        filter_rules(&mut r);
        r.add(
            "filter-forward",
            vec![exprs(
                [
                    ct_state_in(NF_CT_STATE_ESTABLISHED_BIT | NF_CT_STATE_RELATED_BIT),
                    vec![accept()],
                ]
                .concat(),
            )],
        );
        r.add(
            "filter-forward",
            vec![exprs(
                [mark_and_eq(MASQ_MARK, MASQ_MARK), vec![accept()]].concat(),
            )],
        );

        let base = |name: &str, chain_type, hook, priority| RenderedChain {
            name: name.to_owned(),
            hook: Some(ChainHook {
                chain_type,
                hook,
                priority,
                policy: None,
            }),
        };
        let regular = |name: &str| RenderedChain {
            name: name.to_owned(),
            hook: None,
        };
        DesiredTable {
            family,
            chains: vec![
                regular(SERVICES),
                regular(MARK_FOR_MASQUERADE),
                regular(LOAD_BALANCER),
                regular(NODE_PORT),
                regular(SOURCE_RANGES),
                regular(IPVS_FILTER),
                base("nat-prerouting", ChainType::Nat, NfHook::PreRouting, -100),
                base("nat-output", ChainType::Nat, NfHook::LocalOut, -100),
                base("nat-postrouting", ChainType::Nat, NfHook::PostRouting, 100),
                base("filter-input", ChainType::Filter, NfHook::LocalIn, 0),
                base("filter-forward", ChainType::Filter, NfHook::Forward, 0),
                base(FILTER_OUTPUT, ChainType::Filter, NfHook::LocalOut, -110),
            ],
            rules: r.rules,
        }
    }

    pub fn nf_proto(&self) -> NfProto {
        self.family.nf_proto()
    }

    /// Every set a rule matches on.
    pub fn referenced_sets(&self) -> Vec<SetId> {
        let mut sets: Vec<SetId> = self
            .rules
            .iter()
            .flat_map(|rule| &rule.parts)
            .filter_map(|part| match part {
                RulePart::SetMatch { set, .. } => Some(*set),
                RulePart::Exprs(_) => None,
            })
            .collect();
        sets.sort_unstable();
        sets.dedup();
        sets
    }

    /// The table with set names resolved to kernel indexes.
    pub fn render(
        &self,
        set_indexes: &BTreeMap<SetId, u16>,
    ) -> Result<RenderedTable, MissingSetIndex> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for rule in &self.rules {
            let mut exprs = Vec::new();
            for part in &rule.parts {
                match part {
                    RulePart::Exprs(e) => exprs.extend(e.iter().cloned()),
                    RulePart::SetMatch {
                        set,
                        dirs,
                        inverted,
                    } => {
                        let index = set_indexes.get(set).ok_or(MissingSetIndex(*set))?;
                        exprs.push(xt_set_match(*index, dirs, *inverted));
                    }
                }
            }
            rules.push(RenderedRule {
                chain: rule.chain.clone(),
                exprs,
                userdata: None,
            });
        }
        Ok(RenderedTable {
            chains: self.chains.clone(),
            rules,
        })
    }
}

/// The `services` chain (jumped from prerouting and output): which
/// service traffic is marked for masquerade.
fn services_rules(r: &mut Rules, config: &NodeConfig) {
    // No node ports on localhost (as kube-proxy's IPVS mode): nothing from
    // a loopback source is marked.
    let loopback = match r.family {
        IpFamily::V4 => saddr_in_cidr(IpAddr::from([127, 0, 0, 0]), 8, false),
        IpFamily::V6 => saddr_in_cidr(IpAddr::from(Ipv6Addr::LOCALHOST), 128, false),
    };
    r.add(SERVICES, vec![exprs([loopback, vec![ret()]].concat())]);
    // `goto`, not `jump`: once the load-balancer chain has decided (the
    // Local return in particular), the rest of this chain must not mark
    // the packet after all, e.g. because its port number is also some
    // node port.
    let to_lb = r.set(SetRole::LoadBalancer, DST_DST);
    r.add(SERVICES, vec![to_lb, exprs(vec![goto(LOAD_BALANCER)])]);
    cluster_ip_rules(r, config);
    let to_external = r.set(SetRole::ExternalIp, DST_DST);
    r.add(
        SERVICES,
        vec![to_external, exprs(vec![jump(MARK_FOR_MASQUERADE)])],
    );
    // externalTrafficPolicy Local: never marked, not even by a node-port
    // rule for the same port number (kube-proxy ACCEPTs these here).
    let to_external_local = r.set(SetRole::ExternalIpLocal, DST_DST);
    r.add(SERVICES, vec![to_external_local, exprs(vec![ret()])]);
    // Cluster IPs are local addresses too (on kube-ipvs0): without this a
    // pod's traffic to a cluster IP whose port number happens to be some
    // node port would be marked by the node-port rules (bitmap sets hold
    // bare port numbers).
    let to_cluster_ip = r.set(SetRole::ClusterIp, DST_DST);
    r.add(SERVICES, vec![to_cluster_ip, exprs(vec![ret()])]);
    r.add(
        SERVICES,
        vec![exprs(
            [fib_daddr_type_local(), vec![goto(NODE_PORT)]].concat(),
        )],
    );
}

/// Cluster IPs: mark traffic to a cluster IP for masquerading.
///
/// One cluster CIDR per family (the usual case) is kube-proxy's rule,
/// `dst in KUBE-CLUSTER-IP, saddr != CIDR → mark`. With several CIDRs
/// one `!=` rule each would mark traffic from every CIDR but one, so
/// traffic from any of them returns first and the rest is marked.
fn cluster_ip_rules(r: &mut Rules, config: &NodeConfig) {
    let to_service = r.set(SetRole::ClusterIp, DST_DST);
    let rule = |more: Vec<Expr>| vec![to_service.clone(), exprs(more)];
    if config.masquerade_all {
        r.add(SERVICES, rule(vec![jump(MARK_FOR_MASQUERADE)]));
        return;
    }
    let cidrs: Vec<IpNet> = config
        .cluster_cidrs
        .iter()
        .filter(|cidr| IpFamily::of(&cidr.addr()) == r.family)
        .map(IpNet::trunc)
        .collect();
    let saddr = |cidr: &IpNet, negate| saddr_in_cidr(cidr.network(), cidr.prefix_len(), negate);
    match cidrs.as_slice() {
        [] => {}
        [cidr] => r.add(
            SERVICES,
            rule([saddr(cidr, true), vec![jump(MARK_FOR_MASQUERADE)]].concat()),
        ),
        several => {
            for cidr in several {
                r.add(SERVICES, rule([saddr(cidr, false), vec![ret()]].concat()));
            }
            r.add(SERVICES, rule(vec![jump(MARK_FOR_MASQUERADE)]));
        }
    }
}

/// `load-balancer`: LB traffic is masqueraded unless its service has
/// externalTrafficPolicy Local (the backend then sees the client).
fn load_balancer_rules(r: &mut Rules) {
    let local = r.set(SetRole::LoadBalancerLocal, DST_DST);
    r.add(LOAD_BALANCER, vec![local, exprs(vec![ret()])]);
    r.add(LOAD_BALANCER, vec![exprs(vec![jump(MARK_FOR_MASQUERADE)])]);
}

/// `node-port` (for traffic to a local address): node-port traffic is
/// masqueraded unless its service has externalTrafficPolicy Local; the
/// Local sets come first. TCP and UDP node ports are bitmap:port sets
/// (port only, hence the protocol test); SCTP ones are `nodeIP,sctp:port`.
fn node_port_rules(r: &mut Rules) {
    let by_protocol = [
        (
            Protocol::Tcp,
            SetRole::NodePortLocalTcp,
            SetRole::NodePortTcp,
            DST,
        ),
        (
            Protocol::Udp,
            SetRole::NodePortLocalUdp,
            SetRole::NodePortUdp,
            DST,
        ),
        (
            Protocol::Sctp,
            SetRole::NodePortLocalSctp,
            SetRole::NodePortSctp,
            DST_DST,
        ),
    ];
    for (protocol, local, all, dirs) in by_protocol {
        let proto = ip_proto(protocol);
        let (local, all) = (r.set(local, dirs), r.set(all, dirs));
        r.add(
            NODE_PORT,
            vec![exprs(meta_l4proto(proto)), local, exprs(vec![ret()])],
        );
        r.add(
            NODE_PORT,
            vec![
                exprs(meta_l4proto(proto)),
                all,
                exprs(vec![jump(MARK_FOR_MASQUERADE)]),
            ],
        );
    }
}

/// `filter-input`: load-balancer source ranges, and service IPs answer
/// only on their service ports.
fn filter_rules(r: &mut Rules) {
    // kube-proxy's KUBE-PROXY-FIREWALL / KUBE-SOURCE-RANGES-FIREWALL.
    let firewalled = r.set(SetRole::LoadBalancerFw, DST_DST);
    r.add(
        "filter-input",
        vec![firewalled, exprs(vec![jump(SOURCE_RANGES)])],
    );
    for allowed in [
        SetRole::LoadBalancerSourceCidr,
        SetRole::LoadBalancerSourceIp,
    ] {
        let allowed = r.set(allowed, DST_DST_SRC);
        r.add(SOURCE_RANGES, vec![allowed, exprs(vec![ret()])]);
    }
    r.add(SOURCE_RANGES, vec![exprs(vec![drop()])]);
    // The node's own connections to a firewalled LB address: IPVS takes
    // them in LOCAL_OUT (priority -98), so they never reach filter-input;
    // this chain sees them first, with the LB address still the
    // destination (kube-proxy's KUBE-IPVS-OUT-FILTER, kubernetes#119656,
    // without the `-m ipvs` match nf_tables lacks). The node connects from
    // the LB address itself, which KUBE-LOAD-BALANCER-SOURCE-IP allows when
    // a range covers the node.
    let firewalled = r.set(SetRole::LoadBalancerFw, DST_DST);
    r.add(
        FILTER_OUTPUT,
        vec![firewalled, exprs(vec![jump(SOURCE_RANGES)])],
    );

    // kube-proxy's KUBE-IPVS-FILTER (kubernetes#72236): new connections to
    // an address on kube-ipvs0 are refused unless they are for one of its
    // services, so host services are not reachable through service IPs.
    let on_kube_ipvs0 = r.set(SetRole::IpvsIps, DST);
    r.add(
        "filter-input",
        vec![
            exprs(ct_state_in(NF_CT_STATE_NEW_BIT)),
            on_kube_ipvs0,
            exprs(vec![jump(IPVS_FILTER)]),
        ],
    );
    for service in [
        SetRole::ClusterIp,
        SetRole::ExternalIp,
        SetRole::ExternalIpLocal,
        SetRole::LoadBalancer,
    ] {
        let service = r.set(service, DST_DST);
        r.add(IPVS_FILTER, vec![service, exprs(vec![ret()])]);
    }
    // Load balancers may health-check the node through its LB address.
    let health_check = r.set(SetRole::HealthCheckNodePort, DST);
    r.add(
        IPVS_FILTER,
        vec![
            exprs(meta_l4proto(ip_proto(Protocol::Tcp))),
            health_check,
            exprs(vec![ret()]),
        ],
    );
    r.add(IPVS_FILTER, vec![exprs(vec![reject(r.family.nf_proto())])]);
}
