//! A kernel in memory, for testing the runtime on the host: the state is
//! an [`Observed`] holding everything the kernel would (every virtual
//! service, kube-ipvs's or not; our sets; `kube-ipvs0`'s addresses; our
//! tables), changed only through the planner's model of a kernel write
//! (`Observed::apply`), so it refuses what the kernel refuses. Messages are
//! counted as the netlink kernel sends them, so message counts can be
//! asserted at any scale. Tests can make steps or reads fail, lose a reply
//! (the step takes effect, the answer says it failed), or change the state
//! behind the daemon's back.
//!
//! A `MemoryKernel` is a handle: clones share one kernel, so a test keeps
//! one while the sync loop owns another.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use kipvs_netlink::{
    Counters, Error as NetlinkError, Family, FlowFilter, KernelError, MessageKind,
};
use kipvs_packet_ipset::IpsetMessage;
use kipvs_packet_ipvs::Destination;
use kipvs_planner::{ownership, Action, Desired, Observed, ObservedSet, SetId, VirtualServiceKey};

use crate::{
    kernel::{message_kind, Kernel, StepError},
    nft_table,
};

/// See the module docs.
#[derive(Clone, Default)]
pub struct MemoryKernel {
    inner: Arc<Mutex<Inner>>,
    counters: Counters,
}

#[derive(Default)]
struct Inner {
    state: Observed,
    faults: Vec<Fault>,
    /// Called with every action before it is executed.
    watchers: Vec<Watcher>,
}

type Watcher = Box<dyn FnMut(&Action) + Send>;

/// A failure waiting to happen.
struct Fault {
    on: Trigger,
    errno: i32,
    /// How many more times it strikes.
    times: usize,
    /// The step takes effect, but its answer is lost.
    lose_reply: bool,
}

enum Trigger {
    Step(Box<dyn Fn(&Action) -> bool + Send>),
    /// A read, by the message kind it is sent as (`GET_SERVICE`, `LIST`, …).
    Read(&'static str),
}

impl MemoryKernel {
    pub fn new() -> MemoryKernel {
        MemoryKernel::default()
    }

    /// The next `times` steps `matches` picks fail with `errno`, taking no
    /// effect (`ENOBUFS`, `EBUSY`, `EEXIST`, `ENOENT`, `ENOENT` for a
    /// scheduler whose module is missing, …).
    pub fn fail_steps(
        &self,
        matches: impl Fn(&Action) -> bool + Send + 'static,
        errno: i32,
        times: usize,
    ) {
        self.fault(Trigger::Step(Box::new(matches)), errno, times, false);
    }

    /// The next `times` steps sent as message `kind` (`NEW_DEST`, `ADD`,
    /// `NEWADDR`, …) fail with `errno`.
    pub fn fail_kind(&self, kind: &'static str, errno: i32, times: usize) {
        self.fail_steps(move |action| message_kind(action).1 == kind, errno, times);
    }

    /// The next `times` reads sent as `kind` (`GET_SERVICE`, `GET_DEST`,
    /// `LIST`, `GETADDR`, `GETCHAIN`, …) fail with `errno`.
    pub fn fail_reads(&self, kind: &'static str, errno: i32, times: usize) {
        self.fault(Trigger::Read(kind), errno, times, false);
    }

    /// The next `times` steps `matches` picks take effect, but their
    /// answers are lost (`ENOBUFS`): the daemon sees a failure.
    pub fn lose_replies(&self, matches: impl Fn(&Action) -> bool + Send + 'static, times: usize) {
        self.fault(Trigger::Step(Box::new(matches)), libc::ENOBUFS, times, true);
    }

    /// Calls `watch` with every action before it is executed (to stop the
    /// daemon in the middle of a sync, say).
    pub fn watch(&self, watch: impl FnMut(&Action) + Send + 'static) {
        self.lock().watchers.push(Box::new(watch));
    }

    /// Reads or changes the state, as another program (or an operator)
    /// would: drift.
    pub fn with_state<R>(&self, change: impl FnOnce(&mut Observed) -> R) -> R {
        change(&mut self.lock().state)
    }

    /// A copy of the state.
    pub fn state(&self) -> Observed {
        self.lock().state.clone()
    }

    fn fault(&self, on: Trigger, errno: i32, times: usize, lose_reply: bool) {
        self.lock().faults.push(Fault {
            on,
            errno,
            times,
            lose_reply,
        });
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Tests only; a panicking watcher must not hide the state.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one read (request and reply) and fails it if a fault says so.
    fn read(&self, family: Family, kind: &'static str) -> Result<(), StepError> {
        self.counters.record_sent(family, kind);
        self.counters.record_received(family, kind);
        let mut inner = self.lock();
        match take_fault(
            &mut inner.faults,
            |on| matches!(on, Trigger::Read(k) if *k == kind),
        ) {
            Some((errno, _)) => Err(kernel_error(family, kind, errno)),
            None => Ok(()),
        }
    }

    /// The messages `action` is sent as, counted the way the netlink
    /// kernel's funnel counts them.
    fn count(&self, action: &Action) {
        let counters = &self.counters;
        let (family, kind) = message_kind(action);
        match action {
            Action::ReplaceTable { family, table } => {
                counters.record_sent(Family::NfTables, "BATCH_BEGIN");
                for message in nft_table::replace_messages(*family, table) {
                    counters.record_sent(Family::NfTables, message.kind());
                }
                counters.record_sent(Family::NfTables, "BATCH_END");
                counters.record_received(Family::NfTables, "ack");
            }
            Action::AddSetEntries { set, entries } => {
                for _ in IpsetMessage::add_batch(set.name(), entries).messages {
                    counters.record_sent(family, kind);
                    counters.record_received(family, "ack");
                }
            }
            Action::DeleteSetEntries { set, entries } => {
                for _ in IpsetMessage::del_batch(set.name(), entries).messages {
                    counters.record_sent(family, kind);
                    counters.record_received(family, "ack");
                }
            }
            Action::ReplaceSet { set, entries, .. } => {
                for kind in ["DESTROY", "CREATE"] {
                    counters.record_sent(Family::Ipset, kind);
                }
                for _ in IpsetMessage::add_batch(set.name(), entries).messages {
                    counters.record_sent(Family::Ipset, "ADD");
                }
                for kind in ["SWAP", "DESTROY"] {
                    counters.record_sent(Family::Ipset, kind);
                }
            }
            _ => {
                counters.record_sent(family, kind);
                counters.record_received(family, "ack");
            }
        }
    }

    fn execute_one(&self, action: &Action) -> Result<(), StepError> {
        self.count(action);
        let mut inner = self.lock();
        for watch in &mut inner.watchers {
            watch(action);
        }
        let fault = take_fault(
            &mut inner.faults,
            |on| matches!(on, Trigger::Step(m) if m(action)),
        );
        let (family, kind) = message_kind(action);
        match fault {
            Some((errno, false)) => Err(kernel_error(family, kind, errno)),
            Some((errno, true)) => {
                let _ = inner.state.apply(action);
                Err(kernel_error(family, kind, errno))
            }
            None => Ok(inner.state.apply(action)?),
        }
    }
}

/// Takes one strike of the first live fault `matches` picks: its errno and
/// whether the reply is lost.
fn take_fault(faults: &mut [Fault], matches: impl Fn(&Trigger) -> bool) -> Option<(i32, bool)> {
    let fault = faults.iter_mut().find(|f| f.times > 0 && matches(&f.on))?;
    fault.times -= 1;
    Some((fault.errno, fault.lose_reply))
}

fn kernel_error(family: Family, kind: &'static str, errno: i32) -> StepError {
    StepError::Netlink(NetlinkError::Kernel(KernelError {
        family,
        kind,
        errno,
        code: -errno,
        message: None,
        echo: Vec::new(),
    }))
}

impl Kernel for MemoryKernel {
    /// The reads the netlink kernel makes: `GETLINK`, `LIST`, `GETADDR`,
    /// `GET_SERVICE`, a `GET_DEST` per owned virtual service, `GETCHAIN`
    /// per family and `GETRULE` per family with a table.
    async fn observe(&mut self, desired: &Desired) -> Result<Observed, StepError> {
        for (family, kind) in [
            (Family::Route, "GETLINK"),
            (Family::Ipset, "LIST"),
            (Family::Route, "GETADDR"),
            (Family::Ipvs, "GET_SERVICE"),
        ] {
            self.read(family, kind)?;
        }
        let state = self.state();
        let mut observed = Observed {
            addresses: state.addresses.clone(),
            sets: state.sets.clone(),
            ..Observed::default()
        };
        let ownership = ownership(desired, &observed, state.virtual_services.keys().copied());
        for key in &ownership.ours {
            self.read(Family::Ipvs, "GET_DEST")?;
            if let Some(service) = state.virtual_services.get(key) {
                observed.virtual_services.insert(*key, service.clone());
            }
        }
        observed.foreign = ownership.foreign;
        for family in kipvs_planner::IpFamily::ALL {
            self.read(Family::NfTables, "GETCHAIN")?;
            if let Some(table) = state.tables.get(&family) {
                self.read(Family::NfTables, "GETRULE")?;
                observed.tables.insert(family, table.clone());
            }
        }
        Ok(observed)
    }

    async fn read_sets(&mut self) -> Result<BTreeMap<SetId, ObservedSet>, StepError> {
        self.read(Family::Ipset, "LIST")?;
        Ok(self.lock().state.sets.clone())
    }

    async fn read_destinations(
        &mut self,
        services: &[VirtualServiceKey],
    ) -> Vec<Result<Vec<Destination>, StepError>> {
        services
            .iter()
            .map(|key| {
                self.read(Family::Ipvs, "GET_DEST")?;
                let state = self.lock();
                match state.state.virtual_services.get(key) {
                    Some((_, dests)) => Ok(dests.clone()),
                    None => Err(kernel_error(Family::Ipvs, "GET_DEST", libc::ESRCH)),
                }
            })
            .collect()
    }

    async fn execute(&mut self, batch: &[&Action]) -> Vec<Result<(), StepError>> {
        batch
            .iter()
            .map(|action| self.execute_one(action))
            .collect()
    }

    /// No conntrack here: one dump per family, nothing to delete.
    async fn delete_flows(&mut self, filters: &[FlowFilter]) -> Result<usize, StepError> {
        for ipv6 in [false, true] {
            if filters
                .iter()
                .any(|f| f.original_dst.is_some_and(|a| a.is_ipv6() == ipv6))
            {
                self.read(Family::Conntrack, "CT_GET")?;
            }
        }
        Ok(0)
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}
