//! Hostile and broken bytes sent to a live node.
//!
//! In: a 3-node ping/pong cluster, and raw TCP connections to node 1 that
//! send garbage, an oversized length, a frame of another version, a frame
//! with a bad checksum, hellos that must be refused, or nothing at all.
//! Out: checks that each time node 1 logs an error naming the raw
//! connection's address and the reason, closes that connection (the raw
//! side sees EOF or a reset), counts it, and keeps exchanging messages with
//! its real peers.

mod common;

use common::{Cluster, Msg, TestNode, WAIT_MAX, captured_log, eventually};
use haven_net::frame::{self, Frame};
use haven_runtime::NodeId;
use haven_runtime::record;
use haven_runtime::wire::{self, WIRE_VERSION};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn encoded(frames: &[Frame<Msg>]) -> Vec<u8> {
    let (mut scratch, mut out) = (Vec::new(), Vec::new());
    for f in frames {
        frame::encode(f, 1 << 20, &mut scratch, &mut out).unwrap();
    }
    out
}

fn hello(node: u64) -> Frame<Msg> {
    Frame::Hello { node: NodeId(node), wire_version: WIRE_VERSION, listen: None, cluster: 0 }
}

/// Deterministic noise (xorshift64), so a failure replays.
fn garbage(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Sends `bytes` on a fresh raw connection to `target` and checks that the
/// node logs `reason` for it, closes it, and keeps talking to its peers.
async fn assert_refused(target: &TestNode, peers: [NodeId; 2], bytes: &[u8], reason: &str) {
    let errors = target.counters.snapshot().inbound_errors;
    let mut raw = TcpStream::connect(target.addr).await.expect("connect to the node");
    let local = raw.local_addr().unwrap();
    // The node may close before reading everything; a failed write is fine.
    let _ = raw.write_all(bytes).await;
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(WAIT_MAX, raw.read(&mut buf)).await;
    let read = read.unwrap_or_else(|_| panic!("the node kept the connection from {local} open ({reason})"));
    // EOF or a reset: either way the node hung up without a word.
    assert!(matches!(read, Ok(0) | Err(_)), "the node sent data on an inbound connection: {read:?}");
    eventually("the refusal is counted", || target.counters.snapshot().inbound_errors > errors).await;
    let needle = format!("addr={local}");
    eventually("the refusal is logged", || {
        captured_log()
            .lines()
            .any(|l| l.contains("closing inbound connection") && l.contains(&needle) && l.contains(reason))
    })
    .await;
    let before: Vec<u64> = peers.iter().map(|p| target.pongs_from(*p)).collect();
    eventually("the node keeps talking to its peers", || {
        peers.iter().zip(&before).all(|(p, b)| target.pongs_from(*p) >= b + 3)
    })
    .await;
}

#[tokio::test]
async fn bad_connections_are_closed_and_the_node_carries_on() {
    common::capture_logs();
    let mut cluster = Cluster::start(3, Duration::from_millis(10)).await;
    eventually("the cluster is up", || cluster.all_pongs_at_least(3)).await;
    let target = &cluster.nodes[0];
    let peers = [NodeId(2), NodeId(3)];

    let mut noise = garbage(4096, 0x5eed);
    noise[0] = 0xa5; // not a version byte, so the verdict does not depend on the seed
    assert_refused(target, peers, &noise, "unknown record version 165").await;

    let oversized = [WIRE_VERSION, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    assert_refused(target, peers, &oversized, "exceeds the limit").await;

    let mut payload = Vec::new();
    wire::encode(&hello(2), &mut payload).unwrap();
    let mut foreign = Vec::new();
    record::encode(WIRE_VERSION + 1, &payload, &mut foreign);
    let expected = format!("unknown record version {}", WIRE_VERSION + 1);
    assert_refused(target, peers, &foreign, &expected).await;

    let mut bad_crc = encoded(&[hello(2)]);
    bad_crc[5] ^= 0x01;
    assert_refused(target, peers, &bad_crc, "checksum mismatch").await;

    assert_refused(target, peers, &encoded(&[hello(99)]), "not in the peer map").await;
    assert_refused(target, peers, &encoded(&[Frame::Msg(Msg::Ping(1))]), "not a hello").await;

    let mut undecodable = encoded(&[hello(3)]);
    record::encode(WIRE_VERSION, &[0xff, 0xff, 0xff], &mut undecodable);
    assert_refused(target, peers, &undecodable, "does not decode").await;

    let mut cut = encoded(&[hello(3), Frame::Msg(Msg::Ping(1))]);
    cut.pop();
    // Half a frame, then the sender goes quiet; closing our side ends it.
    let mut raw = TcpStream::connect(target.addr).await.unwrap();
    let local = raw.local_addr().unwrap();
    raw.write_all(&cut).await.unwrap();
    raw.shutdown().await.unwrap();
    let needle = format!("addr={local}");
    eventually("a truncated frame is logged", || {
        captured_log().lines().any(|l| l.contains(&needle) && l.contains("in the middle of a frame"))
    })
    .await;

    // Silence: refused once the hello timeout (2 s in tests) passes.
    assert_refused(target, peers, &[], "no hello within").await;
    cluster.stop().await;
}
