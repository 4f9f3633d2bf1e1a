//! The messages Raft nodes exchange.
//!
//! In: nothing (plain data). Out: the [`Message`] enum the glue serializes
//! with the runtime's wire codec, and [`Envelope`], a message with its
//! destination as [`crate::Ready`] hands it out.
//!
//! Heartbeats are separate from appends (as in etcd) so that a pipelined
//! follower is never asked to check a log position that an in-flight append
//! has not delivered yet; a heartbeat carries only a commit index that the
//! follower is known to hold.

use crate::entry::{Entry, LogPosition};
use crate::state::SnapshotMeta;
use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};

/// Terms above this are refused as invalid. No real cluster gets near it (a
/// billion elections a second would take 292 years), and the headroom
/// means `term + 1` can never overflow, whatever a peer sends.
pub const TERM_MAX: u64 = u64::MAX >> 1;

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Message {
    /// "Would you vote for me in `term`?" (§9.6). `term` is the sender's
    /// current term plus one; nobody changes term because of it.
    PreVote {
        term: u64,
        last_log: LogPosition,
    },
    /// `term` is the proposed term when granted, the responder's term when not.
    PreVoteResponse {
        term: u64,
        granted: bool,
    },
    /// `transfer`: the candidate was told to run by the leader (TimeoutNow,
    /// thesis §3.10), so voters grant it even within a leader's lease.
    Vote {
        term: u64,
        last_log: LogPosition,
        transfer: bool,
    },
    VoteResponse {
        term: u64,
        granted: bool,
    },
    /// AppendEntries (§5.3): `entries` follow `prev` in the leader's log.
    Append {
        term: u64,
        prev: LogPosition,
        entries: Vec<Entry>,
        commit: u64,
    },
    AppendResponse {
        term: u64,
        outcome: AppendOutcome,
    },
    /// `commit` is at most the follower's acknowledged match index.
    /// `round` numbers the leader's heartbeat broadcasts in its term; the
    /// follower echoes it, so that a ReadIndex registered before round r is
    /// confirmed by a majority's answers to round r or later (§6.4).
    Heartbeat {
        term: u64,
        commit: u64,
        round: u64,
    },
    /// One chunk of the snapshot described by `meta` (§7): bytes
    /// `offset..offset + data.len()` of `total_bytes`. One chunk is in
    /// flight per follower.
    InstallSnapshot {
        term: u64,
        meta: SnapshotMeta,
        offset: u64,
        total_bytes: u64,
        #[serde(with = "haven_runtime::byte_vec")]
        data: Vec<u8>,
    },
    /// The follower holds the first `received_bytes` of the snapshot ending
    /// at `last` (0: start over). The last chunk is answered, once the
    /// snapshot is installed and durable, by an append acknowledgement.
    InstallSnapshotResponse {
        term: u64,
        last: LogPosition,
        received_bytes: u64,
    },
    /// Leadership transfer (thesis §3.10): the leader of `term` tells an
    /// up-to-date follower to start an election at once, without pre-vote.
    TimeoutNow {
        term: u64,
    },
    /// Also sent in reply to any append or heartbeat of a stale term (with
    /// round 0), so that a deposed leader learns the newer term.
    HeartbeatResponse {
        term: u64,
        round: u64,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to `match_index`.
    Accepted { match_index: u64 },
    /// The follower does not hold `prev_index` with the leader's term.
    Rejected { prev_index: u64, hint: ConflictHint },
}

/// What a follower tells the leader so that it can skip a whole term of
/// conflicting entries in one round trip instead of one entry per round.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ConflictHint {
    /// The follower's log ends before the probed index.
    LogTooShort { last_index: u64 },
    /// At the probed index the follower holds `term`, whose first entry in
    /// the follower's log is at `first_index`.
    TermMismatch { term: u64, first_index: u64 },
}

impl Message {
    pub fn term(&self) -> u64 {
        match self {
            Message::PreVote { term, .. }
            | Message::PreVoteResponse { term, .. }
            | Message::Vote { term, .. }
            | Message::VoteResponse { term, .. }
            | Message::Append { term, .. }
            | Message::AppendResponse { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatResponse { term, .. }
            | Message::TimeoutNow { term }
            | Message::InstallSnapshot { term, .. }
            | Message::InstallSnapshotResponse { term, .. } => *term,
        }
    }
}

/// A message and the node it goes to.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Envelope {
    pub to: NodeId,
    pub msg: Message,
}
