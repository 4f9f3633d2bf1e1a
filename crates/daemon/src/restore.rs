//! Seeding a new member's data directory from a backup
//! (`haven snapshot restore`).
//!
//! In: a backup's bytes, the new member's settings (its id, data directory
//! and the new cluster's `--initial-cluster`) and how far to move the
//! store's revision and the HA counters. Out: the data directory holding one snapshot file — the
//! backup's state with the new cluster's membership
//! (`haven_station::restore`) — which `haven station` with the same
//! settings opens as it would after a restart; or why not.
//!
//! The file is written as the WAL saves a snapshot: to `snapshot.tmp`,
//! synced, renamed, the directory synced; so a crash leaves either no
//! snapshot or the whole one. Only an empty (or missing) directory is
//! seeded: a member's existing log is never overwritten.

use crate::checks::check_data_dir;
use crate::config::StationConfig;
use crate::config_error::ConfigError;
use crate::run::{member_records, replica_config};
use haven_station::restore::{Bumps, RestoreError, RestoreSummary, restore};
use std::io::Write as _;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RestoreDirError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Backup(#[from] RestoreError),
    #[error(
        "--data-dir {path} is not empty; a restore seeds a new member's empty directory and never overwrites a log: \
         name a new directory, or move this one away"
    )]
    NotEmpty { path: PathBuf },
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Seeds `config.data_dir` with the backup `backup`, restored for the
/// cluster `config.members`.
pub fn restore_data_dir(
    backup: &[u8],
    config: &StationConfig,
    bumps: Bumps,
) -> Result<RestoreSummary, RestoreDirError> {
    let dir = &config.data_dir;
    let occupied = std::fs::read_dir(dir).map(|mut entries| entries.next().is_some()).unwrap_or(false);
    if occupied {
        return Err(RestoreDirError::NotEmpty { path: dir.clone() });
    }
    check_data_dir(dir)?;
    let (meta, data, summary) = restore(backup, &member_records(config), bumps)?;
    let wal_meta = haven_wal::SnapshotMeta { index: meta.last.index, term: meta.last.term };
    let file = haven_wal::snapshot_file_bytes(wal_meta, &data, &replica_config(config).wal);
    let (tmp, path) = (dir.join(haven_wal::SNAPSHOT_TMP_FILE), dir.join(haven_wal::SNAPSHOT_FILE));
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |source| RestoreDirError::Io { path, source }
    };
    let mut out = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    out.write_all(&file).map_err(io(&tmp))?;
    out.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    Ok(summary)
}
