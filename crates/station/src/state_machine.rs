//! The replicated state machine: the store plus the client sessions.
//!
//! In: committed Raft entries, in log order. Out: for each client command,
//! the (client, seq, outcome) to answer with. Entries must be applied
//! exactly once each, in order; an entry whose command does not decode is
//! a broken invariant (only replicas propose commands) and panics with the
//! index, since applying it differently on different replicas would be worse.

use crate::command::Command;
use crate::sessions::{Outcome, Seen, Sessions};
use haven_raft::{Entry, EntryKind};
use haven_store::{Store, StoreConfig};

/// What applying one entry produced for a client, if anything.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub client: u64,
    pub seq: u64,
    /// `None`: a stale retry of an older command (its answer is gone).
    pub outcome: Option<Outcome>,
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

    pub fn apply(&mut self, entry: &Entry) -> Option<Applied> {
        assert_eq!(entry.index, self.applied_index + 1, "entries are applied once each, in order");
        self.applied_index = entry.index;
        let kind = entry.kind().unwrap_or_else(|e| panic!("entry {} has a bad payload: {e}", entry.index));
        let EntryKind::Command(bytes) = kind else { return None };
        let command =
            Command::decode(bytes).unwrap_or_else(|e| panic!("entry {}: command does not decode: {e}", entry.index));
        let outcome = match self.sessions.check(command.client, command.seq) {
            Seen::Duplicate(outcome) => Some(outcome.clone()),
            Seen::Expired => None,
            Seen::New => {
                let outcome = self.store.apply(&command.request);
                self.sessions.record(command.client, command.seq, entry.index, outcome.clone());
                Some(outcome)
            }
        };
        Some(Applied { client: command.client, seq: command.seq, outcome })
    }
}
