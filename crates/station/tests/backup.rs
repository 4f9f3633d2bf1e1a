//! Backups on a simulated 3-replica cluster (the probe, n4, plays the
//! daemon's local client): only the leader takes one, it covers every
//! write acknowledged before it was asked, and a restore of it seats a new
//! membership and moves the HA counters.

use crate::common;

use common::{ask, cluster, command, leader};
use haven_runtime::NodeId;
use haven_station::restore::{Bumps, RestoreError, inspect, restore};
use haven_station::{MemberRecord, ReplyError, StationMsg, snapshot_file};
use haven_store::{PutRequest, RangeRequest, Request, StoreConfig};

fn put(key: &str) -> Request {
    Request::Put(PutRequest { key: key.as_bytes().to_vec(), value: b"v".to_vec(), ..PutRequest::default() })
}

fn backup(
    sim: &mut haven_sim::Sim<common::TestNode>,
    at: NodeId,
    seq: u64,
) -> Result<haven_station::BackupImage, ReplyError> {
    match ask(sim, at, StationMsg::BackupQuery { client: 9, seq }) {
        StationMsg::Backup { client: 9, seq: answered, result } if answered == seq => result,
        other => panic!("expected a backup answer, got {other:?}"),
    }
}

fn record(id: u64) -> MemberRecord {
    MemberRecord {
        id,
        peer_addr: format!("10.0.0.{id}:2380"),
        client_url: format!("http://10.0.0.{id}:2379"),
        voter: false,
    }
}

#[test]
fn a_follower_points_to_the_leader_and_the_leader_backs_up_every_acknowledged_write() {
    let mut sim = cluster(21);
    let leader = leader(&sim);
    let follower = (1..=3).map(NodeId).find(|&n| n != leader).unwrap();
    assert_eq!(backup(&mut sim, follower, 1), Err(ReplyError::NotLeader { leader_hint: Some(leader) }));

    for seq in 1..=20 {
        command(&mut sim, leader, seq, put(&format!("k{seq}"))).expect("acknowledged");
    }
    let image = backup(&mut sim, leader, 2).expect("a backup");
    let (meta, sm) = snapshot_file::decode(&image.data, StoreConfig::default()).expect("a valid snapshot");
    assert_eq!((meta.last.index, meta.last.term), (image.index, image.term));
    let last = RangeRequest { key: b"k20".to_vec(), ..RangeRequest::default() };
    assert_eq!(sm.store().range(&last).unwrap().kvs.len(), 1, "the last acknowledged put is in the backup");
}

#[test]
fn a_restore_seats_the_new_members_as_voters_and_moves_the_counters() {
    let mut sim = cluster(22);
    let leader = leader(&sim);
    command(&mut sim, leader, 1, put("k")).expect("acknowledged");
    let image = backup(&mut sim, leader, 1).expect("a backup");
    let (_, before, old_members) = inspect(&image.data).unwrap();
    assert!(old_members.is_empty() || old_members.iter().all(|m| m.id <= 3));

    let bumps = |counters| Bumps { revision: 500, counters };
    let (meta, data, summary) = restore(&image.data, &[record(7), record(5)], bumps(1_000)).expect("restored");
    assert_eq!(summary.revision, before.revision + 500, "the revision moved up");
    assert_eq!(meta.membership.voters, vec![NodeId(5), NodeId(7)], "sorted, and every new member votes");
    assert!(meta.membership.learners.is_empty() && meta.membership.voters_outgoing.is_empty());
    assert_eq!((summary.index, summary.keys), (before.index, 1));
    assert_eq!(summary.token_last, before.token_last + 1_000);
    let (_, sm) = snapshot_file::decode(&data, StoreConfig::default()).unwrap();
    let members: Vec<(u64, bool)> = sm.members().members().map(|m| (m.id, m.voter)).collect();
    assert_eq!(members, vec![(5, true), (7, true)]);
    let seeded = haven_station::cluster_id(&[record(5), record(7)]);
    assert_ne!(sm.members().cluster_id(), seeded, "a restored cluster's id is not the list's alone");
    assert_eq!(sm.ha().graph.command_id_last, before_commands(&image.data) + 1_000);

    assert_eq!(restore(&image.data, &[], bumps(1)).unwrap_err(), RestoreError::NoMembers);
    let at_the_top = restore(&image.data, &[record(1)], bumps(u64::MAX - before.token_last)).unwrap().1;
    assert_eq!(restore(&at_the_top, &[record(1)], bumps(1)).unwrap_err(), RestoreError::Overflow { bump: 1 });
    let revision_too_far = Bumps { revision: u64::MAX, counters: 1 };
    assert_eq!(
        restore(&image.data, &[record(1)], revision_too_far).unwrap_err(),
        RestoreError::RevisionOverflow { bump: u64::MAX }
    );
    assert!(matches!(
        restore(&image.data[..image.data.len() - 1], &[record(1)], bumps(1)),
        Err(RestoreError::Backup(_))
    ));
}

fn before_commands(data: &[u8]) -> u64 {
    snapshot_file::decode(data, StoreConfig::default()).unwrap().1.ha().graph.command_id_last
}
