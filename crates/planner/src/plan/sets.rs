//! Phases 1 and 3: the sets themselves, then the entries to add.

use std::collections::BTreeMap;

use kipvs_packet_ipset::Entry;

use super::{claims, scoped_entries, Action, Planner};
use crate::{
    names::ServicePortName,
    sets::{replacement_reason, DesiredSet, SetId},
};

impl Planner<'_> {
    /// Phase 1: a missing set is created; a set of one of our names that
    /// cannot hold our entries (kube-proxy's, made without comments) is
    /// replaced whole, already filled, and its entries are not diffed in
    /// the later phases.
    pub(super) fn sets(&mut self) {
        for (&id, set) in &self.desired.sets {
            let Some(current) = self.observed.sets.get(&id) else {
                self.push(None, Action::CreateSet(id));
                continue;
            };
            if let Some(reason) = replacement_reason(&current.header, id) {
                let entries = self.entries_to_fill(id, set).cloned().collect();
                self.replaced.insert(id);
                self.push(
                    None,
                    Action::ReplaceSet {
                        set: id,
                        entries,
                        reason,
                    },
                );
            }
        }
    }

    /// Phase 3: the entries missing from each set, one step per (set,
    /// owner), exempting and allowing sets first.
    pub(super) fn set_entries_to_add(&mut self) {
        let desired = self.desired;
        for (id, set) in sets_in_order(&desired.sets, true) {
            if self.replaced.contains(&id) {
                continue;
            }
            let present = self.observed.sets.get(&id).map(|s| &s.entries);
            let mut by_owner: BTreeMap<&ServicePortName, Vec<Entry>> = BTreeMap::new();
            for (key, desired) in scoped_entries(self.scope, id, &set.entries) {
                let there = present.is_some_and(|entries| entries.contains_key(key));
                if there || (claims(id) && self.observed.is_foreign(key)) {
                    continue;
                }
                by_owner
                    .entry(&desired.owner)
                    .or_default()
                    .push(desired.entry.clone());
            }
            for (owner, entries) in by_owner {
                self.push(Some(owner), Action::AddSetEntries { set: id, entries });
            }
        }
    }

    /// The entries a set is (re)filled with: all desired ones, but for a
    /// claiming set none naming another program's virtual service.
    fn entries_to_fill<'s>(
        &'s self,
        id: SetId,
        set: &'s DesiredSet,
    ) -> impl Iterator<Item = &'s Entry> {
        set.entries
            .iter()
            .filter(move |(key, _)| !(claims(id) && self.observed.is_foreign(key)))
            .map(|(_, desired)| &desired.entry)
    }
}

/// The sets in the order their entries are added (`exempting_first`) or
/// deleted (the reverse): sets whose entries exempt traffic from marking
/// or allow sources go in before, and out after, the sets that mark or
/// firewall, so a changed service is never briefly masqueraded or dropped.
pub(super) fn sets_in_order(
    sets: &BTreeMap<SetId, DesiredSet>,
    exempting_first: bool,
) -> Vec<(SetId, &DesiredSet)> {
    let mut order: Vec<(SetId, &DesiredSet)> = sets.iter().map(|(id, set)| (*id, set)).collect();
    order.sort_by_key(|(id, _)| (id.role.exempts() != exempting_first, id.name()));
    order
}
