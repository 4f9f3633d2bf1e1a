//! The `ha-failover` scenario.
//!
//! In: a seed (and, for planted bugs, a replica constructor and the agents'
//! command fence). Out: a [`RunReport`]; its violation names a broken Raft
//! invariant, an old holder whose write the resource accepted after a newer
//! holder's, or a service not running as wanted after healing.
//!
//! Nodes: n1-n3 station replicas, n4-n23 agents, n24 the protected
//! resource, n25 the operator, n26-n27 proxies (agents that joined with the
//! proxy label and host a proxy; they may run instances too). Agents report
//! through the proxy the stations assign them, and to the stations directly
//! while they have none or it stops answering. See [`SUMMARY`] for the
//! services, faults and checks.
//!
//! Links: the default LAN (1% loss, 1% duplication). Replica → agent links
//! (commands and replies) add a slow path: 3% of messages take 0.1-1.5 s, so
//! commands arrive late and out of order, which is what the agents' token
//! and command checks are for. Agent → resource links are fast (0.1-1 ms),
//! with 1% loss and no duplication: the resource does not check tokens, so a
//! write delayed in the network beyond the agents' fencing margin would look
//! like a stale holder; a real resource refuses such a write by its token.
//! Replica → proxy links are slow like replica → agent ones (commands go
//! that way too).

use super::agent::{Agent, AgentConfig};
use super::checks::ResourceChecks;
use super::faults as ha_faults;
use super::fence::{CommandFence, TokenFence};
use super::fence_device::{self, DeviceKind, FenceDevice, SharedDevice};
use super::operator::{Operator, OperatorConfig};
use super::resource::Resource;
use crate::kv::faults::{self, FaultMix};
use crate::kv::invariants::RaftInvariants;
use crate::kv::lease::DRIFT_PPM_MAX;
use crate::kv::node::{KvNode, StationReplica};
use haven_ha::{ProxyConfig, ServiceKind, ServiceSpec};
use haven_runtime::NodeId;
use haven_sim::{Dist, LinkConfig, Process, RunReport, Scenario, Sim, SimConfig, TraceSink, actions};
use haven_station::{FenceConfig, Replica, ReplicaConfig};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub const SUMMARY: &str = "3 station replicas (Raft + WAL + store + the coordinator on the leader), 2 proxies (agents \
that batch the keep-alives and reports of the agents assigned to them every 20 ms), 20 simulated agents (store lease TTL 2 s renewed every TTL/3, self-fencing at g + TTL/(1 + 200 ppm) - 50 ms after the \
send time g of the last acknowledged keep-alive), a protected resource that records every write without checking \
tokens, and an operator adding 4 services: 2 singletons with preferred nodes, 1 singleton with a standby and a \
promote command, 1 replicated service of 2. Primaries write every 50 ms. 1% loss and duplication, 3% of replica -> \
agent messages late by 0.1-1.5 s, clocks within ±200 ppm. For about 15 s: agent crashes (restarted 0.5-6 s later, \
as a new incarnation that revokes its old lease), agent pauses up to 4 s, agents cut from the stations (both ways or \
one way) but not from the resource, proxy crashes, proxies cut from the stations or from \
the agents, replica crashes, pauses, isolation and leadership transfers, crashed instances. \
Safety, after every event: Raft's invariants; per singleton, the tokens the resource accepted never go back (per \
instance for the replicated service). Liveness: within 3 x TTL + 5 s of healing, and for 2 s more, the leader's \
graph has exactly one active primary per singleton and 2 of the replicated service, and each of them writes. \
One seed in three (seed % 3 == 1) gives the stations a fence device, used after 1.2 s of a holder's silence: it \
powers the node off (agent and instances crash, the machine boots again 0.2-6 s later) and confirms 10-800 ms \
later; one attempt in ten fails, one in ten hangs. Safety then also: a node reported fenced runs no singleton \
primary while another node runs a newer one.";

pub const REPLICAS: u64 = 3;
pub const AGENTS: u64 = 20;
const FIRST_AGENT: u64 = REPLICAS + 1;
const LAST_AGENT: u64 = REPLICAS + AGENTS;
pub const RESOURCE: NodeId = NodeId(LAST_AGENT + 1);
const OPERATOR: NodeId = NodeId(LAST_AGENT + 2);
pub const PROXIES: u64 = 2;
const FIRST_PROXY: u64 = OPERATOR.0 + 1;
const LAST_PROXY: u64 = OPERATOR.0 + PROXIES;
pub const TTL_SECONDS: i64 = 2;
/// Covers an agent's own clock running slow over a TTL (under 1 ms at 200
/// ppm) and a write's trip to the resource (at most 1 ms), with room.
pub const FENCE_MARGIN: Duration = Duration::from_millis(50);
/// Healing to convergence: a lease of a dead incarnation lapses (TTL plus a
/// new leader's extension), a replacement is decided, committed and started,
/// and a restart policy may need a few rounds.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(3 * TTL_SECONDS as u64 + 5);
pub const HOLD_FOR: Duration = Duration::from_secs(2);
/// Small, so snapshots (with the HA state) are taken and installed often.
const SNAPSHOT_ENTRIES: u64 = 500;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn run(seed: u64, trace: Option<TraceSink>) -> RunReport {
    run_with(seed, trace, Replica::new, TokenFence::boxed)
}

/// One seed with any replica and any agent fence (tests plant broken ones).
pub fn run_with<R: StationReplica>(
    seed: u64,
    trace: Option<TraceSink>,
    make_replica: impl Fn(ReplicaConfig) -> R + 'static,
    make_fence: fn() -> Box<dyn CommandFence>,
) -> RunReport {
    run_with_device(seed, trace, make_replica, make_fence, DeviceKind::Honest)
}

/// As [`run_with`], with the kind of fence device the seeds that have one
/// get (`fence_device::configured`).
pub fn run_with_device<R: StationReplica>(
    seed: u64,
    trace: Option<TraceSink>,
    make_replica: impl Fn(ReplicaConfig) -> R + 'static,
    make_fence: fn() -> Box<dyn CommandFence>,
    kind: DeviceKind,
) -> RunReport {
    let (mut sim, scenario) = prepare(seed, trace, make_replica, make_fence, kind);
    sim.run(scenario)
}

/// One seed of the scenario, and where the agents' traffic went by its end.
pub fn run_figures(seed: u64) -> (RunReport, ProxyFigures) {
    let (mut sim, scenario) = prepare(seed, None, Replica::new, TokenFence::boxed, DeviceKind::Honest);
    let report = sim.run(scenario);
    (report, proxy_figures(&sim))
}

/// The seed's simulation with its fence device (if the seed has one) and
/// its checkers installed, and the scenario to run on it.
fn prepare<R: StationReplica>(
    seed: u64,
    trace: Option<TraceSink>,
    make_replica: impl Fn(ReplicaConfig) -> R + 'static,
    make_fence: fn() -> Box<dyn CommandFence>,
    kind: DeviceKind,
) -> (Sim<KvNode<R>>, Scenario<KvNode<R>>) {
    let (device, policy) = device_for(seed, kind);
    let mut sim = build_with(seed, make_replica, make_fence, policy);
    if let Some(sink) = trace {
        sim.set_trace(sink);
    }
    install_checks(&mut sim, device.clone());
    (sim, scenario::<R>(device))
}

/// The seed's fence device and the stations' policy for it, if it has one.
fn device_for(seed: u64, kind: DeviceKind) -> (Option<SharedDevice>, Option<FenceConfig>) {
    match fence_device::configured(seed) {
        true => (Some(FenceDevice::shared(kind, &services())), Some(fence_device::station_policy())),
        false => (None, None),
    }
}

/// The scenario's nodes and links, nothing started and no checker (tests
/// drive it by hand); no fence device.
pub fn build<R: StationReplica>(
    seed: u64,
    make_replica: impl Fn(ReplicaConfig) -> R + 'static,
    make_fence: fn() -> Box<dyn CommandFence>,
) -> Sim<KvNode<R>> {
    build_with(seed, make_replica, make_fence, None)
}

/// As [`build`], with the stations' fencing policy given (the scenario
/// gives `fence_device::station_policy` on the seeds with a device).
pub fn build_with<R: StationReplica>(
    seed: u64,
    make_replica: impl Fn(ReplicaConfig) -> R + 'static,
    make_fence: fn() -> Box<dyn CommandFence>,
    fence: Option<FenceConfig>,
) -> Sim<KvNode<R>> {
    let voters: Vec<NodeId> = (1..=REPLICAS).map(NodeId).collect();
    let agent_config = agent_config(voters.clone());
    let operator_config = OperatorConfig { servers: voters.clone(), services: services(), round: ms(500) };
    let factory = move |id: NodeId| match id.0 {
        n if n <= REPLICAS => {
            let mut config = ReplicaConfig::new(voters.clone());
            config.snapshot_entries = SNAPSHOT_ENTRIES;
            config.fence = fence.clone();
            KvNode::Replica(Box::new(make_replica(config)))
        }
        n if n <= LAST_AGENT => KvNode::Agent(Box::new(Agent::new(agent_config.clone(), make_fence()))),
        _ if id == RESOURCE => KvNode::Resource(Box::new(Resource::new())),
        _ if id == OPERATOR => KvNode::Operator(Box::new(Operator::new(operator_config.clone()))),
        _ => KvNode::Agent(Box::new(Agent::new(agent_config.clone(), make_fence()).with_proxy(proxy_config()))),
    };
    let mut config = SimConfig::new(seed, LAST_PROXY as usize);
    config.link = LinkConfig { latency: Dist::lan(), loss_probability: 0.01, duplicate_probability: 0.01 };
    let mut sim = Sim::new(config, factory).expect("the ha-failover configuration is valid");
    set_links(&mut sim);
    sim
}

/// Where the agents' keep-alives and reports went, summed over the agents
/// (not the proxies) that run now, and the batches the proxies sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyFigures {
    pub direct: u64,
    pub proxied: u64,
    pub batches: u64,
}

pub fn proxy_figures<R: StationReplica>(sim: &Sim<KvNode<R>>) -> ProxyFigures {
    let mut figures = ProxyFigures::default();
    for node in (FIRST_AGENT..=LAST_PROXY).map(NodeId) {
        let Some(agent) = sim.component(node).and_then(KvNode::agent) else { continue };
        match agent.proxy_host() {
            Some(host) => figures.batches += host.batches_sent(),
            None => {
                figures.direct += agent.traffic().direct;
                figures.proxied += agent.traffic().proxied;
            }
        }
    }
    figures
}

/// The agents' node ids, and the proxies'.
pub fn agent_ids() -> std::ops::RangeInclusive<u64> {
    FIRST_AGENT..=LAST_AGENT
}

pub fn proxy_ids() -> std::ops::RangeInclusive<u64> {
    FIRST_PROXY..=LAST_PROXY
}

fn set_links<R: StationReplica>(sim: &mut Sim<KvNode<R>>) {
    let late =
        Dist::tail(0.03, Dist::uniform(ms(0) + Duration::from_micros(100), ms(1)), Dist::uniform(ms(100), ms(1_500)));
    let commands = LinkConfig { latency: late, loss_probability: 0.01, duplicate_probability: 0.01 };
    let fast = Dist::uniform(Duration::from_micros(100), ms(1));
    let writes = LinkConfig { latency: fast, loss_probability: 0.01, duplicate_probability: 0.0 };
    for agent in (FIRST_AGENT..=LAST_AGENT).chain(FIRST_PROXY..=LAST_PROXY).map(NodeId) {
        sim.set_link(agent, RESOURCE, writes.clone()).expect("a valid link");
        for replica in (1..=REPLICAS).map(NodeId) {
            sim.set_link(replica, agent, commands.clone()).expect("a valid link");
        }
    }
}

fn install_checks<R: StationReplica>(sim: &mut Sim<KvNode<R>>, device: Option<SharedDevice>) {
    let invariants = Rc::new(RefCell::new(RaftInvariants::default()));
    let resource = Rc::new(RefCell::new(ResourceChecks::new(services())));
    let (i, r) = (invariants.clone(), resource.clone());
    sim.add_safety("raft invariants and fencing tokens at the resource", move |sim| {
        i.borrow_mut().check(sim)?;
        r.borrow_mut().observe(sim)?;
        match &device {
            Some(device) => device.borrow_mut().observe_and_check(sim),
            None => Ok(()),
        }
    });
    sim.add_liveness("every service runs as wanted and writes", CONVERGE_WITHIN, HOLD_FOR, move |sim| {
        resource.borrow().converged(sim)
    });
}

fn agent_config(servers: Vec<NodeId>) -> AgentConfig {
    AgentConfig {
        servers,
        resource: RESOURCE,
        ttl_seconds: TTL_SECONDS,
        drift_ppm_max: DRIFT_PPM_MAX,
        fence_margin: FENCE_MARGIN,
        start_delay: (ms(50), ms(300)),
        write_interval: ms(50),
        report_interval: ms(500),
        attempt_timeout: ms(250),
        attempts_max: 20,
        join_backoff_max: secs(8),
        instances_max: 64,
        exit_reports_max: 20,
    }
}

/// A proxy flushes every 20 ms; it waits 200 ms for the leader's answer
/// (a keep-alive's own attempt lasts 250 ms).
fn proxy_config() -> ProxyConfig {
    ProxyConfig {
        agents_max: 64,
        batch_len_max: 256,
        queue_len_max: 1_024,
        flush_interval_ms: 20,
        reply_timeout_ms: 200,
        agent_idle_ms: 10_000,
        commands_len_max: 1_024,
        report_age_ms_max: 500,
    }
}

/// What the operator adds: two singletons with preferred nodes, one with a
/// standby and a promote command, and a replicated service of 2.
pub fn services() -> Vec<ServiceSpec> {
    let singleton = |name: &str, standbys: u32, preferred: &[u64]| {
        let mut spec = ServiceSpec::new(name, &format!("/usr/bin/{name}"), ServiceKind::Singleton { standbys });
        spec.placement.preferred = preferred.iter().map(|&n| NodeId(n)).collect();
        spec.start_timeout_ms = 3_000;
        spec.stop_timeout_ms = 1_000;
        spec
    };
    let mut ledger = singleton("ledger", 1, &[12, 13, 14]);
    ledger.promote = Some("/usr/bin/ledger-promote".into());
    let mut web = ServiceSpec::new("web", "/usr/bin/web", ServiceKind::Replicated { count: 2 });
    web.start_timeout_ms = 3_000;
    vec![singleton("db", 0, &[4, 5, 6]), singleton("queue", 0, &[9, 8]), ledger, web]
}

fn scenario<R: StationReplica>(device: Option<SharedDevice>) -> Scenario<KvNode<R>> {
    let agents = FIRST_AGENT..=LAST_AGENT;
    let proxies = FIRST_PROXY..=LAST_PROXY;
    let mut s = Scenario::new();
    s.add(Process::new("clocks", 1, Dist::ZERO, actions::randomize_clocks(secs(5), DRIFT_PPM_MAX as i64)));
    let nodes = LAST_PROXY as u32;
    let boot = s.add(Process::new("boot", nodes, Dist::uniform(ms(0), ms(50)), actions::start_each()));
    if let Some(device) = device {
        s.add(fence_device::process(device).after_end_of(boot, Duration::ZERO));
    }
    let mix = FaultMix {
        crashes: (2, 5),
        pauses: (2, 5),
        partitions: (0, 1),
        clogs: (0, 1),
        transfers: (2, 5),
        unsynced_checks: 100,
    };
    let mut faults = faults::add_replica_faults(&mut s, boot, REPLICAS, mix);
    let every = |mean_ms: u64| Dist::exponential(ms(mean_ms));
    let agent_down = Dist::uniform(ms(500), secs(6));
    let processes = vec![
        Process::new(
            "agent-crash",
            4,
            every(3_000),
            ha_faults::crash_restart_agent(agents.clone(), agent_down.clone()),
        ),
        Process::new(
            "agent-pause",
            4,
            every(3_000),
            ha_faults::pause_agent(agents.clone(), Dist::uniform(ms(200), secs(4))),
        ),
        Process::new(
            "agent-cut",
            4,
            every(3_000),
            ha_faults::cut_agents(agents.clone(), REPLICAS, Dist::uniform(ms(500), secs(4))),
        ),
        Process::new(
            "replica-isolate",
            2,
            every(5_000),
            ha_faults::isolate_replica(REPLICAS, Dist::uniform(ms(500), secs(3))),
        ),
        Process::new("instance-crash", 10, every(1_200), ha_faults::crash_instance(agents.clone())),
        Process::new("proxy-crash", 2, every(5_000), ha_faults::crash_restart_agent(proxies.clone(), agent_down)),
        Process::new(
            "proxy-cut",
            2,
            every(5_000),
            ha_faults::cut_proxy(proxies, agents, REPLICAS, Dist::uniform(ms(500), secs(4))),
        ),
    ];
    for process in processes {
        faults.push(s.add(process.after_end_of(boot, secs(2))));
    }
    s.end_after(&faults, secs(1));
    s
}
