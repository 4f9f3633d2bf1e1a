//! The leader's queue of linearizable reads by ReadIndex (thesis §6.4).
//!
//! In: read requests (an opaque caller context), the leader's commit index
//! once it has committed an entry of its own term, the heartbeat round a
//! quorum has answered, and step-down.
//! Out: [`ReadState`]s — the context and the log index the read must wait
//! for — once leadership was confirmed by a round that started after the
//! read arrived; on step-down, the contexts that can no longer be answered.
//!
//! Why each step is needed: the commit index of a new leader may lag what
//! an earlier leader acknowledged, so a read arriving before the leader
//! committed an entry of its term waits for that commit and takes the
//! commit index of that moment. A deposed leader that does not know it yet
//! still believes it leads, so the index is served only after a majority
//! answered a heartbeat sent after the index was taken.

use std::collections::VecDeque;

/// A confirmed read: serve it once the applied index reaches `index`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReadState {
    pub ctx: u64,
    pub index: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct PendingRead {
    ctx: u64,
    index: u64,
    /// The first heartbeat round whose quorum acknowledgement confirms it.
    round: u64,
}

#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    /// Arrived before the leader committed an entry of its term.
    unindexed: Vec<u64>,
    /// Indexed, in arrival order; `round` never decreases along the queue.
    pending: VecDeque<PendingRead>,
}

impl ReadQueue {
    pub(crate) fn len(&self) -> usize {
        self.unindexed.len() + self.pending.len()
    }

    pub(crate) fn push_unindexed(&mut self, ctx: u64) {
        self.unindexed.push(ctx);
    }

    pub(crate) fn push(&mut self, ctx: u64, index: u64, round: u64) {
        let last = self.pending.back().map_or(PendingRead { ctx, index, round }, |&p| p);
        assert!(round >= last.round && index >= last.index, "reads are indexed and confirmed in arrival order");
        self.pending.push_back(PendingRead { ctx, index, round });
    }

    /// The leader committed an entry of its term at `commit`: every read
    /// waiting for that gets this index and waits for `round`.
    pub(crate) fn index_waiting(&mut self, commit: u64, round: u64) -> bool {
        let waiting = std::mem::take(&mut self.unindexed);
        let any = !waiting.is_empty();
        for ctx in waiting {
            self.push(ctx, commit, round);
        }
        any
    }

    /// A quorum acknowledged every round up to `round`: the reads those
    /// rounds confirm, in arrival order.
    pub(crate) fn confirm(&mut self, round: u64) -> Vec<ReadState> {
        let mut confirmed = Vec::new();
        while self.pending.front().is_some_and(|p| p.round <= round) {
            let PendingRead { ctx, index, .. } = self.pending.pop_front().expect("front exists");
            confirmed.push(ReadState { ctx, index });
        }
        confirmed
    }

    /// Leadership ended: every read still queued fails.
    pub(crate) fn abort_all(&mut self) -> Vec<u64> {
        let mut aborted: Vec<u64> = self.pending.drain(..).map(|p| p.ctx).collect();
        aborted.append(&mut self.unindexed);
        aborted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_confirmed_in_order_only_by_their_round_or_a_later_one() {
        let mut q = ReadQueue::default();
        q.push(1, 5, 3);
        q.push(2, 6, 4);
        assert_eq!(q.confirm(2), vec![], "a round older than the read proves nothing about it");
        assert_eq!(q.confirm(3), vec![ReadState { ctx: 1, index: 5 }]);
        assert_eq!(q.confirm(9), vec![ReadState { ctx: 2, index: 6 }]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn unindexed_reads_take_the_commit_index_of_the_term_commit() {
        let mut q = ReadQueue::default();
        q.push_unindexed(7);
        q.push_unindexed(8);
        assert!(q.index_waiting(4, 1));
        assert!(!q.index_waiting(5, 2), "nothing left waiting");
        assert_eq!(q.confirm(1), vec![ReadState { ctx: 7, index: 4 }, ReadState { ctx: 8, index: 4 }]);
    }

    #[test]
    fn step_down_fails_indexed_and_unindexed_reads() {
        let mut q = ReadQueue::default();
        q.push(1, 5, 1);
        q.push_unindexed(2);
        assert_eq!(q.abort_all(), vec![1, 2]);
        assert_eq!(q.len(), 0);
    }
}
