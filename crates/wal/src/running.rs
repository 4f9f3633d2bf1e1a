//! The open WAL: request checks and the three lanes of disk work.
//!
//! In: raft's requests (append, hard state, truncate, snapshot, compact)
//! and the completions of the log, snapshot and compaction lanes.
//! Out: disk requests, timers and [`WalEvent`]s; a fatal [`WalError`] when
//! the log can no longer promise durability.
//!
//! Requests are checked here against the log as accepted so far (queued
//! included), so that whatever is queued replays as a valid log: indexes
//! continue it, terms never decrease, truncations stay above the snapshot.

use crate::compaction::{CompactNext, Compaction};
use crate::config::WalConfig;
use crate::entry::{Entry, SnapshotMeta};
use crate::error::{DiskOp, WalError};
use crate::event::{Ticket, WalEvent};
use crate::format::LogRecord;
use crate::open::Opened;
use crate::segment_name::SegmentName;
use crate::snapshot_save::{SaveNext, SnapshotSave};
use crate::tags::{WalIo, WalTimer};
use crate::terms::TermRuns;
use crate::wal::Wal;
use crate::writer::{LogWriter, Queued, WriterNext};
use bytes::Bytes;
use haven_runtime::{CtxFor, IoResult};

#[derive(Debug)]
pub(crate) struct Running {
    config: WalConfig,
    writer: LogWriter,
    write_retry_pending: bool,
    save: Option<SnapshotSave>,
    compaction: Option<Compaction>,
    /// Segments durably on disk, in sequence order.
    segments: Vec<SegmentName>,
    /// The log's last index as accepted (queued requests included).
    index_last: u64,
    terms: TermRuns,
    /// The durable snapshot; index 0 if none.
    snapshot: SnapshotMeta,
    ticket_last: u64,
}

impl Running {
    /// The running WAL after recovery, and the event announcing it.
    pub(crate) fn new(config: WalConfig, opened: Opened) -> (Running, WalEvent) {
        let recovered = opened.recovered;
        let snapshot = recovered.snapshot.as_ref().map_or(SnapshotMeta { index: 0, term: 0 }, |s| s.meta);
        let mut terms = TermRuns::new(snapshot);
        for entry in &recovered.entries {
            terms.append(entry.index, entry.term);
        }
        assert_eq!(terms.term_last(), opened.term_last, "replay and the term runs agree");
        let writer =
            LogWriter::new(config.clone(), opened.seq_last, recovered.index_last, recovered.hard_state.clone());
        let running = Running {
            config,
            writer,
            write_retry_pending: false,
            save: None,
            compaction: None,
            segments: opened.segments,
            index_last: recovered.index_last,
            terms,
            snapshot,
            ticket_last: 0,
        };
        (running, WalEvent::Opened(Box::new(recovered)))
    }

    pub(crate) fn index_last(&self) -> u64 {
        self.index_last
    }

    pub(crate) fn snapshot(&self) -> SnapshotMeta {
        self.snapshot
    }

    pub(crate) fn segments(&self) -> &[SegmentName] {
        &self.segments
    }

    pub(crate) fn queue_bytes(&self) -> usize {
        self.writer.queue_bytes()
    }

    fn push(&mut self, bytes: Vec<u8>, index_last: u64, hard_state: Option<Vec<u8>>) -> Result<Ticket, WalError> {
        let ticket = Ticket(self.ticket_last + 1);
        self.writer.push(Queued { bytes, ticket, index_last, hard_state })?;
        self.ticket_last = ticket.0;
        Ok(ticket)
    }

    pub(crate) fn append(&mut self, entries: &[Entry]) -> Result<Ticket, WalError> {
        if entries.is_empty() {
            return Err(WalError::NoEntries);
        }
        let (mut expected, mut term_prev) = (self.index_last + 1, self.terms.term_last());
        let mut bytes = Vec::new();
        for Entry { index, term, payload } in entries {
            if *index != expected {
                return Err(WalError::NotContiguous { index: *index, expected });
            }
            if *term < term_prev {
                return Err(WalError::TermRegress { index: *index, term: *term, term_prev });
            }
            if payload.len() > self.config.entry_bytes_max as usize {
                let bytes_max = u64::from(self.config.entry_bytes_max);
                return Err(WalError::TooLarge { what: "entry payload", bytes: payload.len() as u64, bytes_max });
            }
            LogRecord::Entry { index: *index, term: *term, payload }.encode(&mut bytes);
            (expected, term_prev) = (index + 1, *term);
        }
        let ticket = self.push(bytes, expected - 1, None)?;
        for entry in entries {
            self.terms.append(entry.index, entry.term);
        }
        self.index_last = expected - 1;
        Ok(ticket)
    }

    pub(crate) fn set_hard_state(&mut self, hard_state: Vec<u8>) -> Result<Ticket, WalError> {
        if hard_state.len() > self.config.hard_state_bytes_max as usize {
            let (bytes, bytes_max) = (hard_state.len() as u64, u64::from(self.config.hard_state_bytes_max));
            return Err(WalError::TooLarge { what: "hard state", bytes, bytes_max });
        }
        let mut bytes = Vec::new();
        LogRecord::HardState(&hard_state).encode(&mut bytes);
        self.push(bytes, self.index_last, Some(hard_state))
    }

    pub(crate) fn truncate_suffix(&mut self, index_from: u64) -> Result<Ticket, WalError> {
        let (index_min, index_max) = (self.snapshot.index + 1, self.index_last + 1);
        if !(index_min..=index_max).contains(&index_from) {
            return Err(WalError::TruncateOutOfRange { index_from, index_min, index_max });
        }
        let mut bytes = Vec::new();
        LogRecord::Truncate { index_from }.encode(&mut bytes);
        let ticket = self.push(bytes, index_from - 1, None)?;
        self.terms.truncate(index_from);
        self.index_last = index_from - 1;
        Ok(ticket)
    }

    /// Starts the next batch unless one is in flight or waits for a retry.
    pub(crate) fn kick(&mut self, ctx: &mut impl CtxFor<Wal>) {
        if self.write_retry_pending {
            return;
        }
        if let Some(request) = self.writer.poll() {
            ctx.io(request, WalIo::Log);
        }
    }

    pub(crate) fn on_log_io(&mut self, ctx: &mut impl CtxFor<Wal>, result: IoResult) -> Result<(), WalError> {
        match self.writer.on_io(result) {
            WriterNext::Io(request) => {
                ctx.io(request, WalIo::Log);
            }
            WriterNext::Done(done) => {
                if let Some(segment) = done.new_segment {
                    assert!(self.segments.last().is_none_or(|s| s.seq < segment.seq), "segments are numbered upward");
                    self.segments.push(segment);
                }
                let (through, index_last, hard_state) = (done.through, done.index_last, done.hard_state);
                ctx.output(WalEvent::Durable { through, index_last, hard_state });
                self.kick(ctx);
            }
            WriterNext::RetryAfter { after, error, attempt } => {
                ctx.output(WalEvent::DiskError { op: DiskOp::Write, error, attempt });
                ctx.set_timer(after, WalTimer::RetryWrite);
                self.write_retry_pending = true;
            }
            WriterNext::Fatal(error) => return Err(error),
        }
        Ok(())
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut impl CtxFor<Wal>, timer: WalTimer) {
        match timer {
            WalTimer::RetryWrite => {
                assert!(self.write_retry_pending, "one retry timer per failed write");
                self.write_retry_pending = false;
                ctx.io(self.writer.retry(), WalIo::Log);
            }
        }
    }

    pub(crate) fn save_snapshot(
        &mut self,
        ctx: &mut impl CtxFor<Wal>,
        meta: SnapshotMeta,
        data: Bytes,
    ) -> Result<(), WalError> {
        if self.save.is_some() {
            return Err(WalError::SnapshotBusy);
        }
        if meta.index <= self.snapshot.index {
            return Err(WalError::SnapshotStale { index: meta.index, index_saved: self.snapshot.index });
        }
        if data.len() as u64 > self.config.snapshot_bytes_max {
            let (bytes, bytes_max) = (data.len() as u64, self.config.snapshot_bytes_max);
            return Err(WalError::TooLarge { what: "snapshot", bytes, bytes_max });
        }
        let (save, request) = SnapshotSave::start(meta, data, self.config.snapshot_chunk_bytes_max);
        self.save = Some(save);
        ctx.io(request, WalIo::Snapshot);
        Ok(())
    }

    pub(crate) fn on_snapshot_io(&mut self, ctx: &mut impl CtxFor<Wal>, result: IoResult) {
        let save = self.save.as_mut().expect("a snapshot completion answers the save in flight");
        match save.on_io(result) {
            SaveNext::Io(request) => {
                ctx.io(request, WalIo::Snapshot);
            }
            SaveNext::Done(meta) => {
                self.save = None;
                self.snapshot_saved(meta);
                ctx.output(WalEvent::SnapshotSaved { meta });
            }
            SaveNext::Failed { meta, op, error } => {
                self.save = None;
                ctx.output(WalEvent::SnapshotFailed { meta, op, error });
            }
        }
    }

    /// A durable snapshot at or past the log's end replaces the log: the
    /// next entry continues after the snapshot.
    fn snapshot_saved(&mut self, meta: SnapshotMeta) {
        assert!(meta.index > self.snapshot.index, "checked when the save started, and saves do not overlap");
        let replaces_log = meta.index >= self.index_last;
        self.terms.rebase(meta, replaces_log);
        self.snapshot = meta;
        self.index_last = self.index_last.max(meta.index);
    }

    /// Starts removing the segments whose entries are all at or below
    /// `index`; returns how many. The last segment is always kept.
    pub(crate) fn compact(&mut self, ctx: &mut impl CtxFor<Wal>, index: u64) -> Result<usize, WalError> {
        if self.compaction.is_some() {
            return Err(WalError::CompactBusy);
        }
        if index > self.snapshot.index {
            return Err(WalError::CompactBeyondSnapshot { index, index_snapshot: self.snapshot.index });
        }
        // Every entry of a segment is below the index the next one starts at.
        let covered = self.segments.windows(2).take_while(|w| w[1].index_first <= index.saturating_add(1)).count();
        if covered == 0 {
            return Ok(0);
        }
        let (compaction, request) = Compaction::start(self.segments[..covered].to_vec());
        self.compaction = Some(compaction);
        ctx.io(request, WalIo::Compact);
        Ok(covered)
    }

    pub(crate) fn on_compact_io(&mut self, ctx: &mut impl CtxFor<Wal>, result: IoResult) {
        let compaction = self.compaction.as_mut().expect("a compaction completion answers the one in flight");
        match compaction.on_io(result) {
            CompactNext::Io { request, removed } => {
                if let Some(segment) = removed {
                    assert_eq!(self.segments.first(), Some(&segment), "segments are removed oldest first");
                    self.segments.remove(0);
                }
                ctx.io(request, WalIo::Compact);
            }
            CompactNext::Done { segments_removed } => {
                self.compaction = None;
                let index_first = self.segments.first().map_or(self.index_last + 1, |s| s.index_first);
                ctx.output(WalEvent::Compacted { segments_removed, index_first });
            }
            CompactNext::Failed { op, error } => {
                self.compaction = None;
                ctx.output(WalEvent::CompactFailed { op, error });
            }
        }
    }
}
