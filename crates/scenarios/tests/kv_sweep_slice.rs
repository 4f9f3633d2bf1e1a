//! A small fixed slice of the `kv-linearizable` sweep, so `cargo test`
//! alone runs the replicated store under faults end to end (CI sweeps more
//! seeds on the release build).

use haven_scenarios::kv::linearizable;
use haven_sim::sweep;

#[test]
fn kv_linearizable_seeds_0_to_7_pass() {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = sweep(0..8, jobs, |seed| linearizable::run(seed, None));
    let failures: Vec<String> = report.failures().map(|r| r.line()).collect();
    assert!(
        failures.is_empty(),
        "replay with `haven sim run --scenario kv-linearizable --seed N --trace`:\n{}",
        failures.join("\n")
    );
}
