//! Real processes: three `haven node`s on loopback elect a leader; a
//! SIGSTOPped leader and, separately, a SIGKILLed one are replaced by a new
//! agreed leader within the bound; a killed node restarts from its data
//! directory and rejoins. The bound is the detector's worst-case detection
//! time plus slack for a loaded CI machine (`demo::step_timeout`); this test
//! checks correctness within it, the demo and README report the speed.

use haven_server::demo::step_timeout;
use haven_server::local_cluster::{LocalCluster, agreed_leader};
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("haven-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(name: &str) -> (LocalCluster, PathBuf) {
    let dir = scratch(name);
    let cluster = LocalCluster::start(env!("CARGO_BIN_EXE_haven").as_ref(), 3, &dir).expect("cluster starts");
    (cluster, dir)
}

fn without(ids: &[u64], gone: u64) -> Vec<u64> {
    ids.iter().copied().filter(|&id| id != gone).collect()
}

#[test]
fn sigkill_of_the_leader_elects_another_and_the_node_rejoins() {
    let (mut cluster, dir) = start("kill");
    let all = cluster.ids();
    let (leader, _) = cluster.wait_for_leader(&all, step_timeout()).unwrap();
    cluster.kill(leader).unwrap();
    let survivors = without(&all, leader);
    let (new_leader, took) = cluster.wait_for_leader(&survivors, step_timeout()).unwrap();
    assert_ne!(new_leader, leader);
    println!("SIGKILL n{leader}: n{new_leader} took over in {} ms", took.as_millis());

    cluster.restart(leader).unwrap();
    let (epoch, _) = cluster
        .wait_for("the restarted node to rejoin", step_timeout(), |views| {
            let epoch = views.get(&leader)?.epoch?;
            (agreed_leader(views, &all) == Some(new_leader)).then_some(epoch)
        })
        .unwrap();
    assert_eq!(epoch, 2, "a restart is a new incarnation, read back from the data directory");
    assert!(dir.join(format!("n{leader}")).join("epoch").exists());
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigstop_of_the_leader_elects_another_and_sigcont_reconverges() {
    let (mut cluster, dir) = start("stop");
    let all = cluster.ids();
    let (leader, _) = cluster.wait_for_leader(&all, step_timeout()).unwrap();
    cluster.pause(leader).unwrap();
    let awake = without(&all, leader);
    let (new_leader, took) = cluster.wait_for_leader(&awake, step_timeout()).unwrap();
    assert_ne!(new_leader, leader);
    println!("SIGSTOP n{leader}: n{new_leader} took over in {} ms", took.as_millis());

    cluster.resume(leader).unwrap();
    // The resumed node kept its epoch, so by (epoch, id) it leads again.
    let (settled, _) = cluster.wait_for_leader(&all, step_timeout()).unwrap();
    assert_eq!(settled, leader);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
