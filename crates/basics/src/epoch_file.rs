//! The on-disk record holding a node's epoch (incarnation number).
//!
//! In: an epoch (encode) or the bytes of the `epoch` file (decode).
//! Out: one record (version, length, crc32c) whose payload is the postcard
//! encoding of the epoch; or a typed error. The file is always replaced
//! atomically (write `epoch.tmp`, sync, rename, sync the directory), so a
//! decode error means the disk corrupted it, not a torn write.

use haven_runtime::record::{self, Decoded, RecordError};
use thiserror::Error;

pub const FILE: &str = "epoch";
pub const FILE_TMP: &str = "epoch.tmp";
const VERSION: u8 = 1;
const PAYLOAD_BYTES_MAX: u32 = 16;
/// A read of this many bytes holds any valid epoch file entirely.
pub const FILE_BYTES_MAX: u32 = record::HEADER_BYTES as u32 + PAYLOAD_BYTES_MAX;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EpochFileError {
    #[error("epoch file: {0}")]
    Record(#[from] RecordError),
    #[error("epoch file is truncated: {len} bytes")]
    Truncated { len: usize },
    #[error("epoch file has {0} bytes after its record")]
    Trailing(usize),
    #[error("epoch file payload does not decode")]
    Payload,
}

pub fn encode(epoch: u64) -> Vec<u8> {
    let payload = postcard::to_allocvec(&epoch).expect("u64 always encodes");
    let mut out = Vec::with_capacity(FILE_BYTES_MAX as usize);
    record::encode(VERSION, &payload, &mut out);
    out
}

pub fn decode(bytes: &[u8]) -> Result<u64, EpochFileError> {
    match record::decode(bytes, &[VERSION], PAYLOAD_BYTES_MAX)? {
        Decoded::Incomplete { .. } => Err(EpochFileError::Truncated { len: bytes.len() }),
        Decoded::Record { len_total, .. } if len_total != bytes.len() => {
            Err(EpochFileError::Trailing(bytes.len() - len_total))
        }
        Decoded::Record { payload, .. } => {
            haven_runtime::wire::decode::<u64>(payload).map_err(|_| EpochFileError::Payload)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let bytes = encode(41);
        assert_eq!(decode(&bytes), Ok(41));
        assert!(matches!(decode(&bytes[..bytes.len() - 1]), Err(EpochFileError::Truncated { .. })));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 0x10;
        assert!(matches!(decode(&flipped), Err(EpochFileError::Record(RecordError::Checksum { .. }))));
        assert_eq!(decode(&[]), Err(EpochFileError::Truncated { len: 0 }));
    }
}
