//! The command a replica proposes to Raft for a client request.
//!
//! In: a client id, sequence number and store request. Out: the opaque
//! bytes Raft replicates, and back. Decoding is defensive: a command that
//! does not decode is a broken invariant (only replicas propose), reported
//! as an error, never a panic on the bytes themselves.

use haven_runtime::wire::{self, WireError};
use haven_store::Request;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub client: u64,
    pub seq: u64,
    pub request: Request,
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        wire::encode(self, &mut out).expect("a command always encodes");
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, WireError> {
        wire::decode(bytes)
    }
}
