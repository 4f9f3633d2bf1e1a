//! When a task should let the other ready tasks run before it takes its
//! waiting inputs as one batch.
//!
//! In: when the task went back to waiting, and when an input woke it. Out:
//! whether to yield once first (`tokio::task::yield_now`), so that the
//! tasks ready alongside it add their inputs to the batch.
//!
//! Why: tokio runs a task woken by another at once (its LIFO slot). A
//! client's request wakes the event loop, which takes it alone, and the
//! message it makes wakes the peer link, which writes it alone: under load,
//! a turn and a system call per request. Yielding costs a poll of the I/O
//! driver, tens of microseconds on a virtual machine, which a lone request
//! should not pay. So a task yields only when the input came within
//! [`BUSY_GAP_MAX`] of its last piece of work, that is, while other tasks
//! kept the thread busy in between.

use tokio::time::{Duration, Instant};

/// An input this soon after the task's last work means the thread was busy
/// in between. A single client's next request comes after at least a round
/// trip through the client, with two thread wake-ups, which takes longer.
pub(crate) const BUSY_GAP_MAX: Duration = Duration::from_micros(50);

#[derive(Debug, Default)]
pub(crate) struct Coalesce {
    idle_since: Option<Instant>,
}

impl Coalesce {
    /// The task finished its work at `now` and waits for the next input.
    pub(crate) fn idle(&mut self, now: Instant) {
        self.idle_since = Some(now);
    }

    /// Whether an input arriving at `now` came within [`BUSY_GAP_MAX`] of
    /// the task's last work.
    pub(crate) fn busy(&self, now: Instant) -> bool {
        self.idle_since.is_some_and(|idle| now.saturating_duration_since(idle) < BUSY_GAP_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_input_close_behind_the_last_work_is_busy() {
        let start = Instant::now();
        let mut coalesce = Coalesce::default();
        assert!(!coalesce.busy(start), "before any work the task is idle");
        coalesce.idle(start);
        assert!(coalesce.busy(start + BUSY_GAP_MAX / 2));
        assert!(!coalesce.busy(start + BUSY_GAP_MAX), "a gap of the whole window is not busy");
        coalesce.idle(start + BUSY_GAP_MAX * 3);
        assert!(coalesce.busy(start + BUSY_GAP_MAX * 4 - Duration::from_nanos(1)));
    }

    #[test]
    fn an_input_stamped_before_the_work_ended_is_busy() {
        // Two reads of the clock on different threads may cross.
        let start = Instant::now() + Duration::from_secs(1);
        let mut coalesce = Coalesce::default();
        coalesce.idle(start);
        assert!(coalesce.busy(start - Duration::from_micros(5)));
    }
}
