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
    say.say(&format!("all nodes trust n{leader} (agreed {} after start)", ms(took)));

    cluster.kill(leader)?;
    say.say(&format!("SIGKILL n{leader}, the leader"));
    let survivors = others(&all, leader);
    let (new_leader, kill_takeover) = cluster.wait_for_leader(&survivors, timeout)?;
    say.say(&format!("{} trust n{new_leader}: takeover in {}", list(&survivors), ms(kill_takeover)));

    cluster.restart(leader)?;
    say.say(&format!("restarting n{leader} from its data directory"));
    let ((), rejoin) = cluster.wait_for("the restarted node to rejoin", timeout, |views| {
        let back = views.get(&leader).is_some_and(|v| v.epoch.is_some());
        (back && crate::local_cluster::agreed_leader(views, &all) == Some(new_leader)).then_some(())
    })?;
    let epoch = cluster.views()[&leader].epoch.unwrap_or(0);
    say.say(&format!(
        "n{leader} is back as epoch {epoch} and trusts n{new_leader} ({}): a recovered node does not take \
         leadership back, the lowest epoch wins",
        ms(rejoin)
    ));

    cluster.pause(new_leader)?;
    say.say(&format!("SIGSTOP n{new_leader}, the leader (frozen, not dead)"));
    let awake = others(&all, new_leader);
    let (interim, stop_takeover) = cluster.wait_for_leader(&awake, timeout)?;
    say.say(&format!("{} trust n{interim}: takeover in {}", list(&awake), ms(stop_takeover)));
    cluster.resume(new_leader)?;
    say.say(&format!("SIGCONT n{new_leader}"));
    let (settled, resume) = cluster.wait_for_leader(&all, timeout)?;
    let why = if settled == new_leader { ": it answers at once and has the lowest (epoch, id)" } else { "" };
    say.say(&format!("all nodes trust n{settled} ({}){why}", ms(resume)));

    println!(
        "\nSummary: takeover after SIGKILL {}, after SIGSTOP {}; restarted node rejoined in {}.",
        ms(kill_takeover),
        ms(stop_takeover),
        ms(rejoin)
    );
    println!("Bound checked at every step: {}. Logs: {}", ms(timeout), dir.display());
    Ok(())
}

/// Milliseconds with one decimal: loopback takeovers after SIGCONT can be
/// well under a millisecond.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn list(ids: &[u64]) -> String {
    let names: Vec<String> = ids.iter().map(|id| format!("n{id}")).collect();
    names.join(" and ")
}
