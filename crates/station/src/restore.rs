//! Restoring a backup as the first state of a new cluster
//! (`haven snapshot restore`).
//!
//! In: a backup's bytes (a replica snapshot, `snapshot_file`), the new
//! cluster's members, and how far to move the store's revision and the HA
//! counters ([`Bumps`]). Out: the snapshot every new member starts from —
//! the same log position, keys, leases, sessions and HA state, with the
//! membership replaced by the new members (all voters), a cluster id of its
//! own, the revision moved up and the history below it compacted — or why
//! the backup cannot be used.
//!
//! Why the counters move: the lost cluster may have handed out fencing
//! tokens, instance ids and command ids after the backup was taken. A
//! restored cluster that handed them out again could have a protected
//! resource accept a stale holder, or an agent skip a new command as one
//! it already ran. Adding `counter_bump` to each puts every new one above
//! those, as long as the lost cluster handed out fewer after the backup.
//! The revision moves for the same reason (etcd's `--bump-revision`): a
//! client of the lost cluster never sees a revision it knew there name
//! other changes, and a watcher resuming from one is told "compacted".

use crate::members::{MemberRecord, MemberTable};
use crate::snapshot_file::{self, SnapshotFileError};
use bytes::Bytes;
use haven_raft::{Membership, SnapshotMeta};
use haven_runtime::NodeId;
use haven_store::StoreConfig;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RestoreError {
    #[error("the backup is damaged or not a Haven backup: {0}")]
    Backup(#[from] SnapshotFileError),
    #[error("the new cluster needs at least one member")]
    NoMembers,
    #[error("moving the HA counters by {bump} would overflow them; use a smaller bump")]
    Overflow { bump: u64 },
    #[error("moving the store's revision by {bump} would overflow it; use a smaller bump")]
    RevisionOverflow { bump: u64 },
}

/// How far a restore moves what the lost cluster may have handed out after
/// the backup: the store's revision, and the HA counters (fencing tokens,
/// instance and command ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bumps {
    pub revision: u64,
    pub counters: u64,
}

/// What a restored snapshot holds, for the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoreSummary {
    pub index: u64,
    pub term: u64,
    pub revision: u64,
    pub keys: u64,
    pub leases: usize,
    pub services: usize,
    pub nodes: usize,
    pub token_last: u64,
}

/// The snapshot a member of the new cluster of `members` starts from.
pub fn restore(
    backup: &[u8],
    members: &[MemberRecord],
    bumps: Bumps,
) -> Result<(SnapshotMeta, Bytes, RestoreSummary), RestoreError> {
    if members.is_empty() {
        return Err(RestoreError::NoMembers);
    }
    let (mut meta, mut sm) = snapshot_file::decode(backup, StoreConfig::default())?;
    let graph = &mut sm.ha_mut().graph;
    let bump = |n: u64| n.checked_add(bumps.counters).ok_or(RestoreError::Overflow { bump: bumps.counters });
    (graph.token_last, graph.instance_id_last, graph.command_id_last) =
        (bump(graph.token_last)?, bump(graph.instance_id_last)?, bump(graph.command_id_last)?);
    let revision_overflow = RestoreError::RevisionOverflow { bump: bumps.revision };
    sm.store_mut().bump_revision(bumps.revision).ok_or(revision_overflow)?;
    let mut voters: Vec<NodeId> = members.iter().map(|m| NodeId(m.id)).collect();
    voters.sort_unstable();
    voters.dedup();
    meta.membership = Membership { voters, voters_outgoing: Vec::new(), learners: Vec::new() };
    let records: Vec<MemberRecord> = members.iter().map(|m| MemberRecord { voter: true, ..m.clone() }).collect();
    let mark = format!("restored from {}/{}", meta.last.index, meta.last.term);
    sm.replace_members(MemberTable::restored(&records, &mark));
    let summary = summary(&meta, &sm);
    let data = snapshot_file::encode(&meta, &sm)?;
    Ok((meta, data, summary))
}

/// What the backup `bytes` hold, checked whole (`haven snapshot status`).
pub fn inspect(backup: &[u8]) -> Result<(SnapshotMeta, RestoreSummary, Vec<MemberRecord>), RestoreError> {
    let (meta, sm) = snapshot_file::decode(backup, StoreConfig::default())?;
    let members = sm.members().members().cloned().collect();
    let summary = summary(&meta, &sm);
    Ok((meta, summary, members))
}

/// Live keys: a count-only range over the whole keyspace (`\0` to `\0`).
fn keys_len(store: &haven_store::Store) -> u64 {
    let all = haven_store::RangeRequest { key: vec![0], range_end: vec![0], count_only: true, ..Default::default() };
    store.range(&all).map_or(0, |found| found.count)
}

fn summary(meta: &SnapshotMeta, sm: &crate::StateMachine) -> RestoreSummary {
    let graph = &sm.ha().graph;
    RestoreSummary {
        index: meta.last.index,
        term: meta.last.term,
        revision: sm.store().revision(),
        keys: keys_len(sm.store()),
        leases: sm.store().leases_len(),
        services: graph.services.len(),
        nodes: graph.nodes.len(),
        token_last: graph.token_last,
    }
}
