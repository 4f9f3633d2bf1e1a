//! Planted bugs: deliberately broken variants of the protocol, for the
//! tests that prove the simulator and its checkers catch them.
//!
//! In: the bugs a test switches on for its own thread. Out: answers to
//! "is this bug on?" at the points where the protocol would go wrong.
//! Compiled only with the `planted-bugs` feature; production builds have
//! neither the switches nor the broken paths. A thread-local, rather than
//! a configuration field, keeps the switches out of every public type.

use std::cell::Cell;

/// One broken variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// Commit an index once a majority holds it, whatever the term of its
    /// entry (the Figure 8 mistake, §5.4.2).
    CommitPreviousTermByCounting,
    /// Send a vote before the vote is durable (§5.2 and the durability order).
    VoteBeforePersist,
}

thread_local! {
    static ACTIVE: Cell<Option<Bug>> = const { Cell::new(None) };
}

/// Switches `bug` on (or everything off, with `None`) for this thread.
pub fn plant(bug: Option<Bug>) {
    ACTIVE.with(|active| active.set(bug));
}

pub(crate) fn active(bug: Bug) -> bool {
    ACTIVE.with(|active| active.get() == Some(bug))
}
