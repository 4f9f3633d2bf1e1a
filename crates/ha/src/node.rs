//! A managed machine as the state graph sees it.
//!
//! In: joins, lease renewals and expiries, drain and fence decisions. Out:
//! whether the node is alive at a given time (only an expired lease makes a
//! node dead) and whether new instances may be placed on it.

use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One node (an agent's machine).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: NodeId,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub lease: Lease,
    /// The store lease the agent joined with. A join with another one
    /// starts a new session: the agent has ended every instance of the
    /// old one before it joins again.
    pub session: i64,
    /// Drained by the operator: its instances move away and none are placed.
    pub drained: bool,
    /// The proxy that aggregates this node's reports, once proxies exist.
    pub proxy: Option<u64>,
}

/// The node's lease as the station granted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lease {
    /// Alive up to and including `expires_at_ms`.
    Alive { expires_at_ms: u64 },
    /// Dead since `at_ms`: its agent has fenced itself (or was fenced), and
    /// every instance it held is `fenced` in the graph.
    Expired { at_ms: u64, cause: Expiry },
}

/// What made a node dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// Its lease ran out (self-fenced by then).
    Lease,
    /// An external fence command (power, network) confirmed.
    Fenced,
}

/// The label of a node no service is ever placed on (a `haven proxy`, a
/// witness), and its value. It is read at placement: an instance already
/// on a node that joins again with it stays until it ends.
pub const NO_SERVICES_LABEL: (&str, &str) = ("haven.services", "none");

impl Node {
    /// Whether services may be placed here (see [`NO_SERVICES_LABEL`]).
    pub fn runs_services(&self) -> bool {
        self.labels.get(NO_SERVICES_LABEL.0).is_none_or(|v| v != NO_SERVICES_LABEL.1)
    }

    /// Alive at `now_ms`: the lease is held and has not run out.
    pub fn is_alive(&self, now_ms: u64) -> bool {
        match self.lease {
            Lease::Alive { expires_at_ms } => now_ms <= expires_at_ms,
            Lease::Expired { .. } => false,
        }
    }

    /// Every selector label is among the node's labels with the same value.
    pub fn matches(&self, selector: &BTreeMap<String, String>) -> bool {
        selector.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }

    /// The first selector label the node lacks, as `key=value`.
    pub fn missing_label(&self, selector: &BTreeMap<String, String>) -> Option<String> {
        selector.iter().find(|(k, v)| self.labels.get(*k) != Some(*v)).map(|(k, v)| format!("{k}={v}"))
    }
}
