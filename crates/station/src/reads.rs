//! Requests a replica answers without a log entry, once Raft confirmed its
//! leadership (ReadIndex, thesis §6.4): range reads, lease time-to-live,
//! and lease keep-alives.
//!
//! In: such a request from a client; Raft's confirmed and failed read
//! contexts; the applied index as it grows. Out: the answer, sent once the
//! state machine has applied up to the confirmed read index, or
//! `NotLeader` when Raft could not confirm.
//!
//! Keep-alives take this path too, although they read nothing: the
//! confirmation proves that no newer leader had been elected when the
//! request arrived, so any later leader starts its lease clock after the
//! holder sent it (see `leases.rs`); and waiting for the read index applies
//! every expiry committed before, so a lease already revoked is not renewed.

use crate::ha_proxy::{ProxyRead, refuse_batch};
use crate::msg::{KeepAliveReply, ReplyError, StationMsg};
use crate::replica::Replica;
use crate::running::{Running, reply};
use haven_raft::{ReadError, ReadState, StateMachine as _};
use haven_runtime::{CtxFor, NodeId};
use haven_store::{LeaseId, LeaseTimeToLiveRequest, RangeRequest, Response};

#[derive(Debug)]
pub(crate) enum ReadOp {
    Range(RangeRequest),
    TimeToLive(LeaseTimeToLiveRequest),
    KeepAlive(LeaseId),
    /// A proxy's batch of keep-alives (`ha_proxy.rs`); `seq` is the batch's.
    ProxyBatch(Box<ProxyRead>),
}

#[derive(Debug)]
pub(crate) struct PendingRead {
    pub(crate) to: NodeId,
    pub(crate) client: u64,
    pub(crate) seq: u64,
    pub(crate) op: ReadOp,
}

impl PendingRead {
    /// Answers with `error`, in the reply type the request expects.
    pub(crate) fn refuse(&self, ctx: &mut impl CtxFor<Replica>, error: ReplyError) {
        match self.op {
            ReadOp::KeepAlive(lease) => {
                let answer = KeepAliveReply { client: self.client, seq: self.seq, lease, result: Err(error) };
                ctx.send(self.to, StationMsg::KeepAliveReply(answer));
            }
            ReadOp::Range(_) | ReadOp::TimeToLive(_) => reply(ctx, self.to, (self.client, self.seq), Err(error)),
            ReadOp::ProxyBatch(_) => refuse_batch(ctx, self.to, self.seq, error),
        }
    }
}

impl Running {
    pub(crate) fn ask_read(&mut self, ctx: &mut impl CtxFor<Replica>, read: PendingRead) {
        let read_ctx = self.read_ctx_next;
        match self.raft.read_index(read_ctx) {
            Ok(()) => {
                self.read_ctx_next += 1;
                self.reads_asked.insert(read_ctx, read);
            }
            Err(ReadError::NotLeader { leader_hint }) => read.refuse(ctx, ReplyError::NotLeader { leader_hint }),
            Err(ReadError::Backpressure { .. }) => read.refuse(ctx, ReplyError::Busy),
        }
    }

    /// Serves every confirmed read whose index the state machine reached.
    pub(crate) fn serve_reads(&mut self, ctx: &mut impl CtxFor<Replica>) {
        let applied = self.sm.applied_index();
        while let Some(entry) = self.reads_confirmed.first_entry() {
            if entry.key().0 > applied {
                break;
            }
            let read = entry.remove();
            self.serve(ctx, read);
        }
    }

    fn serve(&mut self, ctx: &mut impl CtxFor<Replica>, read: PendingRead) {
        let session = (read.client, read.seq);
        match &read.op {
            ReadOp::Range(range) => {
                let result = self.sm.store().range(range).map(Response::Range).map_err(ReplyError::Store);
                reply(ctx, read.to, session, result);
            }
            ReadOp::TimeToLive(request) => {
                let result = self.time_to_live(ctx.now(), request).map(Response::LeaseTimeToLive);
                reply(ctx, read.to, session, result);
            }
            ReadOp::KeepAlive(lease) => {
                let result = self.keep_alive(ctx.now(), *lease);
                let answer = KeepAliveReply { client: read.client, seq: read.seq, lease: *lease, result };
                ctx.send(read.to, StationMsg::KeepAliveReply(answer));
            }
            ReadOp::ProxyBatch(batch) => self.serve_proxy_batch(ctx, read.to, read.seq, batch),
        }
    }

    pub(crate) fn on_reads(&mut self, ctx: &mut impl CtxFor<Replica>, confirmed: Vec<ReadState>, failed: Vec<u64>) {
        for ReadState { ctx: read_ctx, index } in confirmed {
            let read = self.reads_asked.remove(&read_ctx).expect("raft confirms only reads it was asked");
            self.reads_confirmed.insert((index, read_ctx), read);
        }
        for read_ctx in failed {
            let read = self.reads_asked.remove(&read_ctx).expect("raft fails only reads it was asked");
            read.refuse(ctx, ReplyError::NotLeader { leader_hint: self.raft.leader() });
        }
        self.serve_reads(ctx);
    }
}
