//! A node's monotonic clock reading.
//!
//! In: nanoseconds since an arbitrary per-node origin, supplied by the
//! executor. Out: arithmetic with `std::time::Duration`. The simulator gives
//! every node its own origin offset and drift, so two nodes' readings are
//! never comparable; only differences on one node mean anything.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A reading of one node's monotonic clock, in nanoseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Instant(u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);

    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

fn duration_nanos(d: Duration) -> u64 {
    // 2^64 ns is 584 years; a longer duration is a caller bug, not a state.
    u64::try_from(d.as_nanos()).expect("duration above 584 years")
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.checked_add(duration_nanos(d)).expect("clock overflow"))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_nanos(d)))
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Instant {
    /// Seconds with microsecond precision, e.g. `12.000350s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000_000, (self.0 % 1_000_000_000) / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_display() {
        let t = Instant::from_nanos(1_500_000_000);
        assert_eq!((t + Duration::from_millis(500)).as_nanos(), 2_000_000_000);
        assert_eq!(t.saturating_since(Instant::from_nanos(2_000_000_000)), Duration::ZERO);
        assert_eq!((t - Duration::from_secs(5)), Instant::ZERO);
        assert_eq!(t.to_string(), "1.500000s");
    }
}
