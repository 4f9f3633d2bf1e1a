//! What the `/v1/` API answers: nodes, services with their instances, the
//! decision log, and the receipt of a queued operator action.
//!
//! In: JSON from a station. Out: typed values for the CLI's tables. Every
//! read is the answering station's applied state (it may lag the leader by
//! a moment); `version` counts the coordinator steps applied so far and
//! `queue_len` the events still waiting for it.

use crate::ha::service::ServiceDef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: u64,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub lease: LeaseView,
    pub drained: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<u64>,
    /// Instances the graph places on this node (any state).
    pub instances: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum LeaseView {
    /// Alive up to and including `expires_at_ms` (cluster time).
    Alive { expires_at_ms: u64 },
    /// Dead since `at_ms`; `cause` says whether the lease ran out or a fence confirmed.
    Expired { at_ms: u64, cause: ExpiryCause },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpiryCause {
    Lease,
    Fenced,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    pub name: String,
    pub spec: ServiceDef,
    /// Removal asked: its instances are stopping, then it leaves.
    pub removing: bool,
    /// The node an operator's move is heading for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_to: Option<u64>,
    /// Why the coordinator cannot place it now, if it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    pub instances: Vec<InstanceView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub id: u64,
    pub service: String,
    pub node: u64,
    pub role: Role,
    pub state: State,
    /// The fencing token of the primary's incarnation; absent for a standby never promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    /// Cluster time when it entered its state.
    pub since_ms: u64,
    /// Restarts in place within the restart window.
    pub restarts: u64,
    /// Why it is stopping or ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Primary,
    Standby,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Pending,
    Starting,
    Active,
    Stopping,
    Failed,
    Fenced,
}

/// One decision of the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Cluster time of the decision, in milliseconds.
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub text: String,
    /// The input that caused it.
    pub cause: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeList {
    pub nodes: Vec<NodeView>,
    pub version: u64,
    pub queue_len: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceList {
    pub services: Vec<ServiceView>,
    pub version: u64,
    pub queue_len: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceList {
    pub instances: Vec<InstanceView>,
    pub version: u64,
    pub queue_len: u64,
}

/// The decision log, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventList {
    pub events: Vec<EventView>,
    pub version: u64,
    pub queue_len: u64,
}

/// An operator action accepted: queued in the replicated event queue; the
/// coordinator acts on it within moments and records what it did (see
/// `GET /v1/events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    pub event_id: u64,
    pub note: String,
}

/// `POST /v1/services?dry_run=true`: the definition is valid, nothing queued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    pub name: String,
    pub valid: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// The node id to move the singleton's primary to.
    pub to: u64,
}

/// Every `/v1/` error: what is wrong and, for bad input, the field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        })
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Pending => "pending",
            State::Starting => "starting",
            State::Active => "active",
            State::Stopping => "stopping",
            State::Failed => "failed",
            State::Fenced => "fenced",
        })
    }
}

/// Milliseconds of cluster time for people: `12345` → `12.345 s`.
pub fn secs(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_read_as_tagged_objects() {
        let alive: LeaseView = serde_json::from_str(r#"{"state":"alive","expires_at_ms":12}"#).unwrap();
        assert_eq!(alive, LeaseView::Alive { expires_at_ms: 12 });
        let dead = LeaseView::Expired { at_ms: 5, cause: ExpiryCause::Fenced };
        assert_eq!(serde_json::to_string(&dead).unwrap(), r#"{"state":"expired","at_ms":5,"cause":"fenced"}"#);
        assert_eq!(secs(12_345), "12.345 s");
    }
}
