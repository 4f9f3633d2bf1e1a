//! The replicated state machine: the store, the client sessions and the
//! member table.
//!
//! In: committed Raft entries, in log order. Out: for each client command,
//! the (client, seq, outcome) to answer with; for each entry that granted or
//! revoked a lease, that change, for the leader's lessor and the checkers.
//! Entries must be applied exactly once each, in order; an entry whose
//! command does not decode is a broken invariant (only replicas propose
//! commands) and panics with the index, since applying it differently on
//! different replicas would be worse.

use crate::command::Command;
use crate::ha_state::{HaApplied, HaState};
use crate::members::{MemberOp, MemberOutcome, MemberTable};
use crate::msg::HaReport;
use crate::sessions::{Outcome, Seen, Sessions};
use crate::snapshot_file::{self, SnapshotFileError};
use haven_raft::{Entry, EntryKind, SnapshotMeta};
use haven_store::{CompactionRequest, LeaseId, LeaseRevokeRequest, Request, Store, StoreConfig, StoreError};
use std::time::Duration;

/// What applying one entry produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// The answer owed to a client, for a client command.
    pub client: Option<ClientOutcome>,
    /// How the entry changed the set of leases, if it did.
    pub lease: Option<LeaseChange>,
    /// The answer owed to an operator, for a member table change.
    pub member: Option<MemberApplied>,
    /// What an HA command did (for a step: the commands now due).
    pub ha: Option<HaApplied>,
    /// The session waiting for an HA report to be queued.
    pub ha_ack: Option<(u64, u64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MemberApplied {
    pub client: u64,
    pub seq: u64,
    pub outcome: MemberOutcome,
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
        ttl: Duration,
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
        (Request::LeaseGrant(_) | Request::LeaseGrantMs(_), Ok(response)) => {
            response.granted_lease().map(|(lease, ttl)| LeaseChange::Granted { lease, ttl })
        }
        (Request::LeaseRevoke(r), Ok(_)) => Some(LeaseChange::Revoked { lease: r.id, expired: false }),
        _ => None,
    }
}

#[derive(Debug)]
pub struct StateMachine {
    store: Store,
    sessions: Sessions,
    members: MemberTable,
    ha: HaState,
    applied_index: u64,
}

impl StateMachine {
    pub fn new(store: StoreConfig, sessions_max: usize) -> StateMachine {
        let (sessions, members) = (Sessions::new(sessions_max), MemberTable::default());
        StateMachine { store: Store::new(store), sessions, members, ha: HaState::default(), applied_index: 0 }
    }

    /// A state machine restored from a snapshot taken at `applied_index`.
    pub fn restored(
        store: Store,
        sessions: Sessions,
        members: MemberTable,
        ha: HaState,
        applied_index: u64,
    ) -> StateMachine {
        StateMachine { store, sessions, members, ha, applied_index }
    }

    pub fn ha(&self) -> &HaState {
        &self.ha
    }

    /// For the leader's coordinator, which computes its step on the graph
    /// in place and leaves it as it was (`HaState::decide`).
    pub(crate) fn ha_mut(&mut self) -> &mut HaState {
        &mut self.ha
    }

    /// For a restore from a backup, which moves the store's revision.
    pub(crate) fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// For a restore from a backup, which seats the new cluster's members.
    pub(crate) fn replace_members(&mut self, members: MemberTable) {
        self.members = members;
    }

    pub fn members(&self) -> &MemberTable {
        &self.members
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn store(&self) -> &Store {
        &self.store
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
        Applied { client: Some(ClientOutcome { client, seq, outcome }), lease, ..Applied::default() }
    }

    fn apply_report(&mut self, report: HaReport) -> HaApplied {
        match report {
            HaReport::Event(event) => self.ha.enqueue(event),
            HaReport::Join { node, address, labels, lease } => {
                let joined = self.ha.join(node, address, labels, lease);
                // A lease already gone would never expire again: the node is dead at once.
                if !self.store.lease_ttls().any(|(id, _)| id == lease) {
                    self.ha.lease_gone(lease);
                }
                joined
            }
        }
    }

    fn apply_member(&mut self, client: u64, seq: u64, op: &MemberOp) -> Applied {
        let outcome = self.members.apply((client, seq), op);
        Applied { member: Some(MemberApplied { client, seq, outcome }), ..Applied::default() }
    }

    /// An auto-compaction the leader proposed. A client may have compacted
    /// further meanwhile; every replica then refuses it alike.
    fn compact_history(&mut self, revision: u64) -> Applied {
        let request = Request::Compact(CompactionRequest { revision, physical: false });
        match self.store.apply(&request) {
            Ok(_) | Err(StoreError::Compacted { .. }) => Applied::default(),
            Err(e) => panic!("compacting the history at {revision} failed: {e}"),
        }
    }

    /// An expiry the leader proposed. The lease may be gone already (its
    /// holder revoked it, or an earlier expiry of it committed first).
    fn expire(&mut self, lease: LeaseId) -> Applied {
        match self.store.apply(&Request::LeaseRevoke(LeaseRevokeRequest { id: lease })) {
            Ok(_) => Applied { lease: Some(LeaseChange::Revoked { lease, expired: true }), ..Applied::default() },
            Err(StoreError::LeaseNotFound) => Applied::default(),
            // Every replica gets the same answer, so they stay in step; a
            // revoke adds no data, so no quota or size limit applies.
            Err(e) => panic!("revoking lease {lease} by expiry failed: {e}"),
        }
    }
}

impl haven_raft::StateMachine for StateMachine {
    type Output = Applied;
    type Error = SnapshotFileError;

    fn apply(&mut self, entry: &Entry) -> Applied {
        assert_eq!(entry.index, self.applied_index + 1, "entries are applied once each, in order");
        self.applied_index = entry.index;
        let kind = entry.kind().unwrap_or_else(|e| panic!("entry {} has a bad payload: {e}", entry.index));
        let EntryKind::Command(bytes) = kind else { return Applied::default() };
        let command =
            Command::decode(bytes).unwrap_or_else(|e| panic!("entry {}: command does not decode: {e}", entry.index));
        let applied = match command {
            Command::Client { client, seq, request } => self.apply_client(entry.index, client, seq, &request),
            Command::ExpireLease { lease } => self.expire(lease),
            Command::CompactHistory { revision } => self.compact_history(revision),
            Command::Member { client, seq, op } => self.apply_member(client, seq, &op),
            Command::Ha { ack, report } => {
                Applied { ha: Some(self.apply_report(report)), ha_ack: ack, ..Applied::default() }
            }
            Command::HaStep { version, consumed, now_ms, step } => {
                Applied { ha: Some(self.ha.apply_step(version, consumed, now_ms, step)), ..Applied::default() }
            }
            Command::HaEvents { events } => {
                // A full queue drops the rest, like single reports: agents repeat them.
                events.into_iter().for_each(|event| drop(self.ha.enqueue(event)));
                Applied::default()
            }
        };
        // A node whose lease is gone is dead: the coordinator hears it in log order.
        if let Some(LeaseChange::Revoked { lease, .. }) = applied.lease {
            self.ha.lease_gone(lease);
        }
        applied
    }

    fn applied_index(&self) -> u64 {
        self.applied_index
    }

    fn snapshot(&self, meta: &SnapshotMeta) -> Result<Vec<u8>, SnapshotFileError> {
        snapshot_file::encode(meta, self).map(|bytes| bytes.to_vec())
    }

    /// Keeps this machine's store configuration (limits are local settings,
    /// not replicated state).
    fn restore(&mut self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), SnapshotFileError> {
        let (held, restored) = snapshot_file::decode(data, self.store.config().clone())?;
        if held != *meta {
            return Err(SnapshotFileError::Mismatch { held: held.last, announced: meta.last });
        }
        *self = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_raft::StateMachine as _;
    use haven_store::{LeaseGrantRequest, PutRequest, RangeRequest};

    struct Log {
        sm: StateMachine,
        index: u64,
    }

    impl Log {
        fn new() -> Log {
            Log { sm: StateMachine::new(StoreConfig::default(), 8), index: 0 }
        }

        fn apply(&mut self, command: Command) -> Applied {
            self.index += 1;
            self.sm.apply(&Entry::command(self.index, 1, &command.encode()))
        }

        fn client(&mut self, seq: u64, request: Request) -> Applied {
            self.apply(Command::Client { client: 9, seq, request })
        }

        fn keys(&self) -> u64 {
            let all = RangeRequest { key: vec![0], range_end: vec![0], ..RangeRequest::default() };
            self.sm.store().range(&all).expect("a plain range is valid").count
        }
    }

    fn put_on(lease: LeaseId) -> Request {
        Request::Put(PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), lease, ..PutRequest::default() })
    }

    #[test]
    fn a_grant_reports_the_lease_and_its_ttl_once_even_when_retried() {
        let mut log = Log::new();
        let grant = Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 0 });
        let first = log.client(1, grant.clone());
        assert_eq!(first.lease, Some(LeaseChange::Granted { lease: 1, ttl: Duration::from_secs(5) }));
        let retry = log.client(1, grant);
        assert_eq!(retry.lease, None, "a retried grant is answered from the session and grants nothing");
        assert!(retry.client.is_some_and(|c| c.outcome == first.client.unwrap().outcome));
    }

    #[test]
    fn an_expiry_revokes_the_lease_with_its_keys_and_a_repeat_changes_nothing() {
        let mut log = Log::new();
        log.client(1, Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 0 }));
        log.client(2, put_on(1));
        assert_eq!(log.keys(), 1);
        let expired = log.apply(Command::ExpireLease { lease: 1 });
        let revoked = Some(LeaseChange::Revoked { lease: 1, expired: true });
        assert_eq!(expired, Applied { lease: revoked, ..Applied::default() });
        assert_eq!(log.keys(), 0, "the lease's key went with it");
        assert_eq!(log.apply(Command::ExpireLease { lease: 1 }), Applied::default(), "already gone");
        assert_eq!(log.sm.applied_index(), 4, "every entry counts as applied");
    }

    #[test]
    fn a_client_revoke_is_not_reported_as_an_expiry() {
        let mut log = Log::new();
        log.client(1, Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 0 }));
        let revoked = log.client(2, Request::LeaseRevoke(LeaseRevokeRequest { id: 1 }));
        assert_eq!(revoked.lease, Some(LeaseChange::Revoked { lease: 1, expired: false }));
        let missing = log.client(3, Request::LeaseRevoke(LeaseRevokeRequest { id: 1 }));
        assert_eq!(missing.lease, None, "a refused revoke changes no lease");
    }
}
