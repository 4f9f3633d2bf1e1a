//! Group commit: the queue of accepted records and the one batch in flight.
//!
//! In: encoded records of each accepted request (with its ticket and what
//! the log looks like after it), and the completions of the batch's I/O.
//! Out: the next disk request, and for each finished batch a [`BatchDone`]
//! that acknowledges every request in it.
//!
//! While a batch is being written and synced, new requests wait in the
//! queue; the next batch takes as many of them as fit `batch_bytes_max`,
//! so N requests made during one sync cost one write and one sync, issued
//! as one `WriteSync` (one round trip to the disk, not two: on a fast disk
//! the round trip costs as much as the fsync). A batch that would push the
//! segment past `segment_bytes_max` starts a new segment instead: header, a
//! copy of the latest hard state, the batch, in one write and sync; then a
//! sync of the directory (the new name must survive a crash before anything
//! in it is acknowledged).
//!
//! A write that runs past the zeros already written to its segment carries
//! zeros after its records, up to the next multiple of `zero_fill_bytes`
//! (never past `segment_bytes_max`): the batches after it overwrite synced
//! zeros, which the file system syncs without a metadata commit. Replay
//! reads zeros at a record boundary as the end of the segment's records.
//!
//! A failed write is retried at the same offset (rewriting the same bytes is
//! harmless) up to `write_attempts_max` times. A failed sync (`SyncFailed`)
//! is fatal: after a failed fsync the kernel may have dropped the dirty
//! pages, so a later successful one proves nothing about them.

use crate::config::WalConfig;
use crate::error::{DiskOp, WalError};
use crate::event::Ticket;
use crate::format::LogRecord;
use crate::segment_name::SegmentName;
use haven_runtime::{FileName, IoDone, IoError, IoRequest, IoResult};
use std::collections::VecDeque;
use std::time::Duration;

/// One accepted request, encoded.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) bytes: Vec<u8>,
    pub(crate) ticket: Ticket,
    /// The log's last index once this request is applied.
    pub(crate) index_last: u64,
    /// The hard state this request sets, if it is one.
    pub(crate) hard_state: Option<Vec<u8>>,
}

/// The segment batches are appended to.
#[derive(Debug)]
struct Current {
    name: SegmentName,
    /// The end of its records: the next batch goes here.
    len: u64,
    /// The end of the file: zeros from `len` to here.
    zeroed_to: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BatchStep {
    WriteSync,
    SyncDir,
}

#[derive(Debug)]
struct Batch {
    file: FileName,
    offset: u64,
    /// A new segment's header and hard-state copy; empty when appending.
    head: Vec<u8>,
    /// The requests' records, as queued: the write request assembles them
    /// (`LogWriter::write_request`), so the batch holds no second copy.
    parts: Vec<Vec<u8>>,
    /// Bytes of `head` and `parts`: the records this write adds to the segment.
    records_len: usize,
    /// `records_len` plus the zeros written ahead of the next records.
    write_len: usize,
    /// Set when the batch starts a new segment.
    new_segment: Option<SegmentName>,
    step: BatchStep,
    attempts: u32,
    through: Ticket,
    index_last: u64,
    hard_state: bool,
}

/// A batch made durable.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BatchDone {
    pub(crate) through: Ticket,
    pub(crate) index_last: u64,
    pub(crate) hard_state: bool,
    pub(crate) new_segment: Option<SegmentName>,
}

#[derive(Debug)]
pub(crate) enum WriterNext {
    Io(IoRequest),
    Done(BatchDone),
    /// The write failed; call `retry` after `after`.
    RetryAfter {
        after: Duration,
        error: IoError,
        attempt: u32,
    },
    Fatal(WalError),
}

#[derive(Debug)]
pub(crate) struct LogWriter {
    config: WalConfig,
    queue: VecDeque<Queued>,
    queue_bytes: usize,
    batch: Option<Batch>,
    current: Option<Current>,
    seq_last: u64,
    /// The log's last index after every record handed to a batch.
    index_last_written: u64,
    /// The latest hard state handed to a batch: copied into new segments.
    hard_state_written: Option<Vec<u8>>,
}

impl LogWriter {
    /// A writer that starts a new segment (numbered above `seq_last`) with
    /// its first batch: recovered segments are never appended to.
    pub(crate) fn new(config: WalConfig, seq_last: u64, index_last: u64, hard_state: Option<Vec<u8>>) -> LogWriter {
        LogWriter {
            config,
            queue: VecDeque::new(),
            queue_bytes: 0,
            batch: None,
            current: None,
            seq_last,
            index_last_written: index_last,
            hard_state_written: hard_state,
        }
    }

    pub(crate) fn queue_bytes(&self) -> usize {
        self.queue_bytes
    }

    /// Accepts a request, or refuses it so the caller pushes back.
    pub(crate) fn push(&mut self, queued: Queued) -> Result<(), WalError> {
        let bytes = queued.bytes.len();
        if bytes > self.config.batch_bytes_max {
            let bytes_max = self.config.batch_bytes_max as u64;
            return Err(WalError::TooLarge { what: "one request", bytes: bytes as u64, bytes_max });
        }
        if self.queue_bytes + bytes > self.config.queue_bytes_max {
            let (bytes_queued, bytes_max) = (self.queue_bytes, self.config.queue_bytes_max);
            return Err(WalError::QueueFull { bytes_queued, bytes, bytes_max });
        }
        assert!(self.queue.back().is_none_or(|last| last.ticket < queued.ticket), "tickets grow");
        self.queue_bytes += bytes;
        self.queue.push_back(queued);
        Ok(())
    }

    /// Starts the next batch if none is in flight and requests wait.
    pub(crate) fn poll(&mut self) -> Option<IoRequest> {
        if self.batch.is_some() || self.queue.is_empty() {
            return None;
        }
        let batch = self.cut();
        self.batch = Some(batch);
        Some(self.write_request())
    }

    /// Takes the queued requests that fit one batch.
    fn cut(&mut self) -> Batch {
        let (mut parts, mut parts_len) = (Vec::new(), 0);
        let (mut through, mut index_last, mut hard_state) = (Ticket(0), self.index_last_written, false);
        let index_first = self.index_last_written + 1;
        let hard_state_before = self.hard_state_written.clone();
        while let Some(next) = self.queue.front() {
            if parts_len > 0 && parts_len + next.bytes.len() > self.config.batch_bytes_max {
                break;
            }
            let next = self.queue.pop_front().expect("front checked");
            self.queue_bytes -= next.bytes.len();
            parts_len += next.bytes.len();
            parts.push(next.bytes);
            (through, index_last) = (next.ticket, next.index_last);
            if let Some(state) = next.hard_state {
                hard_state = true;
                self.hard_state_written = Some(state);
            }
        }
        assert!(parts_len > 0 && parts_len <= self.config.batch_bytes_max, "a batch holds 1..=max bytes");
        self.index_last_written = index_last;
        let fits = self.current.as_ref().is_some_and(|c| c.len + parts_len as u64 <= self.config.segment_bytes_max);
        let (file, offset, new_segment, head, zeroed_to) = match &self.current {
            Some(current) if fits => (current.name.file(), current.len, None, Vec::new(), current.zeroed_to),
            _ => {
                self.seq_last += 1;
                let name = SegmentName { seq: self.seq_last, index_first };
                (name.file(), 0, Some(name), Self::segment_head(name, hard_state_before.as_deref()), 0)
            }
        };
        let records_len = head.len() + parts_len;
        let write_len = self.zero_filled_len(offset, records_len, zeroed_to);
        Batch {
            file,
            offset,
            head,
            parts,
            records_len,
            write_len,
            new_segment,
            step: BatchStep::WriteSync,
            attempts: 0,
            through,
            index_last,
            hard_state,
        }
    }

    /// The length of a write of `records_len` bytes at `offset` with zeros
    /// up to the next multiple of `zero_fill_bytes`, if it runs past
    /// `zeroed_to`; else `records_len`.
    fn zero_filled_len(&self, offset: u64, records_len: usize, zeroed_to: u64) -> usize {
        let (step, end) = (self.config.zero_fill_bytes, offset + records_len as u64);
        if step == 0 || end <= zeroed_to {
            return records_len;
        }
        let target = end.div_ceil(step).saturating_mul(step).min(self.config.segment_bytes_max).max(end);
        let write_len = usize::try_from(target - offset).expect("validated: one write fits memory");
        assert!(write_len <= self.config.log_write_bytes_max(), "validated: batch and zeros fit one write");
        write_len
    }

    /// A new segment's first records, before the batch: header, hard-state copy.
    fn segment_head(name: SegmentName, hard_state: Option<&[u8]>) -> Vec<u8> {
        let mut head = Vec::with_capacity(64 + hard_state.map_or(0, <[u8]>::len));
        LogRecord::Header { seq: name.seq, index_first: name.index_first }.encode(&mut head);
        if let Some(state) = hard_state {
            LogRecord::HardState(state).encode(&mut head);
        }
        head
    }

    pub(crate) fn on_io(&mut self, result: IoResult) -> WriterNext {
        let batch = self.batch.as_mut().expect("a log completion answers the batch in flight");
        let step = batch.step;
        match (step, result) {
            (BatchStep::WriteSync, Ok(IoDone::Synced)) => {
                let len = batch.offset + batch.records_len as u64;
                let written_to = batch.offset + batch.write_len as u64;
                let (name, zeroed_to) = match (batch.new_segment, &self.current) {
                    (Some(name), _) => (name, written_to),
                    (None, Some(current)) => (current.name, current.zeroed_to.max(written_to)),
                    (None, None) => unreachable!("a batch without a new segment appends to the current one"),
                };
                self.current = Some(Current { name, len, zeroed_to });
                if batch.new_segment.is_some() {
                    batch.step = BatchStep::SyncDir;
                    return WriterNext::Io(IoRequest::SyncDir);
                }
                self.finish()
            }
            (BatchStep::SyncDir, Ok(IoDone::DirSynced)) => self.finish(),
            (BatchStep::WriteSync, Err(error @ IoError::SyncFailed(_))) => {
                WriterNext::Fatal(WalError::Disk { op: DiskOp::Sync, file: Some(batch.file.clone()), error })
            }
            (BatchStep::WriteSync, Err(error)) => {
                batch.attempts += 1;
                if batch.attempts >= self.config.write_attempts_max {
                    let file = Some(batch.file.clone());
                    return WriterNext::Fatal(WalError::Disk { op: DiskOp::Write, file, error });
                }
                let doublings = (batch.attempts - 1).min(20);
                let delay_ms = self.config.retry_delay_ms_min.saturating_mul(1 << doublings);
                let after = Duration::from_millis(delay_ms.min(self.config.retry_delay_ms_max));
                WriterNext::RetryAfter { after, error, attempt: batch.attempts }
            }
            (BatchStep::SyncDir, Err(error)) => {
                WriterNext::Fatal(WalError::Disk { op: DiskOp::SyncDir, file: Some(batch.file.clone()), error })
            }
            (step, Ok(done)) => panic!("executor answered log step {step:?} with {done:?}"),
        }
    }

    fn finish(&mut self) -> WriterNext {
        let batch = self.batch.take().expect("a finished batch was in flight");
        let (through, index_last, hard_state) = (batch.through, batch.index_last, batch.hard_state);
        WriterNext::Done(BatchDone { through, index_last, hard_state, new_segment: batch.new_segment })
    }

    /// Rewrites the batch whose write failed.
    pub(crate) fn retry(&mut self) -> IoRequest {
        let batch = self.batch.as_ref().expect("a retry is scheduled only for a failed batch");
        assert_eq!(batch.step, BatchStep::WriteSync, "only writes are retried");
        self.write_request()
    }

    /// The batch's write and sync, assembled into one buffer of its final
    /// size. Assembled, not cloned from a kept copy: a batch that zero-fills
    /// writes up to 256 KiB, and cloning gave each such batch a second
    /// buffer of that size, which showed up in the stations' profiles as
    /// page faults. A retry assembles the same bytes again.
    fn write_request(&self) -> IoRequest {
        let batch = self.batch.as_ref().expect("a batch is in flight");
        let mut data = Vec::with_capacity(batch.write_len);
        data.extend_from_slice(&batch.head);
        for part in &batch.parts {
            data.extend_from_slice(part);
        }
        assert_eq!(data.len(), batch.records_len, "the parts are the records");
        data.resize(batch.write_len, 0);
        IoRequest::WriteSync { file: batch.file.clone(), offset: batch.offset, data }
    }
}
