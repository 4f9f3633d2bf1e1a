//! One instance of a service on one node, and its life cycle.
//!
//! In: the coordinator's placements and the agent's reports. Out: whether the
//! instance still holds its service's slot (a singleton may have a new
//! primary only when no instance holds it) and what its state means.
//!
//! States: `pending` (start or promote issued, not yet acknowledged),
//! `starting` (the agent started it, not yet healthy), `active` (healthy),
//! `stopping` (stop issued, not yet confirmed), then one of two terminal
//! states kept for the operator's view until collected: `failed` (stopped
//! after too many failures) and `fenced` (its node's lease expired or a fence
//! confirmed). Instances stopped for other reasons leave the graph.

use crate::command::{CommandId, Issued};
use crate::end::EndReason;
use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct InstanceId(pub u64);

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceState {
    Pending,
    Starting,
    Active,
    Stopping,
    Failed,
    Fenced,
}

/// Primary instances serve; standby instances of a singleton run without a
/// fencing token, ready to be promoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Primary,
    Standby,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: InstanceId,
    pub service: String,
    pub node: NodeId,
    pub role: Role,
    pub state: InstanceState,
    /// The fencing token of the primary's current incarnation; `None` for a
    /// standby that was never promoted.
    pub token: Option<u64>,
    /// When the instance entered its current state.
    pub since_ms: u64,
    /// Times of the restarts in place still inside the restart window
    /// (at most `restarts_max` are kept).
    pub restarts_ms: Vec<u64>,
    /// The command awaiting acknowledgement, re-issued until it is.
    pub command: Option<Issued>,
    /// Why it is stopping or ended.
    pub end: Option<EndReason>,
}

impl Instance {
    pub fn is_terminal(&self) -> bool {
        matches!(self.state, InstanceState::Failed | InstanceState::Fenced)
    }

    /// Holds the service's slot: it may run, or may still be running.
    pub fn holds(&self) -> bool {
        !self.is_terminal()
    }

    /// Counts towards the desired number: holds and is not on its way out.
    pub fn is_wanted(&self) -> bool {
        self.holds() && self.state != InstanceState::Stopping
    }

    pub fn is_primary(&self) -> bool {
        self.role == Role::Primary
    }

    pub fn awaits(&self, command: CommandId) -> bool {
        self.command.as_ref().is_some_and(|issued| issued.command.id == command)
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self {
            InstanceState::Pending => "pending",
            InstanceState::Starting => "starting",
            InstanceState::Active => "active",
            InstanceState::Stopping => "stopping",
            InstanceState::Failed => "failed",
            InstanceState::Fenced => "fenced",
        };
        f.write_str(word)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        })
    }
}

impl fmt::Display for Instance {
    /// `i3 db@n2 primary active token 7`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}@{} {} {}", self.id, self.service, self.node, self.role, self.state)?;
        if let Some(token) = self.token {
            write!(f, " token {token}")?;
        }
        Ok(())
    }
}
