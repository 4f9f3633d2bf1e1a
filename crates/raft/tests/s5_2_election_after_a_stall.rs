//! §5.2 election timing when the node itself stalled: a process stopped by
//! its machine (a VM's host, a swap storm) wakes to find every timer
//! expired, though its peers may have been stopped with it. With
//! `stall_gap_min`, a gap that long between calls is taken for our own
//! stall: a follower's election timer and a leader's check-quorum window
//! start again from the end of it, once per `election_timeout_max`, so it
//! delays an election by one timeout at most. Without it (the default, and
//! the simulator's) nothing is forgiven.

use crate::common;

use common::*;
use haven_raft::{Config, Message, Raft, Role, Setup};
use std::time::Duration;

/// Heartbeats every 20 ms, elections after 100-200 ms, a stall from 50 ms.
fn stalls_forgiven() -> Config {
    Config { stall_gap_min: Some(Duration::from_millis(50)), ..config() }
}

fn node(id: haven_runtime::NodeId, config: Config) -> Raft {
    Raft::new(Setup { id, voters: voters(3), config }, rng(id.0), ms(0)).expect("valid setup")
}

/// n2 follows n1, heard at 10 ms.
fn follower(config: Config) -> Raft {
    let mut n2 = node(N2, config);
    n2.step(ms(10), N1, Message::Heartbeat { term: 1, commit: 0, round: 1 });
    settle(&mut n2, ms(10));
    assert_eq!((n2.role(), n2.leader()), (Role::Follower, Some(N1)));
    n2
}

fn pre_votes_sent(raft: &mut Raft, now: haven_runtime::Instant) -> bool {
    settle(raft, now).iter().any(|e| matches!(e.msg, Message::PreVote { .. }))
}

#[test]
fn without_a_stall_gap_a_node_back_from_a_pause_campaigns_at_once() {
    let mut n2 = follower(config());
    n2.tick(ms(400));
    assert!(pre_votes_sent(&mut n2, ms(400)));
    assert_eq!(n2.counters().stalls_forgiven, 0);
}

#[test]
fn a_follower_back_from_a_stall_gives_the_leader_a_fresh_election_timeout() {
    let mut n2 = follower(stalls_forgiven());
    n2.tick(ms(400));
    assert!(!pre_votes_sent(&mut n2, ms(400)), "the silence was ours");
    assert_eq!(n2.next_deadline(), ms(425), "called again within half the gap");
    let mut now = ms(400);
    while !pre_votes_sent(&mut n2, now) {
        now = n2.next_deadline();
        n2.tick(now);
    }
    assert!(now >= ms(500) && now < ms(600), "campaigned {now:?} after 100-200 ms more without the leader");
    assert_eq!(n2.counters().stalls_forgiven, 1);
}

#[test]
fn a_follower_that_hears_the_leader_within_the_grace_does_not_campaign() {
    let mut n2 = follower(stalls_forgiven());
    n2.tick(ms(400));
    n2.step(ms(405), N1, Message::Heartbeat { term: 1, commit: 0, round: 2 });
    settle(&mut n2, ms(405));
    for t in (410..=500).step_by(5) {
        n2.tick(ms(t));
        assert!(!pre_votes_sent(&mut n2, ms(t)), "at {t} ms: the leader is alive");
    }
    assert_eq!((n2.role(), n2.term(), n2.leader()), (Role::Follower, 1, Some(N1)));
}

#[test]
fn a_second_stall_within_an_election_timeout_is_not_forgiven() {
    let mut n2 = follower(stalls_forgiven());
    n2.tick(ms(400));
    assert!(!pre_votes_sent(&mut n2, ms(400)));
    // No call until the new election deadline (at most 200 ms on) has
    // passed: a stall again, or a node too busy to run.
    let late = ms(600) - Duration::from_nanos(1);
    n2.tick(late);
    assert!(pre_votes_sent(&mut n2, late), "forgiven at most once per election_timeout_max (200 ms)");
    assert_eq!(n2.counters().stalls_forgiven, 1);
}

/// Calls `raft` at each of its deadlines up to `until`, answering nothing.
fn run_until(raft: &mut Raft, until: haven_runtime::Instant) {
    while raft.next_deadline() <= until {
        let now = raft.next_deadline();
        raft.tick(now);
        settle(raft, now);
    }
}

/// n1 leads, ran without a gap through a check-quorum at 100 ms after its
/// election (passed on the followers' acknowledgements, which it then
/// forgets), and stalled from then to 300 ms.
fn leader_back_from_a_stall(config: Config) -> (Raft, haven_runtime::Instant) {
    let (mut n1, t) = caught_up_leader_with(config);
    run_until(&mut n1, t + Duration::from_millis(100));
    assert_eq!(n1.role(), Role::Leader);
    let woke = t + Duration::from_millis(300);
    n1.tick(woke);
    (n1, woke)
}

#[test]
fn without_a_stall_gap_a_leader_back_from_a_stall_steps_down_at_once() {
    let (n1, _) = leader_back_from_a_stall(config());
    assert_eq!(n1.role(), Role::Follower, "nobody answered within its last check-quorum window, the stall");
}

#[test]
fn a_leader_back_from_a_stall_judges_its_followers_by_what_it_hears_after_it() {
    let (mut n1, woke) = leader_back_from_a_stall(stalls_forgiven());
    assert_eq!(n1.role(), Role::Leader, "the stall was ours");
    let heartbeats = settle(&mut n1, woke);
    assert_eq!(heartbeats.len(), 2, "a heartbeat to each follower at once: {heartbeats:?}");
    n1.step(woke + Duration::from_millis(5), N3, Message::HeartbeatResponse { term: 1, round: 0 });
    run_until(&mut n1, woke + Duration::from_millis(150));
    assert_eq!(n1.role(), Role::Leader, "n3 answered after the stall");
    assert_eq!(n1.counters().stalls_forgiven, 1);
}

#[test]
fn a_leader_back_from_a_stall_that_hears_no_follower_after_it_steps_down_a_timeout_later() {
    let (mut n1, woke) = leader_back_from_a_stall(stalls_forgiven());
    settle(&mut n1, woke);
    let mut now = woke;
    while n1.role() == Role::Leader {
        now = n1.next_deadline();
        n1.tick(now);
        settle(&mut n1, now);
    }
    assert_eq!(now, woke + Duration::from_millis(100), "one check-quorum window after the stall");
}
