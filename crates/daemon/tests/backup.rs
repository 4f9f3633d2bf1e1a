//! Backups and restores on real stations: a backup taken from the leader
//! (a follower points to it) holds every write acknowledged before it, and
//! a new cluster seeded from it on other addresses serves those writes, and
//! none made after, under a cluster id of its own.

mod common;

use common::{Cluster, eventually};
use haven_daemon::restore::{RestoreDirError, restore_data_dir};
use haven_daemon::{SNAPSHOT_INDEX_HEADER, SNAPSHOT_PATH};
use haven_station::restore::Bumps;
use serde_json::{Value, json};

const KEYS: usize = 40;
const BUMPS: Bumps = Bumps { revision: 1_000_000, counters: 1_000_000_000 };

async fn fetch(cluster: &Cluster, id: u64) -> reqwest::Response {
    let url = format!("{}{SNAPSHOT_PATH}", cluster.client_url(id));
    cluster.http.get(url).send().await.expect("the station answers")
}

async fn cluster_id(cluster: &Cluster, id: u64) -> String {
    let (status, body) = cluster.post(id, "/v3/maintenance/status", json!({})).await;
    assert_eq!(status, 200, "{body}");
    body["header"]["cluster_id"].as_str().expect("a cluster id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_from_the_leader_restores_into_a_new_cluster_with_every_write_acknowledged_before_it() {
    let mut old = Cluster::start("backup-old", 3, 3_000);
    let leader = old.wait_for_leader(&[1, 2, 3]).await;
    for i in 0..KEYS {
        assert_eq!(old.put(1 + (i as u64 % 3), &format!("k{i:02}"), &format!("v{i}")).await.0, 200);
    }

    let follower = old.follower_of(leader);
    let refused = fetch(&old, follower).await;
    assert_eq!(refused.status(), 421, "a follower points to the leader");
    let pointer: Value = refused.json().await.unwrap();
    assert_eq!(pointer["leader"].as_str(), Some(old.client_url(leader).as_str()), "{pointer}");

    let answer = fetch(&old, leader).await;
    assert_eq!(answer.status(), 200);
    let index: u64 = answer.headers()[SNAPSHOT_INDEX_HEADER].to_str().unwrap().parse().unwrap();
    let backup = answer.bytes().await.unwrap().to_vec();
    assert!(index > KEYS as u64, "the backup covers the puts (index {index})");
    assert_eq!(old.put(leader, "after", "lost").await.0, 200);
    let old_id = cluster_id(&old, leader).await;
    for id in 1..=3 {
        old.crash(id);
    }

    let mut new = Cluster::prepare("backup-new", 3, 3_000);
    for id in 1..=3 {
        let summary = restore_data_dir(&backup, &new.member(id).config, BUMPS).expect("restored");
        assert_eq!((summary.index, summary.keys), (index, KEYS as u64));
        assert_eq!(summary.token_last, BUMPS.counters, "no token handed out yet, and the counter moved past the bump");
        assert!(summary.revision > BUMPS.revision, "the revision moved up");
        let again = restore_data_dir(&backup, &new.member(id).config, BUMPS);
        assert!(matches!(again, Err(RestoreDirError::NotEmpty { .. })), "a seeded directory is never overwritten");
        new.launch(id);
    }
    let leader = new.wait_for_leader(&[1, 2, 3]).await;
    for i in 0..KEYS {
        assert_eq!(new.get(leader, &format!("k{i:02}"), false).await.unwrap(), Some(format!("v{i}")));
    }
    assert_eq!(new.get(leader, "after", false).await.unwrap(), None, "a write after the backup is not in it");
    assert_eq!(new.put(new.follower_of(leader), "fresh", "yes").await.0, 200, "the new cluster takes writes");
    let members = new.member_list(leader).await;
    assert_eq!(members.iter().map(|(id, _)| *id).collect::<Vec<_>>().len(), 3, "{members:?}");
    assert_ne!(cluster_id(&new, leader).await, old_id, "a restored cluster is another cluster");
    let old_revision = json!({ "key": "azAw", "revision": "5" }); // k00 at a revision of the lost cluster
    let (status, body) = new.post(leader, "/v3/kv/range", old_revision).await;
    assert!(status != 200 && body.to_string().contains("compacted"), "an old revision reads as compacted: {body}");
    eventually("every member serves the restored keys", || async {
        for id in 1..=3 {
            if new.get(id, "k00", true).await != Ok(Some("v0".to_owned())) {
                return false;
            }
        }
        true
    })
    .await;
}
