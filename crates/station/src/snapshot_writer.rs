//! A replica snapshot written a few keys per turn.
//!
//! In: Raft's metadata and the state machine at the snapshot's index, when
//! the writer is made; then calls to [`SnapshotWriter::write`] with a
//! budget of keys, between which the state machine goes on applying.
//! Out: the snapshot record of `snapshot_file` (the same bytes its
//! `encode` gives for the state machine as it was when frozen), as
//! [`Bytes`] that the WAL saves and Raft sends without copying.
//!
//! Everything but the store's keys (Raft's metadata, sessions, members, the
//! HA state, the store's history and leases) is encoded when frozen; the
//! keys are encoded into one buffer that leaves room at its front for the
//! headers, whose lengths and checksums are known only at the end. The
//! checksums are combined from the pieces' own, so finishing neither
//! copies nor reads the tens of MB again.

use crate::snapshot_file::{SNAPSHOT_BYTES_MAX, SnapshotFileError, VERSION};
use crate::state_machine::StateMachine;
use bytes::Bytes;
use haven_raft::{SnapshotMeta, StateMachine as _};
use haven_runtime::record::{self, HEADER_BYTES};
use haven_store::StoreSnapshotWriter;

/// Bytes of a postcard varint of a `usize` (64 bits), at most.
const VARINT_BYTES_MAX: usize = 10;

#[derive(Debug)]
pub struct SnapshotWriter {
    meta: SnapshotMeta,
    /// postcard of the metadata: the image's first field.
    meta_bytes: Vec<u8>,
    /// Room reserved before the store's payload for the headers.
    prefix_bytes: usize,
    store: StoreSnapshotWriter,
    /// postcard of the sessions, members and HA state: the image's last fields.
    tail: Vec<u8>,
}

fn postcard_error(e: postcard::Error) -> SnapshotFileError {
    SnapshotFileError::Payload(e.to_string())
}

fn store_error(e: haven_store::SnapshotError) -> SnapshotFileError {
    SnapshotFileError::Store(e.to_string())
}

impl SnapshotWriter {
    /// Freezes `sm`, whose applied index is `meta`'s.
    pub fn new(meta: SnapshotMeta, sm: &StateMachine) -> Result<SnapshotWriter, SnapshotFileError> {
        assert_eq!(meta.last.index, sm.applied_index(), "a snapshot is taken at the applied index");
        let meta_bytes = postcard::to_allocvec(&meta).map_err(postcard_error)?;
        let tail = postcard::to_allocvec(&(sm.sessions(), sm.members(), sm.ha())).map_err(postcard_error)?;
        // Record header, metadata, the store record's length, its header.
        let prefix_bytes = HEADER_BYTES + meta_bytes.len() + VARINT_BYTES_MAX + HEADER_BYTES;
        let store = sm.store().snapshot_writer(vec![0; prefix_bytes]).map_err(store_error)?;
        Ok(SnapshotWriter { meta, meta_bytes, prefix_bytes, store, tail })
    }

    /// Writes up to `keys_max` more of the store's keys; returns whether
    /// all are written.
    pub fn write(&mut self, keys_max: usize) -> Result<bool, SnapshotFileError> {
        self.store.write(keys_max).map_err(store_error)
    }

    /// The whole record; keys not yet written are written in this call.
    pub fn finish(self) -> Result<(SnapshotMeta, Bytes), SnapshotFileError> {
        let SnapshotWriter { meta, meta_bytes, prefix_bytes, store, tail } = self;
        let (mut out, store_crc) = store.finish().map_err(store_error)?;
        let store_len = out.len() - prefix_bytes;
        let store_header = record::header_of_checksummed(haven_store::SNAPSHOT_VERSION, store_len, store_crc);
        // The image: metadata, the store record as a bytes item (its length
        // as a varint, then the record), then the tail.
        let mut head = meta_bytes;
        head = postcard::to_extend(&(HEADER_BYTES + store_len), head).map_err(postcard_error)?;
        head.extend_from_slice(&store_header);
        let payload_len = head.len() + store_len + tail.len();
        if payload_len > SNAPSHOT_BYTES_MAX as usize {
            return Err(SnapshotFileError::TooLarge { bytes: payload_len, bytes_max: SNAPSHOT_BYTES_MAX });
        }
        let head_crc = crc32c::crc32c(&head);
        let payload_crc = crc32c::crc32c_combine(head_crc, store_crc, store_len);
        let payload_crc = crc32c::crc32c_append(payload_crc, &tail);
        let record_header = record::header_of_checksummed(VERSION, payload_len, payload_crc);
        out.extend_from_slice(&tail);
        let start = prefix_bytes - head.len() - HEADER_BYTES;
        out[start..start + HEADER_BYTES].copy_from_slice(&record_header);
        out[start + HEADER_BYTES..prefix_bytes].copy_from_slice(&head);
        Ok((meta, Bytes::from(out).slice(start..)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::snapshot_file;
    use haven_raft::{Entry, LogPosition};
    use haven_store::{PutRequest, Request, StoreConfig};

    fn put(sm: &mut StateMachine, index: u64, key: u64) {
        let value = vec![u8::try_from(index % 251).expect("below 251"); 100];
        let request = Request::Put(PutRequest { key: key.to_be_bytes().to_vec(), value, ..PutRequest::default() });
        let command = Command::Client { client: 1, seq: index, request }.encode();
        assert!(sm.apply(&Entry::command(index, 1, &command)).client.is_some());
    }

    #[test]
    fn a_snapshot_written_over_turns_is_the_one_encoded_when_it_was_started() {
        let mut sm = StateMachine::new(StoreConfig::default(), 8);
        for index in 1..=2_000 {
            put(&mut sm, index, index % 700);
        }
        let meta = SnapshotMeta { last: LogPosition::new(2_000, 1), ..SnapshotMeta::default() };
        let at_start = snapshot_file::encode(&meta, &sm).expect("encodes");
        let mut writer = SnapshotWriter::new(meta.clone(), &sm).expect("encodes");
        let mut index = 2_000;
        // Applies between turns overwrite keys the writer has not reached
        // yet, keys it has, and add new ones.
        while !writer.write(50).expect("encodes") {
            for key in [0, 350, 699, 5_000 + index] {
                index += 1;
                put(&mut sm, index, key);
            }
        }
        let (written_meta, bytes) = writer.finish().expect("encodes");
        assert_eq!(written_meta, meta);
        assert_eq!(bytes, at_start, "the record holds the state as it was when the writer started");
        let (decoded_meta, decoded) = snapshot_file::decode(&bytes, StoreConfig::default()).expect("decodes");
        assert_eq!(decoded_meta, meta);
        assert_eq!(decoded.store().revision(), 2_001, "2,000 puts after the empty store's revision 1");
    }
}
