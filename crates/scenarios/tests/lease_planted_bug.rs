//! Planted bug (d) that the `lease` sweep must catch within 10,000 seeds: a
//! new leader that expires leases by the deadlines it had before it led,
//! without restarting them (TTL + one election timeout) at promotion. And,
//! for the liveness checker, a leader that never expires anything; for the
//! linearizability check of the holders' puts and gets (with the deletions
//! by expiry in the history), planted bug (b): a leader answering gets from
//! its own state without ReadIndex. The broken variants live only in the
//! tests, as wrappers around the real replica.

use crate::common;

use common::expiry::ExpiresWithoutExtension;
use common::{LeaderLocalReads, Plant, Planted};
use haven_scenarios::kv::lease;
use haven_scenarios::kv::node::StationReplica;
use haven_station::{Replica, ReplicaConfig, ReplicaTimer};

/// A replica whose lease tick does nothing: abandoned leases live forever.
#[derive(Debug)]
struct NeverExpires;

impl Plant for NeverExpires {
    fn timer(&mut self, timer: ReplicaTimer) -> bool {
        timer == ReplicaTimer::Lease
    }
}

fn first_failure<R: StationReplica>(wrap: fn(Replica) -> R) -> String {
    first_failure_within(10_000, wrap)
}

fn first_failure_within<R: StationReplica>(seeds_max: u64, wrap: fn(Replica) -> R) -> String {
    let failure = (0..seeds_max)
        .map(|seed| lease::run_with(seed, None, move |config: ReplicaConfig| wrap(Replica::new(config))))
        .find(|report| !report.is_ok())
        .unwrap_or_else(|| panic!("the planted lease bug went unnoticed for {seeds_max} seeds"));
    println!("caught: {}", failure.line());
    failure.line()
}

#[test]
fn a_leader_that_never_expires_leases_is_caught_after_healing() {
    let line = first_failure(|replica| Planted { replica, plant: NeverExpires });
    assert!(line.contains("are held by no running client yet not revoked"), "caught by another checker: {line}");
}

#[test]
fn expiring_leases_after_a_leader_change_without_the_extension_is_caught() {
    let line = first_failure(ExpiresWithoutExtension::new);
    assert!(line.contains("acknowledged TTL"), "caught by another checker: {line}");
}

/// Caught at seed 63 when this was written (a holder's get answered by a
/// deposed leader at a revision below a put another holder had seen
/// acknowledged before the get was called).
#[test]
fn gets_answered_from_the_leaders_state_without_read_index_are_caught_by_linearizability() {
    let line = first_failure_within(300, |replica| Planted { replica, plant: LeaderLocalReads });
    assert!(line.contains("linearizability"), "caught by another checker: {line}");
}
