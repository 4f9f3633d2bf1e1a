//! Serializable reads (etcd's `serializable: true`) on a simulated
//! 3-replica cluster: any replica answers at once from its applied state,
//! even one cut off from every leader, while a linearizable read there is
//! refused.

use crate::common;

use common::{PROBE, ask, cluster, command, leader, ms};
use haven_runtime::NodeId;
use haven_station::{ClientRequest, ReplyError, StationMsg};
use haven_store::{PutRequest, RangeRequest, Request, Response};

fn range(key: &[u8]) -> Request {
    Request::Range(RangeRequest { key: key.to_vec(), ..RangeRequest::default() })
}

fn values(result: &Result<Response, ReplyError>) -> Vec<Vec<u8>> {
    match result {
        Ok(Response::Range(found)) => found.kvs.iter().map(|kv| kv.value.clone()).collect(),
        other => panic!("expected a range response, got {other:?}"),
    }
}

fn read(sim: &mut haven_sim::Sim<common::TestNode>, to: NodeId, seq: u64, serializable: bool) -> StationMsg {
    let request = ClientRequest { client: 9, seq, request: range(b"k") };
    let msg = if serializable { StationMsg::SerializableRead(request) } else { StationMsg::Request(request) };
    ask(sim, to, msg)
}

#[test]
fn a_replica_without_a_leader_serves_serializable_reads_and_refuses_linearizable_ones() {
    let mut sim = cluster(3);
    let leader = leader(&sim);
    let put = Request::Put(PutRequest { key: b"k".to_vec(), value: b"v1".to_vec(), ..PutRequest::default() });
    assert!(command(&mut sim, leader, 1, put).is_ok());
    sim.run_for(ms(500)); // followers apply on the next heartbeat
    let lonely = (1..=3).map(NodeId).find(|&n| n != leader).expect("two followers");
    for other in (1..=3).map(NodeId).filter(|&n| n != lonely) {
        sim.crash(other);
    }
    sim.run_for(ms(3_000));

    let StationMsg::Reply(answer) = read(&mut sim, lonely, 1, true) else { panic!("a reply") };
    assert_eq!((answer.client, answer.seq), (9, 1));
    assert_eq!(values(&answer.result), vec![b"v1".to_vec()], "served from the applied state");
    let StationMsg::Reply(refused) = read(&mut sim, lonely, 2, false) else { panic!("a reply") };
    assert!(matches!(refused.result, Err(ReplyError::NotLeader { .. })), "{refused:?}");
    assert!(sim.is_up(PROBE));
}

#[test]
fn a_serializable_read_of_a_missing_key_is_empty_and_a_write_takes_the_log() {
    let mut sim = cluster(4);
    let leader = leader(&sim);
    let StationMsg::Reply(empty) = read(&mut sim, leader, 1, true) else { panic!("a reply") };
    assert!(values(&empty.result).is_empty());
    // A write sent as a serializable read is not answered from the state: it is proposed.
    let put = Request::Put(PutRequest { key: b"k".to_vec(), value: b"v2".to_vec(), ..PutRequest::default() });
    let StationMsg::Reply(written) =
        ask(&mut sim, leader, StationMsg::SerializableRead(ClientRequest { client: 9, seq: 2, request: put }))
    else {
        panic!("a reply")
    };
    assert!(matches!(written.result, Ok(Response::Put(_))), "{written:?}");
    let StationMsg::Reply(after) = read(&mut sim, leader, 3, true) else { panic!("a reply") };
    assert_eq!(values(&after.result), vec![b"v2".to_vec()]);
}
