//! Direct proofs of the classic anomalies, found without a search.
//!
//! In: one key's operations (and the full history, for revisions of other
//! keys and for descriptions).
//! Out: the first violation found, naming the two or three operations that
//! conflict, or `None` (which proves nothing: the search decides).
//!
//! Each rule below holds in every linearizable execution of the etcd model,
//! so a hit is a real violation:
//! - *never written*: a response shows value v with mod_revision m, but no
//!   put of v on this key could have revision m (no timed-out put of v, no
//!   answered put of v at m), or revision m belongs to another change;
//! - *stale read*: a change C at revision r returned before a read R was
//!   called, yet R shows the key at a mod_revision below r (or absent, when C
//!   left it present and no delete can have revision above r);
//! - *lost update*: two changing txns succeeded with the same `mod_revision ==
//!   m` compare (a change moves mod_revision past m for good), or with the same
//!   `version == n` compare on a key nothing can delete (versions then only grow).

use crate::describe;
use crate::history::{CompareOp, OpId, Operation};
use crate::owned::Owned;
use crate::partition::{KeyCompare, KeyHistory, KeyInput, KeyOp, KeyOutput, KeyWrite, Seen, TxnBranch, ValueId};
use crate::verdict::{Partition, Violation};
use std::collections::BTreeMap;

pub fn find(key: &KeyHistory, history: &[Operation], owned: &Owned) -> Option<Violation> {
    never_written(key, history, owned).or_else(|| stale_read(key, history)).or_else(|| lost_update(key, history))
}

/// What the operation showed of the key, if it showed it.
fn shown(op: &KeyOp) -> Option<Option<Seen>> {
    match (&op.input, op.output.as_ref()?) {
        (_, KeyOutput::Read { seen, .. }) => Some(*seen),
        (KeyInput::Put { prev_kv: true, .. }, KeyOutput::Put { prev, .. }) => Some(*prev),
        (_, KeyOutput::Txn { branch: TxnBranch::Got(seen), .. }) => Some(*seen),
        _ => None,
    }
}

/// The value the operation puts, and its revision if it was answered as a change.
fn put_of(op: &KeyOp) -> Option<(ValueId, Option<u64>)> {
    let value = match op.input {
        KeyInput::Put { value, .. } | KeyInput::Txn { write: KeyWrite::Put(value), .. } => value,
        _ => return None,
    };
    match op.output {
        None => Some((value, None)),
        Some(KeyOutput::Put { revision, .. }) | Some(KeyOutput::Txn { revision, branch: TxnBranch::Put }) => {
            Some((value, Some(revision)))
        }
        Some(_) => None,
    }
}

fn never_written(key: &KeyHistory, history: &[Operation], owned: &Owned) -> Option<Violation> {
    for reader in &key.ops {
        let Some(Some(seen)) = shown(reader) else { continue };
        // Revisions of changes are unique (checked before), so a timed-out put
        // cannot have a revision that an answered change owns.
        let free = owned.owner(seen.mod_revision).is_none();
        let could_write = |op: &KeyOp| {
            put_of(op).is_some_and(|(v, rev)| v == seen.value && rev.map_or(free, |r| r == seen.mod_revision))
        };
        if key.ops.iter().any(could_write) {
            continue;
        }
        let value = key.value_text(seen.value);
        let mut text = format!(
            "{} shows value {value} with mod_revision {}, but no put of {value} on this key can have that revision",
            describe::op(reader.op, &history[reader.op]),
            seen.mod_revision
        );
        let mut ops = vec![reader.op];
        if let Some(owner) = owned.owner(seen.mod_revision) {
            text += &format!("; revision {} is that of {}", seen.mod_revision, describe::op(owner, &history[owner]));
            ops.push(owner);
        }
        return Some(violation(key, ops, text));
    }
    None
}

fn stale_read(key: &KeyHistory, history: &[Operation]) -> Option<Violation> {
    let mut changes: Vec<&KeyOp> = key.ops.iter().filter(|op| change_revision(op).is_some()).collect();
    changes.sort_by_key(|op| op.return_ns);
    let mut readers: Vec<(&KeyOp, Option<Seen>)> = key.ops.iter().filter_map(|op| Some((op, shown(op)?))).collect();
    readers.sort_by_key(|(op, _)| op.call_ns);
    let delete_revision_max = key.ops.iter().filter_map(delete_revision).max();
    let mut done = changes.into_iter().peekable();
    let mut latest: Option<(&KeyOp, u64)> = None;
    for (reader, seen) in readers {
        while let Some(change) = done.next_if(|c| c.return_ns.is_some_and(|t| t < reader.call_ns)) {
            let revision = change_revision(change).expect("only changes are swept");
            if latest.is_none_or(|(_, r)| revision > r) {
                latest = Some((change, revision));
            }
        }
        let Some((change, revision)) = latest else { continue };
        let stale = match seen {
            Some(seen) => seen.mod_revision < revision,
            None => put_of(change).is_some() && delete_revision_max.is_none_or(|d| d <= revision),
        };
        if stale {
            let shows = seen.map_or("the key absent".to_string(), |s| format!("mod_revision {}", s.mod_revision));
            let text = format!(
                "stale read: {} returned before {} was called, so the reader had to see revision {revision} of the key \
                 or a later one, but it shows {shows}",
                describe::op(change.op, &history[change.op]),
                describe::op(reader.op, &history[reader.op]),
            );
            return Some(violation(key, vec![change.op, reader.op], text));
        }
    }
    None
}

/// The revision of an answered change to the key.
fn change_revision(op: &KeyOp) -> Option<u64> {
    match op.output? {
        KeyOutput::Put { revision, .. }
        | KeyOutput::Delete { revision, deleted: true }
        | KeyOutput::Txn { revision, branch: TxnBranch::Put | TxnBranch::Deleted(true) } => Some(revision),
        _ => None,
    }
}

/// The revision a delete may have had: `u64::MAX` if its response is missing.
fn delete_revision(op: &KeyOp) -> Option<u64> {
    let deletes = matches!(op.input, KeyInput::Delete | KeyInput::Txn { write: KeyWrite::Delete, .. });
    match op.output {
        _ if !deletes => None,
        None => Some(u64::MAX),
        Some(KeyOutput::Delete { revision, deleted: true })
        | Some(KeyOutput::Txn { revision, branch: TxnBranch::Deleted(true) }) => Some(revision),
        Some(_) => None,
    }
}

fn lost_update(key: &KeyHistory, history: &[Operation]) -> Option<Violation> {
    let deletable =
        key.ops.iter().any(|op| matches!(op.input, KeyInput::Delete | KeyInput::Txn { write: KeyWrite::Delete, .. }));
    let mut first: BTreeMap<KeyCompare, OpId> = BTreeMap::new();
    for op in &key.ops {
        let KeyInput::Txn { compare, .. } = op.input else { continue };
        let exclusive = match compare {
            // A missing key has mod_revision 0 again after each delete.
            KeyCompare::ModRevision(CompareOp::Equal, m) => m != 0 || !deletable,
            KeyCompare::Version(CompareOp::Equal, _) => !deletable,
            _ => false,
        };
        if !exclusive || change_revision(op).is_none() {
            continue;
        }
        if let Some(&other) = first.get(&compare) {
            let text = format!(
                "lost update: {} and {} both succeeded and changed the key under the same compare, but whichever \
                 took effect first made that compare false for the other",
                describe::op(other, &history[other]),
                describe::op(op.op, &history[op.op]),
            );
            return Some(violation(key, vec![other, op.op], text));
        }
        first.insert(compare, op.op);
    }
    None
}

fn violation(key: &KeyHistory, ops: Vec<OpId>, explanation: String) -> Violation {
    Violation { partition: Partition::Key(key.key.clone()), ops, explanation }
}
