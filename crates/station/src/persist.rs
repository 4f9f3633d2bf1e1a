//! Which WAL acknowledgement makes which Raft persist request durable.
//!
//! In: each Raft persist request with the last WAL ticket it was written
//! under (or none, if it had nothing to write); the WAL's `Durable` events.
//! Out: the persist ids to report to Raft, in the order they were issued,
//! as the WAL acknowledges the tickets covering them.

use haven_raft::PersistId;
use haven_wal::Ticket;
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct PersistTracker {
    pending: VecDeque<(PersistId, Option<Ticket>)>,
    durable_through: Option<Ticket>,
}

impl PersistTracker {
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn issued(&mut self, id: PersistId, ticket: Option<Ticket>) {
        if let Some(&(last, _)) = self.pending.back() {
            assert!(id > last, "persist ids grow");
        }
        self.pending.push_back((id, ticket));
    }

    /// The WAL made everything up to `through` durable.
    pub fn durable(&mut self, through: Ticket) {
        self.durable_through = self.durable_through.max(Some(through));
    }

    /// Whether the WAL has acknowledged `ticket`.
    pub fn is_durable(&self, ticket: Ticket) -> bool {
        self.durable_through.is_some_and(|through| through >= ticket)
    }

    /// Persist ids now durable, oldest first.
    pub fn take_durable(&mut self) -> Vec<PersistId> {
        let mut done = Vec::new();
        while let Some(&(id, ticket)) = self.pending.front() {
            if ticket.is_some() && ticket > self.durable_through {
                break;
            }
            done.push(id);
            self.pending.pop_front();
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_complete_in_order_as_tickets_become_durable() {
        let mut t = PersistTracker::default();
        t.issued(PersistId(1), Some(Ticket(1)));
        t.issued(PersistId(2), None);
        t.issued(PersistId(3), Some(Ticket(3)));
        assert_eq!(t.take_durable(), vec![]);
        t.durable(Ticket(1));
        assert_eq!(t.take_durable(), vec![PersistId(1), PersistId(2)], "an empty persist follows its predecessor");
        t.durable(Ticket(2));
        assert_eq!(t.take_durable(), vec![]);
        t.durable(Ticket(4));
        assert_eq!(t.take_durable(), vec![PersistId(3)]);
    }
}
