//! `haven demo`: a local cluster of real processes that shows a failover.
//!
//! In: the path of this binary and a scratch directory.
//! Out: a narrated run on stdout: three `haven node` processes on loopback
//! agree on a leader; the leader is SIGKILLed and the survivors agree on a
//! new one (timed); the killed node restarts from its data directory and
//! rejoins without taking leadership back; the new leader is SIGSTOPped
//! (a frozen process, not a dead one) and SIGCONTed. Ends with a summary of
//! the takeover times, and fails (non-zero exit) if any step misses its bound.

use crate::local_cluster::LocalCluster;
use anyhow::{Context as _, Result};
use haven_basics::DetectorConfig;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long any step may take before the demo declares failure: the
/// detector's worst-case detection time plus generous room for a loaded
/// machine.
pub fn step_timeout() -> Duration {
    Duration::from_millis(DetectorConfig::default().detection_ms_max()) + Duration::from_secs(4)
}

struct Narrator {
    start: Instant,
}

impl Narrator {
    fn say(&self, text: &str) {
        println!("[{:>7.3}s] {text}", self.start.elapsed().as_secs_f64());
    }
}

fn others(ids: &[u64], gone: u64) -> Vec<u64> {
    ids.iter().copied().filter(|&id| id != gone).collect()
}

pub fn run(binary: &Path, dir: &Path) -> Result<()> {
    let detector = DetectorConfig::default();
    println!("Haven demo: 3 nodes run failure detection and leader election over TCP on loopback.");
    println!(
        "Detector: ping every {:?}, suspect after {:?} of silence (grows to at most {:?} after false suspicions).",
        detector.period, detector.timeout_initial, detector.timeout_max
    );
    println!("Data and logs: {}\n", dir.display());
    let say = Narrator { start: Instant::now() };
    let mut cluster = LocalCluster::start(binary, 3, dir).context("starting the cluster")?;
    for id in cluster.ids() {
        say.say(&format!("started n{id} (pid {}) on {}", cluster.pid(id).unwrap_or(0), cluster.addr(id)));
    }
    let all = cluster.ids();
    let timeout = step_timeout();
    let (leader, took) = cluster.wait_for_leader(&all, timeout)?;
    say.say(&format!("all nodes trust n{leader} (agreed {} ms after start)", took.as_millis()));

    cluster.kill(leader)?;
    say.say(&format!("SIGKILL n{leader}, the leader"));
    let survivors = others(&all, leader);
    let (new_leader, kill_takeover) = cluster.wait_for_leader(&survivors, timeout)?;
    say.say(&format!("{} trust n{new_leader}: takeover in {} ms", list(&survivors), kill_takeover.as_millis()));

    cluster.restart(leader)?;
    say.say(&format!("restarting n{leader} from its data directory"));
    let ((), rejoin) = cluster.wait_for("the restarted node to rejoin", timeout, |views| {
        let back = views.get(&leader).is_some_and(|v| v.epoch.is_some());
        (back && crate::local_cluster::agreed_leader(views, &all) == Some(new_leader)).then_some(())
    })?;
    let epoch = cluster.views()[&leader].epoch.unwrap_or(0);
    say.say(&format!(
        "n{leader} is back as epoch {epoch} and trusts n{new_leader} ({} ms): a recovered node does not take \
         leadership back, the lowest epoch wins",
        rejoin.as_millis()
    ));

    cluster.pause(new_leader)?;
    say.say(&format!("SIGSTOP n{new_leader}, the leader (frozen, not dead)"));
    let awake = others(&all, new_leader);
    let (interim, stop_takeover) = cluster.wait_for_leader(&awake, timeout)?;
    say.say(&format!("{} trust n{interim}: takeover in {} ms", list(&awake), stop_takeover.as_millis()));
    cluster.resume(new_leader)?;
    say.say(&format!("SIGCONT n{new_leader}"));
    let (settled, resume) = cluster.wait_for_leader(&all, timeout)?;
    say.say(&format!("all nodes trust n{settled} again ({} ms)", resume.as_millis()));

    println!(
        "\nSummary: takeover after SIGKILL {} ms, after SIGSTOP {} ms; restarted node rejoined in {} ms.",
        kill_takeover.as_millis(),
        stop_takeover.as_millis(),
        rejoin.as_millis()
    );
    println!("Bound checked at every step: {} ms. Logs: {}", timeout.as_millis(), dir.display());
    Ok(())
}

fn list(ids: &[u64]) -> String {
    let names: Vec<String> = ids.iter().map(|id| format!("n{id}")).collect();
    names.join(" and ")
}
