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
    /// Records each of the timed rules start timeout, re-issue and
    /// collection acts on in one step at most, the most overdue first; the
    /// rest wait for the next step. Without it, a step re-sending 7,000
    /// start commands at boot did not fit one log entry, and the leader
    /// could not commit any step again (`ha-scale` at 10,000 agents).
    #[serde(default = "overdue_per_step_max_default")]
    pub overdue_per_step_max: usize,
}

fn overdue_per_step_max_default() -> usize {
    256
}

impl Default for CoordinatorConfig {
    fn default() -> CoordinatorConfig {
        CoordinatorConfig {
            command_retry_ms: 500,
            instance_terminal_keep_ms: 300_000,
            nodes_len_max: 100_000,
            services_len_max: 10_000,
            overdue_per_step_max: overdue_per_step_max_default(),
        }
    }
}
