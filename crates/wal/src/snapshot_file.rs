//! The snapshot file's format.
//!
//! In: a snapshot's metadata and data (encode, one piece per write), or the
//! whole file read back (decode).
//! Out: a header record then chunk records, each framed by
//! `haven_runtime::record`; or the snapshot, or the reason the file is not
//! one. The file is only ever installed by rename after a sync, so any
//! defect is corruption, never a torn write.

use crate::config::WalConfig;
use crate::entry::{Snapshot, SnapshotMeta};
use crate::format::RECORD_OVERHEAD_BYTES;
use haven_runtime::record::{self, Decoded};
use serde::{Deserialize, Serialize};

/// The snapshot file's name in the data directory.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// Where a snapshot is written before it is renamed to [`SNAPSHOT_FILE`];
/// opening the WAL removes a leftover one.
pub const SNAPSHOT_TMP_FILE: &str = "snapshot.tmp";
const SNAP_VERSION: u8 = 1;

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
enum SnapRecord<'a> {
    Header {
        index: u64,
        term: u64,
        data_bytes: u64,
    },
    /// Encoded as one serde `bytes` item: the same bytes postcard writes
    /// for a sequence of `u8`, without a call per byte (which made saving
    /// a 30 MB snapshot cost about a percent of a station's CPU under load).
    Chunk(#[serde(serialize_with = "haven_runtime::byte_vec::serialize")] &'a [u8]),
}

fn encode(rec: &SnapRecord<'_>) -> Vec<u8> {
    let payload = postcard::to_allocvec(rec).expect("integers and byte slices always encode");
    let mut out = Vec::with_capacity(payload.len() + record::HEADER_BYTES);
    record::encode(SNAP_VERSION, &payload, &mut out);
    out
}

/// The bytes of write number `piece` of a snapshot file, or `None` past the
/// last one. Piece 0 is the header; then one chunk per piece.
pub(crate) fn piece(meta: SnapshotMeta, data: &[u8], chunk_bytes_max: usize, piece: usize) -> Option<Vec<u8>> {
    assert!(chunk_bytes_max > 0, "validated by WalConfig");
    if piece == 0 {
        return Some(encode(&SnapRecord::Header { index: meta.index, term: meta.term, data_bytes: data.len() as u64 }));
    }
    let chunk = data.chunks(chunk_bytes_max).nth(piece - 1)?;
    Some(encode(&SnapRecord::Chunk(chunk)))
}

/// A whole snapshot file, as a save writes it piece by piece: for a tool
/// that seeds a data directory offline (`haven snapshot restore`), which
/// installs it by rename after a sync, as the save does.
pub fn file_bytes(meta: SnapshotMeta, data: &[u8], config: &WalConfig) -> Vec<u8> {
    (0..).map_while(|n| piece(meta, data, config.snapshot_chunk_bytes_max, n)).flatten().collect()
}

/// Largest valid snapshot file: the data plus a header and every chunk's framing.
pub(crate) fn file_bytes_max(config: &WalConfig) -> u64 {
    let chunks = config.snapshot_bytes_max / config.snapshot_chunk_bytes_max as u64 + 2;
    config.snapshot_bytes_max.saturating_add(chunks.saturating_mul(RECORD_OVERHEAD_BYTES as u64))
}

/// Decodes a whole snapshot file; an error names the offset of the defect.
pub(crate) fn decode(image: &[u8], config: &WalConfig) -> Result<Snapshot, (u64, String)> {
    let mut offset = 0;
    decode_records(image, config, &mut offset).map_err(|reason| (offset as u64, reason))
}

fn decode_records(image: &[u8], config: &WalConfig, offset: &mut usize) -> Result<Snapshot, String> {
    let payload_max = u32::try_from(config.snapshot_chunk_bytes_max + RECORD_OVERHEAD_BYTES).unwrap_or(u32::MAX);
    // `offset` stays at the start of the record being decoded, so an
    // error is reported where the bad record begins.
    let mut end = 0;
    let mut next = || -> Result<Option<SnapRecord<'_>>, String> {
        *offset = end;
        if end == image.len() {
            return Ok(None);
        }
        match record::decode(&image[end..], &[SNAP_VERSION], payload_max) {
            Ok(Decoded::Record { payload, len_total, .. }) => {
                end += len_total;
                let (rec, rest) = postcard::take_from_bytes(payload).map_err(|e| format!("record: {e}"))?;
                if rest.is_empty() { Ok(Some(rec)) } else { Err("trailing bytes in record".into()) }
            }
            Ok(Decoded::Incomplete { len_total }) => Err(format!("record of {len_total} bytes cut")),
            Err(error) => Err(error.to_string()),
        }
    };
    let Some(SnapRecord::Header { index, term, data_bytes }) = next()? else {
        return Err("the file does not start with a snapshot header".into());
    };
    if data_bytes > config.snapshot_bytes_max {
        return Err(format!("snapshot of {data_bytes} bytes exceeds snapshot_bytes_max"));
    }
    // The header's size is only trusted as far as the file backs it.
    let mut data = Vec::with_capacity(usize::try_from(data_bytes).unwrap_or(usize::MAX).min(image.len()));
    while let Some(rec) = next()? {
        match rec {
            SnapRecord::Chunk(chunk) if (data.len() + chunk.len()) as u64 <= data_bytes => {
                data.extend_from_slice(chunk)
            }
            SnapRecord::Chunk(_) => return Err(format!("chunks exceed the {data_bytes} bytes the header states")),
            SnapRecord::Header { .. } => return Err("a second snapshot header".into()),
        }
    }
    if data.len() as u64 != data_bytes {
        return Err(format!("{} of the {data_bytes} bytes the header states", data.len()));
    }
    Ok(Snapshot { meta: SnapshotMeta { index, term }, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_file_decodes_to_its_snapshot() {
        let config = WalConfig { snapshot_chunk_bytes_max: 4, ..WalConfig::default() };
        let meta = SnapshotMeta { index: 9, term: 2 };
        let snapshot = decode(&file_bytes(meta, b"0123456789", &config), &config).expect("decodes");
        assert_eq!((snapshot.meta, snapshot.data.as_slice()), (meta, &b"0123456789"[..]));
    }

    fn file(meta: SnapshotMeta, data: &[u8], chunk: usize) -> Vec<u8> {
        file_bytes(meta, data, &WalConfig { snapshot_chunk_bytes_max: chunk, ..WalConfig::default() })
    }

    fn config() -> WalConfig {
        WalConfig { snapshot_chunk_bytes_max: 7, ..WalConfig::default() }
    }

    /// The format of session 11 and before, when chunks went through
    /// serde as sequences of `u8`.
    #[derive(Serialize)]
    enum SeqRecord<'a> {
        // Never built: it is here so that `Chunk` keeps variant index 1.
        #[allow(dead_code)]
        Header {
            index: u64,
            term: u64,
            data_bytes: u64,
        },
        Chunk(&'a [u8]),
    }

    #[test]
    fn a_chunk_is_encoded_as_it_was_when_it_went_through_serde_as_a_sequence() {
        let data: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let old = postcard::to_allocvec(&SeqRecord::Chunk(&data)).unwrap();
        let new = postcard::to_allocvec(&SnapRecord::Chunk(&data)).unwrap();
        assert_eq!(new, old);
    }

    #[test]
    fn chunked_snapshots_round_trip() {
        let meta = SnapshotMeta { index: 40, term: 3 };
        for len in [0, 1, 7, 8, 50] {
            let data: Vec<u8> = (0..len as u8).collect();
            let image = file(meta, &data, 7);
            assert_eq!(decode(&image, &config()), Ok(Snapshot { meta, data }), "len {len}");
        }
    }

    #[test]
    fn missing_extra_or_flipped_bytes_are_rejected() {
        let meta = SnapshotMeta { index: 40, term: 3 };
        let image = file(meta, &[5; 30], 7);
        let header_len = piece(meta, &[5; 30], 7, 0).unwrap().len();
        let last_chunk_start = image.len() - piece(meta, &[5; 30], 7, 5).unwrap().len();
        assert!(decode(&image[..last_chunk_start], &config()).unwrap_err().1.contains("of the 30 bytes"));
        assert_eq!(decode(&image[..image.len() - 1], &config()).unwrap_err().0, last_chunk_start as u64);
        let mut doubled = image.clone();
        doubled.extend_from_slice(&image[header_len..]);
        assert!(decode(&doubled, &config()).unwrap_err().1.contains("exceed"));
        for byte in 0..image.len() {
            let mut flipped = image.clone();
            flipped[byte] ^= 0x10;
            assert!(decode(&flipped, &config()).is_err(), "flip at {byte} unnoticed");
        }
        assert!(decode(&[], &config()).is_err());
    }
}
