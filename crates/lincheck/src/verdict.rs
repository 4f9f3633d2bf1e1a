//! What the checker answers, and the limits it works within.
//!
//! In: nothing (plain types).
//! Out: [`Verdict`] for a history that is well formed, [`HistoryError`] for
//! one that is not (a bug in whoever recorded it, not in the store), and the
//! [`Limits`] a caller passes in.

use crate::history::OpId;
use std::fmt;

/// The checker's answer. Callers must count `Unknown` as a failure: a history
/// the checker could not decide has not been shown to be linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    Violation(Violation),
    /// The search ran out of `Limits::steps_max` (or its state set grew past
    /// `Limits::states_len_max`) while checking `partition`.
    Unknown {
        partition: Partition,
        steps: u64,
    },
}

/// A proof of non-linearizability, reduced to the fewest operations found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub partition: Partition,
    /// The conflicting operations, as indexes into the history.
    pub ops: Vec<OpId>,
    /// For a human: what each operation did and why they cannot all be right.
    pub explanation: String,
}

/// Where a violation was found.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Partition {
    /// The global revision order, checked across all keys.
    Revisions,
    /// The history of one key (with the part of every range read that covers it).
    Key(Vec<u8>),
    /// The shape of one response, e.g. a range returning keys out of order.
    Response(OpId),
}

/// Bounds on the checker's work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Search steps (tries to linearize an operation) over all keys. Memory
    /// grows with it: at most one memo entry per step, each about the key's
    /// operation count / 8 bytes plus 64 (so ~200 MB for 1M steps on a key with
    /// 1,000 operations, in the worst case; typical runs use a few percent).
    pub steps_max: u64,
    /// Possible key states tracked at once along one search path; more than one
    /// arises only when a txn compares the unknown revision of a timed-out write.
    pub states_len_max: usize,
    /// Operations in the history.
    pub ops_len_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { steps_max: 1_000_000, states_len_max: 64, ops_len_max: 1_000_000 }
    }
}

/// A history the checker refuses: the recorder, not the store, is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("operation {op} returns at {return_ns} ns, before its call at {call_ns} ns")]
    ReturnBeforeCall { op: OpId, call_ns: u64, return_ns: u64 },
    #[error("operation {op}: the output does not answer the input (a {input} answered by a {output})")]
    OutputKind { op: OpId, input: &'static str, output: &'static str },
    #[error(
        "operation {op} of client {client} is called at {call_ns} ns while the client's operation {previous} is still running"
    )]
    ClientOverlap { op: OpId, previous: OpId, client: u64, call_ns: u64 },
    #[error(
        "operation {op}: an answered expiry must name distinct keys, at least one, and delete each (it names {keys}, \
         {distinct} distinct, and deleted {deleted})"
    )]
    Expiry { op: OpId, keys: usize, distinct: usize, deleted: u64 },
    #[error("the history has {len} operations, more than the {len_max} allowed")]
    TooLong { len: usize, len_max: usize },
}

impl Verdict {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }

    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Verdict::Violation(violation) => Some(violation),
            _ => None,
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partition::Revisions => write!(f, "global revisions"),
            Partition::Key(key) => write!(f, "key {}", crate::describe::bytes(key)),
            Partition::Response(op) => write!(f, "response of op #{op}"),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(f, "linearizable"),
            Verdict::Violation(v) => {
                write!(f, "NOT linearizable ({}; ops {:?}): {}", v.partition, v.ops, v.explanation)
            }
            Verdict::Unknown { partition, steps } => {
                write!(f, "UNKNOWN: gave up on {partition} after {steps} steps (counts as a failure)")
            }
        }
    }
}
