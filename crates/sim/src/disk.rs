//! One node's simulated disk.
//!
//! In: the `IoRequest`s a node's component starts, a crash, and fault knobs
//! (disk full, corrupt reads). Out: each request's latency, then its
//! `IoResult` when the simulator completes it; after a crash, the image a
//! restarted node finds.
//!
//! The semantics are exactly those documented in `haven_runtime::disk`:
//! - an operation takes effect when it completes (so ops complete, and
//!   apply, in any order their latencies give);
//! - a completed write or truncate is visible at once but volatile until a
//!   `Sync` of that file, issued after it completed, completes;
//! - a `WriteSync` runs in two stages, a write with the write latency, then
//!   a sync of its file with the sync latency, issued when the write
//!   completes; a crash between the two may lose or tear the write;
//! - creating a file (first write), `Rename` and `Remove` are durable only
//!   once a `SyncDir` issued after them completes;
//! - on a crash the durable image survives; each file keeps a random in-order
//!   prefix of its volatile changes, and the first change not kept, if it is a
//!   write, may be torn (a random proper prefix of its bytes kept); every
//!   volatile directory change is rolled back.
//!
//! Files are inodes referenced by name from two directories, the visible one
//! and the durable one, which is what makes a rename atomic and a rolled-back
//! remove bring the old contents back.

use crate::dist::{Dist, chance};
use crate::error::{ConfigError, check_probability};
use haven_runtime::{FileInfo, FileName, IoDone, IoError, IoRequest, IoResult};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Latencies, crash behaviour and size limits of every node's disk.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskConfig {
    /// Write, truncate, rename and remove.
    pub write_latency: Dist,
    /// Sync and SyncDir.
    pub sync_latency: Dist,
    /// Read and List.
    pub read_latency: Dist,
    /// Chance that the first volatile write a crash does not keep is torn.
    pub torn_write_probability: f64,
    /// A write or truncate past this length fails with `NoSpace`.
    pub file_bytes_max: u64,
    /// A write or truncate that would make the files' lengths add up to
    /// more fails with `NoSpace`.
    pub disk_bytes_max: u64,
    /// Creating a file beyond this many fails with `NoSpace`.
    pub files_max: usize,
    /// Volatile changes kept per file (and directory changes per disk); the
    /// oldest beyond it become durable, as a kernel's writeback would do.
    pub volatile_changes_max: usize,
    /// Bytes of volatile writes kept per file, with the same writeback.
    pub volatile_bytes_max: usize,
}

impl Default for DiskConfig {
    /// An SSD: writes to the page cache in tens of microseconds, fsync in
    /// about a millisecond with a rare slow one.
    fn default() -> Self {
        DiskConfig {
            write_latency: Dist::uniform(Duration::from_micros(10), Duration::from_micros(100)),
            sync_latency: Dist::tail(
                0.01,
                Dist::uniform(Duration::from_micros(500), Duration::from_millis(2)),
                Dist::exponential(Duration::from_millis(20)),
            ),
            read_latency: Dist::uniform(Duration::from_micros(10), Duration::from_micros(200)),
            torn_write_probability: 0.5,
            file_bytes_max: 256 << 20,
            disk_bytes_max: 1 << 30,
            files_max: 10_000,
            volatile_changes_max: 4_096,
            volatile_bytes_max: 64 << 20,
        }
    }
}

impl DiskConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.write_latency.validate("disk write latency")?;
        self.sync_latency.validate("disk sync latency")?;
        self.read_latency.validate("disk read latency")?;
        check_probability("torn write probability", self.torn_write_probability)?;
        if self.files_max == 0 {
            return Err(ConfigError::ZeroLimit { what: "disk files_max" });
        }
        if self.volatile_changes_max == 0 {
            return Err(ConfigError::ZeroLimit { what: "disk volatile_changes_max" });
        }
        if self.volatile_bytes_max == 0 {
            return Err(ConfigError::ZeroLimit { what: "disk volatile_bytes_max" });
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct InodeId(u64);

#[derive(Debug)]
enum Change {
    Write { offset: usize, data: Vec<u8> },
    Truncate { len: usize },
}

impl Change {
    /// Memory the change holds while volatile.
    fn bytes(&self) -> usize {
        match self {
            Change::Write { data, .. } => data.len(),
            Change::Truncate { .. } => 0,
        }
    }
}

#[derive(Debug)]
enum DirChange {
    Link(FileName, InodeId),
    Unlink(FileName),
}

/// A file's contents: what reads see, what is durable, and the volatile
/// changes in between (each numbered by completion order).
#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    volatile: VecDeque<(u64, Change)>,
    volatile_bytes: usize,
    changes: u64,
}

/// A request in flight, with what it must remember from its issue time.
#[derive(Debug)]
pub(crate) struct DiskOp {
    pub(crate) request: IoRequest,
    mark: Mark,
}

#[derive(Debug)]
enum Mark {
    None,
    /// A file sync covers the file's changes completed before it was issued.
    File(Option<InodeId>, u64),
    /// The first stage of a `WriteSync`: the write.
    WriteThenSync,
    /// A directory sync covers directory changes completed before it was issued.
    Dir(u64),
    Rejected(IoError),
}

/// What completing a disk op leads to.
#[derive(Debug)]
pub(crate) enum Stage {
    /// The request's result, for the component.
    Done(IoResult),
    /// A further op of the same request (the sync of a `WriteSync`), due
    /// after the latency.
    Then(DiskOp, Duration),
}

/// One node's flat directory of files.
#[derive(Debug)]
pub struct SimDisk {
    config: DiskConfig,
    rng: ChaCha8Rng,
    dir: BTreeMap<FileName, InodeId>,
    durable_dir: BTreeMap<FileName, InodeId>,
    dir_log: VecDeque<(u64, DirChange)>,
    dir_changes: u64,
    inodes: BTreeMap<InodeId, Inode>,
    next_inode: u64,
    /// Sum of the visible files' lengths.
    bytes_used: u64,
    full: bool,
    corrupt_read_probability: f64,
}

impl SimDisk {
    pub(crate) fn new(config: DiskConfig, rng: ChaCha8Rng) -> SimDisk {
        SimDisk {
            config,
            rng,
            dir: BTreeMap::new(),
            durable_dir: BTreeMap::new(),
            dir_log: VecDeque::new(),
            dir_changes: 0,
            inodes: BTreeMap::new(),
            next_inode: 0,
            bytes_used: 0,
            full: false,
            corrupt_read_probability: 0.0,
        }
    }

    /// What a read would return now, without faults.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        let id = self.dir.get(&FileName::new(name).ok()?)?;
        Some(&self.inodes[id].data)
    }

    /// What is sure to survive a crash: the durable directory's entry and
    /// that file's durable contents.
    pub fn durable_file(&self, name: &str) -> Option<&[u8]> {
        let id = self.durable_dir.get(&FileName::new(name).ok()?)?;
        Some(&self.inodes[id].durable)
    }

    /// Visible file names, sorted.
    pub fn file_names(&self) -> impl Iterator<Item = &FileName> {
        self.dir.keys()
    }

    pub fn is_full(&self) -> bool {
        self.full
    }

    pub(crate) fn set_full(&mut self, full: bool) {
        self.full = full;
    }

    pub(crate) fn set_corrupt_reads(&mut self, probability: f64) {
        self.corrupt_read_probability = probability;
    }

    /// Accepts a request: returns what completion needs and its latency.
    /// A `WriteSync` returns its first stage (see [`Stage`]).
    pub(crate) fn submit(&mut self, request: IoRequest) -> (DiskOp, Duration) {
        if let Err(err) = request.check_limits() {
            return (DiskOp { request, mark: Mark::Rejected(err) }, Duration::ZERO);
        }
        let (mark, latency) = match &request {
            IoRequest::Sync { file } => {
                let inode = self.dir.get(file).copied();
                let seen = inode.map_or(0, |id| self.inodes[&id].changes);
                (Mark::File(inode, seen), &self.config.sync_latency)
            }
            IoRequest::SyncDir => (Mark::Dir(self.dir_changes), &self.config.sync_latency),
            IoRequest::Read { .. } | IoRequest::List => (Mark::None, &self.config.read_latency),
            IoRequest::WriteSync { .. } => (Mark::WriteThenSync, &self.config.write_latency),
            IoRequest::Write { .. }
            | IoRequest::Truncate { .. }
            | IoRequest::Rename { .. }
            | IoRequest::Remove { .. } => (Mark::None, &self.config.write_latency),
        };
        let latency = latency.sample(&mut self.rng);
        (DiskOp { request, mark }, latency)
    }

    /// Performs a request, or a stage of one, at its completion time.
    pub(crate) fn complete(&mut self, op: DiskOp) -> Stage {
        match (op.request, op.mark) {
            (IoRequest::WriteSync { file, offset, data }, Mark::WriteThenSync) => {
                if let Err(e) = self.write(file.clone(), offset, data) {
                    return Stage::Done(Err(e));
                }
                let (op, latency) = self.submit(IoRequest::Sync { file });
                Stage::Then(op, latency)
            }
            (request, mark) => Stage::Done(self.complete_one(request, mark)),
        }
    }

    fn complete_one(&mut self, request: IoRequest, mark: Mark) -> IoResult {
        match (request, mark) {
            (_, Mark::Rejected(err)) => Err(err),
            (IoRequest::Sync { .. }, Mark::File(inode, seen)) => self.sync_file(inode, seen),
            (IoRequest::SyncDir, Mark::Dir(seen)) => Ok(self.sync_dir(seen)),
            (IoRequest::Read { file, offset, len_max }, _) => self.read(&file, offset, len_max),
            (IoRequest::Write { file, offset, data }, _) => self.write(file, offset, data),
            (IoRequest::Truncate { file, len }, _) => self.truncate(&file, len),
            (IoRequest::Rename { from, to }, _) => self.rename(from, to),
            (IoRequest::Remove { file }, _) => Ok(self.remove(file)),
            (IoRequest::List, _) => Ok(self.list()),
            (request, mark) => panic!("disk op {request:?} submitted with mark {mark:?}"),
        }
    }

    fn read(&mut self, file: &FileName, offset: u64, len_max: u32) -> IoResult {
        let id = self.dir.get(file).ok_or(IoError::NotFound)?;
        let data = &self.inodes[id].data;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(len_max as usize).min(data.len());
        let mut bytes = data[start..end].to_vec();
        if !bytes.is_empty() && chance(&mut self.rng, self.corrupt_read_probability) {
            let bit = self.rng.random_range(0..bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        Ok(IoDone::Read(bytes))
    }

    /// Whether a file of length `now` may become `len` bytes long: within
    /// the file and disk limits, and addressable.
    fn fits(&self, now: u64, len: u64) -> bool {
        let used = self.bytes_used - now + len;
        len <= self.config.file_bytes_max
            && (len <= now || used <= self.config.disk_bytes_max)
            && usize::try_from(len).is_ok()
    }

    fn len(&self, file: &FileName) -> u64 {
        self.dir.get(file).map_or(0, |id| self.inodes[id].data.len() as u64)
    }

    fn write(&mut self, file: FileName, offset: u64, data: Vec<u8>) -> IoResult {
        if self.full {
            return Err(IoError::NoSpace);
        }
        let now = self.len(&file);
        match offset.checked_add(data.len() as u64) {
            Some(end) if self.fits(now, end.max(now)) => {}
            _ => return Err(IoError::NoSpace),
        }
        let id = match self.dir.get(&file) {
            Some(id) => *id,
            None if self.dir.len() >= self.config.files_max => return Err(IoError::NoSpace),
            None => self.create(file),
        };
        let offset = usize::try_from(offset).expect("checked by fits");
        self.change(id, Change::Write { offset, data });
        Ok(IoDone::Written)
    }

    fn truncate(&mut self, file: &FileName, len: u64) -> IoResult {
        let id = *self.dir.get(file).ok_or(IoError::NotFound)?;
        if !self.fits(self.len(file), len) {
            return Err(IoError::NoSpace);
        }
        let len = usize::try_from(len).expect("checked by fits");
        self.change(id, Change::Truncate { len });
        Ok(IoDone::Truncated)
    }

    fn create(&mut self, file: FileName) -> InodeId {
        let id = InodeId(self.next_inode);
        self.next_inode += 1;
        self.inodes.insert(id, Inode::default());
        self.dir.insert(file.clone(), id);
        self.dir_change(DirChange::Link(file, id));
        id
    }

    fn change(&mut self, id: InodeId, change: Change) {
        let inode = self.inodes.get_mut(&id).expect("directory entry without inode");
        let before = inode.data.len() as u64;
        apply(&mut inode.data, &change);
        self.bytes_used = self.bytes_used - before + inode.data.len() as u64;
        inode.changes += 1;
        inode.volatile_bytes += change.bytes();
        inode.volatile.push_back((inode.changes, change));
        let (changes_max, bytes_max) = (self.config.volatile_changes_max, self.config.volatile_bytes_max);
        while inode.volatile.len() > changes_max || inode.volatile_bytes > bytes_max {
            let Some((_, oldest)) = inode.volatile.pop_front() else { break };
            inode.volatile_bytes -= oldest.bytes();
            apply(&mut inode.durable, &oldest);
        }
    }

    fn sync_file(&mut self, inode: Option<InodeId>, seen: u64) -> IoResult {
        let id = inode.ok_or(IoError::NotFound)?;
        // The file may have been removed since; syncing an open, unlinked
        // file still succeeds.
        if let Some(inode) = self.inodes.get_mut(&id) {
            while inode.volatile.front().is_some_and(|(n, _)| *n <= seen) {
                let (_, change) = inode.volatile.pop_front().expect("front checked");
                inode.volatile_bytes -= change.bytes();
                apply(&mut inode.durable, &change);
            }
        }
        Ok(IoDone::Synced)
    }

    fn rename(&mut self, from: FileName, to: FileName) -> IoResult {
        let id = *self.dir.get(&from).ok_or(IoError::NotFound)?;
        if from != to {
            self.dir.remove(&from);
            self.bytes_used -= self.len(&to);
            let replaced = self.dir.insert(to.clone(), id);
            self.dir_change(DirChange::Unlink(from));
            self.dir_change(DirChange::Link(to, id));
            if let Some(old) = replaced {
                self.collect(old);
            }
        }
        Ok(IoDone::Renamed)
    }

    fn remove(&mut self, file: FileName) -> IoDone {
        self.bytes_used -= self.len(&file);
        if let Some(id) = self.dir.remove(&file) {
            self.dir_change(DirChange::Unlink(file));
            self.collect(id);
        }
        IoDone::Removed
    }

    fn list(&self) -> IoDone {
        let files =
            self.dir.iter().map(|(name, id)| FileInfo { name: name.clone(), len: self.inodes[id].data.len() as u64 });
        IoDone::Listed(files.collect())
    }

    fn dir_change(&mut self, change: DirChange) {
        self.dir_changes += 1;
        self.dir_log.push_back((self.dir_changes, change));
        if self.dir_log.len() > self.config.volatile_changes_max {
            self.sync_dir(self.dir_changes - self.dir_log.len() as u64 + 1);
        }
    }

    fn sync_dir(&mut self, seen: u64) -> IoDone {
        while self.dir_log.front().is_some_and(|(n, _)| *n <= seen) {
            match self.dir_log.pop_front().expect("front checked").1 {
                DirChange::Link(name, id) => {
                    if let Some(old) = self.durable_dir.insert(name, id) {
                        self.collect(old);
                    }
                }
                DirChange::Unlink(name) => {
                    if let Some(old) = self.durable_dir.remove(&name) {
                        self.collect(old);
                    }
                }
            }
        }
        IoDone::DirSynced
    }

    /// Drops an inode once neither directory names it.
    fn collect(&mut self, id: InodeId) {
        let named = |dir: &BTreeMap<FileName, InodeId>| dir.values().any(|v| *v == id);
        if !named(&self.dir) && !named(&self.durable_dir) {
            self.inodes.remove(&id);
        }
    }

    /// Applies a crash: see the module header for what survives.
    pub(crate) fn crash(&mut self) {
        self.dir_log.clear();
        self.dir = self.durable_dir.clone();
        let live: BTreeSet<InodeId> = self.dir.values().copied().collect();
        self.inodes.retain(|id, _| live.contains(id));
        let torn_p = self.config.torn_write_probability;
        for inode in self.inodes.values_mut() {
            inode.crash(&mut self.rng, torn_p);
        }
        self.bytes_used = self.dir.values().map(|id| self.inodes[id].data.len() as u64).sum();
    }
}

impl Inode {
    fn crash(&mut self, rng: &mut ChaCha8Rng, torn_p: f64) {
        let mut image = std::mem::take(&mut self.durable);
        if !self.volatile.is_empty() {
            let keep = rng.random_range(0..=self.volatile.len());
            for (i, (_, change)) in self.volatile.drain(..).enumerate() {
                if i < keep {
                    apply(&mut image, &change);
                    continue;
                }
                if let Change::Write { offset, data } = change
                    && data.len() > 1
                    && chance(rng, torn_p)
                {
                    let kept = rng.random_range(1..data.len());
                    apply(&mut image, &Change::Write { offset, data: data[..kept].to_vec() });
                }
                break;
            }
        }
        self.volatile.clear();
        self.volatile_bytes = 0;
        self.data = image.clone();
        self.durable = image;
    }
}

/// Bounds were checked against `file_bytes_max` before a change is made.
fn apply(buf: &mut Vec<u8>, change: &Change) {
    match change {
        Change::Write { offset, data } => {
            let end = offset + data.len();
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[*offset..end].copy_from_slice(data);
        }
        Change::Truncate { len } => buf.resize(*len, 0),
    }
}
