//! A replica keeps the snapshot it read back at start as the one to send a
//! lagging follower (Raft §7). Before, a restarted leader had none at hand
//! and wrote a fresh snapshot of its whole store in a single turn, which at
//! 100,000 keys stalled it for 100-250 ms, longer than an election timeout.
//!
//! Here n3 misses everything after the start, the leader and n2 compact
//! their logs past it, both restart, and n3 comes back: it must be sent the
//! very snapshot the new leader read back, not one written for it.

use crate::common;

use common::{cluster_with, command, leader, ms, replica};
use haven_runtime::NodeId;
use haven_store::{PutRequest, Request};

const SNAPSHOT_ENTRIES: u64 = 10;

fn put(i: u64) -> Request {
    Request::Put(PutRequest { key: i.to_be_bytes().to_vec(), value: b"v".to_vec(), ..PutRequest::default() })
}

#[test]
fn a_restarted_leader_sends_the_snapshot_it_read_back() {
    let mut sim = cluster_with(3, |config| {
        config.snapshot_entries = SNAPSHOT_ENTRIES;
        config.snapshot_keys_per_turn = 1;
    });
    let first = leader(&sim);
    let lagging = (1..=3).map(NodeId).find(|&n| n != first).expect("a follower");
    let other = (1..=3).map(NodeId).find(|&n| n != first && n != lagging).expect("another follower");
    sim.crash(lagging);
    for i in 1..=4 * SNAPSHOT_ENTRIES {
        assert!(command(&mut sim, first, i, put(i)).is_ok());
    }
    sim.run_for(ms(1_000)); // snapshots finish and are saved
    let saved: Vec<_> = [first, other].map(|n| replica(&sim, n).and_then(|r| r.snapshot_latest())).to_vec();
    assert!(saved.iter().all(|s| s.is_some_and(|p| p.index > SNAPSHOT_ENTRIES)), "both compacted: {saved:?}");

    for node in [first, other] {
        sim.crash(node);
        sim.restart(node);
    }
    sim.run_for(ms(3_000));
    let read_back: Vec<_> = [first, other].map(|n| replica(&sim, n).and_then(|r| r.snapshot_latest())).to_vec();
    assert_eq!(read_back, saved, "each kept the snapshot read back");

    let new_leader = leader(&sim);
    let sent = if new_leader == first { saved[0] } else { saved[1] }.expect("checked above");
    sim.restart(lagging);
    sim.run_for(ms(3_000));
    let installed = replica(&sim, lagging).and_then(|r| r.raft()).map(|raft| raft.first_index() - 1);
    assert_eq!(installed, Some(sent.index), "n{} was sent the snapshot read back", lagging.0);
    let stores: Vec<_> =
        (1..=3).map(|n| replica(&sim, NodeId(n)).and_then(|r| r.state_machine()).map(|m| m.store().clone())).collect();
    assert!(stores.iter().all(|s| s == &stores[0]), "every replica holds the same store");
}
