//! The commands a replica proposes to Raft: client requests, member table
//! changes, and the leader's own lease expiries and compactions.
//!
//! In: a client id, sequence number and store request, or a lease the
//! leader found expired. Out: the opaque bytes Raft replicates, and back.
//! Decoding is defensive: a command that does not decode is a broken
//! invariant (only replicas propose), reported as an error, never a panic
//! on the bytes themselves.
//!
//! Expiry is not a client command: it carries no session, because no
//! client waits for it and a repeat is harmless (the second revoke finds
//! the lease gone and changes nothing). Keeping it a separate variant also
//! lets every replica tell an expiry from a client's revoke when it applies.

use crate::members::MemberOp;
use crate::msg::HaReport;
use haven_ha::{Event, Step};
use haven_runtime::wire::{self, WireError};
use haven_store::{LeaseId, Request};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A client's request, applied once per (client, seq) by the sessions.
    Client { client: u64, seq: u64, request: Request },
    /// The leader's lessor found this lease past its deadline: revoke it
    /// and delete its keys.
    ExpireLease { lease: LeaseId },
    /// The leader's auto-compaction: drop the history before `revision`.
    CompactHistory { revision: u64 },
    /// A change to the member table, by the operator's session (client,
    /// seq); the leader's own seed of the initial members uses (0, 0).
    Member { client: u64, seq: u64, op: MemberOp },
    /// An agent's or the operator's report for the coordinator's queue;
    /// `ack`: the session waiting for it to be queued, if any.
    Ha { ack: Option<(u64, u64)>, report: HaReport },
    /// The coordinator's decision, computed on graph `version` at cluster
    /// time `now_ms`, deciding about queued event `consumed` (none: a tick).
    HaStep { version: u64, consumed: Option<u64>, now_ms: u64, step: Step },
    /// The reports of one proxy batch, queued in their order in one entry.
    HaEvents { events: Vec<Event> },
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

#[cfg(test)]
mod tests {
    use super::*;
    use haven_store::LeaseRevokeRequest;

    #[test]
    fn a_client_revoke_and_an_expiry_of_the_same_lease_stay_distinct() {
        let client = Command::Client { client: 1, seq: 1, request: Request::LeaseRevoke(LeaseRevokeRequest { id: 7 }) };
        let expiry = Command::ExpireLease { lease: 7 };
        assert_eq!(Command::decode(&client.encode()), Ok(client.clone()));
        assert_eq!(Command::decode(&expiry.encode()), Ok(expiry.clone()));
        assert_ne!(client.encode(), expiry.encode());
    }
}
