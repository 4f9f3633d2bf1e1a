//! Client sessions: exactly-once application of retried commands (Raft
//! thesis §6.3). Part of the replicated state: every replica applies the
//! same commands in the same order, so every replica has the same table.
//!
//! In: (client, seq) of each applied command, and its result.
//! Out: for a command seen before, its cached result (seq equal to the
//! last one) or `Expired` (an older seq: its answer is gone); otherwise
//! `New`. At most `clients_max` sessions are kept; when a new client comes,
//! the session applied longest ago is dropped (deterministically, by log
//! index), and that client's late retries then get `Expired`, never a
//! second application.

use haven_store::{Response, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type Outcome = Result<Response, StoreError>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Session {
    seq: u64,
    outcome: Outcome,
    index: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Seen<'a> {
    New,
    Duplicate(&'a Outcome),
    Expired,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sessions {
    clients_max: usize,
    by_client: BTreeMap<u64, Session>,
    /// (index of last application, client): eviction order.
    by_age: BTreeMap<(u64, u64), ()>,
    /// Clients evicted: their stale retries must not apply again.
    evicted_seq: BTreeMap<u64, u64>,
}

impl Sessions {
    pub fn new(clients_max: usize) -> Sessions {
        assert!(clients_max > 0, "at least one session");
        Sessions { clients_max, ..Sessions::default() }
    }

    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    pub fn check(&self, client: u64, seq: u64) -> Seen<'_> {
        match self.by_client.get(&client) {
            Some(s) if seq == s.seq => Seen::Duplicate(&s.outcome),
            Some(s) if seq < s.seq => Seen::Expired,
            Some(_) => Seen::New,
            None if self.evicted_seq.get(&client).is_some_and(|&last| seq <= last) => Seen::Expired,
            None => Seen::New,
        }
    }

    /// Records the outcome of a new command applied at `index`.
    pub fn record(&mut self, client: u64, seq: u64, index: u64, outcome: Outcome) {
        if let Some(old) = self.by_client.remove(&client) {
            assert!(seq > old.seq, "client {client}: seq {seq} recorded after {}", old.seq);
            self.by_age.remove(&(old.index, client));
        } else if self.by_client.len() == self.clients_max {
            let ((_, evicted), ()) = self.by_age.pop_first().expect("full table has an oldest session");
            let gone = self.by_client.remove(&evicted).expect("indexes agree");
            self.evicted_seq.insert(evicted, gone.seq);
        }
        self.by_age.insert((index, client), ());
        self.by_client.insert(client, Session { seq, outcome, index });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_store::{PutResponse, ResponseHeader};

    fn ok(rev: u64) -> Outcome {
        Ok(Response::Put(PutResponse { header: ResponseHeader { revision: rev }, prev_kv: None }))
    }

    #[test]
    fn retries_get_the_cached_outcome_and_old_ones_expire() {
        let mut s = Sessions::new(2);
        assert_eq!(s.check(7, 1), Seen::New);
        s.record(7, 1, 10, ok(2));
        assert_eq!(s.check(7, 1), Seen::Duplicate(&ok(2)));
        s.record(7, 2, 11, ok(3));
        assert_eq!(s.check(7, 1), Seen::Expired);
        assert_eq!(s.check(7, 3), Seen::New);
    }

    #[test]
    fn the_oldest_session_is_evicted_and_its_retries_expire() {
        let mut s = Sessions::new(2);
        s.record(1, 5, 10, ok(2));
        s.record(2, 1, 11, ok(3));
        s.record(3, 1, 12, ok(4));
        assert_eq!(s.len(), 2);
        assert_eq!(s.check(1, 5), Seen::Expired, "evicted: never applied twice");
        assert_eq!(s.check(1, 6), Seen::New);
        assert_eq!(s.check(2, 1), Seen::Duplicate(&ok(3)));
    }
}
