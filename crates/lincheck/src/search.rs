//! The Wing–Gong search with Lowe's memoization, over one key's operations,
//! steered by revisions.
//!
//! In: a [`KeyHistory`], the revisions answered changes own, the limits, and
//! the steps left in the caller's budget.
//! Out: [`Outcome::Linearizable`], [`Outcome::Stuck`] with the longest valid
//! prefix found (for the explanation), or [`Outcome::GaveUp`].
//!
//! Calls and returns sit in one list in time order (a call before a return at
//! the same instant: touching operations count as concurrent). At each depth
//! the search tries the calls before the first pending return; if the model
//! accepts one and the (linearized set, states) configuration is new, it
//! removes that operation's entries and goes one level deeper, else it tries
//! the next call; when none is left it takes back the last operation. It
//! succeeds once every answered operation is placed: the rest can take effect
//! afterwards, or never.
//!
//! What keeps it fast (each rule only skips configurations that cannot
//! lead to a linearization):
//! - *revision order*: on one key, an answered operation can only follow the
//!   answered ones below it in (revision, change before read) order — the
//!   model's `floor` would refuse them afterwards — so only the earliest
//!   unplaced ones are tried, and none if they are not callable yet;
//! - *free revisions*: a timed-out change takes a revision no answered change
//!   owns, and must stay below the next answered operation in that order;
//! - *answered first*: timed-out operations are tried after answered ones;
//! - *no-ops*: a timed-out operation that changes nothing now is not placed now;
//! - *twins*: of timed-out operations with the same input, the earlier-called
//!   is placed first.

use crate::memo::{Linearized, Memo};
use crate::model::{KeyState, Mismatch};
use crate::owned::Owned;
use crate::partition::{KeyHistory, KeyInput, KeyOp};
use crate::verdict::Limits;
use std::collections::{BTreeMap, BTreeSet};

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
pub fn step_all(states: &[KeyState], op: &KeyOp, owned: &Owned, limits: &Limits) -> Result<Vec<KeyState>, StepError> {
    let mut next = Vec::with_capacity(states.len());
    let mut first_error = None;
    for state in states {
        if let Err(e) = state.step(op, owned, &mut next) {
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

/// Which calls are tried: answered ones first, then those without a
/// response. An operation without a response only matters if some later
/// response needs it, so trying it last finds linearizations with less
/// backtracking when many calls timed out; the space searched is the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Answered,
    Unanswered,
}

/// One linearized operation, the states from before it, and the pass it was tried in.
struct Frame {
    op: usize,
    states: Vec<KeyState>,
    pass: Pass,
}

/// Where the search is: the configuration and the next call to try.
struct Search<'a> {
    ops: &'a [KeyOp],
    limits: &'a Limits,
    owned: &'a Owned,
    entries: Entries,
    linearized: Linearized,
    memo: Memo,
    states: Vec<KeyState>,
    stack: Vec<Frame>,
    deepest: Vec<usize>,
    /// Answered operations not yet placed, in revision order.
    unplaced: BTreeSet<((u64, bool), usize)>,
    cursor: usize,
    pass: Pass,
    /// For an operation without a response, the one with the same input and
    /// no response called just before it (see [`twins`]).
    twin_before: Vec<Option<usize>>,
}

/// Links each operation without a response to the previous one (by call
/// time) with the same input. Two such operations are interchangeable once
/// both are called, so the search only ever places the earlier-called first:
/// placing the later one instead reaches the same states under another name.
fn twins(ops: &[KeyOp]) -> Vec<Option<usize>> {
    let mut unanswered: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].return_ns.is_none()).collect();
    unanswered.sort_by_key(|&i| (ops[i].call_ns, i));
    let mut last: BTreeMap<KeyInput, usize> = BTreeMap::new();
    let mut twin_before = vec![None; ops.len()];
    for i in unanswered {
        twin_before[i] = last.insert(ops[i].input, i);
    }
    twin_before
}

/// Searches for a linearization of `history`, spending at most `*steps_left` steps.
pub fn search(history: &KeyHistory, owned: &Owned, limits: &Limits, steps_left: &mut u64) -> Outcome {
    let mut search = Search::new(&history.ops, owned, limits);
    while !search.unplaced.is_empty() {
        let Some(node) = search.next_candidate() else {
            if search.backtrack() {
                continue;
            }
            return Outcome::Stuck { deepest: search.deepest };
        };
        if *steps_left == 0 {
            return Outcome::GaveUp;
        }
        *steps_left -= 1;
        if search.try_linearize(node) == Err(StepError::TooManyStates) {
            return Outcome::GaveUp;
        }
    }
    assert_eq!(search.linearized.len(), search.stack.len(), "the stack holds exactly the linearized operations");
    Outcome::Linearizable
}

impl<'a> Search<'a> {
    fn new(ops: &'a [KeyOp], owned: &'a Owned, limits: &'a Limits) -> Self {
        let entries = Entries::new(ops);
        let cursor = entries.next[HEAD];
        Search {
            ops,
            limits,
            owned,
            entries,
            linearized: Linearized::new(ops.len()),
            memo: Memo::default(),
            states: vec![KeyState::default()],
            stack: Vec::new(),
            deepest: Vec::new(),
            unplaced: ops.iter().enumerate().filter_map(|(i, op)| Some((op.output?.revision_order(), i))).collect(),
            cursor,
            pass: Pass::Answered,
            twin_before: twins(ops),
        }
    }

    /// The next call entry to try at this depth: calls before the first
    /// pending return (an operation called later cannot go before it).
    fn next_candidate(&mut self) -> Option<usize> {
        let (first_order, _) =
            *self.unplaced.first().expect("the search stops once every answered operation is placed");
        let earliest = self.unplaced.iter().take_while(|(order, _)| *order == first_order);
        if !earliest.clone().any(|&(_, op)| self.callable(op)) {
            // What returns before they are called comes later in revision order: a dead end.
            return None;
        }
        loop {
            if self.cursor == NIL || !self.entries.is_call[self.cursor] {
                if self.pass == Pass::Unanswered {
                    return None;
                }
                self.pass = Pass::Unanswered;
                self.cursor = self.entries.next[HEAD];
                continue;
            }
            let op = self.entries.op[self.cursor];
            let answered = self.ops[op].return_ns.is_some();
            let twin_waits = self.twin_before[op].is_some_and(|twin| !self.linearized.contains(twin));
            // An answered operation placed before one earlier in revision
            // order would make that one fail, so only the earliest may go.
            let out_of_order = self.ops[op].output.is_some_and(|o| o.revision_order() != first_order);
            if answered == (self.pass == Pass::Answered) && !twin_waits && !out_of_order {
                return Some(self.cursor);
            }
            self.cursor = self.entries.next[self.cursor];
        }
    }

    /// Whether `op` is called before the earliest pending return.
    fn callable(&self, op: usize) -> bool {
        let mut node = self.entries.next[HEAD];
        while node != NIL && self.entries.is_call[node] {
            node = self.entries.next[node];
        }
        node == NIL || self.ops[op].call_ns <= self.ops[self.entries.op[node]].return_ns.expect("a return entry")
    }

    /// Linearizes the operation of call entry `node` next if the model allows
    /// it and the configuration is new; otherwise moves on to the next entry.
    fn try_linearize(&mut self, node: usize) -> Result<(), StepError> {
        let op = self.entries.op[node];
        self.cursor = self.entries.next[node];
        let mut next = match step_all(&self.states, &self.ops[op], self.owned, self.limits) {
            Ok(next) => next,
            Err(StepError::Mismatch(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.ops[op].return_ns.is_none() {
            // A timed-out change must fit below the next answered operation in
            // revision order: states it pushes past that are dead already.
            let (revision, is_read) = self.unplaced.first().expect("answered operations remain").0;
            next.retain(|state| if is_read { state.floor <= revision } else { state.floor < revision });
            // One that changes nothing now is never needed now: every
            // continuation from after it also works without it, as it can
            // always take effect last (or never).
            if next.is_empty() || next == self.states {
                return Ok(());
            }
        }
        self.linearized.insert(op);
        if !self.memo.insert(&self.linearized, &next) {
            self.linearized.remove(op);
            return Ok(());
        }
        self.entries.lift(op);
        if let Some(output) = &self.ops[op].output {
            self.unplaced.remove(&(output.revision_order(), op));
        }
        let states = std::mem::replace(&mut self.states, next);
        self.stack.push(Frame { op, states, pass: self.pass });
        if self.stack.len() > self.deepest.len() {
            self.deepest = self.stack.iter().map(|f| f.op).collect();
        }
        self.cursor = self.entries.next[HEAD];
        self.pass = Pass::Answered;
        Ok(())
    }

    /// Takes back the last linearized operation; false if there is none.
    fn backtrack(&mut self) -> bool {
        let Some(frame) = self.stack.pop() else { return false };
        self.linearized.remove(frame.op);
        self.entries.unlift(frame.op);
        if let Some(output) = &self.ops[frame.op].output {
            self.unplaced.insert((output.revision_order(), frame.op));
        }
        self.states = frame.states;
        self.pass = frame.pass;
        self.cursor = self.entries.next[self.entries.call_of[frame.op]];
        true
    }
}
