//! Node control: pause, crash, restart, clocks.

use crate::common;

use common::{Msg, Out, ms, n, record, state_file};
use haven_runtime::{IoDone, IoError, IoRequest};
use haven_sim::{Dist, LinkConfig, NodeState, SimConfig, SimTime};
use std::time::Duration;

fn const_links(seed: u64, nodes: usize, latency: Duration) -> SimConfig {
    let mut config = SimConfig::new(seed, nodes);
    config.link = LinkConfig { latency: Dist::constant(latency), ..LinkConfig::default() };
    config
}

#[test]
fn a_pause_defers_everything_and_delivers_it_in_order_after() {
    let mut sim = common::sim(const_links(1, 3, ms(1)), Some(ms(50)));
    let log = record(&mut sim);
    for node in sim.node_ids().to_vec() {
        sim.start(node);
    }
    sim.run_for(ms(220));
    sim.pause(n(2), ms(300));
    assert_eq!(sim.state(n(2)), NodeState::Paused);
    assert!(!sim.is_up(n(2)) && sim.is_paused(n(2)));
    sim.run_for(ms(299));
    let at_n2 = |from: SimTime, to: SimTime| {
        log.borrow().iter().filter(|(at, node, _)| *node == n(2) && (from..to).contains(at)).count()
    };
    assert_eq!(at_n2(SimTime::from_millis(221), SimTime::from_millis(520)), 0, "a paused node does nothing");
    assert!(sim.is_paused(n(2)));
    assert_eq!(sim.local_now(n(2)).as_nanos(), 519_000_000, "its clock keeps running");
    sim.run_for(ms(1));
    assert!(sim.is_up(n(2)));
    let resumed = SimTime::from_millis(520);
    let burst: Vec<(haven_runtime::NodeId, Msg)> = log
        .borrow()
        .iter()
        .filter(|(at, node, _)| *at == resumed && *node == n(2))
        .filter_map(|(_, _, out)| match out {
            Out::Recv { from, msg } => Some((*from, msg.clone())),
            _ => None,
        })
        .collect();
    // Pings 5 to 10 from each peer (sent every 50 ms from 250 ms on) and the
    // pongs to n2's ping 4 (sent at 200 ms, answered at 201 ms) all wait.
    for peer in [n(1), n(3)] {
        let pings: Vec<Msg> =
            burst.iter().filter(|(f, m)| *f == peer && matches!(m, Msg::Ping(_))).map(|b| b.1.clone()).collect();
        assert_eq!(pings, (5..=10).map(Msg::Ping).collect::<Vec<_>>(), "from {peer}");
    }
    // n2's own ping timer came due at 250 ms and fired right after the pause.
    sim.run_for(ms(5));
    let n2_pings: Vec<SimTime> = log
        .borrow()
        .iter()
        .filter(|(_, node, out)| *node != n(2) && matches!(out, Out::Recv { from, msg: Msg::Ping(5) } if *from == n(2)))
        .map(|(at, _, _)| *at)
        .collect();
    assert_eq!(n2_pings, vec![SimTime::from_millis(521); 2]);
}

#[test]
fn a_crash_drops_timers_and_a_restart_starts_over_with_the_disk() {
    let mut sim = common::sim(SimConfig::new(2, 2), None);
    let log = record(&mut sim);
    sim.start(n(1));
    sim.run_for(ms(1));
    sim.inject(n(1), n(9), Msg::Timer(3_000));
    sim.inject(n(1), n(9), Msg::Io(IoRequest::Write { file: state_file(), offset: 0, data: b"left".to_vec() }));
    sim.inject(n(1), n(9), Msg::Io(IoRequest::Sync { file: state_file() }));
    sim.inject(n(1), n(9), Msg::Io(IoRequest::SyncDir));
    sim.run_for(ms(500));
    // The syncs were issued with the write, before it completed: they cover
    // neither its data nor the file's creation.
    assert_eq!(sim.disk(n(1)).durable_file("state"), None);
    sim.inject(n(1), n(9), Msg::Io(IoRequest::Sync { file: state_file() }));
    sim.inject(n(1), n(9), Msg::Io(IoRequest::SyncDir));
    sim.run_for(ms(500));
    assert_eq!(sim.disk(n(1)).durable_file("state"), Some(&b"left"[..]));
    sim.run_for(ms(1));
    let t_crash = sim.now();
    sim.crash(n(1));
    assert_eq!(sim.state(n(1)), NodeState::Crashed);
    assert!(sim.component(n(1)).is_none());
    sim.run_for(ms(100));
    sim.restart(n(1));
    assert_eq!(sim.incarnation(n(1)), 2);
    sim.run_for(Duration::from_secs(5));
    let log = log.borrow();
    assert!(!log.iter().any(|(_, _, out)| matches!(out, Out::Fired { .. })), "the timer died with its incarnation");
    let starts: Vec<SimTime> = log.iter().filter(|(_, _, o)| *o == Out::Started).map(|e| e.0).collect();
    assert_eq!(starts, vec![SimTime::ZERO, t_crash + ms(100)]);
    let boots: Vec<&Out> = log.iter().filter(|(_, _, o)| matches!(o, Out::Boot(_))).map(|e| &e.2).collect();
    assert_eq!(boots, vec![&Out::Boot(Err(IoError::NotFound)), &Out::Boot(Ok(IoDone::Read(b"left".to_vec())))]);
}

#[test]
fn messages_to_a_crashed_node_are_dropped() {
    let mut sim = common::sim(const_links(3, 2, ms(10)), Some(ms(50)));
    let log = record(&mut sim);
    sim.start(n(1));
    sim.start(n(2));
    sim.run_for(ms(55));
    sim.crash(n(2));
    sim.run_for(ms(20));
    sim.restart(n(2));
    sim.run_for(ms(20));
    // n1's ping 1 (sent at 50 ms) arrives at 60 ms and finds n2 down.
    let to_n2 = log.borrow().iter().filter(|(_, node, o)| *node == n(2) && matches!(o, Out::Recv { .. })).count();
    assert_eq!(to_n2, 0);
    assert!(sim.counters().messages_dropped >= 1);
}

#[test]
fn a_message_for_an_older_incarnation_is_dropped() {
    let mut sim = common::sim(const_links(4, 2, ms(10)), Some(ms(50)));
    let log = record(&mut sim);
    sim.start(n(1));
    sim.start(n(2));
    sim.run_for(ms(52));
    // n1's ping 1 is due at n2 at 60 ms; n2 crashes and is back before.
    sim.crash(n(2));
    sim.restart(n(2));
    sim.run_for(ms(20));
    let to_n2 = |what: fn(&Msg) -> bool| {
        let log = log.borrow();
        log.iter().filter(|(_, node, o)| *node == n(2) && matches!(o, Out::Recv { msg, .. } if what(msg))).count()
    };
    assert_eq!(to_n2(|m| matches!(m, Msg::Ping(_))), 0, "the connection to the old process is gone with it");
    // n1 answered the old n2's ping 1 at 60 ms, to the new n2: it gets it.
    assert_eq!(to_n2(|m| *m == Msg::Pong(1)), 1);
}

#[test]
fn a_timer_on_a_drifting_clock_fires_when_that_clock_says() {
    // Deadline: local 5 s + 1 s. At +1000 ppm the clock reads
    // 5 s + g * 1.001; the first nanosecond g reaching 6 s is 999 001 000
    // (999 000 999 reads 5.999999999 s).
    for (drift, fires_at, reads) in [(1_000, 999_001_000, 6_000_000_001), (-1_000, 1_001_001_002, 6_000_000_000)] {
        let mut sim = common::sim(SimConfig::new(5, 1), None);
        let log = record(&mut sim);
        sim.set_clock(n(1), Duration::from_secs(5), drift);
        sim.start(n(1));
        sim.inject(n(1), n(9), Msg::Timer(1_000));
        sim.run_for(Duration::from_secs(2));
        let fired: Vec<_> = log
            .borrow()
            .iter()
            .filter_map(|(at, _, o)| match o {
                Out::Fired { at: local, .. } => Some((at.as_nanos(), local.as_nanos())),
                _ => None,
            })
            .collect();
        assert_eq!(fired, vec![(fires_at, reads)], "drift {drift} ppm");
    }
}

#[test]
fn changing_a_running_clock_reschedules_its_timers_and_never_goes_back() {
    // A 1 s timer set at 0; at 0.5 s the clock changes to 1.5x or 0.5x.
    // At 1.5x the formula reads 0.75 s: ahead, so the clock jumps there and
    // the last 0.25 s take 1/6 s. At 0.5x it would read 0.25 s: behind, so
    // the clock goes on from 0.5 s and the last 0.5 s take 1 s.
    for (drift, fires_at) in [(500_000, 500_000_000 + 166_666_667), (-500_000, 1_500_000_000)] {
        let mut sim = common::sim(SimConfig::new(6, 1), None);
        let log = record(&mut sim);
        sim.start(n(1));
        sim.inject(n(1), n(9), Msg::Timer(1_000));
        sim.run_for(ms(500));
        let before = sim.local_now(n(1));
        sim.set_clock(n(1), Duration::ZERO, drift);
        assert!(sim.local_now(n(1)) >= before);
        sim.run_for(Duration::from_secs(2));
        let fired: Vec<u64> = log
            .borrow()
            .iter()
            .filter(|(_, _, o)| matches!(o, Out::Fired { .. }))
            .map(|(at, _, _)| at.as_nanos())
            .collect();
        assert_eq!(fired, vec![fires_at], "drift {drift}");
    }
}
