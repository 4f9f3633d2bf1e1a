//! The leader's lease clock.
//!
//! In: leases granted and revoked as the log applies them, keep-alives
//! from clients, leadership changes, and the leader's monotonic clock
//! (`now`, always passed in). Out: each lease's remaining time, keep-alive
//! answers, and the leases whose deadline passed, which the leader then
//! proposes to revoke through the log (expiry is never applied directly).
//!
//! Only the leader ("primary") keeps deadlines; keep-alives are not
//! replicated, as in etcd. A new leader cannot know how long ago a holder
//! last renewed, so [`Lessor::promote`] gives every lease at least its full
//! TTL plus `extend_by` (at least one election timeout) from the moment of
//! promotion: a holder that kept renewing with the old leader has time to
//! find the new one, and no lease expires merely because leadership moved.

use crate::lease_id::LeaseId;
use haven_runtime::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LessorConfig {
    /// After reporting a lease as expired, report it again this much later
    /// if its revoke has not been applied by then (the proposal may be lost).
    pub revoke_retry: Duration,
    /// Leases one call to [`Lessor::expired`] reports, so a leader that
    /// finds many expired at once proposes their revokes in bounded batches.
    pub expired_batch_len_max: usize,
}

impl Default for LessorConfig {
    fn default() -> LessorConfig {
        // etcd retries an unapplied revoke after 3 s and revokes at most 1000 leases per second.
        LessorConfig { revoke_retry: Duration::from_secs(3), expired_batch_len_max: 500 }
    }
}

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum LessorError {
    #[error("etcdserver: not leader")]
    NotPrimary,
    #[error("etcdserver: requested lease not found")]
    NotFound,
    /// The deadline passed; the leader is revoking it, so renewing is refused.
    #[error("etcdserver: requested lease not found (expired)")]
    Expired,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tracked {
    ttl: Duration,
    /// When the lease expires; `None` unless primary.
    deadline: Option<Instant>,
    /// When this lease is next due in the queue (deadline or revoke retry).
    due: Option<Instant>,
    /// Reported as expired; renewals are refused until it is revoked.
    revoking: bool,
}

#[derive(Clone, Debug)]
pub struct Lessor {
    config: LessorConfig,
    primary: bool,
    leases: BTreeMap<LeaseId, Tracked>,
    /// `(due, id)` for every lease with a `due` time: the next to look at first.
    queue: BTreeSet<(Instant, LeaseId)>,
}

/// `now + d`, saturating: a TTL of etcd's maximum (9e9 s) is close to
/// the end of a u64 nanosecond clock, and `Instant + Duration` panics there.
fn after(now: Instant, d: Duration) -> Instant {
    Instant::from_nanos(now.as_nanos().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
}

/// A TTL in whole seconds, rounded up, as etcd's API reports it (a lease of
/// 800 ms is 1 s there, never the 0 that means "gone").
pub fn whole_seconds(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis().div_ceil(1_000)).unwrap_or(i64::MAX)
}

impl Lessor {
    pub fn new(config: LessorConfig) -> Lessor {
        assert!(config.expired_batch_len_max > 0, "a zero batch would never report an expired lease");
        Lessor { config, primary: false, leases: BTreeMap::new(), queue: BTreeSet::new() }
    }

    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// Starts over from the store's leases (after a restart or a snapshot
    /// restore), not primary.
    pub fn reset(&mut self, leases: impl IntoIterator<Item = (LeaseId, Duration)>) {
        self.demote();
        self.leases = leases
            .into_iter()
            .map(|(id, ttl)| (id, Tracked { ttl, deadline: None, due: None, revoking: false }))
            .collect();
    }

    fn set_due(&mut self, id: LeaseId, due: Option<Instant>) {
        let lease = self.leases.get_mut(&id).expect("only tracked leases are scheduled");
        if let Some(old) = lease.due {
            assert!(self.queue.remove(&(old, id)), "a lease's due time is in the queue");
        }
        lease.due = due;
        if let Some(due) = due {
            self.queue.insert((due, id));
        }
    }

    /// A grant was applied; on the leader its clock starts now.
    pub fn granted(&mut self, id: LeaseId, ttl: Duration, now: Instant) {
        let deadline = self.primary.then(|| after(now, ttl));
        if self.leases.insert(id, Tracked { ttl, deadline: None, due: None, revoking: false }).is_some() {
            unreachable!("the store refuses to grant an existing lease id {id}");
        }
        self.set_due(id, deadline);
        self.leases.get_mut(&id).expect("just inserted").deadline = deadline;
    }

    /// A revoke was applied (by a client or by expiry).
    pub fn revoked(&mut self, id: LeaseId) {
        if self.leases.contains_key(&id) {
            self.set_due(id, None);
            self.leases.remove(&id);
        }
    }

    /// This node became leader at `now`: every lease gets at least its TTL
    /// plus `extend_by` from now.
    pub fn promote(&mut self, now: Instant, extend_by: Duration) {
        self.primary = true;
        let ids: Vec<LeaseId> = self.leases.keys().copied().collect();
        for id in ids {
            let lease = self.leases[&id];
            let floor = after(after(now, lease.ttl), extend_by);
            let deadline = lease.deadline.map_or(floor, |d| d.max(floor));
            self.set_due(id, Some(deadline));
            let lease = self.leases.get_mut(&id).expect("listed above");
            lease.deadline = Some(deadline);
            lease.revoking = false;
        }
    }

    /// This node stopped being leader: it forgets every deadline.
    pub fn demote(&mut self) {
        self.primary = false;
        self.queue.clear();
        for lease in self.leases.values_mut() {
            *lease = Tracked { deadline: None, due: None, revoking: false, ..*lease };
        }
    }

    /// A keep-alive: the lease lives a full TTL from now. Returns the TTL in
    /// seconds, as etcd's keep-alive response does (rounded up: a lease of
    /// 800 ms answers 1, never the 0 that means "gone").
    pub fn renew(&mut self, id: LeaseId, now: Instant) -> Result<i64, LessorError> {
        if !self.primary {
            return Err(LessorError::NotPrimary);
        }
        let lease = *self.leases.get(&id).ok_or(LessorError::NotFound)?;
        let deadline = lease.deadline.expect("a primary's leases all have deadlines");
        if lease.revoking || deadline <= now {
            return Err(LessorError::Expired);
        }
        let deadline = after(now, lease.ttl);
        self.set_due(id, Some(deadline));
        self.leases.get_mut(&id).expect("looked up above").deadline = Some(deadline);
        Ok(whole_seconds(lease.ttl))
    }

    /// Whole seconds left (truncated, as etcd's time-to-live), 0 once past
    /// the deadline; `None` when not primary or the lease is unknown.
    pub fn remaining_ttl_seconds(&self, id: LeaseId, now: Instant) -> Option<i64> {
        let deadline = self.leases.get(&id)?.deadline.filter(|_| self.primary)?;
        Some(deadline.saturating_since(now).as_secs() as i64)
    }

    /// When the lease's clock last started (its grant, last renewal, or this
    /// leader's promotion plus the extension, which may lie ahead of `now`);
    /// `None` when not primary or the lease is unknown. The station's fence
    /// decision measures a holder's silence from it.
    pub fn clock_started_at(&self, id: LeaseId) -> Option<Instant> {
        let lease = self.leases.get(&id).filter(|_| self.primary)?;
        let deadline = lease.deadline?;
        Some(Instant::from_nanos(
            deadline.as_nanos().saturating_sub(u64::try_from(lease.ttl.as_nanos()).unwrap_or(u64::MAX)),
        ))
    }

    /// The earliest time `expired` may have something to report.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.first().map(|&(due, _)| due)
    }

    /// Leases whose deadline has passed and that were not reported within
    /// the last `revoke_retry`, at most `expired_batch_len_max` of them,
    /// earliest deadline first. The leader proposes a revoke for each.
    pub fn expired(&mut self, now: Instant) -> Vec<LeaseId> {
        let mut out = Vec::new();
        while out.len() < self.config.expired_batch_len_max {
            let Some(&(due, id)) = self.queue.first() else { break };
            if due > now {
                break;
            }
            self.set_due(id, Some(after(now, self.config.revoke_retry)));
            self.leases.get_mut(&id).expect("queued leases are tracked").revoking = true;
            out.push(id);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_nanos(secs * 1_000_000_000)
    }

    fn primary_with(leases: &[(LeaseId, i64)], now: Instant) -> Lessor {
        let mut l = Lessor::new(LessorConfig::default());
        l.promote(now, Duration::ZERO);
        for &(id, ttl) in leases {
            l.granted(id, Duration::from_secs(u64::try_from(ttl).unwrap()), now);
        }
        l
    }

    #[test]
    fn a_lease_under_a_second_expires_at_its_milliseconds_and_renews_as_one_second() {
        let mut l = Lessor::new(LessorConfig::default());
        l.promote(at(100), Duration::ZERO);
        l.granted(7, Duration::from_millis(800), at(100));
        let ms = |n: u64| Instant::from_nanos(at(100).as_nanos() + n * 1_000_000);
        assert_eq!(l.renew(7, ms(500)), Ok(1), "etcd's API counts whole seconds, rounded up, never 0");
        assert_eq!(l.expired(ms(1_299)), Vec::<LeaseId>::new());
        assert_eq!(l.expired(ms(1_300)), vec![7], "800 ms after the renewal");
    }

    #[test]
    fn a_lease_expires_at_its_ttl_and_not_before() {
        let mut l = primary_with(&[(1, 10)], at(100));
        assert_eq!(l.expired(at(109)), Vec::<LeaseId>::new());
        assert_eq!(l.remaining_ttl_seconds(1, at(103)), Some(7));
        assert_eq!(l.expired(at(110)), vec![1]);
    }

    #[test]
    fn keep_alive_pushes_the_deadline_a_full_ttl_from_now() {
        let mut l = primary_with(&[(1, 10)], at(100));
        assert_eq!(l.renew(1, at(108)), Ok(10));
        assert!(l.expired(at(117)).is_empty(), "renewed at 108, so alive until 118");
        assert_eq!(l.expired(at(118)), vec![1]);
    }

    #[test]
    fn an_expired_lease_cannot_be_renewed_and_is_reported_again_after_the_retry() {
        let mut l = primary_with(&[(1, 10)], at(100));
        assert_eq!(l.renew(1, at(110)), Err(LessorError::Expired), "the deadline itself is too late");
        assert_eq!(l.expired(at(110)), vec![1]);
        assert!(l.expired(at(112)).is_empty(), "already reported; its revoke is in flight");
        assert_eq!(l.renew(1, at(112)), Err(LessorError::Expired));
        assert_eq!(l.expired(at(113)), vec![1], "revoke not applied after 3 s: report again");
        l.revoked(1);
        assert!(l.expired(at(200)).is_empty());
        assert_eq!(l.renew(1, at(200)), Err(LessorError::NotFound));
    }

    #[test]
    fn promotion_gives_every_lease_its_ttl_plus_the_extension_from_now() {
        let mut l = Lessor::new(LessorConfig::default());
        l.reset([(1, Duration::from_secs(10)), (2, Duration::from_secs(60))]);
        assert_eq!(l.renew(1, at(5)), Err(LessorError::NotPrimary));
        assert!(l.expired(at(1_000)).is_empty(), "a follower never expires leases");
        l.promote(at(1_000), Duration::from_secs(2));
        assert!(l.expired(at(1_011)).is_empty(), "10 s TTL + 2 s extension from promotion at 1000");
        assert_eq!(l.expired(at(1_012)), vec![1]);
        assert_eq!(l.remaining_ttl_seconds(2, at(1_012)), Some(50));
    }

    #[test]
    fn a_leader_change_does_not_expire_a_lease_renewed_just_before_it() {
        let mut l = primary_with(&[(1, 10)], at(0));
        l.renew(1, at(9)).unwrap();
        l.demote();
        // Leadership comes back to this node much later (by its clock).
        l.promote(at(50), Duration::from_secs(1));
        assert!(l.expired(at(60)).is_empty());
        assert_eq!(l.renew(1, at(60)), Ok(10), "the holder reaches the new leader within TTL + extension");
    }

    #[test]
    fn expired_reports_are_bounded_and_earliest_first() {
        let mut l = Lessor::new(LessorConfig { expired_batch_len_max: 2, ..LessorConfig::default() });
        l.promote(at(0), Duration::ZERO);
        l.granted(3, Duration::from_secs(5), at(0));
        l.granted(1, Duration::from_secs(7), at(0));
        l.granted(2, Duration::from_secs(6), at(0));
        assert_eq!(l.expired(at(10)), vec![3, 2]);
        assert_eq!(l.expired(at(10)), vec![1]);
    }

    #[test]
    fn the_largest_ttl_does_not_overflow_the_clock() {
        let mut l = primary_with(&[(1, crate::config::LEASE_TTL_SECONDS_MAX)], Instant::from_nanos(u64::MAX - 5));
        assert!(l.expired(Instant::from_nanos(u64::MAX - 1)).is_empty());
        l.promote(Instant::from_nanos(u64::MAX - 1), Duration::from_secs(10));
    }
}
