//! One station replica as a component: Raft core + WAL + state machine.
//!
//! In: start (open the WAL, recover, restore Raft), Raft messages, client
//! requests, the Raft deadline timer, WAL timers and disk completions.
//! Out: Raft messages and client replies, WAL disk requests, and
//! [`ReplicaEvent`]s.
//!
//! The Raft core enforces the durability order itself (it releases a
//! message only once what it depends on was reported persisted), so this
//! glue only has to: write each persist request to the WAL (dropping the
//! log suffix first when the request rewrites it), report it persisted when
//! the WAL's group commit covering it is durable, send every released
//! message, apply committed entries in order, and keep one timer at Raft's
//! next deadline. Range reads take no log entry: the leader asks Raft for a
//! ReadIndex (thesis §6.4) and answers once its applied index reaches the
//! confirmed read index. A WAL failure halts the replica: it reports
//! `Fatal` and answers nothing until restarted, which recovers from disk.

use crate::command::Command;
use crate::config::ReplicaConfig;
use crate::msg::{ClientReply, ClientRequest, ReplyError, StationMsg};
use crate::persist::PersistTracker;
use crate::state_machine::{Applied, StateMachine};
use haven_raft::{
    DurableState, Entry, HardState, PersistRequest, ProposeError, Raft, ReadError, ReadState, Ready, Role, Setup,
    SnapshotMeta,
};
use haven_runtime::{Component, CtxFor, Instant, IoId, IoResult, NodeId, TimerId};
use haven_store::{RangeRequest, Request, Response};
use haven_wal::{NoMsg, Recovered, Ticket, Wal, WalEvent, WalIo, WalTimer};
use rand::SeedableRng;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaTimer {
    /// Raft's next deadline (election timeout, heartbeat, check-quorum).
    Raft,
    Wal(WalTimer),
}

#[derive(Debug)]
pub enum ReplicaIo {
    Wal(WalIo),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaEvent {
    /// Recovery done: `entries` log entries read back; a torn tail was cut.
    Opened {
        entries: u64,
        torn_tail: bool,
    },
    Role {
        role: Role,
        term: u64,
        leader: Option<NodeId>,
    },
    /// Entry `index` of `term` was applied while this replica was in term
    /// `current_term` (at least the term that committed it); `digest` is the
    /// crc32c of its payload, so checkers can compare what replicas applied.
    Applied {
        index: u64,
        term: u64,
        current_term: u64,
        digest: u32,
    },
    /// The replica stopped; it recovers only by restarting.
    Fatal {
        reason: String,
    },
}

impl From<NoMsg> for StationMsg {
    fn from(never: NoMsg) -> Self {
        match never {}
    }
}
impl From<WalTimer> for ReplicaTimer {
    fn from(t: WalTimer) -> Self {
        ReplicaTimer::Wal(t)
    }
}
impl From<WalIo> for ReplicaIo {
    fn from(io: WalIo) -> Self {
        ReplicaIo::Wal(io)
    }
}

#[derive(Debug)]
struct Running {
    raft: Raft,
    wal: Wal,
    sm: StateMachine,
    persists: PersistTracker,
    /// Client requests proposed here and not yet answered: (client, seq) → client node.
    waiters: BTreeMap<(u64, u64), NodeId>,
    timer: Option<(Instant, TimerId)>,
    role: Role,
    /// Reads waiting for Raft to confirm their read index, by context.
    reads_asked: BTreeMap<u64, PendingRead>,
    /// Confirmed reads waiting for the applied index to reach theirs.
    reads_confirmed: BTreeMap<(u64, u64), PendingRead>,
    read_ctx_next: u64,
}

#[derive(Debug)]
struct PendingRead {
    to: NodeId,
    client: u64,
    seq: u64,
    range: RangeRequest,
}

#[derive(Debug)]
enum Phase {
    Created,
    Opening(Wal),
    Running(Box<Running>),
    Failed,
}

#[derive(Debug)]
pub struct Replica {
    config: ReplicaConfig,
    phase: Phase,
}

impl Replica {
    pub fn new(config: ReplicaConfig) -> Replica {
        config.validate().unwrap_or_else(|e| panic!("replica configuration: {e}"));
        Replica { config, phase: Phase::Created }
    }

    pub fn raft(&self) -> Option<&Raft> {
        match &self.phase {
            Phase::Running(r) => Some(&r.raft),
            _ => None,
        }
    }

    pub fn state_machine(&self) -> Option<&StateMachine> {
        match &self.phase {
            Phase::Running(r) => Some(&r.sm),
            _ => None,
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.phase, Phase::Failed)
    }

    fn fail(&mut self, ctx: &mut impl CtxFor<Self>, reason: String) {
        ctx.output(ReplicaEvent::Fatal { reason });
        self.phase = Phase::Failed;
    }

    fn on_wal_events(&mut self, ctx: &mut impl CtxFor<Self>, events: Vec<WalEvent>) {
        for event in events {
            let result = match event {
                WalEvent::Opened(recovered) => self.recovered(ctx, *recovered),
                WalEvent::Durable { through, .. } => self.durable(ctx, through),
                WalEvent::Failed { error } => Err(format!("write-ahead log failed: {error}")),
                WalEvent::DiskError { .. } => Ok(()), // the WAL retries; Failed follows if it gives up
                other => Err(format!("unexpected WAL event {other:?}")),
            };
            if let Err(reason) = result {
                return self.fail(ctx, reason);
            }
        }
    }

    fn recovered(&mut self, ctx: &mut impl CtxFor<Self>, recovered: Recovered) -> Result<(), String> {
        let Phase::Opening(_) = &self.phase else { return Err("WAL opened twice".into()) };
        let Phase::Opening(wal) = std::mem::replace(&mut self.phase, Phase::Created) else { unreachable!() };
        if recovered.snapshot.is_some() {
            return Err("the WAL holds a snapshot, and snapshot restore is not built yet".into());
        }
        let hard_state = match &recovered.hard_state {
            Some(bytes) => HardState::from_bytes(bytes).map_err(|e| format!("hard state does not decode: {e}"))?,
            None => HardState::default(),
        };
        let entries: Vec<Entry> =
            recovered.entries.into_iter().map(|e| Entry { index: e.index, term: e.term, payload: e.payload }).collect();
        ctx.output(ReplicaEvent::Opened { entries: entries.len() as u64, torn_tail: recovered.torn_tail.is_some() });
        let durable = DurableState { hard_state, snapshot: SnapshotMeta::default(), entries };
        let setup = Setup { id: ctx.node(), voters: self.config.voters.clone(), config: self.config.raft.clone() };
        let rng = rand_chacha::ChaCha8Rng::from_rng(ctx.rng());
        let raft = Raft::restore(setup, durable, rng, ctx.now()).map_err(|e| format!("raft restore: {e}"))?;
        let running = Running {
            raft,
            wal,
            sm: StateMachine::new(self.config.store.clone(), self.config.sessions_max),
            persists: PersistTracker::default(),
            waiters: BTreeMap::new(),
            timer: None,
            role: Role::Follower,
            reads_asked: BTreeMap::new(),
            reads_confirmed: BTreeMap::new(),
            read_ctx_next: 1,
        };
        self.phase = Phase::Running(Box::new(running));
        self.drive(ctx)
    }

    fn durable(&mut self, ctx: &mut impl CtxFor<Self>, through: Ticket) -> Result<(), String> {
        let Phase::Running(r) = &mut self.phase else { return Err("durable before open".into()) };
        r.persists.durable(through);
        let now = ctx.now();
        for id in r.persists.take_durable() {
            r.raft.on_persisted(now, id).map_err(|e| format!("raft refused persist {id:?}: {e}"))?;
        }
        self.drive(ctx)
    }

    /// Carries out everything Raft has ready, until it has nothing more.
    fn drive(&mut self, ctx: &mut impl CtxFor<Self>) -> Result<(), String> {
        let Phase::Running(r) = &mut self.phase else { return Ok(()) };
        loop {
            let ready = r.raft.take_ready();
            if ready.is_empty() {
                break;
            }
            r.handle(ctx, ready)?;
        }
        r.arm_timer(ctx);
        Ok(())
    }

    fn on_request(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, request: ClientRequest) {
        let waiters_max = self.config.waiters_max;
        let Phase::Running(r) = &mut self.phase else {
            return reply(ctx, from, (request.client, request.seq), Err(ReplyError::NotLeader { leader_hint: None }));
        };
        if r.waiters.len() + r.reads_asked.len() + r.reads_confirmed.len() >= waiters_max {
            return reply(ctx, from, (request.client, request.seq), Err(ReplyError::Busy));
        }
        match request.request {
            Request::Range(range) => r.ask_read(ctx, from, (request.client, request.seq), range),
            other => r.propose(ctx, from, request.client, request.seq, other),
        }
        if let Err(reason) = self.drive(ctx) {
            self.fail(ctx, reason);
        }
    }
}

fn reply(ctx: &mut impl CtxFor<Replica>, to: NodeId, session: (u64, u64), result: Result<Response, ReplyError>) {
    let (client, seq) = session;
    ctx.send(to, StationMsg::Reply(ClientReply { client, seq, result }));
}

impl Running {
    fn propose(&mut self, ctx: &mut impl CtxFor<Replica>, from: NodeId, client: u64, seq: u64, request: Request) {
        let command = Command { client, seq, request }.encode();
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

    fn ask_read(
        &mut self,
        ctx: &mut impl CtxFor<Replica>,
        from: NodeId,
        (client, seq): (u64, u64),
        range: RangeRequest,
    ) {
        let read_ctx = self.read_ctx_next;
        match self.raft.read_index(read_ctx) {
            Ok(()) => {
                self.read_ctx_next += 1;
                self.reads_asked.insert(read_ctx, PendingRead { to: from, client, seq, range });
            }
            Err(ReadError::NotLeader { leader_hint }) => {
                reply(ctx, from, (client, seq), Err(ReplyError::NotLeader { leader_hint }))
            }
            Err(ReadError::Backpressure { .. }) => reply(ctx, from, (client, seq), Err(ReplyError::Busy)),
        }
    }

    /// Serves every confirmed read whose index the state machine reached.
    fn serve_reads(&mut self, ctx: &mut impl CtxFor<Replica>) {
        let applied = self.sm.applied_index();
        while let Some(entry) = self.reads_confirmed.first_entry() {
            if entry.key().0 > applied {
                break;
            }
            let read = entry.remove();
            let result = self.sm.store().range(&read.range).map(Response::Range).map_err(ReplyError::Store);
            reply(ctx, read.to, (read.client, read.seq), result);
        }
    }

    fn on_reads(&mut self, ctx: &mut impl CtxFor<Replica>, confirmed: Vec<ReadState>, failed: Vec<u64>) {
        for ReadState { ctx: read_ctx, index } in confirmed {
            let read = self.reads_asked.remove(&read_ctx).expect("raft confirms only reads it was asked");
            self.reads_confirmed.insert((index, read_ctx), read);
        }
        for read_ctx in failed {
            let read = self.reads_asked.remove(&read_ctx).expect("raft fails only reads it was asked");
            reply(
                ctx,
                read.to,
                (read.client, read.seq),
                Err(ReplyError::NotLeader { leader_hint: self.raft.leader() }),
            );
        }
        self.serve_reads(ctx);
    }

    fn handle(&mut self, ctx: &mut impl CtxFor<Replica>, ready: Ready) -> Result<(), String> {
        if let Some(soft) = ready.soft_state {
            ctx.output(ReplicaEvent::Role { role: soft.role, term: soft.term, leader: soft.leader });
            if self.role == Role::Leader && soft.role != Role::Leader {
                self.fail_waiters(ctx, soft.leader);
            }
            self.role = soft.role;
        }
        if let Some(persist) = ready.persist {
            self.persist(ctx, persist)?;
        }
        for envelope in ready.messages {
            ctx.send(envelope.to, StationMsg::Raft(envelope.msg));
        }
        for entry in &ready.committed {
            self.apply(ctx, entry);
        }
        if let Some(last) = ready.committed.last() {
            self.raft.applied(last.index).map_err(|e| format!("raft refused applied({}): {e}", last.index))?;
        }
        self.on_reads(ctx, ready.read_states, ready.reads_failed);
        Ok(())
    }

    /// Writes one persist request: drop the suffix it rewrites, append, store
    /// the hard state; it is durable once the WAL acknowledges the last ticket.
    fn persist(&mut self, ctx: &mut impl CtxFor<Replica>, persist: PersistRequest) -> Result<(), String> {
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
        assert!(events.is_empty(), "the WAL reports durability only from completions");
        self.persists.issued(persist.id, ticket);
        let now = ctx.now();
        for id in self.persists.take_durable() {
            self.raft.on_persisted(now, id).map_err(|e| format!("raft refused persist {id:?}: {e}"))?;
        }
        Ok(())
    }

    fn apply(&mut self, ctx: &mut impl CtxFor<Replica>, entry: &Entry) {
        let digest = crc32c::crc32c(&entry.payload);
        let current_term = self.raft.term();
        ctx.output(ReplicaEvent::Applied { index: entry.index, term: entry.term, current_term, digest });
        let Some(Applied { client, seq, outcome }) = self.sm.apply(entry) else { return };
        let Some(to) = self.waiters.remove(&(client, seq)) else { return };
        let result = match outcome {
            Some(Ok(response)) => Ok(response),
            Some(Err(error)) => Err(ReplyError::Store(error)),
            None => Err(ReplyError::SessionExpired),
        };
        reply(ctx, to, (client, seq), result);
    }

    /// A deposed leader answers its waiting clients so they retry elsewhere;
    /// their sessions make the retries safe whatever happens to the entries.
    fn fail_waiters(&mut self, ctx: &mut impl CtxFor<Replica>, leader_hint: Option<NodeId>) {
        for (session, to) in std::mem::take(&mut self.waiters) {
            reply(ctx, to, session, Err(ReplyError::NotLeader { leader_hint }));
        }
    }

    fn arm_timer(&mut self, ctx: &mut impl CtxFor<Replica>) {
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

impl Component for Replica {
    type Msg = StationMsg;
    type Timer = ReplicaTimer;
    type Io = ReplicaIo;
    type Out = ReplicaEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        let mut wal = match Wal::new(self.config.wal.clone()) {
            Ok(wal) => wal,
            Err(e) => return self.fail(ctx, format!("WAL configuration: {e}")),
        };
        let mut events = Vec::new();
        if let Err(e) = wal.open(&mut ctx.sub(&mut events)) {
            return self.fail(ctx, format!("opening the WAL: {e}"));
        }
        self.phase = Phase::Opening(wal);
        self.on_wal_events(ctx, events);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        match msg {
            StationMsg::Raft(msg) => {
                let Phase::Running(r) = &mut self.phase else { return };
                r.raft.step(ctx.now(), from, msg);
                if let Err(reason) = self.drive(ctx) {
                    self.fail(ctx, reason);
                }
            }
            StationMsg::Request(request) => self.on_request(ctx, from, request),
            StationMsg::TransferLeader { to } => {
                let Phase::Running(r) = &mut self.phase else { return };
                // Best effort: a refusal (not leader, transfer running) leaves things as they are.
                let _ = r.raft.transfer_leader(to);
                if let Err(reason) = self.drive(ctx) {
                    self.fail(ctx, reason);
                }
            }
            StationMsg::Reply(_) => {} // replicas do not send requests
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: ReplicaTimer) {
        let mut events = Vec::new();
        match (&mut self.phase, timer) {
            (Phase::Running(r), ReplicaTimer::Raft) => {
                r.timer = None;
                r.raft.tick(ctx.now());
                if let Err(reason) = self.drive(ctx) {
                    self.fail(ctx, reason);
                }
                return;
            }
            (Phase::Running(r), ReplicaTimer::Wal(t)) => r.wal.on_timer(&mut ctx.sub(&mut events), id, t),
            (Phase::Opening(wal), ReplicaTimer::Wal(t)) => wal.on_timer(&mut ctx.sub(&mut events), id, t),
            _ => return,
        }
        self.on_wal_events(ctx, events);
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: ReplicaIo, result: IoResult) {
        let ReplicaIo::Wal(tag) = tag;
        let mut events = Vec::new();
        match &mut self.phase {
            Phase::Running(r) => r.wal.on_io(&mut ctx.sub(&mut events), id, tag, result),
            Phase::Opening(wal) => wal.on_io(&mut ctx.sub(&mut events), id, tag, result),
            Phase::Created | Phase::Failed => return,
        }
        self.on_wal_events(ctx, events);
    }
}
