//! Disk requests from a component, executed by a running node.
//!
//! In: a component that runs a fixed script of disk requests one after the
//! other (each waits for the previous completion) in a temporary data dir.
//! Out: checks every result against what the runtime's disk interface
//! promises, and the files left on the real disk.

mod common;

use common::{TempDir, WAIT_MAX, bind_any, test_limits};
use haven_net::NodeConfig;
use haven_runtime::{
    Component, CtxFor, FileInfo, FileName, IoDone, IoError, IoId, IoRequest, IoResult, NodeId, TimerId,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

fn name(s: &str) -> FileName {
    FileName::new(s).unwrap()
}

/// Runs `script` in order and outputs all results at the end.
#[derive(Debug)]
struct DiskScript {
    script: Vec<IoRequest>,
    next: usize,
    results: Vec<IoResult>,
}

impl DiskScript {
    fn issue_next(&mut self, ctx: &mut impl CtxFor<Self>) {
        match self.script.get(self.next) {
            Some(request) => {
                ctx.io(request.clone(), self.next);
                self.next += 1;
            }
            None => ctx.output(std::mem::take(&mut self.results)),
        }
    }
}

impl Component for DiskScript {
    type Msg = ();
    type Timer = ();
    type Io = usize;
    type Out = Vec<IoResult>;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.issue_next(ctx);
    }
    fn on_message(&mut self, _ctx: &mut impl CtxFor<Self>, _from: NodeId, _msg: ()) {}
    fn on_timer(&mut self, _ctx: &mut impl CtxFor<Self>, _id: TimerId, _timer: ()) {}
    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, _id: IoId, step: usize, result: IoResult) {
        assert_eq!(step, self.results.len(), "completions of a sequential script arrive in order");
        self.results.push(result);
        self.issue_next(ctx);
    }
}

/// Runs `script` on a fresh node whose data dir is `dir` and returns its results.
async fn run_script(dir: &TempDir, script: Vec<IoRequest>) -> Vec<IoResult> {
    let (listener, addr) = bind_any().await;
    let mut config = NodeConfig::new(NodeId(1), addr, BTreeMap::new(), dir.path().to_path_buf());
    config.limits = test_limits();
    let results: Arc<Mutex<Option<Vec<IoResult>>>> = Arc::default();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let mut done_tx = Some(done_tx);
    let sink = results.clone();
    let on_output = move |out: Vec<IoResult>| {
        *sink.lock().unwrap() = Some(out);
        if let Some(tx) = done_tx.take() {
            let _ = tx.send(());
        }
    };
    let component = DiskScript { script, next: 0, results: Vec::new() };
    let shutdown = async move {
        let _ = done_rx.await;
    };
    let run = haven_net::run(config, Some(listener), component, on_output, shutdown);
    tokio::time::timeout(WAIT_MAX, run).await.expect("script finishes in time").expect("node runs");
    results.lock().unwrap().take().expect("the script reported its results")
}

#[tokio::test]
async fn write_sync_read_rename_list_truncate_remove() {
    common::capture_logs();
    let dir = TempDir::new("disk");
    // Something in the directory that is not the component's: skipped by List.
    std::fs::create_dir_all(dir.path().join("subdir")).unwrap();
    let (tmp, log, hole) = (name("log.tmp"), name("log"), name("hole"));
    let script = vec![
        IoRequest::Write { file: tmp.clone(), offset: 0, data: b"hello world".to_vec() },
        IoRequest::Write { file: tmp.clone(), offset: 6, data: b"WORLD".to_vec() },
        IoRequest::Sync { file: tmp.clone() },
        IoRequest::Read { file: tmp.clone(), offset: 0, len_max: 100 },
        IoRequest::Read { file: tmp.clone(), offset: 6, len_max: 3 },
        IoRequest::Rename { from: tmp.clone(), to: log.clone() },
        IoRequest::SyncDir,
        IoRequest::Read { file: tmp.clone(), offset: 0, len_max: 10 },
        IoRequest::Truncate { file: log.clone(), len: 5 },
        IoRequest::Write { file: hole.clone(), offset: 3, data: b"x".to_vec() },
        IoRequest::List,
        IoRequest::Read { file: hole.clone(), offset: 0, len_max: 10 },
        IoRequest::Remove { file: hole.clone() },
        IoRequest::Remove { file: hole.clone() },
        IoRequest::Sync { file: hole.clone() },
        IoRequest::Read { file: log.clone(), offset: 0, len_max: 64 * 1024 * 1024 + 1 },
        IoRequest::List,
    ];
    let results = run_script(&dir, script).await;
    let expected: Vec<IoResult> = vec![
        Ok(IoDone::Written),
        Ok(IoDone::Written),
        Ok(IoDone::Synced),
        Ok(IoDone::Read(b"hello WORLD".to_vec())),
        Ok(IoDone::Read(b"WOR".to_vec())),
        Ok(IoDone::Renamed),
        Ok(IoDone::DirSynced),
        Err(IoError::NotFound),
        Ok(IoDone::Truncated),
        Ok(IoDone::Written),
        Ok(IoDone::Listed(vec![FileInfo { name: hole.clone(), len: 4 }, FileInfo { name: log.clone(), len: 5 }])),
        Ok(IoDone::Read(vec![0, 0, 0, b'x'])),
        Ok(IoDone::Removed),
        Ok(IoDone::Removed),
        Err(IoError::NotFound),
        Err(IoError::TooLarge { len: 64 * 1024 * 1024 + 1, len_max: 64 * 1024 * 1024 }),
        Ok(IoDone::Listed(vec![FileInfo { name: log.clone(), len: 5 }])),
    ];
    for (i, (got, want)) in results.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "step {i}");
    }
    assert_eq!(results.len(), expected.len());
    assert_eq!(std::fs::read(dir.path().join("log")).unwrap(), b"hello");
    assert!(!dir.path().join("log.tmp").exists());
}

#[tokio::test]
async fn a_missing_data_dir_is_created_and_files_survive_a_restart() {
    common::capture_logs();
    let dir = TempDir::new("disk-restart");
    assert!(!dir.path().exists());
    let f = name("state");
    let write = vec![
        IoRequest::Write { file: f.clone(), offset: 0, data: b"v1".to_vec() },
        IoRequest::Sync { file: f.clone() },
        IoRequest::SyncDir,
    ];
    assert_eq!(run_script(&dir, write).await, vec![Ok(IoDone::Written), Ok(IoDone::Synced), Ok(IoDone::DirSynced)]);
    let read = vec![IoRequest::Read { file: f.clone(), offset: 0, len_max: 10 }];
    assert_eq!(run_script(&dir, read).await, vec![Ok(IoDone::Read(b"v1".to_vec()))]);
}
