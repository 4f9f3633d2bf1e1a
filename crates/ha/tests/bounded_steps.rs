//! The timed rules (re-issue, start timeouts, collection) act on at most
//! `overdue_per_step_max` records per step, the most overdue first, so
//! that one step always fits one log entry. Found by `ha-scale` at 10,000 agents: the boot's first re-issue
//! step re-sent 7,176 start commands, did not fit, and the leader could
//! not commit any step again.

use crate::common;

use common::*;
use haven_ha::{Event, InstanceId};

const LONG_MS: u64 = 1_000_000;

fn bounded(max: usize) -> World {
    let mut w = World::new();
    w.config.overdue_per_step_max = max;
    w
}

/// The instances a step sent commands for, in the order it sent them.
fn commanded(w: &mut World, now_ms: u64) -> Vec<u64> {
    w.raw(now_ms, Event::Tick).commands.iter().map(|c| c.instance.0).collect()
}

#[test]
fn a_step_re_sends_at_most_the_bound_the_longest_unacknowledged_first() {
    let mut w = bounded(2);
    for node in 1..=5 {
        w.join_for(0, node, &[], LONG_MS);
    }
    for (k, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        w.add(10 * (k as u64 + 1), singleton(name)); // i1 sent at 10, ..., i5 at 50
    }
    assert_eq!(commanded(&mut w, 600), [1, 2], "all five due; the two sent first go");
    assert_eq!(commanded(&mut w, 601), [3, 4]);
    assert_eq!(commanded(&mut w, 602), [5]);
    assert!(commanded(&mut w, 603).is_empty(), "nothing is due again before 500 ms pass");
    // i1 and i2 were re-sent at 600, i3 and i4 at 601: by send time, not id.
    assert_eq!(commanded(&mut w, 1_101), [1, 2]);
    let acked = Event::InstanceActive { instance: InstanceId(3), token: w.token(3) };
    let sent: Vec<u64> = w.raw(1_102, acked).commands.iter().map(|c| c.instance.0).collect();
    assert_eq!(sent, [4, 5], "i3 was the oldest due, but its start is acknowledged now");
}

#[test]
fn start_timeouts_and_collection_take_a_bounded_number_per_step() {
    let mut w = bounded(2);
    w.config.instance_terminal_keep_ms = 1_000;
    w.config.command_retry_ms = LONG_MS; // only the rules under test act
    for node in 1..=4 {
        w.join_for(0, node, &[], LONG_MS);
    }
    for name in ["a", "b", "c"] {
        let mut spec = singleton(name);
        spec.start_timeout_ms = 100;
        spec.restart.restarts_max = 0; // a failure stops it where it is
        w.add(10, spec);
    }
    let failed = |out: &Out| out.decisions.iter().filter(|d| d.contains("not active within")).count();
    assert_eq!(failed(&w.tick(200)), 2, "three starts late, two handled");
    assert_eq!(failed(&w.tick(201)), 1);
    for i in 1..=3 {
        w.exited(300 + i, i, 1); // the stops are confirmed: failed, kept for the operator to see
    }
    let removed = |out: Out| out.changes.iter().filter(|c| c.starts_with("remove")).count();
    assert_eq!(removed(w.tick(1_300)), 0, "kept for instance_terminal_keep_ms");
    assert_eq!(removed(w.tick(1_400)), 2, "three old enough, two go");
    assert_eq!(removed(w.tick(1_401)), 1);
}
