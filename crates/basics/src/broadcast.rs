//! Best-effort broadcast.
//!
//! In: `broadcast(payload)` from the parent; `Data` messages from peers.
//! Out: `Delivered { from, payload }` for each message delivered here,
//! including the node's own broadcasts (delivered locally, at once).
//!
//! Properties: no creation (only broadcast payloads are delivered), no
//! duplication (each (sender, epoch, seq) is delivered at most once, even
//! when the network duplicates), and validity when the links do not lose the
//! message. Duplicate suppression remembers, per sender, the highest
//! sequence number of its latest epoch and a 64-message window below it: a
//! message older than the window is dropped rather than risk a duplicate,
//! which best effort allows.

use crate::Never;
use haven_runtime::{Component, CtxFor, IoId, IoResult, Message, NodeId, TimerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const WINDOW_LEN: u64 = 64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastMsg<P> {
    pub epoch: u64,
    pub seq: u64,
    pub payload: P,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered<P> {
    pub from: NodeId,
    pub payload: P,
}

/// Per-sender duplicate filter.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    epoch: u64,
    highest: u64,
    /// Bit i set: `highest - i` was delivered.
    seen: u64,
}

impl Window {
    /// Records (epoch, seq); true if it was not delivered before.
    fn admit(&mut self, epoch: u64, seq: u64) -> bool {
        if epoch < self.epoch {
            return false;
        }
        if epoch > self.epoch {
            *self = Window { epoch, highest: seq, seen: 1 };
            return true;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= WINDOW_LEN { 1 } else { (self.seen << shift) | 1 };
            self.highest = seq;
            return true;
        }
        let age = self.highest - seq;
        if age >= WINDOW_LEN || self.seen & (1 << age) != 0 {
            return false;
        }
        self.seen |= 1 << age;
        true
    }
}

#[derive(Debug)]
pub struct Broadcast<P> {
    me: NodeId,
    nodes: Vec<NodeId>,
    epoch: u64,
    next_seq: u64,
    windows: BTreeMap<NodeId, Window>,
    _payload: std::marker::PhantomData<P>,
}

impl<P: Message> Broadcast<P> {
    /// `nodes` is the whole group (this node included or not); `epoch` must
    /// grow with every restart so sequence numbers can start again at 1.
    pub fn new(me: NodeId, nodes: &[NodeId], epoch: u64) -> Self {
        let nodes = nodes.iter().copied().filter(|&n| n != me).collect();
        Broadcast { me, nodes, epoch, next_seq: 1, windows: BTreeMap::new(), _payload: std::marker::PhantomData }
    }

    pub fn broadcast(&mut self, ctx: &mut impl CtxFor<Self>, payload: P) {
        let seq = self.next_seq;
        self.next_seq += 1;
        for &node in &self.nodes {
            ctx.send(node, BroadcastMsg { epoch: self.epoch, seq, payload: payload.clone() });
        }
        ctx.output(Delivered { from: self.me, payload });
    }
}

impl<P: Message> Component for Broadcast<P> {
    type Msg = BroadcastMsg<P>;
    type Timer = Never;
    type Io = Never;
    type Out = Delivered<P>;

    fn on_start(&mut self, _ctx: &mut impl CtxFor<Self>) {}

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: BroadcastMsg<P>) {
        if self.windows.entry(from).or_default().admit(msg.epoch, msg.seq) {
            ctx.output(Delivered { from, payload: msg.payload });
        }
    }

    fn on_timer(&mut self, _ctx: &mut impl CtxFor<Self>, _id: TimerId, timer: Never) {
        match timer {}
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, tag: Never, _result: IoResult) {
        match tag {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_admits_each_message_once_in_any_order() {
        let mut w = Window::default();
        assert!(w.admit(1, 5));
        assert!(w.admit(1, 3), "reordered, still new");
        assert!(!w.admit(1, 3), "duplicate");
        assert!(!w.admit(1, 5), "duplicate");
        assert!(w.admit(1, 200), "jump past the window");
        assert!(!w.admit(1, 100), "older than the window: dropped, never duplicated");
        assert!(!w.admit(0, 999), "previous epoch");
        assert!(w.admit(2, 1), "new epoch restarts sequence numbers");
    }
}
