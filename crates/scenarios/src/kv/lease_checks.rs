//! The `lease` scenario's checkers.
//!
//! In: the lease clients' events (grants and keep-alives sent, and which
//! were acknowledged) and the replicas' `LeaseRevoked` events, each stamped
//! with global time; after healing, the replicas' stores and the clients'
//! leases. Out: the first violation, naming the lease, its holder and times.
//!
//! Clock-drift assumption: every clock runs within ±ρ of global time
//! (`drift_ppm_max`), so a leader that waits TTL on its own clock waits at
//! least TTL / (1 + ρ) of global time.
//!
//! - Safety, after every event: if a holder sent a grant or keep-alive at
//!   global time g and it was acknowledged with TTL t, the lease is not
//!   revoked (anywhere) before g + t / (1 + ρ). A grant counts from its
//!   first attempt, the earliest moment it can have been applied. Holders
//!   in this scenario never revoke their leases, so every revoke counts as
//!   an expiry, whichever path proposed it. Both orders are checked: an
//!   acknowledgement arriving after the revoke is as wrong.
//! - Liveness, after healing: every lease the most advanced store holds is
//!   the current lease of a running client, except at most one per client
//!   with a grant in flight, and every key on a lease is on such a lease:
//!   an abandoned lease was revoked with its keys. And every client had a
//!   keep-alive acknowledged since healing.

use super::lease_client::LeaseEvent;
use super::node::{KvNode, KvOut, StationReplica};
use haven_raft::StateMachine as _;
use haven_runtime::NodeId;
use haven_sim::{Sim, SimTime};
use haven_station::ReplicaEvent;
use haven_store::{LeaseId, NO_LEASE, RangeRequest, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Sent {
    Grant,
    KeepAlive,
}

/// A promise the cluster made: the lease lives until `until`, because of
/// what the holder sent at `sent_at`.
#[derive(Clone, Copy, Debug)]
struct Promise {
    until: SimTime,
    sent_at: SimTime,
    ttl_seconds: i64,
}

#[derive(Clone, Copy, Debug)]
struct Revoke {
    at: SimTime,
    by: NodeId,
    index: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct LeaseFacts {
    holder: Option<NodeId>,
    promise: Option<Promise>,
    revoke: Option<Revoke>,
}

#[derive(Debug)]
pub struct LeaseChecks {
    drift_ppm_max: u64,
    /// Global send time of each grant and keep-alive not yet answered, by
    /// (client, its incarnation, kind, seq).
    sent: BTreeMap<(NodeId, u32, Sent, u64), SimTime>,
    leases: BTreeMap<LeaseId, LeaseFacts>,
    /// Global time of each client's latest acknowledged keep-alive.
    last_keep_alive: BTreeMap<NodeId, SimTime>,
}

impl LeaseChecks {
    pub fn new(drift_ppm_max: u64) -> LeaseChecks {
        LeaseChecks { drift_ppm_max, sent: BTreeMap::new(), leases: BTreeMap::new(), last_keep_alive: BTreeMap::new() }
    }

    /// `ttl_seconds` of the slowest-looking clock: TTL / (1 + ρ), rounded down.
    fn global_ttl(&self, ttl_seconds: i64) -> Duration {
        let ttl_ns = u128::from(u64::try_from(ttl_seconds).unwrap_or(0)) * 1_000_000_000;
        let ns = ttl_ns * 1_000_000 / (1_000_000 + u128::from(self.drift_ppm_max));
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// The safety check over the last event's outputs.
    pub fn check<R: StationReplica>(&mut self, sim: &Sim<KvNode<R>>) -> Result<(), String> {
        let now = sim.now();
        for (node, out) in sim.last_outputs() {
            match out {
                KvOut::LeaseClient(event) => self.client_event(*node, sim.incarnation(*node), event, now)?,
                KvOut::Replica(ReplicaEvent::LeaseRevoked { lease, index, .. }) => {
                    self.revoked(*lease, Revoke { at: now, by: *node, index: *index })?
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn client_event(&mut self, node: NodeId, incarnation: u32, event: &LeaseEvent, now: SimTime) -> Result<(), String> {
        match *event {
            LeaseEvent::GrantSent { seq } => {
                self.sent.insert((node, incarnation, Sent::Grant, seq), now);
            }
            LeaseEvent::KeepAliveSent { seq, .. } => {
                self.sent.insert((node, incarnation, Sent::KeepAlive, seq), now);
            }
            LeaseEvent::Granted { seq, lease, ttl_seconds } => {
                let sent_at = self.answered(node, incarnation, Sent::Grant, seq)?;
                self.promised(lease, node, sent_at, ttl_seconds)?;
            }
            LeaseEvent::KeepAliveAcked { seq, lease, ttl_seconds } => {
                let sent_at = self.answered(node, incarnation, Sent::KeepAlive, seq)?;
                self.last_keep_alive.insert(node, now);
                self.promised(lease, node, sent_at, ttl_seconds)?;
            }
            // Puts and gets are the linearizability check's.
            LeaseEvent::LeaseLost { .. } | LeaseEvent::Kv(_) => {}
        }
        Ok(())
    }

    fn answered(&mut self, node: NodeId, incarnation: u32, kind: Sent, seq: u64) -> Result<SimTime, String> {
        self.sent
            .remove(&(node, incarnation, kind, seq))
            .ok_or_else(|| format!("{node} reports an answer to {kind:?} {seq}, which it never sent"))
    }

    fn promised(&mut self, lease: LeaseId, holder: NodeId, sent_at: SimTime, ttl_seconds: i64) -> Result<(), String> {
        let until = sent_at + self.global_ttl(ttl_seconds);
        let facts = self.leases.entry(lease).or_default();
        if let Some(other) = facts.holder.filter(|&h| h != holder) {
            return Err(format!("lease {lease} acknowledged to both {other} and {holder}"));
        }
        facts.holder = Some(holder);
        if facts.promise.is_none_or(|p| p.until < until) {
            facts.promise = Some(Promise { until, sent_at, ttl_seconds });
        }
        self.judge(lease)
    }

    fn revoked(&mut self, lease: LeaseId, revoke: Revoke) -> Result<(), String> {
        let facts = self.leases.entry(lease).or_default();
        if facts.revoke.is_none() {
            facts.revoke = Some(revoke);
        }
        self.judge(lease)
    }

    fn judge(&self, lease: LeaseId) -> Result<(), String> {
        let facts = &self.leases[&lease];
        let (Some(promise), Some(revoke)) = (facts.promise, facts.revoke) else { return Ok(()) };
        if revoke.at >= promise.until {
            return Ok(());
        }
        Err(format!(
            "lease {lease} of {holder:?} revoked at {at} ({by} applied entry {index}), but {holder:?} sent at {sent} \
             a keep-alive or grant acknowledged with TTL {ttl} s: it had to live until {until} (clocks within \
             ±{ppm} ppm)",
            holder = facts.holder,
            at = revoke.at,
            by = revoke.by,
            index = revoke.index,
            sent = promise.sent_at,
            ttl = promise.ttl_seconds,
            until = promise.until,
            ppm = self.drift_ppm_max,
        ))
    }

    /// Liveness: abandoned leases and their keys are gone, and every
    /// client renews.
    pub fn abandoned_leases_gone<R: StationReplica>(&self, sim: &Sim<KvNode<R>>) -> Result<(), String> {
        let store = most_advanced_store(sim).ok_or("no replica is running")?;
        let (held, granting) = held_leases(sim);
        let unheld: Vec<LeaseId> =
            store.lease_leases().leases.into_iter().filter(|lease| !held.contains(lease)).collect();
        if unheld.len() > granting {
            let holders: Vec<_> = unheld.iter().map(|l| self.leases.get(l).and_then(|f| f.holder)).collect();
            return Err(format!(
                "leases {unheld:?} (holders {holders:?}) are held by no running client yet not revoked \
                 ({granting} grants in flight)"
            ));
        }
        let every_key = RangeRequest { key: vec![0], range_end: vec![0], ..RangeRequest::default() };
        let kvs = store.range(&every_key).map_err(|e| format!("listing the keys: {e}"))?.kvs;
        if let Some(kv) = kvs.iter().find(|kv| kv.lease != NO_LEASE && !held.contains(&kv.lease)) {
            return Err(format!("key {:?} is still on lease {}, held by no running client", kv.key, kv.lease));
        }
        self.clients_renewed(sim)
    }

    fn clients_renewed<R: StationReplica>(&self, sim: &Sim<KvNode<R>>) -> Result<(), String> {
        let healed = sim.faults_over_at().expect("liveness runs after healing");
        for &client in sim.node_ids().iter().filter(|&&n| lease_client_of(sim, n).is_some()) {
            let last = self.last_keep_alive.get(&client).copied();
            if last.is_none_or(|t| t < healed) {
                return Err(format!(
                    "{client} had no keep-alive acknowledged since healing at {healed} (last: {last:?})"
                ));
            }
        }
        Ok(())
    }
}

fn lease_client_of<R: StationReplica>(sim: &Sim<KvNode<R>>, node: NodeId) -> Option<&super::lease_client::LeaseClient> {
    sim.component(node)?.lease_client()
}

/// The store of the running replica that applied the most entries.
fn most_advanced_store<R: StationReplica>(sim: &Sim<KvNode<R>>) -> Option<&Store> {
    let machines = sim.node_ids().iter().filter_map(|&n| sim.component(n)?.replica()?.state_machine());
    machines.max_by_key(|sm| sm.applied_index()).map(|sm| sm.store())
}

/// The leases running clients hold, and how many clients have a grant in flight.
fn held_leases<R: StationReplica>(sim: &Sim<KvNode<R>>) -> (BTreeSet<LeaseId>, usize) {
    let clients: Vec<_> = sim.node_ids().iter().filter_map(|&n| lease_client_of(sim, n)).collect();
    let held = clients.iter().filter_map(|c| c.lease()).collect();
    (held, clients.iter().filter(|c| c.is_granting()).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: u64) -> SimTime {
        SimTime::from_nanos(ms * 1_000_000)
    }

    /// A holder (n4) that sent keep-alive 1 at 10 s, acknowledged with a 2 s TTL.
    fn renewed_at_10s() -> LeaseChecks {
        let mut checks = LeaseChecks::new(200);
        let holder = NodeId(4);
        checks.client_event(holder, 1, &LeaseEvent::KeepAliveSent { seq: 1, lease: 7 }, at_ms(10_000)).unwrap();
        let acked = LeaseEvent::KeepAliveAcked { seq: 1, lease: 7, ttl_seconds: 2 };
        checks.client_event(holder, 1, &acked, at_ms(10_100)).unwrap();
        checks
    }

    fn revoke_at(at: SimTime) -> Revoke {
        Revoke { at, by: NodeId(1), index: 50 }
    }

    #[test]
    fn a_revoke_within_ttl_over_one_plus_drift_of_the_send_is_a_violation() {
        // 2 s / (1 + 200 ppm) = 1.99960008 s after the send at 10 s.
        let until = at_ms(10_000) + Duration::from_nanos(1_999_600_079);
        let just_before = SimTime::from_nanos(until.as_nanos() - 1);
        let err = renewed_at_10s().revoked(7, revoke_at(just_before)).unwrap_err();
        assert!(err.contains("lease 7") && err.contains("n4"), "{err}");
        assert_eq!(renewed_at_10s().revoked(7, revoke_at(until)), Ok(()));
    }

    #[test]
    fn an_acknowledgement_arriving_after_the_revoke_is_judged_too() {
        let mut checks = LeaseChecks::new(200);
        let holder = NodeId(5);
        checks.client_event(holder, 1, &LeaseEvent::KeepAliveSent { seq: 3, lease: 2 }, at_ms(1_000)).unwrap();
        checks.revoked(2, revoke_at(at_ms(1_500))).unwrap();
        let late_ack = LeaseEvent::KeepAliveAcked { seq: 3, lease: 2, ttl_seconds: 2 };
        assert!(checks.client_event(holder, 1, &late_ack, at_ms(1_600)).is_err());
    }

    #[test]
    fn an_answer_to_another_incarnations_send_is_refused() {
        let mut checks = LeaseChecks::new(200);
        checks.client_event(NodeId(4), 1, &LeaseEvent::GrantSent { seq: 1 }, at_ms(0)).unwrap();
        let granted = LeaseEvent::Granted { seq: 1, lease: 1, ttl_seconds: 2 };
        assert!(checks.client_event(NodeId(4), 2, &granted, at_ms(10)).is_err());
        assert_eq!(checks.client_event(NodeId(4), 1, &granted, at_ms(10)), Ok(()));
    }
}
