//! The WAL's limits.
//!
//! In: a [`WalConfig`] chosen by the node's configuration (or a test).
//! Out: the same, validated, so that every bound the WAL relies on holds:
//! a batch fits one write and one segment, a record fits one batch, and no
//! read or write exceeds the runtime's disk limits.

use crate::format::RECORD_OVERHEAD_BYTES;
use haven_runtime::disk::{READ_BYTES_MAX, WRITE_BYTES_MAX};
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// A segment is rolled before a batch would make it longer than this.
    pub segment_bytes_max: u64,
    /// Bytes of records in one group-commit write (one write, one sync).
    pub batch_bytes_max: usize,
    /// A write that runs past the zeros already written to its segment also
    /// writes zeros up to the next multiple of this (0: never, and every
    /// batch grows the file). Later batches then overwrite synced zeros, so
    /// their fdatasync writes data only: no file size to record, no journal
    /// commit. With three stations syncing on one ext4 disk, 4 KiB and a
    /// fdatasync took 0.143 ms overwriting against 0.25 ms appending.
    pub zero_fill_bytes: u64,
    /// Bytes of records accepted and not yet written; beyond, requests are
    /// refused with `WalError::QueueFull` so the caller pushes back.
    pub queue_bytes_max: usize,
    /// Largest entry payload accepted (and read back).
    pub entry_bytes_max: u32,
    /// Largest hard state accepted (and read back).
    pub hard_state_bytes_max: u32,
    /// Entry payload bytes recovery holds in memory; a larger log fails to open.
    pub recover_bytes_max: u64,
    /// Largest snapshot accepted (and read back).
    pub snapshot_bytes_max: u64,
    /// Snapshot data bytes per chunk record, written one chunk per write.
    pub snapshot_chunk_bytes_max: usize,
    /// Bytes asked for by one read during recovery.
    pub read_bytes_max: u32,
    /// Attempts of one batch write (e.g. on a full disk) before the WAL fails.
    pub write_attempts_max: u32,
    /// Delay before the first retry of a failed write, doubled each time.
    pub retry_delay_ms_min: u64,
    pub retry_delay_ms_max: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes_max: 64 << 20,
            batch_bytes_max: 4 << 20,
            zero_fill_bytes: 256 << 10,
            queue_bytes_max: 32 << 20,
            entry_bytes_max: 1 << 20,
            hard_state_bytes_max: 4 << 10,
            recover_bytes_max: 1 << 30,
            snapshot_bytes_max: 1 << 30,
            snapshot_chunk_bytes_max: 4 << 20,
            read_bytes_max: 4 << 20,
            write_attempts_max: 8,
            retry_delay_ms_min: 10,
            retry_delay_ms_max: 2_000,
        }
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{what} is {value}, it must be at least {min}")]
    TooSmall { what: &'static str, value: u64, min: u64 },
    #[error("{what} is {value}, it must be at most {max}")]
    TooLarge { what: &'static str, value: u64, max: u64 },
}

fn at_least(what: &'static str, value: u64, min: u64) -> Result<(), ConfigError> {
    if value < min { Err(ConfigError::TooSmall { what, value, min }) } else { Ok(()) }
}

fn at_most(what: &'static str, value: u64, max: u64) -> Result<(), ConfigError> {
    if value > max { Err(ConfigError::TooLarge { what, value, max }) } else { Ok(()) }
}

impl WalConfig {
    /// Largest record (frame included) holding one entry.
    pub(crate) fn entry_record_bytes_max(&self) -> usize {
        self.entry_bytes_max as usize + RECORD_OVERHEAD_BYTES
    }

    /// Largest record (frame included) holding one hard state.
    pub(crate) fn hard_state_record_bytes_max(&self) -> usize {
        self.hard_state_bytes_max as usize + RECORD_OVERHEAD_BYTES
    }

    /// Largest record payload a segment may hold: anything longer is corrupt.
    pub(crate) fn record_payload_bytes_max(&self) -> u32 {
        let largest = self.entry_record_bytes_max().max(self.hard_state_record_bytes_max());
        u32::try_from(largest).expect("validated: records are below 4 GiB")
    }

    /// Largest single write of the log: a new segment's header, its copy of
    /// the hard state, one batch, and the zeros written after it.
    pub(crate) fn log_write_bytes_max(&self) -> usize {
        let zeros = usize::try_from(self.zero_fill_bytes).unwrap_or(usize::MAX);
        (RECORD_OVERHEAD_BYTES + self.hard_state_record_bytes_max() + self.batch_bytes_max).saturating_add(zeros)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least("entry_bytes_max", u64::from(self.entry_bytes_max), 1)?;
        at_most("entry_bytes_max", u64::from(self.entry_bytes_max), u64::from(u32::MAX / 2))?;
        at_most("hard_state_bytes_max", u64::from(self.hard_state_bytes_max), u64::from(u32::MAX / 2))?;
        at_least("batch_bytes_max", self.batch_bytes_max as u64, self.entry_record_bytes_max() as u64)?;
        at_least("batch_bytes_max", self.batch_bytes_max as u64, self.hard_state_record_bytes_max() as u64)?;
        at_least("queue_bytes_max", self.queue_bytes_max as u64, self.batch_bytes_max as u64)?;
        at_most("zero_fill_bytes", self.zero_fill_bytes, WRITE_BYTES_MAX as u64)?;
        at_most(
            "batch_bytes_max + zero_fill_bytes + overheads",
            self.log_write_bytes_max() as u64,
            WRITE_BYTES_MAX as u64,
        )?;
        at_least("segment_bytes_max", self.segment_bytes_max, self.log_write_bytes_max() as u64)?;
        at_least("recover_bytes_max", self.recover_bytes_max, self.segment_bytes_max)?;
        at_least("snapshot_chunk_bytes_max", self.snapshot_chunk_bytes_max as u64, 1)?;
        let chunk_write = self.snapshot_chunk_bytes_max + RECORD_OVERHEAD_BYTES;
        at_most("snapshot_chunk_bytes_max + overhead", chunk_write as u64, WRITE_BYTES_MAX as u64)?;
        at_least("read_bytes_max", u64::from(self.read_bytes_max), 1)?;
        at_most("read_bytes_max", u64::from(self.read_bytes_max), u64::from(READ_BYTES_MAX))?;
        at_least("write_attempts_max", u64::from(self.write_attempts_max), 1)?;
        at_least("retry_delay_ms_max", self.retry_delay_ms_max, self.retry_delay_ms_min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid() {
        assert_eq!(WalConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_batch_that_cannot_fit_a_segment_is_rejected() {
        let config = WalConfig { segment_bytes_max: 1 << 20, ..WalConfig::default() };
        assert!(matches!(config.validate(), Err(ConfigError::TooSmall { what: "segment_bytes_max", .. })));
    }

    #[test]
    fn an_entry_that_cannot_fit_a_batch_is_rejected() {
        let config = WalConfig { batch_bytes_max: 1 << 20, ..WalConfig::default() };
        assert!(matches!(config.validate(), Err(ConfigError::TooSmall { what: "batch_bytes_max", .. })));
    }
}
