//! The network model: loss, duplication, partitions, one-way blocks, clogs.

use crate::common;

use common::{Log, Msg, Out, ms, n, record};
use haven_runtime::NodeId;
use haven_sim::{Dist, LinkConfig, Sim, SimConfig, actions, derive_rng};
use std::time::Duration;

fn pinging(seed: u64, nodes: usize, link: LinkConfig, every: Duration) -> (Sim<common::Node>, Log) {
    let mut config = SimConfig::new(seed, nodes);
    config.link = link;
    let mut sim = common::sim(config, Some(every));
    let log = record(&mut sim);
    for node in sim.node_ids().to_vec() {
        sim.start(node);
    }
    (sim, log)
}

fn received(log: &Log) -> Vec<(NodeId, NodeId, Msg)> {
    log.borrow()
        .iter()
        .filter_map(|(_, to, out)| match out {
            Out::Recv { from, msg } => Some((*from, *to, msg.clone())),
            _ => None,
        })
        .collect()
}

fn lan(loss: f64, duplicate: f64) -> LinkConfig {
    LinkConfig { latency: Dist::lan(), loss_probability: loss, duplicate_probability: duplicate }
}

#[test]
fn total_loss_delivers_nothing() {
    let (mut sim, log) = pinging(1, 3, lan(1.0, 0.0), ms(50));
    sim.run_for(Duration::from_secs(2));
    let c = sim.counters();
    assert!(c.messages_sent > 100);
    assert_eq!(c.messages_delivered, 0);
    assert_eq!(c.messages_dropped, c.messages_sent);
    assert!(received(&log).is_empty());
}

#[test]
fn partial_loss_drops_about_that_fraction() {
    let (mut sim, _) = pinging(2, 3, lan(0.3, 0.0), ms(10));
    sim.run_for(Duration::from_secs(20));
    let c = sim.counters();
    let lost = c.messages_dropped as f64 / c.messages_sent as f64;
    assert!((0.27..0.33).contains(&lost), "lost {lost} of {} sent", c.messages_sent);
}

#[test]
fn duplication_delivers_every_message_twice() {
    let (mut sim, log) = pinging(3, 3, lan(0.0, 1.0), ms(50));
    sim.run_for(Duration::from_secs(2));
    let c = sim.counters();
    assert_eq!(c.messages_duplicated, c.messages_sent);
    // Pings are answered twice, so count the pings only: each arrives twice.
    let pings: Vec<_> = received(&log).into_iter().filter(|(_, _, m)| matches!(m, Msg::Ping(_))).collect();
    for ping in &pings {
        assert_eq!(pings.iter().filter(|p| *p == ping).count(), 2, "{ping:?}");
    }
    assert!(pings.len() > 100);
}

#[test]
fn nothing_crosses_a_partition_until_it_heals() {
    let (mut sim, log) = pinging(4, 5, LinkConfig::default(), ms(50));
    sim.partition(&[vec![n(1), n(2)], vec![n(3), n(4), n(5)]]);
    sim.run_for(Duration::from_secs(2));
    let side = |node: NodeId| node.0 <= 2;
    let crossed = |log: &Log| received(log).iter().filter(|(f, t, _)| side(*f) != side(*t)).count();
    assert_eq!(crossed(&log), 0);
    assert!(received(&log).len() > 100, "each side talks within itself");
    assert!(!sim.link_open(n(1), n(3)) && !sim.link_open(n(3), n(1)) && sim.link_open(n(3), n(4)));
    sim.heal();
    sim.run_for(Duration::from_secs(1));
    assert!(crossed(&log) > 100);
}

#[test]
fn a_message_blocked_at_delivery_time_is_dropped() {
    let link = LinkConfig { latency: Dist::constant(ms(10)), ..LinkConfig::default() };
    let (mut sim, log) = pinging(5, 2, link, ms(50));
    // n1's first ping leaves at 50 ms and would arrive at 60 ms.
    sim.run_for(ms(55));
    sim.block_one_way(n(1), n(2));
    sim.run_for(ms(10));
    sim.heal();
    sim.run_for(ms(100));
    let from_n1: Vec<Msg> =
        received(&log).into_iter().filter(|(f, t, _)| *f == n(1) && *t == n(2)).map(|r| r.2).collect();
    // Ping(1) was blocked on arrival (60 ms), Pong(1) when sent (60 ms);
    // Pong(3) would arrive at 170 ms, after the end.
    assert_eq!(from_n1, vec![Msg::Ping(2), Msg::Pong(2), Msg::Ping(3)]);
}

#[test]
fn one_way_block_stops_one_direction_only() {
    let (mut sim, log) = pinging(6, 2, LinkConfig::default(), ms(50));
    sim.block_one_way(n(1), n(2));
    sim.run_for(Duration::from_secs(1));
    let got = received(&log);
    assert!(got.iter().all(|(f, _, _)| *f == n(2)), "only n2 -> n1 works");
    assert!(got.iter().all(|(_, _, m)| matches!(m, Msg::Ping(_))), "n1's pongs to n2 are blocked too");
    assert!(got.len() >= 19);
    assert!(sim.link_open(n(2), n(1)) && !sim.link_open(n(1), n(2)));
}

#[test]
fn isolate_cuts_one_node_off() {
    let (mut sim, log) = pinging(7, 3, LinkConfig::default(), ms(50));
    sim.isolate(n(2));
    sim.run_for(Duration::from_secs(1));
    let got = received(&log);
    assert!(got.iter().all(|(f, t, _)| *f != n(2) && *t != n(2)));
    assert!(got.len() > 50);
}

#[test]
fn clogged_messages_wait_and_then_arrive_in_send_order() {
    // Latency up to 20 ms with a ping every millisecond: an open link
    // reorders all the time, so arriving in order is the clog's doing.
    let link = LinkConfig { latency: Dist::uniform(ms(0), ms(20)), ..LinkConfig::default() };
    let (mut sim, log) = pinging(8, 2, link, ms(1));
    sim.run_for(ms(100));
    sim.clog(n(1), n(2));
    assert!(!sim.link_open(n(1), n(2)) && sim.link_open(n(2), n(1)));
    let clogged_at = sim.now();
    let before = received(&log).len();
    sim.run_for(ms(200));
    let during: Vec<_> = received(&log)[before..].to_vec();
    let late = |r: &&(NodeId, NodeId, Msg)| r.0 == n(1) && matches!(r.2, Msg::Ping(_));
    let stragglers = during.iter().filter(late).count();
    assert!(stragglers <= 25, "only pings already in flight may arrive: {stragglers}");
    assert!(during.iter().any(|r| r.0 == n(2)), "the other direction still flows");
    let unclogged_at = sim.now();
    let mark = log.borrow().len();
    sim.unclog(n(1), n(2));
    sim.run_for(ms(100));
    let released: Vec<u64> = log.borrow()[mark..]
        .iter()
        .filter(|(at, to, _)| *to == n(2) && *at < unclogged_at + ms(20))
        .filter_map(|(_, _, out)| match out {
            // Pings sent after the unclog (one a millisecond from 1 ms on)
            // may overtake held ones: latencies are independent.
            Out::Recv { from, msg: Msg::Ping(seq) } if *from == n(1) && *seq <= 300 => Some(*seq),
            _ => None,
        })
        .collect();
    assert!(released.len() >= 150, "~200 pings were held, {} released", released.len());
    assert!(released.windows(2).all(|w| w[0] < w[1]), "released out of order: {released:?}");
    assert_eq!(sim.counters().messages_dropped, 0);
    assert!(clogged_at < unclogged_at);
}

#[test]
fn a_message_in_flight_when_its_link_clogs_is_held_not_lost() {
    let link = LinkConfig { latency: Dist::constant(ms(10)), ..LinkConfig::default() };
    let (mut sim, log) = pinging(9, 2, link, ms(50));
    sim.run_for(ms(55));
    sim.clog(n(1), n(2));
    sim.run_for(ms(200));
    let pings_from_n1 = |log: &Log| {
        let pings = received(log).into_iter().filter(|(f, _, m)| *f == n(1) && matches!(m, Msg::Ping(_)));
        pings.map(|r| r.2).collect::<Vec<_>>()
    };
    assert_eq!(pings_from_n1(&log), vec![]);
    sim.unclog(n(1), n(2));
    sim.run_for(ms(11));
    let all: Vec<Msg> = (1..=5).map(Msg::Ping).collect();
    assert_eq!(pings_from_n1(&log), all, "ping 1 (in flight at the clog) and 2 to 5 arrive after the unclog");
}

#[test]
fn partition_shapes() {
    let (mut sim, _) = pinging(10, 5, LinkConfig::default(), ms(50));
    let mut rng = derive_rng(10, "test", 0, 0);
    for _ in 0..20 {
        let (majority, minority) = sim.split_majority_minority(&mut rng);
        assert!(majority.len() > minority.len() && !minority.is_empty());
        assert_eq!(majority.len() + minority.len(), 5);
        for a in &majority {
            for b in &minority {
                assert!(!sim.link_open(*a, *b) && !sim.link_open(*b, *a));
            }
            for b in &majority {
                assert!(sim.link_open(*a, *b));
            }
        }
        let (left, bridge, right) = sim.bridge(&mut rng).unwrap();
        assert!(!left.is_empty() && !right.is_empty() && left.len() + right.len() == 4);
        for a in &left {
            assert!(sim.link_open(*a, bridge) && sim.link_open(bridge, *a));
            for b in &right {
                assert!(!sim.link_open(*a, *b) && !sim.link_open(*b, *a));
                assert!(sim.link_open(*b, bridge) && sim.link_open(bridge, *b));
            }
        }
    }
}

#[test]
fn swizzle_clogs_nodes_then_unclogs_them_all() {
    let (mut sim, _) = pinging(11, 5, LinkConfig::default(), ms(20));
    let closed = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let seen = closed.clone();
    sim.add_safety("count closed links", move |sim: &Sim<common::Node>| {
        let ids = sim.node_ids();
        let now_closed =
            ids.iter().flat_map(|a| ids.iter().map(move |b| (*a, *b))).filter(|(a, b)| !sim.link_open(*a, *b)).count();
        seen.set(seen.get().max(now_closed));
        Ok(())
    });
    let mut swizzle = actions::swizzle(Dist::uniform(ms(10), ms(50)));
    let mut rng = derive_rng(11, "test", 0, 0);
    swizzle(&mut sim, &mut rng, 0);
    sim.run_for(Duration::from_secs(2));
    assert!(closed.get() >= 8, "at least one node's links were clogged: {}", closed.get());
    for a in sim.node_ids() {
        for b in sim.node_ids() {
            assert!(sim.link_open(*a, *b));
        }
    }
    assert_eq!(sim.counters().messages_dropped, 0, "clogged messages are delayed, never lost");
}
