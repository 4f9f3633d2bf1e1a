//! The member table: who belongs to the station cluster and where each
//! member listens, replicated through the log like the store.
//!
//! In: [`MemberOp`]s from committed entries — the initial list (proposed
//! once by the first leader from its configuration), and the operator's
//! add, remove and promote (etcd's member API), and a member publishing its
//! client URL. Out: the table after each op and the op's outcome; the table
//! is part of every snapshot.
//!
//! The table says what the operator wants: which members exist and whether
//! each should vote. Raft's configuration is what is in force; the leader
//! moves it towards the table one change at a time (`member_plan.rs`), so a
//! new leader carries on where the old one stopped. Ids are never reused:
//! a removed member's id coming back would be taken for the old member by
//! the others' Raft state (its votes, its match index).
//!
//! Exactly-once: an op carries the operator's (client, seq); a retry of the
//! latest op gets the latest outcome again instead of adding a second member.

use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// Members the table holds at most; an add beyond it is refused. Raft
/// groups stay small (every voter is in every quorum round), and learners
/// are meant to be promoted.
pub const MEMBERS_LEN_MAX: usize = 64;
/// Longest peer address or client URL accepted, in bytes.
pub const ADDR_BYTES_MAX: usize = 256;

/// One member as the operator declared it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub id: u64,
    /// `host:port` where the member's replica takes Raft traffic.
    pub peer_addr: String,
    /// Where the member serves clients; empty until it has started and
    /// published it.
    pub client_url: String,
    /// Whether the member should vote. A new member always starts as a
    /// learner; the leader promotes it once its log has caught up.
    pub voter: bool,
}

/// A change to the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberOp {
    /// The initial cluster; applied only to an empty table.
    Seed(Vec<MemberRecord>),
    /// A new member with the next unused id.
    Add {
        peer_addr: String,
        voter: bool,
    },
    Remove {
        id: u64,
    },
    /// Make a learner a voter (once caught up).
    Promote {
        id: u64,
    },
    /// A member announces where it serves clients.
    Publish {
        id: u64,
        client_url: String,
    },
}

#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberError {
    #[error("member {id} not found")]
    NotFound { id: u64 },
    #[error("peer address {peer_addr} is already member {id}'s")]
    PeerAddrExists { peer_addr: String, id: u64 },
    #[error("member {id} is not a learner")]
    NotLearner { id: u64 },
    #[error("member {id} is the last voter; add and promote another member before removing it")]
    LastVoter { id: u64 },
    #[error("the cluster has {len_max} members already")]
    TooMany { len_max: usize },
    #[error("the member table is not initialised yet; retry once the cluster has a leader")]
    NotSeeded,
    #[error("address or URL of {bytes} bytes, more than {ADDR_BYTES_MAX}")]
    TooLong { bytes: usize },
    /// Refused by the leader before proposing, never by the table: whether
    /// a learner has caught up is the leader's knowledge, not replicated state.
    #[error("learner {id} has not caught up with the leader's log; start it, or promote it once it has")]
    NotCaughtUp { id: u64 },
}

/// What an op did: the member it concerned (none for a seed), or why not.
pub type MemberOutcome = Result<Option<MemberRecord>, MemberError>;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberTable {
    /// Fixed by the seed: the cluster's identity for its whole life, in
    /// every response header (etcd's cluster_id).
    cluster_id: u64,
    members: BTreeMap<u64, MemberRecord>,
    /// Above every id ever given out.
    next_id: u64,
    /// The latest operator op and its outcome, for retries.
    last: Option<((u64, u64), MemberOutcome)>,
}

impl MemberTable {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    pub fn members(&self) -> impl Iterator<Item = &MemberRecord> {
        self.members.values()
    }

    pub fn get(&self, id: u64) -> Option<&MemberRecord> {
        self.members.get(&id)
    }

    /// Above every id ever given out: an id below it that the table does
    /// not hold was removed for good (or never used by the seed).
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Applies `op` of session (client, seq); a repeat of the latest op
    /// answers as the first time and changes nothing.
    pub fn apply(&mut self, session: (u64, u64), op: &MemberOp) -> MemberOutcome {
        if let Some((last, outcome)) = &self.last
            && *last == session
        {
            return outcome.clone();
        }
        let outcome = self.apply_new(op);
        if !matches!(op, MemberOp::Seed(_) | MemberOp::Publish { .. }) {
            self.last = Some((session, outcome.clone()));
        }
        self.check();
        outcome
    }

    fn apply_new(&mut self, op: &MemberOp) -> MemberOutcome {
        if self.members.is_empty() && !matches!(op, MemberOp::Seed(_)) {
            return Err(MemberError::NotSeeded);
        }
        match op {
            MemberOp::Seed(list) => Ok(self.seed(list)),
            MemberOp::Add { peer_addr, voter } => self.add(peer_addr, *voter).map(Some),
            MemberOp::Remove { id } => self.remove(*id).map(Some),
            MemberOp::Promote { id } => self.promote(*id).map(Some),
            MemberOp::Publish { id, client_url } => self.publish(*id, client_url).map(Some),
        }
    }

    /// A table seeded with `list` for a cluster restored from a backup:
    /// its id mixes `restore_mark` into the list's, so that a surviving
    /// member of the lost cluster, at the same addresses, is refused as
    /// "another cluster" instead of offering its diverged log.
    pub(crate) fn restored(list: &[MemberRecord], restore_mark: &str) -> MemberTable {
        let mut table = MemberTable::default();
        table.seed(list);
        table.cluster_id = fnv1a(table.cluster_id, restore_mark.bytes());
        table
    }

    fn seed(&mut self, list: &[MemberRecord]) -> Option<MemberRecord> {
        if !self.members.is_empty() {
            return None; // a second leader's seed of the same list, or a late one
        }
        for record in list.iter().take(MEMBERS_LEN_MAX) {
            self.members.insert(record.id, record.clone());
        }
        self.cluster_id = cluster_id(list);
        self.next_id = self.members.keys().max().map_or(1, |max| max + 1);
        None
    }

    fn add(&mut self, peer_addr: &str, voter: bool) -> Result<MemberRecord, MemberError> {
        check_len(peer_addr)?;
        if let Some(holder) = self.members.values().find(|m| m.peer_addr == peer_addr) {
            return Err(MemberError::PeerAddrExists { peer_addr: peer_addr.to_owned(), id: holder.id });
        }
        if self.members.len() >= MEMBERS_LEN_MAX {
            return Err(MemberError::TooMany { len_max: MEMBERS_LEN_MAX });
        }
        let id = self.next_id;
        self.next_id += 1;
        let record = MemberRecord { id, peer_addr: peer_addr.to_owned(), client_url: String::new(), voter };
        self.members.insert(id, record.clone());
        Ok(record)
    }

    fn remove(&mut self, id: u64) -> Result<MemberRecord, MemberError> {
        let record = self.members.get(&id).ok_or(MemberError::NotFound { id })?;
        if record.voter && self.members.values().filter(|m| m.voter).count() == 1 {
            return Err(MemberError::LastVoter { id });
        }
        Ok(self.members.remove(&id).expect("found above"))
    }

    fn promote(&mut self, id: u64) -> Result<MemberRecord, MemberError> {
        let record = self.members.get_mut(&id).ok_or(MemberError::NotFound { id })?;
        if record.voter {
            return Err(MemberError::NotLearner { id });
        }
        record.voter = true;
        Ok(record.clone())
    }

    fn publish(&mut self, id: u64, client_url: &str) -> Result<MemberRecord, MemberError> {
        check_len(client_url)?;
        let record = self.members.get_mut(&id).ok_or(MemberError::NotFound { id })?;
        record.client_url = client_url.to_owned();
        Ok(record.clone())
    }

    fn check(&self) {
        assert!(self.members.len() <= MEMBERS_LEN_MAX, "adds are refused beyond the limit");
        assert!(self.members.keys().all(|&id| id < self.next_id), "next_id is above every id given out");
        let voters = self.members.values().filter(|m| m.voter).count();
        assert!(self.members.is_empty() || voters > 0, "the last voter cannot be removed");
    }
}

/// The members a station keeps links with: the table's, and any that
/// Raft's configuration in force (`voters`, `learners`) still has. The table
/// changes first and the configuration follows (`member_plan.rs`); until
/// then a removed voter's vote may be needed for a quorum, so forgetting it
/// early could leave a cluster that lost another member without a leader.
pub fn peer_ids(members: &[MemberRecord], voters: &[NodeId], learners: &[NodeId]) -> BTreeSet<NodeId> {
    members.iter().map(|m| NodeId(m.id)).chain(voters.iter().copied()).chain(learners.iter().copied()).collect()
}

/// Whether `id` was given out by a table holding `members` below `next_id`
/// and removed since: for good, since ids are never reused.
pub fn was_removed(members: &[MemberRecord], next_id: u64, id: u64) -> bool {
    id < next_id && !members.iter().any(|m| m.id == id)
}

/// The id a cluster seeded with `members` has: FNV-1a over their ids and
/// peer addresses, so every member computes it alike from the initial list.
pub fn cluster_id(members: &[MemberRecord]) -> u64 {
    members.iter().fold(0xcbf2_9ce4_8422_2325, |hash, m| fnv1a(hash, format!("{}={},", m.id, m.peer_addr).bytes()))
}

/// FNV-1a: `hash` continued over `bytes`.
fn fnv1a(hash: u64, bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(hash, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn check_len(text: &str) -> Result<(), MemberError> {
    if text.len() > ADDR_BYTES_MAX {
        return Err(MemberError::TooLong { bytes: text.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> MemberTable {
        let record = |id: u64| MemberRecord {
            id,
            peer_addr: format!("127.0.0.1:{}", 2380 + id),
            client_url: format!("http://127.0.0.1:{}", 2379 + 100 * id),
            voter: true,
        };
        let mut table = MemberTable::default();
        assert_eq!(table.apply((0, 0), &MemberOp::Seed(vec![record(1), record(2), record(3)])), Ok(None));
        table
    }

    fn add(peer_addr: &str) -> MemberOp {
        MemberOp::Add { peer_addr: peer_addr.to_owned(), voter: false }
    }

    #[test]
    fn nothing_but_a_seed_applies_to_an_empty_table() {
        let mut table = MemberTable::default();
        assert_eq!(table.apply((1, 1), &add("127.0.0.1:9")), Err(MemberError::NotSeeded));
        assert!(table.is_empty());
    }

    #[test]
    fn the_cluster_id_comes_from_the_seed_and_stays() {
        let mut table = seeded();
        let id = table.cluster_id();
        assert_ne!(id, 0);
        table.apply((1, 1), &add("127.0.0.1:2390")).unwrap();
        table.apply((1, 2), &MemberOp::Remove { id: 1 }).unwrap();
        assert_eq!(table.cluster_id(), id, "membership changes keep the cluster's identity");
        let mut other = seeded().members().cloned().collect::<Vec<_>>();
        other[0].peer_addr = "127.0.0.1:1".into();
        assert_ne!(cluster_id(&other), id);
    }

    #[test]
    fn a_second_seed_changes_nothing() {
        let mut table = seeded();
        let before = table.clone();
        assert_eq!(table.apply((0, 0), &MemberOp::Seed(Vec::new())), Ok(None));
        assert_eq!(table, before);
    }

    #[test]
    fn ids_are_never_reused_after_a_removal() {
        let mut table = seeded();
        let four = table.apply((1, 1), &add("127.0.0.1:2384")).unwrap().unwrap();
        assert_eq!(four.id, 4);
        assert!(!four.voter, "a new member starts as a learner");
        table.apply((1, 2), &MemberOp::Remove { id: 4 }).unwrap();
        let five = table.apply((1, 3), &add("127.0.0.1:2384")).unwrap().unwrap();
        assert_eq!(five.id, 5, "id 4 belonged to a removed member");
    }

    #[test]
    fn a_retried_add_answers_the_same_member_and_adds_one() {
        let mut table = seeded();
        let first = table.apply((7, 1), &add("127.0.0.1:2390"));
        let retry = table.apply((7, 1), &add("127.0.0.1:2390"));
        assert_eq!(first, retry);
        assert_eq!(table.members().count(), 4);
        let other = table.apply((8, 1), &add("127.0.0.1:2390"));
        assert_eq!(other, Err(MemberError::PeerAddrExists { peer_addr: "127.0.0.1:2390".into(), id: 4 }));
    }

    #[test]
    fn the_last_voter_stays() {
        let mut table = seeded();
        table.apply((1, 1), &MemberOp::Remove { id: 1 }).unwrap();
        table.apply((1, 2), &MemberOp::Remove { id: 2 }).unwrap();
        assert_eq!(table.apply((1, 3), &MemberOp::Remove { id: 3 }), Err(MemberError::LastVoter { id: 3 }));
    }

    #[test]
    fn only_a_learner_is_promoted() {
        let mut table = seeded();
        assert_eq!(table.apply((1, 1), &MemberOp::Promote { id: 2 }), Err(MemberError::NotLearner { id: 2 }));
        table.apply((1, 2), &add("127.0.0.1:2390")).unwrap();
        let promoted = table.apply((1, 3), &MemberOp::Promote { id: 4 }).unwrap().unwrap();
        assert!(promoted.voter);
        assert_eq!(table.apply((1, 4), &MemberOp::Promote { id: 9 }), Err(MemberError::NotFound { id: 9 }));
    }

    #[test]
    fn adds_stop_at_the_limit_and_long_addresses_are_refused() {
        let mut table = seeded();
        for port in 0..(MEMBERS_LEN_MAX - 3) {
            table.apply((1, port as u64 + 1), &add(&format!("10.0.0.1:{port}"))).unwrap();
        }
        let over = table.apply((2, 1), &add("10.0.0.2:1"));
        assert_eq!(over, Err(MemberError::TooMany { len_max: MEMBERS_LEN_MAX }));
        let long = "x".repeat(ADDR_BYTES_MAX + 1);
        assert_eq!(table.apply((2, 2), &add(&long)), Err(MemberError::TooLong { bytes: ADDR_BYTES_MAX + 1 }));
    }
}
