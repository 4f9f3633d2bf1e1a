//! `#[serde(with = "haven_runtime::byte_vec")]` for `Vec<u8>` fields that
//! hold payloads: values, keys, snapshot chunks; and `deserialize_shared`
//! for the shared `Arc<[u8]>` of log entry payloads.
//!
//! In: a byte vector (serialize) or a deserializer. Out: the bytes as one
//! serde `bytes` item, and back.
//!
//! Why: serde treats a `Vec<u8>` as a sequence and serializes it one `u8`
//! call at a time, which made encoding a 29 MB store snapshot take about
//! 300 ms on the station's event loop. postcard writes a sequence of `u8`
//! and a `bytes` item identically (a varint length, then the raw bytes),
//! so this changes no byte on the wire or on disk — the tests check that —
//! and only makes the copy a `memcpy`. Decoding takes both forms; postcard
//! checks the length against the input before it hands the bytes over, so
//! no length is trusted before the bytes are there.

use serde::de::{SeqAccess, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;
use std::sync::Arc;

/// Elements a sequence may reserve up front, whatever length it claims.
const SEQ_RESERVE_LEN_MAX: usize = 4_096;

pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(ByteVecVisitor)
}

/// As [`deserialize`], into one shared allocation (`Arc<[u8]>`), for log
/// entry payloads, which the leader hands to its WAL, to each follower's
/// append and to its state machine: those copies are then reference
/// counts. Borrowed input is copied once, straight into the `Arc`.
pub fn deserialize_shared<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<[u8]>, D::Error> {
    deserializer.deserialize_byte_buf(SharedVisitor)
}

struct SharedVisitor;

impl<'de> Visitor<'de> for SharedVisitor {
    type Value = Arc<[u8]>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Arc<[u8]>, E> {
        Ok(Arc::from(bytes))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Arc<[u8]>, E> {
        Ok(Arc::from(bytes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Arc<[u8]>, A::Error> {
        ByteVecVisitor.visit_seq(seq).map(Arc::from)
    }
}

struct ByteVecVisitor;

impl<'de> Visitor<'de> for ByteVecVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(SEQ_RESERVE_LEN_MAX));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct AsSeq {
        a: u64,
        v: Vec<u8>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct AsBytes {
        a: u64,
        #[serde(with = "crate::byte_vec")]
        v: Vec<u8>,
    }

    #[test]
    fn postcard_writes_the_same_bytes_either_way_and_reads_both() {
        for len in [0usize, 1, 127, 128, 300, 70_000] {
            let v: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let seq = postcard::to_allocvec(&AsSeq { a: 9, v: v.clone() }).unwrap();
            let bytes = postcard::to_allocvec(&AsBytes { a: 9, v: v.clone() }).unwrap();
            assert_eq!(seq, bytes, "len {len}");
            assert_eq!(postcard::from_bytes::<AsBytes>(&seq).unwrap(), AsBytes { a: 9, v: v.clone() });
            assert_eq!(postcard::from_bytes::<AsSeq>(&bytes).unwrap(), AsSeq { a: 9, v });
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct AsShared {
        a: u64,
        #[serde(
            serialize_with = "crate::byte_vec::serialize",
            deserialize_with = "crate::byte_vec::deserialize_shared"
        )]
        v: std::sync::Arc<[u8]>,
    }

    #[test]
    fn shared_payloads_keep_the_encoding_of_byte_vectors() {
        for len in [0usize, 1, 128, 70_000] {
            let v: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let shared = AsShared { a: 9, v: v.clone().into() };
            let bytes = postcard::to_allocvec(&AsBytes { a: 9, v: v.clone() }).unwrap();
            assert_eq!(postcard::to_allocvec(&shared).unwrap(), bytes, "len {len}");
            assert_eq!(postcard::from_bytes::<AsShared>(&bytes).unwrap(), shared);
        }
    }

    #[test]
    fn a_length_beyond_the_input_is_refused_without_reserving_it() {
        // a = 1, then a varint length of 2^35 with three bytes behind it.
        let forged = [1u8, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 1, 2, 3];
        assert!(postcard::from_bytes::<AsBytes>(&forged).is_err());
        assert!(postcard::from_bytes::<AsShared>(&forged).is_err());
    }
}
