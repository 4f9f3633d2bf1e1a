//! A fixed slice of the `ha-failover` sweep, so `cargo test` alone runs the
//! coordinator, agents and fencing under faults end to end (CI sweeps more
//! seeds on the release build).

use haven_scenarios::ha::failover;
use haven_sim::sweep;

#[test]
fn ha_failover_seeds_0_to_99_pass() {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = sweep(0..100, jobs, |seed| failover::run(seed, None));
    let failures: Vec<String> = report.failures().map(|r| r.line()).collect();
    assert!(
        failures.is_empty(),
        "replay with `haven sim run --scenario ha-failover --seed N --trace`:\n{}",
        failures.join("\n")
    );
}
