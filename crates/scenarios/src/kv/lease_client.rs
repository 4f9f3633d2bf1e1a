//! A simulated lease holder: grants a lease, keeps it alive every TTL/3 by
//! its own clock, puts keys attached to it and now and then reads one back.
//!
//! In: replies from replicas, its timers. Out: grant, put (with prev_kv) and
//! get requests (client commands with exactly-once sessions; gets are
//! linearizable reads), keep-alives, and [`LeaseEvent`]s from which the
//! scenario's checkers learn, in global time, when each grant and
//! keep-alive was sent and which were acknowledged, and when each put or
//! get was called and how it ended ([`LeaseEvent::Kv`], for the
//! linearizability check; grants and keep-alives stay out of it).
//!
//! One grant, put or get is in flight at a time, retried on timeouts,
//! `NotLeader` and `Busy` with the same sequence number; after
//! `attempts_max` tries the client gives up on it (a grant given up may
//! still have happened: that lease is then abandoned and must expire; a put
//! given up is recorded without a response). Keep-alives run beside it, one
//! at a time, each attempt with a fresh `seq` so its acknowledgement names
//! exactly the send it answers. Once a replica answers that the lease is
//! gone, the client grants a new one. The session id is drawn at start, so a
//! restarted client is a new session and ignores replies meant for its
//! previous incarnation.

use super::client::ClientEvent;
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_station::{ClientRequest, KeepAliveReply, KeepAliveRequest, ReplyError, StationMsg};
use haven_store::{LeaseGrantRequest, LeaseId, PutRequest, RangeRequest, Request, Response, StoreError};
use rand::RngExt;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct LeaseClientConfig {
    pub servers: Vec<NodeId>,
    pub ttl_seconds: i64,
    /// Keys `l{node}/k0` .. `l{node}/k{keys-1}` go on the lease.
    pub keys: u32,
    pub attempt_timeout: Duration,
    pub attempts_max: u32,
    /// Pause between two requests, drawn uniformly from [0, put_interval_max).
    pub put_interval_max: Duration,
    /// Of the requests on keys, the percentage that are gets of one of the
    /// holder's keys (the rest are puts with prev_kv): reads that can see a
    /// key vanish by expiry.
    pub get_percent: u32,
    /// Pause before retrying a keep-alive refused with `NotLeader` or `Busy`.
    pub keep_alive_backoff: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseEvent {
    /// The first attempt of grant `seq` left.
    GrantSent {
        seq: u64,
    },
    /// Grant `seq` was answered with `lease`.
    Granted {
        seq: u64,
        lease: LeaseId,
        ttl_seconds: i64,
    },
    KeepAliveSent {
        seq: u64,
        lease: LeaseId,
    },
    KeepAliveAcked {
        seq: u64,
        lease: LeaseId,
        ttl_seconds: i64,
    },
    /// A replica answered that `lease` is gone; the client grants anew.
    LeaseLost {
        lease: LeaseId,
    },
    /// A put or get called or ended; `op` is its sequence number.
    Kv(ClientEvent),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseClientTimer {
    /// Start the next grant or put.
    Next,
    /// Attempt `attempt` of grant or put `seq` timed out.
    Attempt { seq: u64, attempt: u32 },
    /// Time to renew `lease`.
    KeepAlive { lease: LeaseId },
    /// Keep-alive `seq` timed out.
    KeepAliveAttempt { seq: u64 },
}

#[derive(Debug)]
struct InFlight {
    seq: u64,
    request: Request,
    attempt: u32,
    target: usize,
}

#[derive(Debug)]
pub struct LeaseClient {
    config: LeaseClientConfig,
    /// The session id; drawn at start.
    client: u64,
    next_seq: u64,
    next_keep_alive_seq: u64,
    leader_guess: usize,
    lease: Option<LeaseId>,
    in_flight: Option<InFlight>,
    /// (seq, lease) of the keep-alive awaiting its answer.
    keep_alive: Option<(u64, LeaseId)>,
}

impl LeaseClient {
    pub fn new(config: LeaseClientConfig) -> LeaseClient {
        assert!(!config.servers.is_empty() && config.keys > 0 && config.attempts_max > 0);
        assert!(config.ttl_seconds > 0, "a lease needs a positive TTL");
        LeaseClient {
            config,
            client: 0,
            next_seq: 1,
            next_keep_alive_seq: 1,
            leader_guess: 0,
            lease: None,
            in_flight: None,
            keep_alive: None,
        }
    }

    /// The lease this client holds and keeps alive, if any.
    pub fn lease(&self) -> Option<LeaseId> {
        self.lease
    }

    /// Whether a grant is in flight (it may create a lease not yet known here).
    pub fn is_granting(&self) -> bool {
        self.in_flight.as_ref().is_some_and(|f| matches!(f.request, Request::LeaseGrant(_)))
    }

    fn keep_alive_period(&self) -> Duration {
        Duration::from_secs(self.config.ttl_seconds as u64) / 3
    }

    fn server(&self, index: usize) -> NodeId {
        self.config.servers[index % self.config.servers.len()]
    }

    fn server_index(&self, node: NodeId) -> Option<usize> {
        self.config.servers.iter().position(|&s| s == node)
    }

    /// The next server to try after `from` refused, preferring its hint.
    fn redirect(&self, from: NodeId, hint: Option<NodeId>, tried: usize) -> usize {
        let hinted = hint.and_then(|l| self.server_index(l)).filter(|&i| Some(i) != self.server_index(from));
        hinted.unwrap_or(tried + 1)
    }

    fn start_next(&mut self, ctx: &mut impl CtxFor<Self>) {
        assert!(self.in_flight.is_none(), "one grant, put or get at a time");
        let request = match self.lease {
            None => Request::LeaseGrant(LeaseGrantRequest { ttl: self.config.ttl_seconds, id: 0 }),
            Some(lease) => self.key_request(ctx, lease),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        if matches!(request, Request::LeaseGrant(_)) {
            ctx.output(LeaseEvent::GrantSent { seq });
        } else {
            ctx.output(LeaseEvent::Kv(ClientEvent::Invoke { op: seq, request: request.clone() }));
        }
        self.in_flight = Some(InFlight { seq, request, attempt: 0, target: self.leader_guess });
        self.send_attempt(ctx);
    }

    /// A get of one of this holder's keys, or a put of one on `lease`.
    fn key_request(&self, ctx: &mut impl CtxFor<Self>, lease: LeaseId) -> Request {
        let key = format!("l{}/k{}", ctx.node().0, ctx.rng().random_range(0..self.config.keys)).into_bytes();
        if ctx.rng().random_range(0..100) < self.config.get_percent {
            return Request::Range(RangeRequest { key, ..RangeRequest::default() });
        }
        let value = ctx.rng().random_range(0u32..1000).to_string().into_bytes();
        Request::Put(PutRequest { key, value, lease, prev_kv: true, ..PutRequest::default() })
    }

    fn send_attempt(&mut self, ctx: &mut impl CtxFor<Self>) {
        let flight = self.in_flight.as_mut().expect("a request is in flight");
        flight.attempt += 1;
        let to = self.config.servers[flight.target % self.config.servers.len()];
        let request = ClientRequest { client: self.client, seq: flight.seq, request: flight.request.clone() };
        ctx.send(to, StationMsg::Request(request));
        ctx.set_timer(
            self.config.attempt_timeout,
            LeaseClientTimer::Attempt { seq: flight.seq, attempt: flight.attempt },
        );
    }

    fn retry(&mut self, ctx: &mut impl CtxFor<Self>, target: usize) {
        let flight = self.in_flight.as_mut().expect("a request is in flight");
        if flight.attempt >= self.config.attempts_max {
            return self.finish(ctx, None);
        }
        flight.target = target;
        self.send_attempt(ctx);
    }

    /// Ends the request in flight; a put or get reports `result` (`None`: given up).
    fn finish(&mut self, ctx: &mut impl CtxFor<Self>, result: Option<Result<Response, ReplyError>>) {
        let flight = self.in_flight.take().expect("a request is in flight");
        if !matches!(flight.request, Request::LeaseGrant(_)) {
            ctx.output(LeaseEvent::Kv(ClientEvent::Complete { op: flight.seq, result }));
        }
        let pause = ctx.rng().random_range(Duration::ZERO..self.config.put_interval_max);
        ctx.set_timer(pause, LeaseClientTimer::Next);
    }

    fn on_reply(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, seq: u64, result: Result<Response, ReplyError>) {
        let Some(flight) = &self.in_flight else { return };
        if seq != flight.seq {
            return; // an answer to an earlier attempt of a finished request
        }
        match result {
            Err(ReplyError::NotLeader { leader_hint } | ReplyError::LeaderLost { leader_hint }) => {
                self.leader_guess = self.redirect(from, leader_hint, flight.target);
                self.retry(ctx, self.leader_guess);
            }
            Err(ReplyError::Busy) => self.retry(ctx, flight.target),
            Ok(Response::LeaseGrant(granted)) => {
                ctx.output(LeaseEvent::Granted { seq, lease: granted.id, ttl_seconds: granted.ttl });
                self.hold(ctx, granted.id);
                self.finish(ctx, None);
            }
            Err(ReplyError::Store(StoreError::LeaseNotFound)) => {
                if let Request::Put(put) = &flight.request {
                    let lease = put.lease;
                    self.lost(ctx, lease);
                }
                self.finish(ctx, Some(Err(ReplyError::Store(StoreError::LeaseNotFound))));
            }
            result => {
                self.leader_guess = self.server_index(from).unwrap_or(self.leader_guess);
                self.finish(ctx, Some(result));
            }
        }
    }

    fn hold(&mut self, ctx: &mut impl CtxFor<Self>, lease: LeaseId) {
        self.lease = Some(lease);
        self.keep_alive = None;
        ctx.set_timer(self.keep_alive_period(), LeaseClientTimer::KeepAlive { lease });
    }

    fn lost(&mut self, ctx: &mut impl CtxFor<Self>, lease: LeaseId) {
        if self.lease == Some(lease) {
            ctx.output(LeaseEvent::LeaseLost { lease });
            self.lease = None;
            self.keep_alive = None;
        }
    }

    fn send_keep_alive(&mut self, ctx: &mut impl CtxFor<Self>, lease: LeaseId) {
        let seq = self.next_keep_alive_seq;
        self.next_keep_alive_seq += 1;
        self.keep_alive = Some((seq, lease));
        ctx.output(LeaseEvent::KeepAliveSent { seq, lease });
        let request = KeepAliveRequest { client: self.client, seq, lease };
        ctx.send(self.server(self.leader_guess), StationMsg::KeepAlive(request));
        ctx.set_timer(self.config.attempt_timeout, LeaseClientTimer::KeepAliveAttempt { seq });
    }

    fn on_keep_alive_reply(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, reply: KeepAliveReply) {
        if self.keep_alive != Some((reply.seq, reply.lease)) || self.lease != Some(reply.lease) {
            return; // an answer to a keep-alive given up on
        }
        self.keep_alive = None;
        let lease = reply.lease;
        match reply.result {
            Ok(ttl_seconds) => {
                ctx.output(LeaseEvent::KeepAliveAcked { seq: reply.seq, lease, ttl_seconds });
                self.leader_guess = self.server_index(from).unwrap_or(self.leader_guess);
                ctx.set_timer(self.keep_alive_period(), LeaseClientTimer::KeepAlive { lease });
            }
            Err(ReplyError::Store(StoreError::LeaseNotFound)) => self.lost(ctx, lease),
            Err(ReplyError::NotLeader { leader_hint }) => {
                self.leader_guess = self.redirect(from, leader_hint, self.leader_guess);
                ctx.set_timer(self.config.keep_alive_backoff, LeaseClientTimer::KeepAlive { lease });
            }
            Err(_) => {
                ctx.set_timer(self.config.keep_alive_backoff, LeaseClientTimer::KeepAlive { lease });
            }
        }
    }

    fn on_keep_alive_timeout(&mut self, ctx: &mut impl CtxFor<Self>, seq: u64) {
        let Some((current, lease)) = self.keep_alive else { return };
        if current == seq && self.lease == Some(lease) {
            self.leader_guess += 1;
            self.send_keep_alive(ctx, lease);
        }
    }
}

impl Component for LeaseClient {
    type Msg = StationMsg;
    type Timer = LeaseClientTimer;
    type Io = haven_basics::Never;
    type Out = LeaseEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.client = (ctx.node().0 << 32) | u64::from(ctx.rng().random::<u32>());
        self.leader_guess = ctx.rng().random_range(0..self.config.servers.len());
        self.start_next(ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        match msg {
            StationMsg::Reply(reply) if reply.client == self.client => {
                self.on_reply(ctx, from, reply.seq, reply.result)
            }
            StationMsg::KeepAliveReply(reply) if reply.client == self.client => {
                self.on_keep_alive_reply(ctx, from, reply)
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, _id: TimerId, timer: LeaseClientTimer) {
        match timer {
            LeaseClientTimer::Next if self.in_flight.is_none() => self.start_next(ctx),
            LeaseClientTimer::Next => {}
            LeaseClientTimer::Attempt { seq, attempt } => {
                let current = self.in_flight.as_ref().is_some_and(|f| f.seq == seq && f.attempt == attempt);
                if current {
                    let target = self.in_flight.as_ref().map_or(0, |f| f.target + 1);
                    self.retry(ctx, target);
                }
            }
            LeaseClientTimer::KeepAlive { lease } => {
                if self.lease == Some(lease) && self.keep_alive.is_none() {
                    self.send_keep_alive(ctx, lease);
                }
            }
            LeaseClientTimer::KeepAliveAttempt { seq } => self.on_keep_alive_timeout(ctx, seq),
        }
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, tag: haven_basics::Never, _result: IoResult) {
        match tag {}
    }
}
