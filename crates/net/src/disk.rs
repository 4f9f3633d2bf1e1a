//! The disk worker: a thread that executes a node's disk requests.
//!
//! In: `(IoId, IoRequest)` pairs from the event loop, which never waits on
//! the disk. Out: `(IoId, IoResult)` completions on a channel the event loop
//! selects on, exactly one per request.
//!
//! Requests run in arrival order, in batches of whatever is queued (up to
//! `disk_batch_len_max`). Within a batch, `Sync`s of one file, and the sync
//! halves of its `WriteSync`s, share one `sync_data`, and `SyncDir`s share
//! one directory fsync, issued after the other requests of the batch: a
//! sync then covers at least what it must (every write completed before
//! it), and the disk interface lets operations complete in any order. A
//! sync is issued early only when a rename or remove is about to change
//! what its file name refers to.

use crate::counters::{Counters, bump};
use crate::disk_ops;
use crate::error::NetError;
use crate::open_files::OpenFiles;
use haven_runtime::{FileName, IoId, IoRequest, IoResult};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self as std_mpsc, Receiver, Sender};
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Completions buffered towards the event loop before the worker waits.
const COMPLETIONS_LEN_MAX: usize = 1024;

pub(crate) type Completion = (IoId, IoResult);

/// The event loop's handle on the worker thread.
#[derive(Debug)]
pub(crate) struct DiskWorker {
    requests: Sender<(IoId, IoRequest)>,
    thread: JoinHandle<()>,
}

impl DiskWorker {
    /// Starts the worker on `dir`; completions arrive on the returned receiver.
    pub(crate) fn spawn(
        dir: PathBuf,
        batch_len_max: usize,
        counters: Arc<Counters>,
        span: tracing::Span,
    ) -> Result<(DiskWorker, mpsc::Receiver<Completion>), NetError> {
        // Unbounded here because the host already bounds it: it refuses to
        // start more than IO_PENDING_MAX requests that have not completed.
        let (requests, rx) = std_mpsc::channel();
        let (done, completions) = mpsc::channel(COMPLETIONS_LEN_MAX);
        let files = OpenFiles::new(dir.clone());
        let mut worker = Worker { dir, files, batch_len_max, counters, done };
        let thread = std::thread::Builder::new()
            .name("haven-disk".into())
            .spawn(move || {
                let _entered = span.enter();
                worker.run(&rx);
            })
            .map_err(NetError::DiskThread)?;
        Ok((DiskWorker { requests, thread }, completions))
    }

    /// Queues a request without waiting.
    pub(crate) fn submit(&self, id: IoId, request: IoRequest) {
        // The worker only exits early if the event loop dropped its
        // completions, i.e. never while the loop still submits.
        if self.requests.send((id, request)).is_err() {
            tracing::error!(io = id.0, "disk worker is gone");
        }
    }

    /// Lets the worker finish what it holds, then waits for the thread.
    pub(crate) async fn stop(self) {
        let DiskWorker { requests, thread } = self;
        drop(requests);
        let joined = tokio::task::spawn_blocking(move || thread.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!("disk worker thread panicked");
        }
    }
}

struct Worker {
    dir: PathBuf,
    files: OpenFiles,
    batch_len_max: usize,
    counters: Arc<Counters>,
    done: mpsc::Sender<Completion>,
}

impl Worker {
    fn run(&mut self, rx: &Receiver<(IoId, IoRequest)>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < self.batch_len_max {
                let Ok(next) = rx.try_recv() else { break };
                batch.push(next);
            }
            if self.run_batch(batch).is_err() {
                return;
            }
        }
    }

    /// Executes one batch; `Err` means the event loop is gone.
    fn run_batch(&mut self, batch: Vec<(IoId, IoRequest)>) -> Result<(), Gone> {
        let mut file_syncs: BTreeMap<FileName, Vec<IoId>> = BTreeMap::new();
        let mut dir_syncs: Vec<IoId> = Vec::new();
        for (id, request) in batch {
            bump(&self.counters.disk_ops);
            if let Err(e) = request.check_limits() {
                self.complete(id, Err(e))?;
                continue;
            }
            match request {
                IoRequest::Sync { file } => file_syncs.entry(file).or_default().push(id),
                IoRequest::SyncDir => dir_syncs.push(id),
                IoRequest::WriteSync { file, offset, data } => match self.files.write(&file, offset, &data) {
                    Ok(_) => file_syncs.entry(file).or_default().push(id),
                    Err(e) => self.complete(id, Err(e))?,
                },
                other => {
                    for name in names_rebound(&other) {
                        if let Some(ids) = file_syncs.remove(name) {
                            self.sync_file(name, ids)?;
                        }
                    }
                    let result = disk_ops::execute(&self.dir, &mut self.files, &other);
                    self.complete(id, result)?;
                }
            }
        }
        for (name, ids) in file_syncs {
            self.sync_file(&name, ids)?;
        }
        if !dir_syncs.is_empty() {
            let started = std::time::Instant::now();
            let result = disk_ops::sync_dir(&self.dir);
            self.counters.disk_syncs.record(started.elapsed());
            self.complete_all(dir_syncs, &result)?;
        }
        Ok(())
    }

    fn sync_file(&mut self, name: &FileName, ids: Vec<IoId>) -> Result<(), Gone> {
        let started = std::time::Instant::now();
        let result = self.files.sync(name);
        self.counters.disk_syncs.record(started.elapsed());
        self.complete_all(ids, &result)
    }

    fn complete_all(&self, ids: Vec<IoId>, result: &IoResult) -> Result<(), Gone> {
        ids.into_iter().try_for_each(|id| self.complete(id, result.clone()))
    }

    fn complete(&self, id: IoId, result: IoResult) -> Result<(), Gone> {
        if let Err(e) = &result {
            tracing::debug!(io = id.0, error = %e, "disk request failed");
        }
        self.done.blocking_send((id, result)).map_err(|_| Gone)
    }
}

/// The event loop dropped its end of the completions channel.
struct Gone;

/// File names whose meaning `request` changes (so pending syncs of them must
/// run first).
fn names_rebound(request: &IoRequest) -> Vec<&FileName> {
    match request {
        IoRequest::Rename { from, to } => vec![from, to],
        IoRequest::Remove { file } => vec![file],
        _ => Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use haven_runtime::{IoDone, IoError};

    pub(crate) fn name(s: &str) -> FileName {
        FileName::new(s).unwrap()
    }

    /// A fresh, empty directory for one test.
    pub(crate) fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("haven-net-disk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The completion of request `id`.
    fn result_of(done: &[Completion], id: u64) -> IoResult {
        done.iter().find(|(i, _)| i.0 == id).map(|(_, r)| r.clone()).expect("every request completes")
    }

    /// Runs `requests` as one batch (all queued before the worker starts)
    /// and returns the completions in arrival order and the counters.
    fn run_as_one_batch(tag: &str, requests: Vec<IoRequest>) -> (Vec<Completion>, crate::CountersSnapshot) {
        let dir = temp_dir(tag);
        let counters = Arc::new(Counters::default());
        let (tx, rx) = std_mpsc::sync_channel(64);
        let (done, mut completions) = mpsc::channel(64);
        let n = requests.len();
        for (i, request) in requests.into_iter().enumerate() {
            tx.send((IoId(i as u64), request)).unwrap();
        }
        drop(tx);
        let files = OpenFiles::new(dir.clone());
        Worker { dir: dir.clone(), files, batch_len_max: 64, counters: counters.clone(), done }.run(&rx);
        let got: Vec<Completion> = std::iter::from_fn(|| completions.try_recv().ok()).collect();
        assert_eq!(got.len(), n, "every request completes exactly once");
        std::fs::remove_dir_all(&dir).unwrap();
        (got, counters.snapshot())
    }

    #[test]
    fn syncs_of_one_file_in_a_batch_share_one_fsync() {
        let f = name("wal");
        let mut requests = vec![IoRequest::Write { file: f.clone(), offset: 0, data: b"abc".to_vec() }];
        requests.extend((0..5).map(|_| IoRequest::Sync { file: f.clone() }));
        requests.extend((0..3).map(|_| IoRequest::SyncDir));
        let (done, counters) = run_as_one_batch("coalesce", requests);
        assert_eq!(counters.disk_syncs.count, 2, "one data sync and one directory sync");
        assert_eq!(counters.disk_syncs.buckets.iter().sum::<u64>(), 2, "each fsync timed once: {counters:?}");
        assert!(counters.disk_syncs.nanos > 0, "{counters:?}");
        assert_eq!(done.iter().filter(|(_, r)| *r == Ok(IoDone::Synced)).count(), 5);
        assert_eq!(done.iter().filter(|(_, r)| *r == Ok(IoDone::DirSynced)).count(), 3);
    }

    #[test]
    fn write_syncs_share_their_files_fsync_with_the_batchs_syncs() {
        let (f, g) = (name("f"), name("g"));
        let requests = vec![
            IoRequest::WriteSync { file: f.clone(), offset: 0, data: b"abc".to_vec() },
            IoRequest::Sync { file: f.clone() },
            IoRequest::WriteSync { file: f.clone(), offset: 3, data: b"def".to_vec() },
            IoRequest::WriteSync { file: g.clone(), offset: 0, data: b"xyz".to_vec() },
            IoRequest::Read { file: f.clone(), offset: 0, len_max: 16 },
        ];
        let (done, counters) = run_as_one_batch("write-sync", requests);
        assert_eq!(counters.disk_syncs.count, 2, "one fsync per file");
        let result = |id: u64| result_of(&done, id);
        assert_eq!(result(4), Ok(IoDone::Read(b"abcdef".to_vec())), "the writes ran in order, before the syncs");
        for id in 0..4 {
            assert_eq!(result(id), Ok(IoDone::Synced), "request {id}");
        }
    }

    #[test]
    fn a_rename_flushes_the_pending_sync_of_its_source_first() {
        let (a, b) = (name("a"), name("b"));
        let requests = vec![
            IoRequest::Write { file: a.clone(), offset: 0, data: b"x".to_vec() },
            IoRequest::Sync { file: a.clone() },
            IoRequest::Rename { from: a.clone(), to: b.clone() },
            IoRequest::Sync { file: a.clone() },
        ];
        let (done, counters) = run_as_one_batch("rebind", requests);
        let result = |id: u64| result_of(&done, id);
        // The first sync ran on the file before it moved; the second finds no `a`.
        assert_eq!(result(1), Ok(IoDone::Synced));
        assert_eq!(result(2), Ok(IoDone::Renamed));
        assert_eq!(result(3), Err(IoError::NotFound));
        assert_eq!(counters.disk_syncs.count, 2);
        let order: Vec<u64> = done.iter().map(|(id, _)| id.0).collect();
        assert_eq!(order, vec![0, 1, 2, 3]);
    }

    #[test]
    fn oversized_requests_fail_without_touching_the_disk() {
        let read = IoRequest::Read { file: name("f"), offset: 0, len_max: u32::MAX };
        let (done, _) = run_as_one_batch("limits", vec![read]);
        assert!(matches!(done[0].1, Err(IoError::TooLarge { .. })), "{:?}", done[0]);
    }
}
