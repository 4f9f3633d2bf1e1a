//! A node's drifting clock.
//!
//! In: global virtual time ([`SimTime`]). Out: the node's local
//! `haven_runtime::Instant`, and the inverse (the first global time at which
//! the node's clock reaches a given reading, used to schedule its timers).
//!
//! local = offset + global * (1 + drift_ppm / 1e6), in exact integer
//! arithmetic (i128, rounding down), so readings are monotonic and the
//! inverse is exact: a timer never fires a nanosecond early or late.

use crate::time::SimTime;
use haven_runtime::Instant;
use std::time::Duration;

/// Largest drift accepted, in parts per million either way. Real quartz is
/// within ±100 ppm; half a second per second is already absurd, and a rate
/// that stays positive keeps the clock monotonic.
pub const DRIFT_PPM_ABS_MAX: i64 = 500_000;

const PPM: i128 = 1_000_000;

/// A clock that reads `base_local` at global time `base_global` and advances
/// at `1 + drift_ppm/1e6` local nanoseconds per global nanosecond.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    base_global: u64,
    base_local: u64,
    drift_ppm: i64,
}

impl Clock {
    /// local = offset + global * (1 + drift_ppm/1e6).
    ///
    /// # Panics
    /// If `drift_ppm` is beyond ±[`DRIFT_PPM_ABS_MAX`] (a scenario bug).
    pub fn new(offset: Duration, drift_ppm: i64) -> Clock {
        assert!(drift_ppm.abs() <= DRIFT_PPM_ABS_MAX, "clock drift {drift_ppm} ppm beyond ±{DRIFT_PPM_ABS_MAX}");
        Clock { base_global: 0, base_local: saturate(offset.as_nanos()), drift_ppm }
    }

    pub fn drift_ppm(&self) -> i64 {
        self.drift_ppm
    }

    fn rate(&self) -> i128 {
        PPM + i128::from(self.drift_ppm)
    }

    /// The reading at global time `now` (times before the base read as the base).
    pub fn local(&self, now: SimTime) -> Instant {
        let elapsed = i128::from(now.as_nanos().saturating_sub(self.base_global));
        let local = i128::from(self.base_local) + elapsed * self.rate() / PPM;
        Instant::from_nanos(saturate_i128(local))
    }

    /// The first global time, not before the base, at which the clock reads
    /// at least `deadline`.
    pub fn global_at(&self, deadline: Instant) -> SimTime {
        let Some(ahead) = deadline.as_nanos().checked_sub(self.base_local).filter(|d| *d > 0) else {
            return SimTime::from_nanos(self.base_global);
        };
        // floor(e * rate / PPM) >= ahead  <=>  e * rate >= ahead * PPM, and
        // the smallest such e is the ceiling of the quotient.
        let elapsed = (i128::from(ahead) * PPM + self.rate() - 1) / self.rate();
        SimTime::from_nanos(saturate_i128(i128::from(self.base_global) + elapsed))
    }

    /// The same clock continuing from its reading at `now` at a new rate, and
    /// jumping forward to `offset + now * (1 + drift)` if that is ahead: a
    /// running node's clock must never go back.
    pub fn rebased(&self, now: SimTime, offset: Duration, drift_ppm: i64) -> Clock {
        let fresh = Clock::new(offset, drift_ppm);
        let base_local = self.local(now).max(fresh.local(now));
        Clock { base_global: now.as_nanos(), base_local: base_local.as_nanos(), drift_ppm }
    }
}

fn saturate(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn saturate_i128(v: i128) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_and_drift_are_exact() {
        let clock = Clock::new(Duration::from_secs(100), 1_000);
        assert_eq!(clock.local(SimTime::ZERO).as_nanos(), 100_000_000_000);
        assert_eq!(clock.local(SimTime::from_secs(1)).as_nanos(), 101_001_000_000);
        let slow = Clock::new(Duration::ZERO, -250_000);
        assert_eq!(slow.local(SimTime::from_secs(4)).as_nanos(), 3_000_000_000);
    }

    #[test]
    fn global_at_is_the_first_instant_reaching_the_deadline() {
        for drift in [-DRIFT_PPM_ABS_MAX, -333, 0, 1, 1_000, 77_777, DRIFT_PPM_ABS_MAX] {
            let clock = Clock::new(Duration::from_millis(5), drift);
            for deadline in [0u64, 5_000_000, 5_000_001, 1_005_000_000, 987_654_321_987] {
                let g = clock.global_at(Instant::from_nanos(deadline));
                assert!(clock.local(g).as_nanos() >= deadline, "drift {drift} deadline {deadline}");
                if g > SimTime::ZERO {
                    let before = SimTime::from_nanos(g.as_nanos() - 1);
                    assert!(clock.local(before).as_nanos() < deadline, "drift {drift} deadline {deadline}");
                }
            }
        }
    }

    #[test]
    fn rebasing_never_goes_back() {
        let fast = Clock::new(Duration::from_secs(10), 100_000);
        let now = SimTime::from_secs(10);
        let before = fast.local(now);
        let slow = fast.rebased(now, Duration::ZERO, -100_000);
        assert_eq!(slow.local(now), before);
        assert_eq!(slow.local(now + Duration::from_secs(1)).as_nanos(), before.as_nanos() + 900_000_000);
        let ahead = slow.rebased(now, Duration::from_secs(1_000), 0);
        assert_eq!(ahead.local(now).as_nanos(), 1_010_000_000_000);
    }
}
