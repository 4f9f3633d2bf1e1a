//! Planted bugs in the Raft core (the `planted-bugs` feature): the
//! `kv-linearizable` sweep must catch each within 10,000 seeds. The switch
//! is per thread, so the seeds run one after another on the test's thread.

use haven_raft::planted::{plant, Bug};
use haven_scenarios::kv::linearizable;

const SEEDS_MAX: u64 = 10_000;

fn first_failure(bug: Bug) -> String {
    plant(Some(bug));
    let failure = (0..SEEDS_MAX).map(|seed| linearizable::run(seed, None)).find(|r| !r.is_ok());
    plant(None);
    let failure = failure.unwrap_or_else(|| panic!("{bug:?} went unnoticed for {SEEDS_MAX} seeds"));
    println!("{bug:?} caught: {}", failure.line());
    failure.line()
}

#[test]
fn committing_a_previous_terms_entry_by_counting_is_caught() {
    let line = first_failure(Bug::CommitPreviousTermByCounting);
    assert!(line.contains("violation"), "{line}");
}

#[test]
fn voting_before_the_vote_is_durable_is_caught() {
    let line = first_failure(Bug::VoteBeforePersist);
    assert!(line.contains("violation"), "{line}");
}
