//! Backups on a running replica: snapshots an operator takes, to restore
//! the cluster elsewhere if it is lost (`haven snapshot save`).
//!
//! In: `BackupQuery` from a client; every drive of the replica (applies,
//! finished snapshots). Out: one `Backup` answer per query — the newest
//! snapshot once it covers every entry committed when the query arrived,
//! or `NotLeader` (with the leader's id) or `Busy`.
//!
//! Why only the leader: its commit index covers every write any leader
//! acknowledged before the query, so a backup taken after an acknowledged
//! write holds it. A follower's commit index may lag.
//!
//! Why a snapshot: a backup is the same bytes the replica saves, and sends
//! to a lagging follower (`snapshot_file`: versioned, checksummed), written
//! a few keys per turn by the ordinary path. It costs the cluster one
//! snapshot taken early (the log is compacted there, as for any snapshot),
//! and never a long turn. Bound: [`BACKUPS_WAITING_LEN_MAX`] queries wait at
//! once; they share one snapshot when they can.

use crate::msg::{BackupImage, ReplyError, StationMsg};
use crate::replica::Replica;
use crate::running::Running;
use haven_raft::{Role, StateMachine as _};
use haven_runtime::{CtxFor, NodeId};

/// Backup queries one replica holds at once; more are refused `Busy`. An
/// operator takes one backup at a time; a few allow for retries.
pub(crate) const BACKUPS_WAITING_LEN_MAX: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiting {
    to: NodeId,
    client: u64,
    seq: u64,
    /// The commit index when asked: the backup must cover it.
    index: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Backups {
    waiting: Vec<Waiting>,
}

fn answer(ctx: &mut impl CtxFor<Replica>, w: Waiting, result: Result<BackupImage, ReplyError>) {
    ctx.send(w.to, StationMsg::Backup { client: w.client, seq: w.seq, result });
}

impl Running {
    pub(crate) fn on_backup_query(&mut self, ctx: &mut impl CtxFor<Replica>, to: NodeId, client: u64, seq: u64) {
        // Replicas never ask: the answer, the whole store, is for the local
        // client, and would only be refused as too large for a peer frame.
        if self.raft.membership().members().contains(&to) {
            return;
        }
        let w = Waiting { to, client, seq, index: self.raft.commit_index() };
        if self.raft.role() != Role::Leader {
            answer(ctx, w, Err(ReplyError::NotLeader { leader_hint: self.raft.leader() }));
        } else if self.backups.waiting.len() >= BACKUPS_WAITING_LEN_MAX {
            answer(ctx, w, Err(ReplyError::Busy));
        } else {
            self.backups.waiting.push(w);
        }
    }

    /// Answers the queries the newest snapshot covers, and starts a
    /// snapshot for the others once the state machine applied what one of
    /// them waits for (and no other snapshot is being written or received).
    pub(crate) fn serve_backups(&mut self, ctx: &mut impl CtxFor<Replica>) -> Result<(), String> {
        if self.backups.waiting.is_empty() {
            return Ok(());
        }
        if let Some((meta, data)) = &self.snapshots.latest {
            let image = BackupImage { index: meta.last.index, term: meta.last.term, data: data.clone() };
            let waiting = std::mem::take(&mut self.backups.waiting);
            let (covered, left): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|w| w.index <= meta.last.index);
            self.backups.waiting = left;
            for w in covered {
                answer(ctx, w, Ok(image.clone()));
            }
        }
        let applied = self.sm.applied_index();
        let due = self.backups.waiting.iter().any(|w| w.index <= applied);
        if due && self.snapshots.is_idle() {
            self.start_snapshot(ctx)?;
        }
        Ok(())
    }
}
