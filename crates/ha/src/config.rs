//! The coordinator's tunables.
//!
//! In: the station's configuration. Out: the limits and delays `step` uses.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorConfig {
    /// An unacknowledged command is sent again after this long.
    pub command_retry_ms: u64,
    /// Failed and fenced instances stay visible this long, then leave.
    pub instance_terminal_keep_ms: u64,
    /// Joins beyond this many nodes are refused.
    pub nodes_len_max: usize,
    /// Services beyond this many are refused.
    pub services_len_max: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> CoordinatorConfig {
        CoordinatorConfig {
            command_retry_ms: 500,
            instance_terminal_keep_ms: 300_000,
            nodes_len_max: 100_000,
            services_len_max: 10_000,
        }
    }
}
