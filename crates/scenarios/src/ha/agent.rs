//! A simulated Haven agent: joins the coordinator with a store lease, keeps
//! the lease alive, runs the instances it is told to (as state, no
//! processes), reports on them, writes to the protected resource while it
//! runs a primary, and fences itself when it cannot renew its lease.
//!
//! In: replies and commands from station replicas, its timers, and a
//! message from itself (the simulator's way to crash one of its instances:
//! `StationMsg::Agent` naming the instance, sent by the agent's own node).
//! Out: requests, keep-alives and reports to the replicas, writes to the
//! resource, and [`AgentEvent`]s for the checkers and the trace.
//!
//! Session (`agent_session.rs`): grant a lease (TTL `ttl_seconds`), put
//! `haven/agents/n{id}` on it with prev_kv, revoke the lease the previous
//! key named (a previous incarnation's, whose instances died with it: the
//! coordinator fences them at once instead of when that lease lapses) and
//! any lease an earlier session of this incarnation abandoned, then join
//! with the new lease and repeat the join (1 s, 2 s, 4 s ... up to
//! `join_backoff_max`) until a first command shows the node is in the graph.
//! Revoking before joining matters: a join replaces the node's lease at the
//! station, and an old lease that lapses after that no longer kills the
//! node, so its old instances would stay active in the graph. A lease found
//! gone, or a request given up, starts a new session with no instances; a
//! command about an instance of an ended session is refused (the
//! coordinator fenced it). A restarted agent (no disk here) is a new session
//! too: it re-adopts nothing, since its instances died with it.
//!
//! Self-fencing: g is the send time, on this agent's clock, of the latest
//! acknowledged grant or keep-alive; the station keeps the lease at least
//! until g + TTL / (1 + ρ) of real time (ρ = `drift_ppm_max`). The agent
//! serves until g + TTL / (1 + ρ) − `fence_margin` by its own clock; the
//! margin covers its own clock running up to ρ slow (TTL·ρ, under a
//! millisecond here) and a write's trip to the resource. Past it, it stops
//! every primary (standbys have no token and write nothing) and starts or
//! promotes none until a newer acknowledgement. Pauses are covered because
//! the check is made, by the clock, right before every write.
//!
//! Instances and commands (`agent_work.rs`): see [`super::fence`] for which
//! commands are refused as stale.

use super::fence::CommandFence;
use super::proxy::ProxyHost;
use haven_ha::{CommandId, DoneCommands, Event, InstanceId, ProxyConfig, Role};
use haven_runtime::{Component, CtxFor, Instant, IoId, IoResult, NodeId, TimerId};
use haven_station::StationMsg;
use haven_store::{LeaseId, Request};
use rand::RngExt;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub servers: Vec<NodeId>,
    pub resource: NodeId,
    pub ttl_seconds: i64,
    /// ρ, the clock-drift bound the lease's safety is stated under.
    pub drift_ppm_max: u64,
    pub fence_margin: Duration,
    /// A start takes a uniform draw from this range before the instance runs.
    pub start_delay: (Duration, Duration),
    /// A primary writes to the resource this often.
    pub write_interval: Duration,
    /// Running instances and unacknowledged exits are reported this often.
    pub report_interval: Duration,
    pub attempt_timeout: Duration,
    /// Attempts of one request before the session starts over.
    pub attempts_max: u32,
    pub join_backoff_max: Duration,
    pub instances_max: usize,
    /// Report rounds an exit is repeated in.
    pub exit_reports_max: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentTimer {
    Attempt { seq: u64, attempt: u32 },
    KeepAlive { lease: LeaseId },
    KeepAliveTimeout { seq: u64 },
    Fence,
    Write,
    Report,
    Join { lease: LeaseId },
    Up { instance: InstanceId, command: CommandId },
    ProxyTick,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentEvent {
    /// Sent the first join with `lease`.
    Joined {
        lease: LeaseId,
    },
    /// The lease is gone or the session was given up: instances dropped.
    SessionEnded {
        lease: Option<LeaseId>,
    },
    /// Stopped these primaries: the lease could no longer be relied on.
    SelfFenced {
        instances: Vec<InstanceId>,
    },
    Refused {
        command: CommandId,
        error: String,
    },
    /// The stations assigned this node a proxy (`None`: the stations).
    ProxyAssigned {
        proxy: Option<NodeId>,
    },
}

/// Where the session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Granting,
    /// Putting the agent's key on the new lease.
    Recording {
        lease: LeaseId,
    },
    /// Revoking `old`, the previous incarnation's lease.
    Revoking {
        lease: LeaseId,
        old: LeaseId,
    },
    Joined {
        lease: LeaseId,
    },
}

#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) seq: u64,
    pub(crate) request: Request,
    pub(crate) attempt: u32,
    pub(crate) target: usize,
    pub(crate) first_sent: Instant,
}

/// One instance this agent runs.
#[derive(Clone, Debug)]
pub struct Running {
    pub service: String,
    pub role: Role,
    pub token: Option<u64>,
    /// The command that made this incarnation what it is.
    pub command: CommandId,
    /// Past its start delay.
    pub up: bool,
}

/// An exit not known to be seen by the coordinator yet.
#[derive(Clone, Debug)]
pub(crate) struct Exit {
    pub(crate) token: Option<u64>,
    pub(crate) code: Option<i32>,
    pub(crate) reports_left: u32,
}

#[derive(Debug)]
pub struct Agent {
    pub(crate) config: AgentConfig,
    pub(crate) fence: Box<dyn CommandFence>,
    pub(crate) client: u64,
    pub(crate) next_seq: u64,
    pub(crate) leader: usize,
    pub(crate) phase: Phase,
    pub(crate) request: Option<InFlight>,
    /// Keep-alives awaiting an answer: seq → send time (a few at most).
    pub(crate) keep_alives: BTreeMap<u64, Instant>,
    /// The keep-alive the retry chain waits for.
    pub(crate) keep_alive_latest: Option<u64>,
    pub(crate) serve_until: Option<Instant>,
    pub(crate) fence_timer: Option<TimerId>,
    pub(crate) commanded: bool,
    pub(crate) join_backoff: Duration,
    pub(crate) instances: BTreeMap<InstanceId, Running>,
    pub(crate) exits: BTreeMap<InstanceId, Exit>,
    /// Leases of this agent to revoke before the next join: the previous
    /// key's, and this incarnation's abandoned ones.
    pub(crate) to_revoke: BTreeSet<LeaseId>,
    /// Instances commanded in this session.
    pub(crate) session_instances: BTreeSet<InstanceId>,
    /// Commands this incarnation carried out, as the real agent keeps them:
    /// a proxy sends a command again until it hears it was done, and a
    /// start repeated after its instance exited must not start it again.
    pub(crate) done: DoneCommands,
    /// Instances of this incarnation's ended sessions: fenced by the
    /// coordinator when their lease died, so a command about one is stale.
    pub(crate) retired: BTreeSet<InstanceId>,
    /// Set when this agent is a proxy.
    pub(crate) proxy_host: Option<ProxyHost>,
    /// The proxy the stations assigned this node, as last heard.
    pub(crate) proxy: Option<NodeId>,
    /// The proxy left a keep-alive unanswered: the stations until then.
    pub(crate) proxy_silent_until: Option<Instant>,
    /// Keep-alives in a row the proxy left unanswered.
    pub(crate) proxy_misses: u32,
    /// Where the keep-alive the retry chain waits for went (`None`: a station).
    pub(crate) keep_alive_via: Option<NodeId>,
    pub(crate) traffic: Traffic,
}

/// Keep-alives and reports this agent sent, straight to a station or
/// through its proxy (requests, joins and proxy questions always go to a
/// station and count as direct).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub direct: u64,
    pub proxied: u64,
}

impl Agent {
    pub fn new(config: AgentConfig, fence: Box<dyn CommandFence>) -> Agent {
        assert!(!config.servers.is_empty() && config.ttl_seconds > 0 && config.attempts_max > 0);
        Agent {
            proxy_host: None,
            proxy: None,
            proxy_silent_until: None,
            proxy_misses: 0,
            keep_alive_via: None,
            traffic: Traffic::default(),
            config,
            fence,
            client: 0,
            next_seq: 1,
            leader: 0,
            phase: Phase::Granting,
            request: None,
            keep_alives: BTreeMap::new(),
            keep_alive_latest: None,
            serve_until: None,
            fence_timer: None,
            commanded: false,
            join_backoff: Duration::from_secs(1),
            instances: BTreeMap::new(),
            exits: BTreeMap::new(),
            to_revoke: BTreeSet::new(),
            session_instances: BTreeSet::new(),
            done: DoneCommands::default(),
            retired: BTreeSet::new(),
        }
    }

    /// This agent also hosts a proxy (and joins with the proxy label).
    pub fn with_proxy(mut self, config: ProxyConfig) -> Agent {
        self.proxy_host = Some(ProxyHost::new(config, self.config.servers.clone()));
        self
    }

    pub fn instances(&self) -> &BTreeMap<InstanceId, Running> {
        &self.instances
    }

    /// The proxy this agent hosts, if it is one.
    pub fn proxy_host(&self) -> Option<&ProxyHost> {
        self.proxy_host.as_ref()
    }

    /// The proxy the stations assigned, as this agent last heard.
    pub fn assigned_proxy(&self) -> Option<NodeId> {
        self.proxy
    }

    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Where keep-alives and reports go now: the assigned proxy unless it
    /// recently left one unanswered (`None`: the station believed to lead).
    pub(crate) fn route(&self, now: Instant) -> Option<NodeId> {
        self.proxy.filter(|_| self.proxy_silent_until.is_none_or(|until| now >= until))
    }

    /// The lease of the session, once granted.
    pub fn lease(&self) -> Option<LeaseId> {
        match self.phase {
            Phase::Granting => None,
            Phase::Recording { lease } | Phase::Revoking { lease, .. } | Phase::Joined { lease } => Some(lease),
        }
    }

    pub(crate) fn server(&self, index: usize) -> NodeId {
        self.config.servers[index % self.config.servers.len()]
    }

    pub(crate) fn server_index(&self, node: NodeId) -> Option<usize> {
        self.config.servers.iter().position(|&s| s == node)
    }

    pub(crate) fn can_serve(&self, now: Instant) -> bool {
        self.serve_until.is_some_and(|until| now < until)
    }
}

impl Component for Agent {
    type Msg = StationMsg;
    type Timer = AgentTimer;
    type Io = haven_basics::Never;
    type Out = AgentEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.client = (ctx.node().0 << 32) | u64::from(ctx.rng().random::<u32>());
        self.leader = ctx.rng().random_range(0..self.config.servers.len());
        if let Some(host) = self.proxy_host.as_mut() {
            host.start(ctx, self.leader);
        }
        ctx.set_timer(self.config.write_interval, AgentTimer::Write);
        ctx.set_timer(self.config.report_interval, AgentTimer::Report);
        self.new_session(ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        match msg {
            StationMsg::Reply(reply) if reply.client == self.client => self.on_reply(ctx, from, reply),
            StationMsg::KeepAliveReply(reply) if reply.client == self.client => {
                self.on_keep_alive_reply(ctx, from, reply)
            }
            StationMsg::Agent(command) if from == ctx.node() => self.crash_instance(ctx, command.instance),
            StationMsg::Agent(command) if self.server_index(from).is_some() || Some(from) == self.proxy => {
                self.on_command(ctx, command)
            }
            StationMsg::ProxyAssigned { node, proxy } if node == ctx.node() => self.on_assigned(ctx, proxy),
            msg => self.on_proxy_message(ctx, from, msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, _id: TimerId, timer: AgentTimer) {
        match timer {
            AgentTimer::Attempt { seq, attempt } => self.on_attempt_timeout(ctx, seq, attempt),
            AgentTimer::KeepAlive { lease } if self.lease() == Some(lease) => self.send_keep_alive(ctx, lease),
            AgentTimer::KeepAlive { .. } => {}
            AgentTimer::KeepAliveTimeout { seq } => self.on_keep_alive_timeout(ctx, seq),
            AgentTimer::Fence => {
                self.fence_timer = None;
                self.fence_if_due(ctx);
            }
            AgentTimer::Write => {
                self.write(ctx);
                ctx.set_timer(self.config.write_interval, AgentTimer::Write);
            }
            AgentTimer::Report => {
                self.report_state(ctx);
                ctx.set_timer(self.config.report_interval, AgentTimer::Report);
            }
            AgentTimer::Join { lease } => self.rejoin(ctx, lease),
            AgentTimer::Up { instance, command } => self.up(ctx, instance, command),
            AgentTimer::ProxyTick => {
                if let Some(host) = self.proxy_host.as_mut() {
                    host.on_tick(ctx);
                }
            }
        }
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, tag: haven_basics::Never, _result: IoResult) {
        match tag {}
    }
}

impl Agent {
    /// The stations (or this node's proxy) named the proxy to use.
    fn on_assigned(&mut self, ctx: &mut impl CtxFor<Self>, proxy: Option<NodeId>) {
        if self.proxy != proxy {
            self.proxy = proxy;
            self.proxy_silent_until = None;
            self.proxy_misses = 0;
            ctx.output(AgentEvent::ProxyAssigned { proxy });
        }
    }

    /// What a proxy takes from agents and stations; anything else is dropped.
    fn on_proxy_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        let from_station = self.server_index(from).is_some();
        let Some(host) = self.proxy_host.as_mut() else { return };
        match msg {
            StationMsg::KeepAlive(request) if !from_station => host.on_keep_alive(ctx, from, request),
            StationMsg::HaReport(haven_station::HaReport::Event(event)) if !from_station => {
                host.on_report(ctx, from, event)
            }
            StationMsg::ProxyAnswer(answer) if from_station => host.on_answer(ctx, from, answer),
            StationMsg::ProxyCommands(commands) if from_station => host.on_commands(ctx, commands),
            _ => {}
        }
    }

    /// Asks the station believed to lead which proxy to use (while talking
    /// to the stations; a proxy itself always does).
    pub(crate) fn ask_proxy(&mut self, ctx: &mut impl CtxFor<Self>) {
        if self.proxy_host.is_none() && self.route(ctx.now()).is_none() {
            self.traffic.direct += 1;
            ctx.send(self.server(self.leader), StationMsg::ProxyQuery { node: ctx.node() });
        }
    }

    /// Sends `event` through the proxy, or to the station believed to lead.
    pub(crate) fn report(&mut self, ctx: &mut impl CtxFor<Self>, event: Event) {
        if let Event::CommandDone { command } = event {
            self.done.remember(command);
        }
        let report = StationMsg::HaReport(haven_station::HaReport::Event(event));
        match self.route(ctx.now()) {
            Some(proxy) => {
                self.traffic.proxied += 1;
                ctx.send(proxy, report);
            }
            None => {
                self.traffic.direct += 1;
                ctx.send(self.server(self.leader), report);
            }
        }
    }
}
