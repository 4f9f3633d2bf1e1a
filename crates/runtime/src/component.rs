//! The two traits of the component model.
//!
//! In: a [`Component`] receives a start, a message (with its sender), a
//! timer firing or an I/O completion, each with a context.
//! Out: through the [`Ctx`], it sends, sets/cancels timers, starts I/O and
//! emits outputs; it reads its node's clock and RNG from the same context.
//!
//! The associated types keep everything static: a parent's message enum
//! wraps its children's, and so do its timer, I/O-tag and output types, so
//! routing is a `match`, never a downcast.

use crate::Rng;
use crate::disk::{IoRequest, IoResult};
use crate::node::NodeId;
use crate::sub::Sub;
use crate::time::Instant;
use crate::wire::Message;
use std::fmt::Debug;
use std::time::Duration;

/// A handle to a timer, unique within one node incarnation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TimerId(pub u64);

/// A handle to a disk operation, unique within one node incarnation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct IoId(pub u64);

/// Everything a component may do to the world, and all it may learn from it
/// outside its handlers' arguments.
pub trait Ctx {
    /// Messages this component sends (to its peer components on other nodes).
    type Msg;
    /// What this component attaches to a timer, handed back when it fires.
    type Timer;
    /// What this component attaches to a disk operation, handed back on completion.
    type Io;
    /// What this component reports to its parent (or, at the top, to the executor).
    type Out;

    /// The node this component runs on.
    fn node(&self) -> NodeId;
    /// The node's monotonic clock. Constant during one handler call.
    fn now(&self) -> Instant;
    /// The node's random number generator.
    fn rng(&mut self) -> &mut Rng;
    /// Sends `msg` to the same component on node `to`. Delivery is best
    /// effort: the message may be lost, delayed, duplicated or reordered.
    fn send(&mut self, to: NodeId, msg: Self::Msg);
    /// Fires `timer` after `after` has passed on this node's clock.
    fn set_timer(&mut self, after: Duration, timer: Self::Timer) -> TimerId;
    /// Cancels a timer; cancelling one that fired or was cancelled is a no-op.
    fn cancel_timer(&mut self, id: TimerId);
    /// Starts a disk operation; its result arrives later through `on_io`.
    fn io(&mut self, request: IoRequest, tag: Self::Io) -> IoId;
    /// Reports `out` to the parent component.
    fn output(&mut self, out: Self::Out);

    /// A context for a child component whose types convert into this one's.
    /// The child's outputs are appended to `outputs` for the parent to handle
    /// after the child's handler returns.
    fn sub<'a, M, T, I, O>(&'a mut self, outputs: &'a mut Vec<O>) -> Sub<'a, Self, M, T, I, O>
    where
        Self: Sized,
        Self::Msg: From<M>,
        Self::Timer: From<T>,
        Self::Io: From<I>,
    {
        Sub::new(self, outputs)
    }
}

/// A context with exactly the types of component `C`: the bound every
/// handler takes, so handlers read as `ctx: &mut impl CtxFor<Self>`.
pub trait CtxFor<C: Component + ?Sized>: Ctx<Msg = C::Msg, Timer = C::Timer, Io = C::Io, Out = C::Out> {}

impl<C, X> CtxFor<C> for X
where
    C: Component + ?Sized,
    X: Ctx<Msg = C::Msg, Timer = C::Timer, Io = C::Io, Out = C::Out>,
{
}

/// Messages one call of [`Component::on_messages`] hands over, at most, in
/// production and in the simulator alike: enough to share a log write among
/// a busy leader's proposals, few enough that the call stays short and
/// timers and disk completions keep their turn.
pub const MESSAGES_PER_BATCH_MAX: usize = 64;

/// A reactive state machine. Handlers must be quick and must not block:
/// anything slow is a disk operation or a timer.
pub trait Component {
    type Msg: Message;
    type Timer: Debug;
    type Io: Debug;
    type Out: Debug;

    /// Called once when the node starts or restarts (volatile state is fresh;
    /// durable state must be read back from disk).
    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>);
    /// A message from the same component on node `from`.
    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: Self::Msg);
    /// Messages that were all waiting at once, in arrival order (at most
    /// [`MESSAGES_PER_BATCH_MAX`]). An executor
    /// under load may hand them over together so that a component can share
    /// the work each would cause alone (one log write and one broadcast for
    /// many proposals); the effect must be that of delivering them one by one
    /// with no other input between. The simulator delivers one at a time.
    fn on_messages(&mut self, ctx: &mut impl CtxFor<Self>, batch: Vec<(NodeId, Self::Msg)>) {
        for (from, msg) in batch {
            self.on_message(ctx, from, msg);
        }
    }
    /// A timer set by this component fired (cancelled timers never fire).
    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: Self::Timer);
    /// A disk operation started by this component completed.
    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: Self::Io, result: IoResult);
}
