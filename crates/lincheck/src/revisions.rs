//! The cheap global check of revisions, across all keys.
//!
//! In: the history (already validated).
//! Out: the first violation of these rules, if any:
//! - every change (a put, a delete that removed a key, a txn whose branch
//!   changed its key) has its own revision, greater than 0;
//! - revisions follow real time: if A returned before B was called, B's
//!   revision is at least A's, and strictly greater if B is a change (every
//!   response's revision is the store's revision when the operation took
//!   effect, and the store's revision only grows).
//!
//! Not checked here: that revisions have no gaps (timed-out writes and
//! clients outside the history may fill them), and anything about values —
//! that is the per-key search's job.

use crate::describe;
use crate::history::{OpId, Operation};
use crate::verdict::{Partition, Violation};
use std::collections::BTreeMap;

pub fn check(history: &[Operation]) -> Option<Violation> {
    unique_changes(history).or_else(|| real_time_order(history))
}

fn unique_changes(history: &[Operation]) -> Option<Violation> {
    let mut owner: BTreeMap<u64, OpId> = BTreeMap::new();
    for (id, op) in history.iter().enumerate() {
        let Some(response) = &op.response else { continue };
        if !response.output.is_change() {
            continue;
        }
        let revision = response.output.revision();
        if revision == 0 {
            return Some(violation(vec![id], format!("{} changed the store at revision 0", describe::op(id, op))));
        }
        if let Some(&other) = owner.get(&revision) {
            let text = format!(
                "two changes share revision {revision}: {} and {}",
                describe::op(other, &history[other]),
                describe::op(id, op)
            );
            return Some(violation(vec![other, id], text));
        }
        owner.insert(revision, id);
    }
    None
}

/// Sweeps calls in time order, keeping the highest revision among the
/// operations that returned strictly before the current call.
fn real_time_order(history: &[Operation]) -> Option<Violation> {
    let mut calls: Vec<OpId> = (0..history.len()).filter(|&id| history[id].response.is_some()).collect();
    let mut returns = calls.clone();
    calls.sort_by_key(|&id| history[id].call_ns);
    returns.sort_by_key(|&id| history[id].response.as_ref().map(|r| r.return_ns));
    let mut returned = returns.into_iter().peekable();
    let mut highest: Option<(u64, OpId)> = None;
    for id in calls {
        let op = &history[id];
        while let Some(&done) = returned.peek() {
            let response = history[done].response.as_ref().expect("only answered operations are swept");
            if response.return_ns >= op.call_ns {
                break;
            }
            let revision = response.output.revision();
            if highest.is_none_or(|(r, _)| revision > r) {
                highest = Some((revision, done));
            }
            returned.next();
        }
        let output = &op.response.as_ref().expect("only answered operations are swept").output;
        if let Some((before, earlier)) = highest
            && (output.revision() < before || (output.is_change() && output.revision() == before))
        {
            let text = format!(
                "revisions go backwards in real time: {} returned before {} was called, yet the later one's revision \
                 {} is {} {before}",
                describe::op(earlier, &history[earlier]),
                describe::op(id, op),
                output.revision(),
                if output.is_change() { "not above" } else { "below" },
            );
            return Some(violation(vec![earlier, id], text));
        }
    }
    None
}

fn violation(ops: Vec<OpId>, explanation: String) -> Violation {
    Violation { partition: Partition::Revisions, ops, explanation }
}
