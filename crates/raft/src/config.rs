//! Tuning of one Raft node, and its validation.
//!
//! In: durations and limits chosen by the operator or a scenario.
//! Out: a [`Config`] the core trusts once [`Config::validate`] accepted it.

use std::time::Duration;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Election timeouts are drawn uniformly from `[min, max)` (§5.2). `min`
    /// is also the leader lease: a node that heard from a leader less than
    /// `min` ago refuses to pre-vote or vote for anyone else (§4.2.3, §9.6),
    /// and a leader that did not hear from a majority within `min` steps
    /// down (check-quorum).
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// How often a leader sends heartbeats; well below `election_timeout_min`.
    pub heartbeat_interval: Duration,
    /// Entries in one AppendEntries message (at least one is always sent).
    pub entries_per_append_max: usize,
    /// Bytes of entries in one AppendEntries message (counted with
    /// `ENTRY_OVERHEAD_BYTES` each; a single larger entry still goes alone).
    pub append_bytes_max: usize,
    /// AppendEntries sent to one follower and not yet acknowledged.
    pub inflight_appends_max: usize,
    /// Entries a leader holds beyond its commit index before refusing proposals.
    pub uncommitted_entries_max: u64,
    /// Bytes of one client command.
    pub command_bytes_max: usize,
    /// Committed entries handed out for applying and not yet reported applied.
    pub apply_batch_entries_max: u64,
    /// Outgoing messages queued (ready or waiting for a persist) before new
    /// ones are dropped; dropping is safe, Raft retransmits.
    pub messages_queued_max: usize,
    /// ReadIndex requests a leader holds, waiting or confirmed and not yet
    /// taken in a `Ready`, before refusing more.
    pub reads_pending_max: usize,
    /// Bytes of snapshot data in one InstallSnapshot message.
    pub snapshot_chunk_bytes_max: usize,
    /// The largest snapshot a follower accepts (it buffers one in memory).
    pub snapshot_bytes_max: u64,
    /// How many entries a learner may lag behind the leader's log and still
    /// be promoted to voter (0: fully caught up).
    pub promote_lag_entries_max: u64,
    /// Serve reads from a leader lease (thesis §6.4.1) as well as by
    /// ReadIndex. Then a node also refuses to vote for anyone during its
    /// first `election_timeout_min` after a restart and within that long of
    /// hearing from any leader, whatever term it has moved to since: the
    /// promises a lease relies on.
    pub lease_reads: bool,
    /// The drift the lease assumes: no clock runs faster than another by
    /// more than this many parts per million, measured over an election
    /// timeout. A lease lasts `election_timeout_min / (1 + drift)`.
    pub clock_drift_ppm_max: u64,
    /// A gap of at least this long between two calls into the node means
    /// the node itself was not running (its process or the whole machine
    /// stalled), not that its peers fell silent: the time it missed does
    /// not count against them. A follower's election timer and a leader's
    /// check-quorum window start again from the end of the gap; at most
    /// once per `election_timeout_max`, so an overloaded node still
    /// campaigns, one timeout late. While set, `next_deadline` is never
    /// more than half of it away, so that an idle node is called often
    /// enough to tell. `None` (the default, and the simulator's): a node
    /// that was paused campaigns at once. Elections are liveness, not
    /// safety (leader leases do not rest on these timers): this only ever
    /// delays one.
    pub stall_gap_min: Option<Duration>,
    /// Tell a follower of a new commit index at once, with an empty append,
    /// when no append is going to it anyway (etcd's leader does). Off (the
    /// default), a follower learns a commit with the next append or
    /// heartbeat, so without new writes it applies up to a heartbeat
    /// interval after the leader; a station needs it on, to answer the
    /// writes it relayed once it applied them itself.
    pub commit_notices: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(600),
            heartbeat_interval: Duration::from_millis(50),
            entries_per_append_max: 256,
            append_bytes_max: 1024 * 1024,
            inflight_appends_max: 16,
            uncommitted_entries_max: 16 * 1024,
            command_bytes_max: 1024 * 1024,
            apply_batch_entries_max: 1024,
            messages_queued_max: 64 * 1024,
            reads_pending_max: 4096,
            snapshot_chunk_bytes_max: 1024 * 1024,
            snapshot_bytes_max: 1 << 32,
            promote_lag_entries_max: 1024,
            lease_reads: false,
            clock_drift_ppm_max: 10_000,
            stall_gap_min: None,
            commit_notices: false,
        }
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("election_timeout_min ({min:?}) must be positive and below election_timeout_max ({max:?})")]
    ElectionTimeout { min: Duration, max: Duration },
    #[error("heartbeat_interval ({heartbeat:?}) must be positive and below election_timeout_min ({election:?})")]
    Heartbeat { heartbeat: Duration, election: Duration },
    #[error(
        "stall_gap_min ({gap:?}) must be at least heartbeat_interval ({heartbeat:?}) and below election_timeout_min ({election:?})"
    )]
    StallGap { gap: Duration, heartbeat: Duration, election: Duration },
    #[error("limit {name} must be at least 1")]
    ZeroLimit { name: &'static str },
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (min, max) = (self.election_timeout_min, self.election_timeout_max);
        if min.is_zero() || min >= max {
            return Err(ConfigError::ElectionTimeout { min, max });
        }
        let heartbeat = self.heartbeat_interval;
        if heartbeat.is_zero() || heartbeat >= min {
            return Err(ConfigError::Heartbeat { heartbeat, election: min });
        }
        // Below a heartbeat, a busy but running node would look stalled;
        // at or above the election timeout, a stall would go unnoticed.
        if let Some(gap) = self.stall_gap_min.filter(|&gap| gap < heartbeat || gap >= min) {
            return Err(ConfigError::StallGap { gap, heartbeat, election: min });
        }
        let limits: [(&'static str, u64); 10] = [
            ("entries_per_append_max", self.entries_per_append_max as u64),
            ("append_bytes_max", self.append_bytes_max as u64),
            ("inflight_appends_max", self.inflight_appends_max as u64),
            ("uncommitted_entries_max", self.uncommitted_entries_max),
            ("command_bytes_max", self.command_bytes_max as u64),
            ("apply_batch_entries_max", self.apply_batch_entries_max),
            ("messages_queued_max", self.messages_queued_max as u64),
            ("reads_pending_max", self.reads_pending_max as u64),
            ("snapshot_chunk_bytes_max", self.snapshot_chunk_bytes_max as u64),
            ("snapshot_bytes_max", self.snapshot_bytes_max),
        ];
        match limits.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(ConfigError::ZeroLimit { name }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_named() {
        assert_eq!(Config::default().validate(), Ok(()));
        let inverted = Config { election_timeout_max: Duration::from_millis(100), ..Config::default() };
        assert!(matches!(inverted.validate(), Err(ConfigError::ElectionTimeout { .. })));
        let slow_heartbeat = Config { heartbeat_interval: Duration::from_secs(1), ..Config::default() };
        assert!(matches!(slow_heartbeat.validate(), Err(ConfigError::Heartbeat { .. })));
        let no_inflight = Config { inflight_appends_max: 0, ..Config::default() };
        assert_eq!(no_inflight.validate(), Err(ConfigError::ZeroLimit { name: "inflight_appends_max" }));
    }
}
