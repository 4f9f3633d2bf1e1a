//! What travels between replicas, and between clients and replicas.
//!
//! In/out: one message enum for every node of a station cluster, so a
//! simulated cluster of replicas and clients shares one message type.
//!
//! Lease keep-alives have their own request and reply: they never reach the
//! state machine (only the leader's lessor), so they are not store requests,
//! carry no session, and their `seq` only pairs a reply with its request.

use crate::members::{MemberError, MemberOp, MemberRecord};
use bytes::Bytes;
use haven_ha::{AgentCommand, BatchAnswer, ProxyBatch, StateGraph};
use haven_raft::Message;
use haven_runtime::NodeId;
use haven_store::{Event, LeaseId, Request, Response, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A client's request. `seq` grows by one per new command of this client;
/// a retry of the same command reuses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    pub client: u64,
    pub seq: u64,
    pub request: Request,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyError {
    /// Ask `leader_hint` (if known) instead.
    NotLeader { leader_hint: Option<NodeId> },
    /// The request was applied and refused by the store (etcd's error).
    Store(StoreError),
    /// A newer command of this client was applied already: this one is a
    /// stale retry whose answer is no longer kept.
    SessionExpired,
    /// The replica cannot take more work now; retry later.
    Busy,
    /// A lease grant refused: the store already holds `leases_max` leases.
    TooManyLeases { leases_max: usize },
    /// A member table change was applied and refused.
    Member(MemberError),
    /// The replica took this command — proposed it as leader, or relayed
    /// it to its leader — and lost that leadership before an answer. The
    /// command may still be applied: retry it with the same session (which
    /// applies it at most once), and never report it as not carried out.
    /// `NotLeader`, by contrast, means this replica did not take it.
    LeaderLost { leader_hint: Option<NodeId> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientReply {
    /// The session this answers (one node may run many sessions).
    pub client: u64,
    pub seq: u64,
    pub result: Result<Response, ReplyError>,
    /// Set by a leader answering an applied command: a follower that
    /// relayed it commits up to here at once (`Raft::learn_commit`) instead
    /// of after its own fsync and the next append.
    pub commit: Option<CommitHint>,
}

/// A leader's commit index in its term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitHint {
    pub term: u64,
    pub index: u64,
}

/// etcd's LeaseKeepAlive: renew `lease` for its full TTL from now. Only the
/// leader answers, once a heartbeat round confirmed it still leads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepAliveRequest {
    pub client: u64,
    /// Pairs the reply with this request (a new one for every attempt).
    pub seq: u64,
    pub lease: LeaseId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepAliveReply {
    pub client: u64,
    pub seq: u64,
    pub lease: LeaseId,
    /// The lease's TTL in seconds from the renewal, or why not: `NotLeader`,
    /// or `Store(LeaseNotFound)` for a lease unknown or already expiring.
    pub result: Result<i64, ReplyError>,
}

/// What a replica may relay to its leader: the requests clients send most.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relayed {
    Request(ClientRequest),
    KeepAlive(KeepAliveRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StationMsg {
    Raft(Message),
    Request(ClientRequest),
    Reply(ClientReply),
    /// An operator's request to hand leadership to `to` (etcd's move-leader).
    /// Ignored by a replica that is not the leader; best effort otherwise.
    TransferLeader {
        to: NodeId,
    },
    /// An operator's request to move the group to this configuration
    /// (etcd's member add/remove/promote, as one target). Ignored by a
    /// replica that is not the leader; the leader proposes it through joint
    /// consensus when possible (one change at a time, learners promoted only
    /// once caught up) and otherwise leaves things as they are: the
    /// operator retries.
    ChangeMembership {
        voters: Vec<NodeId>,
        learners: Vec<NodeId>,
    },
    KeepAlive(KeepAliveRequest),
    KeepAliveReply(KeepAliveReply),
    /// A client's request for the receiving replica to pass to the leader
    /// over the replica links; the answer comes back the same way, as the
    /// `Reply` or `KeepAliveReply` the request asks for. A replica that
    /// leads, or knows no leader, serves it as if sent directly.
    Relay(Relayed),
    /// Open a watch on the receiving replica's applied state.
    Watch(WatchCreate),
    /// Close watch `watch` of session `client` (unknown ones are ignored).
    CancelWatch {
        client: u64,
        watch: u64,
    },
    WatchEvents(WatchEvents),
    /// etcd's `serializable: true` range: answered at once from the
    /// receiving replica's applied state, leader or not, without ReadIndex;
    /// it may be stale. Only a `Range` or `LeaseLeases` is served this way;
    /// any other request takes the ordinary path, as `Request` would.
    SerializableRead(ClientRequest),
    /// An operator's change to the member table (etcd's member add, remove
    /// and promote), applied once per (client, seq) like a client command.
    Member(MemberRequest),
    MemberReply(MemberReply),
    /// An agent's (or the operator's) report for the coordinator, to the
    /// leader; not answered: the sender repeats it until it sees its effect.
    HaReport(HaReport),
    /// The coordinator's command to the agent it names, sent by the leader
    /// once the decision behind it is committed.
    Agent(AgentCommand),
    /// A report answered once it is queued (the operator's actions):
    /// `HaReply` with the event's id in the queue. At least once: a retry
    /// after a lost reply may queue it twice (operator actions are
    /// idempotent: the graph ends the same).
    HaRequest(HaRequest),
    HaReply(HaReply),
    /// Ask the receiving replica for its applied HA state (`HaView`).
    HaQuery {
        client: u64,
        seq: u64,
    },
    HaView(Box<HaView>),
    /// A proxy's batch of its agents' keep-alives and reports, for the
    /// leader: renewed as keep-alives would be, the reports queued in one
    /// entry, answered with one `ProxyAnswer`.
    ProxyBatch(ProxyBatch),
    ProxyAnswer(BatchAnswer),
    /// The commands of one applied step for the agents a proxy serves, sent
    /// to that proxy in one message.
    ProxyCommands(Vec<AgentCommand>),
    /// An agent that talks to the stations asks which proxy it should use.
    ProxyQuery {
        node: NodeId,
    },
    /// The proxy `node` should report through (`None`: the stations), as
    /// the answering replica's applied graph has it.
    ProxyAssigned {
        node: NodeId,
        proxy: Option<NodeId>,
    },
    /// The local client's result for a `ReplicaEvent::FenceRequested`:
    /// whether the fence command fenced `node` (exit 0). Counted only by
    /// the leader with that attempt in flight (`ha_fence.rs`).
    FenceResult {
        node: NodeId,
        session: i64,
        fenced: bool,
    },
    /// Ask the receiving replica for the commands its applied graph awaits
    /// from one node, or from every node a proxy serves: what a polling
    /// agent or proxy is handed, without a copy of the graph. Answered with
    /// `Commands`, [`COMMANDS_LEN_MAX`] at most (the rest on the next ask).
    CommandsQuery {
        client: u64,
        seq: u64,
        of: CommandsOf,
    },
    Commands {
        client: u64,
        seq: u64,
        commands: Vec<AgentCommand>,
    },
    /// Ask the receiving replica which live proxy its applied graph
    /// assigns `node`: an agent's question, answered from the graph (not a
    /// copy of it) with `ProxyPlace`.
    ProxyPlaceQuery {
        client: u64,
        seq: u64,
        node: NodeId,
    },
    /// An operator asks the leader for a backup (`backups.rs`); answered
    /// with `Backup`. Only ever asked of the local replica: the answer is
    /// the whole snapshot, far above a peer frame.
    BackupQuery {
        client: u64,
        seq: u64,
    },
    Backup {
        client: u64,
        seq: u64,
        result: Result<BackupImage, ReplyError>,
    },
    /// The live proxy (labelled a proxy) the graph assigns the node, with
    /// the URL it joined with (`PROXY_URL_LABEL`); `None`: the stations.
    ProxyPlace {
        client: u64,
        seq: u64,
        place: Option<(NodeId, Option<String>)>,
    },
}

/// A backup: the bytes of a replica snapshot (`snapshot_file`) and the log
/// position it covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupImage {
    pub index: u64,
    pub term: u64,
    pub data: Bytes,
}

/// Commands one answer to a `CommandsQuery` carries at most: a boot of
/// thousands of agents behind one proxy is handed out over a few polls.
pub const COMMANDS_LEN_MAX: usize = 4_096;

/// Whose commands a `CommandsQuery` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandsOf {
    Node(NodeId),
    /// Every node the graph assigns to this proxy.
    Proxy(NodeId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaRequest {
    pub client: u64,
    pub seq: u64,
    pub report: HaReport,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaReply {
    pub client: u64,
    pub seq: u64,
    /// The event's id in the queue, or why it was not queued.
    pub result: Result<u64, ReplyError>,
}

/// A replica's applied HA state: the graph (with its decision log) and how
/// far the coordinator is (`version`: steps applied; `queue_len`: events
/// waiting).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaView {
    pub client: u64,
    pub seq: u64,
    pub graph: StateGraph,
    pub queue_len: u64,
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HaReport {
    Event(haven_ha::Event),
    /// The sender joins as node `node`, kept alive by store lease `lease`
    /// (granted and kept alive by the sender like any lease).
    Join {
        node: NodeId,
        address: String,
        labels: BTreeMap<String, String>,
        lease: LeaseId,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRequest {
    pub client: u64,
    pub seq: u64,
    pub op: MemberOp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReply {
    pub client: u64,
    pub seq: u64,
    pub result: Result<MemberAnswer, ReplyError>,
}

/// A member table change that took effect: the member it concerned and the
/// whole table after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAnswer {
    pub member: Option<MemberRecord>,
    pub members: Vec<MemberRecord>,
}

/// etcd's WatchCreateRequest, served by whichever replica receives it from
/// its own applied state. The watch is volatile: a replica that restarts
/// forgets it, so a client that hears nothing for a while watches again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCreate {
    pub client: u64,
    /// Chosen by the client, unique within its session.
    pub watch: u64,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// First revision to report; 0 means "from the next write on".
    pub start_revision: u64,
    /// Each event also carries the key as it was just before (etcd's
    /// `prev_kv`), which costs a lookup per event, so only when asked.
    pub prev_kv: bool,
}

/// The next events of a watch, continuing exactly where the previous
/// message for it stopped; or why it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvents {
    pub client: u64,
    pub watch: u64,
    /// 1 for the first message of this watch, then one more per message:
    /// a gap means a lost message, a repeat a duplicated one.
    pub batch: u64,
    pub events: Vec<Event>,
    /// The history the watch needs is compacted away; the watch is closed.
    pub compacted: bool,
    /// With `compacted`: the store's compaction revision (etcd's
    /// `compact_revision`: watch again from there); 0 otherwise.
    pub compact_revision: u64,
    /// The replica refused to open the watch (`Busy`: too many watches, or
    /// not running yet); nothing follows.
    pub refused: Option<ReplyError>,
}
