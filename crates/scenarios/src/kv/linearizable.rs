//! The `kv-linearizable` scenario.
//!
//! In: a seed. Out: a [`RunReport`]; its violation names a broken Raft
//! invariant, a stalled cluster, or a non-linearizable client history.
//!
//! 3 replicas (5 on every fourth seed) and 3 clients doing random get, put,
//! delete, compare-and-set transactions and prefix ranges on 4 keys, with
//! 250 ms attempt timeouts and up to 8 attempts. The network loses and
//! duplicates 1% of messages; clocks drift up to ±200 ppm. For about 20 s,
//! replicas crash and restart (a crash loses unsynced writes and may tear
//! the last one), pause, are partitioned (majority/minority, bridge,
//! isolation, one-way — clients included) and clogged, the leader is
//! asked to hand leadership over, and replicas are crashed at the worst
//! moment: while a new term or vote is not yet durable. Then everything is
//! healed.

use super::client::{ClientConfig, KvClient};
use super::faults::{self, FaultMix};
use super::history::Recorder;
use super::invariants::RaftInvariants;
use super::node::{KvNode, KvOut, StationReplica};
use super::watch_checks::WatchRecord;
use super::watch_client::{WatchClient, WatchClientConfig};
use haven_lincheck::{self as lin, Verdict};
use haven_runtime::NodeId;
use haven_sim::{
    Dist, LinkConfig, Outcome, Process, RunReport, Scenario, Sim, SimConfig, SimTime, TraceSink, Violation, actions,
};
use haven_station::{Replica, ReplicaConfig};
use haven_store::KeyRange;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub const SUMMARY: &str = "3 replicas (5 on every fourth seed) of Raft + WAL + the etcd-model store, and 3 clients \
doing random get/put/delete/compare-and-set txn/prefix range on 4 keys with timeouts and retries (exactly-once \
sessions). 1% loss and duplication, drifting clocks. For about 20 s: replica crashes that lose unsynced writes and \
tear the last one, pauses, partitions of every kind (clients included), clogging and leadership transfers. Safety, after every event: one \
leader per term, no two replicas apply different entries at an index, a new leader holds every applied entry, log \
matching. Liveness: within 10 s of healing, every client completes an operation and the watcher has received \
every event in its range applied before healing. At the end: the whole client \
history is linearizable (Wing-Gong/Lowe, per key, with global revision checks), and the events one watcher \
received (re-watching on another replica when its own goes quiet) are the store's history between the first and \
the last revision it saw, in order, with no gap or duplicate.";

const CLIENTS: u64 = 3;
/// One watcher, on the node after the clients.
const WATCHERS: u64 = 1;
/// The watcher watches everything the clients touch: "k" .. "l".
pub(crate) const WATCH_KEY: &[u8] = b"k";
pub(crate) const WATCH_RANGE_END: &[u8] = b"l";
/// Small, so runs take many snapshots and lagging replicas catch up by
/// InstallSnapshot.
const SNAPSHOT_ENTRIES: u64 = 150;
const KEYS: u32 = 4;
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(10);
/// The replica faults of one run (also used by `membership`).
pub const FAULT_MIX: FaultMix = FaultMix {
    crashes: (5, 3),
    pauses: (4, 4),
    partitions: (4, 4),
    clogs: (1, 8),
    transfers: (4, 4),
    unsynced_checks: 400,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// What the checkers share: the history being recorded and the invariants.
#[derive(Debug)]
pub(crate) struct Shared {
    recorder: Recorder,
    invariants: RaftInvariants,
    /// Global time of each client's latest completed operation.
    last_done: std::collections::BTreeMap<NodeId, SimTime>,
    pub(crate) watch: WatchRecord,
}

pub fn run(seed: u64, trace: Option<TraceSink>) -> RunReport {
    run_with(seed, trace, Replica::new)
}

pub const BATCHED_SUMMARY: &str = "kv-linearizable, with every paused replica handed the messages that waited for \
it in batches (of up to 64, the production bound) when it resumes, as the production executor hands over a backlog: a batch's proposals \
and reads share one pass of Raft's output (one log write, one append per follower). Same checks.";

/// `kv-linearizable` with batched delivery after pauses (`SimConfig::batch_on_resume`).
pub fn run_batched(seed: u64, trace: Option<TraceSink>) -> RunReport {
    run_configured(seed, trace, Replica::new, |config| config.batch_on_resume = true)
}

/// One seed with any replica built from its configuration (tests plant
/// broken variants by wrapping [`Replica`]).
pub fn run_with<R: StationReplica>(
    seed: u64,
    trace: Option<TraceSink>,
    make_replica: impl Fn(ReplicaConfig) -> R + 'static,
) -> RunReport {
    run_configured(seed, trace, make_replica, |_| {})
}

fn run_configured<R: StationReplica>(
    seed: u64,
    trace: Option<TraceSink>,
    make_replica: impl Fn(ReplicaConfig) -> R + 'static,
    adjust: impl FnOnce(&mut SimConfig),
) -> RunReport {
    let (mut config, voters) = cluster(seed, CLIENTS + WATCHERS);
    adjust(&mut config);
    let replicas = voters.len() as u64;
    let client_config = ClientConfig {
        servers: voters.clone(),
        keys: KEYS,
        attempt_timeout: ms(250),
        attempts_max: 8,
        think_max: ms(20),
        relay_percent: 30,
    };
    let watch_config = WatchClientConfig::new(voters.clone(), WATCH_KEY, WATCH_RANGE_END);
    let factory = move |id: NodeId| {
        if id.0 <= replicas {
            KvNode::Replica(Box::new(make_replica(replica_config(voters.clone()))))
        } else if id.0 <= replicas + CLIENTS {
            KvNode::Client(Box::new(KvClient::new(client_config.clone())))
        } else {
            KvNode::Watcher(Box::new(WatchClient::new(watch_config.clone())))
        }
    };
    let mut sim = Sim::new(config, factory).expect("the kv scenario's configuration is valid");
    if let Some(sink) = trace {
        sim.set_trace(sink);
    }
    let shared = install_history_checks(&mut sim);
    let s = shared.clone();
    sim.add_liveness("clients progress and the watcher catches up", CONVERGE_WITHIN, ms(1), move |sim| {
        clients_progressed(&s.borrow(), sim)?;
        s.borrow().watch.caught_up(sim)
    });
    let report = sim.run(scenario::<R>(replicas));
    let report = finish(report, &shared.borrow());
    shared.borrow().watch.finish(report, &sim)
}

/// The simulated network of the kv scenarios (1% loss and duplication on
/// a LAN) with 3 replicas, 5 on every fourth seed, then `others` nodes.
/// Returns the configuration and the replicas' ids.
pub(crate) fn cluster(seed: u64, others: u64) -> (SimConfig, Vec<NodeId>) {
    let replicas: u64 = if seed % 4 == 3 { 5 } else { 3 };
    let mut config = SimConfig::new(seed, (replicas + others) as usize);
    config.link = LinkConfig { latency: Dist::lan(), loss_probability: 0.01, duplicate_probability: 0.01 };
    (config, (1..=replicas).map(NodeId).collect())
}

/// A replica of the kv scenarios: snapshots every `SNAPSHOT_ENTRIES`,
/// written one key per turn so that applies, reads and crashes fall while
/// a snapshot is half written.
pub(crate) fn replica_config(voters: Vec<NodeId>) -> ReplicaConfig {
    let mut config = ReplicaConfig::new(voters);
    config.snapshot_entries = SNAPSHOT_ENTRIES;
    config.snapshot_keys_per_turn = 1;
    config
}

/// Installs the safety checker that records the client history and checks
/// Raft's invariants after every event; returns what it records into.
pub(crate) fn install_history_checks<R: StationReplica>(sim: &mut Sim<KvNode<R>>) -> Rc<RefCell<Shared>> {
    let shared = Rc::new(RefCell::new(Shared {
        recorder: Recorder::default(),
        invariants: RaftInvariants::default(),
        last_done: std::collections::BTreeMap::new(),
        watch: WatchRecord::new(KeyRange::new(WATCH_KEY, WATCH_RANGE_END)),
    }));
    let s = shared.clone();
    sim.add_safety("raft invariants and history", move |sim| record_and_check(&mut s.borrow_mut(), sim));
    shared
}

pub(crate) fn record_and_check<R: StationReplica>(shared: &mut Shared, sim: &Sim<KvNode<R>>) -> Result<(), String> {
    shared.invariants.check(sim)?;
    shared.watch.observe(sim);
    let now = sim.now().as_nanos();
    for (node, out) in sim.last_outputs() {
        match out {
            KvOut::Client(super::client::ClientEvent::Invoke { op, request }) => {
                shared.recorder.invoke(node.0, *op, request.clone(), now)
            }
            KvOut::Client(super::client::ClientEvent::Complete { op, result }) => {
                shared.recorder.complete(node.0, *op, result.as_ref(), now)?;
                if result.is_some() {
                    shared.last_done.insert(*node, sim.now());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn clients_progressed<R: StationReplica>(shared: &Shared, sim: &Sim<KvNode<R>>) -> Result<(), String> {
    let healed = sim.faults_over_at().expect("liveness runs after healing");
    let clients = sim.node_ids().iter().filter(|n| sim.component(**n).is_some_and(|c| matches!(c, KvNode::Client(_))));
    for client in clients {
        let done = shared.last_done.get(client).copied();
        if done.is_none_or(|t| t < healed) {
            return Err(format!("{client} completed no operation since healing at {healed} (last: {done:?})"));
        }
    }
    Ok(())
}

/// Checks the whole history once the run is over.
pub(crate) fn finish(report: RunReport, shared: &Shared) -> RunReport {
    check_history(report, &shared.recorder.operations())
}

/// Checks `ops` for linearizability, unless the run failed already; a
/// checker that gives up or a malformed history is a failure too.
pub(crate) fn check_history(report: RunReport, ops: &[lin::Operation]) -> RunReport {
    if !report.is_ok() {
        return report;
    }
    let violation = |detail: String| {
        let at = report.sim_time;
        RunReport {
            outcome: Outcome::Violation(Violation { checker: "linearizability".into(), at, detail }),
            ..report.clone()
        }
    };
    match lin::check(ops, lin::Limits::default()) {
        Ok(Verdict::Linearizable) => report,
        Ok(Verdict::Violation(v)) => violation(format!("{} ({} operations)", v.explanation, ops.len())),
        Ok(Verdict::Unknown { partition, steps }) => {
            violation(format!("the checker gave up on {partition} after {steps} steps; a give-up counts as a failure"))
        }
        Err(e) => violation(format!("malformed history: {e}")),
    }
}

fn scenario<R: StationReplica>(replicas: u64) -> Scenario<KvNode<R>> {
    let mut s = Scenario::new();
    s.add(Process::new("clocks", 1, Dist::ZERO, actions::randomize_clocks(secs(5), 200)));
    let boot = s.add(Process::new(
        "boot",
        (replicas + CLIENTS + WATCHERS) as u32,
        Dist::uniform(ms(0), ms(50)),
        actions::start_each(),
    ));
    let faults = faults::add_replica_faults(&mut s, boot, replicas, FAULT_MIX);
    s.end_after(&faults, secs(1));
    s
}
