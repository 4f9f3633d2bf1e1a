//! Watch events (etcd's `mvccpb.Event`).
//!
//! In: one change from the store's history. Out: what a watcher receives:
//! a PUT with the new key-value, or a DELETE whose key-value carries only
//! the key and the deleting revision, each with the previous key-value when
//! the store still has it.

use crate::key_value::KeyValue;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev_kv: Option<KeyValue>,
}
