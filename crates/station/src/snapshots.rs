//! Snapshots and log compaction on a running replica (Raft §7).
//!
//! In: applied entries (every `snapshot_entries` of them the replica starts
//! a snapshot), the snapshot timer (each firing writes
//! `snapshot_keys_per_turn` more keys; once all are written Raft's log is
//! compacted there and the WAL saves it), Raft's request for snapshot bytes
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
//!
//! A periodic snapshot is written over many turns from the state machine as
//! it was when started (see `SnapshotWriter`): encoding 100,000 keys in
//! one turn kept a replica from applying, answering and heartbeating for
//! 100-250 ms under load. Raft's log keeps the entries until the snapshot
//! is complete, so a lagging follower can still be sent the previous one.
//! A snapshot received from the leader replaces one being written.

use crate::replica::Replica;
use crate::replica::ReplicaTimer;
use crate::running::Running;
use crate::snapshot_writer::SnapshotWriter;
use bytes::Bytes;
use haven_raft::{CompactError, LogPosition, ReceivedSnapshot, SnapshotMeta, StateMachine as _};
use haven_runtime::CtxFor;
use haven_wal::{Ticket, WalError};
use std::time::Duration;

#[derive(Debug)]
struct Installing {
    meta: SnapshotMeta,
    data: Bytes,
    /// The truncation of a log suffix Raft did not keep, if any.
    truncate: Option<Ticket>,
    saved: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    /// The newest snapshot taken or installed, kept to send to followers
    /// (and to answer backups).
    pub(crate) latest: Option<(SnapshotMeta, Bytes)>,
    /// (index, term) of the snapshot the WAL is saving.
    saving: Option<(u64, u64)>,
    installing: Option<Installing>,
    queued_install: Option<ReceivedSnapshot>,
    /// The periodic snapshot being written, a few keys per turn.
    writing: Option<SnapshotWriter>,
    /// Whether the timer that writes the next keys is set.
    timer_set: bool,
}

impl Snapshots {
    /// State at start: `latest` is the snapshot the WAL read back, if any.
    pub(crate) fn recovered(latest: Option<(SnapshotMeta, Bytes)>) -> Snapshots {
        Snapshots { latest, ..Snapshots::default() }
    }

    pub(crate) fn latest_position(&self) -> Option<LogPosition> {
        self.latest.as_ref().map(|(meta, _)| meta.last)
    }

    /// Neither writing a snapshot nor installing a received one.
    pub(crate) fn is_idle(&self) -> bool {
        self.writing.is_none() && self.installing.is_none()
    }
}

fn taking(e: impl std::fmt::Display) -> String {
    format!("taking a snapshot: {e}")
}

fn wal_meta(meta: &SnapshotMeta) -> haven_wal::SnapshotMeta {
    haven_wal::SnapshotMeta { index: meta.last.index, term: meta.last.term }
}

impl Running {
    /// After applying: start a snapshot once `every` entries accumulated
    /// since the last.
    pub(crate) fn maybe_snapshot(&mut self, ctx: &mut impl CtxFor<Replica>, every: u64) -> Result<(), String> {
        let since = self.sm.applied_index() - (self.raft.first_index() - 1);
        if self.snapshots.installing.is_some() || self.snapshots.writing.is_some() || since < every {
            return Ok(());
        }
        self.start_snapshot(ctx)
    }

    /// Starts writing a snapshot of the applied state (none if the log up
    /// to it is not yet durable: a later call retries).
    pub(crate) fn start_snapshot(&mut self, ctx: &mut impl CtxFor<Replica>) -> Result<(), String> {
        let meta = match self.raft.compaction_meta(self.sm.applied_index()) {
            Ok(meta) => meta,
            // A later apply retries, once the pending log writes are durable.
            Err(CompactError::NotDurable { .. }) => return Ok(()),
            Err(e) => return Err(taking(e)),
        };
        let writer = SnapshotWriter::new(meta, &self.sm).map_err(taking)?;
        self.snapshots.writing = Some(writer);
        self.set_snapshot_timer(ctx);
        Ok(())
    }

    fn set_snapshot_timer(&mut self, ctx: &mut impl CtxFor<Replica>) {
        if !self.snapshots.timer_set {
            // Due at once: the executor runs what is already waiting first.
            ctx.set_timer(Duration::ZERO, ReplicaTimer::Snapshot);
            self.snapshots.timer_set = true;
        }
    }

    /// The snapshot timer fired: write the next keys, and finish the
    /// snapshot once all are written.
    pub(crate) fn on_snapshot_timer(&mut self, ctx: &mut impl CtxFor<Replica>) -> Result<(), String> {
        self.snapshots.timer_set = false;
        let Some(writer) = &mut self.snapshots.writing else { return Ok(()) }; // replaced by a received one
        if !writer.write(self.snapshot_keys_per_turn).map_err(taking)? {
            self.set_snapshot_timer(ctx);
            return Ok(());
        }
        self.finish_snapshot(ctx)
    }

    /// Completes the snapshot being written, in this turn, and compacts the
    /// log there.
    fn finish_snapshot(&mut self, ctx: &mut impl CtxFor<Replica>) -> Result<(), String> {
        let Some(writer) = self.snapshots.writing.take() else { return Ok(()) };
        let (meta, data) = writer.finish().map_err(taking)?;
        // Only a received snapshot compacts the log meanwhile, and it
        // replaces the one being written: this cannot be refused.
        self.raft.compact(meta.last.index).map_err(|e| format!("compacting the log at a snapshot: {e}"))?;
        self.snapshots.latest = Some((meta.clone(), data.clone()));
        if self.snapshots.saving.is_none() {
            self.save(ctx, &meta, &data)?;
        }
        Ok(())
    }

    fn save(&mut self, ctx: &mut impl CtxFor<Replica>, meta: &SnapshotMeta, data: &Bytes) -> Result<(), String> {
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
            if self.snapshots.writing.is_none() {
                self.start_snapshot(ctx)?;
            }
            self.finish_snapshot(ctx)?;
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
        self.snapshots.writing = None; // of a state the received one replaces
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
        let data = Bytes::from(received.data);
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
