//! Messages sent to and received from the kernel, per family and kind.
//!
//! Every request and every reply passes through [`crate::Channel`], which
//! counts it here. The runtime exposes these as metrics; tests use them to
//! assert that a no-op sync writes nothing and that a change costs a constant
//! number of messages.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex},
};

use crate::Family;

/// Message counts for one (family, kind).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub sent: u64,
    pub received: u64,
}

/// A shared, cheap-to-clone set of counters.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    inner: Arc<Mutex<CountersSnapshot>>,
}

/// A point-in-time copy of the counters, for comparisons in tests and for
/// metrics export.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Messages per (family, kind).
    pub messages: BTreeMap<(Family, &'static str), Count>,
    /// `sendmsg` calls per family: with pipelining, far fewer than messages.
    pub sendmsg: BTreeMap<Family, u64>,
}

impl Counters {
    pub fn record_sent(&self, family: Family, kind: &'static str) {
        self.lock().messages.entry((family, kind)).or_default().sent += 1;
    }

    pub fn record_received(&self, family: Family, kind: &'static str) {
        self.lock()
            .messages
            .entry((family, kind))
            .or_default()
            .received += 1;
    }

    pub fn record_sendmsg(&self, family: Family) {
        *self.lock().sendmsg.entry(family).or_default() += 1;
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CountersSnapshot> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every update is a single increment), so a poisoned lock is fine.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl CountersSnapshot {
    /// Messages of `family` and `kind` sent.
    pub fn sent(&self, family: Family, kind: &str) -> u64 {
        self.messages
            .iter()
            .filter(|((f, k), _)| *f == family && *k == kind)
            .map(|(_, c)| c.sent)
            .sum()
    }

    /// All messages sent to the kernel for `family`.
    pub fn sent_total(&self, family: Family) -> u64 {
        self.messages
            .iter()
            .filter(|((f, _), _)| *f == family)
            .map(|(_, c)| c.sent)
            .sum()
    }

    /// All messages sent to the kernel, every family.
    pub fn sent_all(&self) -> u64 {
        self.messages.values().map(|c| c.sent).sum()
    }

    /// Messages of `family` and `kind` received.
    pub fn received(&self, family: Family, kind: &str) -> u64 {
        self.messages
            .iter()
            .filter(|((f, k), _)| *f == family && *k == kind)
            .map(|(_, c)| c.received)
            .sum()
    }

    /// `sendmsg` calls made for `family`.
    pub fn sendmsg(&self, family: Family) -> u64 {
        self.sendmsg.get(&family).copied().unwrap_or(0)
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &CountersSnapshot) -> CountersSnapshot {
        let mut delta = CountersSnapshot::default();
        for (key, now) in &self.messages {
            let before = earlier.messages.get(key).copied().unwrap_or_default();
            let d = Count {
                sent: now.sent - before.sent,
                received: now.received - before.received,
            };
            if d != Count::default() {
                delta.messages.insert(*key, d);
            }
        }
        for (family, now) in &self.sendmsg {
            let d = now - earlier.sendmsg.get(family).copied().unwrap_or(0);
            if d != 0 {
                delta.sendmsg.insert(*family, d);
            }
        }
        delta
    }
}

impl fmt::Display for CountersSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for ((family, kind), c) in &self.messages {
            writeln!(
                f,
                "{family} {kind}: sent {} received {}",
                c.sent, c.received
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reports_only_what_changed() {
        let c = Counters::default();
        c.record_sent(Family::Ipvs, "NEW_SERVICE");
        let before = c.snapshot();
        c.record_sent(Family::Ipvs, "NEW_DEST");
        c.record_sent(Family::Ipvs, "NEW_DEST");
        c.record_received(Family::Ipvs, "ack");
        let delta = c.snapshot().since(&before);
        assert_eq!(delta.sent(Family::Ipvs, "NEW_DEST"), 2);
        assert_eq!(delta.sent(Family::Ipvs, "NEW_SERVICE"), 0);
        assert_eq!(delta.sent_total(Family::Ipvs), 2);
        assert_eq!(delta.sent_all(), 2);
        assert_eq!(delta.messages.len(), 2);
        c.record_sendmsg(Family::Ipvs);
        assert_eq!(c.snapshot().since(&before).sendmsg(Family::Ipvs), 1);
    }
}
