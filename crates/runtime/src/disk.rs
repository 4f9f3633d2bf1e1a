//! The disk interface a component sees.
//!
//! In: an [`IoRequest`] a component starts through `Ctx::io`.
//! Out: later, an [`IoResult`] delivered to `Component::on_io`.
//!
//! Each node owns one flat directory of files. Semantics are those of a POSIX
//! file system, stated so the simulator can model them and break them:
//! - a completed `Write` is visible to later reads but is *volatile*: a crash
//!   may lose it, or tear it (keep a prefix), until a `Sync` of that file
//!   issued after the write has completed;
//! - a `WriteSync` is a `Write` followed by a `Sync` of its file, in one
//!   request: it completes, with `Synced`, once the write and every write of
//!   the file completed before it are durable. It saves a log the round trip
//!   between the two; until it completes, its write is as volatile as any;
//! - `Truncate` follows the same rule as a write;
//! - creating a file (first write), `Rename` and `Remove` change the directory
//!   and are durable only after a later `SyncDir` completes;
//! - operations may complete in any order; a component that needs an order
//!   waits for one completion before starting the next operation;
//! - a read may return corrupted bytes (the simulator injects this), so every
//!   record a component reads back must carry its own checksum.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Longest file name accepted, in bytes.
pub const FILE_NAME_BYTES_MAX: usize = 128;
/// Largest single read, in bytes. Larger files are read in pieces.
pub const READ_BYTES_MAX: u32 = 64 * 1024 * 1024;
/// Largest single write, in bytes.
pub const WRITE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// A file name inside a node's directory: `[A-Za-z0-9._-]{1,128}`, not `.` or `..`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileName(String);

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid file name {name:?}: use 1 to 128 of A-Z a-z 0-9 . _ - (and not '.' or '..')")]
pub struct FileNameError {
    pub name: String,
}

impl FileName {
    pub fn new(name: &str) -> Result<FileName, FileNameError> {
        let ok_len = !name.is_empty() && name.len() <= FILE_NAME_BYTES_MAX;
        let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if ok_len && ok_chars && name != "." && name != ".." {
            Ok(FileName(name.to_owned()))
        } else {
            Err(FileNameError { name: name.to_owned() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A disk operation a component asks its executor to perform.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IoRequest {
    /// Read up to `len_max` bytes from `offset`; short at end of file.
    /// Reading a file that does not exist fails with `NotFound`.
    Read { file: FileName, offset: u64, len_max: u32 },
    /// Write `data` at `offset`, creating the file if needed and extending it
    /// with zeros if `offset` is past its end.
    Write { file: FileName, offset: u64, data: Vec<u8> },
    /// Make every write and truncate of `file` completed before this request
    /// durable.
    Sync { file: FileName },
    /// `Write`, then `Sync` of the same file once the write has completed.
    /// A failed write fails the request with the write's error and syncs
    /// nothing (so it may be retried); a failed sync fails it with
    /// `SyncFailed`.
    WriteSync { file: FileName, offset: u64, data: Vec<u8> },
    /// Cut `file` to `len` bytes (or extend it with zeros).
    Truncate { file: FileName, len: u64 },
    /// Atomically replace `to` with `from`.
    Rename { from: FileName, to: FileName },
    /// Delete `file`; deleting a missing file is not an error.
    Remove { file: FileName },
    /// List the directory: every file with its current length, sorted by name.
    List,
    /// Make every create, rename and remove completed before this request durable.
    SyncDir,
}

impl fmt::Debug for IoRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoRequest::Read { file, offset, len_max } => write!(f, "read {file}@{offset}+{len_max}"),
            IoRequest::Write { file, offset, data } => write!(f, "write {file}@{offset}+{}", data.len()),
            IoRequest::Sync { file } => write!(f, "sync {file}"),
            IoRequest::WriteSync { file, offset, data } => write!(f, "write+sync {file}@{offset}+{}", data.len()),
            IoRequest::Truncate { file, len } => write!(f, "truncate {file} to {len}"),
            IoRequest::Rename { from, to } => write!(f, "rename {from} -> {to}"),
            IoRequest::Remove { file } => write!(f, "remove {file}"),
            IoRequest::List => f.write_str("list"),
            IoRequest::SyncDir => f.write_str("syncdir"),
        }
    }
}

/// One directory entry returned by `IoRequest::List`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub name: FileName,
    pub len: u64,
}

/// What a successful disk operation returns.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IoDone {
    Read(Vec<u8>),
    Written,
    Synced,
    Truncated,
    Renamed,
    Removed,
    Listed(Vec<FileInfo>),
    DirSynced,
}

impl fmt::Debug for IoDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoDone::Read(data) => write!(f, "read {} bytes", data.len()),
            IoDone::Written => f.write_str("written"),
            IoDone::Synced => f.write_str("synced"),
            IoDone::Truncated => f.write_str("truncated"),
            IoDone::Renamed => f.write_str("renamed"),
            IoDone::Removed => f.write_str("removed"),
            IoDone::Listed(files) => write!(f, "listed {} files", files.len()),
            IoDone::DirSynced => f.write_str("dir synced"),
        }
    }
}

/// Why a disk operation failed. Operational: the component decides what to
/// do (retry, report, stop), the executor never panics on these.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum IoError {
    #[error("file not found")]
    NotFound,
    #[error("no space left on device")]
    NoSpace,
    #[error("request too large: {len} bytes, limit {len_max}")]
    TooLarge { len: u64, len_max: u64 },
    /// A sync failed. What it was to make durable is lost or unknown, and
    /// a later successful sync proves nothing about it (the kernel may have
    /// dropped the dirty pages), so the caller must not retry it.
    #[error("sync failed: {0}")]
    SyncFailed(String),
    #[error("i/o error: {0}")]
    Other(String),
}

pub type IoResult = Result<IoDone, IoError>;

impl IoRequest {
    /// Checks the request against the interface's limits; executors call this
    /// before doing anything, so a component cannot make them allocate
    /// unboundedly.
    pub fn check_limits(&self) -> Result<(), IoError> {
        match self {
            IoRequest::Read { len_max, .. } if *len_max > READ_BYTES_MAX => {
                Err(IoError::TooLarge { len: u64::from(*len_max), len_max: u64::from(READ_BYTES_MAX) })
            }
            IoRequest::Write { data, .. } | IoRequest::WriteSync { data, .. } if data.len() > WRITE_BYTES_MAX => {
                Err(IoError::TooLarge { len: data.len() as u64, len_max: WRITE_BYTES_MAX as u64 })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_validated() {
        assert!(FileName::new("wal-0001.log").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "sp ace", &"x".repeat(129)] {
            assert!(FileName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let file = FileName::new("f").unwrap();
        let read = IoRequest::Read { file, offset: 0, len_max: READ_BYTES_MAX + 1 };
        assert!(matches!(read.check_limits(), Err(IoError::TooLarge { .. })));
    }
}
