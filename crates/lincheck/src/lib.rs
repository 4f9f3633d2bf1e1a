//! Linearizability checking of client histories against an etcd-like
//! versioned key-value model.
//!
//! In: a history — one [`Operation`] per client call, with call and return
//! times and the store's response, or none if the call timed out — and
//! [`Limits`] on the work to do.
//! Out: a [`Verdict`]: linearizable, a [`Violation`] that names the
//! conflicting operations and explains the conflict, or unknown (the search
//! gave up; callers count that as a failure). A malformed history is a
//! [`HistoryError`].
//!
//! How, in order (each stage only runs if the previous found nothing):
//! 1. [`validate`]: the recorder's rules, and responses no state could produce.
//! 2. [`revisions`]: changes have unique revisions that follow real time, and
//!    no response revision is below one that completed before the call —
//!    the global revision ties the keys together, and this is where it is
//!    checked, cheaply, across all of them.
//! 3. Per key ([`partition`], as Porcupine decomposes by partition): direct
//!    proofs of stale reads, lost updates and values never written
//!    ([`direct`]), then the Wing–Gong/Lowe search ([`search`]) against the
//!    single-key model ([`model`]), which also tracks what the key's history
//!    says about the global revision. Range reads are split by key and pinned
//!    to their header revision (see [`partition`] for what that does and does
//!    not check).
//!
//! Timed-out operations may take effect at any time after their call, or
//! never; timed-out reads are dropped.
//!
//! Deletions the store made on its own (a lease's expiry or revoke) are
//! [`Input::Expire`] operations: output known, timing not — the recorder
//! gives them the widest window and their revision places them.
//!
//! Not checked: `create_revision`, lease grants and keep-alives, range limits
//! and counts, client multi-key deletes and txns (the model has none); that
//! revisions have no gaps; a range's consistency across keys where only
//! writes that timed out (revision unknown) could explain it, and likewise
//! that an unanswered expiry's keys vanish together. Revisions are assumed to come from
//! one store where every change takes a new, higher revision, as in etcd.

pub mod describe;
pub mod direct;
pub mod explain;
pub mod history;
pub mod memo;
pub mod model;
pub mod owned;
pub mod partition;
pub mod rev_range;
pub mod revisions;
pub mod search;
pub mod validate;
pub mod verdict;

pub use history::{
    ClientId, Compare, CompareOp, CompareTarget, Input, KeyRange, KeyValue, OpId, Operation, Output, Response,
    TxnOutcome, TxnWrite,
};
pub use verdict::{HistoryError, Limits, Partition, Verdict, Violation};

use partition::KeyHistory;
use search::Outcome;

/// Checks `history` for linearizability against the versioned KV model.
pub fn check(history: &[Operation], limits: Limits) -> Result<Verdict, HistoryError> {
    let mut verdict = decide(history, limits)?;
    if let Verdict::Violation(violation) = &mut verdict {
        violation.ops.sort_unstable();
        violation.ops.dedup();
    }
    Ok(verdict)
}

fn decide(history: &[Operation], limits: Limits) -> Result<Verdict, HistoryError> {
    if history.len() > limits.ops_len_max {
        return Err(HistoryError::TooLong { len: history.len(), len_max: limits.ops_len_max });
    }
    if let Some(violation) = validate::validate(history)? {
        return Ok(Verdict::Violation(violation));
    }
    if let Some(violation) = revisions::check(history) {
        return Ok(Verdict::Violation(violation));
    }
    let owned = owned::Owned::new(history);
    let keys = KeyHistory::split(history);
    if let Some(violation) = keys.iter().find_map(|key| direct::find(key, history, &owned)) {
        return Ok(Verdict::Violation(violation));
    }
    let mut steps_left = limits.steps_max;
    let mut undecided = None;
    for key in &keys {
        let before = steps_left;
        match search::search(key, &owned, &limits, &mut steps_left) {
            Outcome::Linearizable => {}
            Outcome::Stuck { deepest } => {
                return Ok(Verdict::Violation(explain::explain(key, history, &deepest, &owned, &limits)));
            }
            Outcome::GaveUp => {
                let partition = Partition::Key(key.key.clone());
                undecided.get_or_insert(Verdict::Unknown { partition, steps: before - steps_left });
            }
        }
    }
    Ok(undecided.unwrap_or(Verdict::Linearizable))
}
