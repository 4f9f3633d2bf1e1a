//! Log entries and the kinds Raft encodes into their opaque payload.
//!
//! In: a client command, or the core's own no-op and configuration records.
//! Out: an [`Entry`] (index, term, payload bytes) exactly as the WAL stores
//! it, and back: [`Entry::kind`] decodes the payload without copying it.
//!
//! Payload layout: one tag byte, then the body. A command's body is the
//! client's bytes verbatim; a no-op has no body; a configuration's body is
//! a [`Membership`] in wire encoding, validated whenever the kind is read.

use crate::membership::{Membership, MembershipError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

const TAG_COMMAND: u8 = 1;
const TAG_NOOP: u8 = 2;
const TAG_CONFIG: u8 = 3;

/// Fixed per-entry cost counted against byte limits, so that a flood of
/// empty entries is bounded too (index + term + tag, rounded up).
pub const ENTRY_OVERHEAD_BYTES: usize = 24;

/// A position in the log. `Ord` is Raft's "at least as up to date" order
/// (§5.4.1): the later term wins, and for equal terms the longer log.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct LogPosition {
    pub term: u64,
    pub index: u64,
}

impl LogPosition {
    pub const fn new(index: u64, term: u64) -> LogPosition {
        LogPosition { term, index }
    }
}

impl fmt::Debug for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@t{}", self.index, self.term)
    }
}

/// One log entry as the WAL stores and the network carries it.
///
/// The payload is shared, not owned: the leader hands each entry to its
/// WAL, to every follower's append and to its state machine, and those
/// copies are reference counts, not allocations and copies of the bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    #[serde(
        serialize_with = "haven_runtime::byte_vec::serialize",
        deserialize_with = "haven_runtime::byte_vec::deserialize_shared"
    )]
    pub payload: Arc<[u8]>,
}

/// What an entry's payload means.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EntryKind<'a> {
    /// A client command, opaque to consensus.
    Command(&'a [u8]),
    /// Appended by a new leader so that its term has an entry to commit (§5.4.2).
    Noop,
    /// A configuration (`Membership::to_bytes`), in force once appended.
    Config(&'a [u8]),
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("entry payload is empty (no kind tag)")]
    Empty,
    #[error("entry payload has unknown kind tag {0}")]
    UnknownTag(u8),
    #[error("no-op entry carries {0} body bytes")]
    NoopWithBody(usize),
    #[error("configuration entry is invalid: {0}")]
    Config(MembershipError),
}

impl EntryKind<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body): (u8, &[u8]) = match self {
            EntryKind::Command(bytes) => (TAG_COMMAND, bytes),
            EntryKind::Noop => (TAG_NOOP, &[]),
            EntryKind::Config(bytes) => (TAG_CONFIG, bytes),
        };
        let mut payload = Vec::with_capacity(1 + body.len());
        payload.push(tag);
        payload.extend_from_slice(body);
        payload
    }
}

impl Entry {
    pub fn new(index: u64, term: u64, kind: EntryKind<'_>) -> Entry {
        Entry { index, term, payload: kind.encode().into() }
    }

    pub fn command(index: u64, term: u64, command: &[u8]) -> Entry {
        Entry::new(index, term, EntryKind::Command(command))
    }

    pub fn noop(index: u64, term: u64) -> Entry {
        Entry::new(index, term, EntryKind::Noop)
    }

    pub fn position(&self) -> LogPosition {
        LogPosition::new(self.index, self.term)
    }

    /// Decodes the payload; never panics, whatever the bytes.
    pub fn kind(&self) -> Result<EntryKind<'_>, PayloadError> {
        let (&tag, body) = self.payload.split_first().ok_or(PayloadError::Empty)?;
        match tag {
            TAG_COMMAND => Ok(EntryKind::Command(body)),
            TAG_NOOP if body.is_empty() => Ok(EntryKind::Noop),
            TAG_NOOP => Err(PayloadError::NoopWithBody(body.len())),
            TAG_CONFIG => {
                Membership::from_bytes(body).map_err(PayloadError::Config)?;
                Ok(EntryKind::Config(body))
            }
            other => Err(PayloadError::UnknownTag(other)),
        }
    }

    /// The bytes this entry counts for against `append_bytes_max`.
    pub fn size_bytes(&self) -> usize {
        ENTRY_OVERHEAD_BYTES + self.payload.len()
    }
}

impl fmt::Debug for Entry {
    /// `3@t2 cmd[5]`: transcripts stay readable with large commands.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@t{} ", self.index, self.term)?;
        match self.kind() {
            Ok(EntryKind::Command(bytes)) => write!(f, "cmd{:?}", String::from_utf8_lossy(bytes)),
            Ok(EntryKind::Noop) => write!(f, "noop"),
            Ok(EntryKind::Config(bytes)) => write!(f, "config[{}]", bytes.len()),
            Err(e) => write!(f, "bad({e})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_the_payload() {
        let config = Membership::new(vec![haven_runtime::NodeId(1)], vec![]).to_bytes();
        for kind in [EntryKind::Command(b"put x"), EntryKind::Command(b""), EntryKind::Noop, EntryKind::Config(&config)]
        {
            let entry = Entry::new(4, 2, kind);
            assert_eq!(entry.kind(), Ok(kind));
        }
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let bad = |payload: Vec<u8>| Entry { index: 1, term: 1, payload: payload.into() }.kind().err();
        assert_eq!(bad(vec![]), Some(PayloadError::Empty));
        assert_eq!(bad(vec![0]), Some(PayloadError::UnknownTag(0)));
        assert_eq!(bad(vec![TAG_NOOP, 9]), Some(PayloadError::NoopWithBody(1)));
        assert!(matches!(bad(vec![TAG_CONFIG, 0, 0, 0]), Some(PayloadError::Config(MembershipError::NoVoters))));
        assert!(matches!(bad(vec![TAG_CONFIG, 9]), Some(PayloadError::Config(MembershipError::Decode(_)))));
    }

    #[test]
    fn log_position_order_is_term_first() {
        assert!(LogPosition::new(1, 3) > LogPosition::new(9, 2), "a later term beats a longer log");
        assert!(LogPosition::new(5, 2) > LogPosition::new(4, 2), "same term: the longer log wins");
    }
}
