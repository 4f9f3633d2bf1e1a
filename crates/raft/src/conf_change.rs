//! Membership changes by joint consensus (thesis §4.3) and learners (§4.2.1).
//!
//! In: `propose_membership(voters, learners)` on the leader — the target
//! configuration; commits of configuration entries.
//! Out: configuration entries in the log: one C_new when only learners
//! change (they never count toward a quorum); otherwise C_old,new (a joint
//! configuration: every decision needs a majority of C_old and one of
//! C_new), then, once that is committed, C_new, appended automatically. A
//! leader that is not a voter of a committed C_new steps down.
//!
//! One change at a time: a new one is refused while the latest
//! configuration entry is uncommitted or joint. A node becomes a voter
//! only from learner, and only once it has acknowledged an entry and its
//! log is within `promote_lag_entries_max` of the leader's: a voter that
//! cannot keep up would cost the cluster its availability (§4.2.1).

use crate::entry::EntryKind;
use crate::membership::{Membership, MembershipError};
use crate::raft::{Raft, RoleState};
use haven_runtime::NodeId;
use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfChangeError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("leadership is being transferred to {to}")]
    Transferring { to: NodeId },
    #[error("the configuration entry at {index} is uncommitted or joint; one change at a time")]
    InProgress { index: u64 },
    #[error("the target configuration is invalid: {0}")]
    Invalid(#[from] MembershipError),
    #[error("the target configuration is the current one")]
    Unchanged,
    #[error("{node} must be a learner before it becomes a voter")]
    NotALearner { node: NodeId },
    #[error("learner {node} matches the log up to {match_index} of {last_index}: not caught up")]
    NotCaughtUp { node: NodeId, match_index: u64, last_index: u64 },
}

impl Raft {
    /// Proposes the configuration with these voters and learners; returns
    /// the index of the first configuration entry it appended.
    pub fn propose_membership(&mut self, voters: Vec<NodeId>, learners: Vec<NodeId>) -> Result<u64, ConfChangeError> {
        if !matches!(self.role, RoleState::Leader(_)) {
            return Err(ConfChangeError::NotLeader { leader_hint: self.leader });
        }
        if let Err(crate::ProposeError::Transferring { to }) = self.check_no_transfer() {
            return Err(ConfChangeError::Transferring { to });
        }
        let current = self.log.membership().clone();
        let index = self.log.membership_index();
        if index > self.commit || current.is_joint() {
            return Err(ConfChangeError::InProgress { index });
        }
        let target = Membership::new(voters, learners);
        target.validate()?;
        if target == current {
            return Err(ConfChangeError::Unchanged);
        }
        self.check_new_voters_caught_up(&current, &target)?;
        let next = if target.voters == current.voters {
            target
        } else {
            Membership { voters_outgoing: current.voters, ..target }
        };
        Ok(self.append_own(EntryKind::Config(&next.to_bytes())))
    }

    /// Whether `node` could become a voter now, by the rule the proposal
    /// applies: this node leads, `node` is a learner of the latest
    /// configuration, and its log has caught up. Lets a caller refuse an
    /// operator's promotion at once (as etcd does) instead of proposing it
    /// and retrying until the learner catches up.
    pub fn check_promotable(&self, node: NodeId) -> Result<(), ConfChangeError> {
        if !matches!(self.role, RoleState::Leader(_)) {
            return Err(ConfChangeError::NotLeader { leader_hint: self.leader });
        }
        self.check_learner_caught_up(self.log.membership(), node)
    }

    fn check_new_voters_caught_up(&self, current: &Membership, target: &Membership) -> Result<(), ConfChangeError> {
        for &node in target.voters.iter().filter(|&&id| !current.voters.contains(&id)) {
            self.check_learner_caught_up(current, node)?;
        }
        Ok(())
    }

    /// `node` is a learner of `current` whose log is close enough to ours.
    fn check_learner_caught_up(&self, current: &Membership, node: NodeId) -> Result<(), ConfChangeError> {
        if !current.is_learner(node) {
            return Err(ConfChangeError::NotALearner { node });
        }
        let RoleState::Leader(leadership) = &self.role else { unreachable!("checked by the caller") };
        let last_index = self.log.last_index();
        let match_index = leadership.progress.get(&node).map_or(0, |p| p.match_index);
        // A learner that never acknowledged an entry has not shown it runs
        // at all, however short the log: promoting it could leave the group
        // a voter that will never answer.
        if match_index == 0 || match_index + self.config.promote_lag_entries_max < last_index {
            return Err(ConfChangeError::NotCaughtUp { node, match_index, last_index });
        }
        Ok(())
    }

    /// After the commit index moved on the leader: a committed joint
    /// configuration is followed by C_new; a committed C_new without this
    /// node as a voter ends its leadership (§4.2.2).
    pub(crate) fn advance_membership(&mut self) {
        if self.commit < self.log.membership_index() {
            return;
        }
        let membership = self.log.membership();
        if membership.is_joint() {
            let next = Membership { voters_outgoing: Vec::new(), ..membership.clone() };
            self.append_own(EntryKind::Config(&next.to_bytes()));
        } else if !membership.voters.contains(&self.id) {
            self.become_follower(self.term, None);
        }
    }

    /// The leader tracks exactly the members of the configuration in force.
    pub(crate) fn sync_progress(&mut self) {
        let (members, next_index) = (self.log.membership().members(), self.log.last_index() + 1);
        let RoleState::Leader(leadership) = &mut self.role else { return };
        leadership.sync_members(self.id, &members, next_index);
        if leadership.transfer.is_some_and(|t| !members.contains(&t.to)) {
            leadership.transfer = None;
        }
    }
}
