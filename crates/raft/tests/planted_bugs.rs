//! Broken variants of the protocol (the `planted-bugs` feature) must be
//! caught within 10,000 seeds of the cluster harness of
//! `cluster_invariants.rs`. The switch is per thread: seeds run on the
//! test's thread.
//!
//! - Sending a vote before it is durable: two leaders in one term (last
//!   run: seed 281; `kv-linearizable` catches it too, see the scenarios).
//! - Committing an earlier term's entry by counting (Figure 8): a leader
//!   lacks a committed entry (last run: seed 809). Plain random faults did
//!   not find it in 10,000 seeds — the new leader's no-op leaves a narrow
//!   window — so the harness traps fresh leaders (see `set_trap`). The
//!   §5.4.2 transcript test also shows the variant commits by counting.

use crate::common;

use common::cluster::Cluster;
use common::*;
use haven_raft::planted::{Bug, plant};
use haven_raft::{AppendOutcome, Config, ConflictHint, DurableState, HardState, Message, Raft, Setup};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

const SEEDS_MAX: u64 = 10_000;

/// The first seed whose run breaks an invariant (the harness panics).
fn first_failing_seed(bug: Bug) -> Option<u64> {
    plant(Some(bug));
    let found = (0..SEEDS_MAX).find(|&seed| {
        let run = || {
            let mut cluster = Cluster::new(seed, if seed % 3 == 0 { 5 } else { 3 });
            cluster.run_faulty(1_500);
            cluster.run_until_quiet_commit(Duration::from_secs(20));
        };
        catch_unwind(AssertUnwindSafe(run)).is_err()
    });
    plant(None);
    found
}

/// The setup of `s5_4_2_figure_8_an_earlier_term_entry_is_committed_only_under_a_current_term_entry`:
/// with the bug planted, 2@t2 on a majority is committed by counting, so
/// that transcript test (which asserts commit index 0 there) fails.
#[test]
fn figure_8_commit_by_counting_fails_the_section_5_4_2_transcript() {
    let config = Config { entries_per_append_max: 1, ..config() };
    let durable =
        DurableState { hard_state: HardState { term: 3, vote: None }, entries: log_of(&[1, 2]), ..Default::default() };
    let mut n1 = Raft::restore(Setup { id: N1, voters: voters(5), config }, durable, rng(1), ms(0)).unwrap();
    let (_, t) = elect(&mut n1);
    for follower in [N2, N3] {
        let too_short = AppendOutcome::Rejected { prev_index: 2, hint: ConflictHint::LogTooShort { last_index: 1 } };
        n1.step(t, follower, Message::AppendResponse { term: 4, outcome: too_short });
    }
    let _ = n1.take_ready();
    plant(Some(Bug::CommitPreviousTermByCounting));
    n1.step(t, N2, accepted(4, 2));
    n1.step(t, N3, accepted(4, 2));
    let commit = n1.commit_index();
    plant(None);
    assert_eq!(commit, 2, "the planted variant commits 2@t2 by counting, where the correct core keeps 0");
}

#[test]
fn figure_8_commit_by_counting_is_caught() {
    let seed = first_failing_seed(Bug::CommitPreviousTermByCounting);
    let seed = seed.unwrap_or_else(|| panic!("committing by counting survived {SEEDS_MAX} seeds"));
    eprintln!("commit by counting caught at seed {seed}");
}

#[test]
fn sending_a_vote_before_it_is_durable_is_caught() {
    let seed = first_failing_seed(Bug::VoteBeforePersist);
    let seed = seed.unwrap_or_else(|| panic!("the early vote survived {SEEDS_MAX} seeds"));
    eprintln!("early vote caught at seed {seed}");
}
