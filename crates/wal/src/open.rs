//! Opening the WAL: recovery as a sequence of disk steps.
//!
//! In: the completion of each step it asked for.
//! Out: the next disk request, and at the end the recovered state
//! ([`Opened`]), or a fatal [`WalError`].
//!
//! Steps, one at a time: list the directory; remove a leftover
//! `snapshot.tmp` (a save that never got renamed); read and decode
//! `snapshot`; read and replay every segment in sequence order; if the last
//! one ends in a torn write, read that tail again (a bit flipped by a bad
//! read must not pass for a tear and cost acknowledged records), then cut it
//! off (or remove the segment if not even its header survived); sync the
//! last segment and the directory, because what a restarted process reads
//! may still sit unsynced in the page cache, and raft will act on it as
//! durable.

use crate::config::WalConfig;
use crate::entry::Snapshot;
use crate::error::{DiskOp, WalError};
use crate::event::{Recovered, TornTail};
use crate::file_read::FileRead;
use crate::replay::{Replay, SegmentEnd};
use crate::segment_name::SegmentName;
use crate::snapshot_file::{self, SNAPSHOT_FILE, SNAPSHOT_TMP_FILE};
use haven_runtime::{FileInfo, FileName, IoDone, IoRequest, IoResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    List,
    RemoveTmp,
    ReadSnapshot,
    ReadSegment(usize),
    ConfirmTail,
    RepairTail,
    SyncLast,
    SyncDir,
}

/// What recovery hands to the running WAL.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) recovered: Recovered,
    /// Segments on disk after repair, in sequence order.
    pub(crate) segments: Vec<SegmentName>,
    /// The highest sequence number ever seen (new segments go above it).
    pub(crate) seq_last: u64,
    pub(crate) term_last: u64,
}

#[derive(Debug)]
pub(crate) enum OpenNext {
    Io(IoRequest),
    Done(Box<Opened>),
}

#[derive(Debug)]
pub(crate) struct Opener {
    config: WalConfig,
    step: Step,
    in_flight: Option<(DiskOp, Option<FileName>)>,
    read: Option<FileRead>,
    tmp_exists: bool,
    snapshot_len: Option<u64>,
    segments: Vec<(SegmentName, u64)>,
    snapshot: Option<Snapshot>,
    replay: Option<Replay>,
    torn: Option<TornTail>,
    /// The torn bytes as first read, to compare with the second read.
    torn_bytes: Vec<u8>,
}

fn name(s: &str) -> FileName {
    FileName::new(s).expect("constant file names are valid")
}

impl Opener {
    /// The opener and its first request.
    pub(crate) fn start(config: WalConfig) -> (Opener, IoRequest) {
        let mut opener = Opener {
            config,
            step: Step::List,
            in_flight: None,
            read: None,
            tmp_exists: false,
            snapshot_len: None,
            segments: Vec::new(),
            snapshot: None,
            replay: None,
            torn: None,
            torn_bytes: Vec::new(),
        };
        let request = opener.issue(IoRequest::List);
        (opener, request)
    }

    fn issue(&mut self, request: IoRequest) -> IoRequest {
        let file = match &request {
            IoRequest::Read { file, .. }
            | IoRequest::Truncate { file, .. }
            | IoRequest::Remove { file }
            | IoRequest::Sync { file } => Some(file.clone()),
            _ => None,
        };
        assert!(self.in_flight.is_none(), "recovery runs one disk step at a time");
        self.in_flight = Some((DiskOp::of(&request), file));
        request
    }

    pub(crate) fn on_io(&mut self, result: IoResult) -> Result<OpenNext, WalError> {
        let (op, file) = self.in_flight.take().expect("a completion answers the step in flight");
        let done = result.map_err(|error| WalError::Disk { op, file: file.clone(), error })?;
        match (self.step, done) {
            (Step::List, IoDone::Listed(files)) => self.listed(files)?,
            (Step::ReadSnapshot | Step::ReadSegment(_) | Step::ConfirmTail, IoDone::Read(data)) => {
                let read = self.read.as_mut().expect("a read step has a reader");
                read.on_data(&data).map_err(|reason| WalError::Corrupt {
                    file: read.file().clone(),
                    offset: 0,
                    reason: format!("file changed while read: {reason}"),
                })?;
            }
            (Step::RemoveTmp, IoDone::Removed)
            | (Step::RepairTail, IoDone::Truncated | IoDone::Removed)
            | (Step::SyncLast, IoDone::Synced)
            | (Step::SyncDir, IoDone::DirSynced) => {}
            (step, done) => panic!("executor answered open step {step:?} with {done:?}"),
        }
        self.advance()
    }

    fn listed(&mut self, files: Vec<FileInfo>) -> Result<(), WalError> {
        for FileInfo { name, len } in files {
            match name.as_str() {
                SNAPSHOT_TMP_FILE => self.tmp_exists = true,
                SNAPSHOT_FILE => {
                    let bytes_max = snapshot_file::file_bytes_max(&self.config);
                    if len > bytes_max {
                        return Err(WalError::RecoverTooLarge { what: "snapshot file", bytes: len, bytes_max });
                    }
                    self.snapshot_len = Some(len);
                }
                other => {
                    let Some(segment) = SegmentName::parse(other) else { continue };
                    let bytes_max = self.config.recover_bytes_max;
                    if len > bytes_max {
                        return Err(WalError::RecoverTooLarge { what: "segment file", bytes: len, bytes_max });
                    }
                    self.segments.push((segment, len));
                }
            }
        }
        self.segments.sort_unstable();
        if let Some(pair) = self.segments.windows(2).find(|w| w[0].0.seq == w[1].0.seq) {
            let reason = format!("two segments with sequence number {}", pair[0].0.seq);
            return Err(WalError::Corrupt { file: pair[1].0.file(), offset: 0, reason });
        }
        Ok(())
    }

    /// Runs steps until one needs the disk, or recovery is complete.
    fn advance(&mut self) -> Result<OpenNext, WalError> {
        loop {
            if let Some(read) = &self.read {
                if let Some(request) = read.request() {
                    return Ok(OpenNext::Io(self.issue(request)));
                }
                let bytes = self.read.take().expect("checked").into_bytes();
                self.finish_read(bytes)?;
            }
            let Some(next) = self.next_step() else { return Ok(OpenNext::Done(Box::new(self.finish()))) };
            self.step = next;
            if let Some(request) = self.enter() {
                return Ok(OpenNext::Io(self.issue(request)));
            }
        }
    }

    fn next_step(&self) -> Option<Step> {
        Some(match self.step {
            Step::List => Step::RemoveTmp,
            Step::RemoveTmp => Step::ReadSnapshot,
            Step::ReadSnapshot => Step::ReadSegment(0),
            Step::ReadSegment(i) if i + 1 < self.segments.len() => Step::ReadSegment(i + 1),
            Step::ReadSegment(_) => Step::ConfirmTail,
            Step::ConfirmTail => Step::RepairTail,
            Step::RepairTail => Step::SyncLast,
            Step::SyncLast => Step::SyncDir,
            Step::SyncDir => return None,
        })
    }

    /// Starts the current step: a request, or a reader set up, or nothing to do.
    fn enter(&mut self) -> Option<IoRequest> {
        let read_bytes_max = self.config.read_bytes_max;
        match self.step {
            Step::List => unreachable!("listing is the first step, started by `start`"),
            Step::RemoveTmp => self.tmp_exists.then(|| IoRequest::Remove { file: name(SNAPSHOT_TMP_FILE) }),
            Step::ReadSnapshot => {
                let len = self.snapshot_len?;
                self.read = Some(FileRead::new(name(SNAPSHOT_FILE), 0, len, read_bytes_max));
                None
            }
            Step::ReadSegment(i) => {
                let (segment, len) = *self.segments.get(i)?;
                self.read = Some(FileRead::new(segment.file(), 0, len, read_bytes_max));
                None
            }
            Step::ConfirmTail => {
                let torn = self.torn.as_ref()?;
                let (start, len) = (torn.offset, torn.bytes_dropped);
                self.read = Some(FileRead::new(torn.file.clone(), start, len, read_bytes_max));
                None
            }
            Step::RepairTail => {
                let torn = self.torn.as_ref()?;
                Some(match torn.offset {
                    0 => IoRequest::Remove { file: torn.file.clone() },
                    len => IoRequest::Truncate { file: torn.file.clone(), len },
                })
            }
            Step::SyncLast => Some(IoRequest::Sync { file: self.kept_segments().last()?.file() }),
            Step::SyncDir => Some(IoRequest::SyncDir),
        }
    }

    fn finish_read(&mut self, bytes: Vec<u8>) -> Result<(), WalError> {
        match self.step {
            Step::ReadSnapshot => {
                let snapshot = snapshot_file::decode(&bytes, &self.config)
                    .map_err(|(offset, reason)| WalError::Corrupt { file: name(SNAPSHOT_FILE), offset, reason })?;
                self.snapshot = Some(snapshot);
            }
            Step::ReadSegment(i) => {
                let (segment, len) = self.segments[i];
                let is_last = i + 1 == self.segments.len();
                let snapshot = self.snapshot.as_ref().map(|s| s.meta);
                let replay = self.replay.get_or_insert_with(|| Replay::new(&self.config, snapshot));
                if let SegmentEnd::Torn { offset, reason } = replay.segment(segment, &bytes, is_last)? {
                    let file = segment.file();
                    self.torn = Some(TornTail { file, offset, bytes_dropped: len - offset, reason });
                    self.torn_bytes = bytes[offset as usize..].to_vec();
                }
            }
            Step::ConfirmTail => {
                let torn = self.torn.as_ref().expect("a tail is confirmed only when torn");
                if bytes != self.torn_bytes {
                    let reason = "the torn tail read back differently: reads are unreliable, not cutting".into();
                    return Err(WalError::Corrupt { file: torn.file.clone(), offset: torn.offset, reason });
                }
            }
            step => unreachable!("step {step:?} reads nothing"),
        }
        Ok(())
    }

    /// Segments that remain once a torn-away last segment is removed.
    fn kept_segments(&self) -> Vec<SegmentName> {
        let removed = self.torn.as_ref().filter(|t| t.offset == 0).map(|t| t.file.clone());
        self.segments.iter().map(|(s, _)| *s).filter(|s| Some(s.file()) != removed).collect()
    }

    fn finish(&mut self) -> Opened {
        let snapshot = self.snapshot.take();
        let meta = snapshot.as_ref().map(|s| s.meta);
        let replayed = self.replay.take().unwrap_or_else(|| Replay::new(&self.config, meta)).finish();
        let segments = self.kept_segments();
        let seq_last = self.segments.last().map_or(0, |(s, _)| s.seq);
        let recovered = Recovered {
            hard_state: replayed.hard_state,
            snapshot,
            entries: replayed.entries,
            index_last: replayed.index_last,
            torn_tail: self.torn.take(),
        };
        Opened { recovered, segments, seq_last, term_last: replayed.term_last }
    }
}
