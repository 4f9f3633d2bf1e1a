//! What Raft keeps on disk, as values and as the opaque bytes the WAL stores.
//!
//! In: the core's term and vote; on restart, the bytes the WAL read back.
//! Out: [`HardState`] and its encoding; [`SnapshotMeta`], the log position a
//! snapshot covers and the configuration in force there, and its encoding;
//! [`DurableState`], everything `Raft::restore` needs.
//!
//! The commit index is deliberately not durable: a restarted node learns it
//! again from the leader, and persisting it would cost a write per commit.

use crate::entry::{Entry, LogPosition};
use crate::membership::{Membership, MembershipError};
use haven_runtime::NodeId;
use haven_runtime::wire::{self, WireError};
use serde::{Deserialize, Serialize};

/// Term and vote: made durable before any message that depends on them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct HardState {
    pub term: u64,
    pub vote: Option<NodeId>,
}

impl HardState {
    /// The bytes the WAL stores (it adds its own version, length and crc32c).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        wire::encode(self, &mut out).expect("a hard state always encodes");
        out
    }

    /// Decodes [`HardState::to_bytes`]; any other input is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<HardState, WireError> {
        wire::decode(bytes)
    }
}

/// What a snapshot covers: its last log position ((0, 0) when there is
/// none) and the configuration in force at that position (no voters when
/// unknown: then `Setup::voters` applies). The caller stores it with the
/// snapshot's bytes ([`SnapshotMeta::to_bytes`]).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub last: LogPosition,
    pub membership: Membership,
}

impl SnapshotMeta {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        wire::encode(self, &mut out).expect("snapshot metadata always encodes");
        out
    }

    /// Decodes [`SnapshotMeta::to_bytes`], validating a recorded configuration.
    pub fn from_bytes(bytes: &[u8]) -> Result<SnapshotMeta, MembershipError> {
        let meta: SnapshotMeta = wire::decode(bytes).map_err(|e| MembershipError::Decode(e.to_string()))?;
        meta.validate()?;
        Ok(meta)
    }

    /// A configuration, if recorded, must be valid.
    pub fn validate(&self) -> Result<(), MembershipError> {
        if self.membership == Membership::default() { Ok(()) } else { self.membership.validate() }
    }
}

/// What the WAL recovered: the input of `Raft::restore`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct DurableState {
    pub hard_state: HardState,
    pub snapshot: SnapshotMeta,
    /// Entries after the snapshot, contiguous from `snapshot.last.index + 1`.
    pub entries: Vec<Entry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_state_round_trips_and_garbage_is_rejected() {
        let hs = HardState { term: 7, vote: Some(NodeId(3)) };
        assert_eq!(HardState::from_bytes(&hs.to_bytes()), Ok(hs));
        assert!(HardState::from_bytes(&[]).is_err());
        assert!(HardState::from_bytes(&[7, 9, 9]).is_err());
    }

    #[test]
    fn snapshot_meta_round_trips_and_a_bad_configuration_is_rejected() {
        let meta = SnapshotMeta {
            last: LogPosition::new(9, 2),
            membership: Membership::new(vec![NodeId(1), NodeId(2)], vec![NodeId(3)]),
        };
        assert_eq!(SnapshotMeta::from_bytes(&meta.to_bytes()), Ok(meta));
        let bad = SnapshotMeta { membership: Membership::new(vec![NodeId(1)], vec![NodeId(1)]), ..Default::default() };
        assert_eq!(SnapshotMeta::from_bytes(&bad.to_bytes()), Err(MembershipError::LearnerVotes(NodeId(1))));
        assert!(SnapshotMeta::from_bytes(&[1, 2]).is_err());
    }
}
