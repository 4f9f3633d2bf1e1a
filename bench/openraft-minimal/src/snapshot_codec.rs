//! The byte form of the state machine's data inside a snapshot.
//!
//! In: the key/value map and the next revision. Out: bytes, and back; decoding
//! checks every length against what is left before slicing, so a short or
//! garbled snapshot is an error, never a panic.
//!
//! Layout: next revision (u64 LE), entry count (u64 LE), then per entry the
//! key length (u32 LE), key bytes, revision (u64 LE), value length (u32 LE),
//! value bytes.

use std::collections::BTreeMap;
use std::io;

/// A key's value and the revision that wrote it.
pub type Data = BTreeMap<String, (u64, Vec<u8>)>;

pub fn encode(next_revision: u64, data: &Data) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&next_revision.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    for (key, (revision, value)) in data {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&revision.to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

pub fn decode(mut bytes: &[u8]) -> io::Result<(u64, Data)> {
    let next_revision = take_u64(&mut bytes)?;
    let count = take_u64(&mut bytes)?;
    let mut data = Data::new();
    for _ in 0..count {
        let key_len = take_u32(&mut bytes)? as usize;
        let key = String::from_utf8(take(&mut bytes, key_len)?.to_vec()).map_err(invalid)?;
        let revision = take_u64(&mut bytes)?;
        let value_len = take_u32(&mut bytes)? as usize;
        let value = take(&mut bytes, value_len)?.to_vec();
        data.insert(key, (revision, value));
    }
    if !bytes.is_empty() {
        return Err(invalid("trailing bytes after the last entry"));
    }
    Ok((next_revision, data))
}

fn take<'a>(bytes: &mut &'a [u8], len: usize) -> io::Result<&'a [u8]> {
    if bytes.len() < len {
        return Err(invalid("snapshot shorter than its lengths say"));
    }
    let (head, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(head)
}

fn take_u64(bytes: &mut &[u8]) -> io::Result<u64> {
    let head = take(bytes, 8)?;
    Ok(u64::from_le_bytes(head.try_into().map_err(invalid)?))
}

fn take_u32(bytes: &mut &[u8]) -> io::Result<u32> {
    let head = take(bytes, 4)?;
    Ok(u32::from_le_bytes(head.try_into().map_err(invalid)?))
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Data {
        let mut data = Data::new();
        data.insert("load/0".into(), (7, vec![b'x'; 64]));
        data.insert("load/1".into(), (9, Vec::new()));
        data
    }

    #[test]
    fn round_trips() {
        let bytes = encode(10, &sample());
        assert_eq!(decode(&bytes).unwrap(), (10, sample()));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(10, &sample());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "prefix of {len} bytes decoded");
        }
    }
}
