//! Snapshots and log compaction on a running replica (Raft §7).
//!
//! In: applied entries (every `snapshot_entries` of them the replica takes a
//! snapshot and compacts Raft's log), Raft's request for snapshot bytes
//! (leader, for a lagging follower), a snapshot received from the leader
//! (follower), and the WAL's snapshot and durability events.
//! Out: snapshot files saved by the WAL (then the WAL drops the segments
//! they cover), snapshot bytes handed to Raft, and received snapshots
//! installed: the state machine replaced, the log's suffix dropped unless
//! Raft kept it, the snapshot durable, then `on_snapshot_installed`.
//!
//! One WAL snapshot save runs at a time. A periodic snapshot that finds one
//! running is skipped (the WAL keeps the entries a little longer); a
//! received snapshot waits for it.

use crate::replica::Replica;
use crate::running::Running;
use haven_raft::{CompactError, MachineSnapshotError, ReceivedSnapshot, SnapshotMeta, StateMachine as _};
use haven_runtime::CtxFor;
use haven_wal::{Ticket, WalError};
use std::sync::Arc;

#[derive(Debug)]
struct Installing {
    meta: SnapshotMeta,
    data: Arc<[u8]>,
    /// The truncation of a log suffix Raft did not keep, if any.
    truncate: Option<Ticket>,
    saved: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    /// The newest snapshot taken or installed, kept to send to followers.
    latest: Option<(SnapshotMeta, Arc<[u8]>)>,
    /// (index, term) of the snapshot the WAL is saving.
    saving: Option<(u64, u64)>,
    installing: Option<Installing>,
    queued_install: Option<ReceivedSnapshot>,
}

fn wal_meta(meta: &SnapshotMeta) -> haven_wal::SnapshotMeta {
    haven_wal::SnapshotMeta { index: meta.last.index, term: meta.last.term }
}

impl Running {
    /// After applying: snapshot once `every` entries accumulated since the last.
    pub(crate) fn maybe_snapshot(&mut self, ctx: &mut impl CtxFor<Replica>, every: u64) -> Result<(), String> {
        let since = self.sm.applied_index() - (self.raft.first_index() - 1);
        if self.snapshots.installing.is_some() || since < every {
            return Ok(());
        }
        self.take_snapshot(ctx)
    }

    fn take_snapshot(&mut self, ctx: &mut impl CtxFor<Replica>) -> Result<(), String> {
        let (meta, bytes) = match self.raft.snapshot_machine(&self.sm) {
            Ok(snapshot) => snapshot,
            // A later apply retries, once the pending log writes are durable.
            Err(MachineSnapshotError::Compact(CompactError::NotDurable { .. })) => return Ok(()),
            Err(e) => return Err(format!("taking a snapshot: {e}")),
        };
        let data: Arc<[u8]> = Arc::from(bytes);
        self.snapshots.latest = Some((meta.clone(), data.clone()));
        if self.snapshots.saving.is_none() {
            self.save(ctx, &meta, &data)?;
        }
        Ok(())
    }

    fn save(&mut self, ctx: &mut impl CtxFor<Replica>, meta: &SnapshotMeta, data: &Arc<[u8]>) -> Result<(), String> {
        let mut events = Vec::new();
        match self.wal.save_snapshot(&mut ctx.sub(&mut events), wal_meta(meta), data.clone()) {
            Ok(()) => self.snapshots.saving = Some((meta.last.index, meta.last.term)),
            Err(WalError::SnapshotBusy) => {}
            Err(e) => return Err(format!("saving a snapshot: {e}")),
        }
        self.deferred.extend(events);
        Ok(())
    }

    /// Raft needs snapshot bytes for a follower: hand it the newest one
    /// still usable, taking a fresh one when the log moved past it.
    pub(crate) fn provide_snapshot(&mut self, ctx: &mut impl CtxFor<Replica>) -> Result<(), String> {
        let first = self.raft.first_index();
        let usable = self.snapshots.latest.as_ref().is_some_and(|(m, _)| m.last.index + 1 >= first);
        if !usable && self.sm.applied_index() >= first {
            self.take_snapshot(ctx)?;
        }
        if let Some((meta, data)) = self.snapshots.latest.clone() {
            // A refusal (e.g. already stale) is harmless: Raft asks again.
            let _ = self.raft.provide_snapshot(meta, data);
        }
        Ok(())
    }

    /// The leader sent a complete snapshot: install it (after the save in
    /// progress, if any).
    pub(crate) fn receive_snapshot(
        &mut self,
        ctx: &mut impl CtxFor<Replica>,
        received: ReceivedSnapshot,
    ) -> Result<(), String> {
        if self.snapshots.saving.is_some() {
            self.snapshots.queued_install = Some(received);
            return Ok(());
        }
        self.install(ctx, received)
    }

    fn install(&mut self, ctx: &mut impl CtxFor<Replica>, received: ReceivedSnapshot) -> Result<(), String> {
        let meta = received.meta.clone();
        self.sm.restore(&meta, &received.data).map_err(|e| format!("received snapshot: {e}"))?;
        self.restore_leases(ctx);
        let index = meta.last.index;
        let mut events = Vec::new();
        let last = self.wal.index_last().ok_or("WAL not open")?;
        let truncate = if !received.log_kept_after && last > index {
            Some(self.wal.truncate_suffix(&mut ctx.sub(&mut events), index + 1).map_err(|e| e.to_string())?)
        } else {
            None
        };
        self.deferred.extend(events);
        let data = Arc::from(received.data);
        self.save(ctx, &meta, &data)?;
        if self.snapshots.saving != Some((index, meta.last.term)) {
            return Err("the WAL refused to save a received snapshot".into());
        }
        self.snapshots.installing = Some(Installing { meta, data, truncate, saved: false });
        Ok(())
    }

    pub(crate) fn on_snapshot_saved(
        &mut self,
        ctx: &mut impl CtxFor<Replica>,
        saved: haven_wal::SnapshotMeta,
    ) -> Result<(), String> {
        self.snapshots.saving = None;
        match &mut self.snapshots.installing {
            Some(installing) if wal_meta(&installing.meta) == saved => installing.saved = true,
            _ => self.compact_wal(ctx, saved.index),
        }
        self.finish_install(ctx)?;
        if let Some(queued) = self.snapshots.queued_install.take() {
            self.install(ctx, queued)?;
        }
        Ok(())
    }

    pub(crate) fn on_snapshot_failed(&mut self, reason: String) -> Result<(), String> {
        self.snapshots.saving = None;
        match self.snapshots.installing {
            Some(_) => Err(format!("saving a received snapshot failed: {reason}")),
            None => Ok(()), // a periodic snapshot: the WAL keeps the entries; a later one retries
        }
    }

    /// Reports the installed snapshot to Raft once it is saved and any log
    /// suffix it replaces is durably dropped.
    pub(crate) fn finish_install(&mut self, ctx: &mut impl CtxFor<Replica>) -> Result<(), String> {
        let Some(installing) = &self.snapshots.installing else { return Ok(()) };
        let truncated = installing.truncate.is_none_or(|t| self.persists.is_durable(t));
        if !installing.saved || !truncated {
            return Ok(());
        }
        let Installing { meta, data, .. } = self.snapshots.installing.take().expect("checked above");
        self.raft.on_snapshot_installed(&meta).map_err(|e| format!("raft refused the installed snapshot: {e}"))?;
        self.compact_wal(ctx, meta.last.index);
        self.snapshots.latest = Some((meta, data));
        Ok(())
    }

    fn compact_wal(&mut self, ctx: &mut impl CtxFor<Replica>, index: u64) {
        let mut events = Vec::new();
        // Busy or nothing to drop: the next snapshot compacts further.
        let _ = self.wal.compact(&mut ctx.sub(&mut events), index);
        self.deferred.extend(events);
    }
}
