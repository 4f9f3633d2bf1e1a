//! Saving a snapshot atomically.
//!
//! In: the snapshot's metadata and data, then the completion of each step.
//! Out: the next disk request, and finally success or the failed step.
//!
//! Steps: remove any old `snapshot.tmp` (so no stale bytes trail the new
//! ones), write it chunk by chunk (each write at most one chunk record, so
//! below `WRITE_BYTES_MAX`), sync it, rename it over `snapshot`, sync the
//! directory. A crash before the directory sync leaves the old `snapshot`
//! (the rename is undone), after it the new one; the data was synced
//! before the rename, so the name never points at a partial file.

use crate::entry::SnapshotMeta;
use crate::error::DiskOp;
use crate::snapshot_file::{self, SNAPSHOT_FILE, SNAPSHOT_TMP_FILE};
use bytes::Bytes;
use haven_runtime::{FileName, IoDone, IoError, IoRequest, IoResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    RemoveTmp,
    Write,
    SyncTmp,
    Rename,
    SyncDir,
}

#[derive(Debug)]
pub(crate) enum SaveNext {
    Io(IoRequest),
    Done(SnapshotMeta),
    Failed { meta: SnapshotMeta, op: DiskOp, error: IoError },
}

#[derive(Debug)]
pub(crate) struct SnapshotSave {
    meta: SnapshotMeta,
    /// Shared with the replica, which keeps it to send to followers.
    data: Bytes,
    chunk_bytes_max: usize,
    step: Step,
    /// The next piece of the file to write, and where.
    piece: usize,
    offset: u64,
}

fn tmp() -> FileName {
    FileName::new(SNAPSHOT_TMP_FILE).expect("constant file names are valid")
}

impl SnapshotSave {
    pub(crate) fn start(meta: SnapshotMeta, data: Bytes, chunk_bytes_max: usize) -> (SnapshotSave, IoRequest) {
        let save = SnapshotSave { meta, data, chunk_bytes_max, step: Step::RemoveTmp, piece: 0, offset: 0 };
        (save, IoRequest::Remove { file: tmp() })
    }

    /// The next write of the file, or `None` once all pieces are written.
    fn next_write(&mut self) -> Option<IoRequest> {
        let data = snapshot_file::piece(self.meta, &self.data, self.chunk_bytes_max, self.piece)?;
        assert!(data.len() <= haven_runtime::disk::WRITE_BYTES_MAX, "chunks are bounded by WalConfig");
        let offset = self.offset;
        self.piece += 1;
        self.offset += data.len() as u64;
        Some(IoRequest::Write { file: tmp(), offset, data })
    }

    pub(crate) fn on_io(&mut self, result: IoResult) -> SaveNext {
        let done = match result {
            Ok(done) => done,
            Err(error) => {
                let op = match self.step {
                    Step::RemoveTmp => DiskOp::Remove,
                    Step::Write => DiskOp::Write,
                    Step::SyncTmp => DiskOp::Sync,
                    Step::Rename => DiskOp::Rename,
                    Step::SyncDir => DiskOp::SyncDir,
                };
                return SaveNext::Failed { meta: self.meta, op, error };
            }
        };
        let request = match (self.step, done) {
            (Step::RemoveTmp, IoDone::Removed) | (Step::Write, IoDone::Written) => match self.next_write() {
                Some(write) => {
                    self.step = Step::Write;
                    write
                }
                None => {
                    self.step = Step::SyncTmp;
                    IoRequest::Sync { file: tmp() }
                }
            },
            (Step::SyncTmp, IoDone::Synced) => {
                self.step = Step::Rename;
                let to = FileName::new(SNAPSHOT_FILE).expect("constant file names are valid");
                IoRequest::Rename { from: tmp(), to }
            }
            (Step::Rename, IoDone::Renamed) => {
                self.step = Step::SyncDir;
                IoRequest::SyncDir
            }
            (Step::SyncDir, IoDone::DirSynced) => return SaveNext::Done(self.meta),
            (step, done) => panic!("executor answered snapshot step {step:?} with {done:?}"),
        };
        SaveNext::Io(request)
    }
}
