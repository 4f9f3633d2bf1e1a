//! `haven proxy`: a proxy as a process of its own.
//!
//! In: agents' keep-alives, reports and command polls over HTTP (the paths
//! they use at a station); the stations' answers. Out: one batch at a time
//! to the station leader, the agents' commands polled from any station,
//! and the proxy's own node kept alive at the stations with the label that
//! makes the coordinator assign agents to it. The decisions (what goes in
//! a batch, which keep-alive a renewal answers) are `haven_ha::ProxyCore`'s;
//! this module moves messages.

pub mod host;
pub mod member;
pub mod serve;

use haven_ha::AgentCommand;
use haven_runtime::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// What the core task publishes for the agent-facing handlers.
#[derive(Debug, Default)]
pub struct Shared {
    /// The latest pending commands, per agent.
    pub commands: BTreeMap<NodeId, Vec<AgentCommand>>,
    /// Agents the stations assigned elsewhere, not yet told.
    pub moved: BTreeSet<NodeId>,
}
