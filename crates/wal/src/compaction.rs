//! Removing segments a snapshot covers.
//!
//! In: the segments to remove (oldest first), then each completion.
//! Out: the next request, the segment each `Remove` took away, and finally
//! a directory sync that makes the removals durable.
//!
//! Any subset of the removals may survive a crash: recovery accepts a log
//! that starts anywhere at or below the snapshot, so the order and the
//! crash point do not matter. The latest hard state is never lost, because
//! the segment kept last starts with a copy of it.

use crate::error::DiskOp;
use crate::segment_name::SegmentName;
use haven_runtime::{IoDone, IoError, IoRequest, IoResult};
use std::collections::VecDeque;

#[derive(Debug)]
pub(crate) enum CompactNext {
    /// `removed` is the segment the completed step removed, if it was a removal.
    Io {
        request: IoRequest,
        removed: Option<SegmentName>,
    },
    Done {
        segments_removed: usize,
    },
    Failed {
        op: DiskOp,
        error: IoError,
    },
}

#[derive(Debug)]
pub(crate) struct Compaction {
    pending: VecDeque<SegmentName>,
    in_flight: Option<SegmentName>,
    segments_removed: usize,
}

impl Compaction {
    pub(crate) fn start(segments: Vec<SegmentName>) -> (Compaction, IoRequest) {
        assert!(!segments.is_empty(), "a compaction removes at least one segment");
        let mut compaction = Compaction { pending: segments.into(), in_flight: None, segments_removed: 0 };
        let request = compaction.next().expect("one segment at least");
        (compaction, request)
    }

    fn next(&mut self) -> Option<IoRequest> {
        let segment = self.pending.pop_front()?;
        self.in_flight = Some(segment);
        Some(IoRequest::Remove { file: segment.file() })
    }

    pub(crate) fn on_io(&mut self, result: IoResult) -> CompactNext {
        let removed = self.in_flight.take();
        match result {
            Ok(IoDone::Removed) => {
                self.segments_removed += 1;
                let request = self.next().unwrap_or(IoRequest::SyncDir);
                CompactNext::Io { request, removed }
            }
            Ok(IoDone::DirSynced) => {
                assert!(removed.is_none() && self.pending.is_empty(), "the directory sync comes last");
                CompactNext::Done { segments_removed: self.segments_removed }
            }
            Ok(done) => panic!("executor answered a compaction step with {done:?}"),
            Err(error) => {
                let op = if removed.is_some() { DiskOp::Remove } else { DiskOp::SyncDir };
                CompactNext::Failed { op, error }
            }
        }
    }
}
