//! The WAL under the simulator's disk faults: a full disk, bytes corrupted
//! on the disk, and reads that flip bits.

use crate::common;

use common::{Cmd, Harness, Out, entries, small_config};
use haven_runtime::{IoDone, NodeId};
use haven_sim::{Sim, SimConfig};
use haven_wal::{DiskOp, Entry, Recovered, WalConfig, WalError, WalEvent};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

const NODE: NodeId = NodeId(1);

struct Rig {
    sim: Sim<Harness>,
    log: Rc<RefCell<Vec<Out>>>,
}

impl Rig {
    fn new(seed: u64, config: WalConfig) -> Rig {
        let mut sim = Sim::new(SimConfig::new(seed, 1), move |_| Harness::new(config.clone())).unwrap();
        let log: Rc<RefCell<Vec<Out>>> = Rc::default();
        let sink = log.clone();
        let mut events_seen = None;
        sim.add_safety("record", move |sim| {
            // After a direct restart the checkers see the last event's outputs again.
            if events_seen.replace(sim.counters().events) != Some(sim.counters().events) {
                sink.borrow_mut().extend(sim.last_outputs().iter().map(|(_, out)| out.clone()));
            }
            Ok(())
        });
        sim.start(NODE);
        let mut rig = Rig { sim, log };
        rig.run(1_000);
        rig
    }

    fn run(&mut self, ms: u64) {
        self.sim.run_for(Duration::from_millis(ms));
    }

    fn cmd(&mut self, cmd: Cmd) {
        self.sim.inject(NODE, NodeId(9), cmd);
        self.run(0);
    }

    fn events(&self) -> Vec<WalEvent> {
        self.log.borrow().iter().filter_map(|o| if let Out::Wal(e) = o { Some(e.clone()) } else { None }).collect()
    }

    fn durable_index(&self) -> Option<u64> {
        self.events().iter().rev().find_map(|e| match e {
            WalEvent::Durable { index_last, .. } => Some(*index_last),
            _ => None,
        })
    }

    fn crash_restart(&mut self) {
        self.sim.crash(NODE);
        self.log.borrow_mut().clear();
        self.sim.restart(NODE);
        self.run(2_000);
    }

    /// The outcome of the last open: recovered state or error.
    fn opened(&self) -> Result<Recovered, WalError> {
        let outcome = self.events().into_iter().find_map(|e| match e {
            WalEvent::Opened(recovered) => Some(Ok(*recovered)),
            WalEvent::Failed { error } => Some(Err(error)),
            _ => None,
        });
        outcome.expect("the open finished")
    }

    /// Appends entries 1..=count one request at a time, all acknowledged.
    fn fill(&mut self, count: u64) {
        for i in 1..=count {
            self.cmd(Cmd::Append(entries(i, i, 1)));
            self.run(30);
        }
        self.run(1_000);
        assert_eq!(self.durable_index(), Some(count));
    }
}

#[test]
fn a_full_disk_delays_acknowledgement_until_space_returns() {
    let mut rig = Rig::new(1, small_config());
    rig.fill(5);
    rig.sim.disk_full(NODE, true);
    rig.cmd(Cmd::Append(entries(6, 8, 1)));
    rig.run(20);
    let events = rig.events();
    assert!(events.iter().any(|e| matches!(e, WalEvent::DiskError { op: DiskOp::Write, .. })), "{events:?}");
    assert_eq!(rig.durable_index(), Some(5), "nothing acknowledged while the disk is full");
    rig.sim.disk_full(NODE, false);
    rig.run(1_000);
    assert_eq!(rig.durable_index(), Some(8), "the retried write went through");
    rig.crash_restart();
    assert_eq!(rig.opened().unwrap().entries, entries(1, 8, 1));
}

#[test]
fn a_disk_that_stays_full_fails_the_wal_and_loses_only_unacknowledged_entries() {
    let mut rig = Rig::new(2, small_config());
    rig.fill(5);
    rig.sim.disk_full(NODE, true);
    rig.cmd(Cmd::Append(entries(6, 8, 1)));
    rig.run(2_000);
    let events = rig.events();
    let failed =
        events.iter().find_map(|e| if let WalEvent::Failed { error } = e { Some(error.clone()) } else { None });
    assert!(matches!(failed, Some(WalError::Disk { op: DiskOp::Write, .. })), "{events:?}");
    assert_eq!(rig.durable_index(), Some(5));
    rig.cmd(Cmd::Append(entries(9, 9, 1)));
    assert!(matches!(rig.log.borrow().last(), Some(Out::Rejected { error: WalError::Failed, .. })));
    rig.sim.disk_full(NODE, false);
    rig.crash_restart();
    assert_eq!(rig.opened().unwrap().entries, entries(1, 5, 1));
}

/// Offsets at which records start in a segment image.
fn record_offsets(image: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at + 5 <= image.len() {
        offsets.push(at);
        at += haven_runtime::record::HEADER_BYTES
            + u32::from_le_bytes(image[at + 1..at + 5].try_into().unwrap()) as usize;
    }
    offsets
}

#[test]
fn a_byte_corrupted_on_disk_in_a_middle_record_stops_the_open_at_that_file_and_offset() {
    for seed in 0..10 {
        let mut rig = Rig::new(seed, small_config());
        rig.fill(100);
        let segments = rig.sim.component(NODE).unwrap().wal.segments().to_vec();
        let victim = segments[seed as usize % segments.len()].file();
        let image = rig.sim.disk(NODE).file(victim.as_str()).unwrap().to_vec();
        let offsets = record_offsets(&image);
        let record = 1 + seed as usize % (offsets.len() - 2); // never the last record
        let at = offsets[record] + 10 + seed as usize % 4;
        rig.cmd(Cmd::Poke { file: victim.to_string(), offset: at as u64, data: vec![image[at] ^ 0x20] });
        rig.run(100);
        assert!(matches!(rig.log.borrow().last(), Some(Out::Poked(Ok(IoDone::Synced)))));
        rig.crash_restart();
        match rig.opened() {
            Err(WalError::Corrupt { file, offset, reason }) => {
                assert_eq!((file, offset), (victim.clone(), offsets[record] as u64), "seed {seed}: {reason}");
            }
            other => panic!("seed {seed}: corruption of {victim} at {at} gave {other:?}"),
        }
    }
}

#[test]
fn reads_that_flip_bits_never_cost_acknowledged_entries() {
    let config = WalConfig { read_bytes_max: 1 << 20, ..small_config() };
    let (mut opened, mut refused) = (0, 0);
    for seed in 0..60 {
        let mut rig = Rig::new(seed, config.clone());
        rig.fill(60);
        rig.sim.corrupt_reads(NODE, 0.15);
        rig.crash_restart();
        match rig.opened() {
            Ok(recovered) => {
                let expected: Vec<Entry> = entries(1, 60, 1);
                assert_eq!((recovered.entries, recovered.torn_tail), (expected, None), "seed {seed}");
                opened += 1;
            }
            Err(WalError::Corrupt { .. }) => refused += 1,
            Err(other) => panic!("seed {seed}: {other}"),
        }
    }
    assert!(opened > 0 && refused > 0, "opened {opened}, refused {refused}");
}
