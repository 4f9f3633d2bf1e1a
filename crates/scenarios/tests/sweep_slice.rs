//! A small fixed slice of the `election` sweep, so that `cargo test` alone
//! exercises the protocol under faults (the full sweep of 2000 seeds is
//! `haven sim sweep --scenario election --seeds 0..2000`; CI runs 0..300).

use haven_scenarios::election;
use haven_sim::sweep;

#[test]
fn election_seeds_0_to_99_pass() {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = sweep(0..100, jobs, |seed| election::run(seed, None));
    let failures: Vec<String> = report.failures().map(|r| r.line()).collect();
    assert!(
        failures.is_empty(),
        "replay with `haven sim run --scenario election --seed N --trace`:\n{}",
        failures.join("\n")
    );
}
