//! The `membership` scenario: the kv workload while the group replaces
//! every original member.
//!
//! In: a seed. Out: a [`RunReport`]; its violation names a broken Raft
//! invariant, a stalled reconfiguration or client, or a non-linearizable
//! history.
//!
//! Replicas n1–n3 start as the voters; n4–n6 start knowing only the
//! original voters and take no part until added. An operator process asks
//! the leader, every 200 ms, for the next step towards {n4, n5, n6}: add a
//! new node as a learner, promote a learner once caught up (joint consensus
//! C_old,new then C_new), remove an original voter. Meanwhile the faults of
//! `kv-linearizable` hit all six replicas. After healing, the leader must
//! reach the target configuration and every client must make progress.
//!
//! `member-table` runs the same through the member table instead, as an
//! operator does with `haven member add|rm`, with each replica's peer map
//! simulated as `haven station` keeps it.

use super::client::{ClientConfig, KvClient};
use super::faults;
use super::linearizable::{
    FAULT_MIX, WATCH_KEY, WATCH_RANGE_END, clients_progressed, finish, install_history_checks, replica_config,
};
use super::node::{KvNode, KvOut, StationReplica};
use super::watch_client::{WatchClient, WatchClientConfig};
use haven_raft::{Membership, Role};
use haven_runtime::NodeId;
use haven_sim::{Dist, LinkConfig, PeerMap, Process, RunReport, Scenario, Sim, SimConfig, TraceSink, actions};
use haven_station::{
    MemberOp, MemberRecord, MemberRequest, MemberTable, Replica, ReplicaEvent, StationMsg, peer_ids, was_removed,
};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::time::Duration;

pub const SUMMARY: &str = "The kv-linearizable workload (3 clients, 4 keys) while an operator replaces every original \
member: n1-n3 start as voters, n4-n6 join as learners, are promoted through joint consensus, and the originals are \
removed, one change at a time, under the same faults on all six replicas. Safety, after every event: the Raft \
invariants. Liveness: within 30 s of healing the leader's configuration is exactly {n4, n5, n6} and every client \
completes an operation, and a watcher (re-watching on any replica when its own goes quiet) has received every \
event applied before healing. At the end: the client history is linearizable and the watcher's events are the store's history, \
in order, with no gap or duplicate.";

pub const TABLE_SUMMARY: &str = "The membership scenario as `haven member add|rm` does it: the operator adds n4-n6 \
to the replicated member table and removes n1-n3 from it, and the leader moves Raft's configuration after the table \
(learner, promotion once caught up, removal). Each replica has a station's peer map: it talks to the members of its \
table and of the configuration in force (a restarted replica, to those it was configured with), refuses the ids its \
table says were removed, and takes any other node that reaches it as a guest after dropping its first message, as a \
station dials back a node that dialled in. Same faults and checks as membership; liveness also needs every new \
member's table to hold exactly {n4, n5, n6}.";

const ORIGINAL: u64 = 3;
const REPLICAS: u64 = 6;
const CLIENTS: u64 = 3;
/// One watcher, on the node after the clients, re-watching on any replica.
const WATCHERS: u64 = 1;
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(30);
/// The session the table operator's commands carry.
const OPERATOR_CLIENT: u64 = 0x6f70;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn target() -> Vec<NodeId> {
    (ORIGINAL + 1..=REPLICAS).map(NodeId).collect()
}

pub fn run(seed: u64, trace: Option<TraceSink>) -> RunReport {
    run_as(seed, trace, Operator::Raft)
}

/// The `member-table` scenario: the same replacement through the member
/// table, with each replica's peer map as a station keeps it.
pub fn run_through_table(seed: u64, trace: Option<TraceSink>) -> RunReport {
    run_as(seed, trace, Operator::Table)
}

/// How the operator changes the members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    /// Proposes Raft configurations itself.
    Raft,
    /// Adds and removes members in the replicated member table, as `haven
    /// member add|rm` does; the leader moves Raft's configuration after it.
    Table,
}

fn run_as(seed: u64, trace: Option<TraceSink>, operator: Operator) -> RunReport {
    let mut config = SimConfig::new(seed, (REPLICAS + CLIENTS + WATCHERS) as usize);
    config.link = LinkConfig { latency: Dist::lan(), loss_probability: 0.01, duplicate_probability: 0.01 };
    let original: Vec<NodeId> = (1..=ORIGINAL).map(NodeId).collect();
    let servers: Vec<NodeId> = (1..=REPLICAS).map(NodeId).collect();
    let watch_config = WatchClientConfig::new(servers.clone(), WATCH_KEY, WATCH_RANGE_END);
    let client_config = ClientConfig {
        servers,
        keys: 4,
        attempt_timeout: ms(250),
        attempts_max: 8,
        think_max: ms(20),
        relay_percent: 30,
    };
    let factory = move |id: NodeId| {
        if id.0 <= REPLICAS {
            let mut config = replica_config(original.clone());
            // The originals are seeded with themselves, as `haven station
            // --initial-cluster` seeds them; newcomers join an existing table.
            if operator == Operator::Table && id.0 <= ORIGINAL {
                config.members = (1..=ORIGINAL).map(record).collect();
            }
            KvNode::Replica(Box::new(Replica::new(config)))
        } else if id.0 <= REPLICAS + CLIENTS {
            KvNode::Client(Box::new(KvClient::new(client_config.clone())))
        } else {
            KvNode::Watcher(Box::new(WatchClient::new(watch_config.clone())))
        }
    };
    let mut sim = Sim::new(config, factory).expect("the membership scenario's configuration is valid");
    if let Some(sink) = trace {
        sim.set_trace(sink);
    }
    if operator == Operator::Table {
        sim.set_peer_policy(initial_peers, announced_peers);
    }
    let shared = install_history_checks(&mut sim);
    let s = shared.clone();
    sim.add_liveness("members replaced and clients progress", CONVERGE_WITHIN, ms(1), move |sim| {
        replaced(sim)?;
        if operator == Operator::Table {
            table_replaced(sim)?;
        }
        clients_progressed(&s.borrow(), sim)?;
        s.borrow().watch.caught_up(sim)
    });
    let report = sim.run(scenario(operator));
    let report = finish(report, &shared.borrow());
    shared.borrow().watch.finish(report, &sim)
}

fn leader<R: StationReplica>(sim: &Sim<KvNode<R>>) -> Option<(NodeId, &haven_raft::Raft)> {
    (1..=REPLICAS).map(NodeId).filter(|&n| sim.is_up(n)).find_map(|n| {
        let raft = sim.component(n)?.replica()?.raft()?;
        (raft.role() == Role::Leader).then_some((n, raft))
    })
}

/// The target configuration is in force on every target replica: the
/// entry that set it is on all new voters, so it is committed.
fn replaced<R: StationReplica>(sim: &Sim<KvNode<R>>) -> Result<(), String> {
    let (node, _) = leader(sim).ok_or("no leader")?;
    for n in target() {
        let raft = sim.component(n).and_then(|c| c.replica()).and_then(|r| r.raft());
        let m = raft.map(|r| r.membership());
        let done = m.is_some_and(|m| m.voters == target() && m.voters_outgoing.is_empty() && m.learners.is_empty());
        if !done {
            return Err(format!("leader {node}; {n} has membership {m:?}"));
        }
    }
    Ok(())
}

/// The next configuration on the way from `m` to the target, one member
/// at a time: add a newcomer as a learner, promote it once it is a learner,
/// and remove an original voter whenever there are more voters than the
/// target has — so the group never shrinks below the target's size.
fn next_step(m: &Membership) -> Option<(Vec<NodeId>, Vec<NodeId>)> {
    if !m.voters_outgoing.is_empty() {
        return None; // joint consensus still in progress
    }
    let target = target();
    let (voters, learners) = (&m.voters, &m.learners);
    let without = |list: &[NodeId], gone: NodeId| list.iter().copied().filter(|&n| n != gone).collect::<Vec<_>>();
    if let Some(&learner) = learners.iter().find(|n| target.contains(n)) {
        let promoted = voters.iter().copied().chain([learner]).collect();
        return Some((promoted, without(learners, learner)));
    }
    let original = voters.iter().copied().find(|n| !target.contains(n));
    if let Some(original) = original
        && voters.len() > target.len()
    {
        return Some((without(voters, original), learners.clone()));
    }
    if let Some(newcomer) = target.iter().copied().find(|n| !voters.contains(n) && !learners.contains(n)) {
        return Some((voters.clone(), learners.iter().copied().chain([newcomer]).collect()));
    }
    original.map(|original| (without(voters, original), learners.clone()))
}

/// The operator: asks the current leader for the next step.
fn reconfigure(sim: &mut Sim<KvNode>, _rng: &mut ChaCha8Rng, _i: u32) {
    let Some((node, raft)) = leader(sim) else { return };
    if raft.commit_index() < raft.last_log().index {
        return; // let the previous change commit first
    }
    if let Some((voters, learners)) = next_step(raft.membership()) {
        sim.inject(node, node, StationMsg::ChangeMembership { voters, learners });
    }
}

/// The operator through the member table: adds each newcomer (ids are
/// given out in order, so the table's next id must be the newcomer's), and
/// once all of them vote and Raft's configuration has caught up with the
/// table, removes an original. Each op is a new command; one the table
/// already holds is refused and changes nothing.
fn change_table(sim: &mut Sim<KvNode>, _rng: &mut ChaCha8Rng, i: u32) {
    let Some((node, raft)) = leader(sim) else { return };
    if raft.commit_index() < raft.last_log().index {
        return;
    }
    let Some(table) = sim.component(node).and_then(|c| c.replica()).and_then(|r| r.state_machine()) else { return };
    if let Some(op) = next_table_op(table.members(), raft.membership()) {
        let request = MemberRequest { client: OPERATOR_CLIENT, seq: u64::from(i) + 1, op };
        sim.inject(node, node, StationMsg::Member(request));
    }
}

fn next_table_op(table: &MemberTable, m: &Membership) -> Option<MemberOp> {
    if let Some(newcomer) = target().into_iter().find(|t| table.get(t.0).is_none()) {
        let next = table.next_id() == newcomer.0;
        return next.then(|| MemberOp::Add { peer_addr: record(newcomer.0).peer_addr, voter: true });
    }
    let all_vote = target().iter().all(|t| m.voters.contains(t)) && m.voters_outgoing.is_empty();
    let settled = m.voters.iter().chain(&m.learners).all(|n| table.get(n.0).is_some());
    let original = table.members().map(|r| r.id).find(|&id| id <= ORIGINAL)?;
    (all_vote && settled).then_some(MemberOp::Remove { id: original })
}

/// Every target replica's table holds exactly the target.
fn table_replaced<R: StationReplica>(sim: &Sim<KvNode<R>>) -> Result<(), String> {
    for n in target() {
        let sm = sim.component(n).and_then(|c| c.replica()).and_then(|r| r.state_machine());
        let ids: Vec<u64> = sm.map(|sm| sm.members().members().map(|r| r.id).collect()).unwrap_or_default();
        if ids != [4, 5, 6] {
            return Err(format!("{n}'s member table holds {ids:?}"));
        }
    }
    Ok(())
}

fn record(id: u64) -> MemberRecord {
    MemberRecord { id, peer_addr: format!("10.0.0.{id}:2380"), client_url: String::new(), voter: true }
}

/// A replica's peer map at start, from its configuration: the originals
/// know each other; a newcomer knows the originals and itself. Clients
/// reach replicas through a channel in production: no map.
fn initial_peers(node: NodeId) -> Option<PeerMap> {
    let peers = (1..=ORIGINAL).map(NodeId).chain([node]).collect();
    (node.0 <= REPLICAS).then_some(PeerMap { peers, refused: BTreeSet::new() })
}

/// The peer map a replica keeps from its member table and the
/// configuration in force, as `haven station` does; it refuses the ids
/// its table gave out and no longer holds.
fn announced_peers(_node: NodeId, out: &KvOut) -> Option<PeerMap> {
    let KvOut::Replica(ReplicaEvent::Members { members, next_id, voters, learners, .. }) = out else { return None };
    let peers = peer_ids(members, voters, learners);
    let refused = (1..*next_id).filter(|&id| was_removed(members, *next_id, id)).map(NodeId).collect();
    Some(PeerMap { peers, refused })
}

fn scenario(operator: Operator) -> Scenario<KvNode> {
    let mut s = Scenario::new();
    s.add(Process::new("clocks", 1, Dist::ZERO, actions::randomize_clocks(secs(5), 200)));
    let nodes = (REPLICAS + CLIENTS + WATCHERS) as u32;
    let boot = s.add(Process::new("boot", nodes, Dist::uniform(ms(0), ms(50)), actions::start_each()));
    let step = match operator {
        Operator::Raft => reconfigure as fn(&mut Sim<KvNode>, &mut ChaCha8Rng, u32),
        Operator::Table => change_table,
    };
    s.add(Process::new("reconfigure", 600, Dist::constant(ms(200)), step).after_end_of(boot, secs(1)));
    let faults = faults::add_replica_faults(&mut s, boot, REPLICAS, FAULT_MIX);
    s.end_after(&faults, secs(1));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(voters: &[u64], learners: &[u64]) -> Membership {
        Membership {
            voters: voters.iter().copied().map(NodeId).collect(),
            voters_outgoing: Vec::new(),
            learners: learners.iter().copied().map(NodeId).collect(),
        }
    }

    #[test]
    fn the_plan_replaces_every_original_one_member_at_a_time() {
        let mut current = m(&[1, 2, 3], &[]);
        let mut steps = Vec::new();
        while let Some((voters, learners)) = next_step(&current) {
            current = Membership { voters, voters_outgoing: Vec::new(), learners };
            let ids = |l: &[NodeId]| l.iter().map(|n| n.0).collect::<Vec<_>>();
            steps.push((ids(&current.voters), ids(&current.learners)));
            assert!(current.voters.len() >= 3, "never below the target's size: {steps:?}");
            assert!(steps.len() <= 9, "the plan must end: {steps:?}");
        }
        assert_eq!(steps.last(), Some(&(vec![4, 5, 6], vec![])), "{steps:?}");
        assert_eq!(steps.len(), 9, "3 × (add learner, promote, remove): {steps:?}");
    }
}
