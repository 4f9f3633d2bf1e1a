//! Segment file names.
//!
//! In: a segment's sequence number and the index the log continued at when
//! it was created; or a file name from a directory listing.
//! Out: `wal-<seq, 20 digits>-<index_first, 20 digits>.log`, or the two
//! numbers back (`None` for any other file: the directory is shared with
//! other components).
//!
//! The sequence number orders segments; the index alone cannot, because a
//! truncation marker may take the log back below the index a segment was
//! named after. Fixed-width digits make name order equal numeric order.

use haven_runtime::FileName;
use std::fmt;

const PREFIX: &str = "wal-";
const SUFFIX: &str = ".log";
const DIGITS: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentName {
    pub seq: u64,
    pub index_first: u64,
}

impl SegmentName {
    pub fn file(&self) -> FileName {
        FileName::new(&self.to_string()).expect("segment names use digits, letters, '-' and '.' only")
    }

    pub fn parse(name: &str) -> Option<SegmentName> {
        let middle = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
        let (seq, index_first) = middle.split_once('-')?;
        let number = |s: &str| (s.len() == DIGITS && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?;
        Some(SegmentName { seq: number(seq)?, index_first: number(index_first)? })
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{:020}-{:020}{SUFFIX}", self.seq, self.index_first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_sequence() {
        let a = SegmentName { seq: 9, index_first: 500 };
        let b = SegmentName { seq: 10, index_first: 20 };
        assert_eq!(a.to_string(), "wal-00000000000000000009-00000000000000000500.log");
        assert_eq!(SegmentName::parse(&a.to_string()), Some(a));
        assert!(a.to_string() < b.to_string(), "name order is sequence order");
        let max = SegmentName { seq: u64::MAX, index_first: u64::MAX };
        assert_eq!(SegmentName::parse(max.file().as_str()), Some(max));
    }

    #[test]
    fn other_files_are_not_segments() {
        for other in ["epoch", "snapshot", "wal-1-2.log", "wal-00000000000000000001.log", "wal--.log"] {
            assert_eq!(SegmentName::parse(other), None, "{other}");
        }
        let overflow = format!("wal-{}-{:020}.log", "9".repeat(20), 1);
        assert_eq!(SegmentName::parse(&overflow), None, "20 nines overflow u64");
    }
}
