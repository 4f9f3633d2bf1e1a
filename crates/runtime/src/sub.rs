//! The context a parent hands to a child component.
//!
//! In: the parent's context and a buffer for the child's outputs.
//! Out: every effect of the child, converted into the parent's types with
//! `From`, and the child's outputs in the buffer. Timer and I/O handles are
//! shared with the parent, so the parent routes a firing back to the right
//! child by the variant of its own timer or I/O-tag enum.

use crate::Rng;
use crate::component::{Ctx, IoId, TimerId};
use crate::disk::IoRequest;
use crate::node::NodeId;
use crate::time::Instant;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// A child's view of its parent's context.
pub struct Sub<'a, P, M, T, I, O> {
    parent: &'a mut P,
    outputs: &'a mut Vec<O>,
    _types: PhantomData<fn(M, T, I)>,
}

impl<'a, P, M, T, I, O> Sub<'a, P, M, T, I, O> {
    pub fn new(parent: &'a mut P, outputs: &'a mut Vec<O>) -> Self {
        Sub { parent, outputs, _types: PhantomData }
    }
}

impl<P, M, T, I, O> fmt::Debug for Sub<'_, P, M, T, I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sub").field("outputs", &self.outputs.len()).finish()
    }
}

impl<P, M, T, I, O> Ctx for Sub<'_, P, M, T, I, O>
where
    P: Ctx,
    P::Msg: From<M>,
    P::Timer: From<T>,
    P::Io: From<I>,
{
    type Msg = M;
    type Timer = T;
    type Io = I;
    type Out = O;

    fn node(&self) -> NodeId {
        self.parent.node()
    }
    fn now(&self) -> Instant {
        self.parent.now()
    }
    fn rng(&mut self) -> &mut Rng {
        self.parent.rng()
    }
    fn send(&mut self, to: NodeId, msg: M) {
        self.parent.send(to, msg.into());
    }
    fn set_timer(&mut self, after: Duration, timer: T) -> TimerId {
        self.parent.set_timer(after, timer.into())
    }
    fn cancel_timer(&mut self, id: TimerId) {
        self.parent.cancel_timer(id);
    }
    fn io(&mut self, request: IoRequest, tag: I) -> IoId {
        self.parent.io(request, tag.into())
    }
    fn output(&mut self, out: O) {
        self.outputs.push(out);
    }
}
