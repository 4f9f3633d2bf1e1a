//! The service specification an operator declares: what to run, how many,
//! where, how to check it and how to restart it.
//!
//! In: the operator's definition (API, CLI or TOML). Out: a value the
//! coordinator places and the agent runs; `validate` (in `validate.rs`) says
//! whether it is acceptable before it enters the state graph.

use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One service as the operator declared it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    /// The program to run (no shell), with its arguments and environment.
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    pub kind: ServiceKind,
    pub placement: Placement,
    pub health: HealthSpec,
    pub restart: RestartPolicy,
    /// Run by the agent to turn a ready standby into the primary; it receives
    /// the new fencing token. Required when the singleton has standbys.
    pub promote: Option<String>,
    /// Kept for the agent; the coordinator never demotes in this version (a
    /// primary that must leave is stopped).
    pub demote: Option<String>,
    pub start_timeout_ms: u64,
    pub stop_timeout_ms: u64,
    pub enabled: bool,
}

/// How many instances and in which roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceKind {
    /// One primary at a time. `standbys` more instances run in the standby
    /// role on other nodes, started without a fencing token, so that
    /// failover is a `promote` (hot) rather than a cold start.
    Singleton { standbys: u32 },
    /// `count` primaries on distinct nodes.
    Replicated { count: u32 },
    /// One primary on every live node that the placement admits.
    EveryNode,
}

/// Where instances may and should run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Every key=value must be among the node's labels.
    pub labels: BTreeMap<String, String>,
    /// Services whose instances must not share a node with this one's
    /// (enforced both ways when placing).
    pub anti_affinity: Vec<String>,
    /// Cascading failover: the first eligible node of this list wins; nodes
    /// not listed come after, least loaded first.
    pub preferred: Vec<NodeId>,
    /// Run only where this service has an active primary.
    pub colocate_with: Option<String>,
    /// Place new instances only once each of these services has an active
    /// primary somewhere.
    pub start_after: Vec<String>,
}

/// How the agent checks that an instance is healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthCheck {
    /// The process is alive.
    Process,
    /// The command exits 0.
    Exec { command: String, args: Vec<String> },
    /// A TCP connection to `addr` (host:port) succeeds.
    Tcp { addr: String },
    /// An HTTP GET of `url` answers 2xx.
    Http { url: String },
}

/// The health check and its timing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSpec {
    pub check: HealthCheck,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive failed checks before the agent reports the instance unhealthy.
    pub failure_threshold: u32,
}

/// Pacemaker's migration-threshold and failure-timeout: restart in place up
/// to `restarts_max` times within `restart_window_ms`, then move elsewhere and
/// keep off that node for `restart_window_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub restarts_max: u32,
    pub restart_window_ms: u64,
}

impl ServiceSpec {
    /// A spec with the defaults an operator would expect: process check every
    /// second, 3 restarts in place per minute, 30 s to start, 10 s to stop,
    /// enabled, placed anywhere.
    pub fn new(name: &str, command: &str, kind: ServiceKind) -> ServiceSpec {
        ServiceSpec {
            name: name.to_string(),
            command: command.to_string(),
            args: Vec::new(),
            env: BTreeMap::new(),
            working_dir: None,
            kind,
            placement: Placement::default(),
            health: HealthSpec {
                check: HealthCheck::Process,
                interval_ms: 1_000,
                timeout_ms: 500,
                failure_threshold: 3,
            },
            restart: RestartPolicy { restarts_max: 3, restart_window_ms: 60_000 },
            promote: None,
            demote: None,
            start_timeout_ms: 30_000,
            stop_timeout_ms: 10_000,
            enabled: true,
        }
    }

    pub fn is_singleton(&self) -> bool {
        matches!(self.kind, ServiceKind::Singleton { .. })
    }
}
