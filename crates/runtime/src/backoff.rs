//! How long to wait before the next try after failures in a row: a first
//! wait that doubles with every further failure, up to a cap.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub last: Duration,
}

impl Backoff {
    /// The wait after the `attempt`-th failure in a row (counted from 1).
    pub fn after(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_without_overflowing() {
        let backoff = Backoff {
            first: Duration::from_secs(1),
            last: Duration::from_secs(30),
        };
        let seconds: Vec<u64> = (1..=7).map(|n| backoff.after(n).as_secs()).collect();
        assert_eq!(seconds, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff.after(0), Duration::from_secs(1));
        assert_eq!(backoff.after(u32::MAX), backoff.last);
    }
}
