//! One disk request on a real file system.
//!
//! In: a node's directory and one [`IoRequest`] (limits already checked).
//! Out: the [`IoResult`] the runtime's disk interface promises, with OS
//! errors mapped to `NotFound`, `NoSpace` or `Other(message)`, and a failed
//! fsync to `SyncFailed(message)`.
//!
//! Blocking: only the disk worker thread calls these.

use crate::open_files::OpenFiles;
use haven_runtime::{FileInfo, FileName, IoDone, IoError, IoRequest, IoResult};
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

/// Executes one request. Writes and syncs go through `files`, the worker's
/// open handles; a rename or remove first closes the handles of the names it
/// rebinds. The worker runs `Sync`, `SyncDir` and the sync half of
/// `WriteSync` itself, so that one fsync serves every request of a batch.
pub(crate) fn execute(dir: &Path, files: &mut OpenFiles, request: &IoRequest) -> IoResult {
    let result = match request {
        IoRequest::Read { file, offset, len_max } => read(&dir.join(file.as_str()), *offset, *len_max),
        IoRequest::Write { file, offset, data } => return files.write(file, *offset, data),
        IoRequest::WriteSync { file, offset, data } => {
            files.write(file, *offset, data)?;
            return files.sync(file);
        }
        IoRequest::Sync { file } => return files.sync(file),
        IoRequest::Truncate { file, len } => OpenOptions::new()
            .write(true)
            .open(dir.join(file.as_str()))
            .and_then(|f| f.set_len(*len))
            .map(|()| IoDone::Truncated),
        IoRequest::Rename { from, to } => {
            files.forget(from);
            files.forget(to);
            fs::rename(dir.join(from.as_str()), dir.join(to.as_str())).map(|()| IoDone::Renamed)
        }
        IoRequest::Remove { file } => {
            files.forget(file);
            match fs::remove_file(dir.join(file.as_str())) {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(IoDone::Removed),
                other => other.map(|()| IoDone::Removed),
            }
        }
        IoRequest::List => list(dir).map(IoDone::Listed),
        IoRequest::SyncDir => return sync_dir(dir),
    };
    result.map_err(map_error)
}

/// Makes the completed creates, renames and removes in `dir` durable. As
/// for a file, a failed fsync is `SyncFailed` (what it covered is unknown);
/// failing to open the directory is an ordinary error.
pub(crate) fn sync_dir(dir: &Path) -> IoResult {
    let handle = File::open(dir).map_err(map_error)?;
    handle.sync_all().map_err(|e| IoError::SyncFailed(e.to_string()))?;
    Ok(IoDone::DirSynced)
}

fn read(path: &Path, offset: u64, len_max: u32) -> io::Result<IoDone> {
    let mut file = File::open(path)?;
    let len_file = file.metadata()?.len();
    // Size the buffer by what the file holds, not by what was asked for.
    let len = u64::from(len_max).min(len_file.saturating_sub(offset));
    let mut data = Vec::with_capacity(len as usize);
    file.seek(SeekFrom::Start(offset))?;
    file.take(u64::from(len_max)).read_to_end(&mut data)?;
    Ok(IoDone::Read(data))
}

/// Regular files with valid names, sorted; anything else in the directory
/// (subdirectories, foreign names) is not the component's and is skipped.
fn list(dir: &Path) -> io::Result<Vec<FileInfo>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().and_then(|n| FileName::new(n).ok()) else { continue };
        match entry.metadata() {
            Ok(meta) if meta.is_file() => files.push(FileInfo { name, len: meta.len() }),
            Ok(_) => {}
            // Removed between the directory read and the stat.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

pub(crate) fn map_error(e: io::Error) -> IoError {
    match e.kind() {
        ErrorKind::NotFound => IoError::NotFound,
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => IoError::NoSpace,
        _ => IoError::Other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_map_to_the_runtime_kinds() {
        assert_eq!(map_error(io::Error::from(ErrorKind::NotFound)), IoError::NotFound);
        assert_eq!(map_error(io::Error::from_raw_os_error(28)), IoError::NoSpace, "ENOSPC on Linux");
        assert!(matches!(map_error(io::Error::from(ErrorKind::PermissionDenied)), IoError::Other(_)));
    }

    #[test]
    fn a_directory_syncs_and_a_missing_one_is_not_found() {
        let dir = crate::disk::tests::temp_dir("sync-dir");
        assert_eq!(sync_dir(&dir), Ok(IoDone::DirSynced));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(sync_dir(&dir), Err(IoError::NotFound), "an open that fails is not a failed fsync");
    }
}
