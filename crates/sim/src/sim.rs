//! The simulator: N nodes of one component type in one thread.
//!
//! In: a [`SimConfig`], a factory building a node's component, checkers,
//! and either a [`Scenario`] to run or direct calls (`run_for`, fault
//! methods) from a test. Out: the run's [`RunReport`], observations for
//! checkers while it runs, and the trace.
//!
//! The world advances one event at a time, in (time, sequence) order. This
//! file holds the state, the observation API and the run loop; event
//! handling is in `dispatch.rs`, fault injection in `faults.rs`, checkers in
//! `check.rs` and scenario processes in `scenario.rs`.

use crate::check::Checks;
use crate::config::SimConfig;
use crate::disk::SimDisk;
use crate::error::ConfigError;
use crate::event::{EventKind, EventQueue};
use crate::hash::derive_rng;
use crate::network::Network;
use crate::node::{Node, NodeState};
use crate::peers::{PeerMap, PeerMaps};
use crate::report::{Outcome, RunReport, Violation};
use crate::scenario::{ProcState, Scenario, ScenarioEnd};
use crate::time::SimTime;
use crate::trace::{Trace, TraceSink};
use haven_runtime::{Component, Effect, Instant, NodeId};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::time::Duration;

/// A closure scheduled with [`Sim::after`]; it gets the simulator and the
/// RNG stream reserved for such follow-ups.
pub type Call<C> = Box<dyn FnOnce(&mut Sim<C>, &mut ChaCha8Rng)>;

/// Running totals, for checkers and for judging a scenario's intensity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events processed (stale and deferred events are not counted).
    pub events: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_dropped: u64,
    pub messages_duplicated: u64,
    pub timers_fired: u64,
    pub io_completed: u64,
}

/// The deterministic simulator. See the crate documentation for an example.
pub struct Sim<C: Component> {
    pub(crate) seed: u64,
    pub(crate) config: SimConfig,
    pub(crate) now: SimTime,
    pub(crate) queue: EventQueue<C::Msg>,
    pub(crate) nodes: Vec<Node<C>>,
    pub(crate) ids: Vec<NodeId>,
    pub(crate) factory: Box<dyn FnMut(NodeId) -> C>,
    pub(crate) net: Network<C::Msg>,
    /// The nodes' peer maps, if the scenario set a policy.
    pub(crate) peers: Option<PeerMaps<C::Out>>,
    pub(crate) net_rng: ChaCha8Rng,
    pub(crate) send_seq: u64,
    /// Reused for every host call.
    pub(crate) effects: Vec<Effect<C::Msg, C::Out>>,
    pub(crate) outputs: Vec<(NodeId, C::Out)>,
    pub(crate) trace: Trace,
    pub(crate) counters: Counters,
    pub(crate) faults_changed_at: SimTime,
    pub(crate) faults_over_at: Option<SimTime>,
    pub(crate) checks: Checks<C>,
    pub(crate) calls: Vec<Option<Call<C>>>,
    pub(crate) calls_free: Vec<u32>,
    pub(crate) calls_pending: usize,
    /// `None` only while a follow-up call borrows it.
    pub(crate) call_rng: Option<ChaCha8Rng>,
    pub(crate) procs: Vec<ProcState<C>>,
    pub(crate) scenario_end: Option<ScenarioEnd>,
    pub(crate) heal_hook: Option<crate::scenario::HealHook<C>>,
    pub(crate) end_requested: bool,
    /// True while an event is processed; control calls made from outside
    /// (a test driving the simulator) run the checkers themselves.
    pub(crate) in_event: bool,
    pub(crate) outcome: Option<Outcome>,
}

impl<C: Component> fmt::Debug for Sim<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("queued", &self.queue.len())
            .field("nodes", &self.nodes)
            .field("counters", &self.counters)
            .field("outcome", &self.outcome)
            .finish()
    }
}

impl<C: Component + 'static> Sim<C> {
    /// A world of `config.nodes` nodes, none started yet; `factory` builds a
    /// node's component at every start and restart.
    pub fn new(config: SimConfig, factory: impl FnMut(NodeId) -> C + 'static) -> Result<Sim<C>, ConfigError> {
        config.validate()?;
        let seed = config.seed;
        let ids: Vec<NodeId> = (1..=config.nodes as u64).map(NodeId).collect();
        let nodes = ids
            .iter()
            .map(|id| Node::new(*id, SimDisk::new(config.disk.clone(), derive_rng(seed, "disk", id.0, 0))))
            .collect();
        Ok(Sim {
            seed,
            now: SimTime::ZERO,
            queue: EventQueue::new(),
            nodes,
            factory: Box::new(factory),
            net: Network::new(ids.len(), config.link.clone(), config.clog_held_len_max),
            peers: None,
            net_rng: derive_rng(seed, "net", 0, 0),
            ids,
            send_seq: 0,
            effects: Vec::new(),
            outputs: Vec::new(),
            trace: Trace::new(),
            counters: Counters::default(),
            faults_changed_at: SimTime::ZERO,
            faults_over_at: None,
            checks: Checks::default(),
            calls: Vec::new(),
            calls_free: Vec::new(),
            calls_pending: 0,
            call_rng: Some(derive_rng(seed, "calls", 0, 0)),
            procs: Vec::new(),
            scenario_end: None,
            heal_hook: None,
            end_requested: false,
            in_event: false,
            outcome: None,
            config,
        })
    }

    /// Sends one readable line per event and fault to `sink`. Off by default;
    /// the hash is computed either way and does not depend on it.
    /// Gives every node a peer map, as the production executor has: a
    /// message passes only between two nodes that have each other in their
    /// maps, or as guests (see `peers.rs`; a node whose map is `None`
    /// talks to anyone). `initial` is a
    /// node's map at every start and restart; `announced` reads a new map
    /// from a node's output, if that output carries one. Set before the
    /// nodes start.
    pub fn set_peer_policy(
        &mut self,
        initial: impl Fn(NodeId) -> Option<PeerMap> + 'static,
        announced: impl Fn(NodeId, &C::Out) -> Option<PeerMap> + 'static,
    ) {
        assert!(self.nodes.iter().all(|n| !n.ever_started), "the peer policy is set before any node starts");
        self.peers = Some(PeerMaps::new(self.ids.len(), Box::new(initial), Box::new(announced)));
    }

    pub fn set_trace(&mut self, sink: impl FnMut(&str) + 'static) {
        self.trace.set_sink(Some(Box::new(sink) as TraceSink));
    }

    /// The same with a boxed sink, or `None` to stop tracing.
    pub fn set_trace_sink(&mut self, sink: Option<TraceSink>) {
        self.trace.set_sink(sink);
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    pub fn node_ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// The index of `node`, or `None` if it is not one of this simulation's.
    pub(crate) fn index(&self, node: NodeId) -> Option<usize> {
        let i = usize::try_from(node.0.checked_sub(1)?).ok()?;
        (i < self.nodes.len()).then_some(i)
    }

    /// # Panics
    /// If `node` is not one of [`Sim::node_ids`]: that is a bug in the test.
    pub(crate) fn expect_index(&self, node: NodeId) -> usize {
        self.index(node).unwrap_or_else(|| panic!("{node} is not a node of this simulation (n1..=n{})", self.ids.len()))
    }

    pub fn state(&self, node: NodeId) -> NodeState {
        self.nodes[self.expect_index(node)].state()
    }

    /// Running and not paused.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.state(node) == NodeState::Up
    }

    pub fn is_paused(&self, node: NodeId) -> bool {
        self.state(node) == NodeState::Paused
    }

    /// The node's component if it is running (paused or not).
    pub fn component(&self, node: NodeId) -> Option<&C> {
        self.nodes[self.expect_index(node)].host.as_ref().map(|h| h.component())
    }

    /// Starts so far (0 before the first).
    pub fn incarnation(&self, node: NodeId) -> u32 {
        self.nodes[self.expect_index(node)].incarnation
    }

    /// The node's own clock now.
    pub fn local_now(&self, node: NodeId) -> Instant {
        self.nodes[self.expect_index(node)].clock.local(self.now)
    }

    pub fn disk(&self, node: NodeId) -> &SimDisk {
        &self.nodes[self.expect_index(node)].disk
    }

    /// Neither blocked by a partition nor clogged.
    pub fn link_open(&self, from: NodeId, to: NodeId) -> bool {
        let (f, t) = (self.expect_index(from), self.expect_index(to));
        !self.net.blocked(f, t) && !self.net.clogged(f, t)
    }

    /// The last time any crash, start, restart, pause, resume, partition,
    /// heal, clog or unclog happened.
    pub fn faults_changed_at(&self) -> SimTime {
        self.faults_changed_at
    }

    /// When the faults were declared over, if they were.
    pub fn faults_over_at(&self) -> Option<SimTime> {
        self.faults_over_at
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The outputs produced by the event just processed.
    pub fn last_outputs(&self) -> &[(NodeId, C::Out)] {
        &self.outputs
    }

    pub fn trace_hash(&self) -> u64 {
        self.trace.value()
    }

    /// `None` while the run goes on.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    pub fn report(&self) -> RunReport {
        RunReport {
            seed: self.seed,
            trace_hash: self.trace.value(),
            outcome: self.outcome.clone().unwrap_or(Outcome::Ok),
            events: self.counters.events,
            sim_time: self.now,
        }
    }

    /// Runs `scenario` to its end (or to a violation or a limit).
    pub fn run(&mut self, scenario: Scenario<C>) -> RunReport {
        if let Err(err) = self.install(scenario) {
            self.stop(Violation { checker: "scenario".into(), at: self.now, detail: err.to_string() });
        }
        while self.step() {}
        if self.outcome.is_none() {
            self.outcome = Some(Outcome::Ok);
        }
        self.trace.emit();
        self.report()
    }

    /// Processes every event due up to `now + duration`, then sets the time
    /// to it (unless the run stopped first).
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        while self.queue.next_at().is_some_and(|at| at <= until) && self.step() {}
        if self.outcome.is_none() {
            self.now = self.now.max(until);
        }
        self.trace.emit();
    }

    /// Processes the next event. False once the run has stopped or nothing
    /// is left to do.
    pub fn step(&mut self) -> bool {
        if self.outcome.is_some() {
            return false;
        }
        let Some(at) = self.queue.next_at() else { return false };
        if at > SimTime::ZERO + self.config.time_max {
            self.stop_at_time_max();
            return false;
        }
        let event = self.queue.pop().expect("peeked");
        self.now = event.at;
        self.outputs.clear();
        self.in_event = true;
        let processed = self.dispatch(event.kind);
        self.in_event = false;
        if processed {
            self.trace.u64(self.now.as_nanos());
            self.counters.events += 1;
            self.trace.emit();
            self.after_event();
        }
        true
    }

    /// After a call from outside any event that ran a component (a test
    /// starting a node), the checkers see its outputs as after an event.
    pub(crate) fn after_external_call(&mut self) {
        if !self.in_event && self.outcome.is_none() {
            self.trace.emit();
            self.run_checks();
            self.outputs.clear();
        }
    }

    fn after_event(&mut self) {
        self.run_checks();
        if self.outcome.is_some() {
            return;
        }
        if self.end_requested {
            self.outcome = Some(Outcome::Ok);
        } else if self.counters.events >= self.config.events_max {
            let detail = format!("{} events processed: livelock or runaway scenario", self.counters.events);
            self.stop(Violation { checker: "limit".into(), at: self.now, detail });
        } else if self.queue.len() > self.config.queued_len_max {
            let detail = format!("{} events queued: a message flood or a timer leak", self.queue.len());
            self.stop(Violation { checker: "limit".into(), at: self.now, detail });
        }
    }

    fn stop_at_time_max(&mut self) {
        if self.scenario_end.is_some() && !self.end_requested {
            let detail = format!("time_max {:?} reached before the scenario's end step", self.config.time_max);
            self.stop(Violation { checker: "limit".into(), at: self.now, detail });
        } else {
            self.outcome = Some(Outcome::Ok);
        }
    }

    /// Ends the run with `violation`.
    pub(crate) fn stop(&mut self, violation: Violation) {
        if self.trace.on() {
            use std::fmt::Write as _;
            let _ = write!(self.trace.begin(self.now), "VIOLATION {violation}");
            self.trace.emit();
        }
        self.outcome = Some(Outcome::Violation(violation));
    }

    pub(crate) fn push(&mut self, at: SimTime, kind: EventKind<C::Msg>) {
        self.queue.push(at.max(self.now), kind);
    }

    /// Schedules `f` to run `delay` from now, as an event of its own (the
    /// checkers run after it). Used by scenario actions for follow-ups, such
    /// as the restart after a crash.
    ///
    /// Beyond `calls_pending_max` pending calls the run stops with a
    /// `limit` violation (a runaway scenario).
    pub fn after(&mut self, delay: Duration, f: impl FnOnce(&mut Sim<C>, &mut ChaCha8Rng) + 'static) {
        if self.calls_pending >= self.config.calls_pending_max {
            let detail = format!("{} calls pending: a runaway scenario", self.calls_pending);
            return self.stop(Violation { checker: "limit".into(), at: self.now, detail });
        }
        let call: Call<C> = Box::new(f);
        let slot = match self.calls_free.pop() {
            Some(slot) => {
                self.calls[slot as usize] = Some(call);
                slot
            }
            None => {
                self.calls.push(Some(call));
                u32::try_from(self.calls.len() - 1).expect("calls bounded by calls_pending_max")
            }
        };
        self.calls_pending += 1;
        self.push(self.now + delay, EventKind::Call { slot });
    }

    pub(crate) fn run_call(&mut self, slot: u32) {
        let call = self.calls[slot as usize].take().expect("a call event runs its slot once");
        self.calls_free.push(slot);
        self.calls_pending -= 1;
        self.trace.tag("call");
        let mut rng = self.call_rng.take().expect("calls do not nest");
        call(self, &mut rng);
        self.call_rng = Some(rng);
    }
}
