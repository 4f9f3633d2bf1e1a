//! Fault injection and node control.
//!
//! In: calls from tests and scenario actions: start, crash, restart, pause,
//! clock changes, partitions, clogs, disk faults, heal. Out: the changed
//! world, a trace line and a hash entry per call, and `faults_changed_at`.
//!
//! Once the faults are declared over (`faults_over`), calls that would
//! inject a new fault are ignored (and traced as such): follow-ups scheduled
//! earlier, such as the next step of a swizzle, must not break the liveness
//! phase. Calls that repair (start, restart, resume, heal, unclog) still act.

use crate::clock::Clock;
use crate::error::ConfigError;
use crate::event::EventKind;
use crate::hash::derive_rng;
use crate::network::LinkConfig;
use crate::sim::Sim;
use haven_runtime::{Component, Host, NodeId};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::time::Duration;

impl<C: Component + 'static> Sim<C> {
    /// True (and traced) if the faults are over, so `what` must not happen.
    fn refused(&mut self, what: &str) -> bool {
        if self.faults_over_at.is_none() {
            return false;
        }
        if self.trace.on() {
            let _ = write!(self.trace.begin(self.now), "ignored {what}: faults are over");
        }
        true
    }

    /// Notes a change of the faults: when, and in the hash.
    pub(crate) fn fault_changed(&mut self, what: &'static str, a: usize, b: usize) {
        self.faults_changed_at = self.now;
        self.trace.tag(what);
        self.trace.u64(self.now.as_nanos());
        self.trace.u64(a as u64);
        self.trace.u64(b as u64);
    }

    fn trace_line(&mut self, line: std::fmt::Arguments<'_>) {
        if self.trace.on() {
            let _ = self.trace.begin(self.now).write_fmt(line);
        }
    }

    /// Starts `node` if it is down: a new component from the factory, a new
    /// incarnation, and `on_start` with the node's disk as it was left.
    pub fn start(&mut self, node: NodeId) {
        let i = self.expect_index(node);
        if self.nodes[i].host.is_some() {
            return;
        }
        if !self.in_event {
            // Checkers after this call must see its outputs only, not those
            // of the last event, which they have already judged.
            self.outputs.clear();
        }
        let component = (self.factory)(node);
        let n = &mut self.nodes[i];
        n.incarnation += 1;
        n.ever_started = true;
        let rng = derive_rng(self.seed, "node", node.0, u64::from(n.incarnation));
        if let Some(peers) = &mut self.peers {
            peers.started(i, node);
        }
        let n = &mut self.nodes[i];
        let host = n.host.insert(Host::new(node, component, rng));
        let incarnation = n.incarnation;
        host.start(n.clock.local(self.now), &mut self.effects);
        self.fault_changed("start", i, incarnation as usize);
        self.trace_line(format_args!("start {node} (incarnation {incarnation})"));
        self.apply_effects(i);
        self.after_external_call();
    }

    /// The same as [`Sim::start`]: a crashed node comes back as a new
    /// incarnation with its disk as the crash left it.
    pub fn restart(&mut self, node: NodeId) {
        self.start(node);
    }

    /// Kills `node`: its component and volatile state are gone, its pending
    /// timers, I/O and held messages are dropped, and its disk loses what
    /// was not durable (see [`crate::disk`]).
    pub fn crash(&mut self, node: NodeId) {
        let i = self.expect_index(node);
        if self.nodes[i].host.is_none() || self.refused("crash") {
            return;
        }
        let n = &mut self.nodes[i];
        n.host = None;
        n.timers.clear();
        n.paused = false;
        let lost = n.deferred.drain(..).filter(|kind| matches!(kind, EventKind::Deliver { .. })).count();
        self.counters.messages_dropped += lost as u64;
        n.disk.crash();
        self.fault_changed("crash", i, 0);
        self.trace_line(format_args!("crash {node}"));
    }

    /// Stops `node` for `duration` (SIGSTOP): nothing is processed; what
    /// comes due meanwhile runs, in order, right after. Its clock runs on.
    /// Pausing a paused node extends the pause if that ends later.
    pub fn pause(&mut self, node: NodeId, duration: Duration) {
        let i = self.expect_index(node);
        if self.nodes[i].host.is_none() || self.refused("pause") {
            return;
        }
        let until = self.now + duration;
        let n = &mut self.nodes[i];
        if n.paused && until <= n.pause_until {
            return;
        }
        n.paused = true;
        n.pause_id += 1;
        n.pause_until = until;
        let (incarnation, pause) = (n.incarnation, n.pause_id);
        self.push(until, EventKind::Resume { node: i as u32, incarnation, pause });
        self.fault_changed("pause", i, 0);
        self.trace_line(format_args!("pause {node} until {until}"));
    }

    /// Ends a pause now.
    pub fn resume(&mut self, node: NodeId) {
        let i = self.expect_index(node);
        if self.nodes[i].paused {
            self.resume_now(i);
        }
    }

    /// Sets the node's clock to `offset + global * (1 + drift_ppm/1e6)`. On a
    /// running node the reading never goes back: it continues from its
    /// current value at the new rate if the formula is behind, and its
    /// timers are rescheduled on the new clock.
    ///
    /// # Panics
    /// If `drift_ppm` is beyond ±[`crate::clock::DRIFT_PPM_ABS_MAX`].
    pub fn set_clock(&mut self, node: NodeId, offset: Duration, drift_ppm: i64) {
        let i = self.expect_index(node);
        let now = self.now;
        let n = &mut self.nodes[i];
        if n.host.is_none() {
            n.clock = Clock::new(offset, drift_ppm);
        } else {
            n.clock = n.clock.rebased(now, offset, drift_ppm);
            n.timer_epoch += 1;
            let (incarnation, epoch) = (n.incarnation, n.timer_epoch);
            let due: Vec<_> = n.timers.iter().map(|(id, at)| (*id, n.clock.global_at(*at))).collect();
            for (id, at) in due {
                self.push(at, EventKind::Timer { node: i as u32, incarnation, epoch, id });
            }
        }
        self.trace.tag("clock");
        self.trace.u64(i as u64);
        self.trace.u64(offset.as_nanos() as u64);
        self.trace.u64(drift_ppm as u64);
        self.trace_line(format_args!("clock {node} offset {offset:?} drift {drift_ppm} ppm"));
    }

    /// Overrides how the directed link `from -> to` behaves.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, config: LinkConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let (f, t) = (self.expect_index(from), self.expect_index(to));
        self.net.set_config(f, t, config);
        Ok(())
    }

    /// How the directed link `from` → `to` behaves now.
    pub fn link_config(&self, from: NodeId, to: NodeId) -> &LinkConfig {
        let (f, t) = (self.expect_index(from), self.expect_index(to));
        self.net.config(f, t)
    }

    /// Changes how every link without an override behaves.
    pub fn set_default_link(&mut self, config: LinkConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.net.set_default_config(config);
        Ok(())
    }

    /// Replaces the current partition: links between nodes of different
    /// groups are blocked both ways. Nodes named in no group form one more
    /// group together.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        if self.refused("partition") {
            return;
        }
        let mut group_of = vec![groups.len(); self.nodes.len()];
        for (g, group) in groups.iter().enumerate() {
            for node in group {
                group_of[self.expect_index(*node)] = g;
            }
        }
        self.net.unblock_all();
        for f in 0..self.nodes.len() {
            for t in 0..self.nodes.len() {
                self.net.set_blocked(f, t, group_of[f] != group_of[t]);
            }
            self.trace.u64(group_of[f] as u64);
        }
        self.fault_changed("partition", groups.len(), 0);
        self.trace_line(format_args!("partition {groups:?}"));
    }

    /// Blocks the link `from -> to` only, on top of the current partition.
    pub fn block_one_way(&mut self, from: NodeId, to: NodeId) {
        let (f, t) = (self.expect_index(from), self.expect_index(to));
        if self.refused("block") {
            return;
        }
        self.net.set_blocked(f, t, true);
        self.fault_changed("block", f, t);
        self.trace_line(format_args!("block {from} -> {to}"));
    }

    /// Blocks every link between `node` and the others, on top of the
    /// current partition.
    pub fn isolate(&mut self, node: NodeId) {
        let i = self.expect_index(node);
        if self.refused("isolate") {
            return;
        }
        for other in (0..self.nodes.len()).filter(|o| *o != i) {
            self.net.set_blocked(i, other, true);
            self.net.set_blocked(other, i, true);
        }
        self.fault_changed("isolate", i, 0);
        self.trace_line(format_args!("isolate {node}"));
    }

    /// Partitions the nodes at random into a majority and a non-empty
    /// minority (for one node, nothing is blocked); returns both sides.
    pub fn split_majority_minority(&mut self, rng: &mut ChaCha8Rng) -> (Vec<NodeId>, Vec<NodeId>) {
        let mut nodes = self.ids.clone();
        nodes.shuffle(rng);
        let minority_len_max = ((nodes.len() - 1) / 2).max(1).min(nodes.len() - 1);
        let minority_len = if minority_len_max == 0 { 0 } else { rng.random_range(1..=minority_len_max) };
        let minority = nodes.split_off(nodes.len() - minority_len);
        self.partition(&[nodes.clone(), minority.clone()]);
        (nodes, minority)
    }

    /// Partitions the nodes at random into two non-empty sides that only
    /// talk through one bridge node, linked to both; returns (side, bridge,
    /// side), or `None` with fewer than three nodes.
    pub fn bridge(&mut self, rng: &mut ChaCha8Rng) -> Option<(Vec<NodeId>, NodeId, Vec<NodeId>)> {
        if self.ids.len() < 3 || self.refused("bridge") {
            return None;
        }
        let mut nodes = self.ids.clone();
        nodes.shuffle(rng);
        let bridge = nodes.pop().expect("at least three nodes");
        let left_len = rng.random_range(1..nodes.len());
        let right = nodes.split_off(left_len);
        let (l, r): (Vec<usize>, Vec<usize>) = (
            nodes.iter().map(|n| self.expect_index(*n)).collect(),
            right.iter().map(|n| self.expect_index(*n)).collect(),
        );
        self.net.unblock_all();
        for &a in &l {
            for &b in &r {
                self.net.set_blocked(a, b, true);
                self.net.set_blocked(b, a, true);
            }
        }
        for id in nodes.iter().chain([&bridge]).chain(&right) {
            self.trace.u64(id.0);
        }
        self.fault_changed("bridge", l.len(), r.len());
        self.trace_line(format_args!("bridge {nodes:?} <-> {bridge} <-> {right:?}"));
        Some((nodes, bridge, right))
    }

    /// Unblocks every link (clogs stay: see [`Sim::unclog_all`]).
    pub fn heal(&mut self) {
        self.net.unblock_all();
        self.fault_changed("heal", 0, 0);
        self.trace_line(format_args!("heal partitions"));
    }

    /// Clogs the link `from -> to`: its messages wait until it is unclogged.
    pub fn clog(&mut self, from: NodeId, to: NodeId) {
        let (f, t) = (self.expect_index(from), self.expect_index(to));
        if self.refused("clog") {
            return;
        }
        self.net.set_link_clogged(f, t, true);
        self.fault_changed("clog", f, t);
        self.trace_line(format_args!("clog {from} -> {to}"));
    }

    pub fn unclog(&mut self, from: NodeId, to: NodeId) {
        let (f, t) = (self.expect_index(from), self.expect_index(to));
        self.net.set_link_clogged(f, t, false);
        self.fault_changed("unclog", f, t);
        self.trace_line(format_args!("unclog {from} -> {to}"));
        self.release_held();
    }

    /// Clogs every link between `node` and the other nodes, both ways.
    pub fn clog_node(&mut self, node: NodeId) {
        let i = self.expect_index(node);
        if self.refused("clog") {
            return;
        }
        self.net.set_node_clogged(i, true);
        self.fault_changed("clog node", i, 0);
        self.trace_line(format_args!("clog {node}"));
    }

    /// Undoes [`Sim::clog_node`]; links to nodes still clogged stay clogged.
    pub fn unclog_node(&mut self, node: NodeId) {
        let i = self.expect_index(node);
        if !self.net.node_clogged(i) {
            return;
        }
        self.net.set_node_clogged(i, false);
        self.fault_changed("unclog node", i, 0);
        self.trace_line(format_args!("unclog {node}"));
        self.release_held();
    }

    pub fn unclog_all(&mut self) {
        self.net.unclog_all();
        self.fault_changed("unclog all", 0, 0);
        self.trace_line(format_args!("unclog all"));
        self.release_held();
    }

    /// While on, the node's writes fail with `IoError::NoSpace`.
    pub fn disk_full(&mut self, node: NodeId, full: bool) {
        let i = self.expect_index(node);
        if full && self.refused("disk full") {
            return;
        }
        self.nodes[i].disk.set_full(full);
        self.fault_changed("disk full", i, usize::from(full));
        self.trace_line(format_args!("disk full {node}: {full}"));
    }

    /// Each read of the node returns, with this probability, its bytes with
    /// one random bit flipped.
    ///
    /// # Panics
    /// If `probability` is not within 0..=1.
    pub fn corrupt_reads(&mut self, node: NodeId, probability: f64) {
        let i = self.expect_index(node);
        assert!((0.0..=1.0).contains(&probability), "corrupt read probability {probability} not within 0..=1");
        if probability > 0.0 && self.refused("corrupt reads") {
            return;
        }
        self.nodes[i].disk.set_corrupt_reads(probability);
        self.fault_changed("corrupt reads", i, (probability * 1e6) as usize);
        self.trace_line(format_args!("corrupt reads {node}: {probability}"));
    }

    /// Delivers `msg` to `to` now, as if sent by `from` (which need not be a
    /// node of the simulation: a client, say), bypassing the network model.
    pub fn inject(&mut self, to: NodeId, from: NodeId, msg: C::Msg) {
        let i = self.expect_index(to);
        self.counters.messages_sent += 1;
        self.send_seq += 1;
        self.trace.tag("inject");
        self.trace.u64(from.0);
        self.trace.encoded(&msg);
        let (incarnation, send_seq) = (self.nodes[i].incarnation, self.send_seq);
        self.push(self.now, EventKind::Deliver { from, to: i as u32, incarnation, send_seq, arrived: true, msg });
    }

    /// Repairs everything: partitions healed, links unclogged, paused nodes
    /// resumed, crashed nodes restarted, disk faults cleared.
    pub fn heal_all(&mut self) {
        self.trace_line(format_args!("heal all"));
        self.heal();
        self.unclog_all();
        for node in self.ids.clone() {
            let i = self.expect_index(node);
            self.resume(node);
            if self.nodes[i].ever_started {
                self.start(node);
            }
            self.nodes[i].disk.set_full(false);
            self.nodes[i].disk.set_corrupt_reads(0.0);
        }
    }

    /// Declares the faults over now (T): from here on no new fault is
    /// injected, each liveness checker must hold from T + within to
    /// T + within + hold_for, and the run ends when the last of them has.
    pub fn faults_over(&mut self) {
        if self.faults_over_at.is_some() {
            return;
        }
        let over = self.now;
        self.faults_over_at = Some(over);
        self.trace.tag("faults over");
        self.trace_line(format_args!("faults over: liveness phase begins"));
        let mut end = over;
        for (from, to) in self.checks.liveness_windows(over) {
            self.push(from, EventKind::Check);
            self.push(to, EventKind::Check);
            end = end.max(to);
        }
        self.push(end, EventKind::End);
    }
}
