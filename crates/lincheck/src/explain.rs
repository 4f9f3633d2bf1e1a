//! The explanation of a key whose search found no linearization.
//!
//! In: the key's operations, the longest valid prefix the search found, and
//! the full history (for descriptions).
//! Out: a [`Violation`] naming the last change of that prefix and the
//! operations that could not go next, each with the reason the model gave.
//!
//! The prefix is where the search got furthest; the operations that must
//! take effect next (called before the earliest pending return) all conflict
//! with the state the prefix leaves. That is usually the smallest story a
//! human needs: "after this write, that read cannot have returned that".

use crate::describe;
use crate::history::Operation;
use crate::model::{KeyState, Kv, Mismatch};
use crate::owned::Owned;
use crate::partition::{KeyHistory, KeyInput, Seen};
use crate::search::{StepError, step_all};
use crate::verdict::{Limits, Partition, Violation};

/// Stuck operations listed in an explanation; the rest are counted.
const LISTED_LEN_MAX: usize = 4;

pub fn explain(
    key: &KeyHistory,
    history: &[Operation],
    deepest: &[usize],
    owned: &Owned,
    limits: &Limits,
) -> Violation {
    let mut states = vec![KeyState::default()];
    let mut placed = vec![false; key.ops.len()];
    for &i in deepest {
        states = step_all(&states, &key.ops[i], owned, limits).expect("the search found this prefix valid");
        placed[i] = true;
    }
    let deadline = (0..key.ops.len()).filter(|&i| !placed[i]).filter_map(|i| key.ops[i].return_ns).min();
    let next: Vec<usize> =
        (0..key.ops.len()).filter(|&i| !placed[i] && deadline.is_none_or(|d| key.ops[i].call_ns <= d)).collect();
    let mut text = format!(
        "no order of the key's {} operations fits both real time and the model. The longest valid order places {}",
        key.ops.len(),
        deepest.len()
    );
    let mut ops = Vec::new();
    if let Some(&last) = deepest.iter().rev().find(|&&i| !matches!(key.ops[i].input, KeyInput::Read)) {
        let op = key.ops[last].op;
        text += &format!(", last changing the key by {}", describe::op(op, &history[op]));
        ops.push(op);
    }
    text += &format!(", and leaves the key {}. ", state(key, &states));
    let mut refused = 0;
    for &i in &next {
        let Err(StepError::Mismatch(mismatch)) = step_all(&states, &key.ops[i], owned, limits) else { continue };
        refused += 1;
        if refused <= LISTED_LEN_MAX {
            let op = key.ops[i].op;
            text +=
                &format!("Then {} cannot take effect: {}. ", describe::op(op, &history[op]), reason(key, &mismatch));
            ops.push(op);
        }
    }
    if refused > LISTED_LEN_MAX {
        text += &format!("({} more cannot take effect either.) ", refused - LISTED_LEN_MAX);
    }
    let others = next.len() - refused;
    if others > 0 {
        text += &format!("{others} other operation(s) could go next, but every order after them fails too.");
    }
    ops.sort_unstable();
    ops.dedup();
    Violation { partition: Partition::Key(key.key.clone()), ops, explanation: text.trim_end().to_string() }
}

fn state(key: &KeyHistory, states: &[KeyState]) -> String {
    let first = states.first().expect("a valid prefix leaves at least one state");
    let kv = holds(key, first.kv);
    let alternatives =
        if states.len() > 1 { format!(" (one of {} possible states)", states.len()) } else { String::new() };
    format!("{kv} with the store at revision {} or later{alternatives}", first.floor)
}

fn holds(key: &KeyHistory, kv: Option<Kv>) -> String {
    match kv {
        None => "absent".to_string(),
        Some(kv) => {
            let revision = kv.mod_revision.known().map_or(format!(">= {}", kv.mod_revision.lo()), |r| r.to_string());
            let value = key.value_text(kv.value);
            format!("holding {value} (version {}, mod_revision {revision})", kv.version)
        }
    }
}

fn shows(key: &KeyHistory, seen: Option<Seen>) -> String {
    match seen {
        None => "absent".to_string(),
        Some(s) => {
            format!("holding {} (version {}, mod_revision {})", key.value_text(s.value), s.version, s.mod_revision)
        }
    }
}

fn reason(key: &KeyHistory, mismatch: &Mismatch) -> String {
    match *mismatch {
        Mismatch::Read { holds: h, returned } => {
            format!("it shows the key {} but the key is {}", shows(key, returned), holds(key, h))
        }
        Mismatch::ChangeNotAfter { revision, floor } => {
            format!("its change has revision {revision}, not above revision {floor} already reached")
        }
        Mismatch::RevisionBehind { revision, floor } => {
            format!("its response revision {revision} is below revision {floor} already reached")
        }
        Mismatch::DeletedMissing => "it deleted the key, which is absent".to_string(),
        Mismatch::NotDeleted { holds: h } => format!("it deleted nothing, but the key is {}", holds(key, Some(h))),
        Mismatch::Branch { compare_held, holds: h } => {
            let (claimed, actual) = if compare_held { ("held", "fails") } else { ("failed", "holds") };
            format!("it reports its compare {claimed}, but the compare {actual} on the key {}", holds(key, h))
        }
    }
}
