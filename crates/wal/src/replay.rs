//! Recovery's pure core: segment images in, one log out.
//!
//! In: the snapshot's metadata (if any), then each segment's name and full
//! contents, in sequence order, the last one flagged.
//! Out: per segment, whether it ended cleanly or with a torn tail (only the
//! last segment may); at the end, the latest hard state, the entries after
//! the snapshot and the log's last index. Any other defect is
//! `WalError::Corrupt` naming the file and offset.
//!
//! Replay rules, which the writer's invariants make exact:
//! - each segment starts with a header matching its name, and its index
//!   continues the log: `index_first` = last index + 1;
//! - entries continue the log one by one, and an entry's term is never
//!   below the one before it;
//! - a truncation marker at `i` drops entries from `i` on (at most one past
//!   the log's end, or past the snapshot that replaced the log);
//! - a jump forward is accepted only if the snapshot covers the whole gap
//!   (compaction removed those segments, or a snapshot replaced the log);
//! - entries at or below the snapshot index are skipped, not kept.

use crate::config::WalConfig;
use crate::entry::{Entry, SnapshotMeta};
use crate::error::WalError;
use crate::format::{LOG_VERSION, LogRecord};
use crate::segment_name::SegmentName;
use haven_runtime::FileName;
use haven_runtime::record::{self, Decoded, HEADER_BYTES, RecordError};

/// How a segment's contents ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SegmentEnd {
    Clean,
    /// The bytes from `offset` on are an interrupted write (last segment only).
    Torn {
        offset: u64,
        reason: String,
    },
}

/// The log rebuilt so far.
#[derive(Debug)]
pub(crate) struct Replay {
    record_payload_bytes_max: u32,
    recover_bytes_max: u64,
    snapshot: SnapshotMeta,
    /// The index of the last entry in record order (possibly below the
    /// snapshot); `None` before the first header.
    index_prev: Option<u64>,
    /// Entries above the snapshot: exactly `snapshot.index + 1 ..= index_prev`.
    entries: Vec<Entry>,
    entry_bytes: u64,
    hard_state: Option<Vec<u8>>,
}

/// What replay hands to the rest of recovery.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub(crate) hard_state: Option<Vec<u8>>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) index_last: u64,
    pub(crate) term_last: u64,
}

fn corrupt(file: &FileName, offset: usize, reason: impl Into<String>) -> WalError {
    WalError::Corrupt { file: file.clone(), offset: offset as u64, reason: reason.into() }
}

impl Replay {
    pub(crate) fn new(config: &WalConfig, snapshot: Option<SnapshotMeta>) -> Replay {
        Replay {
            record_payload_bytes_max: config.record_payload_bytes_max(),
            recover_bytes_max: config.recover_bytes_max,
            snapshot: snapshot.unwrap_or(SnapshotMeta { index: 0, term: 0 }),
            index_prev: None,
            entries: Vec::new(),
            entry_bytes: 0,
            hard_state: None,
        }
    }

    /// Replays one segment's full contents.
    pub(crate) fn segment(&mut self, name: SegmentName, image: &[u8], is_last: bool) -> Result<SegmentEnd, WalError> {
        let file = name.file();
        let mut offset = 0;
        while offset < image.len() {
            let rest = &image[offset..];
            if rest.iter().all(|b| *b == 0) {
                break; // zeros written ahead of the records (`zero_fill_bytes`)
            }
            let (reaches_end, reason) = match record::decode(rest, &[LOG_VERSION], self.record_payload_bytes_max) {
                Ok(Decoded::Record { payload, len_total, .. }) => {
                    let rec = LogRecord::decode(payload).map_err(|r| corrupt(&file, offset, r))?;
                    self.apply(name, offset == 0, rec).map_err(|e| e.at(&file, offset))?;
                    offset += len_total;
                    continue;
                }
                Ok(Decoded::Incomplete { len_total }) => {
                    (true, format!("incomplete record: {} of {len_total} bytes", rest.len()))
                }
                Err(error) => (Self::bad_record_reaches_end(rest, &error), error.to_string()),
            };
            // Only the end of the last write can be torn; anything else
            // would lose acknowledged records, so it must stop the node.
            return if is_last && reaches_end {
                Ok(SegmentEnd::Torn { offset: offset as u64, reason })
            } else {
                Err(corrupt(&file, offset, reason))
            };
        }
        match (offset, is_last) {
            (0, true) => Ok(SegmentEnd::Torn { offset: 0, reason: "empty segment".into() }),
            (0, false) => Err(corrupt(&file, 0, "empty segment before the last one")),
            _ => Ok(SegmentEnd::Clean),
        }
    }

    /// Whether an invalid record could be the remains of an interrupted
    /// write: a checksum mismatch on a record with only zeros after its
    /// stated length (or whose stated length runs past the end of the
    /// file), as the write's unwritten part leaves it over zeros written
    /// ahead or past the end. A bad version or length, or bytes other than
    /// zeros after the record, could be a flipped bit in front of
    /// acknowledged records, so it is not a tear.
    fn bad_record_reaches_end(rest: &[u8], error: &RecordError) -> bool {
        match error {
            RecordError::Checksum { .. } => {
                let len = u32::from_le_bytes(rest[1..5].try_into().expect("a checksum error implies a full header"));
                let after = rest.get(HEADER_BYTES.saturating_add(len as usize)..).unwrap_or_default();
                after.iter().all(|b| *b == 0)
            }
            RecordError::UnknownVersion { .. } | RecordError::TooLarge { .. } => false,
        }
    }

    fn apply(&mut self, name: SegmentName, at_start: bool, rec: LogRecord<'_>) -> Result<(), Fault> {
        match rec {
            LogRecord::Header { seq, index_first } => {
                if !at_start {
                    return Err(Fault::corrupt("segment header in the middle of a segment"));
                }
                if seq != name.seq || index_first != name.index_first {
                    return Err(Fault::corrupt(format!("header says seq {seq}, index {index_first}; name disagrees")));
                }
                self.continue_at(index_first)?;
                self.index_prev = Some(index_first - 1);
            }
            _ if at_start => return Err(Fault::corrupt("segment does not start with a header")),
            LogRecord::Entry { index, term, payload } => self.entry(index, term, payload)?,
            LogRecord::HardState(bytes) => self.hard_state = Some(bytes.to_vec()),
            LogRecord::Truncate { index_from } => self.truncate(index_from)?,
        }
        self.check_invariant();
        Ok(())
    }

    /// Checks that `index` may come next in the log.
    fn continue_at(&self, index: u64) -> Result<(), Fault> {
        let covered = self.snapshot.index.saturating_add(1);
        let ok = match self.index_prev {
            _ if index == 0 => false,
            None => index <= covered,
            Some(prev) => index == prev.saturating_add(1) || (index > prev && index <= covered),
        };
        if ok {
            return Ok(());
        }
        let after = self.index_prev.map_or("the start".to_owned(), |p| format!("index {p}"));
        Err(Fault::corrupt(format!(
            "index {index} cannot follow {after} (snapshot covers up to {})",
            self.snapshot.index
        )))
    }

    fn entry(&mut self, index: u64, term: u64, payload: &[u8]) -> Result<(), Fault> {
        self.continue_at(index)?;
        // Only consecutive entries are compared: the snapshot's term is
        // raft's to reconcile with the entries after it.
        let term_prev = self.entries.last().map_or(0, |last| last.term);
        if term < term_prev {
            return Err(Fault::corrupt(format!("entry {index} has term {term}, below {term_prev} before it")));
        }
        self.index_prev = Some(index);
        if index > self.snapshot.index {
            self.entry_bytes += payload.len() as u64;
            if self.entry_bytes > self.recover_bytes_max {
                let (bytes, bytes_max) = (self.entry_bytes, self.recover_bytes_max);
                return Err(Fault::Other(WalError::RecoverTooLarge { what: "recover_bytes_max", bytes, bytes_max }));
            }
            self.entries.push(Entry { index, term, payload: payload.into() });
        }
        Ok(())
    }

    fn truncate(&mut self, index_from: u64) -> Result<(), Fault> {
        let prev = self.index_prev.expect("a header precedes every other record");
        // Past a snapshot that replaced the log, the log's end is the
        // snapshot's index even if no entry reaches it: nothing to drop.
        let end = prev.max(self.snapshot.index);
        if index_from == 0 || index_from > end.saturating_add(1) {
            return Err(Fault::corrupt(format!("truncation from {index_from} beyond the log's end {end}")));
        }
        if index_from > prev {
            return Ok(());
        }
        let keep = index_from.saturating_sub(self.snapshot.index + 1);
        let keep = usize::try_from(keep).unwrap_or(usize::MAX).min(self.entries.len());
        for dropped in self.entries.drain(keep..) {
            self.entry_bytes -= dropped.payload.len() as u64;
        }
        self.index_prev = Some(index_from - 1);
        Ok(())
    }

    fn check_invariant(&self) {
        let above = self.index_prev.unwrap_or(0).saturating_sub(self.snapshot.index);
        assert_eq!(self.entries.len() as u64, above, "entries are exactly those between the snapshot and the end");
        if let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) {
            assert_eq!(
                (first.index, Some(last.index)),
                (self.snapshot.index + 1, self.index_prev),
                "entries contiguous"
            );
        }
    }

    pub(crate) fn finish(self) -> Replayed {
        let index_last = self.index_prev.unwrap_or(0).max(self.snapshot.index);
        let term_last = self.entries.last().map_or(self.snapshot.term, |e| e.term);
        Replayed { hard_state: self.hard_state, entries: self.entries, index_last, term_last }
    }
}

/// A replay failure before it is placed at a file and offset.
#[derive(Debug)]
enum Fault {
    Corrupt(String),
    Other(WalError),
}

impl Fault {
    fn corrupt(reason: impl Into<String>) -> Fault {
        Fault::Corrupt(reason.into())
    }

    fn at(self, file: &FileName, offset: usize) -> WalError {
        match self {
            Fault::Corrupt(reason) => corrupt(file, offset, reason),
            Fault::Other(error) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(seq: u64, index_first: u64) -> SegmentName {
        SegmentName { seq, index_first }
    }

    fn image(records: &[LogRecord<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for rec in records {
            rec.encode(&mut out);
        }
        out
    }

    fn header(seq: u64, index_first: u64) -> LogRecord<'static> {
        LogRecord::Header { seq, index_first }
    }

    fn entry(index: u64, term: u64) -> LogRecord<'static> {
        LogRecord::Entry { index, term, payload: b"x" }
    }

    fn replay(snapshot: Option<SnapshotMeta>) -> Replay {
        Replay::new(&WalConfig::default(), snapshot)
    }

    fn indexes(replayed: &Replayed) -> Vec<u64> {
        replayed.entries.iter().map(|e| e.index).collect()
    }

    fn corrupt_reason(result: Result<SegmentEnd, WalError>) -> (u64, String) {
        match result {
            Err(WalError::Corrupt { offset, reason, .. }) => (offset, reason),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn markers_drop_entries_and_the_log_continues_after_them() {
        let mut r = replay(None);
        let seg = image(&[header(1, 1), entry(1, 1), entry(2, 1), entry(3, 1), LogRecord::Truncate { index_from: 2 }]);
        assert_eq!(r.segment(name(1, 1), &seg, false), Ok(SegmentEnd::Clean));
        let seg = image(&[header(2, 2), entry(2, 2), LogRecord::HardState(b"v")]);
        assert_eq!(r.segment(name(2, 2), &seg, true), Ok(SegmentEnd::Clean));
        let replayed = r.finish();
        assert_eq!((indexes(&replayed), replayed.index_last, replayed.term_last), (vec![1, 2], 2, 2));
        assert_eq!(replayed.hard_state.as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn a_gap_is_accepted_only_below_the_snapshot() {
        let seg1 = image(&[header(1, 1), entry(1, 1), entry(2, 1)]);
        let seg3 = image(&[header(3, 9), entry(9, 1), entry(10, 1)]);
        let mut covered = replay(Some(SnapshotMeta { index: 8, term: 1 }));
        covered.segment(name(1, 1), &seg1, false).unwrap();
        assert_eq!(covered.segment(name(3, 9), &seg3, true), Ok(SegmentEnd::Clean));
        assert_eq!(indexes(&covered.finish()), vec![9, 10]);
        let mut uncovered = replay(Some(SnapshotMeta { index: 7, term: 1 }));
        uncovered.segment(name(1, 1), &seg1, false).unwrap();
        let (offset, reason) = corrupt_reason(uncovered.segment(name(3, 9), &seg3, true));
        assert_eq!(offset, 0);
        assert!(reason.contains("cannot follow index 2"), "{reason}");
    }

    #[test]
    fn a_log_must_start_within_the_snapshot() {
        let seg = image(&[header(4, 20), entry(20, 1)]);
        assert!(replay(Some(SnapshotMeta { index: 19, term: 1 })).segment(name(4, 20), &seg, true).is_ok());
        let (_, reason) =
            corrupt_reason(replay(Some(SnapshotMeta { index: 18, term: 1 })).segment(name(4, 20), &seg, true));
        assert!(reason.contains("cannot follow the start"), "{reason}");
    }

    #[test]
    fn headers_must_match_the_name_and_come_first() {
        let seg = image(&[header(1, 1), entry(1, 1)]);
        let (_, reason) = corrupt_reason(replay(None).segment(name(2, 1), &seg, true));
        assert!(reason.contains("name disagrees"), "{reason}");
        let seg = image(&[entry(1, 1)]);
        assert!(corrupt_reason(replay(None).segment(name(1, 1), &seg, true)).1.contains("start with a header"));
        let seg = image(&[header(1, 1), header(1, 1)]);
        assert!(corrupt_reason(replay(None).segment(name(1, 1), &seg, true)).1.contains("middle"));
    }

    #[test]
    fn decreasing_terms_and_repeated_indexes_are_corruption() {
        let seg = image(&[header(1, 1), entry(1, 3), entry(2, 2)]);
        assert!(corrupt_reason(replay(None).segment(name(1, 1), &seg, true)).1.contains("below"));
        let seg = image(&[header(1, 1), entry(1, 3), entry(1, 3)]);
        assert!(corrupt_reason(replay(None).segment(name(1, 1), &seg, true)).1.contains("cannot follow"));
    }

    #[test]
    fn only_a_tail_reaching_the_end_of_the_last_segment_is_torn() {
        let seg = image(&[header(1, 1), entry(1, 1), entry(2, 1)]);
        let last_at = image(&[header(1, 1), entry(1, 1)]).len() as u64;
        // Cut short: torn in the last segment, corrupt in an earlier one.
        let cut = &seg[..seg.len() - 1];
        assert!(
            matches!(replay(None).segment(name(1, 1), cut, true), Ok(SegmentEnd::Torn { offset, .. }) if offset == last_at)
        );
        assert_eq!(corrupt_reason(replay(None).segment(name(1, 1), cut, false)).0, last_at);
        // Zeros after the records (written ahead, or a write whose data
        // never landed, which nothing acknowledged): the end, in any segment.
        let mut zeros = seg.clone();
        zeros.extend_from_slice(&[0; 40]);
        for last in [true, false] {
            assert_eq!(replay(None).segment(name(1, 1), &zeros, last), Ok(SegmentEnd::Clean));
        }
        // A write over zeros written ahead, cut short: zeros follow the torn
        // record. Torn in the last segment, corrupt in an earlier one.
        let mut torn_over_zeros = seg[..seg.len() - 3].to_vec();
        torn_over_zeros.extend_from_slice(&[0; 43]);
        assert!(matches!(
            replay(None).segment(name(1, 1), &torn_over_zeros, true),
            Ok(SegmentEnd::Torn { offset, .. }) if offset == last_at
        ));
        assert_eq!(corrupt_reason(replay(None).segment(name(1, 1), &torn_over_zeros, false)).0, last_at);
        // ...but bytes other than zeros after it are not a tear.
        let mut torn_then_garbage = torn_over_zeros.clone();
        torn_then_garbage.push(9);
        assert_eq!(corrupt_reason(replay(None).segment(name(1, 1), &torn_then_garbage, true)).0, last_at);
        // Zeros, then a record: not an end; corrupt, even last.
        let mut zeros_then_record = zeros.clone();
        zeros_then_record.extend_from_slice(&image(&[entry(3, 1)]));
        assert_eq!(corrupt_reason(replay(None).segment(name(1, 1), &zeros_then_record, true)).0, seg.len() as u64);
        // A bad version byte followed by valid records: corrupt, even last.
        let entry_1 = last_at as usize - image(&[entry(1, 1)]).len();
        let mut flipped = seg.clone();
        flipped[entry_1 + 4] ^= 0xff; // the top byte of entry 1's length
        assert_eq!(corrupt_reason(replay(None).segment(name(1, 1), &flipped, true)).0, entry_1 as u64);
        let mut garbage = seg;
        garbage.extend_from_slice(&[7, 1, 2, 3]);
        assert!(replay(None).segment(name(1, 1), &garbage, true).is_err(), "non-zero bytes of an unknown version");
    }

    #[test]
    fn recovery_is_bounded_by_recover_bytes_max() {
        let config = WalConfig { recover_bytes_max: 64 << 20, segment_bytes_max: 64 << 20, ..WalConfig::default() };
        let mut r = Replay::new(&WalConfig { recover_bytes_max: 5, ..config }, None);
        let big = [0u8; 6];
        let seg = image(&[header(1, 1), LogRecord::Entry { index: 1, term: 1, payload: &big }]);
        assert!(matches!(
            r.segment(name(1, 1), &seg, true),
            Err(WalError::RecoverTooLarge { bytes: 6, bytes_max: 5, .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), last: bool) {
            let _ = replay(None).segment(name(1, 1), &bytes, last);
        }

        #[test]
        fn any_flipped_bit_of_an_earlier_segment_is_corruption(bit in 0usize..10_000) {
            let seg = image(&[header(1, 1), entry(1, 1), LogRecord::HardState(b"hs"), entry(2, 2), LogRecord::Truncate { index_from: 2 }]);
            let bit = bit % (seg.len() * 8);
            let mut flipped = seg.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let result = replay(None).segment(name(1, 1), &flipped, false);
            proptest::prop_assert!(matches!(result, Err(WalError::Corrupt { .. })), "bit {}: {:?}", bit, result);
        }
    }
}
