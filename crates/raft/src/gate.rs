//! The durability gate: no message leaves before the state it asserts is on disk.
//!
//! In: notes that the hard state or the log changed; outgoing messages;
//! the caller's reports that a persist request is durable.
//! Out: persist request ids, the messages that may be sent now, and the
//! messages to this node itself (its own vote, its own append ack) once
//! they have become true on disk.
//!
//! The rule is deliberately coarse: a message generated while any change is
//! not yet durable waits until every change made before it is durable.
//! Votes, acknowledgements and replies carrying a new term are thereby
//! always released after the term, vote and entries they depend on. The
//! one exception, [`DurabilityGate::send_now`], is the leader's replication
//! traffic, which may go out before the leader's own fsync (thesis
//! §10.2.1); the leader counts itself toward commit only through a
//! self-acknowledgement that passes this gate.

use crate::message::{Envelope, Message};
use crate::ready::PersistId;
use crate::state::HardState;
use haven_runtime::NodeId;
use std::collections::VecDeque;
use thiserror::Error;

/// What changed since the last persist request was issued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Unstable {
    pub(crate) hard_state: bool,
    /// The first log index to (re)write; the WAL drops its suffix from there.
    pub(crate) entries_from: Option<u64>,
}

impl Unstable {
    fn is_empty(&self) -> bool {
        !self.hard_state && self.entries_from.is_none()
    }
}

/// The caller broke the persist protocol.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PersistError {
    #[error(
        "persist #{id} reported durable, but #{durable_last} is the last durable and #{issued_last} the last issued"
    )]
    UnknownId { id: u64, durable_last: u64, issued_last: u64 },
}

/// A persist request issued and not yet durable.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    id: u64,
    hard_state: Option<HardState>,
    /// The first and last index of the entries it (re)writes.
    entries: Option<(u64, u64)>,
}

#[derive(Debug)]
pub(crate) struct DurabilityGate {
    me: NodeId,
    unstable: Unstable,
    issued_last: u64,
    durable_last: u64,
    /// Issued, not yet durable, oldest first.
    in_flight: VecDeque<InFlight>,
    /// The last log index on disk once every durable persist is applied.
    durable_log_last: u64,
    durable_hard_state: HardState,
    /// Messages waiting for persist `tag`, in generation order (tags never decrease).
    held: VecDeque<(u64, NodeId, Message)>,
    ready: Vec<Envelope>,
    queued_max: usize,
    dropped: u64,
}

impl DurabilityGate {
    /// `durable_log_last`: the last index of the log as restored from disk.
    pub(crate) fn new(
        me: NodeId,
        durable_hard_state: HardState,
        durable_log_last: u64,
        queued_max: usize,
    ) -> DurabilityGate {
        DurabilityGate {
            me,
            unstable: Unstable::default(),
            issued_last: 0,
            durable_last: 0,
            in_flight: VecDeque::new(),
            durable_log_last,
            durable_hard_state,
            held: VecDeque::new(),
            ready: Vec::new(),
            queued_max,
            dropped: 0,
        }
    }

    pub(crate) fn note_hard_state(&mut self) {
        self.unstable.hard_state = true;
    }

    pub(crate) fn note_entries_from(&mut self, index: u64) {
        let from = self.unstable.entries_from.map_or(index, |from| from.min(index));
        self.unstable.entries_from = Some(from);
    }

    /// The log now starts at `first_index` (compaction or an installed
    /// snapshot): unissued entries before it are covered by the snapshot,
    /// and none are left if the log ends before it.
    pub(crate) fn note_log_start(&mut self, first_index: u64, last_index: u64) {
        if let Some(from) = self.unstable.entries_from
            && from < first_index
        {
            self.unstable.entries_from = (first_index <= last_index).then_some(first_index);
        }
    }

    /// Changes waiting to be issued as a persist request, if any.
    pub(crate) fn unstable(&self) -> Option<Unstable> {
        (!self.unstable.is_empty()).then_some(self.unstable)
    }

    /// Turns the unstable changes into persist request `id`; messages held
    /// for "the next request" now wait for exactly this one.
    /// `entries`: the first and last index the request writes, if any.
    pub(crate) fn issue(&mut self, hard_state: Option<HardState>, entries: Option<(u64, u64)>) -> PersistId {
        assert!(!self.unstable.is_empty(), "issuing a persist request with nothing to persist");
        assert_eq!(hard_state.is_some(), self.unstable.hard_state, "hard state in the request iff it changed");
        assert_eq!(entries.map(|(from, _)| from), self.unstable.entries_from, "entries in the request iff unstable");
        self.unstable = Unstable::default();
        self.issued_last += 1;
        self.in_flight.push_back(InFlight { id: self.issued_last, hard_state, entries });
        PersistId(self.issued_last)
    }

    /// The highest index at which the log on disk surely equals the log in
    /// memory: on disk, and below every pending (re)write. A snapshot may
    /// cover only this far — one covering an entry that is still pending
    /// would outlive a crash that loses the entry's write together with the
    /// truncation of the stale suffix after it.
    pub(crate) fn stable_index(&self) -> u64 {
        let pending = self.in_flight.iter().filter_map(|f| f.entries.map(|(from, _)| from));
        let rewrite_from = pending.chain(self.unstable.entries_from).min();
        rewrite_from.map_or(self.durable_log_last, |from| self.durable_log_last.min(from - 1))
    }

    /// A received snapshot replaced the whole log on disk.
    pub(crate) fn note_log_replaced(&mut self, last_index: u64) {
        assert!(self.in_flight.iter().all(|f| f.entries.is_none()), "the log was replaced under a pending write");
        self.durable_log_last = last_index;
    }

    /// The hard state a crash right now would leave on disk.
    pub(crate) fn durable_hard_state(&self) -> HardState {
        self.durable_hard_state
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The persist a message generated now must wait for, if any.
    fn barrier(&self) -> Option<u64> {
        if !self.unstable.is_empty() {
            Some(self.issued_last + 1)
        } else if self.issued_last > self.durable_last {
            Some(self.issued_last)
        } else {
            None
        }
    }

    fn has_room(&mut self, to: NodeId) -> bool {
        // Messages to self confirm durability; dropping one would stall an
        // election or the leader's commit, so they are never dropped.
        if to == self.me || self.held.len() + self.ready.len() < self.queued_max {
            return true;
        }
        self.dropped += 1;
        false
    }

    /// Sends `msg` as soon as everything changed before it is durable.
    pub(crate) fn send(&mut self, to: NodeId, msg: Message) {
        if !self.has_room(to) {
            return;
        }
        match self.barrier() {
            Some(tag) => self.held.push_back((tag, to, msg)),
            None => {
                assert_ne!(to, self.me, "a message to self confirms a change, so something must be pending");
                self.ready.push(Envelope { to, msg });
            }
        }
    }

    /// Leader replication only: sends `msg` without waiting for local disk.
    pub(crate) fn send_now(&mut self, to: NodeId, msg: Message) {
        assert_ne!(to, self.me, "replication is never addressed to self");
        if self.has_room(to) {
            self.ready.push(Envelope { to, msg });
        }
    }

    /// Persist `id` and every one before it are durable. Releases what
    /// waited for them and returns the messages addressed to this node.
    pub(crate) fn durable(&mut self, id: PersistId) -> Result<Vec<Message>, PersistError> {
        let id = id.0;
        if id <= self.durable_last || id > self.issued_last {
            let (durable_last, issued_last) = (self.durable_last, self.issued_last);
            return Err(PersistError::UnknownId { id, durable_last, issued_last });
        }
        self.durable_last = id;
        while let Some(done) = self.in_flight.front().copied().filter(|f| f.id <= id) {
            self.in_flight.pop_front();
            if let Some(hard_state) = done.hard_state {
                self.durable_hard_state = hard_state;
            }
            if let Some((_, last)) = done.entries {
                self.durable_log_last = last;
            }
        }
        let mut to_self = Vec::new();
        while self.held.front().is_some_and(|(tag, _, _)| *tag <= id) {
            let (_, to, msg) = self.held.pop_front().expect("front exists");
            if to == self.me {
                to_self.push(msg);
            } else {
                self.ready.push(Envelope { to, msg });
            }
        }
        Ok(to_self)
    }

    pub(crate) fn take_ready(&mut self) -> Vec<Envelope> {
        std::mem::take(&mut self.ready)
    }

    /// Persist requests issued and not yet reported durable.
    pub(crate) fn persists_pending(&self) -> u64 {
        self.issued_last - self.durable_last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: NodeId = NodeId(1);
    const PEER: NodeId = NodeId(2);

    fn ack(term: u64) -> Message {
        Message::HeartbeatResponse { term, round: 0 }
    }

    #[test]
    fn messages_wait_for_every_change_made_before_them() {
        let mut gate = DurabilityGate::new(ME, HardState::default(), 0, 100);
        gate.send(PEER, ack(1));
        assert_eq!(gate.take_ready().len(), 1, "nothing pending: sent at once");
        gate.note_hard_state();
        gate.send(PEER, ack(2));
        let first = gate.issue(Some(HardState { term: 2, vote: None }), None);
        gate.note_entries_from(1);
        gate.send(PEER, ack(3));
        let second = gate.issue(None, Some((1, 1)));
        assert!(gate.take_ready().is_empty());
        assert_eq!(gate.durable(first), Ok(vec![]));
        assert_eq!(gate.take_ready(), vec![Envelope { to: PEER, msg: ack(2) }]);
        assert_eq!(gate.durable_hard_state().term, 2);
        gate.send(PEER, ack(4));
        assert!(gate.take_ready().is_empty(), "the second persist is still pending");
        gate.durable(second).unwrap();
        assert_eq!(gate.take_ready().len(), 2);
    }

    #[test]
    fn self_messages_come_back_to_the_caller_and_ids_are_checked() {
        let mut gate = DurabilityGate::new(ME, HardState::default(), 0, 100);
        gate.note_hard_state();
        gate.send(ME, ack(5));
        let id = gate.issue(Some(HardState { term: 5, vote: Some(ME) }), None);
        assert_eq!(gate.durable(PersistId(2)), Err(PersistError::UnknownId { id: 2, durable_last: 0, issued_last: 1 }));
        assert_eq!(gate.durable(id), Ok(vec![ack(5)]));
        assert_eq!(gate.durable(id), Err(PersistError::UnknownId { id: 1, durable_last: 1, issued_last: 1 }));
    }

    #[test]
    fn the_queue_is_bounded_but_self_messages_are_kept() {
        let mut gate = DurabilityGate::new(ME, HardState::default(), 0, 1);
        gate.note_entries_from(1);
        gate.send(PEER, ack(1));
        gate.send(PEER, ack(1));
        gate.send(ME, ack(1));
        assert_eq!(gate.dropped(), 1);
        let id = gate.issue(None, Some((1, 3)));
        assert_eq!(gate.durable(id), Ok(vec![ack(1)]));
        assert_eq!(gate.take_ready().len(), 1);
    }

    #[test]
    fn the_stable_index_stops_below_every_pending_rewrite() {
        let mut gate = DurabilityGate::new(ME, HardState::default(), 10, 100);
        assert_eq!(gate.stable_index(), 10, "the restored log is on disk");
        gate.note_entries_from(11);
        assert_eq!(gate.stable_index(), 10, "an append beyond the end leaves the log stable");
        let append = gate.issue(None, Some((11, 12)));
        gate.note_entries_from(6);
        assert_eq!(gate.stable_index(), 5, "an unissued truncation at 6");
        let rewrite = gate.issue(None, Some((6, 7)));
        gate.durable(append).unwrap();
        assert_eq!(gate.stable_index(), 5, "the truncation is still pending after the append is durable");
        gate.durable(rewrite).unwrap();
        assert_eq!(gate.stable_index(), 7, "the disk now ends where the rewrite did");
        gate.note_log_replaced(20);
        assert_eq!(gate.stable_index(), 20);
    }
}
