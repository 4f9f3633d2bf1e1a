//! The event queue.
//!
//! In: events, each with the virtual time it is due. Out: the earliest
//! event, ties broken by a sequence number that strictly increases with every
//! push, so that equal times are processed in the order they were scheduled
//! and a run never depends on the heap's internal layout.

use crate::disk::DiskOp;
use crate::time::SimTime;
use haven_runtime::{IoId, NodeId, TimerId};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// What happens. Node-targeted kinds carry the incarnation they were meant
/// for; the simulator drops them if the node has crashed since.
#[derive(Debug)]
pub(crate) enum EventKind<M> {
    /// `from` need not be a node of the simulation (see `Sim::inject`).
    /// `arrived` is set once the message has passed the link checks at its
    /// arrival (it was then held by a pause, and is past the wire).
    Deliver {
        from: NodeId,
        to: u32,
        incarnation: u32,
        send_seq: u64,
        arrived: bool,
        msg: M,
    },
    /// `epoch` changes when the node's clock is reset, which reschedules
    /// every live timer and makes older timer events stale.
    Timer {
        node: u32,
        incarnation: u32,
        epoch: u32,
        id: TimerId,
    },
    Io {
        node: u32,
        incarnation: u32,
        id: IoId,
        op: DiskOp,
    },
    /// The end of pause number `pause`.
    Resume {
        node: u32,
        incarnation: u32,
        pause: u32,
    },
    /// A closure scheduled with `Sim::after`.
    Call {
        slot: u32,
    },
    ProcStart {
        proc: u32,
    },
    ProcFire {
        proc: u32,
        index: u32,
    },
    /// The scenario's terminal step: heal everything, faults are over.
    Heal,
    /// A liveness check-point: nothing happens but the checkers run.
    Check,
    /// The end of the liveness phase and of the run.
    End,
    /// Messages that waited for a paused node, handed over together
    /// (`SimConfig::batch_on_resume`); each is past the wire, as `Deliver`
    /// with `arrived` set.
    DeliverBatch {
        to: u32,
        incarnation: u32,
        msgs: Vec<(NodeId, M)>,
    },
}

impl<M> EventKind<M> {
    /// The node whose component this event runs, if any.
    pub(crate) fn node(&self) -> Option<u32> {
        match self {
            EventKind::Deliver { to, .. } | EventKind::DeliverBatch { to, .. } => Some(*to),
            EventKind::Timer { node, .. } | EventKind::Io { node, .. } => Some(*node),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Event<M> {
    pub(crate) at: SimTime,
    pub(crate) kind: EventKind<M>,
}

/// What the heap orders: an event's time and sequence number, and where
/// the event itself waits. Events carry whole messages (a `StationMsg` is
/// 136 bytes); keeping them out of the heap makes each of its sift steps
/// move 24 bytes instead of the event, which with millions queued
/// (`ha-scale`) was the simulator's largest cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    at: SimTime,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    /// `seq` is unique, so `slot` never decides.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug)]
pub(crate) struct EventQueue<M> {
    heap: BinaryHeap<Key>,
    /// The events, by slot; `None` for a free slot (listed in `free`).
    slots: Vec<Option<EventKind<M>>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<M> EventQueue<M> {
    pub(crate) fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), next_seq: 0 }
    }

    pub(crate) fn push(&mut self, at: SimTime, kind: EventKind<M>) {
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                let place = &mut self.slots[slot as usize];
                assert!(place.is_none(), "a free slot holds no event");
                *place = Some(kind);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("under 4 billion events queued");
                self.slots.push(Some(kind));
                slot
            }
        };
        self.heap.push(Key { at, seq: self.next_seq, slot });
    }

    pub(crate) fn pop(&mut self) -> Option<Event<M>> {
        let Key { at, slot, .. } = self.heap.pop()?;
        let kind = self.slots[slot as usize].take().expect("a queued key's slot holds its event");
        self.free.push(slot);
        Some(Event { at, kind })
    }

    pub(crate) fn next_at(&self) -> Option<SimTime> {
        self.heap.peek().map(|k| k.at)
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_push_order() {
        let mut q = EventQueue::<()>::new();
        for (at, slot) in [(5, 0), (1, 1), (5, 2), (1, 3), (3, 4)] {
            q.push(SimTime::from_nanos(at), EventKind::Call { slot });
        }
        let order: Vec<u32> = std::iter::from_fn(|| q.pop())
            .map(|e| match e.kind {
                EventKind::Call { slot } => slot,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(order, vec![1, 3, 4, 0, 2]);
    }
}
