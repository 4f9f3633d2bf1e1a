//! A tiny tmpfs mounted for one test, unmounted when dropped (test support).
//!
//! In: a directory and a size. Out: the mounted file system, a filler file
//! that takes all its space but `room_bytes`, and the unmount on drop (even
//! on panic; lazily, in case a station still holds a file in it). Mounting
//! needs root: when it fails the caller is told why and skips.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Written at a time while filling.
const FILL_CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir: dir.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Fills the file system, then gives back `room_bytes`; returns the
    /// filler's size.
    pub fn fill_leaving(&self, room_bytes: u64) -> std::io::Result<u64> {
        let mut file = std::fs::File::options().create(true).append(true).open(self.filler())?;
        let chunk = vec![0xa5u8; FILL_CHUNK_BYTES];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => return Err(e),
            }
        }
        let len = file.metadata()?.len().saturating_sub(room_bytes);
        file.set_len(len)?;
        Ok(len)
    }

    /// Frees the filler's space.
    pub fn empty(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.filler()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
