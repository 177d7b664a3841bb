//! A plan, applied: cut into batches the kernel can take at once, with
//! failures isolated per service, and the cache kept in step with what the
//! kernel confirmed.
//!
//! - When a step fails, the later steps of the same service port are
//!   skipped (its address stays unbound, so it is never reachable
//!   half-built) and every other service goes on; when a node-wide step (a
//!   set, a table) fails, no address is bound this time.
//! - The kernel already being in the state a step asks for is success: an
//!   add that finds its object, a delete that does not. Such a surprise
//!   means the cache was behind, so the next sync reads the kernel back
//!   ([`ApplyReport::drift_seen`]).
//! - What the kernel confirmed is recorded in the cache with the planner's
//!   model of a kernel write (`Observed::apply`); sets made or replaced
//!   are read back instead, for the indexes the kernel gave them.

use std::collections::BTreeSet;

use kipvs_netlink::{ErrorClass, FlowFilter};
use kipvs_packet_ipvs::{Protocol, ServiceKey};
use kipvs_planner::{Action, Observed, Plan, ServicePortName, Step};
use tracing::{debug, warn};

use crate::{
    kernel::{BatchKind, Kernel, StepError},
    sync_summary::KernelErrors,
};

/// What one [`apply_plan`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub applied: usize,
    pub failed: usize,
    /// Steps not attempted because an earlier step they depend on failed.
    pub skipped: usize,
    /// Failed steps that belong to no service (sets, tables): the node's
    /// own health, unlike a failure of one service.
    pub node_wide_failed: usize,
    /// Service ports with a failed step (retried on the next sync).
    pub failed_owners: BTreeSet<ServicePortName>,
    /// Sets were created or replaced: the plan must be made again with
    /// their indexes before the table that references them can be
    /// installed.
    pub created_sets: bool,
    /// The kernel was not where the cache said (an add found its object, a
    /// delete did not, a confirmed step did not fit the cache): the next
    /// sync should read the kernel back.
    pub drift_seen: bool,
    /// Conntrack flows deleted after UDP real servers or virtual services
    /// went (stale flows would keep a UDP client on the old backend).
    pub conntrack_deleted: usize,
    /// Every error a step got, by class (those taken as done included).
    pub kernel_errors: KernelErrors,
}

/// Applies `plan` in order through `kernel`, recording in `observed` what
/// the kernel confirmed.
pub async fn apply_plan<K: Kernel>(
    kernel: &mut K,
    plan: &Plan,
    observed: &mut Observed,
) -> ApplyReport {
    let mut run = Run::default();
    let steps = &plan.steps;
    let mut start = 0;
    while start < steps.len() {
        let end = batch_end(steps, start);
        let batch: Vec<&Step> = steps[start..end]
            .iter()
            .filter(|step| run.admit(step))
            .collect();
        start = end;
        if batch.is_empty() {
            continue;
        }
        let actions: Vec<&Action> = batch.iter().map(|step| &step.action).collect();
        let outcomes = kernel.execute(&actions).await;
        let mut sets_changed = false;
        for (step, outcome) in batch.iter().zip(outcomes) {
            sets_changed |= outcome.is_ok() && changes_sets(&step.action);
            run.settle(step, outcome, observed);
        }
        if sets_changed {
            run.read_sets_back(kernel, observed).await;
        }
    }
    run.report.conntrack_deleted = delete_stale_flows(kernel, &run.stale_flows).await;
    run.report
}

/// Bookkeeping of one apply: which owners failed, what to skip.
#[derive(Default)]
struct Run {
    report: ApplyReport,
    node_failed: bool,
    /// The conntrack flows made stale by the UDP deletions applied.
    stale_flows: Vec<FlowFilter>,
}

impl Run {
    fn admit(&mut self, step: &Step) -> bool {
        let blocked = step
            .owner
            .as_ref()
            .is_some_and(|o| self.report.failed_owners.contains(o))
            || (self.node_failed && matches!(step.action, Action::BindAddress(_)));
        if blocked {
            self.report.skipped += 1;
            debug!(%step, "skipped after an earlier failure");
        }
        !blocked
    }

    fn settle(&mut self, step: &Step, outcome: Result<(), StepError>, observed: &mut Observed) {
        if let Err(error) = &outcome {
            self.report.kernel_errors.record(error.class());
        }
        let outcome = match outcome {
            Err(error) if already_done(&step.action, &error) => {
                debug!(%step, %error, "the kernel was already there");
                self.report.drift_seen = true;
                Ok(())
            }
            other => other,
        };
        match outcome {
            Ok(()) => {
                self.report.applied += 1;
                self.report.created_sets |= changes_sets(&step.action);
                self.stale_flows.extend(stale_udp_flows(&step.action));
                if let Err(refusal) = observed.apply(&step.action) {
                    debug!(%step, %refusal, "the cache was not where the kernel is");
                    self.report.drift_seen = true;
                }
            }
            Err(error) => self.fail(step, &error),
        }
    }

    fn fail(&mut self, step: &Step, error: &StepError) {
        self.report.failed += 1;
        match &step.owner {
            Some(owner) => {
                warn!(service = %owner, step = %step.action, %error, "failed; the service is retried on the next sync");
                self.report.failed_owners.insert(owner.clone());
            }
            None => {
                warn!(step = %step.action, %error, "failed; no address is bound until it succeeds");
                self.node_failed = true;
                self.report.node_wide_failed += 1;
            }
        }
    }

    /// Sets the kernel made or swapped have indexes (and contents) only it
    /// knows. Without them the table cannot be rendered: if they cannot be
    /// read, nothing is bound this time and the next sync reads everything.
    async fn read_sets_back<K: Kernel>(&mut self, kernel: &mut K, observed: &mut Observed) {
        match kernel.read_sets().await {
            Ok(sets) => observed.sets = sets,
            Err(error) => {
                warn!(%error, "reading the ipsets back failed; no address is bound until it succeeds");
                for set in observed.sets.values_mut() {
                    set.header.index = None;
                }
                self.node_failed = true;
                self.report.node_wide_failed += 1;
                self.report.drift_seen = true;
            }
        }
    }
}

fn changes_sets(action: &Action) -> bool {
    matches!(action, Action::CreateSet(_) | Action::ReplaceSet { .. })
}

/// An add that finds its object, a delete that does not find it: the
/// kernel is already in the state the step asks for.
fn already_done(action: &Action, error: &StepError) -> bool {
    let add = matches!(
        action,
        Action::AddService(_) | Action::AddDestination(..) | Action::BindAddress(_)
    );
    let delete = matches!(
        action,
        Action::DeleteService(_) | Action::DeleteDestination(..) | Action::UnbindAddress(_)
    );
    match error.class() {
        ErrorClass::AlreadyExists => add,
        ErrorClass::NotFound => delete,
        _ => false,
    }
}

/// The most steps sent as one batch. Far more than one `sendmsg` carries,
/// so pipelining is not hurt, but a cold sync's hundred thousand steps are
/// not all encoded (and their replies held) at once.
const MAX_BATCH: usize = 4096;

/// The end of the run of steps starting at `start` that go out together.
fn batch_end(steps: &[Step], start: usize) -> usize {
    let kind = BatchKind::of(&steps[start].action);
    if kind == BatchKind::Single {
        return start + 1;
    }
    start
        + steps[start..]
            .iter()
            .take(MAX_BATCH)
            .take_while(|s| BatchKind::of(&s.action) == kind)
            .count()
}

/// The conntrack flows a deletion leaves stale: for a UDP virtual service,
/// all its flows (original destination = its address and port); for a UDP
/// real server, those it answered (reply source = its address and port).
fn stale_udp_flows(action: &Action) -> Option<FlowFilter> {
    const UDP: u8 = 17;
    let (key, real_server) = match action {
        Action::DeleteService(key) => (key, None),
        Action::DeleteDestination(key, addr, port) => (key, Some((*addr, *port))),
        _ => return None,
    };
    let ServiceKey::Tuple {
        addr,
        protocol: Protocol::Udp,
        port,
    } = *key
    else {
        return None;
    };
    Some(FlowFilter {
        protocol: Some(UDP),
        original_dst: Some(addr),
        original_dport: Some(port),
        reply_src: real_server.map(|(addr, _)| addr),
        reply_sport: real_server.map(|(_, port)| port),
    })
}

/// Deletes the conntrack flows of removed UDP real servers and virtual
/// services (kube-proxy does the same, through netlink here). Done after
/// the IPVS deletions, so no new packet can make a fresh flow to the old
/// backend. A failure is logged, not retried: the flows time out on their
/// own (`nf_conntrack_udp_timeout`).
async fn delete_stale_flows<K: Kernel>(kernel: &mut K, filters: &[FlowFilter]) -> usize {
    if filters.is_empty() {
        return 0;
    }
    match kernel.delete_flows(filters).await {
        Ok(deleted) => {
            debug!(
                filters = filters.len(),
                deleted, "stale UDP conntrack flows"
            );
            deleted
        }
        Err(error) => {
            warn!(%error, "deleting stale UDP conntrack flows failed");
            0
        }
    }
}
