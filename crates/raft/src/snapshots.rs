//! Log compaction and the leader's side of InstallSnapshot (§7, thesis ch. 5).
//!
//! In: `compact(index)` after the caller snapshotted its state machine at
//! an applied index; the snapshot's bytes through `provide_snapshot` when
//! the core asked for them; the followers' chunk acknowledgements.
//! Out: a shorter log and the [`SnapshotMeta`] to store with the snapshot;
//! `Ready::snapshot_needed`; InstallSnapshot chunks of at most
//! `snapshot_chunk_bytes_max` bytes, one in flight per follower.
//!
//! The core keeps no snapshot bytes of its own making: it asks the caller
//! only when a follower needs entries that are gone, and keeps the one
//! snapshot it was given (shared, not copied) until a compaction past it.

use crate::error::{CompactError, SnapshotError};
use crate::message::Message;
use crate::progress::ProgressState;
use crate::raft::{Raft, RoleState};
use crate::state::SnapshotMeta;
use bytes::Bytes;
use haven_runtime::NodeId;

/// The snapshot the caller supplied, kept for sending.
#[derive(Debug)]
pub(crate) struct CachedSnapshot {
    pub(crate) meta: SnapshotMeta,
    pub(crate) data: Bytes,
}

/// Whether the caller must be asked for the snapshot's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SnapshotRequest {
    None,
    /// To be reported in the next `Ready`.
    Wanted,
    /// Reported; asked again if still unanswered a check-quorum period later.
    Asked,
}

impl Raft {
    /// The caller snapshotted its state machine at applied `index`: the log
    /// drops every entry up to it. Returns the metadata to store with the
    /// snapshot (and to pass to `provide_snapshot` with its bytes).
    pub fn compact(&mut self, index: u64) -> Result<SnapshotMeta, CompactError> {
        let meta = self.compaction_meta(index)?;
        self.compact_log(index);
        Ok(meta)
    }

    /// The metadata of a snapshot at `index`, if the log may be compacted
    /// there: for a caller that takes its snapshot over some time and
    /// compacts (`compact`, which checks again) once it is complete.
    pub fn compaction_meta(&self, index: u64) -> Result<SnapshotMeta, CompactError> {
        let snapshot_index = self.log.snapshot().index;
        if index > self.applied_index() {
            return Err(CompactError::NotApplied { index, applied: self.applied_index() });
        }
        if index < snapshot_index {
            return Err(CompactError::AlreadyCompacted { index, snapshot_index });
        }
        let stable_index = self.gate.stable_index();
        if index > stable_index {
            return Err(CompactError::NotDurable { index, stable_index });
        }
        Ok(self.snapshot_meta_at(index))
    }

    pub(crate) fn compact_log(&mut self, index: u64) {
        self.log.compact_to(index);
        self.gate.note_log_start(self.log.first_index(), self.log.last_index());
        if self.snapshot_cache.as_ref().is_some_and(|c| c.meta.last.index < index) {
            self.snapshot_cache = None;
        }
    }

    /// The metadata of a snapshot at `index`, which must be in the log.
    fn snapshot_meta_at(&self, index: u64) -> SnapshotMeta {
        let term = self.log.term_at(index).expect("a snapshot point is in the log");
        let last = crate::entry::LogPosition::new(index, term);
        SnapshotMeta { last, membership: self.log.membership_at(index).clone() }
    }

    /// The caller's latest snapshot, in answer to `Ready::snapshot_needed`.
    pub fn provide_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), SnapshotError> {
        let (index, term) = (meta.last.index, meta.last.term);
        let first_index = self.log.first_index();
        if index + 1 < first_index {
            return Err(SnapshotError::Stale { index, first_index });
        }
        if index > self.commit {
            return Err(SnapshotError::NotCommitted { index, commit: self.commit });
        }
        if let Some(log_term) = self.log.term_at(index).filter(|&t| t != term) {
            return Err(SnapshotError::TermMismatch { index, term, log_term });
        }
        let (bytes, bytes_max) = (data.len() as u64, self.config.snapshot_bytes_max);
        if bytes > bytes_max {
            return Err(SnapshotError::TooLarge { bytes, bytes_max });
        }
        self.snapshot_cache = Some(CachedSnapshot { meta, data });
        self.snapshot_request = SnapshotRequest::None;
        Ok(())
    }

    /// The next chunk for `peer`, whose next entry is compacted away; asks
    /// the caller for the snapshot if none is at hand.
    pub(crate) fn next_snapshot_chunk(&mut self, peer: NodeId) -> Option<Message> {
        let (term, chunk_bytes_max) = (self.term, self.config.snapshot_chunk_bytes_max as u64);
        let first_index = self.log.first_index();
        let usable = self.snapshot_cache.as_ref().filter(|c| c.meta.last.index + 1 >= first_index);
        let RoleState::Leader(leadership) = &mut self.role else { return None };
        let round = leadership.read_round;
        let progress = leadership.progress.get_mut(&peer)?;
        let Some(cache) = usable else {
            progress.state = ProgressState::NeedsSnapshot;
            if self.snapshot_request == SnapshotRequest::None {
                self.snapshot_request = SnapshotRequest::Wanted;
            }
            return None;
        };
        if !matches!(progress.state, ProgressState::Snapshot { last, .. } if last == cache.meta.last) {
            progress.start_snapshot(cache.meta.last);
        }
        let ProgressState::Snapshot { offset, sent_round: None, .. } = progress.state else { return None };
        let total_bytes = cache.data.len() as u64;
        assert!(offset <= total_bytes, "acknowledged offsets are checked against the size");
        let end = total_bytes.min(offset + chunk_bytes_max);
        let data = cache.data[offset as usize..end as usize].to_vec();
        progress.on_chunk_sent(round);
        Some(Message::InstallSnapshot { term, meta: cache.meta.clone(), offset, total_bytes, data })
    }

    pub(crate) fn on_install_snapshot_response(
        &mut self,
        from: NodeId,
        last: crate::entry::LogPosition,
        received: u64,
    ) {
        let total = self.snapshot_cache.as_ref().filter(|c| c.meta.last == last).map(|c| c.data.len() as u64);
        if total.is_some_and(|total| received > total) {
            self.counters.messages_invalid += 1;
            return;
        }
        let RoleState::Leader(leadership) = &mut self.role else { return };
        let Some(progress) = leadership.progress.get_mut(&from) else { return };
        progress.recent_active = true;
        if total.is_some() {
            progress.on_snapshot_received(last, received);
        }
    }

    /// For `Ready::snapshot_needed`: true once per request.
    pub(crate) fn take_snapshot_request(&mut self) -> bool {
        let wanted = self.snapshot_request == SnapshotRequest::Wanted;
        if wanted {
            self.snapshot_request = SnapshotRequest::Asked;
        }
        wanted
    }

    /// An unanswered request is repeated (the caller may have failed to read the snapshot).
    pub(crate) fn renew_snapshot_request(&mut self) {
        if self.snapshot_request == SnapshotRequest::Asked {
            self.snapshot_request = SnapshotRequest::Wanted;
        }
    }
}
