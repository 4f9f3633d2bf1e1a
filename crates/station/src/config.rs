//! A replica's configuration.
//!
//! In: the voters and the settings of each layer. Out: a [`ReplicaConfig`]
//! checked once, with errors naming the field.
//!
//! There is deliberately no knob for the lease extension a new leader
//! grants: it is Raft's `election_timeout_max`, so it cannot be set below
//! the time a holder may need to find the new leader.

use crate::ha_fence::{FenceConfig, FenceConfigError};
use crate::members::{MEMBERS_LEN_MAX, MemberRecord};
use haven_ha::CoordinatorConfig;
use haven_raft::Config as RaftConfig;
use haven_runtime::NodeId;
use haven_store::{LessorConfig, StoreConfig};
use haven_wal::WalConfig;
use std::time::Duration;
use thiserror::Error;

/// Keys a snapshot writes per event-loop turn unless configured otherwise
/// (`ReplicaConfig::snapshot_keys_per_turn`).
pub const SNAPSHOT_KEYS_PER_TURN_DEFAULT: usize = 1_024;

#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// Every voter of the group, this replica included.
    pub voters: Vec<NodeId>,
    pub raft: RaftConfig,
    pub wal: WalConfig,
    pub store: StoreConfig,
    /// Client sessions kept (exactly-once retries); see `Sessions`.
    pub sessions_max: usize,
    /// Client requests waiting for their entry to apply; beyond it a
    /// request is answered `Busy`.
    pub waiters_max: usize,
    /// Applied entries after which the replica snapshots its state machine
    /// and compacts the log.
    pub snapshot_entries: u64,
    /// Keys of the store a snapshot encodes per turn of the event loop,
    /// between which the replica applies and answers as usual. 1,024 keys
    /// of 256 bytes take about half a millisecond; at 4,096 the longer steps
    /// cost the 256-client benchmark more p99 than they saved in turns.
    pub snapshot_keys_per_turn: usize,
    /// The leader's lessor: how often an unapplied expiry is proposed
    /// again, and how many expiries one lease tick proposes at most.
    pub lessor: LessorConfig,
    /// How often the leader looks for expired leases.
    pub lease_tick_interval: Duration,
    /// Leases the store may hold; further grants are refused by the leader
    /// (`TooManyLeases`). Checked when proposing, so grants already in the
    /// log may overshoot it by at most Raft's `uncommitted_entries_max`.
    pub leases_max: usize,
    /// Watches this replica serves at once (all clients together); further
    /// watch requests are refused `Busy`.
    pub watches_max: usize,
    /// MVCC history kept, in revisions: once the history grows an eighth
    /// past this, the leader compacts it (through the log) down to this many,
    /// like etcd's revision-mode auto-compaction. Bounds the store, its
    /// snapshots and the work a snapshot costs. `None` keeps everything
    /// until a client compacts.
    pub history_revisions_max: Option<u64>,
    /// The initial member table (ids, addresses, all voting), which the
    /// first leader writes to the log once; from then on the log's table
    /// rules and the leader steers Raft's configuration after it. Empty: no
    /// table (the simulator's groups, and a member joining a running
    /// cluster, which learns the table from the log).
    pub members: Vec<MemberRecord>,
    /// The coordinator's tunables (it runs on the leader).
    pub coordinator: CoordinatorConfig,
    /// Shortest interval between two coordinator ticks (reconciliation
    /// without an event: retries, timeouts).
    pub ha_tick_interval: Duration,
    /// Whether the leader sends agents their commands as messages (the
    /// simulator's agents are nodes of the same network). `haven station`
    /// turns it off: its agents poll the commands from any station's
    /// applied graph, and agents are not peers of the Raft network.
    pub agent_commands_pushed: bool,
    /// External fencing of silent nodes that hold a singleton (`ha_fence.rs`);
    /// `None`: failover waits for the lease's expiry alone.
    pub fence: Option<FenceConfig>,
}

impl ReplicaConfig {
    pub fn new(voters: Vec<NodeId>) -> ReplicaConfig {
        ReplicaConfig {
            voters,
            // Followers answer the writes they relay once they applied them,
            // and serve watchers: they must hear of commits at once.
            raft: RaftConfig { commit_notices: true, ..RaftConfig::default() },
            wal: WalConfig::default(),
            store: StoreConfig::default(),
            sessions_max: 10_000,
            waiters_max: 10_000,
            snapshot_entries: 10_000,
            snapshot_keys_per_turn: SNAPSHOT_KEYS_PER_TURN_DEFAULT,
            lessor: LessorConfig { expired_batch_len_max: 100, ..LessorConfig::default() },
            lease_tick_interval: Duration::from_millis(100),
            leases_max: 100_000,
            watches_max: 1_000,
            history_revisions_max: None,
            members: Vec::new(),
            coordinator: CoordinatorConfig::default(),
            ha_tick_interval: Duration::from_millis(100),
            agent_commands_pushed: true,
            fence: None,
        }
    }

    pub fn validate(&self) -> Result<(), ReplicaConfigError> {
        let mut voters = self.voters.clone();
        voters.sort();
        voters.dedup();
        if voters.len() != self.voters.len() || voters.is_empty() {
            return Err(ReplicaConfigError::Voters(self.voters.clone()));
        }
        self.raft.validate().map_err(|e| ReplicaConfigError::Raft(e.to_string()))?;
        if self.sessions_max == 0
            || self.waiters_max == 0
            || self.snapshot_entries == 0
            || self.snapshot_keys_per_turn == 0
            || self.leases_max == 0
            || self.watches_max == 0
            || self.history_revisions_max == Some(0)
        {
            return Err(ReplicaConfigError::ZeroLimit);
        }
        if self.lease_tick_interval.is_zero()
            || self.lessor.expired_batch_len_max == 0
            || self.ha_tick_interval.is_zero()
        {
            return Err(ReplicaConfigError::LeaseTick);
        }
        if let Some(fence) = &self.fence {
            fence.validate().map_err(ReplicaConfigError::Fence)?;
        }
        self.validate_members()
    }

    /// The initial table names exactly the voters, each once, all voting.
    fn validate_members(&self) -> Result<(), ReplicaConfigError> {
        if self.members.is_empty() {
            return Ok(());
        }
        let ids: Vec<NodeId> = self.members.iter().map(|m| NodeId(m.id)).collect();
        let mut voters = self.voters.clone();
        voters.sort();
        if ids != voters || self.members.len() > MEMBERS_LEN_MAX || self.members.iter().any(|m| !m.voter) {
            return Err(ReplicaConfigError::Members { ids, voters });
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ReplicaConfigError {
    #[error("voters {0:?}: list each voter once, at least one")]
    Voters(Vec<NodeId>),
    #[error("raft: {0}")]
    Raft(String),
    #[error(
        "sessions_max, waiters_max, snapshot_entries, snapshot_keys_per_turn, leases_max, watches_max and history_revisions_max must be at least 1"
    )]
    ZeroLimit,
    #[error(
        "lease_tick_interval, lessor.expired_batch_len_max and ha_tick_interval must be positive, or no lease ever \
         expires and no decision is retried"
    )]
    LeaseTick,
    #[error(
        "members {ids:?}: the initial member table lists exactly the voters {voters:?}, sorted by id, all voting, \
         at most {MEMBERS_LEN_MAX}"
    )]
    Members { ids: Vec<NodeId>, voters: Vec<NodeId> },
    #[error("fence: {0}")]
    Fence(FenceConfigError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_tick_or_expiry_batch_of_zero_is_refused() {
        let valid = ReplicaConfig::new(vec![NodeId(1)]);
        assert_eq!(valid.validate(), Ok(()));
        let no_tick = ReplicaConfig { lease_tick_interval: Duration::ZERO, ..valid.clone() };
        assert_eq!(no_tick.validate(), Err(ReplicaConfigError::LeaseTick));
        let mut no_batch = valid.clone();
        no_batch.lessor.expired_batch_len_max = 0;
        assert_eq!(no_batch.validate(), Err(ReplicaConfigError::LeaseTick));
        let no_leases = ReplicaConfig { leases_max: 0, ..valid };
        assert_eq!(no_leases.validate(), Err(ReplicaConfigError::ZeroLimit));
    }
}
