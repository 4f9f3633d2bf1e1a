//! Per-key decomposition of a history (as Porcupine partitions by key).
//!
//! In: a validated history.
//! Out: one [`KeyHistory`] per key, holding every operation that touches the
//! key, compiled to the per-key model's terms with values interned.
//!
//! A range read is split into one read per known key inside its range: the
//! key's entry in the result, or "absent" if the result does not list it.
//! Each part keeps the range's call and return times and its header
//! revision. This is sound (a real linearization of the whole history
//! projects to a valid one per key) and, because a read at header revision h
//! must come after every change to the key with a revision <= h and before
//! every change above h, each part is pinned to the state of its key at
//! revision h. So the parts see one snapshot as long as writes' revisions are
//! known; what is not checked is a range's consistency across keys when the
//! only writes that could explain it timed out (their revision is unknown).
//! Keys are "known" when some operation names them (inputs and range results);
//! a range that returns a key nobody wrote fails that key's check.
//! An expiry is split the same way, into one delete per key it names, each
//! keeping the expiry's revision (shared, so [`crate::owned::Owned`] gives it
//! to the expiry once).
//! Read-only operations without a response are dropped: they changed nothing.

use crate::history::{
    Compare, CompareOp, CompareTarget, Input, KeyRange, KeyValue, OpId, Operation, Output, TxnOutcome, TxnWrite,
};
use std::collections::{BTreeMap, BTreeSet};

/// Index into [`KeyHistory::values`]; ids follow the byte order of values.
pub type ValueId = u32;

/// The operations on one key.
#[derive(Clone, Debug)]
pub struct KeyHistory {
    pub key: Vec<u8>,
    pub ops: Vec<KeyOp>,
    /// The values responses show or compares name, sorted and distinct
    /// (with every written value too, if a txn compares values by order).
    pub values: Vec<Vec<u8>>,
    /// The id shared by all other written values, if there are any.
    pub unobserved: Option<ValueId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOp {
    /// The operation in the full history (a range contributes to several keys).
    pub op: OpId,
    pub call_ns: u64,
    /// `None` for an operation that may take effect at any time after its call.
    pub return_ns: Option<u64>,
    pub input: KeyInput,
    pub output: Option<KeyOutput>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyInput {
    /// A get, or one key's part of a range.
    Read,
    Put {
        value: ValueId,
        prev_kv: bool,
    },
    Delete,
    Txn {
        compare: KeyCompare,
        write: KeyWrite,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyCompare {
    Value(CompareOp, ValueId),
    Version(CompareOp, u64),
    ModRevision(CompareOp, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyWrite {
    Put(ValueId),
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOutput {
    Read { revision: u64, seen: Option<Seen> },
    Put { revision: u64, prev: Option<Seen> },
    Delete { revision: u64, deleted: bool },
    Txn { revision: u64, branch: TxnBranch },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnBranch {
    Put,
    Deleted(bool),
    Got(Option<Seen>),
}

impl KeyOutput {
    /// Where the response puts the operation in revision order: its revision,
    /// and for equal revisions the change before the reads that see it. On one
    /// key, answered operations can only take effect in this order.
    pub fn revision_order(&self) -> (u64, bool) {
        match *self {
            KeyOutput::Read { revision, .. } => (revision, true),
            KeyOutput::Put { revision, .. } => (revision, false),
            KeyOutput::Delete { revision, deleted } => (revision, !deleted),
            KeyOutput::Txn { revision, branch } => {
                (revision, !matches!(branch, TxnBranch::Put | TxnBranch::Deleted(true)))
            }
        }
    }
}

/// The key as a response showed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub value: ValueId,
    pub version: u64,
    pub mod_revision: u64,
}

impl KeyHistory {
    /// The value for a human.
    pub fn value_text(&self, id: ValueId) -> String {
        match self.values.get(id as usize) {
            Some(value) => crate::describe::bytes(value),
            None => "a value no response shows".to_string(),
        }
    }

    /// Splits `history` by key; keys come out in byte order.
    pub fn split(history: &[Operation]) -> Vec<KeyHistory> {
        let keys = known_keys(history);
        let mut parts: BTreeMap<&[u8], Vec<(OpId, &Operation)>> = keys.iter().map(|k| (k.as_slice(), vec![])).collect();
        for (id, op) in history.iter().enumerate() {
            if op.response.is_none() && op.input.is_read_only() {
                continue;
            }
            match &op.input {
                Input::Range { range } => {
                    for (_, ops) in parts.range_mut::<[u8], _>(range_bounds(range)) {
                        ops.push((id, op));
                    }
                }
                other => {
                    for key in other.named_keys() {
                        parts.get_mut(key.as_slice()).expect("every named key is known").push((id, op));
                    }
                }
            }
        }
        parts.into_iter().map(|(key, ops)| compile(key, &ops)).collect()
    }
}

fn range_bounds(range: &KeyRange) -> (std::ops::Bound<&[u8]>, std::ops::Bound<&[u8]>) {
    use std::ops::Bound;
    let end = range.end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(range.start.as_slice()), end)
}

fn known_keys(history: &[Operation]) -> BTreeSet<Vec<u8>> {
    let mut keys = BTreeSet::new();
    for op in history {
        keys.extend(op.input.named_keys().iter().cloned());
        if let Some(Output::Range { kvs, .. }) = op.response.as_ref().map(|r| &r.output) {
            keys.extend(kvs.iter().map(|kv| kv.key.clone()));
        }
    }
    keys
}

fn compile(key: &[u8], ops: &[(OpId, &Operation)]) -> KeyHistory {
    let values = Interner::collect(key, ops);
    let ops = ops.iter().map(|&(id, op)| values.compile(key, id, op)).collect();
    KeyHistory { key: key.to_vec(), ops, values: values.sorted, unobserved: values.unobserved }
}

/// The values of one key's operations, numbered in byte order so that ids
/// compare as the values do (txn value compares use `<` and `>`).
///
/// Values that are written but that no response shows and no compare names
/// share one id when no txn compares values by order: such values cannot be
/// told apart by anything the history shows, and sharing the id makes
/// timed-out puts of them interchangeable for the search (a client that
/// writes unique values gets many of them during a partition).
struct Interner {
    sorted: Vec<Vec<u8>>,
    unobserved: Option<ValueId>,
}

impl Interner {
    fn collect(key: &[u8], ops: &[(OpId, &Operation)]) -> Interner {
        let mut observed = BTreeSet::new();
        let mut written = BTreeSet::new();
        let mut ordered = false;
        for (_, op) in ops {
            match &op.input {
                Input::Put { value, .. } | Input::Txn { on_success: TxnWrite::Put { value }, .. } => {
                    written.insert(value.clone());
                }
                _ => {}
            }
            if let Input::Txn { compare: Compare { target: CompareTarget::Value(v), op }, .. } = &op.input {
                observed.insert(v.clone());
                ordered |= matches!(op, CompareOp::Less | CompareOp::Greater);
            }
            if let Some(response) = &op.response {
                observed.extend(seen_kvs(key, &response.output).map(|kv| kv.value.clone()));
            }
        }
        if ordered {
            observed.append(&mut written);
        }
        let sorted: Vec<Vec<u8>> = observed.into_iter().collect();
        let has_unobserved = written.iter().any(|v| sorted.binary_search(v).is_err());
        let unobserved = has_unobserved.then(|| Self::to_id(sorted.len()));
        Interner { sorted, unobserved }
    }

    fn to_id(index: usize) -> ValueId {
        ValueId::try_from(index).expect("a key's history names fewer than 2^32 values")
    }

    fn id(&self, value: &[u8]) -> ValueId {
        match self.sorted.binary_search_by(|v| v.as_slice().cmp(value)) {
            Ok(index) => Self::to_id(index),
            Err(_) => self.unobserved.expect("a value missing from the sorted ones is unobserved"),
        }
    }

    fn compile(&self, key: &[u8], op: OpId, operation: &Operation) -> KeyOp {
        let input = match &operation.input {
            Input::Get { .. } | Input::Range { .. } => KeyInput::Read,
            Input::Put { value, prev_kv, .. } => KeyInput::Put { value: self.id(value), prev_kv: *prev_kv },
            // Each key's part of an expiry: a delete that removed it.
            Input::Delete { .. } | Input::Expire { .. } => KeyInput::Delete,
            Input::Txn { compare, on_success, .. } => {
                let compare = match &compare.target {
                    CompareTarget::Value(v) => KeyCompare::Value(compare.op, self.id(v)),
                    CompareTarget::Version(n) => KeyCompare::Version(compare.op, *n),
                    CompareTarget::ModRevision(r) => KeyCompare::ModRevision(compare.op, *r),
                };
                let write = match on_success {
                    TxnWrite::Put { value } => KeyWrite::Put(self.id(value)),
                    TxnWrite::Delete => KeyWrite::Delete,
                };
                KeyInput::Txn { compare, write }
            }
        };
        let prev_kv = matches!(operation.input, Input::Put { prev_kv: true, .. });
        let output = operation.response.as_ref().map(|r| self.output(key, &r.output, prev_kv));
        KeyOp {
            op,
            call_ns: operation.call_ns,
            return_ns: operation.response.as_ref().map(|r| r.return_ns),
            input,
            output,
        }
    }

    /// `prev_kv`: whether a put asked for its previous value (else it is ignored).
    fn output(&self, key: &[u8], output: &Output, prev_kv: bool) -> KeyOutput {
        let revision = output.revision();
        let seen = |kv: Option<&KeyValue>| {
            kv.map(|kv| Seen { value: self.id(&kv.value), version: kv.version, mod_revision: kv.mod_revision })
        };
        match output {
            Output::Get { kv, .. } => KeyOutput::Read { revision, seen: seen(kv.as_ref()) },
            Output::Range { kvs, .. } => KeyOutput::Read { revision, seen: seen(kvs.iter().find(|kv| kv.key == key)) },
            Output::Put { prev, .. } => KeyOutput::Put { revision, prev: seen(prev.as_ref().filter(|_| prev_kv)) },
            Output::Delete { deleted, .. } => KeyOutput::Delete { revision, deleted: *deleted > 0 },
            Output::Txn { outcome, .. } => {
                let branch = match outcome {
                    TxnOutcome::Put => TxnBranch::Put,
                    TxnOutcome::Deleted { deleted } => TxnBranch::Deleted(*deleted > 0),
                    TxnOutcome::Got { kv } => TxnBranch::Got(seen(kv.as_ref())),
                };
                KeyOutput::Txn { revision, branch }
            }
        }
    }
}

/// The entries of `output` that show `key`.
fn seen_kvs<'a>(key: &'a [u8], output: &'a Output) -> impl Iterator<Item = &'a KeyValue> + 'a {
    let list: &[KeyValue] = match output {
        Output::Get { kv, .. } | Output::Put { prev: kv, .. } | Output::Txn { outcome: TxnOutcome::Got { kv }, .. } => {
            kv.as_slice()
        }
        Output::Range { kvs, .. } => kvs,
        _ => &[],
    };
    list.iter().filter(move |kv| kv.key == key)
}
