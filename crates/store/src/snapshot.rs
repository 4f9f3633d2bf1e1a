//! Snapshots of the whole store.
//!
//! In: a store (take) or the bytes of a snapshot (restore) with the
//! configuration to run it under. Out: one record (version byte, length,
//! crc32c) whose payload is the postcard encoding of every key's retained
//! versions, the event history, the revision, the compaction point and the
//! leases, then, only if there are any, the TTLs of leases granted in
//! milliseconds (so a store without them snapshots as it always did); or, on restore, the store or a typed error. Restore checks the
//! checksum and then every invariant the store relies on, so a damaged or
//! forged snapshot is refused instead of corrupting later answers.

use crate::config::StoreConfig;
use crate::keyspace::{Keyspace, KeyspaceImage};
use crate::lease_table::LeaseTable;
use crate::store::Store;
use haven_runtime::record::{self, Decoded, RecordError};
use serde::Deserialize;
use thiserror::Error;

/// Version byte of the snapshot record; a new layout gets a new version.
pub const SNAPSHOT_VERSION: u8 = 1;
/// The record format's own ceiling (a u32 length).
pub(crate) const SNAPSHOT_PAYLOAD_BYTES_MAX: u32 = u32::MAX;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("store snapshot: {0}")]
    Record(#[from] RecordError),
    #[error("store snapshot is truncated: {len} bytes")]
    Truncated { len: usize },
    #[error("store snapshot has {0} bytes after its record")]
    Trailing(usize),
    #[error("store snapshot payload does not decode: {0}")]
    Payload(String),
    #[error("store snapshot describes a store that cannot exist: {0}")]
    Invalid(&'static str),
    #[error("store snapshot payload of {bytes} bytes exceeds the record limit")]
    TooLarge { bytes: u64 },
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(crate) struct StoreImage {
    pub keyspace: KeyspaceImage,
    pub leases: LeaseTable,
}

impl Store {
    /// The whole state as one checksummed record (written in one go; see
    /// [`Store::snapshot_writer`] to spread the work).
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        let payload = self.snapshot_payload()?;
        let mut out = Vec::with_capacity(record::HEADER_BYTES + payload.len());
        record::encode(SNAPSHOT_VERSION, &payload, &mut out);
        Ok(out)
    }

    /// The store a snapshot describes, run under `config`.
    pub fn restore(bytes: &[u8], config: StoreConfig) -> Result<Store, SnapshotError> {
        let payload = match record::decode(bytes, &[SNAPSHOT_VERSION], SNAPSHOT_PAYLOAD_BYTES_MAX)? {
            Decoded::Incomplete { .. } => return Err(SnapshotError::Truncated { len: bytes.len() }),
            Decoded::Record { len_total, .. } if len_total != bytes.len() => {
                return Err(SnapshotError::Trailing(bytes.len() - len_total));
            }
            Decoded::Record { payload, .. } => payload,
        };
        let decoding = |e: postcard::Error| SnapshotError::Payload(e.to_string());
        let (image, section): (StoreImage, &[u8]) = postcard::take_from_bytes(payload).map_err(decoding)?;
        let kv = Keyspace::from_image(image.keyspace).map_err(|bad| SnapshotError::Invalid(bad.0))?;
        let mut leases = image.leases;
        leases.validate_against(&kv).map_err(SnapshotError::Invalid)?;
        // The optional last section: leases granted in milliseconds.
        if !section.is_empty() {
            let ttl_ms = haven_runtime::wire::decode(section).map_err(|e| SnapshotError::Payload(e.to_string()))?;
            leases.restore_ttl_ms(ttl_ms).map_err(SnapshotError::Invalid)?;
        }
        Ok(Store { config, kv, leases })
    }
}
