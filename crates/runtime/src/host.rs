//! The bridge between a component and an executor.
//!
//! In: the executor's calls — start, deliver a message, fire a timer,
//! complete an I/O — each with the node's current clock reading.
//! Out: a list of [`Effect`]s for the executor to carry out.
//!
//! The host owns the component, its RNG and the bookkeeping both executors
//! would otherwise duplicate: which timers are live (a cancelled timer that
//! the executor still fires is dropped here) and which I/O tag belongs to
//! which pending operation. Executors therefore deal only in ids and
//! deadlines, never in the component's own types.

use crate::Rng;
use crate::component::{Component, Ctx, IoId, TimerId};
use crate::disk::{IoRequest, IoResult};
use crate::node::NodeId;
use crate::time::Instant;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Something the executor must do on a component's behalf.
#[derive(Clone, PartialEq, Eq)]
pub enum Effect<M, O> {
    Send {
        to: NodeId,
        msg: M,
    },
    /// Call `Host::fire(id)` once the node's clock reaches `at`.
    SetTimer {
        id: TimerId,
        at: Instant,
    },
    /// The timer will be ignored if fired; the executor may drop it early.
    CancelTimer {
        id: TimerId,
    },
    /// Perform `request` and call `Host::complete(id, result)`.
    Io {
        id: IoId,
        request: IoRequest,
    },
    /// A top-level output: an observation for the executor (logged in
    /// production, recorded and checked in the simulator).
    Output(O),
}

impl<M: fmt::Debug, O: fmt::Debug> fmt::Debug for Effect<M, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Send { to, msg } => write!(f, "send {to} {msg:?}"),
            Effect::SetTimer { id, at } => write!(f, "timer#{} at {at}", id.0),
            Effect::CancelTimer { id } => write!(f, "cancel timer#{}", id.0),
            Effect::Io { id, request } => write!(f, "io#{} {request:?}", id.0),
            Effect::Output(out) => write!(f, "output {out:?}"),
        }
    }
}

/// Live-object limits: a component that exceeds them is buggy (leaking
/// timers or never waiting for I/O), and we would rather stop loudly.
pub const TIMERS_LIVE_MAX: usize = 1 << 20;
pub const IO_PENDING_MAX: usize = 1 << 16;

/// One component instance and its per-incarnation bookkeeping.
pub struct Host<C: Component> {
    node: NodeId,
    component: C,
    rng: Rng,
    next_id: u64,
    timers: BTreeMap<TimerId, C::Timer>,
    pending_io: BTreeMap<IoId, C::Io>,
}

impl<C: Component> fmt::Debug for Host<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("node", &self.node)
            .field("timers", &self.timers.len())
            .field("pending_io", &self.pending_io.len())
            .finish()
    }
}

/// Effects of one host call, in the order the component requested them.
pub type Effects<C> = Vec<Effect<<C as Component>::Msg, <C as Component>::Out>>;

impl<C: Component> Host<C> {
    pub fn new(node: NodeId, component: C, rng: Rng) -> Self {
        Host { node, component, rng, next_id: 0, timers: BTreeMap::new(), pending_io: BTreeMap::new() }
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    pub fn component(&self) -> &C {
        &self.component
    }

    pub fn component_mut(&mut self) -> &mut C {
        &mut self.component
    }

    /// Number of timers set and neither fired nor cancelled.
    pub fn timers_live(&self) -> usize {
        self.timers.len()
    }

    /// Number of disk operations started and not completed.
    pub fn io_pending(&self) -> usize {
        self.pending_io.len()
    }

    pub fn start(&mut self, now: Instant, out: &mut Effects<C>) {
        let (component, mut ctx) = self.split(now, out);
        component.on_start(&mut ctx);
    }

    pub fn deliver(&mut self, now: Instant, from: NodeId, msg: C::Msg, out: &mut Effects<C>) {
        let (component, mut ctx) = self.split(now, out);
        component.on_message(&mut ctx, from, msg);
    }

    /// Delivers messages that were waiting together (see `Component::on_messages`).
    pub fn deliver_batch(&mut self, now: Instant, batch: Vec<(NodeId, C::Msg)>, out: &mut Effects<C>) {
        let (component, mut ctx) = self.split(now, out);
        component.on_messages(&mut ctx, batch);
    }

    /// Fires timer `id` unless it was cancelled (then nothing happens).
    pub fn fire(&mut self, now: Instant, id: TimerId, out: &mut Effects<C>) {
        let Some(timer) = self.timers.remove(&id) else { return };
        let (component, mut ctx) = self.split(now, out);
        component.on_timer(&mut ctx, id, timer);
    }

    /// Completes I/O `id`. Every `Effect::Io` must be completed exactly once.
    pub fn complete(&mut self, now: Instant, id: IoId, result: IoResult, out: &mut Effects<C>) {
        let tag = self.pending_io.remove(&id);
        let tag = tag.unwrap_or_else(|| panic!("executor completed unknown or finished io#{}", id.0));
        let (component, mut ctx) = self.split(now, out);
        component.on_io(&mut ctx, id, tag, result);
    }

    fn split<'a>(&'a mut self, now: Instant, effects: &'a mut Effects<C>) -> (&'a mut C, HostCtx<'a, C>) {
        let ctx = HostCtx {
            node: self.node,
            now,
            rng: &mut self.rng,
            next_id: &mut self.next_id,
            timers: &mut self.timers,
            pending_io: &mut self.pending_io,
            effects,
        };
        (&mut self.component, ctx)
    }
}

/// The top-level context: records effects for the executor.
struct HostCtx<'a, C: Component> {
    node: NodeId,
    now: Instant,
    rng: &'a mut Rng,
    next_id: &'a mut u64,
    timers: &'a mut BTreeMap<TimerId, C::Timer>,
    pending_io: &'a mut BTreeMap<IoId, C::Io>,
    effects: &'a mut Effects<C>,
}

impl<C: Component> HostCtx<'_, C> {
    fn fresh_id(&mut self) -> u64 {
        *self.next_id += 1;
        *self.next_id
    }
}

impl<C: Component> Ctx for HostCtx<'_, C> {
    type Msg = C::Msg;
    type Timer = C::Timer;
    type Io = C::Io;
    type Out = C::Out;

    fn node(&self) -> NodeId {
        self.node
    }
    fn now(&self) -> Instant {
        self.now
    }
    fn rng(&mut self) -> &mut Rng {
        self.rng
    }
    fn send(&mut self, to: NodeId, msg: C::Msg) {
        self.effects.push(Effect::Send { to, msg });
    }
    fn set_timer(&mut self, after: Duration, timer: C::Timer) -> TimerId {
        assert!(self.timers.len() < TIMERS_LIVE_MAX, "{}: timer leak: {} live timers", self.node, self.timers.len());
        let id = TimerId(self.fresh_id());
        self.timers.insert(id, timer);
        self.effects.push(Effect::SetTimer { id, at: self.now + after });
        id
    }
    fn cancel_timer(&mut self, id: TimerId) {
        if self.timers.remove(&id).is_some() {
            self.effects.push(Effect::CancelTimer { id });
        }
    }
    fn io(&mut self, request: IoRequest, tag: C::Io) -> IoId {
        assert!(
            self.pending_io.len() < IO_PENDING_MAX,
            "{}: {} disk operations pending",
            self.node,
            self.pending_io.len()
        );
        let id = IoId(self.fresh_id());
        self.pending_io.insert(id, tag);
        self.effects.push(Effect::Io { id, request });
        id
    }
    fn output(&mut self, out: C::Out) {
        self.effects.push(Effect::Output(out));
    }
}
