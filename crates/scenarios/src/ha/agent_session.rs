//! The agent's session with the station: the lease, its key, the join, the
//! keep-alives and the self-fencing deadline they move.
//!
//! In: replies to the agent's requests and keep-alives, and its timers.
//! Out: requests (one in flight, retried across replicas), keep-alives
//! (one retry chain), joins, and the deadline `serve_until` (see the header
//! of `agent.rs` for the steps and the bound).

use super::agent::{Agent, AgentEvent, AgentTimer, InFlight, Phase};
use haven_ha::{InstanceId, PROXY_LABEL};
use haven_runtime::{CtxFor, Instant, NodeId};
use haven_station::{ClientReply, ClientRequest, HaReport, KeepAliveReply, KeepAliveRequest, ReplyError, StationMsg};
use haven_store::{
    LeaseGrantRequest, LeaseId, LeaseRevokeRequest, NO_LEASE, PutRequest, Request, Response, StoreError,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Keep-alives remembered while unanswered (late answers still count).
const KEEP_ALIVES_PENDING_MAX: usize = 8;
/// Leases waiting to be revoked before the next join.
const REVOKES_PENDING_MAX: usize = 8;
/// Instances of ended sessions remembered (the oldest ids are forgotten).
pub(crate) const RETIRED_MAX: usize = 1_024;
/// How long an agent talks to the stations after its proxy left a
/// keep-alive unanswered, before it tries that proxy again (if the stations
/// still name it: they move the agent once the proxy's lease expired).
const PROXY_SILENCE: Duration = Duration::from_secs(3);
/// Keep-alives in a row a proxy leaves unanswered before the agent turns to
/// the stations: two attempts cost 2 x `attempt_timeout`, well inside a TTL.
const PROXY_MISSES_MAX: u32 = 2;
/// Pause before retrying a keep-alive a replica refused.
const KEEP_ALIVE_BACKOFF: Duration = Duration::from_millis(50);

impl Agent {
    /// Drops every instance and starts over with a new lease.
    pub(crate) fn new_session(&mut self, ctx: &mut impl CtxFor<Self>) {
        if let Some(lease) = self.lease() {
            self.to_revoke.insert(lease);
            if self.to_revoke.len() > REVOKES_PENDING_MAX {
                self.to_revoke.pop_first();
            }
        }
        if !self.instances.is_empty() || self.lease().is_some() {
            ctx.output(AgentEvent::SessionEnded { lease: self.lease() });
        }
        self.retired.append(&mut self.session_instances);
        while self.retired.len() > RETIRED_MAX {
            self.retired.pop_first();
        }
        self.instances.clear();
        self.exits.clear();
        self.keep_alives.clear();
        self.keep_alive_latest = None;
        self.serve_until = None;
        if let Some(timer) = self.fence_timer.take() {
            ctx.cancel_timer(timer);
        }
        self.commanded = false;
        // The new session's node record starts without a proxy.
        self.proxy = None;
        self.proxy_silent_until = None;
        self.proxy_misses = 0;
        self.join_backoff = Duration::from_secs(1);
        self.phase = Phase::Granting;
        self.request = None;
        let grant = Request::LeaseGrant(LeaseGrantRequest { ttl: self.config.ttl_seconds, id: 0 });
        self.start_request(ctx, grant);
    }

    fn start_request(&mut self, ctx: &mut impl CtxFor<Self>, request: Request) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.request = Some(InFlight { seq, request, attempt: 0, target: self.leader, first_sent: ctx.now() });
        self.send_attempt(ctx);
    }

    fn send_attempt(&mut self, ctx: &mut impl CtxFor<Self>) {
        let flight = self.request.as_mut().expect("a request is in flight");
        flight.attempt += 1;
        let (seq, attempt, target) = (flight.seq, flight.attempt, flight.target);
        let request = ClientRequest { client: self.client, seq, request: flight.request.clone() };
        let to = self.server(target);
        self.traffic.direct += 1;
        ctx.send(to, StationMsg::Request(request));
        ctx.set_timer(self.config.attempt_timeout, AgentTimer::Attempt { seq, attempt });
    }

    fn retry(&mut self, ctx: &mut impl CtxFor<Self>, target: usize) {
        let flight = self.request.as_mut().expect("a request is in flight");
        if flight.attempt >= self.config.attempts_max {
            return self.new_session(ctx);
        }
        flight.target = target;
        self.send_attempt(ctx);
    }

    pub(crate) fn on_attempt_timeout(&mut self, ctx: &mut impl CtxFor<Self>, seq: u64, attempt: u32) {
        let Some(flight) = &self.request else { return };
        if (flight.seq, flight.attempt) == (seq, attempt) {
            let next = flight.target + 1;
            self.retry(ctx, next);
        }
    }

    pub(crate) fn on_reply(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, reply: ClientReply) {
        let Some(flight) = &self.request else { return };
        if reply.seq != flight.seq {
            return; // an earlier attempt's answer, or a finished request's
        }
        match reply.result {
            Err(ReplyError::NotLeader { leader_hint } | ReplyError::LeaderLost { leader_hint }) => {
                let hinted =
                    leader_hint.and_then(|l| self.server_index(l)).filter(|&i| Some(i) != self.server_index(from));
                let next = hinted.unwrap_or(flight.target + 1);
                self.leader = next;
                self.retry(ctx, next);
            }
            Err(ReplyError::Busy) => {} // the attempt's timeout retries, on the next replica
            Ok(response) => {
                self.leader = self.server_index(from).unwrap_or(self.leader);
                let flight = self.request.take().expect("a request is in flight");
                self.answered(ctx, flight, response);
            }
            Err(ReplyError::Store(StoreError::LeaseNotFound)) if matches!(self.phase, Phase::Revoking { .. }) => {
                self.request = None;
                self.revoke_next(ctx);
            }
            Err(_) => self.new_session(ctx),
        }
    }

    fn answered(&mut self, ctx: &mut impl CtxFor<Self>, flight: InFlight, response: Response) {
        match (self.phase, response) {
            (Phase::Granting, Response::LeaseGrant(granted)) => {
                self.phase = Phase::Recording { lease: granted.id };
                self.acknowledged(ctx, flight.first_sent, granted.ttl);
                ctx.set_timer(self.keep_alive_period(), AgentTimer::KeepAlive { lease: granted.id });
                let key = format!("haven/agents/n{}", ctx.node().0).into_bytes();
                let value = granted.id.to_string().into_bytes();
                let put = PutRequest { key, value, lease: granted.id, prev_kv: true, ..PutRequest::default() };
                self.start_request(ctx, Request::Put(put));
            }
            (Phase::Recording { .. }, Response::Put(put)) => {
                if let Some(old) = put.prev_kv.map(|kv| kv.lease).filter(|&old| old != NO_LEASE) {
                    self.to_revoke.insert(old);
                }
                self.revoke_next(ctx);
            }
            (Phase::Revoking { .. }, Response::LeaseRevoke(_)) => self.revoke_next(ctx),
            _ => self.new_session(ctx),
        }
    }

    /// Revokes the next lease of an earlier session; joins once none is left.
    fn revoke_next(&mut self, ctx: &mut impl CtxFor<Self>) {
        let Some(lease) = self.lease() else { return };
        self.to_revoke.remove(&lease);
        match self.to_revoke.pop_first() {
            Some(old) => {
                self.phase = Phase::Revoking { lease, old };
                self.start_request(ctx, Request::LeaseRevoke(LeaseRevokeRequest { id: old }));
            }
            None => self.join(ctx),
        }
    }

    fn join(&mut self, ctx: &mut impl CtxFor<Self>) {
        let Some(lease) = self.lease() else { return };
        self.phase = Phase::Joined { lease };
        ctx.output(AgentEvent::Joined { lease });
        self.send_join(ctx, lease);
    }

    fn send_join(&mut self, ctx: &mut impl CtxFor<Self>, lease: LeaseId) {
        let node = ctx.node();
        let address = format!("10.0.0.{}:7000", node.0);
        let labels = match self.proxy_host {
            Some(_) => BTreeMap::from([(PROXY_LABEL.0.to_string(), PROXY_LABEL.1.to_string())]),
            None => BTreeMap::new(),
        };
        let join = HaReport::Join { node, address, labels, lease };
        self.traffic.direct += 1;
        ctx.send(self.server(self.leader), StationMsg::HaReport(join));
        ctx.set_timer(self.join_backoff, AgentTimer::Join { lease });
        self.join_backoff = (self.join_backoff * 2).min(self.config.join_backoff_max);
    }

    /// Joins again while no command showed that the node is in the graph.
    pub(crate) fn rejoin(&mut self, ctx: &mut impl CtxFor<Self>, lease: LeaseId) {
        if self.phase == (Phase::Joined { lease }) && !self.commanded {
            self.send_join(ctx, lease);
        }
    }

    fn keep_alive_period(&self) -> Duration {
        Duration::from_secs(self.config.ttl_seconds as u64) / 3
    }

    pub(crate) fn send_keep_alive(&mut self, ctx: &mut impl CtxFor<Self>, lease: LeaseId) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.keep_alives.insert(seq, ctx.now());
        if self.keep_alives.len() > KEEP_ALIVES_PENDING_MAX {
            self.keep_alives.pop_first();
        }
        self.keep_alive_latest = Some(seq);
        let request = KeepAliveRequest { client: self.client, seq, lease };
        self.keep_alive_via = self.route(ctx.now());
        match self.keep_alive_via {
            Some(_) => self.traffic.proxied += 1,
            None => self.traffic.direct += 1,
        }
        let to = self.keep_alive_via.unwrap_or(self.server(self.leader));
        ctx.send(to, StationMsg::KeepAlive(request));
        ctx.set_timer(self.config.attempt_timeout, AgentTimer::KeepAliveTimeout { seq });
    }

    pub(crate) fn on_keep_alive_timeout(&mut self, ctx: &mut impl CtxFor<Self>, seq: u64) {
        if self.keep_alive_latest != Some(seq) {
            return;
        }
        let Some(lease) = self.lease() else { return };
        match self.keep_alive_via {
            // A proxy silent twice in a row: the stations, until it may have
            // recovered (once could be a lost or late message).
            Some(_) => {
                self.proxy_misses += 1;
                if self.proxy_misses >= PROXY_MISSES_MAX {
                    self.proxy_misses = 0;
                    self.proxy_silent_until = Some(ctx.now() + PROXY_SILENCE);
                }
            }
            None => self.leader += 1,
        }
        self.send_keep_alive(ctx, lease);
    }

    pub(crate) fn on_keep_alive_reply(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, reply: KeepAliveReply) {
        if self.lease() != Some(reply.lease) {
            return; // about a lease of an earlier session
        }
        let Some(sent) = self.keep_alives.remove(&reply.seq) else { return };
        let latest = self.keep_alive_latest == Some(reply.seq);
        if latest {
            self.keep_alive_latest = None;
        }
        match reply.result {
            Ok(ttl_seconds) => {
                self.leader = self.server_index(from).unwrap_or(self.leader);
                if Some(from) == self.proxy {
                    self.proxy_misses = 0;
                }
                self.acknowledged(ctx, sent, ttl_seconds);
                if latest {
                    ctx.set_timer(self.keep_alive_period(), AgentTimer::KeepAlive { lease: reply.lease });
                }
            }
            Err(ReplyError::Store(StoreError::LeaseNotFound)) => self.new_session(ctx),
            Err(error) => {
                if let ReplyError::NotLeader { leader_hint: Some(hint) } = error {
                    self.leader = self.server_index(hint).unwrap_or(self.leader + 1);
                } else {
                    self.leader += 1;
                }
                if latest {
                    ctx.set_timer(KEEP_ALIVE_BACKOFF, AgentTimer::KeepAlive { lease: reply.lease });
                }
            }
        }
    }

    /// A grant or keep-alive sent at `sent` was acknowledged with `ttl_seconds`.
    fn acknowledged(&mut self, ctx: &mut impl CtxFor<Self>, sent: Instant, ttl_seconds: i64) {
        let ttl_ns = u128::from(ttl_seconds.max(0).unsigned_abs()) * 1_000_000_000;
        let safe_ns = ttl_ns * 1_000_000 / (1_000_000 + u128::from(self.config.drift_ppm_max));
        let safe = Duration::from_nanos(u64::try_from(safe_ns).unwrap_or(u64::MAX));
        let until = sent + safe.saturating_sub(self.config.fence_margin);
        if self.serve_until.is_some_and(|old| old >= until) {
            return;
        }
        self.serve_until = Some(until);
        if let Some(timer) = self.fence_timer.take() {
            ctx.cancel_timer(timer);
        }
        let after = until.saturating_since(ctx.now());
        self.fence_timer = Some(ctx.set_timer(after, AgentTimer::Fence));
    }

    /// Past the deadline: stops every primary and reports their exits.
    pub(crate) fn fence_if_due(&mut self, ctx: &mut impl CtxFor<Self>) {
        if self.can_serve(ctx.now()) {
            return;
        }
        let primaries: Vec<InstanceId> =
            self.instances.iter().filter(|(_, r)| r.role == haven_ha::Role::Primary).map(|(&id, _)| id).collect();
        if primaries.is_empty() {
            return;
        }
        for &id in &primaries {
            self.end_instance(ctx, id, None);
        }
        ctx.output(AgentEvent::SelfFenced { instances: primaries });
    }
}
