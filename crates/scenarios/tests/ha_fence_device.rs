//! The fence device of `ha-failover`: a planted device that confirms a
//! fence without cutting the power must be caught by the sweep, and the
//! figures for what an honest one buys (crash to replacement active, with
//! and without a device), printed, not asserted on time.

use haven_scenarios::ha::failover::{self, TTL_SECONDS};
use haven_scenarios::ha::fence::TokenFence;
use haven_scenarios::ha::fence_device::{DeviceKind, configured};
use haven_scenarios::ha::fence_recovery::crash_to_active;
use haven_station::Replica;
use std::time::Duration;

const SEEDS_MAX: u64 = 10_000;

/// Planted bug: the device reports success and leaves the machine running.
/// Caught at seed 1 when written (the first seed with a device).
#[test]
fn a_device_that_confirms_without_fencing_is_caught() {
    let failure = (0..SEEDS_MAX)
        .filter(|&seed| configured(seed))
        .map(|seed| {
            failover::run_with_device(seed, None, Replica::new, TokenFence::boxed, DeviceKind::ConfirmsWithoutFencing)
        })
        .find(|report| !report.is_ok())
        .unwrap_or_else(|| panic!("the lying fence device went unnoticed for {SEEDS_MAX} seeds"));
    let line = failure.line();
    println!("caught: {line}");
    let caught = line.contains("was reported fenced") || line.contains("an old holder is still active");
    assert!(caught, "caught by another checker: {line}");
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Prints p50 and max of crash-to-active over 20 seeds, without and with
/// a device. Fails only if a replacement never comes, or if the device
/// makes things slower than the lease (which it is there to beat).
#[test]
fn crash_to_replacement_with_and_without_a_fence_device() {
    let mut medians = Vec::new();
    for with_device in [false, true] {
        let mut times: Vec<Duration> = (100..120)
            .map(|seed| crash_to_active(seed, with_device).unwrap_or_else(|| panic!("seed {seed}: db never moved")))
            .collect();
        times.sort();
        let (p50, max) = (percentile(&times, 50), times[times.len() - 1]);
        let label = if with_device { "with a fence device" } else { "lease expiry only " };
        println!(
            "crash to db active elsewhere, {label}: p50 {p50:?}, p90 {:?}, max {max:?} over {} seeds (TTL {TTL_SECONDS} s)",
            percentile(&times, 90),
            times.len()
        );
        medians.push(p50);
    }
    assert!(medians[1] < medians[0], "the device should beat the lease: {medians:?}");
}
