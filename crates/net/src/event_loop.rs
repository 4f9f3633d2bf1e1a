//! The single-threaded loop that drives one node's component.
//!
//! In: messages from peers and from the node itself (one bounded channel),
//! messages from the in-process client, if any (another),
//! timer deadlines, disk completions, new versions of the peer map, if
//! any, and the shutdown signal.
//! Out: calls into the component's [`Host`], whose effects it carries out:
//! sends go to per-peer queues (or straight back into the inbound channel
//! for the node itself, or to the in-process client's channel), timers into
//! a deadline queue, disk requests to the disk worker, outputs to the log and
//! the caller's callback; peer maps go to the [`Network`].
//!
//! Nothing here waits on a socket or the disk: every hand-off is a
//! non-blocking push into a bounded queue that drops (and counts) when full.

use crate::counters::{Counters, bump};
use crate::disk::{Completion, DiskWorker};
use crate::local::LocalOut;
use crate::network::Network;
use crate::timers::TimerQueue;
use haven_runtime::host::Effects;
use haven_runtime::{Component, Effect, Host, Instant, NodeId};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

/// Timers fired in one turn before the loop looks at its other inputs, so
/// a component that keeps setting zero-delay timers cannot starve them.
const TIMER_FIRES_PER_TURN_MAX: usize = 1024;
/// A turn of the loop longer than this is counted and logged: it delays
/// every heartbeat and vote behind it.
pub const SLOW_TURN: Duration = Duration::from_millis(50);
/// Shortest interval between two slow-turn warnings.
const SLOW_TURN_WARNING_INTERVAL: Duration = Duration::from_secs(5);
/// Distinct unknown destinations warned about; later ones log at debug.
const UNKNOWN_PEER_WARNINGS_MAX: usize = 64;

pub(crate) struct EventLoop<C: Component, F> {
    host: Host<C>,
    /// The node's clock origin: `Instant` is nanoseconds since it.
    origin: tokio::time::Instant,
    timers: TimerQueue,
    network: Network<C::Msg>,
    to_self: mpsc::Sender<(NodeId, C::Msg)>,
    disk: DiskWorker,
    on_output: F,
    counters: Arc<Counters>,
    unknown_peers_warned: BTreeSet<NodeId>,
    /// When the last slow-turn warning was logged.
    slow_turn_warned: Option<tokio::time::Instant>,
    local: Option<LocalOut<C::Msg>>,
}

/// The loop's inputs other than shutdown.
pub(crate) struct Inputs<M> {
    pub(crate) inbound: mpsc::Receiver<(NodeId, M)>,
    pub(crate) completions: mpsc::Receiver<Completion>,
    /// Messages from the in-process client, if any.
    pub(crate) local: Option<mpsc::Receiver<M>>,
    /// New versions of the peer map, until the sender is dropped.
    pub(crate) peer_updates: Option<watch::Receiver<BTreeMap<NodeId, SocketAddr>>>,
}

impl<C: Component, F: FnMut(C::Out)> EventLoop<C, F> {
    pub(crate) fn new(
        host: Host<C>,
        network: Network<C::Msg>,
        to_self: mpsc::Sender<(NodeId, C::Msg)>,
        disk: DiskWorker,
        on_output: F,
        counters: Arc<Counters>,
        local: Option<LocalOut<C::Msg>>,
    ) -> Self {
        let origin = tokio::time::Instant::now();
        let timers = TimerQueue::default();
        let unknown_peers_warned = BTreeSet::new();
        EventLoop {
            host,
            origin,
            timers,
            network,
            to_self,
            disk,
            on_output,
            counters,
            unknown_peers_warned,
            slow_turn_warned: None,
            local,
        }
    }

    /// Starts the component and runs it until `shutdown` resolves; returns
    /// the disk worker and the network for the caller to stop.
    pub(crate) async fn run(
        mut self,
        mut inputs: Inputs<C::Msg>,
        shutdown: impl Future<Output = ()>,
    ) -> (DiskWorker, Network<C::Msg>) {
        let mut effects: Effects<C> = Vec::new();
        self.host.start(self.now(), &mut effects);
        self.apply(&mut effects);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let next_timer = self.timers.next_deadline();
            let deadline = self.origin + Duration::from_nanos(next_timer.unwrap_or(Instant::ZERO).as_nanos());
            let started = tokio::time::Instant::now();
            let turn = tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep_until(deadline), if next_timer.is_some() => {
                    self.fire_due(&mut effects);
                    "timers"
                }
                Some((id, result)) = inputs.completions.recv() => {
                    self.host.complete(self.now(), id, result, &mut effects);
                    self.apply(&mut effects);
                    "disk completion"
                }
                Some((from, msg)) = inputs.inbound.recv() => {
                    self.host.deliver(self.now(), from, msg, &mut effects);
                    self.apply(&mut effects);
                    "message"
                }
                Some(msg) = recv_local(&mut inputs.local) => {
                    let from = self.local.as_ref().expect("a local receiver comes with its sender").id;
                    bump(&self.counters.local_in);
                    self.host.deliver(self.now(), from, msg, &mut effects);
                    self.apply(&mut effects);
                    "local message"
                }
                update = next_peers(&mut inputs.peer_updates) => {
                    match update {
                        Some(peers) => self.set_peers(&peers),
                        // No more updates: stop asking, the map stays as it is.
                        None => inputs.peer_updates = None,
                    }
                    "peer map"
                }
            };
            self.check_turn(turn, started.elapsed());
        }
        tracing::info!(timers = self.timers.len(), io_pending = self.host.io_pending(), "node stopping");
        (self.disk, self.network)
    }

    /// Counts a slow turn and says so, at most once per interval.
    fn check_turn(&mut self, turn: &'static str, took: Duration) {
        if took <= SLOW_TURN {
            return;
        }
        bump(&self.counters.slow_turns);
        let now = tokio::time::Instant::now();
        if self.slow_turn_warned.is_none_or(|at| now.duration_since(at) >= SLOW_TURN_WARNING_INTERVAL) {
            self.slow_turn_warned = Some(now);
            tracing::warn!(turn, took_ms = took.as_millis(), "slow event-loop turn: heartbeats waited behind it");
        }
    }

    fn set_peers(&mut self, peers: &BTreeMap<NodeId, SocketAddr>) {
        if let Err(e) = self.network.set_peers(peers) {
            tracing::error!(error = %e, "peer map update refused, keeping the current one");
        }
    }

    fn now(&self) -> Instant {
        let nanos = self.origin.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(nanos).expect("node up for more than 584 years"))
    }

    fn fire_due(&mut self, effects: &mut Effects<C>) {
        let now = self.now();
        for _ in 0..TIMER_FIRES_PER_TURN_MAX {
            let Some(id) = self.timers.pop_due(now) else { return };
            self.host.fire(now, id, effects);
            self.apply(effects);
        }
    }

    fn apply(&mut self, effects: &mut Effects<C>) {
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, msg } => self.send(to, msg),
                Effect::SetTimer { id, at } => self.timers.insert(id, at),
                Effect::CancelTimer { id } => self.timers.cancel(id),
                Effect::Io { id, request } => self.disk.submit(id, request),
                Effect::Output(out) => {
                    tracing::debug!(output = ?out, "output");
                    bump(&self.counters.outputs);
                    (self.on_output)(out);
                }
            }
        }
    }

    fn send(&mut self, to: NodeId, msg: C::Msg) {
        if let Some(local) = self.local.as_ref().filter(|local| local.id == to) {
            if !local.push(msg, &self.counters) {
                tracing::debug!("local client not keeping up, dropping a message to it");
            }
        } else if to == self.host.node() {
            match self.to_self.try_send((to, msg)) {
                Ok(()) => bump(&self.counters.messages_local),
                Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                    bump(&self.counters.send_drops);
                    tracing::debug!("inbound queue full, dropping a message to self");
                }
            }
        } else if let Some(queue) = self.network.queue(to) {
            queue.push(msg);
        } else {
            bump(&self.counters.send_drops);
            let first =
                self.unknown_peers_warned.len() < UNKNOWN_PEER_WARNINGS_MAX && self.unknown_peers_warned.insert(to);
            if first {
                tracing::warn!(to = %to, "message to a node not in the peer map, dropped");
            } else {
                tracing::debug!(to = %to, "message to a node not in the peer map, dropped");
            }
        }
    }
}

/// The next message from the local client; pending forever without one.
async fn recv_local<M>(local: &mut Option<mpsc::Receiver<M>>) -> Option<M> {
    match local {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next version of the peer map; `None` once its sender is gone;
/// pending forever without a receiver.
async fn next_peers(
    updates: &mut Option<watch::Receiver<BTreeMap<NodeId, SocketAddr>>>,
) -> Option<BTreeMap<NodeId, SocketAddr>> {
    match updates {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}
