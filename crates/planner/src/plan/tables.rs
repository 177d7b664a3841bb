//! Phase 2: each family's `kube-ipvs` table.

use super::{Action, Planner};
use crate::key::IpFamily;

impl Planner<'_> {
    /// Every desired set of `family` is in the kernel.
    fn sets_exist(&self, family: IpFamily) -> bool {
        self.desired
            .sets
            .keys()
            .filter(|id| id.family == family)
            .all(|id| self.observed.sets.contains_key(id))
    }

    /// For a plan of a narrow scope: the families whose sets exist and
    /// whose table is installed are ready (nothing is planned for them).
    pub(super) fn installed_tables(&mut self) {
        for table in &self.desired.tables {
            let family = table.family;
            if self.sets_exist(family) && self.observed.tables.contains_key(&family) {
                self.ready.insert(family);
            }
        }
    }

    /// A family's table is replaced when it differs from the desired one
    /// rendered with the sets' kernel indexes. A table whose sets have no
    /// index yet (created in this plan) waits for the next plan, which the
    /// runtime makes right after creating sets. A family is ready for
    /// addresses once its sets exist and its table can be installed.
    pub(super) fn tables(&mut self) {
        let indexes = self.observed.set_indexes();
        for table in &self.desired.tables {
            let Ok(rendered) = table.render(&indexes) else {
                continue;
            };
            let family = table.family;
            if self.sets_exist(family) {
                self.ready.insert(family);
            }
            if self.observed.tables.get(&family) != Some(&rendered) {
                self.push(
                    None,
                    Action::ReplaceTable {
                        family,
                        table: rendered,
                    },
                );
            }
        }
    }
}
