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
//!
//! What makes them `Expired` is a tombstone: the evicted client's last seq.
//! Tombstones are bounded too, at `clients_max`, the oldest eviction
//! dropped first; a client that comes back with a newer command trades its
//! tombstone for a session. So a retry is refused as long as fewer than
//! `clients_max` other clients were evicted after its own: with the
//! default 10,000 and the stations' pooled client ids, a retry would have
//! to wait while 20,000 other sessions were used. Before the bound, a
//! long-lived cluster kept a tombstone for every client id any station run
//! had ever used, in every snapshot.

use haven_store::{Response, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

/// An evicted client's last seq, and the index of the command whose
/// client took its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Tombstone {
    seq: u64,
    index: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sessions {
    clients_max: usize,
    by_client: BTreeMap<u64, Session>,
    /// (index of last application, client): eviction order.
    by_age: BTreeMap<(u64, u64), ()>,
    /// Clients evicted: their stale retries must not apply again.
    evicted: BTreeMap<u64, Tombstone>,
    /// (index of eviction, client): the order tombstones are dropped in.
    evicted_by_age: BTreeSet<(u64, u64)>,
}

/// `Sessions` as snapshots up to version 4 hold it: tombstones without
/// the index of their eviction, and without a bound.
#[derive(Deserialize)]
pub(crate) struct SessionsV4 {
    clients_max: usize,
    by_client: BTreeMap<u64, Session>,
    by_age: BTreeMap<(u64, u64), ()>,
    evicted_seq: BTreeMap<u64, u64>,
}

impl From<SessionsV4> for Sessions {
    /// The old tombstones count as evicted before any new one (index 0),
    /// in client order; beyond the bound, the first are dropped.
    fn from(old: SessionsV4) -> Sessions {
        let SessionsV4 { clients_max, by_client, by_age, evicted_seq } = old;
        let mut sessions = Sessions { clients_max, by_client, by_age, ..Sessions::default() };
        if clients_max == 0 {
            return sessions; // refused by `validate`
        }
        for (client, seq) in evicted_seq {
            sessions.tombstone(client, seq, 0);
        }
        sessions
    }
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
            None if self.evicted.get(&client).is_some_and(|gone| seq <= gone.seq) => Seen::Expired,
            None => Seen::New,
        }
    }

    /// Records the outcome of a new command applied at `index`.
    pub fn record(&mut self, client: u64, seq: u64, index: u64, outcome: Outcome) {
        if let Some(session) = self.by_client.get_mut(&client) {
            // Changed in place: one lookup in `by_client`, not a removal and an insert.
            assert!(seq > session.seq, "client {client}: seq {seq} recorded after {}", session.seq);
            assert!(self.by_age.remove(&(session.index, client)).is_some(), "indexes agree");
            *session = Session { seq, outcome, index };
            self.by_age.insert((index, client), ());
            return;
        }
        if let Some(gone) = self.evicted.remove(&client) {
            assert!(seq > gone.seq, "client {client}: seq {seq} recorded after eviction at {}", gone.seq);
            assert!(self.evicted_by_age.remove(&(gone.index, client)), "tombstone indexes agree");
        }
        if self.by_client.len() == self.clients_max {
            let ((_, evicted), ()) = self.by_age.pop_first().expect("full table has an oldest session");
            let gone = self.by_client.remove(&evicted).expect("indexes agree");
            self.tombstone(evicted, gone.seq, index);
        }
        self.by_age.insert((index, client), ());
        self.by_client.insert(client, Session { seq, outcome, index });
        assert!(self.by_client.len() <= self.clients_max && self.by_age.len() == self.by_client.len());
    }

    /// Remembers that `client` was evicted after applying `seq`, by the
    /// command at `index`; beyond `clients_max` tombstones the oldest goes.
    fn tombstone(&mut self, client: u64, seq: u64, index: u64) {
        if self.evicted.len() == self.clients_max {
            let (_, dropped) = self.evicted_by_age.pop_first().expect("full tombstones have an oldest");
            self.evicted.remove(&dropped).expect("tombstone indexes agree");
        }
        self.evicted.insert(client, Tombstone { seq, index });
        self.evicted_by_age.insert((index, client));
        assert!(self.evicted.len() <= self.clients_max && self.evicted_by_age.len() == self.evicted.len());
    }

    /// Whether a table read from a snapshot keeps the invariants `record`
    /// asserts: a checksum proves the bytes are as written, not that the
    /// writer was sound, and a broken table must fail the decode, not a
    /// later apply.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let sorted = |mut ages: Vec<(u64, u64)>| {
            ages.sort_unstable();
            ages
        };
        let sessions_aged = sorted(self.by_client.iter().map(|(&c, s)| (s.index, c)).collect());
        let tombstones_aged = sorted(self.evicted.iter().map(|(&c, t)| (t.index, c)).collect());
        let fine = self.clients_max > 0
            && self.by_client.len() <= self.clients_max
            && self.evicted.len() <= self.clients_max
            && self.by_age.keys().eq(sessions_aged.iter())
            && self.evicted_by_age.iter().eq(tombstones_aged.iter());
        if fine { Ok(()) } else { Err("client sessions: tables out of bounds or disagreeing".into()) }
    }

    /// Tombstones held (clients evicted whose late retries are refused).
    pub fn evicted_len(&self) -> usize {
        self.evicted.len()
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

    #[test]
    fn tombstones_are_bounded_and_the_oldest_eviction_goes_first() {
        let mut s = Sessions::new(2);
        // Clients 1..=6 apply one command each, at indexes 11..=16: clients
        // 1..=4 are evicted in turn, at indexes 13..=16.
        for client in 1..=6 {
            s.record(client, 1, 10 + client, ok(client));
        }
        assert_eq!((s.len(), s.evicted_len()), (2, 2), "at most clients_max of each");
        assert_eq!(s.check(3, 1), Seen::Expired, "evicted at 15: still refused");
        assert_eq!(s.check(4, 1), Seen::Expired, "evicted at 16: still refused");
        assert_eq!(s.check(1, 1), Seen::New, "evicted at 13, its tombstone dropped at 15");
    }

    #[test]
    fn a_client_back_after_eviction_trades_its_tombstone_for_a_session() {
        let mut s = Sessions::new(1);
        s.record(1, 4, 10, ok(2));
        s.record(2, 1, 11, ok(3));
        assert_eq!((s.check(1, 4), s.evicted_len()), (Seen::Expired, 1));
        s.record(1, 5, 12, ok(4)); // evicts client 2
        assert_eq!(s.evicted_len(), 1, "client 1's tombstone is gone, client 2's came");
        assert_eq!(s.check(1, 4), Seen::Expired, "older than its session: still refused");
        assert_eq!(s.check(2, 1), Seen::Expired);
    }

    #[test]
    fn a_table_that_breaks_its_invariants_fails_the_check() {
        let mut s = Sessions::new(2);
        for client in 1..=4 {
            s.record(client, 1, 10 + client, ok(client));
        }
        assert_eq!(s.validate(), Ok(()));
        let mut lost_age = s.clone();
        lost_age.by_age.pop_first();
        assert!(lost_age.validate().is_err());
        let mut stray_tombstone = s.clone();
        stray_tombstone.evicted_by_age.insert((99, 7));
        assert!(stray_tombstone.validate().is_err());
        let mut no_room = s;
        no_room.clients_max = 0;
        assert!(no_room.validate().is_err());
    }

    #[test]
    fn sessions_of_a_version_4_snapshot_keep_their_tombstones_within_the_bound() {
        #[derive(Serialize)]
        struct Old {
            clients_max: usize,
            by_client: BTreeMap<u64, Session>,
            by_age: BTreeMap<(u64, u64), ()>,
            evicted_seq: BTreeMap<u64, u64>,
        }
        let session = Session { seq: 1, outcome: ok(9), index: 20 };
        let old = Old {
            clients_max: 2,
            by_client: BTreeMap::from([(9, session)]),
            by_age: BTreeMap::from([((20, 9), ())]),
            evicted_seq: BTreeMap::from([(1, 5), (2, 6), (3, 7)]),
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        let s = Sessions::from(postcard::from_bytes::<SessionsV4>(&bytes).unwrap());
        assert_eq!((s.len(), s.evicted_len()), (1, 2));
        assert_eq!(s.check(9, 1), Seen::Duplicate(&ok(9)));
        assert_eq!((s.check(2, 6), s.check(3, 7)), (Seen::Expired, Seen::Expired));
        assert_eq!(s.check(1, 5), Seen::New, "beyond the bound, the first in client order went");
    }
}
