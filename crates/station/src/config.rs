//! A replica's configuration.
//!
//! In: the voters and the settings of each layer. Out: a [`ReplicaConfig`]
//! checked once, with errors naming the field.

use haven_raft::Config as RaftConfig;
use haven_runtime::NodeId;
use haven_store::StoreConfig;
use haven_wal::WalConfig;
use thiserror::Error;

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
}

impl ReplicaConfig {
    pub fn new(voters: Vec<NodeId>) -> ReplicaConfig {
        ReplicaConfig {
            voters,
            raft: RaftConfig::default(),
            wal: WalConfig::default(),
            store: StoreConfig::default(),
            sessions_max: 10_000,
            waiters_max: 10_000,
            snapshot_entries: 10_000,
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
        if self.sessions_max == 0 || self.waiters_max == 0 || self.snapshot_entries == 0 {
            return Err(ReplicaConfigError::ZeroLimit);
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
    #[error("sessions_max, waiters_max and snapshot_entries must be at least 1")]
    ZeroLimit,
}
