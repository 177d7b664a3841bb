//! Steps as the log (and the tests) show them: `[default/web:http] add real
//! server 10.244.1.2:8080 to tcp 10.96.0.10:80 (masq weight 1)`.

use std::{fmt, net::SocketAddr};

use kipvs_packet_ipvs::ServiceKey;

use super::{Action, RealServerKey, Step};
use crate::key::VirtualServiceKey;

impl fmt::Display for RealServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {}",
            SocketAddr::new(self.addr, self.port),
            self.service
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = |key: &ServiceKey| VirtualServiceKey(*key);
        match self {
            Action::CreateSet(set) => write!(
                f,
                "create set {set} {} family {}",
                set.set_type(),
                set.set_family()
            ),
            Action::ReplaceSet {
                set,
                entries,
                reason,
            } => write!(
                f,
                "replace set {set} with a {} of {} entries ({reason})",
                set.set_type(),
                entries.len()
            ),
            Action::ReplaceTable { family, table } => write!(
                f,
                "replace table {} kube-ipvs ({} chains, {} rules)",
                family.nf_proto_name(),
                table.chains.len(),
                table.rules.len()
            ),
            Action::AddService(s) => write!(f, "add service {} {}", key(&s.key), s.scheduler),
            Action::UpdateService(s) => {
                write!(f, "update service {} {}", key(&s.key), s.scheduler)
            }
            Action::DeleteService(k) => write!(f, "delete service {}", key(k)),
            Action::AddDestination(k, d) | Action::UpdateDestination(k, d) => {
                let verb = if matches!(self, Action::AddDestination(..)) {
                    "add"
                } else {
                    "update"
                };
                write!(
                    f,
                    "{verb} real server {} to {} ({} weight {})",
                    SocketAddr::new(d.addr, d.port),
                    key(k),
                    d.forward,
                    d.weight
                )
            }
            Action::DeleteDestination(k, addr, port) => write!(
                f,
                "delete real server {} from {}",
                SocketAddr::new(*addr, *port),
                key(k)
            ),
            Action::AddSetEntries { set, entries } => {
                write!(f, "add {} entries to {set}", entries.len())
            }
            Action::DeleteSetEntries { set, entries } => {
                write!(f, "delete {} entries from {set}", entries.len())
            }
            Action::BindAddress(addr) => write!(f, "bind {addr}"),
            Action::UnbindAddress(addr) => write!(f, "unbind {addr}"),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner {
            Some(owner) => write!(f, "[{owner}] {}", self.action),
            None => write!(f, "[node] {}", self.action),
        }
    }
}
