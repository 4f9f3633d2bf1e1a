//! Configuration errors.
//!
//! In: a [`crate::SimConfig`], a [`crate::Dist`] or a link setting.
//! Out: a [`ConfigError`] naming the setting and the bound it breaks, so a
//! bad scenario fails at construction rather than somewhere inside a run.

use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    #[error("{what}: probability {p} is not within 0..=1")]
    Probability { what: &'static str, p: f64 },
    #[error("{what}: uniform range {lo:?}..={hi:?} is empty")]
    EmptyRange { what: &'static str, lo: Duration, hi: Duration },
    #[error("{what}: distribution nested deeper than {depth_max} levels")]
    TooDeep { what: &'static str, depth_max: usize },
    #[error("node count {nodes} is not within 1..={nodes_max}")]
    Nodes { nodes: usize, nodes_max: usize },
    #[error("process {process:?} must come after the process it starts after")]
    ProcessOrder { process: String },
    #[error("a simulation runs one scenario; this one already ran {procs} processes")]
    ScenarioTwice { procs: usize },
    #[error("{what} must be at most {max}")]
    Above { what: &'static str, max: u64 },
    #[error("{what} must be at least 1")]
    ZeroLimit { what: &'static str },
}

/// Checks that `p` is a probability; NaN is not.
pub(crate) fn check_probability(what: &'static str, p: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&p) { Ok(()) } else { Err(ConfigError::Probability { what, p }) }
}
