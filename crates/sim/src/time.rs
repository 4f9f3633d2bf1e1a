//! Global virtual time.
//!
//! In: nanoseconds since the start of a run, or a `Duration` to add.
//! Out: [`SimTime`], the one clock the event queue is ordered by. It is
//! deliberately a different type from `haven_runtime::Instant`: each node
//! reads its own drifting clock (see [`crate::clock`]), and mixing the two
//! up would hide exactly the clock bugs the simulator is meant to expose.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// Nanoseconds of virtual time since the run began.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    /// Far enough to never be reached, yet safe to add a few hours to.
    pub const NEVER: SimTime = SimTime(u64::MAX / 2);

    pub const fn from_nanos(nanos: u64) -> SimTime {
        SimTime(nanos)
    }

    pub const fn from_millis(millis: u64) -> SimTime {
        SimTime(millis * 1_000_000)
    }

    pub const fn from_secs(secs: u64) -> SimTime {
        SimTime(secs * 1_000_000_000)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: SimTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// Durations beyond 584 years saturate: virtual time never gets there, and a
/// saturated deadline is simply one that is never reached.
fn nanos_saturating(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for SimTime {
    type Output = SimTime;
    fn add(self, d: Duration) -> SimTime {
        SimTime(self.0.saturating_add(nanos_saturating(d)))
    }
}

impl Sub<Duration> for SimTime {
    type Output = SimTime;
    fn sub(self, d: Duration) -> SimTime {
        SimTime(self.0.saturating_sub(nanos_saturating(d)))
    }
}

impl fmt::Debug for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SimTime {
    /// Seconds with microsecond precision, e.g. `12.000350s`; honours a width
    /// so that trace lines align (`{:>11}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, micros) = (self.0 / 1_000_000_000, (self.0 % 1_000_000_000) / 1_000);
        match f.width() {
            Some(width) => {
                let secs_width = width.saturating_sub(8);
                write!(f, "{secs:>secs_width$}.{micros:06}s")
            }
            None => write!(f, "{secs}.{micros:06}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_display() {
        let t = SimTime::from_millis(1_500);
        assert_eq!((t + Duration::from_millis(500)).as_nanos(), 2_000_000_000);
        assert_eq!(t - Duration::from_secs(9), SimTime::ZERO);
        assert_eq!(t.saturating_since(SimTime::from_secs(1)), Duration::from_millis(500));
        assert_eq!(t.to_string(), "1.500000s");
        assert_eq!(format!("{:>12}", SimTime::from_nanos(1_234_567_000)), "   1.234567s");
        assert_eq!(SimTime::NEVER + Duration::MAX, SimTime::from_nanos(u64::MAX));
    }
}
