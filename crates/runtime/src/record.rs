//! The framing shared by every record on disk and every frame on the wire.
//!
//! In: a version byte and a payload (encode); or a byte buffer that may hold
//! a partial, complete, oversized or corrupt record (decode).
//! Out: the 9-byte header plus payload; or the decoded payload borrowed from
//! the buffer, a request for more bytes, or a typed error.
//!
//! Layout, little endian:
//!
//! ```text
//! offset 0  u8   version      (0 is never valid, so zeroed space never decodes)
//! offset 1  u32  payload length
//! offset 5  u32  crc32c of bytes 0..5 followed by the payload
//! offset 9  payload
//! ```
//!
//! Decoding never allocates and never trusts the length before comparing it
//! with the caller's limit, so a hostile or torn length costs nothing.

use thiserror::Error;

/// Bytes before the payload.
pub const HEADER_BYTES: usize = 9;

/// Why a buffer does not start with a valid record.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("unknown record version {version} (this build reads versions {supported:?})")]
    UnknownVersion { version: u8, supported: Vec<u8> },
    #[error("record length {len} bytes exceeds the limit of {len_max} bytes")]
    TooLarge { len: u64, len_max: u64 },
    #[error("record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
}

/// What the start of a buffer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, valid record of `len_total` bytes (header included).
    Record { version: u8, payload: &'a [u8], len_total: usize },
    /// Valid so far; at least `len_total` bytes are needed to decide.
    Incomplete { len_total: usize },
}

/// Appends one record to `out`.
pub fn encode(version: u8, payload: &[u8], out: &mut Vec<u8>) {
    encode_parts(version, &[payload], out);
}

/// Appends one record whose payload is the concatenation of `parts`, so a
/// caller that has its payload in pieces (a snapshot of tens of MB) writes
/// it with one copy instead of joining the pieces first.
pub fn encode_parts(version: u8, parts: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve(HEADER_BYTES + len);
    out.extend_from_slice(&header_of_parts(version, parts));
    parts.iter().for_each(|part| out.extend_from_slice(part));
}

/// The header of a record whose payload is `payload`: for embedding a
/// record in a larger one from its parts (see [`encode_parts`]).
pub fn header(version: u8, payload: &[u8]) -> [u8; HEADER_BYTES] {
    header_of_parts(version, &[payload])
}

/// The header of a record whose payload is `len` bytes with crc32c
/// `payload_crc`: for a caller that checksummed a large payload piece by
/// piece as it wrote it, and would otherwise read it all again.
pub fn header_of_checksummed(version: u8, len: usize, payload_crc: u32) -> [u8; HEADER_BYTES] {
    let mut header = header_without_crc(version, len);
    let crc = crc32c::crc32c_combine(crc32c::crc32c(&header[..5]), payload_crc, len);
    header[5..].copy_from_slice(&crc.to_le_bytes());
    header
}

fn header_of_parts(version: u8, parts: &[&[u8]]) -> [u8; HEADER_BYTES] {
    let mut header = header_without_crc(version, parts.iter().map(|p| p.len()).sum());
    // Appended, not combined: cheaper for the small records of the hot paths.
    let crc = parts.iter().fold(crc32c::crc32c(&header[..5]), |crc, part| crc32c::crc32c_append(crc, part));
    header[5..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The version and length of a header; the crc, over those and the
/// payload, is the caller's to write.
fn header_without_crc(version: u8, len: usize) -> [u8; HEADER_BYTES] {
    assert_ne!(version, 0, "version 0 is reserved for 'no record'");
    let len = u32::try_from(len).expect("record payload above 4 GiB");
    let mut header = [0u8; HEADER_BYTES];
    header[0] = version;
    header[1..5].copy_from_slice(&len.to_le_bytes());
    header
}

/// Decodes the record at the start of `buf`, accepting only `versions` and
/// payloads of at most `payload_bytes_max`.
pub fn decode<'a>(buf: &'a [u8], versions: &[u8], payload_bytes_max: u32) -> Result<Decoded<'a>, RecordError> {
    let Some(&version) = buf.first() else {
        return Ok(Decoded::Incomplete { len_total: HEADER_BYTES });
    };
    if !versions.contains(&version) {
        return Err(RecordError::UnknownVersion { version, supported: versions.to_vec() });
    }
    if buf.len() < HEADER_BYTES {
        return Ok(Decoded::Incomplete { len_total: HEADER_BYTES });
    }
    let len = u32::from_le_bytes(buf[1..5].try_into().expect("4 bytes"));
    if len > payload_bytes_max {
        return Err(RecordError::TooLarge { len: u64::from(len), len_max: u64::from(payload_bytes_max) });
    }
    let len_total = HEADER_BYTES + len as usize;
    if buf.len() < len_total {
        return Ok(Decoded::Incomplete { len_total });
    }
    let stored = u32::from_le_bytes(buf[5..9].try_into().expect("4 bytes"));
    let payload = &buf[HEADER_BYTES..len_total];
    let computed = crc32c::crc32c_append(crc32c::crc32c(&buf[0..5]), payload);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    Ok(Decoded::Record { version, payload, len_total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode(1, b"hello", &mut buf);
        encode(2, b"", &mut buf);
        let Ok(Decoded::Record { version: 1, payload, len_total }) = decode(&buf, &[1, 2], 16) else { panic!() };
        assert_eq!(payload, b"hello");
        let rest = &buf[len_total..];
        assert_eq!(decode(rest, &[1, 2], 16), Ok(Decoded::Record { version: 2, payload: b"", len_total: 9 }));
    }

    #[test]
    fn a_record_written_from_parts_is_the_record_of_their_concatenation() {
        let mut joined = Vec::new();
        encode(3, b"head-body-tail", &mut joined);
        let mut parted = Vec::new();
        encode_parts(3, &[b"head-", b"", b"body-", b"tail"], &mut parted);
        let crc = crc32c::crc32c_append(crc32c::crc32c(b"head-body-"), b"tail");
        assert_eq!(header_of_checksummed(3, 14, crc), header(3, b"head-body-tail"));
        assert_eq!(parted, joined);
        assert_eq!(header(3, b"head-body-tail"), joined[..HEADER_BYTES]);
    }

    #[test]
    fn partial_records_ask_for_more() {
        let mut buf = Vec::new();
        encode(1, b"hello", &mut buf);
        assert_eq!(decode(&buf[..0], &[1], 16), Ok(Decoded::Incomplete { len_total: 9 }));
        assert_eq!(decode(&buf[..4], &[1], 16), Ok(Decoded::Incomplete { len_total: 9 }));
        assert_eq!(decode(&buf[..10], &[1], 16), Ok(Decoded::Incomplete { len_total: 14 }));
    }

    #[test]
    fn oversized_length_is_rejected_from_the_header_alone() {
        let header = [1u8, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert_eq!(decode(&header, &[1], 1024), Err(RecordError::TooLarge { len: u32::MAX as u64, len_max: 1024 }));
    }

    #[test]
    fn zeroed_space_and_unknown_versions_are_rejected() {
        assert!(matches!(decode(&[0u8; 32], &[1], 16), Err(RecordError::UnknownVersion { version: 0, .. })));
        assert!(matches!(decode(&[7u8], &[1], 16), Err(RecordError::UnknownVersion { version: 7, .. })));
    }

    proptest! {
        #[test]
        fn any_single_bit_flip_is_detected(payload in proptest::collection::vec(any::<u8>(), 0..64), bit in 0usize..(73 * 8)) {
            let mut buf = Vec::new();
            encode(1, &payload, &mut buf);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            // A flip may make the record look longer (incomplete) but never valid.
            let decoded = decode(&buf, &[1], 128);
            prop_assert!(!matches!(decoded, Ok(Decoded::Record { .. })), "flip of bit {} went unnoticed", bit);
        }

        #[test]
        fn arbitrary_input_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&buf, &[1, 2, 3], 32);
        }
    }
}
