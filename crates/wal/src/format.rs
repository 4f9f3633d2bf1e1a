//! The records of a segment file.
//!
//! In: a [`LogRecord`] to append (encode), or one record's payload read back
//! (decode). Out: the record framed by `haven_runtime::record` (version,
//! length, crc32c) around its postcard encoding; or the record, borrowing
//! its bytes from the read buffer, or the reason it does not decode.
//!
//! A segment is `Header` first, then any mix of the other kinds:
//! - `Header { seq, index_first }` repeats the file name, so a renamed or
//!   misplaced file is caught, and states the index the log continued at;
//! - `Entry` is one raft log entry;
//! - `HardState` is raft's opaque durable state; the last one read wins.
//!   Every segment carries a copy right after its header, so dropping older
//!   segments never loses the latest hard state;
//! - `Truncate { index_from }` drops every earlier entry at or above
//!   `index_from` (raft's conflicting suffix). Writing a marker rather than
//!   cutting files keeps a truncation and the entries replacing it in one
//!   write and one sync, and never cuts away hard-state records.

use haven_runtime::record::{self, HEADER_BYTES};
use serde::{Deserialize, Serialize};

/// The version byte of every segment record this build writes and reads.
pub(crate) const LOG_VERSION: u8 = 1;

/// Bytes a record adds to the opaque bytes it carries: the frame, the enum
/// tag, two u64 varints and a length varint (postcard), rounded up.
pub(crate) const RECORD_OVERHEAD_BYTES: usize = HEADER_BYTES + 1 + 10 + 10 + 5 + 13;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LogRecord<'a> {
    Header {
        seq: u64,
        index_first: u64,
    },
    // Serialized as one `bytes` item, not a `u8` at a time (see
    // `haven_runtime::byte_vec`); postcard writes both identically, and
    // deserializing a `&[u8]` already borrows the bytes whole.
    Entry {
        index: u64,
        term: u64,
        #[serde(serialize_with = "haven_runtime::byte_vec::serialize")]
        payload: &'a [u8],
    },
    HardState(#[serde(serialize_with = "haven_runtime::byte_vec::serialize")] &'a [u8]),
    Truncate {
        index_from: u64,
    },
}

impl LogRecord<'_> {
    /// Appends the framed record to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let payload = postcard::to_allocvec(self).expect("integers and byte slices always encode");
        assert!(payload.len() + HEADER_BYTES <= RECORD_OVERHEAD_BYTES + self.opaque_len(), "overhead bound is wrong");
        record::encode(LOG_VERSION, &payload, out);
    }

    /// Bytes of the caller's opaque data the record carries.
    fn opaque_len(&self) -> usize {
        match self {
            LogRecord::Entry { payload, .. } | LogRecord::HardState(payload) => payload.len(),
            LogRecord::Header { .. } | LogRecord::Truncate { .. } => 0,
        }
    }

    /// Decodes a payload whose frame (length and checksum) was already checked.
    pub(crate) fn decode(payload: &[u8]) -> Result<LogRecord<'_>, String> {
        let (rec, rest) = postcard::take_from_bytes(payload).map_err(|e| format!("record does not decode: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("record has {} trailing bytes", rest.len()));
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_runtime::record::Decoded;

    fn round_trip(rec: LogRecord<'_>) {
        let mut buf = Vec::new();
        rec.encode(&mut buf);
        let Ok(Decoded::Record { payload, len_total, .. }) = record::decode(&buf, &[LOG_VERSION], 1 << 20) else {
            panic!("{rec:?} does not frame");
        };
        assert_eq!(len_total, buf.len());
        assert_eq!(LogRecord::decode(payload), Ok(rec));
    }

    #[test]
    fn every_kind_round_trips_at_extreme_values() {
        round_trip(LogRecord::Header { seq: u64::MAX, index_first: u64::MAX });
        round_trip(LogRecord::Entry { index: u64::MAX, term: u64::MAX, payload: &[7; 300] });
        round_trip(LogRecord::HardState(b""));
        round_trip(LogRecord::Truncate { index_from: 1 });
    }

    /// The bytes on disk did not change when payloads began to serialize as
    /// one `bytes` item: variant tag, varints, then the length and the bytes.
    #[test]
    fn payloads_keep_their_on_disk_layout() {
        let entry = LogRecord::Entry { index: 3, term: 2, payload: b"ab" };
        assert_eq!(postcard::to_allocvec(&entry).unwrap(), vec![1, 3, 2, 2, b'a', b'b']);
        assert_eq!(postcard::to_allocvec(&LogRecord::HardState(b"xyz")).unwrap(), vec![2, 3, b'x', b'y', b'z']);
    }

    #[test]
    fn trailing_bytes_and_garbage_are_errors() {
        let mut payload = postcard::to_allocvec(&LogRecord::Truncate { index_from: 5 }).unwrap();
        payload.push(0);
        assert!(LogRecord::decode(&payload).unwrap_err().contains("trailing"));
        assert!(LogRecord::decode(&[9, 9, 9]).is_err());
        assert!(LogRecord::decode(&[]).is_err());
    }
}
