//! Real-process fault tests: three `haven station` processes on loopback,
//! each behind a TCP fault proxy on its peer port, under a concurrent
//! client workload and a prefix watcher, while stations are SIGKILLed and
//! restarted, the leader is SIGSTOPped and resumed, and links are cut one
//! way, both ways, delayed and dropped; and, separately, one station's data
//! directory on a tiny tmpfs that fills up.
//!
//! Afterwards: every acknowledged write is in the stations' history and the
//! final state, the recorded history is linearizable (a give-up fails), the
//! watcher received every revision of its prefix in order, and the three
//! stations agree on that history. Run alone with
//! `cargo test -p haven-server --test faults -- --nocapture`.

mod common;

use common::checks::{acknowledged_writes_in_history, final_state_matches};
use common::cluster::{Cluster, log_tail};
use common::fault_proxy::LinkFault;
use common::tmpfs::Tmpfs;
use common::watcher::{PrefixWatcher, compare, read_history};
use common::workload::{Workload, WorkloadConfig, kv};
use haven_client::{Client, PutRequest, RangeRequest, prefix_end};
use haven_lincheck as lin;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Time for a cluster to elect a leader or recover from a fault, on a loaded CI machine.
const RECOVER_TIMEOUT: Duration = Duration::from_secs(30);
const PREFIX: &str = "f/";
/// Stations keep this many revisions of history by default; the run stays well below.
const REVISIONS_MAX: u64 = 9_000;
/// Flags every station gets: a client request gives up sooner than the default 5 s.
const STATION_ARGS: &[&str] = &["--request-timeout-ms", "2000"];

/// The two tests each run three stations: one at a time on a 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("haven-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

/// Retries a linearizable read of `prefix` until the cluster answers one.
async fn read_prefix(client: &Client, prefix: &str) -> Result<(u64, Vec<lin::KeyValue>), String> {
    let prefix = prefix.as_bytes();
    let request = RangeRequest { key: prefix.to_vec(), range_end: prefix_end(prefix), ..Default::default() };
    let deadline = Instant::now() + RECOVER_TIMEOUT;
    loop {
        match client.range(&request).await {
            Ok(response) => {
                let revision = u64::try_from(response.header.revision).unwrap_or(0);
                return Ok((revision, response.kvs.iter().map(kv).collect()));
            }
            Err(e) if Instant::now() >= deadline => return Err(format!("no read within {RECOVER_TIMEOUT:?}: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// What was done to the cluster, with the time into the run.
struct FaultLog {
    epoch: Instant,
    applied: u64,
}

impl FaultLog {
    fn note(&mut self, what: &str) {
        self.applied += 1;
        println!("[{:6.2} s] fault {}: {what}", self.epoch.elapsed().as_secs_f64(), self.applied);
    }

    fn say(&self, what: &str) {
        println!("[{:6.2} s] {what}", self.epoch.elapsed().as_secs_f64());
    }
}

/// Waits until the clients have had `more` further operations acknowledged.
async fn progress(workload: &Workload, more: u64, after: &str) -> Result<(), String> {
    let target = workload.acknowledged() + more;
    let deadline = Instant::now() + RECOVER_TIMEOUT;
    while workload.acknowledged() < target {
        if Instant::now() >= deadline {
            return Err(format!("no {more} acknowledged operations within {RECOVER_TIMEOUT:?} after {after}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn other_than(ids: &[u64], id: u64) -> u64 {
    *ids.iter().find(|&&o| o != id).expect("another station")
}

/// The fault schedule, while the workload runs.
async fn inflict(cluster: &mut Cluster, workload: &Workload, log: &mut FaultLog) -> Result<(), String> {
    let all = cluster.ids();
    progress(workload, 20, "the start").await?;
    for id in all.clone() {
        let leader = cluster.leader(&all, RECOVER_TIMEOUT).await?;
        log.note(&format!("SIGKILL n{id}{}", if id == leader { " (the leader)" } else { "" }));
        cluster.kill(id);
        tokio::time::sleep(Duration::from_millis(700)).await;
        cluster.start(id);
        progress(workload, 20, &format!("restarting n{id}")).await?;
        let leader = cluster.leader(&all, RECOVER_TIMEOUT).await?;
        cluster.caught_up(id, leader, RECOVER_TIMEOUT).await?;
        log.say(&format!("n{id} restarted and caught up with the leader n{leader}"));
    }

    let leader = cluster.leader(&all, RECOVER_TIMEOUT).await?;
    log.note(&format!("SIGSTOP the leader n{leader} for 1.5 s"));
    cluster.pause(leader);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.resume(leader);
    progress(workload, 20, "SIGCONT").await?;
    log.say(&format!("leader now n{}", cluster.leader(&all, RECOVER_TIMEOUT).await?));

    let leader = cluster.leader(&all, RECOVER_TIMEOUT).await?;
    let follower = other_than(&all, leader);
    log.note(&format!("blackhole n{leader} -> n{follower} (one way) for 2 s"));
    cluster.set_link(leader, follower, LinkFault::Blackhole);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.heal();
    progress(workload, 20, "healing the one-way cut").await?;

    let leader = cluster.leader(&all, RECOVER_TIMEOUT).await?;
    let follower = other_than(&all, leader);
    log.note(&format!("blackhole n{follower} -> n{leader} (one way) for 2 s"));
    cluster.set_link(follower, leader, LinkFault::Blackhole);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.heal();
    progress(workload, 20, "healing the other one-way cut").await?;

    let leader = cluster.leader(&all, RECOVER_TIMEOUT).await?;
    log.note(&format!("blackhole n{leader} both ways (isolated leader) for 2.5 s"));
    cluster.isolate(leader, LinkFault::Blackhole);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    cluster.heal();
    progress(workload, 20, "healing the isolation").await?;
    log.say(&format!("leader now n{}", cluster.leader(&all, RECOVER_TIMEOUT).await?));

    let leader = cluster.leader(&all, RECOVER_TIMEOUT).await?;
    let follower = other_than(&all, leader);
    log.note(&format!("delay every link of n{follower} by 120 ms for 2 s"));
    cluster.isolate(follower, LinkFault::Delay(Duration::from_millis(120)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.heal();
    progress(workload, 20, "removing the delay").await?;

    let leader = cluster.leader(&all, RECOVER_TIMEOUT).await?;
    let follower = other_than(&all, leader);
    log.note(&format!("drop connections n{leader} <-> n{follower} for 1.5 s"));
    cluster.set_link(leader, follower, LinkFault::Drop);
    cluster.set_link(follower, leader, LinkFault::Drop);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.heal();
    progress(workload, 20, "healing the dropped link").await
}

/// A last acknowledged put on the prefix, so every watch has an event to
/// reach; each attempt is recorded as an operation of its own client.
async fn end_marker(cluster: &Cluster, epoch: Instant, history: &mut Vec<lin::Operation>) -> Result<u64, String> {
    let client = cluster.client(1, Duration::from_secs(3));
    let key = format!("{PREFIX}end").into_bytes();
    let deadline = Instant::now() + RECOVER_TIMEOUT;
    for attempt in 0.. {
        let value = format!("end-{attempt}").into_bytes();
        let call_ns = epoch.elapsed().as_nanos() as u64;
        let result = client.put(&PutRequest { key: key.clone(), value: value.clone(), ..Default::default() }).await;
        let input = lin::Input::Put { key: key.clone(), value, prev_kv: false };
        let mut op = lin::Operation { client: 1000 + attempt, call_ns, input, response: None };
        let revision = result.as_ref().ok().and_then(|r| u64::try_from(r.header.revision).ok());
        if let Some(revision) = revision {
            let output = lin::Output::Put { revision, prev: None };
            op.response = Some(lin::Response { return_ns: epoch.elapsed().as_nanos() as u64, output });
        }
        history.push(op);
        match (revision, result) {
            (Some(revision), _) => return Ok(revision),
            (None, Err(e)) if Instant::now() >= deadline => return Err(format!("the end marker was not written: {e}")),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    unreachable!("the loop returns")
}

/// Everything the fault run found, failures last.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    summary: String,
}

impl Findings {
    fn check(&mut self, what: &str, result: Result<(), String>) {
        if let Err(e) = result {
            self.failures.push(format!("{what}: {e}"));
        }
    }
}

async fn fault_run(dir: &Path) -> Findings {
    let mut findings = Findings::default();
    let mut cluster = Cluster::new(dir, 3, STATION_ARGS);
    cluster.start_all();
    let all = cluster.ids();
    if let Err(e) = cluster.leader(&all, RECOVER_TIMEOUT).await {
        findings.failures.push(e);
        return findings;
    }
    let epoch = Instant::now();
    let config = WorkloadConfig {
        prefix: PREFIX.to_owned(),
        keys_len: 12,
        ops_per_client_max: 2_000,
        think: Duration::from_millis(10),
        request_timeout: Duration::from_secs(3),
        seed: 0x5eed_fa17,
    };
    // Four clients, each starting at a different station (the fourth at n1 again).
    let endpoints = [1, 2, 3, 1].iter().map(|&id| cluster.endpoints(id)).collect();
    let watcher = PrefixWatcher::start(cluster.endpoints(2), PREFIX, 1);
    let workload = Workload::start(endpoints, &config, epoch);
    let mut log = FaultLog { epoch, applied: 0 };

    let inflicted = inflict(&mut cluster, &workload, &mut log).await;
    findings.check("recovery after a fault", inflicted);
    cluster.heal();
    let failed = workload.progress.failed.load(std::sync::atomic::Ordering::Relaxed);
    let recorded = workload.stop().await;
    let mut history = recorded.history;
    log.say(&format!("workload stopped: {} operations", history.len()));
    findings.check("answers that fit their requests", recorded.anomalies.first().map_or(Ok(()), |a| Err(a.clone())));

    match end_marker(&cluster, epoch, &mut history).await {
        Ok(end) => check_after(&cluster, &history, watcher, end, &mut findings).await,
        Err(e) => findings.failures.push(e),
    }

    let acknowledged = history.iter().filter(|op| op.response.is_some()).count();
    let started = Instant::now();
    let verdict = lin::check(&history, lin::Limits::default());
    let verdict_text = match &verdict {
        Ok(verdict) => verdict.to_string(),
        Err(e) => format!("malformed history: {e}"),
    };
    findings.check(
        "linearizability",
        if matches!(verdict, Ok(lin::Verdict::Linearizable)) { Ok(()) } else { Err(verdict_text.clone()) },
    );
    if !findings.failures.is_empty() {
        let lines: Vec<String> = history.iter().enumerate().map(|(i, op)| format!("#{i} {op:?}")).collect();
        let _ = std::fs::write(dir.join("history.txt"), lines.join("\n"));
    }
    let (swallowed, dropped) = cluster.proxy_totals();
    findings.summary = format!(
        "faults: {} ops, {acknowledged} acknowledged, {failed} failed or timed out, {} faults applied, proxies \
         swallowed {swallowed} frames and dropped {dropped} connections, {} s of faults; checker ({} ms): {}",
        history.len(),
        log.applied,
        epoch.elapsed().as_secs(),
        started.elapsed().as_millis(),
        verdict_text.chars().take(200).collect::<String>(),
    );
    findings
}

/// After the workload: the stations' histories agree, hold every
/// acknowledged write and lead to the final state; the watcher saw it all.
async fn check_after(
    cluster: &Cluster,
    history: &[lin::Operation],
    watcher: PrefixWatcher,
    end: u64,
    findings: &mut Findings,
) {
    if end >= REVISIONS_MAX {
        findings.failures.push(format!("the run reached revision {end}, too close to the stations' history bound"));
        return;
    }
    // A write whose client gave up may still be applied, even after the end
    // marker (a relay queued behind a dropped connection is delivered late;
    // session 15's CI saw one at end + 1): the history is read up to the
    // final read's revision, so the final state is checked against it.
    let client = cluster.client(1, Duration::from_secs(3));
    let final_read = read_prefix(&client, PREFIX).await;
    let upto = match &final_read {
        Ok((revision, _)) => (*revision).max(end),
        Err(_) => end,
    };
    let mut reference: Option<Vec<common::watcher::Seen>> = None;
    for id in cluster.ids() {
        match read_history(&cluster.endpoint(id), PREFIX, upto, RECOVER_TIMEOUT).await {
            Ok(events) => match &reference {
                None => reference = Some(events),
                Some(first) => findings.check(&format!("n{id}'s history against n1's"), compare(&events, first, upto)),
            },
            Err(e) => findings.failures.push(format!("n{id}'s history: {e}")),
        }
    }
    let Some(reference) = reference else { return };
    let lines: Vec<String> = reference.iter().map(ToString::to_string).collect();
    let _ = std::fs::write(cluster.dir().join("reference.txt"), lines.join("\n"));
    findings.check(
        "acknowledged writes in the history",
        acknowledged_writes_in_history(history, &reference).map(|n| println!("{n} acknowledged writes found")),
    );
    match final_read {
        Ok((revision, kvs)) if revision >= end => {
            let upto: Vec<_> = reference.iter().filter(|s| s.revision <= revision).cloned().collect();
            findings.check("the final state", final_state_matches(&upto, &kvs));
        }
        Ok((revision, _)) => findings.failures.push(format!("the final read is at revision {revision} < {end}")),
        Err(e) => findings.failures.push(e),
    }
    let deadline = Instant::now() + RECOVER_TIMEOUT;
    while watcher.last_revision() < end && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rewatches = watcher.rewatches();
    let (received, canceled) = watcher.stop();
    println!("the watcher received {} events, re-watched {rewatches} times", received.len());
    findings.check("watch cancels", canceled.first().map_or(Ok(()), |c| Err(format!("a watch was canceled: {c}"))));
    findings.check("the watcher's events", compare(&received, &reference, end));
}

#[test]
fn acknowledged_writes_survive_and_history_stays_linearizable_under_kills_pauses_and_link_faults() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = scratch("faults");
    let findings = runtime().block_on(fault_run(&dir));
    println!("{}", findings.summary);
    assert!(
        findings.failures.is_empty(),
        "{} failure(s):\n{}\nstation logs in {}",
        findings.failures.len(),
        findings.failures.join("\n"),
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Puts `value_bytes`-byte values under `prefix` (one key each) through
/// `client` until `done` says so or `timeout` passes; returns the
/// acknowledged (key, value) pairs.
async fn write_until(
    cluster: &mut Cluster,
    client: &Client,
    prefix: &str,
    value_bytes: usize,
    timeout: Duration,
    mut done: impl FnMut(&mut Cluster, usize) -> bool,
) -> Vec<(String, Vec<u8>)> {
    let mut acknowledged = Vec::new();
    let deadline = Instant::now() + timeout;
    for i in 0.. {
        if done(cluster, acknowledged.len()) || Instant::now() >= deadline {
            break;
        }
        let key = format!("{prefix}{i:05}");
        let mut value = format!("{key}:").into_bytes();
        value.resize(value_bytes, b'x');
        let put = PutRequest { key: key.clone().into_bytes(), value: value.clone(), ..Default::default() };
        match client.put(&put).await {
            Ok(_) => acknowledged.push((key, value)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    acknowledged
}

/// Every pair in `acknowledged` is in a linearizable read through `client`.
async fn all_present(client: &Client, acknowledged: &[(String, Vec<u8>)], who: &str) -> Result<(), String> {
    let (_, kvs) = read_prefix(client, "d/").await?;
    let missing: Vec<&str> = acknowledged
        .iter()
        .filter(|(key, value)| !kvs.iter().any(|kv| kv.key == key.as_bytes() && &kv.value == value))
        .map(|(key, _)| key.as_str())
        .collect();
    match missing.as_slice() {
        [] => Ok(()),
        _ => {
            Err(format!("{who}: {} of {} acknowledged writes missing: {missing:?}", missing.len(), acknowledged.len()))
        }
    }
}

/// Waits for station `id` to exit on its own.
async fn exit_of(cluster: &mut Cluster, id: u64) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + RECOVER_TIMEOUT;
    loop {
        if let Some(status) = cluster.exited(id) {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(format!("n{id} still runs {RECOVER_TIMEOUT:?} after its disk filled"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The station whose disk fills is n3. Phase A: n2 is cut off, so every
/// write needs n3's disk; n3 must stop once it cannot persist. Phase B:
/// n1 (which holds the same writes) is killed and n3 restarts beside n2:
/// everything acknowledged in A must come from n3's disk. Phase C: n3's
/// disk fills again with all links up; n1 and n2 keep serving.
async fn disk_full_run(dir: &Path, tmpfs: &Tmpfs) -> Result<String, String> {
    let mut cluster = Cluster::new(dir, 3, STATION_ARGS);
    cluster.set_data_dir(3, tmpfs.dir().join("data"));
    cluster.start_all();
    cluster.leader(&cluster.ids(), RECOVER_TIMEOUT).await?;
    let epoch = Instant::now();
    let log = FaultLog { epoch, applied: 0 };

    cluster.isolate(2, LinkFault::Blackhole);
    cluster.leader(&[1, 3], RECOVER_TIMEOUT).await?;
    let client = cluster.client(1, Duration::from_secs(3));
    let mut phase_a = write_until(&mut cluster, &client, "d/a", 1024, RECOVER_TIMEOUT, |_, n| n > 0).await;
    if phase_a.is_empty() {
        return Err("n1 and n3 acknowledged no write with n2 cut off".into());
    }
    let filler = tmpfs.fill_leaving(256 * 1024).map_err(|e| format!("cannot fill the tmpfs: {e}"))?;
    log.say(&format!("n3's tmpfs filled ({filler} bytes of filler, 256 KiB left), n2 cut off"));
    let more =
        write_until(&mut cluster, &client, "d/b", 32 * 1024, RECOVER_TIMEOUT, |c, _| c.exited(3).is_some()).await;
    phase_a.extend(more);
    let status = exit_of(&mut cluster, 3).await?;
    let reason = log_tail(&cluster.log_path(3), 3);
    log.say(&format!("n3 exited ({status}) after {} acknowledged writes; its log ends:\n{reason}", phase_a.len()));
    if status.success() {
        return Err(format!("n3 exited with success on a full disk: {reason}"));
    }

    cluster.kill(1);
    cluster.kill(2);
    cluster.kill(3);
    tmpfs.empty().map_err(|e| format!("cannot empty the tmpfs: {e}"))?;
    cluster.heal();
    cluster.start(3);
    cluster.start(2);
    log.say("n1 killed; n3 restarted from its disk beside n2");
    all_present(&cluster.client(3, Duration::from_secs(3)), &phase_a, "n3 and n2 after the restart").await?;

    cluster.start(1);
    cluster.leader(&cluster.ids(), RECOVER_TIMEOUT).await?;
    let client = cluster.client(1, Duration::from_secs(3));
    let mut phase_c = write_until(&mut cluster, &client, "d/c", 1024, RECOVER_TIMEOUT, |_, n| n > 0).await;
    tmpfs.fill_leaving(128 * 1024).map_err(|e| format!("cannot fill the tmpfs: {e}"))?;
    log.say("n3's tmpfs filled again, all links up");
    let mut exited_after = None;
    let more = write_until(&mut cluster, &client, "d/d", 32 * 1024, RECOVER_TIMEOUT, |c, n| {
        if exited_after.is_none() && c.exited(3).is_some() {
            exited_after = Some(n);
        }
        exited_after.is_some_and(|at| n >= at + 20)
    })
    .await;
    let served_after = exited_after.map_or(0, |at| more.len() - at);
    phase_c.extend(more);
    let status = exit_of(&mut cluster, 3).await?;
    log.say(&format!("n3 exited again ({status}); n1 and n2 acknowledged {served_after} writes after that"));
    if served_after < 20 {
        return Err(format!("only {served_after} writes acknowledged by n1 and n2 after n3 stopped"));
    }
    all_present(&client, &phase_a, "n1 and n2, phase A writes").await?;
    all_present(&client, &phase_c, "n1 and n2, phase C writes").await?;
    Ok(format!(
        "disk full: n3 stopped twice ({status}); {} writes acknowledged with n3 as the needed disk, all recovered from \
         it; {} more with n3 stopping, {served_after} after it stopped; {} s",
        phase_a.len(),
        phase_c.len(),
        epoch.elapsed().as_secs()
    ))
}

#[test]
fn a_station_whose_disk_fills_stops_and_acknowledges_nothing_it_did_not_persist() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = scratch("disk-full");
    let tmpfs = match Tmpfs::mount(&dir.join("n3-tmpfs"), "2m") {
        Ok(tmpfs) => tmpfs,
        Err(e) => {
            println!("disk full: SKIPPED, no tmpfs: {e}");
            return;
        }
    };
    let result = runtime().block_on(disk_full_run(&dir, &tmpfs));
    drop(tmpfs);
    match result {
        Ok(summary) => {
            println!("{summary}");
            let _ = std::fs::remove_dir_all(&dir);
        }
        Err(e) => panic!("{e}\nstation logs in {}", dir.display()),
    }
}
