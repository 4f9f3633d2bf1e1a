//! A closed-loop load generator for benchmarks: `concurrency` independent
//! client sessions, each with one put in flight at a time, each sending the
//! next put as soon as the previous one is acknowledged.
//!
//! In: replies from replicas. Out: puts to the replica it believes leads,
//! and a count of acknowledged writes ([`LoadGen::acked`]).

use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_station::{ClientRequest, ReplyError, StationMsg};
use haven_store::{PutRequest, Request};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry;

#[derive(Debug)]
struct Session {
    seq: u64,
    target: NodeId,
}

#[derive(Debug)]
pub struct LoadGen {
    servers: Vec<NodeId>,
    sessions: Vec<Session>,
    acked: u64,
    value: Vec<u8>,
}

impl LoadGen {
    pub fn new(servers: Vec<NodeId>, concurrency: usize, value_bytes: usize) -> LoadGen {
        assert!(!servers.is_empty() && concurrency > 0);
        let sessions = (0..concurrency).map(|_| Session { seq: 0, target: servers[0] }).collect();
        LoadGen { servers, sessions, acked: 0, value: vec![b'x'; value_bytes] }
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    fn client_id(node: NodeId, slot: usize) -> u64 {
        (node.0 << 20) | slot as u64
    }

    fn send(&mut self, ctx: &mut impl CtxFor<Self>, slot: usize) {
        let session = &mut self.sessions[slot];
        let key = format!("load/{slot}").into_bytes();
        let request = Request::Put(PutRequest { key, value: self.value.clone(), ..PutRequest::default() });
        let msg = ClientRequest { client: Self::client_id(ctx.node(), slot), seq: session.seq, request };
        ctx.send(session.target, StationMsg::Request(msg));
    }

    fn slot_of(&self, ctx: &impl CtxFor<Self>, client: u64) -> Option<usize> {
        let slot = (client & 0xf_ffff) as usize;
        (client >> 20 == ctx.node().0 && slot < self.sessions.len()).then_some(slot)
    }
}

impl Component for LoadGen {
    type Msg = StationMsg;
    type Timer = usize;
    type Io = haven_basics::Never;
    type Out = Retry;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        for slot in 0..self.sessions.len() {
            self.sessions[slot].seq = 1;
            self.send(ctx, slot);
        }
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        let StationMsg::Reply(reply) = msg else { return };
        let Some(slot) = self.slot_of(ctx, reply.client) else { return };
        if reply.seq != self.sessions[slot].seq {
            return; // an answer to an attempt already retried
        }
        match reply.result {
            Ok(_) => {
                self.acked += 1;
                self.sessions[slot].seq += 1;
                self.send(ctx, slot);
            }
            Err(ReplyError::NotLeader { leader_hint }) => {
                let next = self.servers.iter().position(|&s| s == from).map_or(0, |i| (i + 1) % self.servers.len());
                self.sessions[slot].target = leader_hint.unwrap_or(self.servers[next]);
                ctx.set_timer(Duration::from_millis(10), slot);
            }
            Err(_) => {
                ctx.set_timer(Duration::from_millis(10), slot);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, _id: TimerId, slot: usize) {
        ctx.output(Retry);
        self.send(ctx, slot);
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, tag: haven_basics::Never, _result: IoResult) {
        match tag {}
    }
}
