//! The simulated disk: durability rules, crashes, tears, faults, limits.

use crate::common;

use common::{Log, Msg, Out, ms, n, record};
use haven_runtime::disk::READ_BYTES_MAX;
use haven_runtime::{FileInfo, FileName, IoDone, IoError, IoRequest, IoResult};
use haven_sim::{DiskConfig, Dist, Sim, SimConfig};
use std::time::Duration;

struct Rig {
    sim: Sim<common::Node>,
    log: Log,
}

fn name(s: &str) -> FileName {
    FileName::new(s).unwrap()
}

fn write(file: &str, offset: u64, data: &[u8]) -> IoRequest {
    IoRequest::Write { file: name(file), offset, data: data.to_vec() }
}

fn read(file: &str) -> IoRequest {
    IoRequest::Read { file: name(file), offset: 0, len_max: 1 << 20 }
}

fn write_sync(file: &str, offset: u64, data: &[u8]) -> IoRequest {
    IoRequest::WriteSync { file: name(file), offset, data: data.to_vec() }
}

fn sync(file: &str) -> IoRequest {
    IoRequest::Sync { file: name(file) }
}

impl Rig {
    fn new(seed: u64, disk: DiskConfig) -> Rig {
        let mut config = SimConfig::new(seed, 1);
        config.disk = disk;
        let mut sim = common::sim(config, None);
        let log = record(&mut sim);
        sim.start(n(1));
        sim.run_for(Duration::from_secs(1));
        Rig { sim, log }
    }

    /// Issues `requests` at the same instant; their results in completion order.
    fn concurrent(&mut self, requests: Vec<IoRequest>) -> Vec<IoResult> {
        let mark = self.log.borrow().len();
        let count = requests.len();
        for request in requests {
            self.sim.inject(n(1), n(9), Msg::Io(request));
        }
        // Longer than any latency: the sync tail is cut at 40 x 20 ms.
        self.sim.run_for(Duration::from_secs(2));
        let results: Vec<IoResult> = self.log.borrow()[mark..]
            .iter()
            .filter_map(|(_, _, out)| match out {
                Out::Io(result) => Some(result.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(results.len(), count);
        results
    }

    fn io(&mut self, request: IoRequest) -> IoResult {
        self.concurrent(vec![request]).remove(0)
    }

    fn ok(&mut self, request: IoRequest) {
        let what = format!("{request:?}");
        let result = self.io(request);
        assert!(result.is_ok(), "{what}: {result:?}");
    }

    /// Writes `data` to `file` and makes both durable.
    fn durable(&mut self, file: &str, data: &[u8]) {
        self.ok(write(file, 0, data));
        self.ok(sync(file));
        self.ok(IoRequest::SyncDir);
    }

    fn crash_restart(&mut self) {
        self.sim.crash(n(1));
        self.sim.run_for(ms(10));
        self.sim.restart(n(1));
        self.sim.run_for(Duration::from_secs(1));
    }

    fn contents(&mut self, file: &str) -> Result<Vec<u8>, IoError> {
        match self.io(read(file))? {
            IoDone::Read(bytes) => Ok(bytes),
            other => panic!("a read returned {other:?}"),
        }
    }
}

/// What a crash did to an unsynced overwrite of `old` by `new`.
#[derive(Debug, PartialEq)]
enum Fate {
    Kept,
    Lost,
    Torn(usize),
}

fn fate(old: &[u8], new: &[u8], found: &[u8]) -> Fate {
    if found == new {
        return Fate::Kept;
    }
    if found == old {
        return Fate::Lost;
    }
    let k = (1..new.len()).find(|k| found[..*k] == new[..*k] && found[*k..] == old[*k..]);
    Fate::Torn(k.unwrap_or_else(|| panic!("{found:?} is neither {old:?}, {new:?} nor a tear of one over the other")))
}

const OLD: &[u8] = b"AAAAAAAA";
const NEW: &[u8] = b"BBBBBBBB";

fn overwrite_then_crash(seed: u64, disk: DiskConfig) -> Fate {
    let mut rig = Rig::new(seed, disk);
    rig.durable("f", OLD);
    rig.ok(write("f", 0, NEW));
    assert_eq!(rig.sim.disk(n(1)).file("f"), Some(NEW), "a completed write is visible");
    assert_eq!(rig.sim.disk(n(1)).durable_file("f"), Some(OLD), "but not durable");
    rig.crash_restart();
    fate(OLD, NEW, &rig.contents("f").unwrap())
}

#[test]
fn an_unsynced_write_is_kept_lost_or_torn_by_the_crash() {
    let fates: Vec<Fate> = (0..60).map(|seed| overwrite_then_crash(seed, DiskConfig::default())).collect();
    assert!(fates.contains(&Fate::Kept), "{fates:?}");
    assert!(fates.contains(&Fate::Lost), "{fates:?}");
    assert!(fates.iter().any(|f| matches!(f, Fate::Torn(_))), "{fates:?}");
}

#[test]
fn with_tearing_certain_a_write_not_kept_is_always_torn() {
    let disk = DiskConfig { torn_write_probability: 1.0, ..DiskConfig::default() };
    let fates: Vec<Fate> = (0..40).map(|seed| overwrite_then_crash(seed, disk.clone())).collect();
    assert!(!fates.contains(&Fate::Lost), "{fates:?}");
    let torn: Vec<usize> = fates.iter().filter_map(|f| if let Fate::Torn(k) = f { Some(*k) } else { None }).collect();
    assert!(torn.len() >= 10 && torn.iter().any(|k| *k != torn[0]), "tears keep random prefixes: {torn:?}");
}

#[test]
fn a_synced_write_always_survives() {
    for seed in 0..30 {
        let mut rig = Rig::new(seed, DiskConfig::default());
        rig.durable("f", OLD);
        rig.ok(write("f", 0, NEW));
        rig.ok(sync("f"));
        rig.crash_restart();
        assert_eq!(rig.contents("f").unwrap(), NEW, "seed {seed}");
    }
}

#[test]
fn unsynced_writes_survive_as_an_in_order_prefix() {
    let mut lengths = Vec::new();
    for seed in 0..40 {
        let mut rig = Rig::new(seed, DiskConfig::default());
        rig.durable("f", b"");
        for (i, byte) in b"abcd".iter().enumerate() {
            rig.ok(write("f", i as u64, &[*byte]));
        }
        rig.crash_restart();
        let found = rig.contents("f").unwrap();
        assert!(b"abcd".starts_with(&found), "seed {seed}: {found:?}");
        lengths.push(found.len());
    }
    lengths.sort_unstable();
    lengths.dedup();
    assert!(lengths.len() >= 4, "prefix lengths seen: {lengths:?}");
}

#[test]
fn a_sync_covers_only_writes_completed_before_it_was_issued() {
    let disk = DiskConfig {
        write_latency: Dist::constant(ms(1)),
        sync_latency: Dist::constant(ms(5)),
        torn_write_probability: 0.0,
        ..DiskConfig::default()
    };
    let mut fates = Vec::new();
    for seed in 0..30 {
        let mut rig = Rig::new(seed, disk.clone());
        rig.durable("f", OLD);
        // The sync completes after the write, but was issued before it did.
        let results = rig.concurrent(vec![write("f", 0, NEW), sync("f")]);
        assert_eq!(results, vec![Ok(IoDone::Written), Ok(IoDone::Synced)]);
        rig.crash_restart();
        fates.push(fate(OLD, NEW, &rig.contents("f").unwrap()));
    }
    assert!(fates.contains(&Fate::Lost), "{fates:?}");
}

#[test]
fn a_completed_write_and_sync_always_survives() {
    for seed in 0..30 {
        let mut rig = Rig::new(seed, DiskConfig::default());
        rig.durable("f", OLD);
        assert_eq!(rig.io(write_sync("f", 0, NEW)), Ok(IoDone::Synced), "seed {seed}");
        assert_eq!(rig.sim.disk(n(1)).durable_file("f"), Some(NEW), "seed {seed}");
        rig.crash_restart();
        assert_eq!(rig.contents("f").unwrap(), NEW, "seed {seed}");
    }
}

#[test]
fn a_crash_between_the_write_and_its_sync_keeps_loses_or_tears_the_write() {
    // The write completes at 1 ms and its sync at 6 ms; the crash comes at 3.
    let disk = DiskConfig {
        write_latency: Dist::constant(ms(1)),
        sync_latency: Dist::constant(ms(5)),
        ..DiskConfig::default()
    };
    let mut fates = Vec::new();
    for seed in 0..60 {
        let mut rig = Rig::new(seed, disk.clone());
        rig.durable("f", OLD);
        let mark = rig.log.borrow().len();
        rig.sim.inject(n(1), n(9), Msg::Io(write_sync("f", 0, NEW)));
        rig.sim.run_for(ms(3));
        assert_eq!(rig.sim.disk(n(1)).file("f"), Some(NEW), "seed {seed}: written");
        assert_eq!(rig.sim.disk(n(1)).durable_file("f"), Some(OLD), "seed {seed}: not yet synced");
        rig.crash_restart();
        let completions = rig.log.borrow()[mark..].iter().filter(|(_, _, out)| matches!(out, Out::Io(_))).count();
        assert_eq!(completions, 0, "seed {seed}: the request the crash cut never completes");
        fates.push(fate(OLD, NEW, &rig.contents("f").unwrap()));
    }
    assert!(fates.contains(&Fate::Kept), "{fates:?}");
    assert!(fates.contains(&Fate::Lost), "{fates:?}");
    assert!(fates.iter().any(|f| matches!(f, Fate::Torn(_))), "{fates:?}");
}

#[test]
fn a_new_file_needs_a_syncdir_to_survive() {
    for seed in 0..10 {
        let mut rig = Rig::new(seed, DiskConfig::default());
        rig.ok(write("f", 0, b"data"));
        rig.ok(sync("f"));
        rig.crash_restart();
        assert_eq!(rig.contents("f"), Err(IoError::NotFound), "seed {seed}");
        assert_eq!(rig.io(IoRequest::List), Ok(IoDone::Listed(vec![])));
        rig.durable("f", b"data");
        rig.crash_restart();
        assert_eq!(rig.contents("f").unwrap(), b"data");
    }
}

#[test]
fn rename_and_remove_need_a_syncdir_to_survive() {
    for seed in 0..10 {
        let mut rig = Rig::new(seed, DiskConfig::default());
        rig.durable("state", OLD);
        rig.durable("tmp", NEW);
        rig.ok(IoRequest::Rename { from: name("tmp"), to: name("state") });
        assert_eq!(rig.contents("state").unwrap(), NEW);
        rig.crash_restart();
        assert_eq!(rig.contents("state").unwrap(), OLD, "the rename is rolled back");
        assert_eq!(rig.contents("tmp").unwrap(), NEW);

        rig.ok(IoRequest::Rename { from: name("tmp"), to: name("state") });
        rig.ok(IoRequest::SyncDir);
        rig.crash_restart();
        assert_eq!(rig.contents("state").unwrap(), NEW);
        assert_eq!(rig.contents("tmp"), Err(IoError::NotFound));

        rig.ok(IoRequest::Remove { file: name("state") });
        assert_eq!(rig.contents("state"), Err(IoError::NotFound));
        rig.crash_restart();
        assert_eq!(rig.contents("state").unwrap(), NEW, "the remove is rolled back");
    }
}

#[test]
fn a_full_disk_fails_writes_with_enospc() {
    let mut rig = Rig::new(1, DiskConfig::default());
    rig.durable("f", OLD);
    rig.sim.disk_full(n(1), true);
    assert!(rig.sim.disk(n(1)).is_full());
    assert_eq!(rig.io(write("f", 0, NEW)), Err(IoError::NoSpace));
    assert_eq!(rig.io(write("g", 0, NEW)), Err(IoError::NoSpace));
    assert_eq!(rig.io(write_sync("f", 0, NEW)), Err(IoError::NoSpace), "a failed write syncs nothing");
    assert_eq!(rig.contents("f").unwrap(), OLD, "reads still work");
    rig.sim.disk_full(n(1), false);
    assert_eq!(rig.io(write("f", 0, NEW)), Ok(IoDone::Written));
}

#[test]
fn corrupt_reads_flip_exactly_one_bit() {
    let mut rig = Rig::new(2, DiskConfig::default());
    let data: Vec<u8> = (0..64).collect();
    rig.durable("f", &data);
    rig.sim.corrupt_reads(n(1), 1.0);
    let mut flipped = Vec::new();
    for _ in 0..20 {
        let got = rig.contents("f").unwrap();
        let bits: Vec<usize> =
            (0..data.len() * 8).filter(|b| (got[b / 8] ^ data[b / 8]) & (1 << (b % 8)) != 0).collect();
        assert_eq!(bits.len(), 1, "{got:?}");
        flipped.push(bits[0]);
    }
    flipped.sort_unstable();
    flipped.dedup();
    assert!(flipped.len() > 5, "random bits: {flipped:?}");
    assert_eq!(rig.sim.disk(n(1)).file("f"), Some(&data[..]), "the disk itself is intact");
    rig.sim.corrupt_reads(n(1), 0.0);
    assert_eq!(rig.contents("f").unwrap(), data);
}

#[test]
fn errors_and_limits() {
    let disk = DiskConfig { file_bytes_max: 1 << 20, ..DiskConfig::default() };
    let mut rig = Rig::new(3, disk);
    let too_long = IoRequest::Read { file: name("f"), offset: 0, len_max: READ_BYTES_MAX + 1 };
    assert!(matches!(rig.io(too_long), Err(IoError::TooLarge { .. })));
    assert_eq!(rig.io(write("f", 1 << 20, b"x")), Err(IoError::NoSpace), "past file_bytes_max");
    assert_eq!(rig.io(write("f", u64::MAX, b"x")), Err(IoError::NoSpace), "offset overflow");
    assert_eq!(rig.io(IoRequest::Truncate { file: name("f"), len: u64::MAX }), Err(IoError::NotFound));
    assert_eq!(rig.io(read("f")), Err(IoError::NotFound));
    assert_eq!(rig.io(sync("f")), Err(IoError::NotFound));
    assert_eq!(rig.io(IoRequest::Rename { from: name("f"), to: name("g") }), Err(IoError::NotFound));
    assert_eq!(rig.io(IoRequest::Remove { file: name("f") }), Ok(IoDone::Removed));
    rig.ok(write("b", 4, b"xy"));
    rig.ok(write("a", 0, b"1"));
    assert_eq!(rig.contents("b").unwrap(), b"\0\0\0\0xy", "a write past the end extends with zeros");
    rig.ok(IoRequest::Truncate { file: name("b"), len: 5 });
    assert_eq!(rig.io(IoRequest::Truncate { file: name("b"), len: 2 << 20 }), Err(IoError::NoSpace));
    let listed = vec![FileInfo { name: name("a"), len: 1 }, FileInfo { name: name("b"), len: 5 }];
    assert_eq!(rig.io(IoRequest::List), Ok(IoDone::Listed(listed)));
    let partial = IoRequest::Read { file: name("b"), offset: 3, len_max: 10 };
    assert_eq!(rig.io(partial), Ok(IoDone::Read(b"\0x".to_vec())));
}

#[test]
fn the_disk_as_a_whole_fills_up() {
    let disk = DiskConfig { disk_bytes_max: 100, ..DiskConfig::default() };
    let mut rig = Rig::new(4, disk);
    rig.ok(write("a", 0, &[1; 60]));
    assert_eq!(rig.io(write("b", 0, &[2; 50])), Err(IoError::NoSpace));
    rig.ok(write("a", 0, &[3; 60]));
    rig.ok(write("b", 0, &[2; 40]));
    rig.ok(IoRequest::Truncate { file: name("a"), len: 10 });
    rig.ok(write("b", 40, &[2; 50]));
    assert_eq!(rig.io(write("c", 0, &[4; 1])), Err(IoError::NoSpace));
    rig.ok(IoRequest::Remove { file: name("b") });
    rig.ok(write("c", 0, &[4; 90]));
    rig.ok(IoRequest::Rename { from: name("c"), to: name("a") });
    rig.ok(write("d", 0, &[5; 10]));
    assert_eq!(rig.io(write("d", 10, &[5; 1])), Err(IoError::NoSpace));
    // Nothing was ever made durable: after a crash the disk is empty again.
    rig.crash_restart();
    rig.ok(write("e", 0, &[6; 100]));
}

#[test]
fn beyond_the_volatile_bound_the_oldest_changes_become_durable() {
    let disk = DiskConfig { volatile_changes_max: 2, ..DiskConfig::default() };
    let mut lengths = Vec::new();
    for seed in 0..20 {
        let mut rig = Rig::new(seed, disk.clone());
        rig.durable("f", b"");
        for (i, byte) in b"abcd".iter().enumerate() {
            rig.ok(write("f", i as u64, &[*byte]));
        }
        assert_eq!(rig.sim.disk(n(1)).durable_file("f"), Some(&b"ab"[..]), "written back as a kernel would");
        rig.crash_restart();
        let found = rig.contents("f").unwrap();
        assert!(b"abcd".starts_with(&found) && found.len() >= 2, "seed {seed}: {found:?}");
        lengths.push(found.len());
    }
    assert!(lengths.contains(&2) && lengths.contains(&4), "{lengths:?}");
}
