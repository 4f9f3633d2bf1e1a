//! The client history the checker reads: one [`Operation`] per client call.
//!
//! In: what a workload recorded — who called, when, with which [`Input`], and
//! when and with which [`Output`] the call returned, if it did.
//! Out: nothing; these are plain data types shared by every other module.
//!
//! The model is etcd v3's, cut down to what the checker can reason about:
//! byte keys and values, a global revision that grows by one on every change,
//! and per key a `version` (puts since creation) and a `mod_revision` (the
//! revision of the key's last change). Every response carries the store's
//! revision at the moment the operation took effect (etcd's header revision);
//! for an operation that changed something it is the revision of that change.
//! Lease expiries and revokes enter as [`Input::Expire`]: deletions no client
//! called, known from the store's own history. `create_revision`, lease
//! grants and keep-alives, limits on ranges and client multi-key deletes are
//! not modelled.

/// Who issued an operation; a client issues one operation at a time.
pub type ClientId = u64;

/// Index of an operation in the history slice given to the checker.
pub type OpId = usize;

/// One client call and, if it came, its response. Times are simulation
/// nanoseconds; only their order matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub client: ClientId,
    pub call_ns: u64,
    pub input: Input,
    /// `None`: the call timed out or its response was lost. The operation may
    /// or may not have taken effect, at any time after `call_ns`.
    pub response: Option<Response>,
}

/// The end of a call that returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub return_ns: u64,
    pub output: Output,
}

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Get {
        key: Vec<u8>,
    },
    /// `prev_kv`: the response reports the key as it was before the put.
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        prev_kv: bool,
    },
    Delete {
        key: Vec<u8>,
    },
    Range {
        range: KeyRange,
    },
    /// If `compare` holds on `key`, apply `on_success` to `key`, else read `key`.
    Txn {
        key: Vec<u8>,
        compare: Compare,
        on_success: TxnWrite,
    },
    /// A change no client called: the store deleted `keys` (distinct, at
    /// least one) at one revision, as a lease's expiry or revoke does. It is
    /// answered by [`Output::Delete`] with `deleted` equal to the number of
    /// keys — each listed key existed and is gone — or not at all (it then
    /// may or may not have happened, and the keys are checked one by one,
    /// without their shared revision). Having no client, its `client` is
    /// ignored and it may overlap anything. The recorder gives it the widest
    /// window it knows (say, called at 0 and returned at the end of the
    /// run): the revision pins where it goes.
    Expire {
        keys: Vec<Vec<u8>>,
    },
}

/// What the store answered. `revision` is always the response header's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Get {
        revision: u64,
        kv: Option<KeyValue>,
    },
    /// `prev` is only looked at when the put asked for `prev_kv`.
    Put {
        revision: u64,
        prev: Option<KeyValue>,
    },
    /// `deleted` is 0 or 1 for a [`Input::Delete`] (the number of keys for an
    /// [`Input::Expire`]); a delete of nothing changes nothing, so its
    /// `revision` is the current one rather than a new one.
    Delete {
        revision: u64,
        deleted: u64,
    },
    /// Sorted by key, one entry per existing key in the range.
    Range {
        revision: u64,
        kvs: Vec<KeyValue>,
    },
    Txn {
        revision: u64,
        outcome: TxnOutcome,
    },
}

/// A key as a read returns it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub mod_revision: u64,
    pub version: u64,
}

/// Keys `[start, end)`; `end: None` means no upper bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

/// A txn's condition on its key. As in etcd, a value comparison on a missing
/// key is false, and a missing key has version 0 and mod_revision 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    pub target: CompareTarget,
    pub op: CompareOp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    Value(Vec<u8>),
    Version(u64),
    ModRevision(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    Greater,
}

/// The write a txn does when its compare holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnWrite {
    Put { value: Vec<u8> },
    Delete,
}

/// Which branch a txn took and what that branch returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOutcome {
    /// The compare held and the put was applied.
    Put,
    /// The compare held and the delete removed `deleted` (0 or 1) keys.
    Deleted { deleted: u64 },
    /// The compare failed; the key as the else-branch get read it.
    Got { kv: Option<KeyValue> },
}

impl KeyRange {
    /// All keys starting with `prefix` (etcd's prefix range end).
    pub fn prefix(prefix: &[u8]) -> Self {
        let mut end = prefix.to_vec();
        while let Some(last) = end.pop() {
            if last < u8::MAX {
                end.push(last + 1);
                return KeyRange { start: prefix.to_vec(), end: Some(end) };
            }
        }
        KeyRange { start: prefix.to_vec(), end: None }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }
}

impl Input {
    /// The single key the operation touches; `None` for a range or an expiry.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Input::Get { key } | Input::Put { key, .. } | Input::Delete { key } | Input::Txn { key, .. } => Some(key),
            Input::Range { .. } | Input::Expire { .. } => None,
        }
    }

    /// Every key the operation names: its key, or an expiry's keys (none for a range).
    pub fn named_keys(&self) -> &[Vec<u8>] {
        match self {
            Input::Get { key } | Input::Put { key, .. } | Input::Delete { key } | Input::Txn { key, .. } => {
                std::slice::from_ref(key)
            }
            Input::Expire { keys } => keys,
            Input::Range { .. } => &[],
        }
    }

    /// Whether a client called it (an expiry is the store's own doing).
    pub fn has_client(&self) -> bool {
        !matches!(self, Input::Expire { .. })
    }

    /// Whether the operation can never change the store, so that it may be
    /// dropped when its response is missing.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Input::Get { .. } | Input::Range { .. })
    }
}

impl Output {
    pub fn revision(&self) -> u64 {
        match self {
            Output::Get { revision, .. }
            | Output::Put { revision, .. }
            | Output::Delete { revision, .. }
            | Output::Range { revision, .. }
            | Output::Txn { revision, .. } => *revision,
        }
    }

    /// Whether the response says the store changed, so that `revision` is the
    /// new revision this operation created (unique in the history).
    pub fn is_change(&self) -> bool {
        match self {
            Output::Put { .. } => true,
            Output::Delete { deleted, .. } => *deleted > 0,
            Output::Txn { outcome, .. } => match outcome {
                TxnOutcome::Put => true,
                TxnOutcome::Deleted { deleted } => *deleted > 0,
                TxnOutcome::Got { .. } => false,
            },
            Output::Get { .. } | Output::Range { .. } => false,
        }
    }
}

impl TxnOutcome {
    pub fn succeeded(&self) -> bool {
        !matches!(self, TxnOutcome::Got { .. })
    }
}
