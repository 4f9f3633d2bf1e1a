//! Reads from a leader lease (thesis §6.4.1), when `Config::lease_reads`.
//!
//! In: the clock, on the leader.
//! Out: the index a read must wait for (the commit index), without any
//! message, while the lease holds; `LeaseError::NoLease` otherwise (the
//! caller falls back to `read_index`).
//!
//! Why it holds: the lease starts when the latest heartbeat round a quorum
//! answered left the leader. Each voter of that quorum heard it later, and
//! then refuses every (non-transfer) vote for `election_timeout_min` by its
//! own clock — even across a restart and a term change (see
//! `Config::lease_reads`) — so no other leader can be elected before that
//! much time passed at the fastest of those clocks. Under the drift bound
//! `clock_drift_ppm_max`, that is at least `election_timeout_min / (1 +
//! drift)` on the leader's clock. The lease is void during a leadership
//! transfer (the target's votes bypass those refusals) and before the
//! leader committed an entry of its term (its commit index may lag).
//! If the clocks drift more than assumed, lease reads can be stale:
//! ReadIndex does not depend on clocks.

use crate::error::LeaseError;
use crate::raft::{Raft, RoleState};
use haven_runtime::Instant;
use std::time::Duration;

const PPM: u128 = 1_000_000;

impl Raft {
    /// The index to serve a read at now, if the lease holds at `now`.
    pub fn lease_read(&mut self, now: Instant) -> Result<u64, LeaseError> {
        self.advance_clock(now);
        let RoleState::Leader(leadership) = &self.role else {
            return Err(LeaseError::NotLeader { leader_hint: self.leader });
        };
        let Some(start) = leadership.lease_start.filter(|_| self.config.lease_reads) else {
            return Err(LeaseError::NoLease);
        };
        let usable = leadership.transfer.is_none() && self.commit >= leadership.term_start;
        if !usable || self.now >= start + self.lease_duration() {
            return Err(LeaseError::NoLease);
        }
        Ok(self.commit)
    }

    /// `election_timeout_min / (1 + drift)`, rounded down.
    fn lease_duration(&self) -> Duration {
        let min = self.config.election_timeout_min.as_nanos();
        let nanos = min * PPM / (PPM + u128::from(self.config.clock_drift_ppm_max));
        Duration::from_nanos(u64::try_from(nanos).expect("shorter than the election timeout"))
    }
}
