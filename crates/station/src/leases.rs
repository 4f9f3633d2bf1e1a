//! Leases on a running replica: the leader's lessor and its expiry tick.
//!
//! In: lease grants and revokes as entries apply, snapshot restores, role
//! changes, the lease tick, and keep-alives and time-to-live questions once
//! ReadIndex confirmed them (`reads.rs`). Out: expiry proposals
//! ([`Command::ExpireLease`], through the log like any change), keep-alive
//! and time-to-live answers, and [`ReplicaEvent::LeaseRevoked`] as revokes
//! apply.
//!
//! The tick runs at the earliest deadline (at most `lease_tick_interval`
//! apart), so an expiry is proposed as soon as it is due.
//!
//! Every replica tracks the leases its applied state holds, but only the
//! leader keeps deadlines and expires: its lessor is primary from the
//! moment it becomes leader until it stops being one. Keep-alives are not
//! replicated (as in etcd), so a new leader cannot know when a holder last
//! renewed; on promotion it gives every lease its full TTL plus Raft's
//! `election_timeout_max` from now, the time a holder needs to notice the
//! change and find the new leader.
//!
//! Why a lease outlives an acknowledged keep-alive sent at global time `g`
//! by at least `TTL / (1 + ρ)`, where ρ bounds how much faster than real
//! time a replica's clock runs (the drift assumption; the `lease` scenario
//! uses ρ = 200 ppm): the leader renews only after a heartbeat round a
//! majority answered in its term confirmed it still leads, so any leader of
//! a later term was elected after the holder sent the keep-alive and starts
//! the lease's clock (TTL + extension) after `g`; the leader that renewed
//! expires it no earlier than TTL after renewing, by its own clock; and
//! waiting for the read index applies any expiry committed earlier, so a
//! lease already revoked is never renewed.

use crate::command::Command;
use crate::config::ReplicaConfig;
use crate::msg::ReplyError;
use crate::replica::{Replica, ReplicaEvent, ReplicaTimer};
use crate::running::Running;
use crate::state_machine::LeaseChange;
use haven_raft::Role;
use haven_runtime::{CtxFor, Instant, TimerId};
use haven_store::{LeaseId, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, Lessor, LessorError, Store, StoreError};
use std::time::Duration;

/// The shortest wait between two lease ticks, so that a deadline just
/// reached cannot make the leader spin.
const LEASE_TICK_MIN: Duration = Duration::from_millis(1);

#[derive(Debug)]
pub(crate) struct Leases {
    lessor: Lessor,
    /// Added to every lease's TTL on promotion: Raft's `election_timeout_max`.
    extension: Duration,
    tick_interval: Duration,
    tick: Option<TimerId>,
    leases_max: usize,
    /// Leases the applied state holds (the store's count, kept here so the
    /// grant bound costs nothing to check).
    held: usize,
}

impl Leases {
    /// The leases of `store`, not primary.
    pub(crate) fn new(config: &ReplicaConfig, store: &Store) -> Leases {
        let mut leases = Leases {
            lessor: Lessor::new(config.lessor.clone()),
            extension: config.raft.election_timeout_max,
            tick_interval: config.lease_tick_interval,
            tick: None,
            leases_max: config.leases_max,
            held: 0,
        };
        leases.reset(store);
        leases
    }

    fn reset(&mut self, store: &Store) {
        self.lessor.reset(store.lease_ttls());
        self.held = store.lease_ttls().count();
    }

    pub(crate) fn lessor(&self) -> &Lessor {
        &self.lessor
    }
}

impl Running {
    /// Becoming leader starts the lease clocks; losing leadership stops them.
    pub(crate) fn leases_on_role(&mut self, ctx: &mut impl CtxFor<Replica>, was: Role) {
        match (was == Role::Leader, self.role == Role::Leader) {
            (false, true) => self.promote_lessor(ctx),
            (true, false) => {
                self.leases.lessor.demote();
                if let Some(id) = self.leases.tick.take() {
                    ctx.cancel_timer(id);
                }
            }
            _ => {}
        }
    }

    fn promote_lessor(&mut self, ctx: &mut impl CtxFor<Replica>) {
        self.leases.lessor.promote(ctx.now(), self.leases.extension);
        if self.leases.tick.is_none() {
            self.leases.tick = Some(ctx.set_timer(self.leases.tick_interval, ReplicaTimer::Lease));
        }
    }

    /// The lease tick: propose an expiry for each lease past its deadline (at
    /// most `expired_batch_len_max`). A proposal Raft refuses is not retried
    /// here: the lessor reports the lease again after `revoke_retry`.
    pub(crate) fn on_lease_tick(&mut self, ctx: &mut impl CtxFor<Replica>) {
        self.leases.tick = None;
        if self.role != Role::Leader {
            return;
        }
        assert!(self.leases.lessor.is_primary(), "a leader's lessor is primary from promotion on");
        let now = ctx.now();
        for lease in self.leases.lessor.expired(now) {
            let _ = self.raft.propose(&Command::ExpireLease { lease }.encode());
        }
        self.leases.tick = Some(ctx.set_timer(self.next_lease_tick(now), ReplicaTimer::Lease));
    }

    /// Until the earliest deadline, so that an expiry is proposed when it
    /// is due rather than up to a tick later (a dead node is noticed that
    /// much sooner); at most `tick_interval`, which covers a grant made
    /// meanwhile (its deadline is a whole TTL of at least a second away).
    fn next_lease_tick(&self, now: Instant) -> Duration {
        let until_due = self.leases.lessor.next_due().map_or(Duration::MAX, |due| due.saturating_since(now));
        until_due.clamp(LEASE_TICK_MIN, self.leases.tick_interval.max(LEASE_TICK_MIN))
    }

    /// An applied entry granted or revoked a lease.
    pub(crate) fn lease_applied(&mut self, ctx: &mut impl CtxFor<Replica>, index: u64, change: LeaseChange) {
        match change {
            LeaseChange::Granted { lease, ttl } => {
                self.leases.lessor.granted(lease, ttl, ctx.now());
                self.leases.held += 1;
            }
            LeaseChange::Revoked { lease, expired } => {
                self.leases.lessor.revoked(lease);
                assert!(self.leases.held > 0, "lease {lease} revoked with no lease held");
                self.leases.held -= 1;
                ctx.output(ReplicaEvent::LeaseRevoked { lease, index, expired });
            }
        }
    }

    /// The state machine was replaced by a snapshot: track its leases, and
    /// start their clocks afresh if this replica leads.
    pub(crate) fn restore_leases(&mut self, ctx: &mut impl CtxFor<Replica>) {
        self.leases.reset(self.sm.store());
        if self.role == Role::Leader {
            self.promote_lessor(ctx);
        }
    }

    /// Refuses a grant once the store holds `leases_max` leases.
    pub(crate) fn may_grant(&self) -> Result<(), ReplyError> {
        match self.leases.held >= self.leases.leases_max {
            true => Err(ReplyError::TooManyLeases { leases_max: self.leases.leases_max }),
            false => Ok(()),
        }
    }

    /// A confirmed keep-alive: the lease's TTL in seconds, renewed from now.
    pub(crate) fn keep_alive(&mut self, now: Instant, lease: LeaseId) -> Result<i64, ReplyError> {
        self.leases.lessor.renew(lease, now).map_err(|e| self.lease_error(e))
    }

    /// A confirmed time-to-live question: the store's answer with the
    /// lessor's remaining seconds in place of the granted TTL.
    pub(crate) fn time_to_live(
        &self,
        now: Instant,
        request: &LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, ReplyError> {
        let mut answer = self.sm.store().lease_time_to_live(request);
        if answer.ttl < 0 {
            return Ok(answer); // no such lease: etcd answers -1, not an error
        }
        if !self.leases.lessor.is_primary() {
            return Err(self.lease_error(LessorError::NotPrimary));
        }
        let remaining = self.leases.lessor.remaining_ttl_seconds(request.id, now);
        answer.ttl = remaining.expect("a primary lessor tracks every lease the store holds");
        Ok(answer)
    }

    fn lease_error(&self, error: LessorError) -> ReplyError {
        match error {
            LessorError::NotPrimary => ReplyError::NotLeader { leader_hint: self.raft.leader() },
            LessorError::NotFound | LessorError::Expired => ReplyError::Store(StoreError::LeaseNotFound),
        }
    }
}
