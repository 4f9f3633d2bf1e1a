//! One station replica as a component: Raft core + WAL + state machine.
//!
//! In: start (open the WAL, recover, restore Raft), Raft messages, client
//! requests, lease keep-alives and watch requests, the Raft deadline timer,
//! the lease tick, WAL timers and disk completions.
//! Out: Raft messages, client replies and watch events, WAL disk requests,
//! and [`ReplicaEvent`]s.
//!
//! The Raft core enforces the durability order itself (it releases a
//! message only once what it depends on was reported persisted), so this
//! glue only has to: write each persist request to the WAL (dropping the
//! log suffix first when the request rewrites it), report it persisted when
//! the WAL's group commit covering it is durable, send every released
//! message, apply committed entries in order, and keep one timer at Raft's
//! next deadline. Range reads, lease time-to-live and keep-alives take no log
//! entry: the leader asks Raft for a ReadIndex (thesis §6.4) and answers
//! once its applied index reaches the confirmed read index; serializable
//! reads are answered at once from any replica's applied state. Lease expiries
//! are the leader's own proposals (`Command::ExpireLease`). Watches are
//! served by any replica from its own applied state, polled after every
//! step (`watches.rs`). A WAL failure halts the replica: it reports `Fatal`
//! and answers nothing until restarted, which recovers from disk.

use crate::backups::Backups;
use crate::config::ReplicaConfig;
use crate::ha_steering::HaSteering;
use crate::ha_steering::ha_reply;
use crate::leases::Leases;
use crate::member_steering::{MemberSteering, member_reply};
use crate::members::MemberRecord;
use crate::msg::{
    ClientRequest, HaRequest, KeepAliveRequest, MemberRequest, Relayed, ReplyError, StationMsg, WatchCreate,
};
use crate::persist::PersistTracker;
use crate::reads::{PendingRead, ReadOp};
use crate::relays::Relays;
use crate::running::{Running, reply};
use crate::snapshot_file;
use crate::snapshots::Snapshots;
use crate::state_machine::StateMachine;
use crate::watches::{self, Watches};
use bytes::Bytes;
use haven_raft::{DurableState, Entry, HardState, LogPosition, Raft, Role, Setup, SnapshotMeta};
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_store::{LeaseId, Lessor, Request, Response};
use haven_wal::{NoMsg, Recovered, Ticket, Wal, WalEvent, WalIo, WalTimer};
use rand::SeedableRng;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaTimer {
    /// Raft's next deadline (election timeout, heartbeat, check-quorum).
    Raft,
    /// The leader's periodic look for expired leases.
    Lease,
    Wal(WalTimer),
    /// Write the next keys of the snapshot in progress.
    Snapshot,
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
    /// A batch of committed entries was applied; Raft's commit index is now
    /// `index`, the store is at `revision`, holds about `store_bytes` and
    /// `leases` leases (for the daemon's status, response headers and metrics).
    Committed {
        index: u64,
        revision: u64,
        store_bytes: u64,
        leases: u64,
    },
    /// Entry `index` revoked `lease` and deleted its keys: by the leader's
    /// expiry when `expired`, else at a client's request.
    LeaseRevoked {
        lease: LeaseId,
        index: u64,
        expired: bool,
    },
    /// The member table or the configuration in force changed (reported
    /// only once the table is seeded): every member with its addresses, and
    /// who votes and who learns now.
    Members {
        cluster_id: u64,
        members: Vec<MemberRecord>,
        /// Above every member id the table ever gave out; an id below it
        /// that `members` lacks is gone for good (ids are never reused).
        next_id: u64,
        voters: Vec<NodeId>,
        learners: Vec<NodeId>,
    },
    /// The coordinator's step for a single event, with a single overdue
    /// record, is `bytes` long encoded, more than a log entry holds
    /// (`bytes_max`): the coordinator cannot decide anything until the
    /// operator changes what makes it so large. Reported once per stall.
    HaStepTooLarge {
        bytes: u64,
        bytes_max: u64,
    },
    /// An applied step issued commands to `nodes` (ascending). Reported by
    /// every replica, and only where commands are fetched rather than
    /// pushed (`ReplicaConfig::agent_commands_pushed` off): a station
    /// answers the agents waiting for theirs at once.
    CommandsIssued {
        nodes: Vec<NodeId>,
    },
    /// The replica stopped; it recovers only by restarting.
    Fatal {
        reason: String,
    },
    /// The leader asks for `node` (at `address`, under store lease
    /// `session`) to be fenced by the operator's fence command; the answer
    /// comes back as `StationMsg::FenceResult`. `attempt` counts from 1.
    FenceRequested {
        node: NodeId,
        address: String,
        session: i64,
        attempt: u32,
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
    /// Within a batch of messages (`on_messages`): `drive` only notes that
    /// it is due, and runs once before the next Raft message or at the end.
    deferring: bool,
    drive_due: bool,
}

impl Replica {
    pub fn new(config: ReplicaConfig) -> Replica {
        config.validate().unwrap_or_else(|e| panic!("replica configuration: {e}"));
        Replica { config, phase: Phase::Created, deferring: false, drive_due: false }
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

    /// Position of the newest complete snapshot this replica holds (taken,
    /// installed or read back at start), the one a lagging follower is sent.
    pub fn snapshot_latest(&self) -> Option<LogPosition> {
        match &self.phase {
            Phase::Running(r) => r.snapshots.latest_position(),
            _ => None,
        }
    }

    /// The lessor: every lease the applied state holds, with deadlines
    /// while this replica leads.
    pub fn lessor(&self) -> Option<&Lessor> {
        match &self.phase {
            Phase::Running(r) => Some(r.leases.lessor()),
            _ => None,
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.phase, Phase::Failed)
    }

    /// Runs the `drive` a batch of messages deferred, if one is due.
    fn drive_deferred(&mut self, ctx: &mut impl CtxFor<Self>) {
        if self.drive_due
            && let Err(reason) = self.drive(ctx)
        {
            self.fail(ctx, reason);
        }
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
                WalEvent::SnapshotSaved { meta } => self.with_running(ctx, |r, ctx| r.on_snapshot_saved(ctx, meta)),
                WalEvent::SnapshotFailed { error, .. } => {
                    self.with_running(ctx, |r, _| r.on_snapshot_failed(error.to_string()))
                }
                WalEvent::Compacted { .. } | WalEvent::CompactFailed { .. } => Ok(()),
            };
            if let Err(reason) = result {
                return self.fail(ctx, reason);
            }
        }
    }

    fn recovered(&mut self, ctx: &mut impl CtxFor<Self>, recovered: Recovered) -> Result<(), String> {
        let Phase::Opening(_) = &self.phase else { return Err("WAL opened twice".into()) };
        let Phase::Opening(wal) = std::mem::replace(&mut self.phase, Phase::Created) else { unreachable!() };
        let hard_state = match &recovered.hard_state {
            Some(bytes) => HardState::from_bytes(bytes).map_err(|e| format!("hard state does not decode: {e}"))?,
            None => HardState::default(),
        };
        let (snapshot, sm, latest) = match recovered.snapshot {
            Some(snap) => {
                let (meta, sm) = snapshot_file::decode(&snap.data, self.config.store.clone())
                    .map_err(|e| format!("the snapshot in the WAL: {e}"))?;
                if (meta.last.index, meta.last.term) != (snap.meta.index, snap.meta.term) {
                    return Err(format!("snapshot file holds {:?}, the WAL says {:?}", meta.last, snap.meta));
                }
                let latest = (meta.clone(), Bytes::from(snap.data));
                (meta, sm, Some(latest))
            }
            None => {
                let sm = StateMachine::new(self.config.store.clone(), self.config.sessions_max);
                (SnapshotMeta::default(), sm, None)
            }
        };
        let entries: Vec<Entry> = recovered
            .entries
            .into_iter()
            .filter(|e| e.index > snapshot.last.index)
            .map(|e| Entry { index: e.index, term: e.term, payload: e.payload })
            .collect();
        ctx.output(ReplicaEvent::Opened { entries: entries.len() as u64, torn_tail: recovered.torn_tail.is_some() });
        let durable = DurableState { hard_state, snapshot, entries };
        let setup = Setup { id: ctx.node(), voters: self.config.voters.clone(), config: self.config.raft.clone() };
        let rng = rand_chacha::ChaCha8Rng::from_rng(ctx.rng());
        let raft = Raft::restore(setup, durable, rng, ctx.now()).map_err(|e| format!("raft restore: {e}"))?;
        let leases = Leases::new(&self.config, sm.store());
        let running = Running {
            raft,
            wal,
            sm,
            persists: PersistTracker::default(),
            waiters: BTreeMap::new(),
            timer: None,
            role: Role::Follower,
            reads_asked: BTreeMap::new(),
            reads_confirmed: BTreeMap::new(),
            read_ctx_next: 1,
            // Kept to send to a lagging follower: without it, a restarted
            // leader asked for a snapshot wrote a fresh one in one turn.
            snapshots: Snapshots::recovered(latest),
            leases,
            snapshot_entries: staggered(self.config.snapshot_entries, ctx.node()),
            snapshot_keys_per_turn: self.config.snapshot_keys_per_turn,
            history_revisions_max: self.config.history_revisions_max,
            history_compaction_at: None,
            deferred: Vec::new(),
            watches: Watches::new(self.config.watches_max),
            members: MemberSteering::new(self.config.members.clone()),
            ha: HaSteering::new(
                self.config.coordinator.clone(),
                self.config.ha_tick_interval,
                self.config.agent_commands_pushed,
                self.config.fence.clone(),
            ),
            relays: Relays::new(self.config.waiters_max),
            backups: Backups::default(),
        };
        self.phase = Phase::Running(Box::new(running));
        self.drive(ctx)
    }

    /// Runs `f` on the running state, then carries out what Raft has ready.
    fn with_running<C: CtxFor<Self>>(
        &mut self,
        ctx: &mut C,
        f: impl FnOnce(&mut Running, &mut C) -> Result<(), String>,
    ) -> Result<(), String> {
        let Phase::Running(r) = &mut self.phase else { return Err("snapshot event before open".into()) };
        f(r, ctx)?;
        self.drive(ctx)
    }

    fn durable(&mut self, ctx: &mut impl CtxFor<Self>, through: Ticket) -> Result<(), String> {
        let Phase::Running(r) = &mut self.phase else { return Err("durable before open".into()) };
        r.persists.durable(through);
        let now = ctx.now();
        for id in r.persists.take_durable() {
            r.raft.on_persisted(now, id).map_err(|e| format!("raft refused persist {id:?}: {e}"))?;
        }
        r.finish_install(ctx)?;
        self.drive(ctx)
    }

    /// Carries out everything Raft has ready, until it has nothing more.
    fn drive(&mut self, ctx: &mut impl CtxFor<Self>) -> Result<(), String> {
        if self.deferring {
            self.drive_due = true;
            return Ok(());
        }
        self.drive_due = false;
        let Phase::Running(r) = &mut self.phase else { return Ok(()) };
        loop {
            let ready = r.raft.take_ready();
            if !ready.is_empty() {
                r.handle(ctx, ready)?;
            } else if !r.steer_membership() && !r.steer_ha(ctx) {
                break;
            }
        }
        r.serve_backups(ctx)?;
        r.steer_fence(ctx);
        r.report_members(ctx);
        r.retarget_relays(ctx);
        for (to, events) in r.watches.poll(r.sm.store()) {
            ctx.send(to, StationMsg::WatchEvents(events));
        }
        r.arm_timer(ctx);
        let deferred = std::mem::take(&mut r.deferred);
        if !deferred.is_empty() {
            self.on_wal_events(ctx, deferred);
        }
        Ok(())
    }

    fn on_request(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, request: ClientRequest) {
        let ClientRequest { client, seq, request } = request;
        let op = match request {
            Request::Range(range) => ReadOp::Range(range),
            Request::LeaseTimeToLive(question) => ReadOp::TimeToLive(question),
            other => return self.on_command(ctx, from, (client, seq), other),
        };
        self.on_read(ctx, PendingRead { to: from, client, seq, op });
    }

    /// A request to pass to the leader, or to serve here if there is none other.
    fn on_relay(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, relayed: Relayed) {
        let relayed = match &mut self.phase {
            Phase::Running(r) => match r.relay(ctx, from, relayed) {
                Some(unrelayed) => unrelayed,
                None => return,
            },
            _ => relayed,
        };
        match relayed {
            Relayed::Request(request) => self.on_request(ctx, from, request),
            Relayed::KeepAlive(request) => self.on_keep_alive(ctx, from, request),
        }
    }

    fn on_keep_alive(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, request: KeepAliveRequest) {
        let KeepAliveRequest { client, seq, lease } = request;
        self.on_read(ctx, PendingRead { to: from, client, seq, op: ReadOp::KeepAlive(lease) });
    }

    /// Opens a watch on this replica's applied state and sends what it has already.
    fn on_watch(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, create: WatchCreate) {
        let Phase::Running(r) = &mut self.phase else {
            return watches::refuse(ctx, from, &create, ReplyError::Busy);
        };
        if let Err(error) = r.watches.open(r.sm.store(), from, &create) {
            return watches::refuse(ctx, from, &create, error);
        }
        if let Err(reason) = self.drive(ctx) {
            self.fail(ctx, reason);
        }
    }

    /// A read served at once from the applied state, whoever leads.
    fn on_serializable_read(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, request: ClientRequest) {
        let session = (request.client, request.seq);
        let Phase::Running(r) = &self.phase else {
            return reply(ctx, from, session, Err(ReplyError::Busy));
        };
        let store = r.sm.store();
        let result = match &request.request {
            Request::Range(range) => store.range(range).map(Response::Range).map_err(ReplyError::Store),
            Request::LeaseLeases => Ok(Response::LeaseLeases(store.lease_leases())),
            _ => return self.on_request(ctx, from, request),
        };
        reply(ctx, from, session, result);
    }

    /// A request answered without a log entry, once Raft confirms a read index.
    fn on_read(&mut self, ctx: &mut impl CtxFor<Self>, read: PendingRead) {
        let waiters_max = self.config.waiters_max;
        let Phase::Running(r) = &mut self.phase else {
            return read.refuse(ctx, ReplyError::NotLeader { leader_hint: None });
        };
        if r.waiters.len() + r.reads_asked.len() + r.reads_confirmed.len() >= waiters_max {
            return read.refuse(ctx, ReplyError::Busy);
        }
        r.ask_read(ctx, read);
        if let Err(reason) = self.drive(ctx) {
            self.fail(ctx, reason);
        }
    }

    /// A member table change: proposed to Raft like a client command.
    fn on_member(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, request: MemberRequest) {
        let waiters_max = self.config.waiters_max;
        let session = (request.client, request.seq);
        let Phase::Running(r) = &mut self.phase else {
            return member_reply(ctx, from, session, Err(ReplyError::NotLeader { leader_hint: None }));
        };
        if r.waiters.len() + r.reads_asked.len() + r.reads_confirmed.len() >= waiters_max {
            return member_reply(ctx, from, session, Err(ReplyError::Busy));
        }
        r.propose_member(ctx, from, request);
        if let Err(reason) = self.drive(ctx) {
            self.fail(ctx, reason);
        }
    }

    /// An operator's report: proposed like a command, answered once queued.
    fn on_ha_request(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, request: HaRequest) {
        let waiters_max = self.config.waiters_max;
        let session = (request.client, request.seq);
        let Phase::Running(r) = &mut self.phase else {
            return ha_reply(ctx, from, session, Err(ReplyError::NotLeader { leader_hint: None }));
        };
        if r.waiters.len() + r.reads_asked.len() + r.reads_confirmed.len() >= waiters_max {
            return ha_reply(ctx, from, session, Err(ReplyError::Busy));
        }
        r.propose_ha_request(ctx, from, request);
        if let Err(reason) = self.drive(ctx) {
            self.fail(ctx, reason);
        }
    }

    /// A request that changes the state: proposed to Raft as a client command.
    fn on_command(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, session: (u64, u64), request: Request) {
        let waiters_max = self.config.waiters_max;
        let Phase::Running(r) = &mut self.phase else {
            return reply(ctx, from, session, Err(ReplyError::NotLeader { leader_hint: None }));
        };
        if r.waiters.len() + r.reads_asked.len() + r.reads_confirmed.len() >= waiters_max {
            return reply(ctx, from, session, Err(ReplyError::Busy));
        }
        if let (Request::LeaseGrant(_), Err(refused)) = (&request, r.may_grant()) {
            return reply(ctx, from, session, Err(refused));
        }
        r.propose(ctx, from, session.0, session.1, request);
        if let Err(reason) = self.drive(ctx) {
            self.fail(ctx, reason);
        }
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

    /// Proposals and reads that arrived together share one `drive`: one
    /// log write and one append per follower for all of them, instead of
    /// one each. Raft messages still get a `drive` of their own, after the
    /// deferred one: Raft's protocol takes its output after each of them,
    /// as the simulator checks it. A proposal's handler needs nothing that
    /// `drive` does before the next message is handled: Raft holds the
    /// proposals and the pending read round until `take_ready`.
    fn on_messages(&mut self, ctx: &mut impl CtxFor<Self>, batch: Vec<(NodeId, StationMsg)>) {
        for (from, msg) in batch {
            let raft = matches!(msg, StationMsg::Raft(_));
            if raft {
                self.drive_deferred(ctx);
            }
            self.deferring = !raft;
            self.on_message(ctx, from, msg);
            self.deferring = false;
        }
        self.drive_deferred(ctx);
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
            StationMsg::ChangeMembership { voters, learners } => {
                let Phase::Running(r) = &mut self.phase else { return };
                // Best effort, like a transfer: refusals (not leader, a change
                // in progress, a learner not caught up) are retried by the operator.
                let _ = r.raft.propose_membership(voters, learners);
                if let Err(reason) = self.drive(ctx) {
                    self.fail(ctx, reason);
                }
            }
            StationMsg::KeepAlive(request) => self.on_keep_alive(ctx, from, request),
            StationMsg::Relay(relayed) => self.on_relay(ctx, from, relayed),
            msg @ (StationMsg::Reply(_) | StationMsg::KeepAliveReply(_)) => {
                let Phase::Running(r) = &mut self.phase else { return };
                if r.relay_reply(ctx, from, msg)
                    && let Err(reason) = self.drive(ctx)
                {
                    self.fail(ctx, reason);
                }
            }
            StationMsg::SerializableRead(request) => self.on_serializable_read(ctx, from, request),
            StationMsg::Member(request) => self.on_member(ctx, from, request),
            StationMsg::HaReport(report) => {
                let Phase::Running(r) = &mut self.phase else { return };
                r.propose_report(report);
                if let Err(reason) = self.drive(ctx) {
                    self.fail(ctx, reason);
                }
            }
            StationMsg::HaRequest(request) => self.on_ha_request(ctx, from, request),
            StationMsg::BackupQuery { client, seq } => {
                if let Phase::Running(r) = &mut self.phase {
                    r.on_backup_query(ctx, from, client, seq);
                }
                if let Err(reason) = self.drive(ctx) {
                    self.fail(ctx, reason);
                }
            }
            StationMsg::HaQuery { client, seq } => {
                if let Phase::Running(r) = &self.phase {
                    r.ha_view(ctx, from, client, seq);
                }
            }
            StationMsg::CommandsQuery { client, seq, of } => {
                if let Phase::Running(r) = &self.phase {
                    r.commands_of(ctx, from, (client, seq), of);
                }
            }
            StationMsg::ProxyPlaceQuery { client, seq, node } => {
                if let Phase::Running(r) = &self.phase {
                    let place = r.proxy_place(node);
                    ctx.send(from, StationMsg::ProxyPlace { client, seq, place });
                }
            }
            msg @ (StationMsg::ProxyBatch(_) | StationMsg::ProxyQuery { .. }) => {
                let Phase::Running(r) = &mut self.phase else { return };
                r.on_proxy_msg(ctx, from, msg, self.config.waiters_max);
                if let Err(reason) = self.drive(ctx) {
                    self.fail(ctx, reason);
                }
            }
            StationMsg::FenceResult { node, session, fenced } => {
                let Phase::Running(r) = &mut self.phase else { return };
                r.fence_result(ctx.now(), node, session, fenced);
                if let Err(reason) = self.drive(ctx) {
                    self.fail(ctx, reason);
                }
            }
            StationMsg::Watch(create) => self.on_watch(ctx, from, create),
            StationMsg::CancelWatch { client, watch } => {
                let Phase::Running(r) = &mut self.phase else { return };
                r.watches.cancel(from, client, watch);
            }
            // Replicas send no other requests, so they get no other answers.
            StationMsg::WatchEvents(_)
            | StationMsg::MemberReply(_)
            | StationMsg::Agent(_)
            | StationMsg::HaReply(_)
            | StationMsg::HaView(_)
            | StationMsg::Commands { .. }
            | StationMsg::ProxyPlace { .. }
            | StationMsg::Backup { .. }
            | StationMsg::ProxyAnswer(_)
            | StationMsg::ProxyCommands(_)
            | StationMsg::ProxyAssigned { .. } => {}
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
            (Phase::Running(r), ReplicaTimer::Lease) => {
                r.on_lease_tick(ctx);
                if let Err(reason) = self.drive(ctx) {
                    self.fail(ctx, reason);
                }
                return;
            }
            (Phase::Running(r), ReplicaTimer::Snapshot) => {
                let written = r.on_snapshot_timer(ctx);
                if let Err(reason) = written.and_then(|()| self.drive(ctx)) {
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

/// Applied entries between this station's snapshots: `every`, plus an
/// eighth of it for each step of the station's id modulo 4. Taking a
/// snapshot stalls a replica for as long as the encoding takes (tens of
/// milliseconds per 100,000 keys); stations that all applied the same
/// entries would otherwise stall at the same index, the leader among them,
/// and every write in flight would wait. Staggered, at most one of three
/// stalls at a time, and a stalled follower costs no commit.
fn staggered(every: u64, node: NodeId) -> u64 {
    every.saturating_add(every / 8 * (node.0 % 4))
}
