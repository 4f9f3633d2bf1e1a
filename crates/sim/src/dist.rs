//! Distributions of durations.
//!
//! In: a [`Dist`] and the simulator's RNG. Out: one sampled `Duration`.
//! Used for network latency, disk latency and the inter-arrival times of
//! scenario processes. The tail mixture models a LAN that is fast almost
//! always and occasionally very slow, which is what breaks timeouts.

use crate::error::{ConfigError, check_probability};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// An exponential sample is cut at this many means: beyond it the
/// probability is e^-40, and an unbounded draw could stall a run for years.
pub const EXPONENTIAL_MEANS_MAX: u32 = 40;
/// Nesting bound for tail mixtures, so sampling and validation stay shallow.
pub const DIST_DEPTH_MAX: usize = 8;

/// A distribution of durations.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    /// Always the same duration.
    Const(Duration),
    /// Uniform over `lo..=hi`, at nanosecond resolution.
    Uniform { lo: Duration, hi: Duration },
    /// Exponential with the given mean (cut at [`EXPONENTIAL_MEANS_MAX`] means).
    Exponential { mean: Duration },
    /// With probability `p` a draw from `tail`, otherwise from `body`.
    Tail { p: f64, body: Box<Dist>, tail: Box<Dist> },
}

impl Dist {
    pub const ZERO: Dist = Dist::Const(Duration::ZERO);

    pub fn constant(d: Duration) -> Dist {
        Dist::Const(d)
    }

    pub fn uniform(lo: Duration, hi: Duration) -> Dist {
        Dist::Uniform { lo, hi }
    }

    pub fn exponential(mean: Duration) -> Dist {
        Dist::Exponential { mean }
    }

    pub fn tail(p: f64, body: Dist, tail: Dist) -> Dist {
        Dist::Tail { p, body: Box::new(body), tail: Box::new(tail) }
    }

    /// A LAN: 0.1–1 ms almost always, and one message in a thousand takes an
    /// exponential 20 ms on average (a retransmission, a GC pause elsewhere).
    pub fn lan() -> Dist {
        Dist::tail(
            0.001,
            Dist::uniform(Duration::from_micros(100), Duration::from_millis(1)),
            Dist::exponential(Duration::from_millis(20)),
        )
    }

    /// Checks probabilities, ranges and nesting; `what` names the setting in
    /// the error.
    pub fn validate(&self, what: &'static str) -> Result<(), ConfigError> {
        self.validate_at(what, 0)
    }

    fn validate_at(&self, what: &'static str, depth: usize) -> Result<(), ConfigError> {
        if depth >= DIST_DEPTH_MAX {
            return Err(ConfigError::TooDeep { what, depth_max: DIST_DEPTH_MAX });
        }
        match self {
            Dist::Const(_) | Dist::Exponential { .. } => Ok(()),
            Dist::Uniform { lo, hi } if lo > hi => Err(ConfigError::EmptyRange { what, lo: *lo, hi: *hi }),
            Dist::Uniform { .. } => Ok(()),
            Dist::Tail { p, body, tail } => {
                check_probability(what, *p)?;
                body.validate_at(what, depth + 1)?;
                tail.validate_at(what, depth + 1)
            }
        }
    }

    /// Draws one duration. An unvalidated distribution never panics here: an
    /// inverted range is read as its sorted form and a bad probability as
    /// "never" or "always".
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Duration {
        match self {
            Dist::Const(d) => *d,
            Dist::Uniform { lo, hi } => {
                let (lo, hi) = (nanos(*lo.min(hi)), nanos(*lo.max(hi)));
                Duration::from_nanos(rng.random_range(lo..=hi))
            }
            Dist::Exponential { mean } => {
                let mean = mean.as_secs_f64();
                // 1 - u is in (0, 1], so ln never sees zero.
                let u: f64 = rng.random();
                let secs = (-(1.0 - u).ln() * mean).min(mean * f64::from(EXPONENTIAL_MEANS_MAX));
                Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
            }
            Dist::Tail { p, body, tail } => {
                let u: f64 = rng.random();
                if u < *p { tail.sample(rng) } else { body.sample(rng) }
            }
        }
    }
}

/// True with probability `p`. Draws nothing when `p` is zero, so turning a
/// fault off does not shift the rest of the stream.
pub(crate) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && rng.random::<f64>() < p
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn uniform_stays_in_range_and_covers_it() {
        let (lo, hi) = (Duration::from_millis(2), Duration::from_millis(4));
        let dist = Dist::uniform(lo, hi);
        let mut rng = rng();
        let samples: Vec<Duration> = (0..2000).map(|_| dist.sample(&mut rng)).collect();
        assert!(samples.iter().all(|d| (lo..=hi).contains(d)));
        assert!(samples.iter().any(|d| *d < Duration::from_micros(2100)));
        assert!(samples.iter().any(|d| *d > Duration::from_micros(3900)));
    }

    #[test]
    fn exponential_has_its_mean_and_is_capped() {
        let mean = Duration::from_millis(10);
        let dist = Dist::exponential(mean);
        let mut rng = rng();
        let n = 20_000u32;
        let total: Duration = (0..n).map(|_| dist.sample(&mut rng)).sum();
        let avg_ms = (total / n).as_secs_f64() * 1e3;
        assert!((9.5..10.5).contains(&avg_ms), "average {avg_ms} ms");
        assert!((0..n).all(|_| dist.sample(&mut rng) <= mean * EXPONENTIAL_MEANS_MAX));
    }

    #[test]
    fn tail_mixture_draws_from_the_tail_with_probability_p() {
        let dist = Dist::tail(0.1, Dist::constant(Duration::from_millis(1)), Dist::constant(Duration::from_secs(1)));
        let mut rng = rng();
        let tails = (0..10_000).filter(|_| dist.sample(&mut rng) == Duration::from_secs(1)).count();
        assert!((800..1200).contains(&tails), "{tails} tail draws of 10000");
    }

    #[test]
    fn validation_names_the_problem() {
        let bad_p = Dist::tail(1.5, Dist::ZERO, Dist::ZERO);
        assert!(matches!(bad_p.validate("latency"), Err(ConfigError::Probability { what: "latency", .. })));
        let empty = Dist::uniform(Duration::from_secs(2), Duration::from_secs(1));
        assert!(matches!(empty.validate("x"), Err(ConfigError::EmptyRange { .. })));
        let mut deep = Dist::ZERO;
        for _ in 0..DIST_DEPTH_MAX {
            deep = Dist::tail(0.5, deep, Dist::ZERO);
        }
        assert!(matches!(deep.validate("x"), Err(ConfigError::TooDeep { .. })));
        assert_eq!(Dist::lan().validate("lan"), Ok(()));
    }
}
