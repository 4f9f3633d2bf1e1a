//! The ping-based eventually-perfect failure detector (◇P), crash-recovery.
//!
//! In: a tick every `period`; `Ping`s from peers (answered with a `Pong`);
//! `Pong`s answering our own pings.
//! Out: `Suspect` when a peer's pongs stop for longer than its timeout;
//! `Trust` when a peer is first heard from, is restored after a suspicion,
//! or answers with a new epoch (it restarted).
//!
//! Why it is eventually perfect: any pong from a suspected peer's current
//! incarnation restores it. The suspicion was *false* when that pong answers
//! a ping sent before the suspicion (the peer was alive, just slow); each
//! false suspicion grows that peer's timeout by `timeout_increment`, up to
//! `timeout_max`, so once the timeout exceeds the real round trip no correct
//! peer is suspected again. A pong to a ping sent after the suspicion proves
//! nothing about slowness (the peer may really have been down), so it
//! restores without growing the timeout.
//!
//! Every ping carries the sender's clock reading and epoch and the pong
//! echoes both: liveness is measured on the sender's own clock (no clock
//! comparison between nodes), and pongs to a previous incarnation's pings,
//! whose clock readings are meaningless now, are ignored.

use crate::Never;
use crate::config::DetectorConfig;
use haven_runtime::{Component, CtxFor, Instant, IoId, IoResult, NodeId, TimerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DetectorMsg {
    Ping { sent_at: Instant, epoch: u64 },
    Pong { echo_at: Instant, echo_epoch: u64, epoch: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectorTimer {
    Tick,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DetectorEvent {
    Suspect {
        node: NodeId,
    },
    /// `node` is alive in incarnation `epoch`.
    Trust {
        node: NodeId,
        epoch: u64,
    },
}

/// What a detector is built from; lets `ElectionNode` be generic over the
/// detector implementation (tests plant broken ones).
#[derive(Clone, Debug)]
pub struct DetectorSpec {
    pub me: NodeId,
    pub epoch: u64,
    pub peers: Vec<NodeId>,
    pub config: DetectorConfig,
}

/// A failure detector usable under Ω.
pub trait Detector:
    Component<Msg = DetectorMsg, Timer = DetectorTimer, Io = Never, Out = DetectorEvent> + Sized + std::fmt::Debug
{
    fn new(spec: DetectorSpec) -> Self;
}

#[derive(Clone, Debug)]
struct Peer {
    /// Send time (our clock) of the latest ping this peer answered.
    last_heard: Instant,
    epoch: Option<u64>,
    suspected: bool,
    suspected_at: Instant,
    timeout: Duration,
}

#[derive(Debug)]
pub struct PingDetector {
    config: DetectorConfig,
    epoch: u64,
    peers: BTreeMap<NodeId, Peer>,
    false_suspicions: u64,
}

impl Detector for PingDetector {
    fn new(spec: DetectorSpec) -> Self {
        let peer = Peer {
            last_heard: Instant::ZERO,
            epoch: None,
            suspected: false,
            suspected_at: Instant::ZERO,
            timeout: spec.config.timeout_initial,
        };
        let peers = spec.peers.iter().filter(|&&p| p != spec.me).map(|&p| (p, peer.clone())).collect();
        PingDetector { config: spec.config, epoch: spec.epoch, peers, false_suspicions: 0 }
    }
}

impl PingDetector {
    /// The current timeout for `node`, if it is a peer.
    pub fn timeout_of(&self, node: NodeId) -> Option<Duration> {
        self.peers.get(&node).map(|p| p.timeout)
    }

    pub fn is_suspected(&self, node: NodeId) -> bool {
        self.peers.get(&node).is_some_and(|p| p.suspected)
    }

    /// Suspicions later proven false (each grew a timeout).
    pub fn false_suspicions(&self) -> u64 {
        self.false_suspicions
    }

    fn tick(&mut self, ctx: &mut impl CtxFor<Self>) {
        let now = ctx.now();
        for (&node, peer) in &mut self.peers {
            ctx.send(node, DetectorMsg::Ping { sent_at: now, epoch: self.epoch });
            if !peer.suspected && now.saturating_since(peer.last_heard) > peer.timeout {
                peer.suspected = true;
                peer.suspected_at = now;
                ctx.output(DetectorEvent::Suspect { node });
            }
        }
        ctx.set_timer(self.config.period, DetectorTimer::Tick);
    }

    fn on_pong(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, echo_at: Instant, epoch: u64) {
        let now = ctx.now();
        let Some(peer) = self.peers.get_mut(&from) else { return };
        if peer.epoch.is_some_and(|known| epoch < known) {
            return; // an answer from an incarnation that has since restarted
        }
        let echo_at = echo_at.min(now);
        peer.last_heard = peer.last_heard.max(echo_at);
        if peer.suspected {
            // Any answer proves the peer alive. If it answers a ping sent
            // before we suspected it, we suspected too early: grow its
            // timeout. Requiring a "fresh" answer instead would never
            // restore a peer whose round trip exceeds its timeout, so the
            // timeout could never grow to fit it.
            peer.suspected = false;
            if echo_at < peer.suspected_at {
                peer.timeout = (peer.timeout + self.config.timeout_increment).min(self.config.timeout_max);
                self.false_suspicions += 1;
            }
        } else if peer.epoch == Some(epoch) {
            return;
        }
        peer.epoch = Some(epoch);
        ctx.output(DetectorEvent::Trust { node: from, epoch });
    }
}

impl Component for PingDetector {
    type Msg = DetectorMsg;
    type Timer = DetectorTimer;
    type Io = Never;
    type Out = DetectorEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        // Peers get a full timeout from our start to answer.
        let now = ctx.now();
        for peer in self.peers.values_mut() {
            peer.last_heard = now;
        }
        self.tick(ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: DetectorMsg) {
        match msg {
            DetectorMsg::Ping { sent_at, epoch } => {
                let pong = DetectorMsg::Pong { echo_at: sent_at, echo_epoch: epoch, epoch: self.epoch };
                ctx.send(from, pong);
            }
            DetectorMsg::Pong { echo_at, echo_epoch, epoch } if echo_epoch == self.epoch => {
                self.on_pong(ctx, from, echo_at, epoch);
            }
            DetectorMsg::Pong { .. } => {} // answers a ping of our previous incarnation
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, _id: TimerId, timer: DetectorTimer) {
        match timer {
            DetectorTimer::Tick => self.tick(ctx),
        }
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, tag: Never, _result: IoResult) {
        match tag {}
    }
}
