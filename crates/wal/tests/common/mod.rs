//! A tiny parent component for the WAL, as the raft glue will be: it owns a
//! `Wal`, calls it with sub-contexts, routes its I/O and timers back, and
//! reports every `WalEvent` (plus each request's fate) as an output.
//! `Poke` writes raw bytes into a file behind the WAL's back, to plant
//! corruption on the simulated disk.

#![allow(dead_code)]

use haven_runtime::{Component, CtxFor, FileName, IoId, IoRequest, IoResult, NodeId, TimerId};
use haven_wal::{Entry, NoMsg, SnapshotMeta, Ticket, Wal, WalConfig, WalError, WalEvent, WalIo, WalTimer};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmd {
    Append(Vec<Entry>),
    HardState(Vec<u8>),
    Truncate(u64),
    Snapshot(SnapshotMeta, Vec<u8>),
    Compact(u64),
    Poke { file: String, offset: u64, data: Vec<u8> },
}

impl From<NoMsg> for Cmd {
    fn from(never: NoMsg) -> Self {
        match never {}
    }
}

#[derive(Debug)]
pub enum Tag {
    Wal(WalIo),
    /// The raw write of a poke, then its sync (so a crash keeps it).
    Poke(FileName),
    PokeSync,
}

impl From<WalIo> for Tag {
    fn from(io: WalIo) -> Self {
        Tag::Wal(io)
    }
}

#[derive(Debug)]
pub enum Tick {
    Wal(WalTimer),
}

impl From<WalTimer> for Tick {
    fn from(t: WalTimer) -> Self {
        Tick::Wal(t)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    Wal(WalEvent),
    /// `ticket` is `None` for requests that do not get one (snapshot, compact).
    Accepted {
        ticket: Option<Ticket>,
        cmd: Cmd,
    },
    Rejected {
        cmd: Cmd,
        error: WalError,
    },
    Poked(IoResult),
}

#[derive(Debug)]
pub struct Harness {
    pub wal: Wal,
}

impl Harness {
    pub fn new(config: WalConfig) -> Harness {
        Harness { wal: Wal::new(config).expect("valid test config") }
    }

    fn forward(ctx: &mut impl CtxFor<Self>, events: Vec<WalEvent>) {
        for event in events {
            ctx.output(Out::Wal(event));
        }
    }

    fn request(
        &mut self,
        ctx: &mut impl CtxFor<Self>,
        cmd: &Cmd,
        events: &mut Vec<WalEvent>,
    ) -> Result<Option<Ticket>, WalError> {
        let mut sub = ctx.sub(events);
        match cmd {
            Cmd::Append(entries) => self.wal.append(&mut sub, entries).map(Some),
            Cmd::HardState(state) => self.wal.set_hard_state(&mut sub, state.clone()).map(Some),
            Cmd::Truncate(from) => self.wal.truncate_suffix(&mut sub, *from).map(Some),
            Cmd::Snapshot(meta, data) => self.wal.save_snapshot(&mut sub, *meta, data.clone()).map(|()| None),
            Cmd::Compact(index) => self.wal.compact(&mut sub, *index).map(|_| None),
            Cmd::Poke { .. } => unreachable!("handled by the harness"),
        }
    }
}

impl Component for Harness {
    type Msg = Cmd;
    type Timer = Tick;
    type Io = Tag;
    type Out = Out;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        let mut events = Vec::new();
        self.wal.open(&mut ctx.sub(&mut events)).expect("a new Wal opens");
        Self::forward(ctx, events);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, _: NodeId, cmd: Cmd) {
        if let Cmd::Poke { file, offset, data } = &cmd {
            let file = FileName::new(file).expect("valid name");
            ctx.io(IoRequest::Write { file: file.clone(), offset: *offset, data: data.clone() }, Tag::Poke(file));
            return;
        }
        let mut events = Vec::new();
        let result = self.request(ctx, &cmd, &mut events);
        match result {
            Ok(ticket) => ctx.output(Out::Accepted { ticket, cmd }),
            Err(error) => ctx.output(Out::Rejected { cmd, error }),
        }
        Self::forward(ctx, events);
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: Tick) {
        let Tick::Wal(timer) = timer;
        let mut events = Vec::new();
        self.wal.on_timer(&mut ctx.sub(&mut events), id, timer);
        Self::forward(ctx, events);
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: Tag, result: IoResult) {
        match tag {
            Tag::Wal(tag) => {
                let mut events = Vec::new();
                self.wal.on_io(&mut ctx.sub(&mut events), id, tag, result);
                Self::forward(ctx, events);
            }
            Tag::Poke(file) if result.is_ok() => {
                ctx.io(IoRequest::Sync { file }, Tag::PokeSync);
            }
            Tag::Poke(_) | Tag::PokeSync => ctx.output(Out::Poked(result)),
        }
    }
}

/// Small limits so a short test rolls segments and fills queues.
pub fn small_config() -> WalConfig {
    WalConfig {
        segment_bytes_max: 1024,
        batch_bytes_max: 512,
        // Off: these tests cut and flip bytes at the end of the last record.
        zero_fill_bytes: 0,
        queue_bytes_max: 2048,
        entry_bytes_max: 64,
        hard_state_bytes_max: 32,
        recover_bytes_max: 1 << 20,
        snapshot_bytes_max: 4096,
        snapshot_chunk_bytes_max: 100,
        read_bytes_max: 300,
        write_attempts_max: 4,
        retry_delay_ms_min: 5,
        retry_delay_ms_max: 40,
    }
}

pub fn entry(index: u64, term: u64) -> Entry {
    Entry { index, term, payload: format!("e{index}t{term}").into_bytes().into() }
}

pub fn entries(from: u64, to: u64, term: u64) -> Vec<Entry> {
    (from..=to).map(|i| entry(i, term)).collect()
}

/// An in-memory directory that completes requests at once, in order, with
/// no durability model: for transcripts that count and inspect requests.
#[derive(Debug, Default)]
pub struct MemDisk {
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
}

impl MemDisk {
    pub fn apply(&mut self, request: &IoRequest) -> IoResult {
        use haven_runtime::{FileInfo, IoDone, IoError};
        match request {
            IoRequest::Read { file, offset, len_max } => {
                let data = self.files.get(file.as_str()).ok_or(IoError::NotFound)?;
                let start = (*offset as usize).min(data.len());
                let end = (start + *len_max as usize).min(data.len());
                Ok(IoDone::Read(data[start..end].to_vec()))
            }
            IoRequest::Write { file, offset, data } => {
                let buf = self.files.entry(file.as_str().to_owned()).or_default();
                let end = *offset as usize + data.len();
                if buf.len() < end {
                    buf.resize(end, 0);
                }
                buf[*offset as usize..end].copy_from_slice(data);
                Ok(IoDone::Written)
            }
            IoRequest::WriteSync { file, offset, data } => {
                let write = IoRequest::Write { file: file.clone(), offset: *offset, data: data.clone() };
                self.apply(&write).map(|_| IoDone::Synced)
            }
            IoRequest::Sync { file } if self.files.contains_key(file.as_str()) => Ok(IoDone::Synced),
            IoRequest::Sync { .. } => Err(IoError::NotFound),
            IoRequest::Truncate { file, len } => {
                let buf = self.files.get_mut(file.as_str()).ok_or(IoError::NotFound)?;
                buf.resize(*len as usize, 0);
                Ok(IoDone::Truncated)
            }
            IoRequest::Rename { from, to } => {
                let data = self.files.remove(from.as_str()).ok_or(IoError::NotFound)?;
                self.files.insert(to.as_str().to_owned(), data);
                Ok(IoDone::Renamed)
            }
            IoRequest::Remove { file } => {
                self.files.remove(file.as_str());
                Ok(IoDone::Removed)
            }
            IoRequest::List => Ok(IoDone::Listed(
                self.files
                    .iter()
                    .map(|(name, data)| FileInfo { name: FileName::new(name).unwrap(), len: data.len() as u64 })
                    .collect(),
            )),
            IoRequest::SyncDir => Ok(IoDone::DirSynced),
        }
    }
}

/// A `Host<Harness>` over a `MemDisk`, completing I/O when the test says.
pub struct HostRig {
    pub host: haven_runtime::Host<Harness>,
    pub disk: MemDisk,
    pub pending: std::collections::VecDeque<(IoId, IoRequest)>,
    pub outputs: Vec<Out>,
    /// Every request completed so far, in completion order.
    pub completed: Vec<IoRequest>,
    pub timers: Vec<(TimerId, haven_runtime::Instant)>,
    pub now: haven_runtime::Instant,
}

type Fx = Vec<haven_runtime::Effect<Cmd, Out>>;

impl HostRig {
    pub fn new(config: WalConfig, disk: MemDisk) -> HostRig {
        use rand::SeedableRng;
        let host = haven_runtime::Host::new(NodeId(1), Harness::new(config), rand_chacha::ChaCha8Rng::seed_from_u64(1));
        HostRig {
            host,
            disk,
            pending: Default::default(),
            outputs: Vec::new(),
            completed: Vec::new(),
            timers: Vec::new(),
            now: haven_runtime::Instant::ZERO,
        }
    }

    fn absorb(&mut self, fx: Fx) {
        use haven_runtime::Effect;
        for effect in fx {
            match effect {
                Effect::Io { id, request } => self.pending.push_back((id, request)),
                Effect::Output(out) => self.outputs.push(out),
                Effect::SetTimer { id, at } => self.timers.push((id, at)),
                Effect::CancelTimer { id } => self.timers.retain(|(t, _)| *t != id),
                Effect::Send { .. } => panic!("the WAL sends nothing"),
            }
        }
    }

    /// Starts the harness and completes the whole open.
    pub fn open(&mut self) -> Out {
        let mut fx = Fx::new();
        self.host.start(self.now, &mut fx);
        self.absorb(fx);
        self.settle();
        self.outputs.pop().expect("open reports")
    }

    pub fn deliver(&mut self, cmd: Cmd) {
        let mut fx = Fx::new();
        self.host.deliver(self.now, NodeId(9), cmd, &mut fx);
        self.absorb(fx);
    }

    /// Completes the oldest pending request with `result`.
    pub fn complete_with(&mut self, result: IoResult) -> IoRequest {
        let (id, request) = self.pending.pop_front().expect("a request is pending");
        let mut fx = Fx::new();
        self.host.complete(self.now, id, result, &mut fx);
        self.completed.push(request.clone());
        self.absorb(fx);
        request
    }

    /// Completes the oldest pending request against the disk.
    pub fn complete(&mut self) -> IoRequest {
        let request = self.pending.front().expect("a request is pending").1.clone();
        let result = self.disk.apply(&request);
        self.complete_with(result)
    }

    /// Completes requests until none is pending.
    pub fn settle(&mut self) {
        while !self.pending.is_empty() {
            self.complete();
        }
    }

    pub fn fire_timers(&mut self) {
        for (id, at) in std::mem::take(&mut self.timers) {
            self.now = self.now.max(at);
            let mut fx = Fx::new();
            self.host.fire(self.now, id, &mut fx);
            self.absorb(fx);
        }
    }

    pub fn wal_events(&self) -> Vec<WalEvent> {
        self.outputs.iter().filter_map(|o| if let Out::Wal(e) = o { Some(e.clone()) } else { None }).collect()
    }

    pub fn wal(&self) -> &Wal {
        &self.host.component().wal
    }
}
