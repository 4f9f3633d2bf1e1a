//! The value of one key as clients see it (etcd's `mvccpb.KeyValue`).
//!
//! In: a key and its state at some revision. Out: the record every range,
//! put (`prev_kv`), delete (`prev_kvs`) and watch event returns.

use crate::lease_id::LeaseId;
use serde::{Deserialize, Serialize};

/// One key at one revision. `version` counts the puts since the key was
/// (re)created, `create_revision` is the revision of the first of them and
/// `mod_revision` the revision of the last; `lease` is 0 when none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    #[serde(with = "haven_runtime::byte_vec")]
    pub key: Vec<u8>,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
    #[serde(with = "haven_runtime::byte_vec")]
    pub value: Vec<u8>,
    pub lease: LeaseId,
}
