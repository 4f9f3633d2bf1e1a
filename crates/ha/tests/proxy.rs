//! Transcript tests of the pure proxy: each feeds keep-alives, reports,
//! ticks and the leader's answers one at a time and asserts exactly what
//! the proxy emits (the batches and the fan-out to agents).

use haven_ha::{
    Action, AgentCommand, AgentKeepAlive, BatchAnswer, BatchLease, BatchOutcome, CommandId, Event, InstanceId,
    ProxyBatch, ProxyConfig, ProxyCore, ProxyOutput, Renewal,
};
use haven_runtime::NodeId;

fn config() -> ProxyConfig {
    ProxyConfig {
        agents_max: 8,
        batch_len_max: 4,
        queue_len_max: 8,
        flush_interval_ms: 20,
        reply_timeout_ms: 200,
        agent_idle_ms: 10_000,
        commands_len_max: 2,
        report_age_ms_max: 500,
    }
}

fn ka(agent: u64, seq: u64, lease: i64) -> AgentKeepAlive {
    AgentKeepAlive { agent: NodeId(agent), client: agent * 100, seq, lease }
}

fn active(instance: u64) -> Event {
    Event::InstanceActive { instance: InstanceId(instance), token: None }
}

fn lease(agent: u64, lease: i64) -> BatchLease {
    BatchLease { agent: NodeId(agent), lease }
}

fn batch(seq: u64, leases: Vec<BatchLease>, reports: Vec<Event>) -> Vec<ProxyOutput> {
    vec![ProxyOutput::Batch(ProxyBatch { seq, leases, reports })]
}

fn done(seq: u64, renewals: Vec<(i64, Renewal)>) -> BatchAnswer {
    BatchAnswer { seq, outcome: BatchOutcome::Done { renewals, reports_proposed: true, moved: vec![] } }
}

fn renewed(to: AgentKeepAlive) -> ProxyOutput {
    ProxyOutput::KeepAlive { to, ttl_seconds: Some(2) }
}

const TWO_S: Renewal = Renewal::Renewed { ttl_seconds: 2 };

#[test]
fn a_batch_leaves_after_the_flush_interval_with_each_lease_once() {
    let mut p = ProxyCore::new(config());
    assert_eq!(p.keep_alive(0, ka(4, 1, 40)), []);
    assert_eq!(p.report(5, NodeId(5), active(7)), []);
    assert_eq!(p.keep_alive(10, ka(4, 2, 40)), []);
    assert_eq!(p.tick(19), [], "not due before 20 ms after the oldest item");
    assert_eq!(p.tick(20), batch(1, vec![lease(4, 40)], vec![active(7)]));
    assert_eq!(p.tick(40), [], "nothing queued");
    // Both requests were in the batch: the renewal answers both.
    assert_eq!(p.answer(30, done(1, vec![(40, TWO_S)])), [renewed(ka(4, 1, 40)), renewed(ka(4, 2, 40))]);
    assert_eq!(p.answer(31, done(1, vec![(40, TWO_S)])), [], "a repeated answer changes nothing");
}

#[test]
fn a_full_batch_leaves_at_once() {
    let mut p = ProxyCore::new(config());
    for (agent, seq) in [(4, 1), (5, 1), (6, 1)] {
        assert_eq!(p.keep_alive(0, ka(agent, seq, agent as i64 * 10)), []);
    }
    let full = batch(1, vec![lease(4, 40), lease(5, 50), lease(6, 60)], vec![active(1)]);
    assert_eq!(p.report(1, NodeId(4), active(1)), full);
}

#[test]
fn a_keep_alive_that_arrived_after_the_batch_left_waits_for_the_next_one() {
    let mut p = ProxyCore::new(config());
    p.keep_alive(0, ka(4, 1, 40));
    assert_eq!(p.tick(20), batch(1, vec![lease(4, 40)], vec![]));
    // Sent after the batch: the leader may have renewed before it was sent.
    assert_eq!(p.keep_alive(25, ka(4, 2, 40)), []);
    assert_eq!(p.answer(30, done(1, vec![(40, TWO_S)])), [renewed(ka(4, 1, 40))]);
    assert_eq!(p.tick(45), batch(2, vec![lease(4, 40)], vec![]));
    let gone = ProxyOutput::KeepAlive { to: ka(4, 2, 40), ttl_seconds: None };
    assert_eq!(p.answer(50, done(2, vec![(40, Renewal::NotFound)])), [gone]);
}

#[test]
fn a_refused_or_unanswered_batch_is_sent_again_in_its_order() {
    let mut p = ProxyCore::new(config());
    p.keep_alive(0, ka(4, 1, 40));
    p.report(1, NodeId(5), active(9));
    assert_eq!(p.tick(20), batch(1, vec![lease(4, 40)], vec![active(9)]));
    let refused = BatchAnswer { seq: 1, outcome: BatchOutcome::NotLeader { leader_hint: Some(NodeId(2)) } };
    assert_eq!(p.answer(22, refused), []);
    p.report(23, NodeId(6), active(3));
    assert_eq!(p.tick(42), batch(2, vec![lease(4, 40)], vec![active(9), active(3)]));
    assert_eq!(p.tick(241), [], "not yet 200 ms");
    let mut out = p.tick(242);
    assert_eq!(out.remove(0), ProxyOutput::TimedOut { seq: 2 });
    assert_eq!(out, batch(3, vec![lease(4, 40)], vec![active(9), active(3)]), "queued again, due at once");
    assert_eq!(p.answer(250, done(3, vec![(40, TWO_S)])), [renewed(ka(4, 1, 40))]);
}

#[test]
fn a_full_queue_drops_its_oldest_item() {
    let mut p = ProxyCore::new(ProxyConfig { batch_len_max: 2, queue_len_max: 2, ..config() });
    p.report(0, NodeId(4), active(1));
    assert_eq!(p.report(0, NodeId(4), active(2)), batch(1, vec![], vec![active(1), active(2)]));
    // One batch in flight at most: the next items wait, and the oldest goes.
    for instance in 3..=5 {
        assert_eq!(p.report(1, NodeId(4), active(instance)), []);
    }
    assert_eq!(p.dropped(), 1);
    let out = p.answer(5, done(1, vec![]));
    assert_eq!(out, batch(2, vec![], vec![active(4), active(5)]));
}

#[test]
fn an_agent_beyond_the_bound_is_sent_to_the_stations() {
    let mut p = ProxyCore::new(ProxyConfig { agents_max: 1, ..config() });
    assert_eq!(p.keep_alive(0, ka(4, 1, 40)), []);
    assert_eq!(p.keep_alive(1, ka(5, 1, 50)), [ProxyOutput::Assigned { agent: NodeId(5), proxy: None }]);
    assert_eq!(p.tick(20), batch(1, vec![lease(4, 40)], vec![]));
    // Idle agents are forgotten, which makes room.
    assert_eq!(
        p.tick(10_020),
        [
            ProxyOutput::TimedOut { seq: 1 },
            ProxyOutput::Batch(ProxyBatch { seq: 2, leases: vec![lease(4, 40)], reports: vec![] })
        ]
    );
    assert_eq!(p.agents_len(), 0);
    assert_eq!(p.keep_alive(10_021, ka(5, 2, 50)), []);
}

#[test]
fn moved_agents_are_told_and_commands_fan_out_up_to_the_bound() {
    let mut p = ProxyCore::new(config());
    p.keep_alive(0, ka(4, 1, 40));
    p.tick(20);
    let moved = BatchOutcome::Done {
        renewals: vec![(40, TWO_S)],
        reports_proposed: true,
        moved: vec![(NodeId(4), Some(NodeId(27)))],
    };
    let out = p.answer(25, BatchAnswer { seq: 1, outcome: moved });
    assert_eq!(out, [renewed(ka(4, 1, 40)), ProxyOutput::Assigned { agent: NodeId(4), proxy: Some(NodeId(27)) }]);
    let stop = |id: u64, node: u64| AgentCommand {
        id: CommandId(id),
        node: NodeId(node),
        session: 40,
        instance: InstanceId(id),
        action: Action::Stop { service: "db".into(), timeout_ms: 0 },
    };
    let out = p.commands(vec![stop(1, 4), stop(2, 5), stop(3, 6)]);
    assert_eq!(out, [ProxyOutput::Command(stop(1, 4)), ProxyOutput::Command(stop(2, 5))], "the third is dropped");
}

#[test]
fn a_report_too_old_to_send_is_dropped_and_its_keep_alive_still_goes() {
    let mut p = ProxyCore::new(config());
    p.keep_alive(0, ka(4, 1, 40));
    p.report(0, NodeId(4), active(1));
    assert_eq!(p.tick(20), batch(1, vec![lease(4, 40)], vec![active(1)]));
    // The leader cannot be reached for a while: the batch times out twice.
    assert_eq!(
        p.tick(220),
        [ProxyOutput::TimedOut { seq: 1 }, batch(2, vec![lease(4, 40)], vec![active(1)])[0].clone()]
    );
    assert_eq!(p.tick(520), [ProxyOutput::TimedOut { seq: 2 }, batch(3, vec![lease(4, 40)], vec![])[0].clone()]);
    assert_eq!(p.dropped(), 1);
    assert_eq!(p.answer(530, done(3, vec![(40, TWO_S)])), [renewed(ka(4, 1, 40))]);
}
