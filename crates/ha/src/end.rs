//! Why an instance stopped or ended, kept with it so that the decision that
//! replaces it can say why ("moved db from n3 to n5: n3's lease expired at
//! 12.345 s").
//!
//! In: the coordinator's reasons for stopping or fencing an instance. Out:
//! the words for the decision log.

use crate::decision::secs;
use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndReason {
    LeaseExpired {
        node: NodeId,
        at_ms: u64,
    },
    FenceConfirmed {
        node: NodeId,
        at_ms: u64,
    },
    /// Failed once more after `restarts` restarts in place within the window.
    Failed {
        node: NodeId,
        restarts: u32,
        window_ms: u64,
        detail: String,
    },
    /// The node's agent joined again with a new session, having ended the
    /// old session's instances first.
    NewSession {
        node: NodeId,
    },
    Drained {
        node: NodeId,
    },
    Moved {
        to: NodeId,
    },
    NotColocated {
        with: String,
    },
    Surplus,
    Disabled,
    Removed,
}

impl EndReason {
    /// A failure keeps the instance in the graph as `failed` once stopped;
    /// the other reasons are routine and the instance simply leaves.
    pub fn is_failure(&self) -> bool {
        matches!(self, EndReason::Failed { .. })
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::LeaseExpired { node, at_ms } => write!(f, "{node}'s lease expired at {}", secs(*at_ms)),
            EndReason::FenceConfirmed { node, at_ms } => write!(f, "{node} was fenced at {}", secs(*at_ms)),
            EndReason::Failed { restarts, window_ms, detail, .. } => {
                write!(f, "{detail} after {restarts} restarts within {}", secs(*window_ms))
            }
            EndReason::NewSession { node } => write!(f, "{node}'s agent started a new session"),
            EndReason::Drained { node } => write!(f, "{node} is drained"),
            EndReason::Moved { to } => write!(f, "the operator moved it to {to}"),
            EndReason::NotColocated { with } => write!(f, "{with} is active on another node"),
            EndReason::Surplus => f.write_str("more instances than wanted"),
            EndReason::Disabled => f.write_str("the service is disabled"),
            EndReason::Removed => f.write_str("the service was removed"),
        }
    }
}
