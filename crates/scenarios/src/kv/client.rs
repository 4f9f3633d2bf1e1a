//! A simulated etcd-style client: one operation at a time on a small key
//! space, with timeouts, retries and exactly-once sessions.
//!
//! In: replies from replicas, its timers. Out: requests to replicas, and
//! [`ClientEvent`]s: `Invoke` when an operation starts and `Complete` when
//! it ends, which the scenario stamps with global time to build the history
//! the linearizability checker reads.
//!
//! Some attempts go as relays (`relay_percent`): the replica they reach
//! passes them to its leader, as a station daemon does for its clients.
//!
//! A retry (after a timeout, `NotLeader` or `Busy`) reuses the sequence
//! number, so the replicas' sessions apply it at most once. After
//! `attempts_max` tries the client gives up: the operation completes with
//! no result (it may or may not have taken effect) and the next one uses a
//! new sequence number.

use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_station::{ClientRequest, Relayed, ReplyError, StationMsg};
use haven_store::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest, Request, RequestOp, Response,
    TxnRequest,
};
use rand::RngExt;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub servers: Vec<NodeId>,
    /// Keys are `k0` .. `k{keys-1}`.
    pub keys: u32,
    pub attempt_timeout: Duration,
    pub attempts_max: u32,
    /// Pause between two operations, drawn uniformly from [0, think_max).
    pub think_max: Duration,
    /// Share of attempts, in percent, sent as `StationMsg::Relay`: the
    /// daemon's path, where a follower passes the request to its leader.
    pub relay_percent: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    Invoke {
        op: u64,
        request: Request,
    },
    /// `result` is `None` when the client gave up: the outcome is unknown.
    Complete {
        op: u64,
        result: Option<Result<Response, ReplyError>>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTimer {
    Think,
    Attempt { seq: u64, attempt: u32 },
}

#[derive(Debug)]
struct InFlight {
    op: u64,
    seq: u64,
    request: Request,
    attempt: u32,
    target: usize,
}

#[derive(Debug)]
pub struct KvClient {
    config: ClientConfig,
    next_op: u64,
    next_seq: u64,
    leader_guess: usize,
    in_flight: Option<InFlight>,
}

impl KvClient {
    pub fn new(config: ClientConfig) -> KvClient {
        assert!(!config.servers.is_empty() && config.keys > 0 && config.attempts_max > 0);
        KvClient { config, next_op: 1, next_seq: 1, leader_guess: 0, in_flight: None }
    }

    fn key(&self, ctx: &mut impl CtxFor<Self>) -> Vec<u8> {
        format!("k{}", ctx.rng().random_range(0..self.config.keys)).into_bytes()
    }

    fn random_request(&self, ctx: &mut impl CtxFor<Self>) -> Request {
        let key = self.key(ctx);
        let value = ctx.rng().random_range(0u32..1000).to_string().into_bytes();
        match ctx.rng().random_range(0..10) {
            0..=2 => Request::Range(RangeRequest { key, ..RangeRequest::default() }),
            3..=5 => Request::Put(PutRequest { key, value, prev_kv: true, ..PutRequest::default() }),
            6 => Request::DeleteRange(DeleteRangeRequest { key, prev_kv: true, ..DeleteRangeRequest::default() }),
            7 => {
                Request::Range(RangeRequest { key: b"k".to_vec(), range_end: b"l".to_vec(), ..RangeRequest::default() })
            }
            _ => {
                let expected = ctx.rng().random_range(0u64..3);
                Request::Txn(TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal,
                        target: CompareTarget::Version(expected),
                        key: key.clone(),
                        range_end: Vec::new(),
                    }],
                    success: vec![RequestOp::Put(PutRequest { key: key.clone(), value, ..PutRequest::default() })],
                    failure: vec![RequestOp::Range(RangeRequest { key, ..RangeRequest::default() })],
                })
            }
        }
    }

    fn start_next(&mut self, ctx: &mut impl CtxFor<Self>) {
        let request = self.random_request(ctx);
        let (op, seq) = (self.next_op, self.next_seq);
        self.next_op += 1;
        self.next_seq += 1;
        ctx.output(ClientEvent::Invoke { op, request: request.clone() });
        self.in_flight = Some(InFlight { op, seq, request, attempt: 0, target: self.leader_guess });
        self.send_attempt(ctx);
    }

    fn send_attempt(&mut self, ctx: &mut impl CtxFor<Self>) {
        let flight = self.in_flight.as_mut().expect("an operation is in flight");
        flight.attempt += 1;
        let to = self.config.servers[flight.target % self.config.servers.len()];
        let request = ClientRequest { client: ctx.node().0, seq: flight.seq, request: flight.request.clone() };
        let relayed = self.config.relay_percent > 0 && ctx.rng().random_range(0..100) < self.config.relay_percent;
        ctx.send(to, if relayed { StationMsg::Relay(Relayed::Request(request)) } else { StationMsg::Request(request) });
        let timer = ClientTimer::Attempt { seq: flight.seq, attempt: flight.attempt };
        ctx.set_timer(self.config.attempt_timeout, timer);
    }

    /// Tries again (at `target`), or gives up after `attempts_max` tries.
    fn retry(&mut self, ctx: &mut impl CtxFor<Self>, target: usize) {
        let flight = self.in_flight.as_mut().expect("an operation is in flight");
        if flight.attempt >= self.config.attempts_max {
            let op = flight.op;
            self.finish(ctx, op, None);
            return;
        }
        flight.target = target;
        self.send_attempt(ctx);
    }

    fn finish(&mut self, ctx: &mut impl CtxFor<Self>, op: u64, result: Option<Result<Response, ReplyError>>) {
        self.in_flight = None;
        ctx.output(ClientEvent::Complete { op, result });
        let think = ctx.rng().random_range(Duration::ZERO..self.config.think_max);
        ctx.set_timer(think, ClientTimer::Think);
    }

    fn server_index(&self, node: NodeId) -> Option<usize> {
        self.config.servers.iter().position(|&s| s == node)
    }
}

impl Component for KvClient {
    type Msg = StationMsg;
    type Timer = ClientTimer;
    type Io = haven_basics::Never;
    type Out = ClientEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.leader_guess = ctx.rng().random_range(0..self.config.servers.len());
        self.start_next(ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        let StationMsg::Reply(reply) = msg else { return };
        let Some(flight) = &self.in_flight else { return };
        if reply.seq != flight.seq {
            return; // an answer to an earlier attempt of a finished operation
        }
        let (op, target) = (flight.op, flight.target);
        match reply.result {
            // Retried with the same seq either way: a lost leader may still apply it, once.
            Err(ReplyError::NotLeader { leader_hint } | ReplyError::LeaderLost { leader_hint }) => {
                let next =
                    leader_hint.and_then(|l| self.server_index(l)).filter(|&i| Some(i) != self.server_index(from));
                self.leader_guess = next.unwrap_or(target + 1);
                self.retry(ctx, self.leader_guess);
            }
            Err(ReplyError::Busy) => self.retry(ctx, target),
            result => {
                if let Some(i) = self.server_index(from) {
                    self.leader_guess = i;
                }
                self.finish(ctx, op, Some(result));
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, _id: TimerId, timer: ClientTimer) {
        match timer {
            ClientTimer::Think => self.start_next(ctx),
            ClientTimer::Attempt { seq, attempt } => {
                let current = self.in_flight.as_ref().is_some_and(|f| f.seq == seq && f.attempt == attempt);
                if current {
                    let target = self.in_flight.as_ref().map_or(0, |f| f.target + 1);
                    self.retry(ctx, target);
                }
            }
        }
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, tag: haven_basics::Never, _result: IoResult) {
        match tag {}
    }
}
