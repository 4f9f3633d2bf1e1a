//! Failure-detector tuning and its validation.
//!
//! In: values from the operator (or a scenario). Out: a checked
//! [`DetectorConfig`], or an error naming the field and the fix.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// Timing of the ping-based failure detector.
///
/// The worst-case detection time of a crashed peer is `timeout_max + period`;
/// it is `timeout_initial + period` until false suspicions have grown the
/// peer's timeout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// Interval between two pings to every peer.
    pub period: Duration,
    /// Time without a pong after which a peer is first suspected.
    pub timeout_initial: Duration,
    /// Added to a peer's timeout after each false suspicion of it.
    pub timeout_increment: Duration,
    /// A peer's timeout never grows beyond this.
    pub timeout_max: Duration,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            period: Duration::from_millis(50),
            timeout_initial: Duration::from_millis(200),
            timeout_increment: Duration::from_millis(250),
            timeout_max: Duration::from_millis(1000),
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("detector.period must be at least 1 ms (got {0:?}); a zero period would ping in a busy loop")]
    PeriodTooShort(Duration),
    #[error(
        "detector.timeout_initial ({timeout:?}) must exceed detector.period ({period:?}): \
         otherwise every peer is suspected between two pings; raise timeout_initial"
    )]
    TimeoutNotAbovePeriod { timeout: Duration, period: Duration },
    #[error(
        "detector.timeout_increment must be positive: without it a false suspicion is never \
         corrected and the leader can flap forever; set it to e.g. 100ms"
    )]
    NoIncrement,
    #[error("detector.timeout_max ({max:?}) must be at least detector.timeout_initial ({initial:?})")]
    MaxBelowInitial { max: Duration, initial: Duration },
}

impl DetectorConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.period < Duration::from_millis(1) {
            return Err(ConfigError::PeriodTooShort(self.period));
        }
        if self.timeout_initial <= self.period {
            return Err(ConfigError::TimeoutNotAbovePeriod { timeout: self.timeout_initial, period: self.period });
        }
        if self.timeout_increment.is_zero() {
            return Err(ConfigError::NoIncrement);
        }
        if self.timeout_max < self.timeout_initial {
            return Err(ConfigError::MaxBelowInitial { max: self.timeout_max, initial: self.timeout_initial });
        }
        Ok(())
    }

    /// Longest time from a peer's crash to its suspicion by a correct node.
    pub fn detection_ms_max(&self) -> u64 {
        (self.timeout_max + self.period).as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_name_the_field() {
        DetectorConfig::default().validate().unwrap();
        let bad = DetectorConfig { timeout_increment: Duration::ZERO, ..DetectorConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("timeout_increment"));
        let bad = DetectorConfig { timeout_initial: Duration::from_millis(50), ..DetectorConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("timeout_initial"));
    }
}
