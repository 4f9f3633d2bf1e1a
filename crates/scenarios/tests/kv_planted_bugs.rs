//! Planted consensus bugs that the `kv-linearizable` sweep must catch. Each
//! broken variant lives only in the tests, as a wrapper around the real
//! replica (planted bug (b) in `common`, as `lease` must catch it too).

use crate::common;

use common::{LeaderLocalReads, Planted};
use haven_scenarios::kv::linearizable;
use haven_sim::RunReport;
use haven_station::{Replica, ReplicaConfig};

fn first_failure(seeds_max: u64, run: impl Fn(u64) -> RunReport) -> Option<RunReport> {
    (0..seeds_max).map(run).find(|report| !report.is_ok())
}

#[test]
fn reads_from_the_leaders_state_without_read_index_are_caught() {
    let failure = first_failure(10_000, |seed| {
        linearizable::run_with(seed, None, |config: ReplicaConfig| Planted {
            replica: Replica::new(config),
            plant: LeaderLocalReads,
        })
    })
    .expect("stale reads of a deposed leader went unnoticed for 10,000 seeds");
    println!("caught: {}", failure.line());
    assert!(failure.line().contains("linearizability"), "{}", failure.line());
}
