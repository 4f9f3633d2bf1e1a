//! The replicated state machine of the cluster harness: a running digest
//! of every entry applied, so that snapshots carry checkable content.
//!
//! In: committed entries in order, or a snapshot's bytes. Out: the next
//! index to apply, snapshot bytes, and the digest of a log prefix to
//! compare an installed snapshot against.

use haven_raft::{Entry, SnapshotMeta, StateMachine};
use std::convert::Infallible;

/// Bytes of a snapshot: the digest, the index it covers, and padding so
/// that it travels in several chunks.
const SNAPSHOT_BYTES: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    pub apply_next: u64,
    digest: u64,
}

impl Default for Machine {
    fn default() -> Machine {
        Machine { apply_next: 1, digest: FNV_OFFSET }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl StateMachine for Machine {
    type Output = ();
    type Error = Infallible;

    fn apply(&mut self, entry: &Entry) {
        assert_eq!(entry.index, self.apply_next, "entries are applied in order");
        self.digest = fnv(fnv(fnv(self.digest, &entry.index.to_le_bytes()), &entry.term.to_le_bytes()), &entry.payload);
        self.apply_next += 1;
    }

    fn applied_index(&self) -> u64 {
        self.apply_next - 1
    }

    fn snapshot(&self, meta: &SnapshotMeta) -> Result<Vec<u8>, Infallible> {
        assert_eq!(meta.last.index, self.applied_index(), "a snapshot is taken at the applied index");
        Ok(self.bytes())
    }

    fn restore(&mut self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), Infallible> {
        *self = Machine::from_snapshot(data);
        assert_eq!(self.applied_index(), meta.last.index, "the snapshot's bytes are at its index");
        Ok(())
    }
}

impl Machine {
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(SNAPSHOT_BYTES);
        bytes.extend_from_slice(&self.digest.to_le_bytes());
        bytes.extend_from_slice(&(self.apply_next - 1).to_le_bytes());
        bytes.resize(SNAPSHOT_BYTES, 0xee);
        bytes
    }

    pub fn from_snapshot(bytes: &[u8]) -> Machine {
        assert_eq!(bytes.len(), SNAPSHOT_BYTES, "a snapshot this harness made");
        let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Machine { digest: word(0), apply_next: word(1) + 1 }
    }

    /// The machine after applying `entries` (a log prefix from index 1).
    pub fn of_prefix<'a>(entries: impl Iterator<Item = &'a Entry>) -> Machine {
        let mut machine = Machine::default();
        entries.for_each(|e| machine.apply(e));
        machine
    }
}
