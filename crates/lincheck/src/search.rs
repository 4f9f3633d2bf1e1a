//! The Wing–Gong search with Lowe's memoization, over one key's operations.
//!
//! In: a [`KeyHistory`], the limits, and the steps left in the caller's budget.
//! Out: [`Outcome::Linearizable`], [`Outcome::Stuck`] with the longest valid
//! prefix found (for the explanation), or [`Outcome::GaveUp`].
//!
//! Calls and returns sit in one list in time order (a call before a return at
//! the same instant: touching operations count as concurrent). The search
//! walks the list from its head: at a call it tries to linearize that
//! operation next — if the model accepts it and the (linearized set, states)
//! configuration is new, it removes the operation's call and return from the
//! list and starts again at the head; at a return (an operation that had to
//! take effect by then but has not) or at the end, it takes back the last
//! operation and tries the call after it. An operation without a response has
//! no return, so it never blocks; the search succeeds once every answered
//! operation is placed, since the rest can always take effect afterwards (the
//! model accepts any operation with no response in any state).

use crate::memo::{Linearized, Memo};
use crate::model::{KeyState, Mismatch};
use crate::partition::{KeyHistory, KeyOp};
use crate::verdict::Limits;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Linearizable,
    /// No linearization exists; `deepest` is the longest valid prefix the
    /// search found, as indexes into the key's operations, in order.
    Stuck {
        deepest: Vec<usize>,
    },
    GaveUp,
}

/// Why an operation cannot go next from a set of possible states.
#[derive(Debug, PartialEq, Eq)]
pub enum StepError {
    Mismatch(Mismatch),
    TooManyStates,
}

/// The possible states after `op` from any of `states`, sorted and distinct.
pub fn step_all(states: &[KeyState], op: &KeyOp, limits: &Limits) -> Result<Vec<KeyState>, StepError> {
    let mut next = Vec::with_capacity(states.len());
    let mut first_error = None;
    for state in states {
        if let Err(e) = state.step(op, &mut next) {
            first_error.get_or_insert(e);
        }
    }
    if next.is_empty() {
        return Err(StepError::Mismatch(first_error.expect("no successor means some state refused")));
    }
    next.sort_unstable();
    next.dedup();
    if next.len() > limits.states_len_max {
        return Err(StepError::TooManyStates);
    }
    Ok(next)
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// The doubly linked list of call and return entries (node 0 is the head).
struct Entries {
    op: Vec<usize>,
    is_call: Vec<bool>,
    prev: Vec<usize>,
    next: Vec<usize>,
    call_of: Vec<usize>,
    return_of: Vec<Option<usize>>,
}

impl Entries {
    fn new(ops: &[KeyOp]) -> Entries {
        // (time, 0 for a call / 1 for a return, op)
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call_ns, 0, i));
            if let Some(ret) = op.return_ns {
                events.push((ret, 1, i));
            }
        }
        events.sort_unstable();
        let len = events.len() + 1;
        let mut entries = Entries {
            op: vec![NIL; len],
            is_call: vec![false; len],
            prev: (0..len).map(|n| n.wrapping_sub(1)).collect(),
            next: (1..=len).map(|n| if n == len { NIL } else { n }).collect(),
            call_of: vec![NIL; ops.len()],
            return_of: vec![None; ops.len()],
        };
        for (n, &(_, kind, op)) in events.iter().enumerate() {
            let node = n + 1;
            entries.op[node] = op;
            entries.is_call[node] = kind == 0;
            if kind == 0 {
                entries.call_of[op] = node;
            } else {
                entries.return_of[op] = Some(node);
            }
        }
        entries
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    /// Undoes `unlink(node)`; undos must come in reverse order.
    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        if let Some(ret) = self.return_of[op] {
            self.unlink(ret);
        }
    }

    fn unlift(&mut self, op: usize) {
        if let Some(ret) = self.return_of[op] {
            self.relink(ret);
        }
        self.relink(self.call_of[op]);
    }
}

/// One linearized operation and the states from before it.
struct Frame {
    op: usize,
    states: Vec<KeyState>,
}

/// Searches for a linearization of `history`, spending at most `*steps_left` steps.
pub fn search(history: &KeyHistory, limits: &Limits, steps_left: &mut u64) -> Outcome {
    let ops = &history.ops;
    let answered = ops.iter().filter(|op| op.return_ns.is_some()).count();
    let mut answered_placed = 0;
    let mut entries = Entries::new(ops);
    let mut linearized = Linearized::new(ops.len());
    let mut memo = Memo::default();
    let mut states = vec![KeyState::default()];
    let mut stack: Vec<Frame> = Vec::new();
    let mut deepest: Vec<usize> = Vec::new();
    let mut cursor = entries.next[HEAD];
    while answered_placed < answered {
        if cursor == NIL || !entries.is_call[cursor] {
            let Some(frame) = stack.pop() else { return Outcome::Stuck { deepest } };
            linearized.remove(frame.op);
            entries.unlift(frame.op);
            answered_placed -= usize::from(ops[frame.op].return_ns.is_some());
            states = frame.states;
            cursor = entries.next[entries.call_of[frame.op]];
            continue;
        }
        if *steps_left == 0 {
            return Outcome::GaveUp;
        }
        *steps_left -= 1;
        let op = entries.op[cursor];
        match step_all(&states, &ops[op], limits) {
            Err(StepError::TooManyStates) => return Outcome::GaveUp,
            Err(StepError::Mismatch(_)) => cursor = entries.next[cursor],
            Ok(next) => {
                linearized.insert(op);
                if !memo.insert(&linearized, &next) {
                    linearized.remove(op);
                    cursor = entries.next[cursor];
                    continue;
                }
                entries.lift(op);
                answered_placed += usize::from(ops[op].return_ns.is_some());
                stack.push(Frame { op, states: std::mem::replace(&mut states, next) });
                if stack.len() > deepest.len() {
                    deepest = stack.iter().map(|f| f.op).collect();
                }
                cursor = entries.next[HEAD];
            }
        }
    }
    assert_eq!(linearized.len(), stack.len(), "the stack holds exactly the linearized operations");
    Outcome::Linearizable
}
