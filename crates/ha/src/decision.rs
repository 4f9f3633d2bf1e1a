//! The decision log: what the coordinator decided, why, and which input
//! caused it, for the operator (`haven events`) and the dashboard.
//!
//! In: decisions from each step. Out: the last `len_max` of them, oldest
//! dropped first, so the replicated graph stays bounded.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub at_ms: u64,
    /// The service it concerns, if any.
    pub service: Option<String>,
    /// The decision and its reason in words.
    pub text: String,
    /// The input that caused it ("tick", "n3's lease expired", ...).
    pub cause: String,
}

impl fmt::Display for Decision {
    /// `12.345 s: moved db from n3 to n5: n3's lease expired at 12.300 s [tick]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} [{}]", secs(self.at_ms), self.text, self.cause)
    }
}

/// The bounded log of decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionLog {
    entries: VecDeque<Decision>,
    len_max: usize,
}

impl DecisionLog {
    pub fn new(len_max: usize) -> DecisionLog {
        assert!(len_max > 0, "a decision log that keeps nothing would hide every decision");
        DecisionLog { entries: VecDeque::new(), len_max }
    }

    pub fn push(&mut self, decision: Decision) {
        if self.entries.len() == self.len_max {
            self.entries.pop_front();
        }
        self.entries.push_back(decision);
        assert!(self.entries.len() <= self.len_max, "the decision log outgrew its bound");
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Decision> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len_max(&self) -> usize {
        self.len_max
    }
}

/// Milliseconds as seconds for people: `12345` → `12.345 s`.
pub fn secs(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}
