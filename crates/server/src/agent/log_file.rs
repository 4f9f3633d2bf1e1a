//! An instance's output on disk, rotated by size.
//!
//! In: lines of a process's stdout and stderr. Out: `NAME.log` in the
//! agent's log directory, renamed to `NAME.log.1` (and the older ones
//! shifted up to `NAME.log.{files_max - 1}`, the oldest dropped) once it
//! would grow past `bytes_max`, so a chatty service never fills the disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    len: u64,
    bytes_max: u64,
    files_max: u32,
}

impl LogFile {
    /// Opens (appending to) `dir/name.log`.
    pub fn open(dir: &Path, name: &str, bytes_max: u64, files_max: u32) -> io::Result<LogFile> {
        assert!(bytes_max > 0 && files_max > 0, "a log must have room for a line and a file");
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.log"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        Ok(LogFile { path, file, len, bytes_max, files_max })
    }

    /// Appends one line (a newline is added), rotating first if it would
    /// not fit. A line longer than the limit is cut to it.
    pub fn line(&mut self, line: &[u8]) -> io::Result<()> {
        let line = &line[..line.len().min(usize::try_from(self.bytes_max - 1).unwrap_or(usize::MAX))];
        let len = line.len() as u64 + 1;
        if self.len + len > self.bytes_max {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.file.write_all(b"\n")?;
        self.len += len;
        Ok(())
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.files_max == 1 {
            self.file.set_len(0)?;
        } else {
            for n in (1..self.files_max - 1).rev() {
                let from = self.numbered(n);
                if from.exists() {
                    std::fs::rename(&from, self.numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.numbered(1))?;
            self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        }
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_rotates_and_keeps_at_most_files_max_files() {
        let dir = std::env::temp_dir().join(format!("haven-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut log = LogFile::open(&dir, "db-i1", 20, 3).unwrap();
        for i in 0..10 {
            log.line(format!("line {i:04}").as_bytes()).unwrap(); // 10 bytes a line
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert_eq!(read("db-i1.log"), "line 0008\nline 0009\n");
        assert_eq!(read("db-i1.log.1"), "line 0006\nline 0007\n");
        assert_eq!(read("db-i1.log.2"), "line 0004\nline 0005\n");
        assert!(!dir.join("db-i1.log.3").exists(), "older output is dropped");
        log.line(&[b'x'; 100]).unwrap();
        assert_eq!(read("db-i1.log").len(), 20, "an overlong line is cut to the limit");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
