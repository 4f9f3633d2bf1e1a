//! Leadership transfer (thesis §3.10).
//!
//! In: `transfer_leader(to)` on the leader, the target's append
//! acknowledgements, the clock; on the target, TimeoutNow.
//! Out: on the leader, refused proposals while the transfer runs and one
//! TimeoutNow once the target's log matches the leader's last entry; on
//! the target, an immediate election (no pre-vote) whose vote requests
//! carry `transfer`, so that voters grant them within the old leader's
//! lease. The leader gives up after `election_timeout_max` and accepts
//! proposals again; it learns of success by the new leader's higher term.
//!
//! Refusing proposals is what makes "caught up" final: the leader's log
//! stops growing, so once the target holds the last entry it wins any
//! election the old leader's followers take part in.

use crate::error::{ProposeError, TransferError};
use crate::message::Message;
use crate::raft::{Raft, RoleState};
use haven_runtime::{Instant, NodeId};

/// A transfer in progress, owned by the leader's [`crate::leadership::Leadership`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Transfer {
    pub(crate) to: NodeId,
    /// When the leader gives up and accepts proposals again.
    pub(crate) deadline: Instant,
    pub(crate) timeout_now_sent: bool,
}

impl Raft {
    /// Starts handing leadership to voter `to`. Calling it again for the
    /// same target while it runs is harmless.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        let deadline = self.now + self.config.election_timeout_max;
        let is_voter = to != self.id && self.is_voter(to);
        let RoleState::Leader(leadership) = &mut self.role else {
            return Err(TransferError::NotLeader { leader_hint: self.leader });
        };
        match leadership.transfer {
            Some(transfer) if transfer.to == to => return Ok(()),
            Some(transfer) => return Err(TransferError::InProgress { to: transfer.to }),
            None if !is_voter => return Err(TransferError::NotAVoter { node: to }),
            None => leadership.transfer = Some(Transfer { to, deadline, timeout_now_sent: false }),
        }
        self.send_timeout_now_if_caught_up();
        Ok(())
    }

    /// Proposals wait while a transfer runs, so that the target can catch up.
    pub(crate) fn check_no_transfer(&self) -> Result<(), ProposeError> {
        match &self.role {
            RoleState::Leader(leadership) => match leadership.transfer {
                Some(transfer) => Err(ProposeError::Transferring { to: transfer.to }),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Sends TimeoutNow once the target holds our last entry.
    pub(crate) fn send_timeout_now_if_caught_up(&mut self) {
        let (last_index, term) = (self.log.last_index(), self.term);
        let RoleState::Leader(leadership) = &mut self.role else { return };
        let Some(transfer) = leadership.transfer.as_mut() else { return };
        let caught_up = leadership.progress.get(&transfer.to).is_some_and(|p| p.match_index == last_index);
        if caught_up && !transfer.timeout_now_sent {
            transfer.timeout_now_sent = true;
            let to = transfer.to;
            // It asserts nothing about our disk: the target runs on its own log.
            self.gate.send_now(to, Message::TimeoutNow { term });
        }
    }

    /// The leader's tick: abandons a transfer that did not finish in time.
    pub(crate) fn expire_transfer(&mut self) {
        let now = self.now;
        let RoleState::Leader(leadership) = &mut self.role else { return };
        if leadership.transfer.is_some_and(|t| now >= t.deadline) {
            leadership.transfer = None;
        }
    }

    /// TimeoutNow from the leader of our term: run now, skipping pre-vote
    /// (the leader vouches that our log is up to date).
    pub(crate) fn on_timeout_now(&mut self, from: NodeId) {
        let other_leader = self.leader.is_some_and(|leader| leader != from);
        if other_leader || !matches!(self.role, RoleState::Follower) || !self.is_voter(self.id) {
            return;
        }
        self.campaign(true);
    }
}
