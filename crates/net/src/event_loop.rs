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

use crate::coalesce::Coalesce;
use crate::counters::{Counters, add, bump};
use crate::disk::{Completion, DiskWorker};
use crate::local::LocalOut;
use crate::network::Network;
use crate::timers::TimerQueue;
use haven_runtime::host::Effects;
use haven_runtime::{Component, Effect, Host, Instant, IoId, IoResult, MESSAGES_PER_BATCH_MAX, NodeId};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

/// Timers fired in one turn, at most, before the loop looks at its other
/// inputs.
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
    /// When the loop last finished a turn: whether a client's request
    /// found it busy.
    since_turn: Coalesce,
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
            since_turn: Coalesce::default(),
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
        // One timer, moved when the next deadline moves: arming a fresh
        // one per turn cost a timer-wheel insert and removal every turn.
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        let mut sleep = std::pin::pin!(sleep);
        loop {
            let next_timer = self.timers.next_deadline();
            if let Some(next) = next_timer {
                let deadline = self.origin + Duration::from_nanos(next.as_nanos());
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
            }
            let input = tokio::select! {
                () = &mut shutdown => break,
                () = &mut sleep, if next_timer.is_some() => Input::Timers,
                Some((id, result)) = inputs.completions.recv() => Input::Completion(id, result),
                Some(first) = inputs.inbound.recv() => Input::Inbound(first),
                Some(msg) = recv_local(&mut inputs.local) => Input::Local(msg),
                update = next_peers(&mut inputs.peer_updates) => Input::Peers(update),
            };
            // A client's request arrives alone (see `coalesce`): under load,
            // let the other clients' tasks queue theirs so one turn takes all.
            if matches!(input, Input::Local(_)) && self.since_turn.busy(tokio::time::Instant::now()) {
                tokio::task::yield_now().await;
            }
            // Timed from the input's arrival: the wait before it is idle time.
            let started = tokio::time::Instant::now();
            let turn = self.turn(input, &mut inputs, &mut effects);
            let took = started.elapsed();
            self.since_turn.idle(started + took);
            self.check_turn(turn, took);
        }
        tracing::info!(timers = self.timers.len(), io_pending = self.host.io_pending(), "node stopping");
        (self.disk, self.network)
    }

    /// Hands one input (or a batch of waiting messages) to the component
    /// and carries out its effects; returns what the turn was, for logs.
    fn turn(&mut self, input: Input<C::Msg>, inputs: &mut Inputs<C::Msg>, effects: &mut Effects<C>) -> &'static str {
        match input {
            Input::Timers => {
                self.fire_due(effects);
                "timers"
            }
            Input::Completion(id, result) => {
                self.host.complete(self.now(), id, result, effects);
                self.apply(effects);
                "disk completion"
            }
            Input::Inbound(first) => {
                let batch = drain(first, |_| inputs.inbound.try_recv().ok());
                self.host.deliver_batch(self.now(), batch, effects);
                self.apply(effects);
                "message"
            }
            Input::Local(msg) => {
                let from = self.local.as_ref().expect("a local receiver comes with its sender").id;
                let local = inputs.local.as_mut().expect("a message came from it");
                let batch = drain((from, msg), |_| local.try_recv().ok().map(|msg| (from, msg)));
                add(&self.counters.local_in, batch.len() as u64);
                self.host.deliver_batch(self.now(), batch, effects);
                self.apply(effects);
                "local message"
            }
            Input::Peers(update) => {
                match update {
                    Some(peers) => self.set_peers(&peers),
                    // No more updates: stop asking, the map stays as it is.
                    None => inputs.peer_updates = None,
                }
                "peer map"
            }
        }
    }

    /// Times a turn; counts a slow one and says so, at most once per interval.
    fn check_turn(&mut self, turn: &'static str, took: Duration) {
        self.counters.turns.record(took);
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

    /// Fires the timers due when the turn began. One set while they fire
    /// waits for a later turn even if due at once, so a component that
    /// spreads work over zero-delay timers (a snapshot written a few keys at
    /// a time) gets one step per turn, with messages and disk completions
    /// between steps, rather than all its steps in one long turn.
    fn fire_due(&mut self, effects: &mut Effects<C>) {
        let now = self.now();
        for id in self.timers.take_due(now, TIMER_FIRES_PER_TURN_MAX) {
            // One cancelled by an earlier firing is ignored by the host.
            self.host.fire(now, id, effects);
            self.apply(effects);
        }
    }

    fn apply(&mut self, effects: &mut Effects<C>) {
        if let Some(local) = self.local.as_ref().map(|local| local.id) {
            for answer in take_answers(effects, local) {
                self.send(local, answer);
            }
        }
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

/// Takes the sends to the in-process client (the answers its callers wait
/// for) out of `effects`, in the component's order, leaving the other
/// effects in theirs: the loop carries the answers out first.
///
/// Why: a send wakes the task that carries it, and a current-thread runtime
/// runs woken tasks in the order they were woken. An answer behind the
/// appends of the same turn waited for their socket writes, each of which
/// on loopback also runs the peer's receive path. Order only changes
/// between destinations, which were never ordered against each other.
/// One pass, no allocation: this runs on every turn.
fn take_answers<M, O>(effects: &mut Vec<Effect<M, O>>, local: NodeId) -> impl Iterator<Item = M> + '_ {
    let answer = move |effect: &mut Effect<M, O>| matches!(effect, Effect::Send { to, .. } if *to == local);
    effects.extract_if(.., answer).map(|effect| match effect {
        Effect::Send { msg, .. } => msg,
        _ => unreachable!("only sends to the local client are taken"),
    })
}

/// What woke the event loop.
enum Input<M> {
    Timers,
    Completion(IoId, IoResult),
    Inbound((NodeId, M)),
    Local(M),
    Peers(Option<BTreeMap<NodeId, SocketAddr>>),
}

/// `first` and whatever else `next` has waiting, up to
/// `MESSAGES_PER_BATCH_MAX`: under load, one turn (and one pass of the
/// component's per-input work) serves many messages; when idle, one.
fn drain<T>(first: T, next: impl FnMut(usize) -> Option<T>) -> Vec<T> {
    let mut batch = Vec::with_capacity(MESSAGES_PER_BATCH_MAX.min(8));
    batch.push(first);
    batch.extend((1..MESSAGES_PER_BATCH_MAX).map_while(next));
    batch
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_takes_what_is_waiting_up_to_the_bound_and_leaves_the_rest() {
        let mut waiting: std::collections::VecDeque<usize> = (1..=MESSAGES_PER_BATCH_MAX + 5).collect();
        let batch = drain(0, |_| waiting.pop_front());
        assert_eq!(batch, (0..MESSAGES_PER_BATCH_MAX).collect::<Vec<_>>(), "the first, then the next in order");
        assert_eq!(waiting.len(), 6, "the rest waits for the next turn");
        let mut empty = std::collections::VecDeque::<usize>::new();
        assert_eq!(drain(7, |_| empty.pop_front()), [7], "when idle, a turn is one message");
    }

    #[test]
    fn answers_to_the_local_client_go_first_and_every_group_keeps_its_order() {
        let (local, peer) = (NodeId(1_000), NodeId(2));
        let send = |to, msg: u32| Effect::<u32, u32>::Send { to, msg };
        let mut effects =
            vec![send(peer, 1), Effect::Output(2), send(local, 3), send(NodeId(3), 4), send(local, 5), send(peer, 6)];
        let answers: Vec<u32> = take_answers(&mut effects, local).collect();
        assert_eq!(answers, [3, 5]);
        assert_eq!(effects, [send(peer, 1), Effect::Output(2), send(NodeId(3), 4), send(peer, 6)]);
    }
}
