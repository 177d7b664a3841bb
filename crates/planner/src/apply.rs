//! The one model of what a kernel write does to the observed state.
//!
//! The runtime keeps its cached view of the kernel in step with what it
//! applied through [`Observed::apply`], and the in-memory kernel the
//! runtime is tested against is built on it, so both agree with each other
//! and with the planner's tests. It refuses what the kernel refuses: adding
//! what exists (`EEXIST`), changing or removing what does not (`ENOENT`),
//! an address or real server of the other family, a commented entry in a
//! set without comments. Set entries are the exception, as with `ipset
//! -exist`: adding one present, or deleting one absent, is fine.

use std::fmt;

use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::{Destination, Service, ServiceKey};

use crate::{
    key::{IpFamily, VirtualServiceKey},
    observed::{Observed, ObservedSet},
    plan::Action,
    sets::{EntryKey, SetId},
};

/// Why the kernel would refuse an action in the observed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `EEXIST`: the object is already there.
    Exists(String),
    /// `ENOENT` (or `ESRCH`, `EADDRNOTAVAIL`): it is not.
    Missing(String),
    /// The object cannot take this: an address or real server of the other
    /// family, a commented entry in a set without comments.
    Incompatible(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Exists(what) => write!(f, "{what} exists"),
            Refusal::Missing(what) => write!(f, "no {what}"),
            Refusal::Incompatible(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Refusal {}

impl Observed {
    /// What `action` does to the kernel state this describes, or why the
    /// kernel would refuse it (then nothing changes).
    pub fn apply(&mut self, action: &Action) -> Result<(), Refusal> {
        match action {
            Action::CreateSet(set) => self.create_set(*set),
            Action::ReplaceSet { set, entries, .. } => self.replace_set(*set, entries),
            Action::ReplaceTable { family, table } => {
                self.tables.insert(*family, table.clone());
                Ok(())
            }
            Action::AddService(service) => self.add_service(service),
            Action::UpdateService(service) => {
                let (current, _) = self.service_mut(&service.key)?;
                *current = Service {
                    stats: current.stats,
                    ..service.clone()
                };
                Ok(())
            }
            Action::DeleteService(key) => self
                .virtual_services
                .remove(&VirtualServiceKey(*key))
                .map(drop)
                .ok_or_else(|| {
                    Refusal::Missing(format!("virtual service {}", VirtualServiceKey(*key)))
                }),
            Action::AddDestination(key, dest) => self.add_destination(key, dest),
            Action::UpdateDestination(key, dest) => self.update_destination(key, dest),
            Action::DeleteDestination(key, addr, port) => {
                let (_, dests) = self.service_mut(key)?;
                let before = dests.len();
                dests.retain(|d| (d.addr, d.port) != (*addr, *port));
                if dests.len() == before {
                    return Err(Refusal::Missing(format!(
                        "real server {}",
                        std::net::SocketAddr::new(*addr, *port)
                    )));
                }
                Ok(())
            }
            Action::AddSetEntries { set, entries } => self.add_entries(*set, entries),
            Action::DeleteSetEntries { set, entries } => {
                let current = self.set_mut(*set)?;
                for entry in entries {
                    current.entries.remove(&EntryKey::of(entry));
                }
                Ok(())
            }
            Action::BindAddress(addr) => match self.addresses.insert(*addr) {
                true => Ok(()),
                false => Err(Refusal::Exists(format!("address {addr}"))),
            },
            Action::UnbindAddress(addr) => match self.addresses.remove(addr) {
                true => Ok(()),
                false => Err(Refusal::Missing(format!("address {addr}"))),
            },
        }
    }

    /// The kernel gives a new set the first free index; among our sets
    /// that is the lowest one none of them has (the real kernel also
    /// counts other programs' sets, which is why the runtime reads created
    /// sets back).
    fn create_set(&mut self, set: SetId) -> Result<(), Refusal> {
        if self.sets.contains_key(&set) {
            return Err(Refusal::Exists(format!("set {set}")));
        }
        let used: std::collections::BTreeSet<u16> =
            self.sets.values().filter_map(|s| s.header.index).collect();
        let index = (0..=u16::MAX).find(|i| !used.contains(i));
        self.sets.insert(set, ObservedSet::created(set, index));
        Ok(())
    }

    /// The set under `set`'s name becomes one of the right kind holding
    /// `entries`, at the same index (`ipset swap`).
    fn replace_set(&mut self, set: SetId, entries: &[Entry]) -> Result<(), Refusal> {
        let index = self.set_mut(set)?.header.index;
        let mut replacement = ObservedSet::created(set, index);
        replacement.entries = entries
            .iter()
            .map(|entry| (EntryKey::of(entry), entry.clone()))
            .collect();
        self.sets.insert(set, replacement);
        Ok(())
    }

    fn add_entries(&mut self, set: SetId, entries: &[Entry]) -> Result<(), Refusal> {
        let current = self.set_mut(set)?;
        // All or nothing, like a refused ipset batch (as far as the cache
        // is concerned: the runtime reads the set back after a failure).
        for entry in entries {
            if entry.comment.is_some() && !current.header.comment {
                return Err(Refusal::Incompatible(format!(
                    "set {set} was created without comments"
                )));
            }
            let family = entry.ip.map(|ip| IpFamily::of(&ip));
            if set.set_type().has_family() && family.is_some_and(|f| f != set.family) {
                return Err(Refusal::Incompatible(format!(
                    "entry {entry} is not of the family of {set}"
                )));
            }
        }
        for entry in entries {
            current
                .entries
                .entry(EntryKey::of(entry))
                .or_insert_with(|| entry.clone());
        }
        Ok(())
    }

    fn add_service(&mut self, service: &Service) -> Result<(), Refusal> {
        let key = VirtualServiceKey(service.key);
        if self.virtual_services.contains_key(&key) {
            return Err(Refusal::Exists(format!("virtual service {key}")));
        }
        self.virtual_services
            .insert(key, (service.clone(), Vec::new()));
        Ok(())
    }

    fn add_destination(&mut self, key: &ServiceKey, dest: &Destination) -> Result<(), Refusal> {
        let service_family = VirtualServiceKey(*key).addr().map(|a| IpFamily::of(&a));
        let (_, dests) = self.service_mut(key)?;
        if service_family.is_some_and(|family| family != IpFamily::of(&dest.addr)) {
            return Err(Refusal::Incompatible(format!(
                "real server {} is not of the family of {}",
                dest.addr,
                VirtualServiceKey(*key)
            )));
        }
        if dests
            .iter()
            .any(|d| (d.addr, d.port) == (dest.addr, dest.port))
        {
            return Err(Refusal::Exists(format!(
                "real server {}",
                std::net::SocketAddr::new(dest.addr, dest.port)
            )));
        }
        dests.push(dest.clone());
        Ok(())
    }

    /// New settings; the connections and stats stay until read again (a
    /// draining real server keeps its counters).
    fn update_destination(&mut self, key: &ServiceKey, dest: &Destination) -> Result<(), Refusal> {
        let (_, dests) = self.service_mut(key)?;
        let Some(current) = dests
            .iter_mut()
            .find(|d| (d.addr, d.port) == (dest.addr, dest.port))
        else {
            return Err(Refusal::Missing(format!(
                "real server {}",
                std::net::SocketAddr::new(dest.addr, dest.port)
            )));
        };
        *current = Destination {
            active_conns: current.active_conns,
            inactive_conns: current.inactive_conns,
            persistent_conns: current.persistent_conns,
            stats: current.stats,
            ..dest.clone()
        };
        Ok(())
    }

    fn service_mut(
        &mut self,
        key: &ServiceKey,
    ) -> Result<&mut (Service, Vec<Destination>), Refusal> {
        let key = VirtualServiceKey(*key);
        self.virtual_services
            .get_mut(&key)
            .ok_or_else(|| Refusal::Missing(format!("virtual service {key}")))
    }

    fn set_mut(&mut self, set: SetId) -> Result<&mut ObservedSet, Refusal> {
        self.sets
            .get_mut(&set)
            .ok_or_else(|| Refusal::Missing(format!("set {set}")))
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use kipvs_packet_ipvs::Protocol;

    use super::*;
    use crate::{rendered::RenderedTable, sets::SetRole};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn key() -> ServiceKey {
        VirtualServiceKey::tuple(ip("10.96.0.10"), Protocol::Tcp, 80).key()
    }

    fn cluster_ips() -> SetId {
        SetId::new(SetRole::ClusterIp, IpFamily::V4)
    }

    #[test]
    fn what_exists_cannot_be_added_and_what_does_not_cannot_be_changed() {
        let mut o = Observed::default();
        let service = Service::new(key(), "rr");
        let dest = Destination::new(ip("10.244.1.2"), 8080);
        assert!(matches!(
            o.apply(&Action::UpdateService(service.clone())),
            Err(Refusal::Missing(_))
        ));
        assert!(matches!(
            o.apply(&Action::AddDestination(key(), dest.clone())),
            Err(Refusal::Missing(_))
        ));
        assert_eq!(o.apply(&Action::AddService(service.clone())), Ok(()));
        assert!(matches!(
            o.apply(&Action::AddService(service)),
            Err(Refusal::Exists(_))
        ));
        assert_eq!(
            o.apply(&Action::AddDestination(key(), dest.clone())),
            Ok(())
        );
        assert!(matches!(
            o.apply(&Action::AddDestination(key(), dest.clone())),
            Err(Refusal::Exists(_))
        ));
        // An update keeps the counters (the request carries none).
        o.virtual_services
            .get_mut(&VirtualServiceKey(key()))
            .unwrap()
            .1[0]
            .active_conns = 4;
        let drained = Destination {
            weight: 0,
            ..dest.clone()
        };
        assert_eq!(o.apply(&Action::UpdateDestination(key(), drained)), Ok(()));
        let current = &o.virtual_services[&VirtualServiceKey(key())].1[0];
        assert_eq!((current.weight, current.active_conns), (0, 4));
        assert_eq!(
            o.apply(&Action::DeleteDestination(key(), dest.addr, dest.port)),
            Ok(())
        );
        assert!(matches!(
            o.apply(&Action::DeleteDestination(key(), dest.addr, dest.port)),
            Err(Refusal::Missing(_))
        ));
        assert_eq!(o.apply(&Action::DeleteService(key())), Ok(()));
        assert!(matches!(
            o.apply(&Action::DeleteService(key())),
            Err(Refusal::Missing(_))
        ));
        assert_eq!(o.apply(&Action::BindAddress(ip("10.96.0.10"))), Ok(()));
        assert!(matches!(
            o.apply(&Action::BindAddress(ip("10.96.0.10"))),
            Err(Refusal::Exists(_))
        ));
        assert_eq!(o.apply(&Action::UnbindAddress(ip("10.96.0.10"))), Ok(()));
        assert!(matches!(
            o.apply(&Action::UnbindAddress(ip("10.96.0.10"))),
            Err(Refusal::Missing(_))
        ));
        assert_eq!(o, Observed::default());
    }

    #[test]
    fn the_other_family_is_refused() {
        let mut o = Observed::default();
        o.apply(&Action::AddService(Service::new(key(), "rr")))
            .unwrap();
        let v6 = Destination::new(ip("fd00::2"), 8080);
        assert!(matches!(
            o.apply(&Action::AddDestination(key(), v6)),
            Err(Refusal::Incompatible(_))
        ));
        o.apply(&Action::CreateSet(cluster_ips())).unwrap();
        let entry = Entry::ip_port(ip("fd00::10"), 6, 80);
        assert!(matches!(
            o.apply(&Action::AddSetEntries {
                set: cluster_ips(),
                entries: vec![entry]
            }),
            Err(Refusal::Incompatible(_))
        ));
    }

    #[test]
    fn sets_get_the_first_free_index_and_keep_it_when_replaced() {
        let mut o = Observed::default();
        assert!(matches!(
            o.apply(&Action::AddSetEntries {
                set: cluster_ips(),
                entries: vec![]
            }),
            Err(Refusal::Missing(_))
        ));
        let loop_back = SetId::new(SetRole::LoopBack, IpFamily::V4);
        o.apply(&Action::CreateSet(cluster_ips())).unwrap();
        o.apply(&Action::CreateSet(loop_back)).unwrap();
        assert!(matches!(
            o.apply(&Action::CreateSet(loop_back)),
            Err(Refusal::Exists(_))
        ));
        assert_eq!(
            o.set_indexes().values().copied().collect::<Vec<_>>(),
            [0, 1]
        );
        // Entries: present ones are fine (`-exist`), absent ones deleted
        // are fine, the comment is the first one given.
        let entry = Entry::ip_port(ip("10.96.0.10"), 6, 80);
        let add = |comment: &str| Action::AddSetEntries {
            set: cluster_ips(),
            entries: vec![entry.clone().with_comment(comment)],
        };
        o.apply(&add("default/web:http")).unwrap();
        o.apply(&add("other/x:y")).unwrap();
        let set = &o.sets[&cluster_ips()];
        assert_eq!(set.entries.len(), 1);
        assert_eq!(
            set.entries.values().next().unwrap().comment.as_deref(),
            Some("default/web:http")
        );
        // kube-proxy's set (no comments) refuses commented entries until
        // replaced, under the same index.
        o.sets.get_mut(&cluster_ips()).unwrap().header.comment = false;
        assert!(matches!(
            o.apply(&add("default/web:http")),
            Err(Refusal::Incompatible(_))
        ));
        let replace = Action::ReplaceSet {
            set: cluster_ips(),
            entries: vec![entry.clone().with_comment("default/web:http")],
            reason: String::new(),
        };
        o.apply(&replace).unwrap();
        assert!(o.sets[&cluster_ips()].header.comment);
        assert_eq!(o.sets[&cluster_ips()].header.index, Some(0));
        let delete = Action::DeleteSetEntries {
            set: cluster_ips(),
            entries: vec![entry.clone(), Entry::ip_port(ip("10.96.0.11"), 6, 80)],
        };
        o.apply(&delete).unwrap();
        assert!(o.sets[&cluster_ips()].entries.is_empty());
        // A table is replaced whole, whether there was one or not.
        let table = Action::ReplaceTable {
            family: IpFamily::V4,
            table: RenderedTable::default(),
        };
        o.apply(&table).unwrap();
        o.apply(&table).unwrap();
        assert_eq!(o.tables.len(), 1);
    }
}
