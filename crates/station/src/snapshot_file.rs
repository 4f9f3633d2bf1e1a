//! The bytes of a replica snapshot: Raft's snapshot metadata (position and
//! membership) and the state machine (store, client sessions and member
//! table) at the snapshot's index. The same bytes are saved by the WAL, sent to lagging
//! followers by InstallSnapshot, and read back on restart.
//!
//! In: metadata and a state machine (encode), or untrusted bytes (decode).
//! Out: one versioned, checksummed record; decoding never panics and says
//! what is wrong.

use crate::ha_state::HaState;
use crate::members::MemberTable;
use crate::sessions::{Sessions, SessionsV4};
use crate::snapshot_writer::SnapshotWriter;
use crate::state_machine::StateMachine;
use bytes::Bytes;
use haven_raft::{LogPosition, SnapshotMeta};
use haven_runtime::record::{self, Decoded};
use haven_store::{Store, StoreConfig};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Version 5 bounded the client sessions' tombstones, each with the index
/// of its eviction (versions 1, 2 and 4 restore theirs as evicted first).
/// Version 4 gave the HA state's nodes and commands their session (the
/// lease a node joined with); version 3, which first held the HA state,
/// was never released and is refused. Version 2 added the member table;
/// versions 1 and 2 restore with what they lack empty (the leader seeds
/// the member table again from its configuration).
pub(crate) const VERSION: u8 = 5;
const VERSION_UNBOUNDED_SESSIONS: u8 = 4;
const VERSION_NO_HA: u8 = 2;
const VERSION_NO_MEMBERS: u8 = 1;
/// A snapshot's bytes above this are refused on decode.
pub const SNAPSHOT_BYTES_MAX: u32 = 1 << 30;

#[derive(Serialize, Deserialize)]
struct Image {
    raft_meta: SnapshotMeta,
    #[serde(with = "haven_runtime::byte_vec")]
    store: Vec<u8>,
    sessions: Sessions,
    members: MemberTable,
    ha: HaState,
}

/// `Image` borrowed: the layout `encode` writes from parts, and the test
/// that it writes exactly this.
#[cfg(test)]
#[derive(Serialize)]
struct ImageRef<'a> {
    raft_meta: &'a SnapshotMeta,
    #[serde(with = "haven_runtime::byte_vec")]
    store: &'a [u8],
    sessions: &'a Sessions,
    members: &'a MemberTable,
    ha: &'a HaState,
}

#[derive(Deserialize)]
struct ImageUnboundedSessions {
    raft_meta: SnapshotMeta,
    #[serde(with = "haven_runtime::byte_vec")]
    store: Vec<u8>,
    sessions: SessionsV4,
    members: MemberTable,
    ha: HaState,
}

#[derive(Deserialize)]
struct ImageNoHa {
    raft_meta: SnapshotMeta,
    #[serde(with = "haven_runtime::byte_vec")]
    store: Vec<u8>,
    sessions: SessionsV4,
    members: MemberTable,
}

#[derive(Deserialize)]
struct ImageNoMembers {
    raft_meta: SnapshotMeta,
    #[serde(with = "haven_runtime::byte_vec")]
    store: Vec<u8>,
    sessions: SessionsV4,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotFileError {
    #[error("snapshot record: {0}")]
    Record(#[from] record::RecordError),
    #[error("snapshot is truncated ({len} bytes) or has trailing bytes")]
    Length { len: usize },
    #[error("snapshot does not decode: {0}")]
    Payload(String),
    #[error("snapshot's store does not restore: {0}")]
    Store(String),
    #[error("snapshot of {bytes} bytes exceeds {bytes_max}")]
    TooLarge { bytes: usize, bytes_max: u32 },
    #[error("snapshot holds {held:?} but was announced as {announced:?}")]
    Mismatch { held: LogPosition, announced: LogPosition },
}

/// The snapshot of `sm` at `meta`, written in one go (a running replica
/// spreads the work over turns with a [`SnapshotWriter`]).
pub fn encode(meta: &SnapshotMeta, sm: &StateMachine) -> Result<Bytes, SnapshotFileError> {
    Ok(SnapshotWriter::new(meta.clone(), sm)?.finish()?.1)
}

pub fn decode(bytes: &[u8], store: StoreConfig) -> Result<(SnapshotMeta, StateMachine), SnapshotFileError> {
    let versions = [VERSION, VERSION_UNBOUNDED_SESSIONS, VERSION_NO_HA, VERSION_NO_MEMBERS];
    let (version, payload) = match record::decode(bytes, &versions, SNAPSHOT_BYTES_MAX)? {
        Decoded::Record { version, payload, len_total } if len_total == bytes.len() => (version, payload),
        _ => return Err(SnapshotFileError::Length { len: bytes.len() }),
    };
    let payload_error = |e: postcard::Error| SnapshotFileError::Payload(e.to_string());
    let image: Image = match version {
        VERSION_NO_MEMBERS => {
            let ImageNoMembers { raft_meta, store, sessions } = postcard::from_bytes(payload).map_err(payload_error)?;
            let (members, ha) = (MemberTable::default(), HaState::default());
            Image { raft_meta, store, sessions: sessions.into(), members, ha }
        }
        VERSION_NO_HA => {
            let ImageNoHa { raft_meta, store, sessions, members } =
                postcard::from_bytes(payload).map_err(payload_error)?;
            Image { raft_meta, store, sessions: sessions.into(), members, ha: HaState::default() }
        }
        VERSION_UNBOUNDED_SESSIONS => {
            let ImageUnboundedSessions { raft_meta, store, sessions, members, ha } =
                postcard::from_bytes(payload).map_err(payload_error)?;
            Image { raft_meta, store, sessions: sessions.into(), members, ha }
        }
        _ => postcard::from_bytes(payload).map_err(payload_error)?,
    };
    image.sessions.validate().map_err(SnapshotFileError::Payload)?;
    let restored = Store::restore(&image.store, store).map_err(|e| SnapshotFileError::Store(e.to_string()))?;
    let sm = StateMachine::restored(restored, image.sessions, image.members, image.ha, image.raft_meta.last.index);
    Ok((image.raft_meta, sm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use haven_raft::Entry;
    use haven_raft::StateMachine as _;
    use haven_store::{PutRequest, Request};
    use std::collections::BTreeMap;

    fn state_machine_with_one_put() -> StateMachine {
        let mut sm = StateMachine::new(StoreConfig::default(), 8);
        let put = Request::Put(PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..PutRequest::default() });
        let command = Command::Client { client: 1, seq: 1, request: put }.encode();
        let entry = Entry::command(1, 1, &command);
        assert!(sm.apply(&entry).client.is_some());
        sm
    }

    #[test]
    fn round_trip_keeps_store_sessions_and_position() {
        let sm = state_machine_with_one_put();
        let meta = SnapshotMeta { last: haven_raft::LogPosition::new(1, 1), ..SnapshotMeta::default() };
        let bytes = encode(&meta, &sm).unwrap();
        let (meta_back, sm_back) = decode(&bytes, StoreConfig::default()).unwrap();
        assert_eq!(meta_back, meta);
        assert_eq!(sm_back.applied_index(), 1);
        assert_eq!(sm_back.sessions(), sm.sessions());
        assert_eq!(sm_back.store().revision(), sm.store().revision());
    }

    #[test]
    fn encode_writes_exactly_the_record_of_the_whole_image() {
        // A store with a few hundred versions, so lengths take several varint bytes.
        let mut sm = state_machine_with_one_put();
        for index in 2..300u64 {
            let value = vec![u8::try_from(index % 251).unwrap(); 300];
            let put = Request::Put(PutRequest { key: index.to_be_bytes().to_vec(), value, ..PutRequest::default() });
            let command = Command::Client { client: 1, seq: index, request: put }.encode();
            assert!(sm.apply(&Entry::command(index, 1, &command)).client.is_some());
        }
        let meta = SnapshotMeta { last: haven_raft::LogPosition::new(299, 1), ..SnapshotMeta::default() };
        let store = sm.store().snapshot().unwrap();
        let image =
            ImageRef { raft_meta: &meta, store: &store, sessions: sm.sessions(), members: sm.members(), ha: sm.ha() };
        let mut whole = Vec::new();
        record::encode(VERSION, &postcard::to_allocvec(&image).unwrap(), &mut whole);
        assert!(store.len() > 16_384, "a store record of {} bytes", store.len());
        assert_eq!(encode(&meta, &sm).unwrap(), whole);
    }

    #[test]
    fn a_snapshot_from_before_the_member_table_restores_with_an_empty_one() {
        #[derive(Serialize)]
        struct Old {
            raft_meta: SnapshotMeta,
            store: Vec<u8>,
            sessions: OldSessions,
        }
        let sm = state_machine_with_one_put();
        let meta = SnapshotMeta { last: haven_raft::LogPosition::new(1, 1), ..SnapshotMeta::default() };
        let old = Old { raft_meta: meta.clone(), store: sm.store().snapshot().unwrap(), sessions: old_sessions(&[]) };
        let mut bytes = Vec::new();
        record::encode(VERSION_NO_MEMBERS, &postcard::to_allocvec(&old).unwrap(), &mut bytes);
        let (meta_back, sm_back) = decode(&bytes, StoreConfig::default()).unwrap();
        assert_eq!(meta_back, meta);
        assert!(sm_back.members().is_empty());
        assert_eq!(sm_back.store().revision(), sm.store().revision());
    }

    /// `Sessions` as versions 1 to 4 laid it out, with no live session:
    /// clients_max, sessions, their ages, and (client, seq) of evicted ones.
    type OldSessions = (usize, BTreeMap<u64, ()>, BTreeMap<(u64, u64), ()>, BTreeMap<u64, u64>);

    fn old_sessions(evicted: &[(u64, u64)]) -> OldSessions {
        (8, BTreeMap::new(), BTreeMap::new(), evicted.iter().copied().collect())
    }

    #[test]
    fn a_version_4_snapshot_restores_its_tombstones() {
        #[derive(Serialize)]
        struct Old<'a> {
            raft_meta: SnapshotMeta,
            store: Vec<u8>,
            sessions: OldSessions,
            members: &'a MemberTable,
            ha: &'a HaState,
        }
        let sm = state_machine_with_one_put();
        let meta = SnapshotMeta { last: haven_raft::LogPosition::new(1, 1), ..SnapshotMeta::default() };
        let store = sm.store().snapshot().unwrap();
        let old = Old {
            raft_meta: meta.clone(),
            store,
            sessions: old_sessions(&[(5, 3)]),
            members: sm.members(),
            ha: sm.ha(),
        };
        let mut bytes = Vec::new();
        record::encode(VERSION_UNBOUNDED_SESSIONS, &postcard::to_allocvec(&old).unwrap(), &mut bytes);
        let (meta_back, sm_back) = decode(&bytes, StoreConfig::default()).unwrap();
        assert_eq!(meta_back, meta);
        assert_eq!((sm_back.sessions().len(), sm_back.sessions().evicted_len()), (0, 1));
        assert_eq!(sm_back.sessions().check(5, 3), crate::sessions::Seen::Expired, "client 5's retry is still refused");
        assert_eq!(sm_back.store().revision(), sm.store().revision());
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let sm = state_machine_with_one_put();
        let meta = SnapshotMeta { last: haven_raft::LogPosition::new(1, 1), ..SnapshotMeta::default() };
        let bytes = encode(&meta, &sm).unwrap();
        for cut in [0, 5, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], StoreConfig::default()).is_err());
        }
        let mut flipped = bytes.to_vec();
        flipped[bytes.len() / 2] ^= 0x40;
        assert!(decode(&flipped, StoreConfig::default()).is_err());
    }
}
