//! Planted consensus bugs that the `kv-linearizable` sweep must catch. Each
//! broken variant lives only here, as a wrapper around the real replica.

mod common;

use common::{Plant, Planted};
use haven_raft::Role;
use haven_runtime::{CtxFor, NodeId};
use haven_scenarios::kv::linearizable;
use haven_sim::RunReport;
use haven_station::{ClientReply, Replica, ReplicaConfig, ReplyError, StationMsg};
use haven_store::{Request, Response};

/// Planted bug (b): a replica that believes it is leader answers reads from
/// its own state, without ReadIndex or a lease. A deposed leader that has
/// not noticed yet serves stale data.
#[derive(Debug)]
struct LeaderLocalReads;

impl Plant for LeaderLocalReads {
    fn message(&mut self, replica: &Replica, ctx: &mut impl CtxFor<Replica>, from: NodeId, msg: &StationMsg) -> bool {
        let believes_leader = replica.raft().is_some_and(|r| r.role() == Role::Leader);
        let StationMsg::Request(request) = msg else { return false };
        let Request::Range(range) = &request.request else { return false };
        if !believes_leader {
            return false;
        }
        let store = replica.state_machine().expect("a leader is running").store();
        let result = store.range(range).map(Response::Range).map_err(ReplyError::Store);
        ctx.send(from, StationMsg::Reply(ClientReply { client: request.client, seq: request.seq, result }));
        true
    }
}

fn first_failure(seeds_max: u64, run: impl Fn(u64) -> RunReport) -> Option<RunReport> {
    (0..seeds_max).map(run).find(|report| !report.is_ok())
}

#[test]
fn reads_from_the_leaders_state_without_read_index_are_caught() {
    let failure = first_failure(10_000, |seed| {
        linearizable::run_with(seed, None, |config: ReplicaConfig| Planted {
            replica: Replica::new(config),
            plant: LeaderLocalReads,
        })
    })
    .expect("stale reads of a deposed leader went unnoticed for 10,000 seeds");
    println!("caught: {}", failure.line());
    assert!(failure.line().contains("linearizability"), "{}", failure.line());
}
