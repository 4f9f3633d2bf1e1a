//! Event handling: what each event does to the world.
//!
//! In: one event popped from the queue. Out: the node's host called (message
//! delivered, timer fired, I/O completed) and the effects it returned carried
//! out — messages routed through the network model, timers scheduled on the
//! node's clock, disk requests submitted — all hashed into the trace.
//!
//! Stale events (for a crashed incarnation, a cancelled timer, an older
//! clock) are dropped unseen; events for a paused node wait in its buffer.

use crate::disk::Stage;
use crate::dist::chance;
use crate::event::EventKind;
use crate::network::Held;
use crate::sim::Sim;
use haven_runtime::{Component, Effect, IoId, MESSAGES_PER_BATCH_MAX, NodeId, TimerId};
use std::collections::VecDeque;
use std::fmt::Write as _;

impl<C: Component + 'static> Sim<C> {
    /// Handles one event; true if it was processed (rather than dropped as
    /// stale or deferred by a pause).
    pub(crate) fn dispatch(&mut self, kind: EventKind<C::Msg>) -> bool {
        if let Some(node) = kind.node() {
            return self.node_event(node as usize, kind);
        }
        match kind {
            EventKind::Resume { node, incarnation, pause } => self.on_resume(node as usize, incarnation, pause),
            EventKind::Call { slot } => self.run_call(slot),
            EventKind::ProcStart { proc } => self.proc_start(proc as usize),
            EventKind::ProcFire { proc, index } => self.proc_fire(proc as usize, index),
            EventKind::Heal => {
                self.heal_all();
                if let Some(hook) = self.heal_hook.take() {
                    hook(self);
                }
                self.faults_over();
            }
            EventKind::Check => self.trace.tag("check"),
            EventKind::End => {
                self.trace.tag("end");
                self.end_requested = true;
            }
            EventKind::Deliver { .. }
            | EventKind::DeliverBatch { .. }
            | EventKind::Timer { .. }
            | EventKind::Io { .. } => {
                unreachable!("node events are handled above")
            }
        }
        true
    }

    fn node_event(&mut self, i: usize, kind: EventKind<C::Msg>) -> bool {
        match kind {
            EventKind::Deliver { from, to, incarnation, send_seq, arrived, msg } => {
                if !self.nodes[i].runs(incarnation) {
                    self.drop_message(from, to, &msg, "receiver down");
                    return false;
                }
                if !arrived && let Some(f) = self.index(from) {
                    if self.net.blocked(f, i) {
                        self.drop_message(from, to, &msg, "blocked");
                        return false;
                    }
                    if self.net.clogged(f, i) {
                        self.hold(f, i, send_seq, Held { to_incarnation: incarnation, msg });
                        return false;
                    }
                }
                let arrived = EventKind::Deliver { from, to, incarnation, send_seq, arrived: true, msg };
                self.unless_paused(i, arrived, |sim, kind| {
                    let EventKind::Deliver { from, msg, .. } = kind else { unreachable!() };
                    sim.deliver(i, from, msg);
                })
            }
            EventKind::DeliverBatch { to, incarnation, msgs } => {
                if !self.nodes[i].runs(incarnation) {
                    for (from, msg) in &msgs {
                        self.drop_message(*from, to, msg, "receiver down");
                    }
                    return false;
                }
                if self.nodes[i].paused {
                    // Paused again before it came due: back to waiting, one by one.
                    for (from, msg) in msgs {
                        let held = arrived(from, to, incarnation, msg);
                        let ran = self.unless_paused(i, held, |_, _| unreachable!("the node is paused"));
                        assert!(!ran, "a paused node runs nothing");
                    }
                    return false;
                }
                self.deliver_batch(i, msgs);
                true
            }
            EventKind::Timer { incarnation, epoch, id, .. } => {
                let node = &self.nodes[i];
                if !node.runs(incarnation) || node.timer_epoch != epoch || !node.timers.contains_key(&id) {
                    return false;
                }
                self.unless_paused(i, kind, |sim, _| sim.fire(i, id))
            }
            EventKind::Io { incarnation, .. } => {
                if !self.nodes[i].runs(incarnation) {
                    return false;
                }
                self.unless_paused(i, kind, |sim, kind| {
                    let EventKind::Io { id, op, .. } = kind else { unreachable!() };
                    sim.complete_io(i, id, op);
                })
            }
            _ => unreachable!("not a node event"),
        }
    }

    /// Runs `f` now, or keeps the event for when the node's pause ends.
    fn unless_paused(
        &mut self,
        i: usize,
        kind: EventKind<C::Msg>,
        f: impl FnOnce(&mut Self, EventKind<C::Msg>),
    ) -> bool {
        let node = &mut self.nodes[i];
        if !node.paused {
            f(self, kind);
            return true;
        }
        let is_message = matches!(kind, EventKind::Deliver { .. });
        if is_message && node.deferred.len() >= self.config.pause_held_len_max {
            // Timers and I/O are never dropped: the host needs every I/O
            // completed, and both are bounded by the host's own limits.
            if let EventKind::Deliver { from, to, msg, .. } = kind {
                self.drop_message(from, to, &msg, "paused node's buffer full");
            }
        } else {
            node.deferred.push_back(kind);
        }
        false
    }

    fn deliver(&mut self, i: usize, from: NodeId, msg: C::Msg) {
        self.counters.messages_delivered += 1;
        self.trace_recv(i, from, &msg, "");
        let node = &mut self.nodes[i];
        let host = node.host.as_mut().expect("a running node has a host");
        host.deliver(node.clock.local(self.now), from, msg, &mut self.effects);
        self.apply_effects(i);
    }

    /// Adds a delivery to the trace (its hash, and the timeline if on).
    fn trace_recv(&mut self, i: usize, from: NodeId, msg: &C::Msg, note: &str) {
        let node = &self.nodes[i];
        self.trace.tag("recv");
        self.trace.u64(node.id.0);
        self.trace.u64(u64::from(node.incarnation));
        self.trace.u64(from.0);
        self.trace.encoded(msg);
        if self.trace.on() {
            let _ = write!(self.trace.begin(self.now), "{} recv from {from} {msg:?}{note}", node.id);
        }
    }

    /// Messages that waited together, each traced as `deliver` traces it.
    fn deliver_batch(&mut self, i: usize, msgs: Vec<(NodeId, C::Msg)>) {
        self.counters.messages_delivered += msgs.len() as u64;
        for (from, msg) in &msgs {
            self.trace_recv(i, *from, msg, " (batch)");
        }
        let node = &mut self.nodes[i];
        let host = node.host.as_mut().expect("a running node has a host");
        host.deliver_batch(node.clock.local(self.now), msgs, &mut self.effects);
        self.apply_effects(i);
    }

    fn fire(&mut self, i: usize, id: TimerId) {
        self.counters.timers_fired += 1;
        let node = &mut self.nodes[i];
        node.timers.remove(&id);
        self.trace.tag("fire");
        self.trace.u64(node.id.0);
        self.trace.u64(u64::from(node.incarnation));
        self.trace.u64(id.0);
        if self.trace.on() {
            let _ = write!(self.trace.begin(self.now), "{} timer#{} fired", node.id, id.0);
        }
        let host = node.host.as_mut().expect("a running node has a host");
        host.fire(node.clock.local(self.now), id, &mut self.effects);
        self.apply_effects(i);
    }

    fn complete_io(&mut self, i: usize, id: IoId, op: crate::disk::DiskOp) {
        let node = &mut self.nodes[i];
        if self.trace.on() {
            let _ = write!(self.trace.begin(self.now), "{} io#{} {:?}", node.id, id.0, op.request);
        }
        let result = match node.disk.complete(op) {
            Stage::Done(result) => result,
            Stage::Then(op, latency) => {
                self.trace.tag("io stage");
                self.trace.u64(id.0);
                if self.trace.on() {
                    let _ = write!(self.trace.note(), ": written, sync started");
                }
                let incarnation = node.incarnation;
                self.push(self.now + latency, EventKind::Io { node: i as u32, incarnation, id, op });
                return;
            }
        };
        // Counted once per request: a `WriteSync`'s first stage is not a completion.
        self.counters.io_completed += 1;
        self.trace.tag("io");
        self.trace.u64(node.id.0);
        self.trace.u64(u64::from(node.incarnation));
        self.trace.u64(id.0);
        self.trace.encoded(&result);
        if self.trace.on() {
            let _ = write!(self.trace.note(), ": {result:?}");
        }
        let host = node.host.as_mut().expect("a running node has a host");
        host.complete(node.clock.local(self.now), id, result, &mut self.effects);
        self.apply_effects(i);
    }

    /// Carries out the effects the host just returned, in order.
    pub(crate) fn apply_effects(&mut self, i: usize) {
        let mut effects = std::mem::take(&mut self.effects);
        for effect in effects.drain(..) {
            self.apply(i, effect);
        }
        self.effects = effects;
    }

    fn apply(&mut self, i: usize, effect: Effect<C::Msg, C::Out>) {
        if self.trace.on() && !matches!(effect, Effect::Send { .. }) {
            let _ = write!(self.trace.effect(), "{effect:?}");
        }
        match effect {
            Effect::Send { to, msg } => self.send(i, to, msg),
            Effect::SetTimer { id, at } => {
                self.trace.tag("set");
                self.trace.u64(id.0);
                self.trace.u64(at.as_nanos());
                let node = &mut self.nodes[i];
                node.timers.insert(id, at);
                let (due, incarnation, epoch) = (node.clock.global_at(at), node.incarnation, node.timer_epoch);
                self.push(due, EventKind::Timer { node: i as u32, incarnation, epoch, id });
            }
            Effect::CancelTimer { id } => {
                self.trace.tag("cancel");
                self.trace.u64(id.0);
                self.nodes[i].timers.remove(&id);
            }
            Effect::Io { id, request } => {
                self.trace.tag("io start");
                self.trace.u64(id.0);
                self.trace.encoded(&request);
                let node = &mut self.nodes[i];
                let (op, latency) = node.disk.submit(request);
                let incarnation = node.incarnation;
                self.push(self.now + latency, EventKind::Io { node: i as u32, incarnation, id, op });
            }
            Effect::Output(out) => {
                self.trace.tag("output");
                self.trace.debug(&out);
                if let Some(peers) = &mut self.peers {
                    peers.output(i, self.ids[i], &out);
                }
                self.outputs.push((self.nodes[i].id, out));
            }
        }
    }

    /// Routes one message through the network model.
    fn send(&mut self, i: usize, to: NodeId, msg: C::Msg) {
        self.counters.messages_sent += 1;
        self.trace.tag("send");
        self.trace.u64(to.0);
        self.trace.encoded(&msg);
        if self.trace.on() {
            let _ = write!(self.trace.effect(), "send {to} {msg:?}");
        }
        let Some(t) = self.index(to) else { return self.lost_at_send("unknown node") };
        if self.net.blocked(i, t) {
            return self.lost_at_send("blocked");
        }
        if self.peers.as_mut().is_some_and(|peers| !peers.pass(i, self.ids[i], t, to)) {
            return self.lost_at_send("not a peer");
        }
        let link = self.net.config(i, t);
        if chance(&mut self.net_rng, link.loss_probability) {
            return self.lost_at_send("lost");
        }
        let incarnation = self.nodes[t].incarnation;
        if chance(&mut self.net_rng, link.duplicate_probability) {
            self.counters.messages_duplicated += 1;
            self.trace.tag("dup");
            if self.trace.on() {
                self.trace.note().push_str(" [duplicated]");
            }
            self.route(i, t, incarnation, msg.clone());
        }
        self.route(i, t, incarnation, msg);
    }

    fn lost_at_send(&mut self, why: &'static str) {
        self.counters.messages_dropped += 1;
        self.trace.tag(why);
        if self.trace.on() {
            let _ = write!(self.trace.note(), " [{why}]");
        }
    }

    /// Puts one copy on the wire, or in a clogged link's queue.
    fn route(&mut self, f: usize, t: usize, incarnation: u32, msg: C::Msg) {
        self.send_seq += 1;
        if self.net.clogged(f, t) {
            if self.trace.on() {
                self.trace.note().push_str(" [clogged]");
            }
            return self.hold(f, t, self.send_seq, Held { to_incarnation: incarnation, msg });
        }
        let latency = self.net.config(f, t).latency.sample(&mut self.net_rng);
        let (from, to, send_seq) = (self.ids[f], t as u32, self.send_seq);
        self.push(self.now + latency, EventKind::Deliver { from, to, incarnation, send_seq, arrived: false, msg });
    }

    fn hold(&mut self, f: usize, t: usize, send_seq: u64, held: Held<C::Msg>) {
        if !self.net.hold(f, t, send_seq, held) {
            self.counters.messages_dropped += 1;
            self.trace.tag("clog full");
        }
    }

    /// Puts the messages of every link that just opened back on the wire,
    /// each with a fresh latency but never overtaking an earlier one.
    pub(crate) fn release_held(&mut self) {
        for ((f, t), queue) in self.net.take_released() {
            let mut due = self.now;
            for (send_seq, held) in queue {
                due = due.max(self.now + self.net.config(f, t).latency.sample(&mut self.net_rng));
                let (from, to, incarnation) = (self.ids[f], t as u32, held.to_incarnation);
                let msg = held.msg;
                self.queue.push(due, EventKind::Deliver { from, to, incarnation, send_seq, arrived: false, msg });
            }
        }
    }

    fn drop_message(&mut self, from: NodeId, to: u32, msg: &C::Msg, why: &'static str) {
        self.counters.messages_dropped += 1;
        self.trace.tag(why);
        self.trace.u64(from.0);
        self.trace.u64(u64::from(to));
        if self.trace.on() {
            let to = self.ids[to as usize];
            let _ = write!(self.trace.begin(self.now), "drop {from}->{to} {msg:?} ({why})");
            self.trace.emit();
        }
    }

    fn on_resume(&mut self, i: usize, incarnation: u32, pause: u32) {
        let node = &self.nodes[i];
        if node.runs(incarnation) && node.paused && node.pause_id == pause {
            self.resume_now(i);
        }
    }

    /// Ends a pause: what came due meanwhile runs next, in order.
    pub(crate) fn resume_now(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.paused = false;
        let deferred = std::mem::take(&mut node.deferred);
        let (to, incarnation) = (i as u32, node.incarnation);
        let kinds = if self.config.batch_on_resume { batched(deferred, to, incarnation) } else { deferred.into() };
        for kind in kinds {
            self.queue.push(self.now, kind);
        }
        self.fault_changed("resume", i, 0);
        if self.trace.on() {
            let _ = write!(self.trace.begin(self.now), "resume {}", self.ids[i]);
        }
    }
}

/// A message past the wire, waiting for node `to`.
fn arrived<M>(from: NodeId, to: u32, incarnation: u32, msg: M) -> EventKind<M> {
    EventKind::Deliver { from, to, incarnation, send_seq: 0, arrived: true, msg }
}

/// A paused node's backlog with each run of consecutive messages made one
/// batch (at most `MESSAGES_PER_BATCH_MAX`), timers and I/O kept in place.
fn batched<M>(deferred: VecDeque<EventKind<M>>, to: u32, incarnation: u32) -> Vec<EventKind<M>> {
    let mut kinds = Vec::new();
    let mut run: Vec<(NodeId, M)> = Vec::new();
    let close = |run: &mut Vec<(NodeId, M)>, kinds: &mut Vec<EventKind<M>>| {
        if !run.is_empty() {
            kinds.push(EventKind::DeliverBatch { to, incarnation, msgs: std::mem::take(run) });
        }
    };
    for kind in deferred {
        match kind {
            EventKind::Deliver { from, msg, .. } => {
                run.push((from, msg));
                if run.len() == MESSAGES_PER_BATCH_MAX {
                    close(&mut run, &mut kinds);
                }
            }
            other => {
                close(&mut run, &mut kinds);
                kinds.push(other);
            }
        }
    }
    close(&mut run, &mut kinds);
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u32) -> EventKind<u32> {
        arrived(NodeId(9), 1, 0, n)
    }

    fn timer() -> EventKind<u32> {
        EventKind::Timer { node: 1, incarnation: 0, epoch: 0, id: TimerId(5) }
    }

    /// Each kind in order: a batch as its messages, a timer as `T`.
    fn shape(kinds: &[EventKind<u32>]) -> Vec<String> {
        let show = |kind: &EventKind<u32>| match kind {
            EventKind::DeliverBatch { msgs, .. } => format!("{:?}", msgs.iter().map(|(_, m)| *m).collect::<Vec<_>>()),
            EventKind::Timer { .. } => "T".to_owned(),
            other => panic!("unexpected {other:?}"),
        };
        kinds.iter().map(show).collect()
    }

    #[test]
    fn a_backlog_becomes_batches_of_consecutive_messages_with_timers_in_place() {
        let backlog = VecDeque::from([msg(1), msg(2), timer(), msg(3), timer(), timer(), msg(4), msg(5)]);
        let kinds = batched(backlog, 1, 0);
        assert_eq!(shape(&kinds), ["[1, 2]", "T", "[3]", "T", "T", "[4, 5]"]);
    }

    #[test]
    fn a_long_run_of_messages_is_split_at_the_batch_bound() {
        let n = MESSAGES_PER_BATCH_MAX as u32 * 2 + 1;
        let kinds = batched((0..n).map(msg).collect(), 1, 0);
        let lens: Vec<usize> = kinds
            .iter()
            .map(|k| match k {
                EventKind::DeliverBatch { msgs, .. } => msgs.len(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(lens, [MESSAGES_PER_BATCH_MAX, MESSAGES_PER_BATCH_MAX, 1]);
    }
}
