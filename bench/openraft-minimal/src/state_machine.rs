//! The benchmark's state machine: a key/value map in memory that applies
//! puts, giving each a revision, and snapshots itself to bytes.
//!
//! In: committed entries and snapshots from openraft. Out: each put's
//! [`Revision`], and snapshots of the map (built and installed in memory).

use crate::snapshot_codec::{self, Data};
use crate::types::{Revision, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftLogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StoredMembership,
};
use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Inner {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, openraft::BasicNode>,
    next_revision: u64,
    data: Data,
    snapshot: Option<(SnapshotMeta<u64, openraft::BasicNode>, Vec<u8>)>,
    snapshots_built: u64,
}

/// Cheap to clone: the snapshot builder is a clone of the machine.
#[derive(Clone, Debug, Default)]
pub struct StateMachine {
    inner: Arc<Mutex<Inner>>,
}

impl StateMachine {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a benchmark task already panicked.
        self.inner.lock().expect("state machine lock poisoned")
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let mut inner = self.lock();
        inner.snapshots_built += 1;
        let bytes = snapshot_codec::encode(inner.next_revision, &inner.data);
        let index = inner.last_applied.map_or(0, |id| id.index);
        let meta = SnapshotMeta {
            last_log_id: inner.last_applied,
            last_membership: inner.membership.clone(),
            snapshot_id: format!("{index}-{}", inner.snapshots_built),
        };
        inner.snapshot = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, openraft::BasicNode>), StorageError<u64>> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Revision>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock();
        let mut replies = Vec::new();
        for entry in entries {
            let log_id = *entry.get_log_id();
            inner.last_applied = Some(log_id);
            match entry.payload {
                EntryPayload::Blank => replies.push(Revision::default()),
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(log_id), m);
                    replies.push(Revision::default());
                }
                EntryPayload::Normal(put) => {
                    inner.next_revision += 1;
                    let revision = inner.next_revision;
                    inner.data.insert(put.key, (revision, put.value));
                    replies.push(Revision(revision));
                }
            }
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = snapshot.into_inner();
        let (next_revision, data) = snapshot_codec::decode(&bytes).map_err(|e| {
            StorageError::from_io_error(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Read, e)
        })?;
        let mut inner = self.lock();
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.next_revision = next_revision;
        inner.data = data;
        inner.snapshot = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let inner = self.lock();
        Ok(inner
            .snapshot
            .as_ref()
            .map(|(meta, bytes)| Snapshot { meta: meta.clone(), snapshot: Box::new(Cursor::new(bytes.clone())) }))
    }
}
