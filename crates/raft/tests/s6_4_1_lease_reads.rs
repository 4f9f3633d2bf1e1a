//! Thesis §6.4.1 reads from a leader lease: the lease runs from the moment
//! the latest heartbeat round a majority answered left the leader, for
//! `election_timeout_min / (1 + drift)` (100 ms / 1.01 here); it is void
//! before the leader's first commit in its term and during a transfer; and
//! the voters' side of the promise holds across term changes and restarts.

use crate::common;

use common::*;
use haven_raft::{Config, HardState, LeaseError, Message, Raft};
use haven_runtime::Instant;
use std::time::Duration;

fn lease_config() -> Config {
    Config { lease_reads: true, ..config() }
}

/// `caught_up_leader` with leases; heartbeat round 1 left at `t + 20 ms`
/// and n2 answered it at `t + 25 ms`.
fn leased_leader() -> (Raft, Instant) {
    let (mut n1, t) = caught_up_leader_with(lease_config());
    assert_eq!(n1.lease_read(t), Err(LeaseError::NoLease), "no round answered yet");
    let beat = t + Duration::from_millis(20);
    n1.tick(beat);
    n1.take_ready();
    n1.step(beat + Duration::from_millis(5), N2, Message::HeartbeatResponse { term: 1, round: 1 });
    (n1, beat)
}

#[test]
fn s6_4_1_the_lease_runs_from_when_the_answered_round_left_for_the_drift_adjusted_timeout() {
    let (mut n1, sent) = leased_leader();
    // 100 ms / (1 + 10_000 ppm) = 99_009_900 ns, rounded down.
    let end = sent + Duration::from_nanos(99_009_900);
    assert_eq!(n1.lease_read(sent + Duration::from_millis(5)), Ok(1));
    assert_eq!(n1.lease_read(end - Duration::from_nanos(1)), Ok(1));
    assert_eq!(n1.lease_read(end), Err(LeaseError::NoLease));
    assert!(n1.take_ready().messages.is_empty(), "a lease read sends nothing");
}

#[test]
fn s6_4_1_a_later_answered_round_extends_the_lease() {
    let (mut n1, sent) = leased_leader();
    let second = sent + Duration::from_millis(20);
    n1.tick(second);
    n1.take_ready();
    n1.step(second + Duration::from_millis(5), N3, Message::HeartbeatResponse { term: 1, round: 2 });
    // Round 1's lease would end at second + 79 ms; round 2's runs to second + 99 ms.
    assert_eq!(n1.lease_read(second + Duration::from_millis(98)), Ok(1), "from round 2's departure");
    assert_eq!(n1.lease_read(second + Duration::from_millis(100)), Err(LeaseError::NoLease));
}

#[test]
fn s6_4_1_leases_are_off_unless_configured() {
    let (mut n1, t) = caught_up_leader();
    let beat = t + Duration::from_millis(20);
    n1.tick(beat);
    n1.take_ready();
    n1.step(beat, N2, Message::HeartbeatResponse { term: 1, round: 1 });
    assert_eq!(n1.lease_read(beat), Err(LeaseError::NoLease));
    let mut n2 = fresh(N2, 3);
    assert_eq!(n2.lease_read(ms(0)), Err(LeaseError::NotLeader { leader_hint: None }));
}

#[test]
fn s6_4_1_no_lease_during_a_leadership_transfer() {
    let (mut n1, sent) = leased_leader();
    n1.transfer_leader(N2).unwrap();
    assert_eq!(n1.lease_read(sent + Duration::from_millis(10)), Err(LeaseError::NoLease));
}

#[test]
fn s6_4_1_no_lease_before_the_leader_commits_an_entry_of_its_term() {
    let setup = haven_raft::Setup { id: N1, voters: voters(3), config: lease_config() };
    let durable = haven_raft::DurableState {
        hard_state: HardState { term: 1, vote: None },
        entries: log_of(&[1, 1]),
        ..Default::default()
    };
    let mut n1 = Raft::restore(setup, durable, rng(1), ms(0)).unwrap();
    elect(&mut n1);
    let beat = n1.next_deadline();
    n1.tick(beat);
    n1.take_ready();
    n1.step(beat, N2, Message::HeartbeatResponse { term: 2, round: 1 });
    assert_eq!(n1.lease_read(beat), Err(LeaseError::NoLease), "commit 0 may lag entries 1..=2");
    n1.step(beat, N2, accepted(2, 3));
    assert_eq!(n1.lease_read(beat), Ok(3));
}

#[test]
fn s6_4_1_a_voter_keeps_its_promise_across_a_term_change_and_a_restart() {
    let mut n3 =
        Raft::new(haven_raft::Setup { id: N3, voters: voters(3), config: lease_config() }, rng(3), ms(0)).unwrap();
    assert!(n3.step_vote_ignored(ms(50)), "within election_timeout_min of a restart: no vote");
    n3.step(ms(200), N1, Message::Heartbeat { term: 1, commit: 0, round: 1 });
    settle(&mut n3, ms(200));
    // A higher term arrives from elsewhere; the leader of term 1 was heard 10 ms ago.
    n3.step(ms(210), N2, Message::HeartbeatResponse { term: 2, round: 0 });
    assert_eq!((n3.term(), n3.leader()), (2, None));
    n3.step(ms(220), N2, Message::Vote { term: 2, last_log: pos(0, 0), transfer: false });
    assert_eq!(settle(&mut n3, ms(220)), vec![], "still within 100 ms of the old leader");
    n3.step(ms(301), N2, Message::Vote { term: 2, last_log: pos(0, 0), transfer: false });
    let granted = Message::VoteResponse { term: 2, granted: true };
    assert_eq!(settle(&mut n3, ms(301)), vec![to(N2, granted)]);
}

trait VoteProbe {
    fn step_vote_ignored(&mut self, now: Instant) -> bool;
}

impl VoteProbe for Raft {
    /// Asks for a vote in the next term from n2; true if it was ignored.
    fn step_vote_ignored(&mut self, now: Instant) -> bool {
        let ignored = self.counters().votes_ignored_in_lease;
        let term = self.term() + 1;
        self.step(now, N2, Message::Vote { term, last_log: pos(9, 9), transfer: false });
        self.counters().votes_ignored_in_lease == ignored + 1
    }
}
