//! Planted consensus bugs that the `kv-linearizable` sweep must catch. Each
//! broken variant lives only here, as a wrapper around the real replica.

use haven_raft::{Raft, Role};
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_scenarios::kv::linearizable;
use haven_scenarios::kv::node::StationReplica;
use haven_sim::RunReport;
use haven_station::{
    ClientReply, Replica, ReplicaConfig, ReplicaEvent, ReplicaIo, ReplicaTimer, ReplyError, StateMachine, StationMsg,
};
use haven_store::{Request, Response};

/// Planted bug (b): a replica that believes it is leader answers reads from
/// its own state, without ReadIndex or a lease. A deposed leader that has
/// not noticed yet serves stale data.
#[derive(Debug)]
struct LeaderLocalReads(Replica);

impl StationReplica for LeaderLocalReads {
    fn raft(&self) -> Option<&Raft> {
        self.0.raft()
    }

    fn state_machine(&self) -> Option<&StateMachine> {
        self.0.state_machine()
    }
}

impl Component for LeaderLocalReads {
    type Msg = StationMsg;
    type Timer = ReplicaTimer;
    type Io = ReplicaIo;
    type Out = ReplicaEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.0.on_start(ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        let believes_leader = self.0.raft().is_some_and(|r| r.role() == Role::Leader);
        if let (true, StationMsg::Request(request)) = (believes_leader, &msg)
            && let Request::Range(range) = &request.request
        {
            let store = self.0.state_machine().expect("a leader is running").store();
            let result = store.range(range).map(Response::Range).map_err(ReplyError::Store);
            ctx.send(from, StationMsg::Reply(ClientReply { client: request.client, seq: request.seq, result }));
            return;
        }
        self.0.on_message(ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: ReplicaTimer) {
        self.0.on_timer(ctx, id, timer);
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: ReplicaIo, result: IoResult) {
        self.0.on_io(ctx, id, tag, result);
    }
}

fn first_failure(seeds_max: u64, run: impl Fn(u64) -> RunReport) -> Option<RunReport> {
    (0..seeds_max).map(run).find(|report| !report.is_ok())
}

#[test]
fn reads_from_the_leaders_state_without_read_index_are_caught() {
    let failure = first_failure(10_000, |seed| {
        linearizable::run_with(seed, None, |config: ReplicaConfig| LeaderLocalReads(Replica::new(config)))
    })
    .expect("stale reads of a deposed leader went unnoticed for 10,000 seeds");
    println!("caught: {}", failure.line());
    assert!(failure.line().contains("linearizability"), "{}", failure.line());
}
