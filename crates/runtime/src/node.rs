//! Node identity.
//!
//! In: a number chosen by the operator (production) or the scenario (sim).
//! Out: the address a component sends to. Components inside one node are
//! addressed by the parent's message enum, not by a separate id.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The identity of one node in the cluster.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}
