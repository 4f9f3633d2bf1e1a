//! The `lease` scenario.
//!
//! In: a seed (and, for planted bugs, a replica constructor). Out: a
//! [`RunReport`]; its violation names a broken Raft invariant, a lease
//! revoked while its holder's acknowledged keep-alive still covered it, an
//! abandoned lease (or key on it) that outlived healing, a watcher's events
//! that are not the store's history, or a key-value history that is not
//! linearizable.
//!
//! 3 replicas (5 on every fourth seed) and 3 lease holders with TTLs of 2
//! or 3 s, each renewing every TTL/3 by its own clock, putting keys on its
//! lease (with prev_kv) and reading one back on one request in four. The
//! holders' puts and gets make the history checked for linearizability at
//! the end, with every deletion by expiry or revoke in it as a change no
//! client called: its keys and revision come from the store's history (which
//! the watch check holds the watcher's events to), its time is anywhere in
//! the run, so only its revision places it. Grants and keep-alives are left
//! to the lease checks. Clocks drift within ±[`DRIFT_PPM_MAX`] ppm, the
//! assumption the safety check is stated under. 1% loss and duplication. For about
//! 10 s: replica crashes (losing unsynced writes, some while a new term or
//! vote is not yet durable), pauses, partitions of
//! every kind (holders included), clogging and leadership transfers, and
//! holders that stop: a crash kept down beyond the TTL, or a pause of up to
//! twice the TTL. Then everything is healed and restarted; a restarted
//! holder is a new session (and a new client of the history), so its old
//! lease is abandoned.

use super::client::ClientEvent;
use super::faults::{self, FaultMix};
use super::history::{self, Recorder};
use super::invariants::RaftInvariants;
use super::lease_checks::LeaseChecks;
use super::lease_client::{LeaseClient, LeaseClientConfig, LeaseEvent};
use super::node::{KvNode, KvOut, StationReplica};
use super::watch_checks::{self, WatchRecord};
use super::watch_client::{WatchClient, WatchClientConfig};
use haven_runtime::NodeId;
use haven_sim::{Dist, Outcome, Process, RunReport, Scenario, Sim, TraceSink, Violation, actions};
use haven_station::{Replica, ReplicaConfig};
use haven_store::KeyRange;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub const SUMMARY: &str = "3 replicas (5 on every fourth seed) of Raft + WAL + the etcd-model store, and 3 lease \
holders (TTL 2-3 s) renewing every TTL/3, putting keys on their lease (with prev_kv) and reading them back. 1% \
loss and duplication, clocks within ±200 ppm. For about 10 s: replica crashes, pauses, partitions of every kind \
(holders included), clogging, leadership transfers, and holders that crash or pause past their TTL. Safety, after \
every event: Raft's invariants, and no lease is revoked before g + TTL/(1 + 200 ppm) for any acknowledged grant or \
keep-alive its holder sent at g. Liveness: \
within TTL + 8 s of healing, every lease and leased key not held by a running holder is gone, every holder \
renews, and a watcher of the holders' keys has received every event applied before healing. At the end: the \
watcher's events (puts, and deletions by expiry) are the store's history, in order, with no gap or duplicate, and \
the holders' puts and gets, with every deletion by expiry as a change at its revision whose time is unknown, are \
linearizable (a give-up of the checker counts as a failure).";

const CLIENTS: u64 = 3;
/// One watcher, on the node after the holders, on every holder's keys
/// (`l{node}/k{i}`): puts, and the deletions by expiry and revoke.
const WATCHERS: u64 = 1;
const WATCH_KEY: &[u8] = b"l";
const WATCH_RANGE_END: &[u8] = b"m";
/// The clock-drift bound: every clock runs within this of global time.
pub const DRIFT_PPM_MAX: u64 = 200;
/// The longest TTL a holder asks for.
pub const TTL_SECONDS_MAX: i64 = 3;
/// After healing: the election of a stable leader, its extension (one
/// election timeout), a revoke retried once after a refused proposal
/// (`LessorConfig::revoke_retry`, 3 s) and its commit fit in this.
pub const EXPIRY_SLACK: Duration = Duration::from_secs(8);
/// Small, so snapshots (and their lease tables) are taken, installed and
/// restored often.
const SNAPSHOT_ENTRIES: u64 = 100;
/// Of a holder's requests on keys, the share that are gets.
const GET_PERCENT: u32 = 25;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[derive(Debug)]
struct Shared {
    invariants: RaftInvariants,
    leases: LeaseChecks,
    watch: WatchRecord,
    /// The holders' puts and gets.
    recorder: Recorder,
}

pub fn run(seed: u64, trace: Option<TraceSink>) -> RunReport {
    run_with(seed, trace, Replica::new)
}

/// One seed with any replica built from its configuration (tests plant
/// broken variants by wrapping [`Replica`]).
pub fn run_with<R: StationReplica>(
    seed: u64,
    trace: Option<TraceSink>,
    make_replica: impl Fn(ReplicaConfig) -> R + 'static,
) -> RunReport {
    let (config, voters) = super::linearizable::cluster(seed, CLIENTS + WATCHERS);
    let replicas = voters.len() as u64;
    let watch_config = WatchClientConfig::new(voters.clone(), WATCH_KEY, WATCH_RANGE_END);
    let factory = move |id: NodeId| {
        if id.0 <= replicas {
            let mut config = ReplicaConfig::new(voters.clone());
            config.snapshot_entries = SNAPSHOT_ENTRIES;
            config.snapshot_keys_per_turn = 1;
            KvNode::Replica(Box::new(make_replica(config)))
        } else if id.0 <= replicas + CLIENTS {
            KvNode::LeaseClient(Box::new(LeaseClient::new(client_config(voters.clone(), id))))
        } else {
            KvNode::Watcher(Box::new(WatchClient::new(watch_config.clone())))
        }
    };
    let mut sim = Sim::new(config, factory).expect("the lease scenario's configuration is valid");
    if let Some(sink) = trace {
        sim.set_trace(sink);
    }
    let shared = Rc::new(RefCell::new(Shared {
        invariants: RaftInvariants::default(),
        leases: LeaseChecks::new(DRIFT_PPM_MAX),
        watch: WatchRecord::new(KeyRange::new(WATCH_KEY, WATCH_RANGE_END)),
        recorder: Recorder::default(),
    }));
    let s = shared.clone();
    sim.add_safety("raft invariants", move |sim| {
        let mut shared = s.borrow_mut();
        shared.watch.observe(sim);
        record(&mut shared.recorder, sim)?;
        shared.invariants.check(sim)
    });
    let s = shared.clone();
    sim.add_safety("no lease revoked within an acknowledged TTL", move |sim| s.borrow_mut().leases.check(sim));
    let s = shared.clone();
    let within = secs(TTL_SECONDS_MAX as u64) + EXPIRY_SLACK;
    sim.add_liveness("abandoned leases revoked and the watcher caught up", within, ms(1), move |sim| {
        s.borrow().leases.abandoned_leases_gone(sim)?;
        s.borrow().watch.caught_up(sim)
    });
    let report = sim.run(scenario::<R>(replicas));
    let report = shared.borrow().watch.finish(report, &sim);
    check_history(report, &shared.borrow().recorder, &sim)
}

/// Records the holders' puts and gets; each incarnation of a holder is a
/// client of its own (a restart forgets what was in flight).
fn record<R: StationReplica>(recorder: &mut Recorder, sim: &Sim<KvNode<R>>) -> Result<(), String> {
    let now = sim.now().as_nanos();
    for (node, out) in sim.last_outputs() {
        let KvOut::LeaseClient(LeaseEvent::Kv(event)) = out else { continue };
        let client = (node.0 << 32) | u64::from(sim.incarnation(*node));
        match event {
            ClientEvent::Invoke { op, request } => recorder.invoke(client, *op, request.clone(), now),
            ClientEvent::Complete { op, result } => recorder.complete(client, *op, result.as_ref(), now)?,
        }
    }
    Ok(())
}

/// At the end: the holders' history, with the store's deletions by expiry
/// as changes whose time is anywhere in the run, must be linearizable.
fn check_history<R: StationReplica>(report: RunReport, recorder: &Recorder, sim: &Sim<KvNode<R>>) -> RunReport {
    if !report.is_ok() {
        return report;
    }
    let mut ops = recorder.operations();
    let range = KeyRange::new(WATCH_KEY, WATCH_RANGE_END);
    let end_ns = ops.iter().filter_map(|op| op.response.as_ref()).fold(sim.now().as_nanos(), |t, r| t.max(r.return_ns));
    let expiries = watch_checks::most_advanced_store(sim)
        .ok_or_else(|| "no replica is running at the end".to_string())
        .and_then(|store| history::expiries(store, &range, end_ns));
    match expiries {
        Ok(expiries) => ops.extend(expiries),
        Err(detail) => {
            let violation = Violation { checker: "linearizability".into(), at: report.sim_time, detail };
            return RunReport { outcome: Outcome::Violation(violation), ..report };
        }
    }
    super::linearizable::check_history(report, &ops)
}

/// Holders alternate TTLs of 2 and 3 s.
fn client_config(servers: Vec<NodeId>, id: NodeId) -> LeaseClientConfig {
    LeaseClientConfig {
        servers,
        ttl_seconds: 2 + (id.0 % 2) as i64,
        keys: 3,
        attempt_timeout: ms(250),
        attempts_max: 8,
        put_interval_max: ms(200),
        get_percent: GET_PERCENT,
        keep_alive_backoff: ms(50),
    }
}

fn scenario<R: StationReplica>(replicas: u64) -> Scenario<KvNode<R>> {
    let clients = replicas + 1..=replicas + CLIENTS;
    let ttl_max = secs(TTL_SECONDS_MAX as u64);
    let mut s = Scenario::new();
    s.add(Process::new("clocks", 1, Dist::ZERO, actions::randomize_clocks(secs(5), DRIFT_PPM_MAX as i64)));
    let nodes = (replicas + CLIENTS + WATCHERS) as u32;
    let boot = s.add(Process::new("boot", nodes, Dist::uniform(ms(0), ms(50)), actions::start_each()));
    let mix = FaultMix {
        crashes: (3, 3),
        pauses: (3, 3),
        partitions: (3, 3),
        clogs: (1, 6),
        transfers: (3, 3),
        unsynced_checks: 200,
    };
    let mut faults = faults::add_replica_faults(&mut s, boot, replicas, mix);
    let holder_crash = faults::crash_restart(clients.clone(), Dist::uniform(ttl_max, ttl_max * 3));
    let holder_pause = faults::pause(clients, Dist::uniform(secs(1), ttl_max * 2));
    let every = |mean_s: u64| Dist::exponential(secs(mean_s));
    for process in [
        Process::new("holder-crash", 1, every(4), holder_crash),
        Process::new("holder-pause", 2, every(4), holder_pause),
    ] {
        faults.push(s.add(process.after_end_of(boot, secs(1))));
    }
    s.end_after(&faults, secs(1));
    s
}
