//! The queue between the event loop and one peer's sender task.
//!
//! In: messages the component sends to that peer. Out: the same messages, in
//! order, to the sender task; or, when the queue is full, a dropped message,
//! a counter bump and at most one warning per interval.
//!
//! Dropping is the policy because components are written for lossy links,
//! while blocking would stall the whole node behind one slow or dead peer.

use crate::counters::{Counters, bump};
use haven_runtime::NodeId;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// What happened to a pushed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// The queue was full.
    Dropped,
    /// The sender task is gone (the node is shutting down).
    Closed,
}

#[derive(Debug)]
pub(crate) struct SendQueue<M> {
    peer: NodeId,
    tx: mpsc::Sender<M>,
    counters: Arc<Counters>,
    warning_interval: Duration,
    last_warning: Option<Instant>,
    drops_since_warning: u64,
}

impl<M> SendQueue<M> {
    /// A queue of `len_max` messages for `peer`, and its receiving end.
    pub(crate) fn new(
        peer: NodeId,
        len_max: usize,
        warning_interval: Duration,
        counters: Arc<Counters>,
    ) -> (Self, mpsc::Receiver<M>) {
        let (tx, rx) = mpsc::channel(len_max);
        let queue = SendQueue { peer, tx, counters, warning_interval, last_warning: None, drops_since_warning: 0 };
        (queue, rx)
    }

    /// Queues `msg` without ever waiting.
    pub(crate) fn push(&mut self, msg: M) -> Pushed {
        match self.tx.try_send(msg) {
            Ok(()) => Pushed::Queued,
            Err(TrySendError::Full(_)) => {
                bump(&self.counters.send_drops);
                self.note_drop();
                Pushed::Dropped
            }
            Err(TrySendError::Closed(_)) => {
                bump(&self.counters.send_drops);
                Pushed::Closed
            }
        }
    }

    fn note_drop(&mut self) {
        self.drops_since_warning += 1;
        let due = self.last_warning.is_none_or(|at| at.elapsed() >= self.warning_interval);
        if due {
            tracing::warn!(
                peer = %self.peer,
                dropped = self.drops_since_warning,
                "send queue full (peer slow or unreachable), dropping messages"
            );
            self.last_warning = Some(Instant::now());
            self.drops_since_warning = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_new_messages_and_keeps_old_ones() {
        let counters = Arc::new(Counters::default());
        let (mut queue, mut rx) = SendQueue::new(NodeId(2), 3, Duration::from_secs(1), counters.clone());
        let pushed: Vec<Pushed> = (0..10).map(|i| queue.push(i)).collect();
        assert_eq!(pushed.iter().filter(|p| **p == Pushed::Queued).count(), 3);
        assert_eq!(pushed[3..], [Pushed::Dropped; 7]);
        assert_eq!(counters.snapshot().send_drops, 7);
        let received: Vec<i32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(received, vec![0, 1, 2]);
        // Room again once the receiver has drained it.
        assert_eq!(queue.push(10), Pushed::Queued);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let counters = Arc::new(Counters::default());
        let (mut queue, _rx) = SendQueue::new(NodeId(2), 1, Duration::from_secs(3600), counters);
        queue.push(0);
        for i in 1..=5 {
            queue.push(i);
        }
        // The first drop warned; the four after it wait for the interval.
        assert_eq!(queue.drops_since_warning, 4);
        assert!(queue.last_warning.is_some());
    }

    #[test]
    fn a_closed_queue_reports_closed() {
        let counters = Arc::new(Counters::default());
        let (mut queue, rx) = SendQueue::new(NodeId(2), 1, Duration::from_secs(1), counters);
        drop(rx);
        assert_eq!(queue.push(1), Pushed::Closed);
    }
}
