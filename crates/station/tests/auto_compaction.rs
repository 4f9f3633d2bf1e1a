//! The leader's auto-compaction (`ReplicaConfig::history_revisions_max`) on
//! a simulated 3-replica cluster: once the history grows an eighth past the bound,
//! every replica's store is compacted, through the log, to the bound; a
//! read at a compacted revision is refused like etcd's, a recent one served.

use crate::common;

use common::{cluster, cluster_with, command, leader, ms, replica};
use haven_runtime::NodeId;
use haven_station::ReplyError;
use haven_store::{PutRequest, RangeRequest, Request, Response, StoreError};

const KEPT: u64 = 20;

fn put(i: u64) -> Request {
    Request::Put(PutRequest { key: b"k".to_vec(), value: i.to_le_bytes().to_vec(), ..PutRequest::default() })
}

fn range_at(revision: u64) -> Request {
    Request::Range(RangeRequest { key: b"k".to_vec(), revision, ..RangeRequest::default() })
}

fn compact_revisions(sim: &haven_sim::Sim<common::TestNode>) -> Vec<Option<u64>> {
    let stores = (1..=3).map(|n| replica(sim, NodeId(n)).and_then(|r| r.state_machine()).map(|m| m.store()));
    stores.map(|store| store.and_then(|s| s.compact_revision())).collect()
}

#[test]
fn the_leader_compacts_the_history_to_the_bound_on_every_replica() {
    let mut sim = cluster_with(1, |config| config.history_revisions_max = Some(KEPT));
    let leader = leader(&sim);
    // The store starts at revision 1, so put n makes revision n + 1.
    let trigger = KEPT + KEPT / 8 - 1;
    for i in 1..trigger {
        assert!(command(&mut sim, leader, i, put(i)).is_ok());
    }
    sim.run_for(ms(500));
    assert_eq!(compact_revisions(&sim), vec![None; 3], "below the bound and an eighth nothing is compacted");

    assert!(command(&mut sim, leader, trigger, put(trigger)).is_ok());
    sim.run_for(ms(500)); // the compaction commits and reaches the followers
    let revision = trigger + 1;
    assert_eq!(compact_revisions(&sim), vec![Some(revision - KEPT); 3]);
    let old = command(&mut sim, leader, trigger + 1, range_at(1));
    assert!(matches!(old, Err(ReplyError::Store(StoreError::Compacted { .. }))), "{old:?}");
    let recent = command(&mut sim, leader, trigger + 2, range_at(revision - KEPT));
    assert!(matches!(recent, Ok(Response::Range(ref r)) if r.kvs.len() == 1), "{recent:?}");
}

#[test]
fn without_the_bound_nothing_is_compacted() {
    let mut sim = cluster(1);
    let leader = leader(&sim);
    for i in 1..=3 * KEPT {
        assert!(command(&mut sim, leader, i, put(i)).is_ok());
    }
    sim.run_for(ms(500));
    assert_eq!(compact_revisions(&sim), vec![None; 3]);
}
