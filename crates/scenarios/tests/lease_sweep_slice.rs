//! A fixed slice of the `lease` sweep, so `cargo test` alone runs leases
//! under faults end to end (CI sweeps more seeds on the release build).

use haven_scenarios::kv::lease;
use haven_sim::sweep;

#[test]
fn lease_seeds_0_to_31_pass() {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = sweep(0..32, jobs, |seed| lease::run(seed, None));
    let failures: Vec<String> = report.failures().map(|r| r.line()).collect();
    assert!(
        failures.is_empty(),
        "replay with `haven sim run --scenario lease --seed N --trace`:\n{}",
        failures.join("\n")
    );
}
