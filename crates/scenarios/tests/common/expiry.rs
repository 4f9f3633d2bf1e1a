//! Planted bug shared by the `lease` and `ha-failover` tests: a new leader
//! that expires leases by the deadlines it had before it led, without the
//! extension (TTL + one election timeout) every lease gets at promotion.

use haven_raft::{Raft, Role};
use haven_runtime::{Component, CtxFor, Instant, IoId, IoResult, NodeId, TimerId};
use haven_scenarios::kv::node::StationReplica;
use haven_station::{ClientRequest, Replica, ReplicaEvent, ReplicaIo, ReplicaTimer, StateMachine, StationMsg};
use haven_store::{LeaseId, LeaseRevokeRequest, Lessor, LessorConfig, Request};
use rand::RngExt;
use std::collections::BTreeSet;
use std::time::Duration;

/// Planted bug (d). Beside the real replica runs a lessor that is never
/// demoted, so it never re-promotes either: every replica starts a lease's
/// clock when it applies the grant, renews it only for keep-alives it
/// answers itself, and once leader expires what that clock says (extension
/// 0, deadlines as if the old leader's renewals had never happened). The
/// expiries are proposed as revokes under a session of the replica's own.
#[derive(Debug)]
pub struct ExpiresWithoutExtension {
    inner: Replica,
    stale: Lessor,
    known: BTreeSet<LeaseId>,
    session: u64,
    seq: u64,
}

impl ExpiresWithoutExtension {
    pub fn new(inner: Replica) -> ExpiresWithoutExtension {
        let stale = Lessor::new(LessorConfig::default());
        ExpiresWithoutExtension { inner, stale, known: BTreeSet::new(), session: 0, seq: 0 }
    }

    fn is_leader(&self) -> bool {
        self.inner.raft().is_some_and(|r| r.role() == Role::Leader)
    }

    /// Follows the applied leases: a new one's clock starts now.
    fn track(&mut self, now: Instant) {
        let Some(sm) = self.inner.state_machine() else { return };
        let current: Vec<(LeaseId, std::time::Duration)> = sm.store().lease_ttls().collect();
        let ids: BTreeSet<LeaseId> = current.iter().map(|&(id, _)| id).collect();
        for &(id, ttl) in current.iter().filter(|(id, _)| !self.known.contains(id)) {
            self.stale.granted(id, ttl, now);
        }
        for &gone in self.known.difference(&ids) {
            self.stale.revoked(gone);
        }
        self.known = ids;
    }

    fn expire(&mut self, ctx: &mut impl CtxFor<Self>) {
        for id in self.stale.expired(ctx.now()) {
            self.seq += 1;
            let request = Request::LeaseRevoke(LeaseRevokeRequest { id });
            let revoke = ClientRequest { client: self.session, seq: self.seq, request };
            self.inner.on_message(ctx, ctx.node(), StationMsg::Request(revoke));
        }
    }
}

impl StationReplica for ExpiresWithoutExtension {
    fn raft(&self) -> Option<&Raft> {
        self.inner.raft()
    }

    fn state_machine(&self) -> Option<&StateMachine> {
        self.inner.state_machine()
    }
}

impl Component for ExpiresWithoutExtension {
    type Msg = StationMsg;
    type Timer = ReplicaTimer;
    type Io = ReplicaIo;
    type Out = ReplicaEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.session = (1 << 63) | (ctx.node().0 << 32) | u64::from(ctx.rng().random::<u32>());
        self.stale.promote(ctx.now(), Duration::ZERO);
        self.inner.on_start(ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        if let (true, StationMsg::KeepAlive(keep_alive)) = (self.is_leader(), &msg) {
            let _ = self.stale.renew(keep_alive.lease, ctx.now());
        }
        self.inner.on_message(ctx, from, msg);
        self.track(ctx.now());
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: ReplicaTimer) {
        self.inner.on_timer(ctx, id, timer);
        self.track(ctx.now());
        if timer == ReplicaTimer::Lease && self.is_leader() {
            self.expire(ctx);
        }
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: ReplicaIo, result: IoResult) {
        self.inner.on_io(ctx, id, tag, result);
        self.track(ctx.now());
    }
}
