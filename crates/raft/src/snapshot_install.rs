//! The follower's side of InstallSnapshot (§7, thesis §5.3).
//!
//! In: chunks from the leader; the caller's report that the received
//! snapshot is installed and durable.
//! Out: chunk acknowledgements; the complete snapshot in
//! `Ready::snapshot`; after the install, a log that starts after the
//! snapshot, an applied and commit index at least its last index, and an
//! append acknowledgement of that index to the leader.
//!
//! Between the complete snapshot and its install the log is frozen (no
//! appends are accepted) and no committed entries are handed out, so the
//! state machine never sees an entry the snapshot already contains.

use crate::entry::LogPosition;
use crate::error::UsageError;
use crate::message::{AppendOutcome, Message};
use crate::raft::Raft;
use crate::ready::ReceivedSnapshot;
use crate::snapshot_inbox::ChunkOutcome;
use crate::state::SnapshotMeta;
use haven_runtime::NodeId;

/// A complete snapshot between its arrival and its install.
#[derive(Debug)]
pub(crate) struct Installing {
    meta: SnapshotMeta,
    /// Who sent it: the acknowledgement goes there.
    leader: NodeId,
    log_kept_after: bool,
}

/// A chunk as it arrives.
pub(crate) struct Chunk {
    pub(crate) meta: SnapshotMeta,
    pub(crate) offset: u64,
    pub(crate) total_bytes: u64,
    pub(crate) data: Vec<u8>,
}

impl Raft {
    pub(crate) fn on_install_snapshot(&mut self, from: NodeId, chunk: Chunk) {
        // Called after the message's term was accepted: it is ours now.
        if !self.chunk_is_well_formed(&chunk) {
            self.counters.messages_invalid += 1;
            return;
        }
        if !self.accept_leader(from) {
            return;
        }
        if chunk.meta.last.index <= self.commit {
            // Everything it holds is committed here already (§5.4.3: our
            // committed prefix matches the leader's log).
            let outcome = AppendOutcome::Accepted { match_index: self.commit };
            self.gate.send(from, Message::AppendResponse { term: self.term, outcome });
            return;
        }
        if self.installing.is_some() {
            return; // the answer is the acknowledgement after the install
        }
        let last = chunk.meta.last;
        match self.inbox.receive(chunk.meta, chunk.offset, chunk.total_bytes, chunk.data) {
            ChunkOutcome::Held(received_bytes) => {
                let reply = Message::InstallSnapshotResponse { term: self.term, last, received_bytes };
                self.gate.send(from, reply);
            }
            ChunkOutcome::Complete(meta, data) => {
                let log_kept_after = self.log.term_at(last.index) == Some(last.term);
                self.installing = Some(Installing { meta: meta.clone(), leader: from, log_kept_after });
                self.received_snapshot = Some(ReceivedSnapshot { meta, data, log_kept_after });
            }
        }
    }

    fn chunk_is_well_formed(&self, chunk: &Chunk) -> bool {
        let end = chunk.offset.checked_add(chunk.data.len() as u64);
        let LogPosition { index, term } = chunk.meta.last;
        index > 0
            && term > 0
            && term <= self.term
            && chunk.total_bytes <= self.config.snapshot_bytes_max
            && end.is_some_and(|end| end <= chunk.total_bytes)
            && chunk.meta.membership.validate().is_ok()
    }

    /// The snapshot reported in `Ready::snapshot` is installed in the state
    /// machine and durable, and the WAL's log starts after it.
    pub fn on_snapshot_installed(&mut self, meta: &SnapshotMeta) -> Result<(), UsageError> {
        let index = meta.last.index;
        let waiting = self.installing.as_ref().is_some_and(|i| i.meta == *meta) && self.received_snapshot.is_none();
        if !waiting {
            return Err(UsageError::NoSnapshotToInstall { index });
        }
        let handed_out = self.apply_next - 1;
        if self.applied != handed_out {
            return Err(UsageError::InstalledBeforeApplied { applied: self.applied, handed_out });
        }
        let Installing { meta, leader, log_kept_after } = self.installing.take().expect("checked above");
        assert!(self.applied < index, "a snapshot is received only beyond the commit index");
        let kept = self.log.install_snapshot(meta.last, meta.membership);
        assert_eq!(kept, log_kept_after, "the log was frozen since the snapshot arrived");
        if !kept {
            self.gate.note_log_replaced(index);
        }
        self.gate.note_log_start(self.log.first_index(), self.log.last_index());
        self.commit = self.commit.max(index);
        self.applied = index;
        self.apply_next = index + 1;
        let outcome = AppendOutcome::Accepted { match_index: index };
        self.gate.send(leader, Message::AppendResponse { term: self.term, outcome });
        Ok(())
    }
}
