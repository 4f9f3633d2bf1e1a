//! Membership on a running replica: the operator's member table changes,
//! the leader steering Raft's configuration after the table, and the
//! members reported to the daemon.
//!
//! In: [`MemberRequest`]s (proposed like client commands), member table
//! changes as entries apply, and every turn of the replica (`drive`).
//! Out: [`MemberReply`]s once applied; on the leader, the seed of the initial
//! table (once, from [`ReplicaConfig::members`]) and configuration
//! proposals from [`member_plan::next_step`]; [`ReplicaEvent::Members`]
//! whenever the table or the configuration in force changed, so the daemon
//! can dial new peers and forget removed ones.
//!
//! [`ReplicaConfig::members`]: crate::config::ReplicaConfig::members

use crate::command::Command;
use crate::member_plan;
use crate::members::{MemberError, MemberOp, MemberRecord};
use crate::msg::{MemberAnswer, MemberReply, MemberRequest, ReplyError, StationMsg};
use crate::replica::{Replica, ReplicaEvent};
use crate::running::Running;
use crate::state_machine::MemberApplied;
use haven_raft::{ConfChangeError, Membership, ProposeError, Role, StateMachine as _};
use haven_runtime::{CtxFor, NodeId};

/// The leader's own session for the seed; operators' client ids are never 0.
const SEED_SESSION: (u64, u64) = (0, 0);

/// What the replica last reported, to report only changes.
#[derive(Debug, Default)]
pub(crate) struct MemberSteering {
    /// The initial members this replica would seed the table with.
    pub(crate) seed: Vec<MemberRecord>,
    /// The log index of this leader's pending seed, if any.
    pub(crate) seed_at: Option<u64>,
    reported: Option<(Vec<MemberRecord>, Membership)>,
}

impl MemberSteering {
    pub(crate) fn new(seed: Vec<MemberRecord>) -> MemberSteering {
        MemberSteering { seed, ..MemberSteering::default() }
    }
}

pub(crate) fn member_reply(
    ctx: &mut impl CtxFor<Replica>,
    to: NodeId,
    (client, seq): (u64, u64),
    result: Result<MemberAnswer, ReplyError>,
) {
    ctx.send(to, StationMsg::MemberReply(MemberReply { client, seq, result }));
}

impl Running {
    pub(crate) fn propose_member(&mut self, ctx: &mut impl CtxFor<Replica>, from: NodeId, request: MemberRequest) {
        let MemberRequest { client, seq, op } = request;
        if (client, seq) == SEED_SESSION || matches!(op, MemberOp::Seed(_)) {
            return; // only a leader seeds, from its own configuration
        }
        if let Some(id) = self.learner_behind(&op) {
            return member_reply(ctx, from, (client, seq), Err(ReplyError::Member(MemberError::NotCaughtUp { id })));
        }
        let command = Command::Member { client, seq, op }.encode();
        let refused = match self.raft.propose(&command) {
            Ok(_) => {
                self.waiters.insert((client, seq), from);
                return;
            }
            Err(ProposeError::NotLeader { leader_hint }) => ReplyError::NotLeader { leader_hint },
            Err(_) => ReplyError::Busy,
        };
        member_reply(ctx, from, (client, seq), Err(refused));
    }

    /// The learner `op` would promote, if this leader knows it has not
    /// caught up: etcd refuses such a promotion at once, and so does Haven,
    /// rather than record a wish the operator cannot see pending. Unknown
    /// members and voters are left to the table, which refuses them as
    /// etcd does; a follower proposes nothing and answers "not leader".
    fn learner_behind(&self, op: &MemberOp) -> Option<u64> {
        let &MemberOp::Promote { id } = op else { return None };
        let learner_in_table = self.sm.members().get(id).is_some_and(|m| !m.voter);
        let behind = match self.raft.check_promotable(NodeId(id)) {
            Ok(()) | Err(ConfChangeError::NotLeader { .. }) => false,
            // Also a learner the leader has not added to Raft's configuration yet.
            Err(_) => true,
        };
        (learner_in_table && behind).then_some(id)
    }

    /// Answers the operator waiting here for this change, if any.
    pub(crate) fn member_applied(&mut self, ctx: &mut impl CtxFor<Replica>, applied: MemberApplied) {
        let MemberApplied { client, seq, outcome } = applied;
        let Some(to) = self.waiters.remove(&(client, seq)) else { return };
        let result = match outcome {
            Ok(member) => Ok(MemberAnswer { member, members: self.sm.members().members().cloned().collect() }),
            Err(error) => Err(ReplyError::Member(error)),
        };
        member_reply(ctx, to, (client, seq), result);
    }

    /// On the leader: seeds an empty table, then proposes the next step
    /// towards it. Returns whether Raft took a proposal (so has work ready).
    pub(crate) fn steer_membership(&mut self) -> bool {
        if self.role != Role::Leader {
            return false;
        }
        let table = self.sm.members();
        if table.is_empty() {
            return self.seed_members();
        }
        let Some((voters, learners)) = member_plan::next_step(table, self.raft.membership()) else { return false };
        // Refusals are expected (a change still committing, a learner not
        // caught up yet): the next turn asks again.
        self.raft.propose_membership(voters, learners).is_ok()
    }

    fn seed_members(&mut self) -> bool {
        let steering = &mut self.members;
        if steering.seed.is_empty() || steering.seed_at.is_some_and(|index| index > self.sm.applied_index()) {
            return false;
        }
        let (client, seq) = SEED_SESSION;
        let command = Command::Member { client, seq, op: MemberOp::Seed(steering.seed.clone()) };
        steering.seed_at = self.raft.propose(&command.encode()).ok();
        steering.seed_at.is_some()
    }

    /// Reports the table and the configuration in force when either changed.
    pub(crate) fn report_members(&mut self, ctx: &mut impl CtxFor<Replica>) {
        let table = self.sm.members();
        if table.is_empty() {
            return;
        }
        let membership = self.raft.membership();
        let unchanged = self.members.reported.as_ref().is_some_and(|(members, reported)| {
            reported == membership && members.len() == table.members().count() && members.iter().eq(table.members())
        });
        if unchanged {
            return;
        }
        let members: Vec<MemberRecord> = table.members().cloned().collect();
        self.members.reported = Some((members.clone(), membership.clone()));
        let (voters, learners) = (membership.all_voters(), membership.learners.clone());
        let (cluster_id, next_id) = (table.cluster_id(), table.next_id());
        ctx.output(ReplicaEvent::Members { cluster_id, members, next_id, voters, learners });
    }
}
