//! The replicated state machine: the store plus the client sessions.
//!
//! In: committed Raft entries, in log order. Out: for each client command,
//! the (client, seq, outcome) to answer with; for each entry that granted or
//! revoked a lease, that change, for the leader's lessor and the checkers.
//! Entries must be applied exactly once each, in order; an entry whose
//! command does not decode is a broken invariant (only replicas propose
//! commands) and panics with the index, since applying it differently on
//! different replicas would be worse.

use crate::command::Command;
use crate::sessions::{Outcome, Seen, Sessions};
use haven_raft::{Entry, EntryKind};
use haven_store::{LeaseId, LeaseRevokeRequest, Request, Response, Store, StoreConfig, StoreError};

/// What applying one entry produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// The answer owed to a client, for a client command.
    pub client: Option<ClientOutcome>,
    /// How the entry changed the set of leases, if it did.
    pub lease: Option<LeaseChange>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClientOutcome {
    pub client: u64,
    pub seq: u64,
    /// `None`: a stale retry of an older command (its answer is gone).
    pub outcome: Option<Outcome>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseChange {
    Granted {
        lease: LeaseId,
        ttl_seconds: i64,
    },
    /// `expired`: by the leader's expiry, not by a client's revoke.
    Revoked {
        lease: LeaseId,
        expired: bool,
    },
}

/// The lease a successful client request granted or revoked.
fn lease_change(request: &Request, outcome: &Outcome) -> Option<LeaseChange> {
    match (request, outcome) {
        (Request::LeaseGrant(_), Ok(Response::LeaseGrant(g))) => {
            Some(LeaseChange::Granted { lease: g.id, ttl_seconds: g.ttl })
        }
        (Request::LeaseRevoke(r), Ok(_)) => Some(LeaseChange::Revoked { lease: r.id, expired: false }),
        _ => None,
    }
}

#[derive(Debug)]
pub struct StateMachine {
    store: Store,
    sessions: Sessions,
    applied_index: u64,
}

impl StateMachine {
    pub fn new(store: StoreConfig, sessions_max: usize) -> StateMachine {
        StateMachine { store: Store::new(store), sessions: Sessions::new(sessions_max), applied_index: 0 }
    }

    /// A state machine restored from a snapshot taken at `applied_index`.
    pub fn restored(store: Store, sessions: Sessions, applied_index: u64) -> StateMachine {
        StateMachine { store, sessions, applied_index }
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn apply(&mut self, entry: &Entry) -> Applied {
        assert_eq!(entry.index, self.applied_index + 1, "entries are applied once each, in order");
        self.applied_index = entry.index;
        let kind = entry.kind().unwrap_or_else(|e| panic!("entry {} has a bad payload: {e}", entry.index));
        let EntryKind::Command(bytes) = kind else { return Applied::default() };
        let command =
            Command::decode(bytes).unwrap_or_else(|e| panic!("entry {}: command does not decode: {e}", entry.index));
        match command {
            Command::Client { client, seq, request } => self.apply_client(entry.index, client, seq, &request),
            Command::ExpireLease { lease } => self.expire(lease),
        }
    }

    fn apply_client(&mut self, index: u64, client: u64, seq: u64, request: &Request) -> Applied {
        let (outcome, lease) = match self.sessions.check(client, seq) {
            Seen::Duplicate(outcome) => (Some(outcome.clone()), None),
            Seen::Expired => (None, None),
            Seen::New => {
                let outcome = self.store.apply(request);
                self.sessions.record(client, seq, index, outcome.clone());
                let lease = lease_change(request, &outcome);
                (Some(outcome), lease)
            }
        };
        Applied { client: Some(ClientOutcome { client, seq, outcome }), lease }
    }

    /// An expiry the leader proposed. The lease may be gone already (its
    /// holder revoked it, or an earlier expiry of it committed first).
    fn expire(&mut self, lease: LeaseId) -> Applied {
        match self.store.apply(&Request::LeaseRevoke(LeaseRevokeRequest { id: lease })) {
            Ok(_) => Applied { client: None, lease: Some(LeaseChange::Revoked { lease, expired: true }) },
            Err(StoreError::LeaseNotFound) => Applied::default(),
            // Every replica gets the same answer, so they stay in step; a
            // revoke adds no data, so no quota or size limit applies.
            Err(e) => panic!("revoking lease {lease} by expiry failed: {e}"),
        }
    }
}
