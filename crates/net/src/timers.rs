//! The event loop's timer deadlines.
//!
//! In: `SetTimer`/`CancelTimer` effects (id and deadline) and the clock.
//! Out: the earliest deadline to sleep until, and the ids that are due, in
//! deadline order (ties by id, i.e. by the order they were set). Cancelled
//! timers are removed at once so they cost nothing later; the host would
//! ignore them anyway. Size is bounded by the host's `TIMERS_LIVE_MAX`.

use haven_runtime::{Instant, TimerId};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    by_deadline: BTreeSet<(Instant, TimerId)>,
    deadlines: BTreeMap<TimerId, Instant>,
}

impl TimerQueue {
    pub(crate) fn insert(&mut self, id: TimerId, at: Instant) {
        if let Some(old) = self.deadlines.insert(id, at) {
            self.by_deadline.remove(&(old, id));
        }
        self.by_deadline.insert((at, id));
    }

    pub(crate) fn cancel(&mut self, id: TimerId) {
        if let Some(at) = self.deadlines.remove(&id) {
            self.by_deadline.remove(&(at, id));
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerId> {
        let &(at, id) = self.by_deadline.first()?;
        if at > now {
            return None;
        }
        self.by_deadline.pop_first();
        self.deadlines.remove(&id);
        Some(id)
    }

    /// Removes and returns the timers due at `now`, at most `len_max`, in
    /// deadline order: one turn's worth. Timers set while these fire are
    /// not among them, even when due at once.
    pub(crate) fn take_due(&mut self, now: Instant, len_max: usize) -> Vec<TimerId> {
        std::iter::from_fn(|| self.pop_due(now)).take(len_max).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.deadlines.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn due_timers_come_out_in_deadline_order_and_cancelled_ones_never() {
        let mut timers = TimerQueue::default();
        timers.insert(TimerId(1), at(30));
        timers.insert(TimerId(2), at(10));
        timers.insert(TimerId(3), at(20));
        timers.insert(TimerId(4), at(10));
        timers.cancel(TimerId(3));
        assert_eq!(timers.next_deadline(), Some(at(10)));
        assert_eq!(timers.pop_due(at(5)), None);
        let due: Vec<u64> = std::iter::from_fn(|| timers.pop_due(at(30))).map(|id| id.0).collect();
        assert_eq!(due, vec![2, 4, 1]);
        assert_eq!(timers.len(), 0);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn re_inserting_moves_a_deadline() {
        let mut timers = TimerQueue::default();
        timers.insert(TimerId(1), at(10));
        timers.insert(TimerId(1), at(50));
        assert_eq!(timers.pop_due(at(20)), None);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.pop_due(at(50)), Some(TimerId(1)));
    }

    #[test]
    fn a_turn_takes_the_timers_due_up_to_its_bound_and_leaves_the_rest() {
        let mut q = TimerQueue::default();
        for id in 1..=5 {
            q.insert(TimerId(id), at(id));
        }
        q.insert(TimerId(9), at(100));
        assert_eq!(q.take_due(at(10), 3), vec![TimerId(1), TimerId(2), TimerId(3)]);
        assert_eq!(q.take_due(at(10), 3), vec![TimerId(4), TimerId(5)]);
        assert_eq!(q.take_due(at(10), 3), vec![]);
        assert_eq!(q.len(), 1, "the timer not yet due stays");
    }
}
