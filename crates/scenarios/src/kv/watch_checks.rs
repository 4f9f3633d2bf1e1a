//! The watch checks of the kv scenarios.
//!
//! In: the events a watcher received, in the order it accepted them, and
//! the store's own event history for the watched range (from a replica
//! running at the end: all agree on what they applied). Out: the first way
//! the watcher's view breaks "revision order with no gaps or duplicates",
//! and, after healing, whether it caught up.
//!
//! The received sequence must be in revision order without a (revision,
//! key) twice, and must equal the history restricted to the revisions from
//! the first to the last one received: anything missing in between is a
//! gap, anything extra or reordered a duplicate or an invention. Each
//! event's `prev_kv` must be the version the history has just before it
//! (compared by revision; nothing compacts in these scenarios, so what a
//! replica could see when it sent the event, the history still has).

use super::node::{KvNode, KvOut, StationReplica};
use super::watch_client::WatchEvent;
use haven_sim::{Outcome, RunReport, Sim, Violation};
use haven_store::{Event, EventKind, KeyRange, Store};
use std::collections::BTreeSet;

/// History events read back at most (a run writes far fewer).
pub const HISTORY_EVENTS_LEN_MAX: usize = 1_000_000;

/// One event as the checker compares it: (revision, key, kind).
pub type Seen = (u64, Vec<u8>, EventKind);

/// What the watcher reported over a run.
#[derive(Debug, Default)]
pub struct WatchLog {
    pub received: Vec<Seen>,
    /// The revision of each received event's `prev_kv`, in step with `received`.
    pub prev_revisions: Vec<Option<u64>>,
    /// Revisions from which a replica reported the history compacted.
    pub compacted_from: Vec<u64>,
}

impl WatchLog {
    pub fn record(&mut self, event: &WatchEvent) {
        match event {
            WatchEvent::Received { revision, key, kind, prev_revision } => {
                self.received.push((*revision, key.clone(), *kind));
                self.prev_revisions.push(*prev_revision);
            }
            WatchEvent::Compacted { from_revision } => self.compacted_from.push(*from_revision),
        }
    }
}

/// What a scenario's watcher received, and the checks on it.
#[derive(Debug)]
pub struct WatchRecord {
    pub log: WatchLog,
    range: KeyRange,
    /// The most advanced replica's revision at the first event after healing.
    revision_healed: Option<u64>,
}

impl WatchRecord {
    /// For a watcher of `range`.
    pub fn new(range: KeyRange) -> WatchRecord {
        WatchRecord { log: WatchLog::default(), range, revision_healed: None }
    }

    /// After every event: the watcher's new events, and the cluster's
    /// revision when the faults end.
    pub fn observe<R: StationReplica>(&mut self, sim: &Sim<KvNode<R>>) {
        if self.revision_healed.is_none() && sim.faults_over_at().is_some() {
            self.revision_healed = Some(most_advanced_store(sim).map_or(0, |store| store.revision()));
        }
        for (_, out) in sim.last_outputs() {
            if let KvOut::Watcher(event) = out {
                self.log.record(event);
            }
        }
    }

    /// Liveness: the watcher received everything in its range applied
    /// before healing.
    pub fn caught_up<R: StationReplica>(&self, sim: &Sim<KvNode<R>>) -> Result<(), String> {
        let store = most_advanced_store(sim).ok_or("no replica is running")?;
        let healed = self.revision_healed.expect("liveness runs after healing");
        caught_up(&self.log, store, &self.range, healed)
    }

    /// At the end: the watcher's events against the history of the most
    /// advanced replica running.
    pub fn finish<R: StationReplica>(&self, report: RunReport, sim: &Sim<KvNode<R>>) -> RunReport {
        if !report.is_ok() {
            return report;
        }
        let Some(store) = most_advanced_store(sim) else { return report };
        match check(&self.log, store, &self.range) {
            Ok(()) => report,
            Err(detail) => RunReport {
                outcome: Outcome::Violation(Violation { checker: "watch order".into(), at: report.sim_time, detail }),
                ..report
            },
        }
    }
}

/// The store of the running replica that applied the most (all agree on
/// what they applied, so it holds every other's history too).
pub(crate) fn most_advanced_store<R: StationReplica>(sim: &Sim<KvNode<R>>) -> Option<&Store> {
    let stores = sim.node_ids().iter().filter_map(|&n| sim.component(n)?.replica()?.state_machine().map(|m| m.store()));
    stores.max_by_key(|s: &&Store| s.revision())
}

/// The received events against `store`'s history of `range`.
pub fn check(log: &WatchLog, store: &Store, range: &KeyRange) -> Result<(), String> {
    if let Some(from) = log.compacted_from.first() {
        return Err(format!("a watch from revision {from} was told the history is compacted; nothing compacts here"));
    }
    check_order(&log.received)?;
    let (Some(first), Some(last)) = (log.received.first(), log.received.last()) else { return Ok(()) };
    if last.0 > store.revision() {
        return Err(format!("the watcher received revision {} beyond every replica's {}", last.0, store.revision()));
    }
    let history = store
        .events_since(first.0, range, HISTORY_EVENTS_LEN_MAX)
        .map_err(|e| format!("the history from revision {} is gone: {e}", first.0))?;
    let history: Vec<&Event> = history.iter().filter(|e| e.kv.mod_revision <= last.0).collect();
    let expected: Vec<Seen> = history.iter().map(|e| seen(e)).collect();
    compare(&log.received, &expected)?;
    let prev_expected: Vec<Option<u64>> =
        history.iter().map(|e| e.prev_kv.as_ref().map(|kv| kv.mod_revision)).collect();
    compare_prev(&log.prev_revisions, &prev_expected, &log.received)
}

/// Once the events match, each one's `prev_kv` revision against the
/// history's; `received` names the event that differs.
pub fn compare_prev(received: &[Option<u64>], expected: &[Option<u64>], events: &[Seen]) -> Result<(), String> {
    assert_eq!(received.len(), events.len(), "one prev_kv per received event");
    let Some(at) = received.iter().zip(expected).position(|(r, e)| r != e) else { return Ok(()) };
    let (revision, key, kind) = &events[at];
    Err(format!(
        "watch event {at} ({kind:?} of {} at revision {revision}): prev_kv at revision {:?}, the store's history has {:?}",
        String::from_utf8_lossy(key),
        received[at],
        expected[at]
    ))
}

/// Liveness: the watcher has received every event of `range` up to
/// `revision` (the cluster's revision when the faults ended; clients keep
/// writing after that, so "everything applied" would always be a moment
/// away). With `check`'s no-gap rule this means nothing was skipped.
pub fn caught_up(log: &WatchLog, store: &Store, range: &KeyRange, revision: u64) -> Result<(), String> {
    let last = log.received.last().map_or(0, |seen| seen.0);
    let behind = store.events_since(last + 1, range, 1).map_err(|e| format!("history after {last} is gone: {e}"))?;
    match behind.first().filter(|next| next.kv.mod_revision <= revision) {
        None => Ok(()),
        Some(next) => Err(format!(
            "the watcher's last event is at revision {last}; it missed revision {} though the cluster was at {revision} when the faults ended",
            next.kv.mod_revision
        )),
    }
}

fn seen(event: &Event) -> Seen {
    (event.kv.mod_revision, event.kv.key.clone(), event.kind)
}

/// Revisions never go back, and no (revision, key) comes twice.
pub fn check_order(received: &[Seen]) -> Result<(), String> {
    let mut keys_at_revision = BTreeSet::new();
    for (i, pair) in received.windows(2).enumerate() {
        let ((r0, k0, _), (r1, k1, _)) = (&pair[0], &pair[1]);
        if r1 < r0 {
            return Err(format!("watch event {} is revision {r1} after revision {r0}", i + 1));
        }
        if r1 > r0 {
            // The keys seen belong to the revision before: start afresh.
            keys_at_revision.clear();
            continue;
        }
        keys_at_revision.insert(k0.clone());
        if keys_at_revision.contains(k1) {
            return Err(format!("watch event {} repeats revision {r1} key {}", i + 1, String::from_utf8_lossy(k1)));
        }
    }
    Ok(())
}

/// The received sequence equals the expected one, or where they part.
pub fn compare(received: &[Seen], expected: &[Seen]) -> Result<(), String> {
    let parted = received.iter().zip(expected).position(|(r, e)| r != e);
    let at = match parted {
        Some(i) => i,
        None if received.len() == expected.len() => return Ok(()),
        None => received.len().min(expected.len()),
    };
    Err(format!(
        "watch event {at}: received {:?}, the store's history has {:?} ({} received, {} in the history)",
        received.get(at).map(|(r, k, kind)| (r, String::from_utf8_lossy(k), kind)),
        expected.get(at).map(|(r, k, kind)| (r, String::from_utf8_lossy(k), kind)),
        received.len(),
        expected.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(revision: u64, key: &str) -> Seen {
        (revision, key.as_bytes().to_vec(), EventKind::Put)
    }

    #[test]
    fn order_refuses_a_revision_going_back_and_a_repeated_event() {
        assert_eq!(check_order(&[put(1, "k0"), put(2, "k1"), put(2, "k2")]), Ok(()));
        assert!(check_order(&[put(2, "k0"), put(1, "k1")]).is_err(), "revision 1 after 2");
        assert!(check_order(&[put(2, "k0"), put(2, "k1"), put(2, "k0")]).is_err(), "k0 twice in revision 2");
    }

    /// Found by `lease` seed 18: a revoke deleting k0, k1, k2 at one
    /// revision, right after a put of k2, was taken for a repeat of k2.
    #[test]
    fn a_key_of_the_revision_before_is_no_repeat() {
        let deletes = [put(1, "k2"), put(2, "k0"), put(2, "k1"), put(2, "k2")];
        assert_eq!(check_order(&deletes), Ok(()));
    }

    #[test]
    fn comparison_names_a_gap_an_extra_event_and_accepts_equality() {
        let history = [put(3, "k0"), put(4, "k1"), put(5, "k0")];
        assert_eq!(compare(&history, &history), Ok(()));
        let gap = compare(&[put(3, "k0"), put(5, "k0")], &history).unwrap_err();
        assert!(gap.starts_with("watch event 1:"), "{gap}");
        let extra = compare(&[put(3, "k0"), put(4, "k1"), put(5, "k0"), put(6, "k2")], &history).unwrap_err();
        assert!(extra.starts_with("watch event 3:"), "{extra}");
    }

    #[test]
    fn a_wrong_or_missing_prev_kv_is_named() {
        let events = [put(3, "k0"), put(5, "k0")];
        let history = [None, Some(3)];
        assert_eq!(compare_prev(&[None, Some(3)], &history, &events), Ok(()));
        let missing = compare_prev(&[None, None], &history, &events).unwrap_err();
        assert!(missing.starts_with("watch event 1 (Put of k0 at revision 5): prev_kv at revision None"), "{missing}");
        assert!(compare_prev(&[None, Some(2)], &history, &events).is_err(), "the wrong version");
    }
}
