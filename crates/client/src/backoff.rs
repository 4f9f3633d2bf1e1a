//! Jittered exponential backoff between rounds of failover.
//!
//! In: the number of the round that just failed. Out: how long to wait
//! before the next one — a random duration in `[0, min(cap, base·2^round)]`
//! ("full jitter"), so many clients that lost the same member do not all
//! come back at the same instant.

use rand::RngExt as _;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(25), cap: Duration::from_millis(1_000) }
    }
}

impl Backoff {
    /// The longest wait after `round` (0-based): `min(cap, base·2^round)`.
    pub fn ceiling(&self, round: u32) -> Duration {
        let factor = 1u32.checked_shl(round.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait after `round`, at most [`Backoff::ceiling`].
    pub fn delay(&self, round: u32) -> Duration {
        let ceiling_us = u64::try_from(self.ceiling(round).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=ceiling_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let backoff = Backoff { base: Duration::from_millis(10), cap: Duration::from_millis(100) };
        let ceilings: Vec<u128> = (0..6).map(|round| backoff.ceiling(round).as_millis()).collect();
        assert_eq!(ceilings, vec![10, 20, 40, 80, 100, 100]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_millis(100));
    }

    #[test]
    fn delays_are_jittered_and_bounded() {
        let backoff = Backoff { base: Duration::from_millis(10), cap: Duration::from_millis(100) };
        let delays: Vec<Duration> = (0..200).map(|_| backoff.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(80)));
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "full jitter spreads the delays: {} distinct", distinct.len());
    }
}
