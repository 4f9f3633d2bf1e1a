//! A service in the state graph: the operator's spec plus what the
//! coordinator remembers about it between steps.
//!
//! In: operator actions and the coordinator's placements. Out: the desired
//! state the coordinator reconciles against.

use crate::end::EndReason;
use crate::spec::ServiceSpec;
use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub spec: ServiceSpec,
    /// Removal asked: every instance is stopped, then the service leaves.
    pub removing: bool,
    /// The operator's move target for a singleton, cleared once a primary is
    /// placed (there or, if it became ineligible, elsewhere).
    pub move_to: Option<NodeId>,
    /// Nodes kept out after the restart policy moved the service away, each
    /// until the given time (Pacemaker's failure-timeout). At most one entry
    /// per node.
    pub bans: BTreeMap<NodeId, u64>,
    /// The last "cannot place" reason recorded, so that a service that stays
    /// blocked records one decision, not one per tick.
    pub blocked: Option<String>,
    /// Where and why the last primary of a singleton ended, for the words of
    /// the decision that replaces it.
    pub last_end: Option<Ended>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    pub node: NodeId,
    pub reason: EndReason,
}

impl Service {
    pub fn new(spec: ServiceSpec) -> Service {
        Service { spec, removing: false, move_to: None, bans: BTreeMap::new(), blocked: None, last_end: None }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether instances should run at all.
    pub fn wants_instances(&self) -> bool {
        self.spec.enabled && !self.removing
    }

    pub fn is_banned(&self, node: NodeId, now_ms: u64) -> bool {
        self.bans.get(&node).is_some_and(|until_ms| now_ms < *until_ms)
    }
}
