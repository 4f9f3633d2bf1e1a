//! A follower's buffer for one snapshot arriving in chunks.
//!
//! In: chunks (snapshot metadata, offset, total size, bytes) whose sizes
//! the caller has already checked against `snapshot_bytes_max`.
//! Out: how many bytes are held (the answer to the leader), or the whole
//! snapshot once its last byte arrived.
//!
//! Chunks must arrive in order; anything else is answered with what is
//! held, so the leader resends from there. A chunk of another snapshot
//! replaces the buffer only if it starts it (offset 0): the leader always
//! starts a new snapshot from the beginning.

use crate::state::SnapshotMeta;

#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum ChunkOutcome {
    /// Bytes held of the snapshot being received (0: start over).
    Held(u64),
    Complete(SnapshotMeta, Vec<u8>),
}

#[derive(Debug)]
struct Partial {
    meta: SnapshotMeta,
    total_bytes: u64,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
pub(crate) struct SnapshotInbox {
    partial: Option<Partial>,
}

impl SnapshotInbox {
    pub(crate) fn receive(
        &mut self,
        meta: SnapshotMeta,
        offset: u64,
        total_bytes: u64,
        chunk: Vec<u8>,
    ) -> ChunkOutcome {
        assert!(offset + chunk.len() as u64 <= total_bytes, "chunk bounds are checked before");
        let same = self.partial.as_ref().is_some_and(|p| p.meta == meta && p.total_bytes == total_bytes);
        if !same {
            if offset != 0 {
                self.partial = None;
                return ChunkOutcome::Held(0);
            }
            self.partial = Some(Partial { meta, total_bytes, data: Vec::new() });
        }
        let partial = self.partial.as_mut().expect("set above");
        if offset != partial.data.len() as u64 {
            return ChunkOutcome::Held(partial.data.len() as u64);
        }
        partial.data.extend_from_slice(&chunk);
        if (partial.data.len() as u64) < total_bytes {
            return ChunkOutcome::Held(partial.data.len() as u64);
        }
        let Partial { meta, data, .. } = self.partial.take().expect("set above");
        ChunkOutcome::Complete(meta, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::LogPosition;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta { last: LogPosition::new(index, 1), ..SnapshotMeta::default() }
    }

    #[test]
    fn chunks_in_order_complete_the_snapshot() {
        let mut inbox = SnapshotInbox::default();
        assert_eq!(inbox.receive(meta(5), 0, 5, b"abc".to_vec()), ChunkOutcome::Held(3));
        assert_eq!(inbox.receive(meta(5), 3, 5, b"de".to_vec()), ChunkOutcome::Complete(meta(5), b"abcde".to_vec()));
        assert_eq!(inbox.receive(meta(5), 3, 5, b"de".to_vec()), ChunkOutcome::Held(0), "done: a late resend restarts");
    }

    #[test]
    fn duplicates_and_gaps_are_answered_with_what_is_held() {
        let mut inbox = SnapshotInbox::default();
        inbox.receive(meta(5), 0, 6, b"ab".to_vec());
        assert_eq!(inbox.receive(meta(5), 0, 6, b"ab".to_vec()), ChunkOutcome::Held(2), "duplicate");
        assert_eq!(inbox.receive(meta(5), 4, 6, b"ef".to_vec()), ChunkOutcome::Held(2), "gap");
        assert_eq!(inbox.receive(meta(5), 2, 6, b"cd".to_vec()), ChunkOutcome::Held(4));
    }

    #[test]
    fn another_snapshot_replaces_the_buffer_only_from_its_start() {
        let mut inbox = SnapshotInbox::default();
        inbox.receive(meta(5), 0, 4, b"ab".to_vec());
        assert_eq!(inbox.receive(meta(7), 2, 4, b"cd".to_vec()), ChunkOutcome::Held(0));
        assert_eq!(inbox.receive(meta(7), 0, 2, b"xy".to_vec()), ChunkOutcome::Complete(meta(7), b"xy".to_vec()));
        assert_eq!(inbox.receive(meta(8), 0, 0, vec![]), ChunkOutcome::Complete(meta(8), vec![]), "empty snapshot");
    }
}
