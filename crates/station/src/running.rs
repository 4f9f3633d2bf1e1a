//! The state of a replica once its log is open: the Raft core, the WAL, the
//! state machine, and the requests in flight.
//!
//! In: each `Ready` from the Raft core, client requests routed by the
//! replica. Out: WAL writes, sends, client replies, applied entries, and
//! the one timer at Raft's next deadline. Reads answered without a log entry
//! are in `reads.rs`, leases in `leases.rs`, snapshots in `snapshots.rs`,
//! backups in `backups.rs`.

use crate::backups::Backups;
use crate::command::Command;
use crate::ha_steering::HaSteering;
use crate::leases::Leases;
use crate::member_steering::MemberSteering;
use crate::msg::{ClientReply, CommitHint, ReplyError, StationMsg};
use crate::persist::PersistTracker;
use crate::reads::PendingRead;
use crate::relays::Relays;
use crate::replica::{Replica, ReplicaEvent, ReplicaTimer};
use crate::snapshots::Snapshots;
use crate::state_machine::{Applied, ClientOutcome, StateMachine};
use crate::watches::Watches;
use haven_raft::{Entry, PersistRequest, ProposeError, Raft, Ready, Role, StateMachine as _};
use haven_runtime::{CtxFor, Instant, NodeId, TimerId};
use haven_store::{Request, Response};
use haven_wal::Wal;
use std::collections::BTreeMap;

#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) raft: Raft,
    pub(crate) wal: Wal,
    pub(crate) sm: StateMachine,
    pub(crate) persists: PersistTracker,
    /// Client requests proposed here and not yet answered: (client, seq) → client node.
    pub(crate) waiters: BTreeMap<(u64, u64), NodeId>,
    pub(crate) timer: Option<(Instant, TimerId)>,
    pub(crate) role: Role,
    /// Reads waiting for Raft to confirm their read index, by context.
    pub(crate) reads_asked: BTreeMap<u64, PendingRead>,
    /// Confirmed reads waiting for the applied index to reach theirs.
    pub(crate) reads_confirmed: BTreeMap<(u64, u64), PendingRead>,
    pub(crate) read_ctx_next: u64,
    pub(crate) snapshots: Snapshots,
    pub(crate) leases: Leases,
    /// Applied entries between two snapshots (`ReplicaConfig::snapshot_entries`).
    pub(crate) snapshot_entries: u64,
    /// Keys a snapshot writes per turn (`ReplicaConfig::snapshot_keys_per_turn`).
    pub(crate) snapshot_keys_per_turn: usize,
    /// `ReplicaConfig::history_revisions_max`.
    pub(crate) history_revisions_max: Option<u64>,
    /// The log index of this leader's pending auto-compaction, if any.
    pub(crate) history_compaction_at: Option<u64>,
    /// WAL events produced by calls made here, for the replica to handle
    /// once the current step is done.
    pub(crate) deferred: Vec<haven_wal::WalEvent>,
    /// Watches served from the applied state (volatile).
    pub(crate) watches: Watches,
    /// The member table's seed, and what was last reported of it.
    pub(crate) members: MemberSteering,
    /// The coordinator's state on this replica (it runs while it leads).
    pub(crate) ha: HaSteering,
    /// Requests passed to the leader for clients of this replica.
    pub(crate) relays: Relays,
    /// Operators' backup queries waiting for a snapshot.
    pub(crate) backups: Backups,
}

pub(crate) fn reply(
    ctx: &mut impl CtxFor<Replica>,
    to: NodeId,
    session: (u64, u64),
    result: Result<Response, ReplyError>,
) {
    let (client, seq) = session;
    ctx.send(to, StationMsg::Reply(ClientReply { client, seq, result, commit: None }));
}

impl Running {
    pub(crate) fn propose(
        &mut self,
        ctx: &mut impl CtxFor<Replica>,
        from: NodeId,
        client: u64,
        seq: u64,
        request: Request,
    ) {
        let command = Command::Client { client, seq, request }.encode();
        match self.raft.propose(&command) {
            Ok(_) => {
                self.waiters.insert((client, seq), from);
            }
            Err(ProposeError::NotLeader { leader_hint }) => {
                reply(ctx, from, (client, seq), Err(ReplyError::NotLeader { leader_hint }))
            }
            Err(
                ProposeError::TooLarge { .. } | ProposeError::Backpressure { .. } | ProposeError::Transferring { .. },
            ) => reply(ctx, from, (client, seq), Err(ReplyError::Busy)),
        }
    }

    pub(crate) fn handle(&mut self, ctx: &mut impl CtxFor<Replica>, ready: Ready) -> Result<(), String> {
        if let Some(soft) = ready.soft_state {
            ctx.output(ReplicaEvent::Role { role: soft.role, term: soft.term, leader: soft.leader });
            if self.role == Role::Leader && soft.role != Role::Leader {
                self.fail_waiters(ctx, soft.leader);
            }
            let was = std::mem::replace(&mut self.role, soft.role);
            self.leases_on_role(ctx, was);
        }
        if let Some(persist) = ready.persist {
            self.persist(ctx, persist)?;
        }
        for envelope in ready.messages {
            ctx.send(envelope.to, StationMsg::Raft(envelope.msg));
        }
        let current_term = self.raft.term();
        let outputs = self.raft.apply_to(&mut self.sm, &ready.committed).map_err(|e| format!("raft refused: {e}"))?;
        for (entry, (_, applied)) in ready.committed.iter().zip(outputs) {
            self.on_applied(ctx, entry, current_term, applied);
        }
        if !ready.committed.is_empty() {
            let store = self.sm.store();
            let (revision, store_bytes, leases) = (store.revision(), store.bytes_used(), store.leases_len() as u64);
            ctx.output(ReplicaEvent::Committed { index: self.raft.commit_index(), revision, store_bytes, leases });
        }
        self.on_reads(ctx, ready.read_states, ready.reads_failed);
        if ready.snapshot_needed {
            self.provide_snapshot(ctx)?;
        }
        if let Some(received) = ready.snapshot {
            self.receive_snapshot(ctx, received)?;
        }
        if !ready.committed.is_empty() {
            self.maybe_compact_history();
            self.maybe_snapshot(ctx, self.snapshot_entries)?;
        }
        Ok(())
    }

    /// Writes one persist request: drop the suffix it rewrites, append, store
    /// the hard state; it is durable once the WAL acknowledges the last ticket.
    pub(crate) fn persist(&mut self, ctx: &mut impl CtxFor<Replica>, persist: PersistRequest) -> Result<(), String> {
        let mut events = Vec::new();
        let mut ticket = None;
        let mut sub = ctx.sub(&mut events);
        if let Some(first) = persist.entries.first() {
            let last = self.wal.index_last().ok_or("WAL not open")?;
            if first.index <= last {
                // Covered by the append's ticket: the WAL writes both in one batch.
                self.wal.truncate_suffix(&mut sub, first.index).map_err(|e| e.to_string())?;
            }
            let entries: Vec<haven_wal::Entry> = persist
                .entries
                .iter()
                .map(|e| haven_wal::Entry { index: e.index, term: e.term, payload: e.payload.clone() })
                .collect();
            ticket = Some(self.wal.append(&mut sub, &entries).map_err(|e| e.to_string())?);
        }
        if let Some(hard_state) = persist.hard_state {
            ticket = Some(self.wal.set_hard_state(&mut sub, hard_state.to_bytes()).map_err(|e| e.to_string())?);
        }
        self.deferred.extend(events);
        self.persists.issued(persist.id, ticket);
        let now = ctx.now();
        for id in self.persists.take_durable() {
            self.raft.on_persisted(now, id).map_err(|e| format!("raft refused persist {id:?}: {e}"))?;
        }
        Ok(())
    }

    /// The leader proposes an auto-compaction once the history reached
    /// `history_revisions_max` and an eighth more, one at a time: the next
    /// waits until this one applied (or its entry was lost with a leader
    /// change). Every replica compacts at the same log index and stalls
    /// meanwhile for as long as the revisions it drops take; small steps
    /// keep that stall to a few milliseconds (at 10,000 revisions, steps of
    /// 10,000 stalled all three stations for 10-25 ms every half second at
    /// 24,000 writes/s, a visible share of the p99 latency).
    fn maybe_compact_history(&mut self) {
        let Some(kept) = self.history_revisions_max else { return };
        let trigger = kept.saturating_add((kept / 8).max(1));
        if self.history_compaction_at.is_some_and(|index| index > self.sm.applied_index()) {
            return;
        }
        self.history_compaction_at = None;
        let store = self.sm.store();
        let oldest = store.compact_revision().unwrap_or(0);
        if self.role != Role::Leader || store.revision().saturating_sub(oldest) < trigger {
            return;
        }
        let command = Command::CompactHistory { revision: store.revision() - kept };
        self.history_compaction_at = self.raft.propose(&command.encode()).ok();
    }

    /// Reports one applied entry and carries out what it changed: lease
    /// clocks, and the answer to the client waiting here, if any.
    fn on_applied(&mut self, ctx: &mut impl CtxFor<Replica>, entry: &Entry, current_term: u64, applied: Applied) {
        let digest = crc32c::crc32c(&entry.payload);
        ctx.output(ReplicaEvent::Applied { index: entry.index, term: entry.term, current_term, digest });
        if let Some(change) = applied.lease {
            self.lease_applied(ctx, entry.index, change);
        }
        if let Some(member) = applied.member {
            return self.member_applied(ctx, member);
        }
        if let Some(ha) = applied.ha {
            if let Some(session) = applied.ha_ack {
                self.ha_acked(ctx, session, &ha);
            }
            let ha = self.commands_via_proxies(ctx, entry.term, ha);
            self.ha_applied(ctx, entry.term, ha);
        }
        let Some(ClientOutcome { client, seq, outcome }) = applied.client else { return };
        let Some(to) = self.waiters.remove(&(client, seq)) else { return };
        let result = match outcome {
            Some(Ok(response)) => Ok(response),
            Some(Err(error)) => Err(ReplyError::Store(error)),
            None => Err(ReplyError::SessionExpired),
        };
        let leads = self.role == Role::Leader;
        let commit = leads.then(|| CommitHint { term: self.raft.term(), index: self.raft.commit_index() });
        ctx.send(to, StationMsg::Reply(ClientReply { client, seq, result, commit }));
    }

    /// A deposed leader answers its waiting clients so they retry elsewhere;
    /// their sessions make the retries safe whatever happens to the entries.
    /// The entries may still commit, so the answer says the leader was lost,
    /// not that the command was refused.
    pub(crate) fn fail_waiters(&mut self, ctx: &mut impl CtxFor<Replica>, leader_hint: Option<NodeId>) {
        for (session, to) in std::mem::take(&mut self.waiters) {
            reply(ctx, to, session, Err(ReplyError::LeaderLost { leader_hint }));
        }
    }

    pub(crate) fn arm_timer(&mut self, ctx: &mut impl CtxFor<Replica>) {
        let deadline = self.raft.next_deadline();
        if self.timer.is_some_and(|(at, _)| at == deadline) {
            return;
        }
        if let Some((_, id)) = self.timer.take() {
            ctx.cancel_timer(id);
        }
        let id = ctx.set_timer(deadline.saturating_since(ctx.now()), ReplicaTimer::Raft);
        self.timer = Some((deadline, id));
    }
}
