//! A watcher of a key prefix that never gives up, and the checks of what
//! it received (test support).
//!
//! In: the stations' client endpoints and a prefix. The watcher watches
//! from revision 1; on any error, end of stream, cancel or silence longer
//! than `IDLE_MAX` (a SIGSTOPped station says nothing), it watches again
//! from its last revision + 1 at the next station. Out: every event it
//! accepted, in order; and [`compare`], which holds them to a reference
//! history: same events (revision, key, kind, value), same order, no gap,
//! no duplicate.

use haven_client::{Client, ClientConfig, EventType, WatchCreateRequest, prefix_end};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Silence after which the watcher moves on (the workload writes far more often).
const IDLE_MAX: Duration = Duration::from_secs(3);
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// One event as the checks compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub revision: u64,
    pub key: Vec<u8>,
    pub delete: bool,
    pub value: Vec<u8>,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.delete { "DELETE" } else { "PUT" };
        write!(f, "@{} {kind} {}", self.revision, String::from_utf8_lossy(&self.key))?;
        if !self.delete {
            write!(f, "={}", String::from_utf8_lossy(&self.value))?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Shared {
    received: Mutex<Vec<Seen>>,
    /// Watches opened; the first is not a re-watch.
    opened: AtomicU64,
    /// Server cancels (e.g. compaction): reported, as nothing compacts here.
    canceled: Mutex<Vec<String>>,
}

#[derive(Debug)]
pub struct PrefixWatcher {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl PrefixWatcher {
    /// Starts watching (inside a tokio runtime).
    pub fn start(endpoints: Vec<String>, prefix: &str, start_revision: u64) -> PrefixWatcher {
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(watch_forever(endpoints, prefix.as_bytes().to_vec(), start_revision, shared.clone()));
        PrefixWatcher { shared, task }
    }

    pub fn last_revision(&self) -> u64 {
        self.shared.received.lock().unwrap_or_else(PoisonError::into_inner).last().map_or(0, |s| s.revision)
    }

    pub fn rewatches(&self) -> u64 {
        self.shared.opened.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Stops and hands back what was received, and the server's cancels.
    pub fn stop(self) -> (Vec<Seen>, Vec<String>) {
        self.task.abort();
        let received = std::mem::take(&mut *self.shared.received.lock().unwrap_or_else(PoisonError::into_inner));
        let canceled = std::mem::take(&mut *self.shared.canceled.lock().unwrap_or_else(PoisonError::into_inner));
        (received, canceled)
    }
}

impl Drop for PrefixWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_forever(endpoints: Vec<String>, prefix: Vec<u8>, start_revision: u64, shared: Arc<Shared>) {
    let mut next_revision = start_revision;
    for turn in 0.. {
        let mut rotated = endpoints.clone();
        rotated.rotate_left(turn % endpoints.len());
        let config = ClientConfig { endpoints: rotated, request_timeout: IDLE_MAX, ..Default::default() };
        let client = Client::new(config).expect("valid endpoints");
        let create = WatchCreateRequest {
            key: prefix.clone(),
            range_end: prefix_end(&prefix),
            start_revision: i64::try_from(next_revision).expect("a revision fits i64"),
            ..Default::default()
        };
        if let Ok(mut watch) = client.watch(&create).await {
            shared.opened.fetch_add(1, Ordering::Relaxed);
            while let Ok(Ok(Some(response))) = tokio::time::timeout(IDLE_MAX, watch.next()).await {
                if response.canceled {
                    let mut canceled = shared.canceled.lock().unwrap_or_else(PoisonError::into_inner);
                    canceled.push(format!("{response:?}"));
                    break;
                }
                let mut received = shared.received.lock().unwrap_or_else(PoisonError::into_inner);
                for event in &response.events {
                    received.push(seen(event));
                }
                next_revision = received.last().map_or(next_revision, |s| s.revision + 1);
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

pub fn seen(event: &haven_client::Event) -> Seen {
    Seen {
        revision: u64::try_from(event.kv.mod_revision).unwrap_or(0),
        key: event.kv.key.clone(),
        delete: event.kind == EventType::Delete,
        value: event.kv.value.clone(),
    }
}

/// Reads one watch from `start_revision` on one station until an event at
/// `until_revision` or later arrives; the reference history.
pub async fn read_history(
    endpoint: &str,
    prefix: &str,
    until_revision: u64,
    timeout: Duration,
) -> Result<Vec<Seen>, String> {
    let config = ClientConfig { endpoints: vec![endpoint.to_owned()], request_timeout: timeout, ..Default::default() };
    let client = Client::new(config).expect("a valid endpoint");
    let prefix = prefix.as_bytes();
    let create = WatchCreateRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        start_revision: 1,
        ..Default::default()
    };
    let read = async {
        let mut watch = client.watch(&create).await.map_err(|e| e.to_string())?;
        let mut history = Vec::new();
        while history.last().is_none_or(|s: &Seen| s.revision < until_revision) {
            match watch.next().await.map_err(|e| e.to_string())? {
                Some(response) if response.canceled => return Err(format!("watch canceled: {response:?}")),
                Some(response) => history.extend(response.events.iter().map(seen)),
                None => return Err("the watch stream ended".to_owned()),
            }
        }
        Ok(history)
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| format!("{endpoint}: no event at revision {until_revision} within {timeout:?}"))?
}

/// `received` equals `reference` up to the end of `received`, and goes at
/// least to `until_revision`: in order, nothing missing, nothing repeated.
pub fn compare(received: &[Seen], reference: &[Seen], until_revision: u64) -> Result<(), String> {
    for (i, pair) in received.windows(2).enumerate() {
        if pair[1].revision < pair[0].revision {
            return Err(format!("event {}: {} after {}", i + 1, pair[1], pair[0]));
        }
    }
    let expected: Vec<&Seen> = reference.iter().filter(|s| s.revision <= until_revision).collect();
    let got: Vec<&Seen> = received.iter().filter(|s| s.revision <= until_revision).collect();
    if let Some(i) = (0..expected.len().max(got.len())).find(|&i| got.get(i) != expected.get(i)) {
        let show = |s: Option<&&Seen>| s.map_or_else(|| "nothing".to_owned(), ToString::to_string);
        return Err(format!(
            "event {i}: received {}, the history has {} ({} received, {} in the history up to revision {until_revision})",
            show(got.get(i)),
            show(expected.get(i)),
            got.len(),
            expected.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(revision: u64, key: &str) -> Seen {
        Seen { revision, key: key.into(), delete: false, value: b"v".to_vec() }
    }

    #[test]
    fn compare_finds_gaps_repeats_reorders_and_a_short_watch() {
        let history = [put(1, "a"), put(2, "b"), put(2, "c"), put(3, "a")];
        assert_eq!(compare(&history, &history, 3), Ok(()));
        assert!(compare(&[put(1, "a"), put(2, "b"), put(3, "a")], &history, 3).is_err(), "gap");
        assert!(compare(&[put(1, "a"), put(2, "b"), put(2, "b"), put(2, "c")], &history, 3).is_err(), "repeat");
        assert!(compare(&[put(2, "b"), put(1, "a")], &history, 3).is_err(), "reorder");
        assert!(compare(&history[..3], &history, 3).is_err(), "stopped short of revision 3");
        assert_eq!(compare(&history, &history[..3], 2), Ok(()), "later events are not compared");
    }
}
