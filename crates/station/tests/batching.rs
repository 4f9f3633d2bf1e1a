//! Messages handed to a replica together (`Component::on_messages`, as the
//! production executor does with a backlog): the proposals of one batch
//! share one pass of Raft's output, and every one of them is answered as
//! if it had come alone.

use crate::common;

use common::{PROBE, TestNode, cluster_in, leader, ms};
use haven_sim::{Sim, SimConfig};
use haven_station::{ClientRequest, StationMsg};
use haven_store::{PutRequest, Request, Response};

const PUTS: u64 = 32;

/// A leader paused while `PUTS` puts arrive, then resumed: the puts wait
/// and are handed over on resume, one by one or as one batch.
fn puts_after_a_pause(batched: bool) -> (Sim<TestNode>, u64) {
    let mut config = SimConfig::new(5, 4);
    config.batch_on_resume = batched;
    let mut sim = cluster_in(config, |_| {});
    let leader = leader(&sim);
    sim.pause(leader, ms(50));
    for seq in 1..=PUTS {
        let key = format!("k{seq}").into_bytes();
        let request = Request::Put(PutRequest { key, value: b"v".to_vec(), ..PutRequest::default() });
        sim.inject(leader, PROBE, StationMsg::Request(ClientRequest { client: 1, seq, request }));
    }
    let sent_before = sim.counters().messages_sent;
    sim.run_for(ms(300));
    let sent = sim.counters().messages_sent - sent_before;
    (sim, sent)
}

fn answered_puts(sim: &Sim<TestNode>) -> Vec<u64> {
    let Some(TestNode::Probe(inbox)) = sim.component(PROBE) else { panic!("the probe is n4") };
    let ok = |msg: &StationMsg| match msg {
        StationMsg::Reply(reply) => matches!(reply.result, Ok(Response::Put(_))).then_some(reply.seq),
        _ => None,
    };
    let mut seqs: Vec<u64> = inbox.iter().filter_map(ok).collect();
    seqs.sort_unstable();
    seqs
}

#[test]
fn a_batch_of_proposals_is_answered_in_full_with_far_fewer_messages() {
    let (one_by_one, sent_one_by_one) = puts_after_a_pause(false);
    let (batched, sent_batched) = puts_after_a_pause(true);
    let all: Vec<u64> = (1..=PUTS).collect();
    assert_eq!(answered_puts(&one_by_one), all, "each put answered once");
    assert_eq!(answered_puts(&batched), all, "a batch answers every put, as if one by one");
    // One by one, each proposal goes out in an append of its own to each
    // follower, and each append is acknowledged; batched, one append per
    // follower carries them all.
    assert!(sent_batched * 2 < sent_one_by_one, "batched {sent_batched} messages, one by one {sent_one_by_one}");
}
