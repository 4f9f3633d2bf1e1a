//! The `ha-scale` scenario: thousands of agents, one instance each, and a
//! crash of 1% of them at once.
//!
//! In: a seed and a [`ScaleConfig`] (agents, and proxies: agents that host
//! a proxy, as in ha-failover, run no crash and may run instances too).
//! Out: a [`ScaleReport`]: the run's [`RunReport`] (a violation if the
//! cluster never settled, a replica broke a Raft invariant, or a singleton
//! was not active again within [`RECOVERY_WITHIN`]), the recovery time of
//! every singleton whose primary died, and the message rate at the station
//! leader before and during the recovery. Real time is not read here (core
//! code): `haven sim run` measures it and prints the ratio.
//!
//! Nodes: n1-n3 station replicas, then the agents, then the proxies, then
//! the operator. Half
//! of the agents' instances are singletons without standbys, the other half
//! replicas of services of [`REPLICAS_PER_SERVICE`]; placement spreads them
//! one per agent. Clocks do not drift here (ha-failover covers drift), so a
//! replica's clock is simulated time and recovery times are read on it.
//!
//! Phases: boot everything, wait until the leader's graph has every
//! instance active, measure [`STEADY`] of steady state, crash 1% of the
//! agents (drawn from the seed), then run until every affected singleton
//! has a new active primary. A singleton counts as recovered when its
//! replacement's "active" report (token above the dead primary's) reaches
//! a replica: crash → lease expiry → decision committed → command → start.

use super::agent::{Agent, AgentConfig};
use super::fence::TokenFence;
use super::operator::{Operator, OperatorConfig};
use crate::kv::invariants::RaftInvariants;
use crate::kv::node::{KvNode, StationReplica};
use haven_ha::{Event, InstanceState, ProxyConfig, ServiceKind, ServiceSpec};
use haven_raft::{Raft, Role};
use haven_runtime::{Component, CtxFor, Instant, IoId, IoResult, NodeId, TimerId};
use haven_sim::{Dist, LinkConfig, Outcome, RunReport, Sim, SimConfig, SimTime, TraceSink, derive_rng};
use haven_station::{
    HaReport, Replica, ReplicaConfig, ReplicaEvent, ReplicaIo, ReplicaTimer, StateMachine, StationMsg,
};
use rand::seq::index::sample;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

pub const SUMMARY: &str = "3 station replicas and N simulated agents (`haven sim run`: 10,000 unless `--agents N`; \
sweeps: 300) reporting through one proxy per 100 agents (`--proxies P`; 0: to the stations directly), each running one instance: half singletons without standbys, half \
replicas of services of 10. Store lease TTL 2 s. Once every instance is active, 5 s of steady state, then 1% of \
the agents crash at once. Checks Raft's invariants (after one event in 64), that the cluster settles within 10 min and that \
every singleton whose primary died is active again elsewhere within 30 s; reports recovery p50/p99/max, the \
leader's incoming messages per second before and during recovery (and, from `haven sim run`, simulated/real time).";

pub const REPLICAS: u64 = 3;
pub const AGENTS_DEFAULT: u64 = 10_000;
/// Agents per seed in `haven sim sweep` and the determinism tests.
pub const AGENTS_SWEEP: u64 = 300;
/// Agents per proxy unless told otherwise (the 10,000 and 100).
pub const AGENTS_PER_PROXY: u64 = 100;
pub const REPLICAS_PER_SERVICE: u32 = 10;
pub const TTL_SECONDS: i64 = 2;
/// Steady state measured before the crash.
pub const STEADY: Duration = Duration::from_secs(5);
/// Boot to every instance active, at the most.
pub const SETTLE_WITHIN: Duration = Duration::from_secs(600);
/// Crash to every affected singleton active again, at the most.
pub const RECOVERY_WITHIN: Duration = Duration::from_secs(30);
/// Agents per hundred that crash.
pub const CRASH_PERCENT: u64 = 1;
/// Raft's invariants are checked after one event in this many: the check
/// compares the replicas' whole logs every 256 checks, and the logs here
/// hold hundreds of thousands of entries (the election, kv and ha-failover
/// scenarios check after every event).
const RAFT_CHECK_EVERY: u64 = 64;
/// How often the driver looks at the leader's graph while it waits.
const POLL: Duration = Duration::from_millis(100);
const SNAPSHOT_ENTRIES: u64 = 20_000;
/// Agents started together at boot, and the pause before each batch.
const BOOT_BATCH_LEN: usize = 1_000;
const BOOT_BATCH_GAP: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleConfig {
    pub agents: u64,
    /// Agents report through this many proxies; 0: to the stations directly.
    pub proxies: u64,
}

impl Default for ScaleConfig {
    fn default() -> ScaleConfig {
        ScaleConfig { agents: AGENTS_DEFAULT, proxies: AGENTS_DEFAULT / AGENTS_PER_PROXY }
    }
}

/// What `haven sim run --scenario ha-scale` prints (with the real time).
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleReport {
    pub run: RunReport,
    pub config: ScaleConfig,
    pub services: usize,
    /// Simulated time from boot to every instance active.
    pub settled_after: Option<Duration>,
    pub crashed: usize,
    /// Singletons whose primary was on a crashed agent.
    pub affected: usize,
    /// Crash to replacement active, one per recovered singleton, sorted.
    pub recoveries: Vec<Duration>,
    /// Messages per second arriving at the leader in the steady window.
    pub leader_rate_before: f64,
    /// ... from the crash to the last recovery.
    pub leader_rate_during: f64,
}

impl ScaleReport {
    /// The recovery time at quantile `q` (nearest rank), if any recovered.
    pub fn recovery_quantile(&self, q: f64) -> Option<Duration> {
        let n = self.recoveries.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n.max(1));
        self.recoveries.get(rank - 1).copied()
    }
}

/// The services for `agents` agents: one instance per agent.
pub fn services(agents: u64) -> Vec<ServiceSpec> {
    let singletons = agents / 2;
    let replicated = (agents - singletons) / u64::from(REPLICAS_PER_SERVICE);
    let mut specs = Vec::new();
    for i in 0..singletons {
        let mut spec = ServiceSpec::new(&format!("s{i:05}"), "/usr/bin/single", ServiceKind::Singleton { standbys: 0 });
        spec.start_timeout_ms = 5_000;
        specs.push(spec);
    }
    for i in 0..replicated {
        let kind = ServiceKind::Replicated { count: REPLICAS_PER_SERVICE };
        let mut spec = ServiceSpec::new(&format!("r{i:04}"), "/usr/bin/replica", kind);
        spec.start_timeout_ms = 5_000;
        specs.push(spec);
    }
    specs
}

/// Counts what reaches each replica and spots replacements becoming active.
#[derive(Debug, Default)]
struct Tally {
    received: BTreeMap<NodeId, u64>,
    /// Singletons awaiting a new primary: the dead primary's token.
    awaited: BTreeMap<String, u64>,
    crashed_at: Option<Instant>,
    recoveries: Vec<Duration>,
}

/// A replica that feeds the [`Tally`].
#[derive(Debug)]
pub struct Counted<R: StationReplica> {
    inner: R,
    tally: Rc<RefCell<Tally>>,
}

impl<R: StationReplica> Counted<R> {
    fn observe(&self, ctx: &mut impl CtxFor<Self>, msg: &StationMsg) {
        let mut tally = self.tally.borrow_mut();
        *tally.received.entry(ctx.node()).or_default() += 1;
        if tally.awaited.is_empty() {
            return;
        }
        let reports: &[Event] = match msg {
            StationMsg::HaReport(HaReport::Event(event)) => std::slice::from_ref(event),
            StationMsg::ProxyBatch(batch) => &batch.reports,
            _ => return,
        };
        let Some(sm) = self.inner.state_machine() else { return };
        for report in reports {
            let Event::InstanceActive { instance, token: Some(token) } = report else { continue };
            let Some(service) = sm.ha().graph.instances.get(instance).map(|i| i.service.clone()) else { continue };
            if tally.awaited.get(&service).is_some_and(|dead| token > dead) {
                tally.awaited.remove(&service);
                let since = tally.crashed_at.expect("awaited only after the crash");
                tally.recoveries.push(ctx.now().saturating_since(since));
            }
        }
    }
}

impl<R: StationReplica> Component for Counted<R> {
    type Msg = StationMsg;
    type Timer = ReplicaTimer;
    type Io = ReplicaIo;
    type Out = ReplicaEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.inner.on_start(ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        self.observe(ctx, &msg);
        self.inner.on_message(ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: ReplicaTimer) {
        self.inner.on_timer(ctx, id, timer);
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: ReplicaIo, result: IoResult) {
        self.inner.on_io(ctx, id, tag, result);
    }
}

impl<R: StationReplica> StationReplica for Counted<R> {
    fn raft(&self) -> Option<&Raft> {
        self.inner.raft()
    }

    fn state_machine(&self) -> Option<&StateMachine> {
        self.inner.state_machine()
    }
}

type ScaleSim = Sim<KvNode<Counted<Replica>>>;

/// The registry's entry (sweeps, the determinism tests): [`AGENTS_SWEEP`]
/// agents, so a seed costs seconds; `haven sim run --scenario ha-scale`
/// runs [`AGENTS_DEFAULT`] unless told `--agents`.
pub fn run(seed: u64, trace: Option<TraceSink>) -> RunReport {
    run_scaled(seed, ScaleConfig { agents: AGENTS_SWEEP, proxies: AGENTS_SWEEP / AGENTS_PER_PROXY }, trace).run
}

pub fn run_scaled(seed: u64, config: ScaleConfig, trace: Option<TraceSink>) -> ScaleReport {
    assert!(config.agents >= 100, "ha-scale needs at least 100 agents (1% of them crash)");
    let tally = Rc::new(RefCell::new(Tally::default()));
    let services = services(config.agents);
    let mut sim = build(seed, config, services.clone(), tally.clone());
    if let Some(sink) = trace {
        sim.set_trace(sink);
    }
    let invariants = Rc::new(RefCell::new(RaftInvariants::default()));
    let events = Rc::new(RefCell::new(0u64));
    sim.add_safety("raft invariants (sampled)", move |sim| {
        let mut n = events.borrow_mut();
        *n += 1;
        if n.is_multiple_of(RAFT_CHECK_EVERY) { invariants.borrow_mut().check(sim) } else { Ok(()) }
    });
    let mut report = ScaleReport {
        run: sim.report(),
        config,
        services: services.len(),
        settled_after: None,
        crashed: 0,
        affected: 0,
        recoveries: Vec::new(),
        leader_rate_before: 0.0,
        leader_rate_during: 0.0,
    };
    drive(&mut sim, &tally, &mut report);
    report.run = sim.report();
    if report.run.is_ok()
        && let Some(detail) = shortfall(&report)
    {
        report.run.outcome =
            Outcome::Violation(haven_sim::Violation { checker: "scenario".into(), at: sim.now(), detail });
    }
    report
}

fn build(seed: u64, config: ScaleConfig, services: Vec<ServiceSpec>, tally: Rc<RefCell<Tally>>) -> ScaleSim {
    let voters: Vec<NodeId> = (1..=REPLICAS).map(NodeId).collect();
    let last_proxy = REPLICAS + config.agents + config.proxies;
    let operator = NodeId(last_proxy + 1);
    let agent_config = agent_config(voters.clone(), operator);
    let proxy_config = proxy_config(config);
    let operator_config = OperatorConfig { servers: voters.clone(), services, round: Duration::from_secs(2) };
    let factory = move |id: NodeId| match id.0 {
        n if n <= REPLICAS => {
            let mut replica = ReplicaConfig::new(voters.clone());
            replica.snapshot_entries = SNAPSHOT_ENTRIES;
            replica.coordinator.services_len_max = replica.coordinator.services_len_max.max(100_000);
            KvNode::Replica(Box::new(Counted { inner: Replica::new(replica), tally: tally.clone() }))
        }
        _ if id == operator => KvNode::Operator(Box::new(Operator::new(operator_config.clone()))),
        n if n > REPLICAS + config.agents => KvNode::Agent(Box::new(
            Agent::new(agent_config.clone(), TokenFence::boxed()).with_proxy(proxy_config.clone()),
        )),
        _ => KvNode::Agent(Box::new(Agent::new(agent_config.clone(), TokenFence::boxed()))),
    };
    let mut sim_config = SimConfig::new(seed, operator.0 as usize);
    sim_config.link = LinkConfig { latency: Dist::lan(), loss_probability: 0.0, duplicate_probability: 0.0 };
    Sim::new(sim_config, factory).expect("the ha-scale configuration is valid")
}

/// Agents as in ha-failover, but quiet in steady state: primaries write to
/// no resource, and running instances are re-reported every 5 s.
fn agent_config(servers: Vec<NodeId>, sink: NodeId) -> AgentConfig {
    AgentConfig {
        servers,
        resource: sink,
        ttl_seconds: TTL_SECONDS,
        drift_ppm_max: crate::kv::lease::DRIFT_PPM_MAX,
        fence_margin: Duration::from_millis(50),
        start_delay: (Duration::from_millis(50), Duration::from_millis(300)),
        write_interval: Duration::from_secs(24 * 3600),
        report_interval: Duration::from_secs(5),
        attempt_timeout: Duration::from_millis(500),
        attempts_max: 20,
        join_backoff_max: Duration::from_secs(8),
        instances_max: 64,
        exit_reports_max: 5,
    }
}

/// Proxies as in ha-failover, with room for their share of the agents and
/// then some (a dead proxy's agents move to the others).
fn proxy_config(config: ScaleConfig) -> ProxyConfig {
    let share = config.agents.div_ceil(config.proxies.max(1));
    let agents_max = usize::try_from(share.saturating_mul(2).max(64)).unwrap_or(usize::MAX);
    ProxyConfig {
        agents_max,
        batch_len_max: 512,
        queue_len_max: agents_max.saturating_mul(8),
        flush_interval_ms: 20,
        reply_timeout_ms: 400,
        agent_idle_ms: 10_000,
        commands_len_max: agents_max.saturating_mul(4),
        report_age_ms_max: 500,
    }
}

/// The replica that leads in the highest term, if any.
fn leader(sim: &ScaleSim) -> Option<(NodeId, &StateMachine)> {
    let mut best: Option<(u64, NodeId, &StateMachine)> = None;
    for id in (1..=REPLICAS).map(NodeId) {
        let Some(replica) = sim.component(id).and_then(KvNode::replica) else { continue };
        let (Some(raft), Some(sm)) = (replica.raft(), replica.state_machine()) else { continue };
        if raft.role() == Role::Leader && best.as_ref().is_none_or(|(term, ..)| raft.term() > *term) {
            best = Some((raft.term(), id, sm));
        }
    }
    best.map(|(_, id, sm)| (id, sm))
}

/// Active instances in the leader's graph.
fn active_count(sim: &ScaleSim) -> usize {
    let Some((_, sm)) = leader(sim) else { return 0 };
    sm.ha().graph.instances.values().filter(|i| i.state == InstanceState::Active).count()
}

fn received_by(tally: &Rc<RefCell<Tally>>, node: NodeId) -> u64 {
    tally.borrow().received.get(&node).copied().unwrap_or(0)
}

fn rate(count: u64, over: Duration) -> f64 {
    if over.is_zero() { 0.0 } else { count as f64 / over.as_secs_f64() }
}

/// Starts the stations, proxies and operator, then the agents in batches
/// of [`BOOT_BATCH_LEN`] every [`BOOT_BATCH_GAP`], as a data centre's
/// machines come up: 30,000 agents joining in the same millisecond filled
/// the simulator's queue past its flood limit (10 million events) with
/// their joins and retries before the stations had answered any.
fn boot(sim: &mut ScaleSim, agents: u64) {
    let is_agent = |n: &NodeId| (REPLICAS + 1..=REPLICAS + agents).contains(&n.0);
    let (agents, others): (Vec<NodeId>, Vec<NodeId>) = sim.node_ids().iter().copied().partition(is_agent);
    for node in others {
        sim.start(node);
    }
    for batch in agents.chunks(BOOT_BATCH_LEN) {
        sim.run_for(BOOT_BATCH_GAP);
        for &node in batch {
            sim.start(node);
        }
    }
}

fn drive(sim: &mut ScaleSim, tally: &Rc<RefCell<Tally>>, report: &mut ScaleReport) {
    boot(sim, report.config.agents);
    let wanted = report.config.agents as usize / 2
        + (report.config.agents as usize / 2) / REPLICAS_PER_SERVICE as usize * REPLICAS_PER_SERVICE as usize;
    while active_count(sim) < wanted {
        if sim.now() >= SimTime::ZERO + SETTLE_WITHIN || sim.outcome().is_some() {
            return;
        }
        sim.run_for(Duration::from_secs(1));
    }
    report.settled_after = Some(sim.now().saturating_since(SimTime::ZERO));
    let Some((lead, _)) = leader(sim) else { return };
    let before = received_by(tally, lead);
    sim.run_for(STEADY);
    report.leader_rate_before = rate(received_by(tally, lead) - before, STEADY);
    crash_some(sim, tally, report);
    let Some((lead, _)) = leader(sim) else { return };
    let (start, before) = (sim.now(), received_by(tally, lead));
    while !tally.borrow().awaited.is_empty() && sim.now().saturating_since(start) < RECOVERY_WITHIN {
        if sim.outcome().is_some() {
            break;
        }
        sim.run_for(POLL);
    }
    report.leader_rate_during = rate(received_by(tally, lead) - before, sim.now().saturating_since(start));
    let mut recoveries = tally.borrow().recoveries.clone();
    recoveries.sort();
    report.recoveries = recoveries;
}

/// Crashes 1% of the agents and records which singletons lost their primary.
fn crash_some(sim: &mut ScaleSim, tally: &Rc<RefCell<Tally>>, report: &mut ScaleReport) {
    let agents = report.config.agents;
    let count = (agents * CRASH_PERCENT / 100).max(1) as usize;
    let mut rng = derive_rng(sim.seed(), "ha-scale crash", 0, 0);
    let mut victims: Vec<NodeId> =
        sample(&mut rng, agents as usize, count).into_iter().map(|i| NodeId(REPLICAS + 1 + i as u64)).collect();
    victims.sort();
    let Some((lead, sm)) = leader(sim) else { return };
    let graph = &sm.ha().graph;
    let primaries: Vec<&haven_ha::Instance> = graph
        .instances
        .values()
        .filter(|i| i.is_primary() && i.holds())
        .filter(|i| graph.services.get(&i.service).is_some_and(|s| s.spec.is_singleton()))
        .collect();
    if !primaries.iter().any(|i| victims.binary_search(&i.node).is_ok())
        && let Some(first) = primaries.first()
    {
        // A crash that hits no singleton measures nothing: the last victim
        // is swapped for the first singleton's node.
        victims.pop();
        victims.push(first.node);
        victims.sort();
    }
    let mut awaited = BTreeMap::new();
    for instance in primaries.iter().filter(|i| victims.binary_search(&i.node).is_ok()) {
        awaited.insert(instance.service.clone(), instance.token.unwrap_or(0));
    }
    report.crashed = victims.len();
    report.affected = awaited.len();
    {
        let mut t = tally.borrow_mut();
        t.awaited = awaited;
        t.crashed_at = Some(sim.local_now(lead));
    }
    for node in victims {
        sim.crash(node);
    }
}

/// Why the run is not a success although no checker failed.
fn shortfall(report: &ScaleReport) -> Option<String> {
    if report.settled_after.is_none() {
        return Some(format!("the cluster did not settle (every instance active) within {SETTLE_WITHIN:?}"));
    }
    if report.affected == 0 {
        return Some("no singleton lost its primary: the crash missed them all".into());
    }
    let missing = report.affected - report.recoveries.len();
    (missing > 0)
        .then(|| format!("{missing} of {} singletons not active again within {RECOVERY_WITHIN:?}", report.affected))
}
