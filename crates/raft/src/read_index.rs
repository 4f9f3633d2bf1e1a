//! Linearizable reads without a log write: ReadIndex (thesis §6.4).
//!
//! In: `read_index(ctx)` calls on the leader, commits, heartbeat responses
//! echoing a round, and step-down.
//! Out: `Ready::read_states` (serve the read once the applied index reaches
//! its `index`), `Ready::reads_failed` (contexts to answer with an error,
//! the client retries elsewhere), and heartbeat rounds started on demand.
//!
//! A follower refuses reads with the leader hint instead of forwarding
//! them: the caller already redirects writes that way, and a forwarded
//! read would need its own timeout and retry path in the core.

use crate::error::ReadError;
use crate::raft::{Raft, RoleState};

impl Raft {
    /// Asks for a linearizable read tagged `ctx` (any value the caller
    /// chooses; it comes back in `Ready::read_states` or `reads_failed`).
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadError> {
        let (commit, pending_max) = (self.commit, self.config.reads_pending_max);
        let pending = self.reads.len() + self.read_states.len();
        let RoleState::Leader(leadership) = &mut self.role else {
            return Err(ReadError::NotLeader { leader_hint: self.leader });
        };
        if pending >= pending_max {
            return Err(ReadError::Backpressure { pending, pending_max });
        }
        if commit >= leadership.term_start {
            self.reads.push(ctx, commit, leadership.read_round + 1);
            leadership.read_round_wanted = true;
        } else {
            self.reads.push_unindexed(ctx);
        }
        Ok(())
    }

    /// On a leader: tells every follower the commit index now, in a
    /// heartbeat round (which also confirms reads), instead of with the
    /// next append or heartbeat. A follower learns a commit only from those,
    /// so without new entries it applies up to a heartbeat interval after
    /// the leader; a caller whose followers must apply one entry promptly
    /// asks for this once it has seen that entry committed. Does nothing
    /// on a follower.
    pub fn broadcast_commit(&mut self) {
        if matches!(self.role, RoleState::Leader(_)) {
            self.broadcast_heartbeats();
        }
    }

    /// After the commit index moved: reads waiting for this term's first
    /// commit get their index now and ask for a fresh round.
    pub(crate) fn index_waiting_reads(&mut self) {
        let commit = self.commit;
        let RoleState::Leader(leadership) = &mut self.role else { return };
        if commit >= leadership.term_start && self.reads.index_waiting(commit, leadership.read_round + 1) {
            leadership.read_round_wanted = true;
        }
    }

    /// Moves every read a quorum has confirmed to the next `Ready`, and
    /// extends the lease.
    pub(crate) fn confirm_reads(&mut self) {
        let RoleState::Leader(leadership) = &mut self.role else { return };
        let round = leadership.quorum_round(self.id, self.log.membership());
        leadership.note_round_confirmed(round);
        let confirmed = self.reads.confirm(round);
        self.read_states.extend(confirmed);
    }

    /// Leadership is over: nothing queued can be confirmed any more.
    pub(crate) fn fail_reads(&mut self) {
        let failed = self.reads.abort_all();
        self.reads_failed.extend(failed);
    }
}
