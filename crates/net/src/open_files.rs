//! The files the disk worker keeps open between requests.
//!
//! In: writes and syncs by file name, and the names a rename or remove is
//! about to rebind. Out: their results, from a handle opened once per file:
//! a log batch then costs a `pwrite` and an `fdatasync`, not also two opens,
//! two closes and a seek, which on a small batch cost as much as the write.
//!
//! A handle names an inode, not a path, so it is forgotten before anything
//! makes its name refer to another file (rename, remove); otherwise a write
//! after `Remove` and a re-create would go to the unlinked inode and be
//! lost. At most `FILES_OPEN_MAX` are kept; beyond that the first by name
//! is closed (the WAL's segments are numbered upward, so that is the oldest).
//!
//! Blocking: only the disk worker thread uses this.

use crate::disk_ops::map_error;
use haven_runtime::{FileName, IoDone, IoError, IoResult};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Handles kept open at once: the WAL's current segment, the snapshot being
/// written, the election epoch file, and a few to spare.
pub(crate) const FILES_OPEN_MAX: usize = 8;

#[derive(Debug)]
pub(crate) struct OpenFiles {
    dir: PathBuf,
    files: BTreeMap<FileName, File>,
}

impl OpenFiles {
    pub(crate) fn new(dir: PathBuf) -> OpenFiles {
        OpenFiles { dir, files: BTreeMap::new() }
    }

    /// Writes `data` at `offset`, creating the file if needed; a gap past
    /// the end reads as zeros.
    pub(crate) fn write(&mut self, file: &FileName, offset: u64, data: &[u8]) -> IoResult {
        let handle = self.writable(file)?;
        handle.write_all_at(data, offset).map_err(map_error)?;
        Ok(IoDone::Written)
    }

    /// Makes the completed writes of `file` durable. A failed fsync is
    /// `SyncFailed`; a file that does not exist is `NotFound`.
    pub(crate) fn sync(&mut self, file: &FileName) -> IoResult {
        let opened;
        let handle = match self.files.get(file) {
            Some(handle) => handle,
            None => {
                opened = File::open(self.dir.join(file.as_str())).map_err(map_error)?;
                &opened
            }
        };
        handle.sync_data().map_err(|e| IoError::SyncFailed(e.to_string()))?;
        Ok(IoDone::Synced)
    }

    /// Closes the handle of `file`, whose name is about to be rebound.
    pub(crate) fn forget(&mut self, file: &FileName) {
        self.files.remove(file);
    }

    #[cfg(test)]
    fn open_len(&self) -> usize {
        self.files.len()
    }

    fn writable(&mut self, file: &FileName) -> Result<&File, IoError> {
        if !self.files.contains_key(file) {
            let path = self.dir.join(file.as_str());
            let handle = OpenOptions::new().write(true).create(true).truncate(false).open(path).map_err(map_error)?;
            if self.files.len() >= FILES_OPEN_MAX {
                self.files.pop_first();
            }
            self.files.insert(file.clone(), handle);
        }
        Ok(&self.files[file])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::tests::{name, temp_dir};
    use crate::disk_ops::execute;
    use haven_runtime::IoRequest;

    fn write(file: &FileName, data: &[u8]) -> IoRequest {
        IoRequest::Write { file: file.clone(), offset: 0, data: data.to_vec() }
    }

    #[test]
    fn a_name_rebound_by_remove_or_rename_is_written_anew_not_through_the_old_handle() {
        let dir = temp_dir("rebind");
        let mut files = OpenFiles::new(dir.clone());
        let (tmp, snap) = (name("snapshot.tmp"), name("snapshot"));
        let run = |files: &mut OpenFiles, request: IoRequest| execute(&dir, files, &request).unwrap();
        // Rename closes its source's handle: the next write creates a new file.
        run(&mut files, write(&tmp, b"first"));
        run(&mut files, IoRequest::Rename { from: tmp.clone(), to: snap.clone() });
        run(&mut files, write(&tmp, b"second"));
        // Remove closes its file's handle.
        run(&mut files, IoRequest::Remove { file: tmp.clone() });
        run(&mut files, write(&tmp, b"third"));
        // Rename closes its target's handle, which named the replaced file.
        run(&mut files, write(&snap, b"F"));
        run(&mut files, IoRequest::Rename { from: tmp.clone(), to: snap.clone() });
        run(&mut files, write(&snap, b"T"));
        assert_eq!(std::fs::read(dir.join("snapshot")).unwrap(), b"Third");
        run(&mut files, write(&tmp, b"fourth"));
        assert_eq!(std::fs::read(dir.join("snapshot.tmp")).unwrap(), b"fourth");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn at_most_files_open_max_handles_are_kept_and_a_missing_file_syncs_as_not_found() {
        let dir = temp_dir("bound");
        let mut files = OpenFiles::new(dir.clone());
        for i in 0..FILES_OPEN_MAX + 3 {
            let file = name(&format!("f{i:02}"));
            files.write(&file, 0, b"x").unwrap();
            assert_eq!(files.sync(&file), Ok(IoDone::Synced));
        }
        assert_eq!(files.open_len(), FILES_OPEN_MAX);
        assert_eq!(files.sync(&name("f00")), Ok(IoDone::Synced), "a closed handle is reopened to sync");
        assert_eq!(files.sync(&name("missing")), Err(IoError::NotFound));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
