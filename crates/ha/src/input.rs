//! What the coordinator is woken by: one event or a tick, each with the
//! station leader's time in milliseconds.
//!
//! In: agents' observations (through proxies and the replicated event
//! queue), the station's lease expiries, operator actions and ticks. Out: a
//! value `step` reads, and its description for the decision log.

use crate::command::CommandId;
use crate::instance::InstanceId;
use crate::spec::ServiceSpec;
use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The station leader's time when the input is processed.
    pub now_ms: u64,
    pub event: Event,
}

/// Instance events carry the token of the incarnation they are about
/// (`None` for a standby), so reports about an older incarnation are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Nothing happened; time passed. Reconciliation runs on every input.
    Tick,
    /// An agent registered (or re-registered) and was granted a lease.
    NodeJoined {
        node: NodeId,
        address: String,
        labels: BTreeMap<String, String>,
        lease_expires_at_ms: u64,
        /// The store lease that keeps the node alive, naming its session.
        session: i64,
    },
    LeaseRenewed {
        node: NodeId,
        expires_at_ms: u64,
    },
    /// The station's lease table expired the node's lease.
    LeaseExpired {
        node: NodeId,
    },
    /// The operator's external fence command for the node reported success
    /// while the node held `session` (its store lease). A confirmation for
    /// another session is ignored: a power-fenced node reboots and joins
    /// again with a new session, which a late confirmation must not end.
    FenceConfirmed {
        node: NodeId,
        session: i64,
    },
    InstanceStarted {
        instance: InstanceId,
        token: Option<u64>,
    },
    /// The instance passed its health check (a standby: it is ready).
    InstanceActive {
        instance: InstanceId,
        token: Option<u64>,
    },
    /// The process exited; `code` is `None` when a signal killed it.
    InstanceExited {
        instance: InstanceId,
        token: Option<u64>,
        code: Option<i32>,
    },
    /// The health check failed `failure_threshold` times in a row.
    InstanceUnhealthy {
        instance: InstanceId,
        token: Option<u64>,
    },
    CommandDone {
        command: CommandId,
    },
    CommandFailed {
        command: CommandId,
        error: String,
    },
    Operator(OperatorAction),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorAction {
    /// Add a service, or replace the spec of an existing one (running
    /// instances keep the spec they were started with).
    AddService(Box<ServiceSpec>),
    RemoveService {
        service: String,
    },
    Enable {
        service: String,
    },
    Disable {
        service: String,
    },
    /// Move a singleton's primary to `to`.
    Move {
        service: String,
        to: NodeId,
    },
    Drain {
        node: NodeId,
    },
    Undrain {
        node: NodeId,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Tick => f.write_str("tick"),
            Event::NodeJoined { node, .. } => write!(f, "{node} joined"),
            Event::LeaseRenewed { node, .. } => write!(f, "{node} renewed its lease"),
            Event::LeaseExpired { node } => write!(f, "{node}'s lease expired"),
            Event::FenceConfirmed { node, .. } => write!(f, "fence of {node} confirmed"),
            Event::InstanceStarted { instance, .. } => write!(f, "{instance} started"),
            Event::InstanceActive { instance, .. } => write!(f, "{instance} active"),
            Event::InstanceExited { instance, code: Some(code), .. } => write!(f, "{instance} exited with code {code}"),
            Event::InstanceExited { instance, code: None, .. } => write!(f, "{instance} killed by a signal"),
            Event::InstanceUnhealthy { instance, .. } => write!(f, "{instance} unhealthy"),
            Event::CommandDone { command } => write!(f, "{command} done"),
            Event::CommandFailed { command, error } => write!(f, "{command} failed: {error}"),
            Event::Operator(action) => write!(f, "operator: {action}"),
        }
    }
}

impl fmt::Display for OperatorAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperatorAction::AddService(spec) => write!(f, "add service {}", spec.name),
            OperatorAction::RemoveService { service } => write!(f, "remove service {service}"),
            OperatorAction::Enable { service } => write!(f, "enable {service}"),
            OperatorAction::Disable { service } => write!(f, "disable {service}"),
            OperatorAction::Move { service, to } => write!(f, "move {service} to {to}"),
            OperatorAction::Drain { node } => write!(f, "drain {node}"),
            OperatorAction::Undrain { node } => write!(f, "undrain {node}"),
        }
    }
}
