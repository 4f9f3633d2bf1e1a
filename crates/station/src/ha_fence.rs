//! External fencing, decided on the leader: which silent node to fence, when
//! to try again, and turning a confirmed fence into a coordinator event.
//!
//! In: the leader's applied graph and lessor (scanned at most every
//! `scan_interval`), and the local client's `StationMsg::FenceResult`s.
//! Out: [`ReplicaEvent::FenceRequested`] (node, address, session, attempt)
//! for the daemon, which runs the operator's `fence_command`; and, for a
//! success, the report `Event::FenceConfirmed { node, session }` proposed
//! through the log like any agent report.
//!
//! When: a node is fenced when its agent has not renewed its store lease
//! for `after` (by the leader's lessor), the lease is still alive, and the
//! node holds a singleton's primary (pending, starting, active or stopping):
//! only a singleton's failover waits for the old holder, so only it gains.
//! At most `in_flight_max` fences run at once; an attempt that fails or gets
//! no answer within `attempt_timeout` is retried after `retry_interval`, up
//! to `attempts_max` attempts per (node, session); then the leader gives up
//! and the lease expiry takes over. A node that rejoins with a new session
//! starts afresh. A new leader knows nothing of its predecessor's attempts:
//! it may fence a node again (power-off is idempotent), never more often
//! than `attempts_max` per term.
//!
//! Safety: fencing only ever adds a second way to end a node's session. The
//! coordinator treats a confirmation as it treats the lease's expiry (the
//! node's instances are `Fenced`, a singleton moves) and only for the
//! session named, so a late confirmation cannot end the session a rebooted
//! node joined with. What a confirmation promises — the node's processes
//! are dead and stay dead until it reboots and joins again — is the fence
//! command's contract, as with Pacemaker's fence agents; nothing here runs
//! the command, so a failed, hung or absent device leaves failover exactly
//! where it was: at the lease's expiry, after the agent fenced itself.

use crate::command::Command;
use crate::msg::HaReport;
use crate::replica::{Replica, ReplicaEvent};
use crate::running::Running;
use haven_ha::{Event, Lease, StateGraph};
use haven_raft::Role;
use haven_runtime::{CtxFor, Instant, NodeId};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

/// The operator's fencing policy (`ReplicaConfig::fence`; `None`: no device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceConfig {
    /// A holder's silence (time since its last lease renewal) after which
    /// it is fenced; below the lease TTL, or fencing gains nothing.
    pub after: Duration,
    /// How long the leader waits for one attempt's result.
    pub attempt_timeout: Duration,
    /// Wait after a failed attempt before the next.
    pub retry_interval: Duration,
    /// Attempts per (node, session) at most.
    pub attempts_max: u32,
    /// Fences running at once at most.
    pub in_flight_max: usize,
    /// Shortest interval between two looks for nodes to fence.
    pub scan_interval: Duration,
}

impl FenceConfig {
    /// Fence after `after` of silence, with defaults for the rest.
    pub fn new(after: Duration) -> FenceConfig {
        FenceConfig {
            after,
            attempt_timeout: Duration::from_secs(10),
            retry_interval: Duration::from_millis(500),
            attempts_max: 3,
            in_flight_max: 16,
            scan_interval: Duration::from_millis(20),
        }
    }

    pub fn validate(&self) -> Result<(), FenceConfigError> {
        if self.after.is_zero() || self.attempt_timeout.is_zero() || self.scan_interval.is_zero() {
            return Err(FenceConfigError::ZeroTime);
        }
        if self.attempts_max == 0 || self.in_flight_max == 0 {
            return Err(FenceConfigError::ZeroLimit);
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FenceConfigError {
    #[error("fence after, attempt_timeout and scan_interval must be positive: a zero would fence every node at once")]
    ZeroTime,
    #[error(
        "fence attempts_max and in_flight_max must be at least 1, or no fence ever runs (set fence to None instead)"
    )]
    ZeroLimit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    InFlight {
        since: Instant,
    },
    Waiting {
        until: Instant,
    },
    /// Proposed `FenceConfirmed` at this time; proposed again if the node
    /// is still alive `attempt_timeout` later (the proposal was lost).
    Confirmed {
        at: Instant,
    },
    GaveUp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Attempt {
    session: i64,
    attempts: u32,
    phase: Phase,
}

/// The leader's fences, by node (at most one entry per node in the graph).
#[derive(Debug, Default)]
pub(crate) struct HaFence {
    config: Option<FenceConfig>,
    by_node: BTreeMap<NodeId, Attempt>,
    scanned_at: Option<Instant>,
}

impl HaFence {
    pub(crate) fn new(config: Option<FenceConfig>) -> HaFence {
        HaFence { config, by_node: BTreeMap::new(), scanned_at: None }
    }

    fn in_flight(&self) -> usize {
        self.by_node.values().filter(|a| matches!(a.phase, Phase::InFlight { .. })).count()
    }
}

/// The attempt failed or timed out: wait and retry, or give up at the bound.
fn fence_failed(config: &FenceConfig, attempt: Attempt, now: Instant) -> Attempt {
    let phase = match attempt.attempts >= config.attempts_max {
        true => Phase::GaveUp,
        false => Phase::Waiting { until: now + config.retry_interval },
    };
    Attempt { phase, ..attempt }
}

/// Whether `node` holds a singleton's primary.
fn holds_singleton(graph: &StateGraph, node: NodeId) -> bool {
    graph
        .instances_on(node)
        .any(|i| i.holds() && i.is_primary() && graph.services.get(&i.service).is_some_and(|s| s.spec.is_singleton()))
}

impl Running {
    /// On the leader, at most every `scan_interval`: starts, times out and
    /// retries fences (see the header).
    pub(crate) fn steer_fence(&mut self, ctx: &mut impl CtxFor<Replica>) {
        let Some(config) = self.ha.fence.config.clone() else { return };
        let now = ctx.now();
        if self.role != Role::Leader {
            self.ha.fence.by_node.clear();
            self.ha.fence.scanned_at = None;
            return;
        }
        if self.ha.fence.scanned_at.is_some_and(|at| now.saturating_since(at) < config.scan_interval) {
            return;
        }
        self.ha.fence.scanned_at = Some(now);
        let graph = &self.sm.ha().graph;
        let lessor = self.leases.lessor();
        let alive = |n: &haven_ha::Node| matches!(n.lease, Lease::Alive { .. });
        // Forget fences of sessions that ended (expired, fenced, replaced).
        self.ha.fence.by_node.retain(|id, a| graph.nodes.get(id).is_some_and(|n| alive(n) && n.session == a.session));
        // An attempt nobody answered frees its slot even if its node spoke
        // again meanwhile (then nothing below looks at it).
        for attempt in self.ha.fence.by_node.values_mut() {
            if matches!(attempt.phase, Phase::InFlight { since } if now.saturating_since(since) >= config.attempt_timeout)
            {
                *attempt = fence_failed(&config, *attempt, now);
            }
        }
        let mut due = Vec::new();
        for node in graph.nodes.values().filter(|n| alive(n)) {
            let Some(started) = lessor.clock_started_at(node.session) else { continue };
            if now.saturating_since(started) >= config.after && holds_singleton(graph, node.id) {
                due.push((node.id, node.address.clone(), node.session));
            }
        }
        for (node, address, session) in due {
            self.fence_due(ctx, &config, node, address, session);
        }
    }

    /// One silent holder: start, time out, retry or re-propose its fence.
    fn fence_due(
        &mut self,
        ctx: &mut impl CtxFor<Replica>,
        config: &FenceConfig,
        node: NodeId,
        address: String,
        session: i64,
    ) {
        let now = ctx.now();
        let fresh = Attempt { session, attempts: 0, phase: Phase::Waiting { until: now } };
        let attempt = *self.ha.fence.by_node.get(&node).unwrap_or(&fresh);
        let next = match attempt.phase {
            Phase::Waiting { until } if now >= until && self.ha.fence.in_flight() < config.in_flight_max => {
                let attempts = attempt.attempts + 1;
                ctx.output(ReplicaEvent::FenceRequested { node, address, session, attempt: attempts });
                Attempt { attempts, phase: Phase::InFlight { since: now }, ..attempt }
            }
            Phase::Confirmed { at } if now.saturating_since(at) >= config.attempt_timeout => {
                self.propose_fenced(node, session);
                Attempt { phase: Phase::Confirmed { at: now }, ..attempt }
            }
            _ => attempt,
        };
        self.ha.fence.by_node.insert(node, next);
    }

    fn propose_fenced(&mut self, node: NodeId, session: i64) {
        let report = HaReport::Event(Event::FenceConfirmed { node, session });
        // Refused (not leader, busy): the next scan proposes it again.
        let _ = self.raft.propose(&Command::Ha { ack: None, report }.encode());
    }

    /// The daemon's (or the simulated device's) result for one attempt.
    /// Only an attempt in flight on this leader for that session counts.
    pub(crate) fn fence_result(&mut self, now: Instant, node: NodeId, session: i64, fenced: bool) {
        let Some(config) = self.ha.fence.config.clone() else { return };
        let Some(attempt) = self.ha.fence.by_node.get(&node).copied() else { return };
        if self.role != Role::Leader || attempt.session != session || !matches!(attempt.phase, Phase::InFlight { .. }) {
            return;
        }
        let next = match fenced {
            true => {
                self.propose_fenced(node, session);
                Attempt { phase: Phase::Confirmed { at: now }, ..attempt }
            }
            false => fence_failed(&config, attempt, now),
        };
        self.ha.fence.by_node.insert(node, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_times_and_limits_are_refused() {
        let valid = FenceConfig::new(Duration::from_millis(500));
        assert_eq!(valid.validate(), Ok(()));
        let never = FenceConfig { after: Duration::ZERO, ..valid.clone() };
        assert_eq!(never.validate(), Err(FenceConfigError::ZeroTime));
        let none = FenceConfig { in_flight_max: 0, ..valid };
        assert_eq!(none.validate(), Err(FenceConfigError::ZeroLimit));
    }
}
