//! What the daemon knows of its replica, from the replica's outputs.
//!
//! In: every [`ReplicaEvent`] (called on the executor's thread, so it only
//! stores atomics, bumps metrics and rings the command bell). Out: the latest role, term, leader,
//! commit and applied index and store size for `status`, `identity`,
//! `/health` and the forwarding decision; the fatal reason, if the
//! replica stopped; and the bell that wakes agents' command fetches.

use crate::command_bell::CommandBell;
use crate::metrics::Metrics;
use haven_raft::Role;
use haven_station::ReplicaEvent;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use tokio::sync::watch;

#[derive(Debug, Default)]
pub struct Progress {
    role: AtomicU8,
    term: AtomicU64,
    /// 0 when no leader is known.
    leader: AtomicU64,
    commit: AtomicU64,
    applied: AtomicU64,
    store_bytes: AtomicU64,
    revision: AtomicU64,
    /// The same revision, for requests waiting until this member applied
    /// a write the leader answered (`wait_revision`).
    revisions: watch::Sender<u64>,
    fatal: Mutex<Option<String>>,
    bell: CommandBell,
}

/// One reading of [`Progress`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<u64>,
    pub commit: u64,
    pub applied: u64,
    pub store_bytes: u64,
    pub fatal: Option<String>,
}

const ROLES: [&str; 4] = ["follower", "pre-candidate", "candidate", "leader"];

fn role_code(role: Role) -> u8 {
    match role {
        Role::Follower => 0,
        Role::PreCandidate => 1,
        Role::Candidate => 2,
        Role::Leader => 3,
    }
}

impl Progress {
    pub fn observe(&self, event: &ReplicaEvent, metrics: &Metrics) {
        let set = |cell: &AtomicU64, value: u64| cell.store(value, Ordering::Relaxed);
        match event {
            ReplicaEvent::Role { role, term, leader } => {
                let leader = leader.map_or(0, |l| l.0);
                let was = self.leader.swap(leader, Ordering::Relaxed);
                if was != leader && leader != 0 {
                    metrics.leader_changes.inc();
                }
                let role_was = self.role.swap(role_code(*role), Ordering::Relaxed);
                // Every change of role or leader: an operator reading the log
                // after an outage sees when the stations lost and found a leader.
                if was != leader || role_was != role_code(*role) {
                    tracing::info!(?role, term, leader, "role or leader changed (leader 0: none known)");
                }
                set(&self.term, *term);
                metrics.term.set(i64::try_from(*term).unwrap_or(i64::MAX));
                metrics.is_leader.set(i64::from(*role == Role::Leader));
                metrics.has_leader.set(i64::from(leader != 0));
            }
            ReplicaEvent::Applied { index, .. } => {
                set(&self.applied, *index);
                metrics.applied.set(i64::try_from(*index).unwrap_or(i64::MAX));
            }
            ReplicaEvent::Committed { index, revision, store_bytes, leases } => {
                set(&self.commit, *index);
                set(&self.revision, *revision);
                self.revisions.send_if_modified(|applied| {
                    let newer = *revision > *applied;
                    *applied = (*applied).max(*revision);
                    newer
                });
                set(&self.store_bytes, *store_bytes);
                let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
                metrics.commit.set(gauge(*index));
                metrics.revision.set(gauge(*revision));
                metrics.store_bytes.set(gauge(*store_bytes));
                metrics.leases.set(gauge(*leases));
            }
            ReplicaEvent::Fatal { reason } => {
                *self.fatal.lock().expect("never poisoned: no panics while held") = Some(reason.clone());
            }
            ReplicaEvent::CommandsIssued { nodes } => self.bell.ring(nodes),
            // The roster (`roster.rs`) keeps the members.
            ReplicaEvent::Opened { .. }
            | ReplicaEvent::LeaseRevoked { .. }
            | ReplicaEvent::Members { .. }
            | ReplicaEvent::FenceRequested { .. }
            | ReplicaEvent::HaStepTooLarge { .. } => {}
        }
    }

    /// Wakes the command fetches waiting for the nodes a step commands.
    pub fn command_bell(&self) -> &CommandBell {
        &self.bell
    }

    pub fn leader(&self) -> Option<u64> {
        Some(self.leader.load(Ordering::Relaxed)).filter(|&l| l != 0)
    }

    /// Waits until this member applied `revision`, or until `deadline`;
    /// says whether it did.
    pub async fn wait_revision(&self, revision: u64, deadline: tokio::time::Instant) -> bool {
        let mut applied = self.revisions.subscribe();
        let reached = tokio::time::timeout_at(deadline, applied.wait_for(|&applied| applied >= revision)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// The store revision of the last applied batch.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Relaxed)
    }

    /// The index of the last entry the replica applied (as last reported).
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Relaxed)
    }

    pub fn is_leader(&self) -> bool {
        self.role.load(Ordering::Relaxed) == role_code(Role::Leader)
    }

    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().expect("never poisoned: no panics while held").clone()
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let get = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        ProgressSnapshot {
            role: ROLES[usize::from(self.role.load(Ordering::Relaxed))],
            term: get(&self.term),
            leader: self.leader(),
            commit: get(&self.commit),
            applied: get(&self.applied),
            store_bytes: get(&self.store_bytes),
            fatal: self.fatal(),
        }
    }
}
