//! Reconnect delays.
//!
//! In: failures and successes of one link's connection attempts, and a
//! random draw per failure. Out: how long to wait before the next attempt:
//! exponential between the configured minimum and maximum, with "equal
//! jitter" (a uniform draw in the upper half of the current step) so that
//! nodes restarted together do not dial in lockstep.

use rand::RngExt;
use std::time::Duration;

#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    ms_min: u64,
    ms_max: u64,
    step_ms: u64,
}

impl Backoff {
    pub(crate) fn new(ms_min: u64, ms_max: u64) -> Self {
        assert!(0 < ms_min && ms_min <= ms_max, "limits are checked before links start");
        Backoff { ms_min, ms_max, step_ms: ms_min }
    }

    /// The delay after one more failure.
    pub(crate) fn next_delay(&mut self, rng: &mut impl rand::Rng) -> Duration {
        let step = self.step_ms;
        self.step_ms = step.saturating_mul(2).min(self.ms_max);
        Duration::from_millis(rng.random_range(step.div_ceil(2)..=step))
    }

    /// A connection succeeded: the next failure starts from the minimum.
    pub(crate) fn reset(&mut self) {
        self.step_ms = self.ms_min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delays_grow_to_the_maximum_with_jitter_and_reset() {
        let mut rng = haven_runtime::Rng::seed_from_u64(7);
        let mut backoff = Backoff::new(50, 2_000);
        let delays: Vec<u64> = (0..10).map(|_| backoff.next_delay(&mut rng).as_millis() as u64).collect();
        let steps = [50, 100, 200, 400, 800, 1600, 2000, 2000, 2000, 2000];
        for (delay, step) in delays.iter().zip(steps) {
            assert!(step / 2 <= *delay && *delay <= step, "delay {delay} outside [{}, {step}]", step / 2);
        }
        // Jitter: the capped delays are not all equal.
        assert!(delays[6..].windows(2).any(|w| w[0] != w[1]), "no jitter in {delays:?}");
        backoff.reset();
        assert!(backoff.next_delay(&mut rng) <= Duration::from_millis(50));
    }
}
