//! Transcript tests: the exact disk requests the WAL makes, driven through
//! `haven_runtime::Host` over an in-memory directory.

use crate::common;

use common::{Cmd, HostRig, MemDisk, Out, entries, entry, small_config};
use haven_runtime::{IoDone, IoError, IoRequest};
use haven_wal::{DiskOp, Recovered, SegmentName, SnapshotMeta, Ticket, WalConfig, WalError, WalEvent};

fn opened(out: Out) -> Recovered {
    match out {
        Out::Wal(WalEvent::Opened(recovered)) => *recovered,
        other => panic!("expected Opened, got {other:?}"),
    }
}

/// A log batch's write: its records and their sync in one request.
fn is_log_write(r: &IoRequest) -> bool {
    matches!(r, IoRequest::WriteSync { .. })
}

fn is_sync(r: &IoRequest) -> bool {
    matches!(r, IoRequest::Sync { .. })
}

#[test]
fn an_empty_directory_opens_to_an_empty_log_after_a_directory_sync() {
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    let recovered = opened(rig.open());
    assert_eq!(
        recovered,
        Recovered { hard_state: None, snapshot: None, entries: vec![], index_last: 0, torn_tail: None }
    );
    assert_eq!(rig.completed, vec![IoRequest::List, IoRequest::SyncDir]);
}

#[test]
fn appends_made_during_a_sync_share_one_write_and_sync() {
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    rig.open();
    let mark = rig.completed.len();
    rig.deliver(Cmd::Append(vec![entry(1, 1)]));
    assert_eq!(rig.pending.len(), 1, "the first append starts a write at once");
    let n = 8;
    for i in 2..2 + n {
        rig.deliver(Cmd::Append(vec![entry(i, 1)]));
    }
    rig.deliver(Cmd::HardState(b"term=1 vote=n1".to_vec()));
    assert_eq!(rig.pending.len(), 1, "nothing more is issued while the batch is in flight");
    rig.settle();
    let issued = &rig.completed[mark..];
    let first_segment = SegmentName { seq: 1, index_first: 1 }.file();
    // First batch: a new segment, so the directory is synced too.
    assert!(matches!(&issued[0], IoRequest::WriteSync { file, offset: 0, .. } if *file == first_segment));
    assert_eq!(issued[1], IoRequest::SyncDir);
    // Second batch: all n appends and the hard state, in one request.
    assert_eq!(issued[2..].iter().filter(|r| is_log_write(r)).count(), 1, "{issued:?}");
    assert!(!issued.iter().any(is_sync), "the write carries its sync: {issued:?}");
    assert_eq!(issued.len(), 3, "{issued:?}");
    let durable: Vec<WalEvent> =
        rig.wal_events().into_iter().filter(|e| matches!(e, WalEvent::Durable { .. })).collect();
    assert_eq!(
        durable,
        vec![
            WalEvent::Durable { through: Ticket(1), index_last: 1, hard_state: false },
            WalEvent::Durable { through: Ticket(n + 2), index_last: n + 1, hard_state: true },
        ]
    );
}

#[test]
fn nothing_is_acknowledged_before_its_sync_completes() {
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Append(entries(1, 3, 1)));
    rig.complete(); // write and sync
    assert!(
        !rig.wal_events().iter().any(|e| matches!(e, WalEvent::Durable { .. })),
        "a new segment needs its dir sync"
    );
    rig.complete(); // syncdir
    assert!(rig.wal_events().iter().any(|e| matches!(e, WalEvent::Durable { through: Ticket(1), .. })));
}

#[test]
fn a_full_queue_refuses_requests_and_the_wal_keeps_going() {
    let config = small_config();
    let mut rig = HostRig::new(config.clone(), MemDisk::default());
    rig.open();
    let mut index = 1;
    let mut refused = None;
    for _ in 0..200 {
        rig.deliver(Cmd::Append(vec![entry(index, 1)]));
        match rig.outputs.last() {
            Some(Out::Accepted { .. }) => index += 1,
            Some(Out::Rejected { error, .. }) => {
                refused = Some(error.clone());
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(refused, Some(WalError::QueueFull { bytes_max, .. }) if bytes_max == config.queue_bytes_max));
    assert!(rig.wal().queue_bytes() <= config.queue_bytes_max);
    rig.settle();
    rig.deliver(Cmd::Append(vec![entry(index, 1)]));
    assert!(matches!(rig.outputs.last(), Some(Out::Accepted { .. })), "accepted again once the queue drained");
    rig.settle();
    let last = rig.wal_events().into_iter().rev().find_map(|e| match e {
        WalEvent::Durable { index_last, .. } => Some(index_last),
        _ => None,
    });
    assert_eq!(last, Some(index));
}

#[test]
fn bad_requests_are_refused_with_typed_errors() {
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Append(entries(1, 3, 2)));
    let cases = [
        (Cmd::Append(vec![]), WalError::NoEntries),
        (Cmd::Append(vec![entry(5, 2)]), WalError::NotContiguous { index: 5, expected: 4 }),
        (Cmd::Append(vec![entry(4, 1)]), WalError::TermRegress { index: 4, term: 1, term_prev: 2 }),
        (Cmd::Truncate(5), WalError::TruncateOutOfRange { index_from: 5, index_min: 1, index_max: 4 }),
        (Cmd::Truncate(0), WalError::TruncateOutOfRange { index_from: 0, index_min: 1, index_max: 4 }),
        (Cmd::HardState(vec![0; 33]), WalError::TooLarge { what: "hard state", bytes: 33, bytes_max: 32 }),
        (Cmd::Compact(1), WalError::CompactBeyondSnapshot { index: 1, index_snapshot: 0 }),
        (
            Cmd::Snapshot(SnapshotMeta { index: 0, term: 0 }, vec![]),
            WalError::SnapshotStale { index: 0, index_saved: 0 },
        ),
    ];
    for (cmd, error) in cases {
        rig.deliver(cmd.clone());
        assert_eq!(rig.outputs.last(), Some(&Out::Rejected { cmd, error }));
    }
    let big = haven_wal::Entry { index: 4, term: 2, payload: vec![0; 65].into() };
    rig.deliver(Cmd::Append(vec![big]));
    assert!(matches!(rig.outputs.last(), Some(Out::Rejected { error: WalError::TooLarge { .. }, .. })));
}

#[test]
fn a_truncation_and_the_entries_replacing_it_are_durable_together() {
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Append(entries(1, 5, 1)));
    rig.settle();
    // A vote in flight makes the next two requests queue up together.
    rig.deliver(Cmd::HardState(b"term=2".to_vec()));
    let mark = rig.completed.len() + 1;
    rig.deliver(Cmd::Truncate(3));
    rig.deliver(Cmd::Append(entries(3, 4, 2)));
    rig.settle();
    assert_eq!(rig.completed[mark..].iter().filter(|r| is_log_write(r)).count(), 1, "one write for both");
    assert!(matches!(rig.wal_events().last(), Some(WalEvent::Durable { through: Ticket(4), index_last: 4, .. })));
    // Reopen on the same files: the truncation applies.
    let mut rig = HostRig::new(small_config(), rig.disk);
    let recovered = opened(rig.open());
    let expected: Vec<_> = entries(1, 2, 1).into_iter().chain(entries(3, 4, 2)).collect();
    assert_eq!(recovered.entries, expected);
}

#[test]
fn a_failed_write_is_reported_and_retried_at_the_same_offset() {
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Append(entries(1, 2, 1)));
    let first = rig.complete_with(Err(IoError::NoSpace));
    assert_eq!(
        rig.wal_events().last(),
        Some(&WalEvent::DiskError { op: DiskOp::Write, error: IoError::NoSpace, attempt: 1 })
    );
    assert!(rig.pending.is_empty() && rig.timers.len() == 1, "the retry waits for its timer");
    rig.deliver(Cmd::Append(entries(3, 3, 1)));
    assert!(rig.pending.is_empty(), "no new batch while the failed one waits");
    rig.fire_timers();
    assert_eq!(rig.pending.front().map(|p| &p.1), Some(&first), "the same bytes at the same place");
    rig.settle();
    assert!(matches!(rig.wal_events().last(), Some(WalEvent::Durable { through: Ticket(2), index_last: 3, .. })));
}

#[test]
fn a_retried_batch_of_several_requests_rewrites_the_same_records_and_zeros() {
    // The writer keeps a batch as the requests' records and assembles the
    // write from them; a retry must assemble exactly the bytes that failed.
    // Zeros every 64 bytes: the second batch runs past the first one's.
    let mut rig = HostRig::new(WalConfig { zero_fill_bytes: 64, ..small_config() }, MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Append(entries(1, 1, 1)));
    rig.deliver(Cmd::Append(entries(2, 3, 1)));
    rig.deliver(Cmd::Append(entries(4, 4, 1)));
    let first = rig.complete();
    assert!(is_log_write(&first), "the first append goes alone: {first:?}");
    assert_eq!(rig.complete(), IoRequest::SyncDir, "it started the segment");
    let failed = rig.complete_with(Err(IoError::NoSpace));
    let IoRequest::WriteSync { data, offset, .. } = &failed else { panic!("a log write: {failed:?}") };
    assert!(*offset > 0 && data.ends_with(&[0]), "records, then zeros: {failed:?}");
    assert_eq!((*offset as usize + data.len()) % 64, 0, "the zeros end on a multiple of zero_fill_bytes");
    rig.fire_timers();
    let retried = rig.complete();
    assert_eq!(retried, failed, "the same records and zeros at the same place");
    let durable = rig.wal_events().last().cloned();
    assert!(
        matches!(durable, Some(WalEvent::Durable { through: Ticket(3), index_last: 4, .. })),
        "the retried write held both waiting requests: {durable:?}"
    );
}

#[test]
fn a_write_and_sync_failing_other_than_in_its_sync_is_retried_as_a_write() {
    // Only `SyncFailed` says the sync ran; any other error came from the
    // write, before anything was synced, so rewriting the bytes is safe.
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Append(entries(1, 2, 1)));
    let first = rig.complete_with(Err(IoError::Other("EIO".into())));
    let error = IoError::Other("EIO".into());
    assert_eq!(rig.wal_events().last(), Some(&WalEvent::DiskError { op: DiskOp::Write, error, attempt: 1 }));
    assert!(!rig.wal().is_failed());
    rig.fire_timers();
    assert_eq!(rig.pending.front().map(|p| &p.1), Some(&first));
    rig.settle();
    assert!(matches!(rig.wal_events().last(), Some(WalEvent::Durable { through: Ticket(1), index_last: 2, .. })));
}

#[test]
fn a_write_failing_every_attempt_fails_the_wal_without_acknowledging() {
    let config = small_config();
    let mut rig = HostRig::new(config.clone(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Append(entries(1, 2, 1)));
    for _ in 0..config.write_attempts_max {
        rig.complete_with(Err(IoError::NoSpace));
        rig.fire_timers();
    }
    let events = rig.wal_events();
    assert!(matches!(events.last(), Some(WalEvent::Failed { error: WalError::Disk { op: DiskOp::Write, .. } })));
    assert!(!events.iter().any(|e| matches!(e, WalEvent::Durable { .. })));
    assert!(rig.wal().is_failed());
}

#[test]
fn a_failed_sync_is_fatal_and_nothing_in_the_batch_is_acknowledged() {
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Append(entries(1, 2, 1)));
    rig.complete_with(Err(IoError::SyncFailed("EIO".into())));
    let events = rig.wal_events();
    assert!(matches!(events.last(), Some(WalEvent::Failed { error: WalError::Disk { op: DiskOp::Sync, .. } })));
    assert!(!events.iter().any(|e| matches!(e, WalEvent::Durable { .. })));
    rig.deliver(Cmd::Append(entries(3, 3, 1)));
    assert!(matches!(rig.outputs.last(), Some(Out::Rejected { error: WalError::Failed, .. })));
}

#[test]
fn segments_roll_at_the_size_limit_and_each_starts_with_the_hard_state() {
    let config = small_config();
    let mut rig = HostRig::new(config.clone(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::HardState(b"hs-1".to_vec()));
    for i in 1..=200 {
        rig.deliver(Cmd::Append(vec![entry(i, 1)]));
        rig.settle();
    }
    let segments = rig.wal().segments().to_vec();
    assert!(segments.len() >= 3, "{segments:?}");
    for segment in &segments {
        let image = &rig.disk.files[segment.file().as_str()];
        assert!(image.len() as u64 <= config.segment_bytes_max, "{segment} holds {} bytes", image.len());
        assert!(image.windows(4).any(|w| w == b"hs-1"), "{segment} carries the hard state");
    }
    let mut rig = HostRig::new(config, rig.disk);
    let recovered = opened(rig.open());
    assert_eq!(recovered.entries, entries(1, 200, 1));
    assert_eq!(recovered.hard_state.as_deref(), Some(&b"hs-1"[..]));
}

#[test]
fn zeros_are_written_ahead_so_most_batches_overwrite_and_the_log_reopens_clean() {
    let config = WalConfig { zero_fill_bytes: 256, ..small_config() };
    let mut rig = HostRig::new(config.clone(), MemDisk::default());
    rig.open();
    let mark = rig.completed.len();
    for i in 1..=200 {
        rig.deliver(Cmd::Append(vec![entry(i, 1)]));
        rig.settle();
    }
    let writes: Vec<(u64, usize)> = rig.completed[mark..]
        .iter()
        .filter_map(
            |r| if let IoRequest::WriteSync { offset, data, .. } = r { Some((*offset, data.len())) } else { None },
        )
        .collect();
    // A write that reaches past the zeros ends on a multiple of 256 (or the
    // segment's limit); every other write stays within zeros already there.
    let (mut padded, mut zeroed_to) = (0, 0);
    for &(offset, len) in &writes {
        let end = offset + len as u64;
        if offset == 0 {
            zeroed_to = 0; // a new segment
        }
        if end > zeroed_to {
            assert!(end.is_multiple_of(256) || end == config.segment_bytes_max, "write at {offset} of {len} bytes");
            (padded, zeroed_to) = (padded + 1, end);
        }
    }
    assert!(padded > 0 && padded * 4 < writes.len(), "{padded} of {} writes grew a file", writes.len());
    for segment in rig.wal().segments() {
        let image = &rig.disk.files[segment.file().as_str()];
        assert!(image.len() as u64 <= config.segment_bytes_max, "{segment} holds {} bytes", image.len());
        assert_eq!(image.last(), Some(&0), "{segment} ends in zeros");
    }
    let recovered = opened(HostRig::new(config, rig.disk).open());
    assert_eq!((recovered.entries, recovered.torn_tail), (entries(1, 200, 1), None));
}

#[test]
fn a_snapshot_is_written_in_bounded_chunks_synced_renamed_then_the_directory_synced() {
    let config = small_config();
    let mut rig = HostRig::new(config.clone(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Append(entries(1, 10, 1)));
    rig.settle();
    let mark = rig.completed.len();
    let data: Vec<u8> = (0..=255).cycle().take(1000).collect();
    let meta = SnapshotMeta { index: 8, term: 1 };
    rig.deliver(Cmd::Snapshot(meta, data.clone()));
    rig.settle();
    let steps = &rig.completed[mark..];
    let tmp = haven_runtime::FileName::new("snapshot.tmp").unwrap();
    assert_eq!(steps[0], IoRequest::Remove { file: tmp.clone() });
    let writes: Vec<usize> = steps
        .iter()
        .filter_map(|r| if let IoRequest::Write { data, .. } = r { Some(data.len()) } else { None })
        .collect();
    assert_eq!(writes.len(), 1 + 10, "a header and 1000 / 100 chunks");
    assert!(writes.iter().all(|len| *len <= config.snapshot_chunk_bytes_max + 64), "{writes:?}");
    let tail = &steps[steps.len() - 3..];
    let snapshot = haven_runtime::FileName::new("snapshot").unwrap();
    assert_eq!(
        tail,
        [IoRequest::Sync { file: tmp.clone() }, IoRequest::Rename { from: tmp, to: snapshot }, IoRequest::SyncDir]
    );
    assert_eq!(rig.wal_events().last(), Some(&WalEvent::SnapshotSaved { meta }));
    let mut rig = HostRig::new(config, rig.disk);
    let recovered = opened(rig.open());
    assert_eq!(recovered.snapshot.map(|s| (s.meta, s.data)), Some((meta, data)));
    assert_eq!(recovered.entries, entries(9, 10, 1), "entries the snapshot covers are not returned");
}

#[test]
fn compaction_removes_only_covered_segments_and_keeps_the_last() {
    let config = small_config();
    let mut rig = HostRig::new(config.clone(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::HardState(b"hs-7".to_vec()));
    for i in 1..=200 {
        rig.deliver(Cmd::Append(vec![entry(i, 1)]));
        rig.settle();
    }
    let before = rig.wal().segments().to_vec();
    let index = before[2].index_first; // segments 0 and 1 hold only entries below it
    rig.deliver(Cmd::Snapshot(SnapshotMeta { index, term: 1 }, b"state".to_vec()));
    rig.settle();
    rig.deliver(Cmd::Compact(index));
    assert!(matches!(rig.outputs.last(), Some(Out::Accepted { .. })));
    rig.settle();
    assert_eq!(rig.wal().segments(), &before[2..]);
    assert!(matches!(rig.wal_events().last(), Some(WalEvent::Compacted { segments_removed: 2, .. })));
    let mut rig = HostRig::new(config, rig.disk);
    let recovered = opened(rig.open());
    assert_eq!(recovered.entries, entries(index + 1, 200, 1));
    assert_eq!(recovered.hard_state.as_deref(), Some(&b"hs-7"[..]), "the hard state outlives its segment");
    // A snapshot covering everything: all but the last segment go.
    rig.deliver(Cmd::Snapshot(SnapshotMeta { index: 200, term: 1 }, b"all".to_vec()));
    rig.settle();
    rig.deliver(Cmd::Compact(200));
    rig.settle();
    assert_eq!(rig.wal().segments().len(), 1);
    rig.deliver(Cmd::Append(vec![entry(201, 2)]));
    rig.settle();
    let recovered = opened(HostRig::new(small_config(), rig.disk).open());
    assert_eq!((recovered.entries, recovered.index_last), (vec![entry(201, 2)], 201));
}

#[test]
fn a_snapshot_past_the_log_end_becomes_the_new_end() {
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Append(entries(1, 3, 1)));
    rig.deliver(Cmd::Snapshot(SnapshotMeta { index: 50, term: 4 }, b"leader's state".to_vec()));
    rig.settle();
    assert_eq!(rig.wal().index_last(), Some(50));
    rig.deliver(Cmd::Append(vec![entry(51, 4)]));
    rig.settle();
    let recovered = opened(HostRig::new(small_config(), rig.disk).open());
    assert_eq!((recovered.entries, recovered.index_last), (vec![entry(51, 4)], 51));
}

const FILLED: u64 = 150;

/// A directory holding three segments or more, written by the WAL itself,
/// with entries 1..=FILLED.
fn filled() -> (MemDisk, Vec<SegmentName>) {
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    rig.open();
    for i in 1..=FILLED {
        rig.deliver(Cmd::Append(vec![entry(i, 1)]));
        rig.settle();
    }
    let segments = rig.wal().segments().to_vec();
    assert!(segments.len() >= 3, "{segments:?}");
    (rig.disk, segments)
}

/// Offsets at which records start in a segment image.
fn record_offsets(image: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at < image.len() {
        offsets.push(at);
        let len = u32::from_le_bytes(image[at + 1..at + 5].try_into().unwrap()) as usize;
        at += haven_runtime::record::HEADER_BYTES + len;
    }
    offsets
}

#[test]
fn a_flipped_byte_in_a_middle_record_is_fatal_and_names_file_and_offset() {
    let (mut disk, segments) = filled();
    for (segment, pick) in [(segments[0], 3), (*segments.last().unwrap(), 2)] {
        let file = segment.file();
        let image = disk.files.get_mut(file.as_str()).unwrap();
        let offsets = record_offsets(image);
        let target = offsets[pick];
        assert!(pick + 1 < offsets.len(), "not the last record");
        image[target + 12] ^= 0x01;
        let mut rig = HostRig::new(small_config(), MemDisk { files: disk.files.clone() });
        let out = rig.open();
        let expected = WalError::Corrupt { file: file.clone(), offset: target as u64, reason: String::new() };
        match out {
            Out::Wal(WalEvent::Failed { error: WalError::Corrupt { file: f, offset, reason } }) => {
                assert_eq!((f, offset), (file.clone(), target as u64), "{reason}");
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("expected {expected:?}, got {other:?}"),
        }
        assert!(!rig.completed.iter().any(|r| matches!(r, IoRequest::Truncate { .. })), "nothing is cut");
        disk.files.get_mut(file.as_str()).unwrap()[target + 12] ^= 0x01;
    }
}

#[test]
fn a_torn_last_record_is_cut_synced_and_reported() {
    let (mut disk, segments) = filled();
    let last = segments.last().unwrap().file();
    let image = disk.files.get_mut(last.as_str()).unwrap();
    let offsets = record_offsets(image);
    let cut_at = *offsets.last().unwrap();
    let full = image.len();
    image.truncate(full - 3);
    let mut rig = HostRig::new(small_config(), disk);
    let recovered = opened(rig.open());
    let torn = recovered.torn_tail.expect("reported");
    assert_eq!(
        (torn.file.clone(), torn.offset, torn.bytes_dropped),
        (last.clone(), cut_at as u64, (full - 3 - cut_at) as u64)
    );
    assert_eq!(recovered.entries, entries(1, FILLED - 1, 1), "only the torn entry is lost");
    let repair = &rig.completed[rig.completed.len() - 3..];
    assert_eq!(repair[0], IoRequest::Truncate { file: last.clone(), len: cut_at as u64 });
    assert_eq!(repair[1..], [IoRequest::Sync { file: last.clone() }, IoRequest::SyncDir]);
    assert_eq!(rig.disk.files[last.as_str()].len(), cut_at);
    // The cut log takes new entries and reopens cleanly.
    rig.deliver(Cmd::Append(vec![entry(FILLED, 2)]));
    rig.settle();
    let recovered = opened(HostRig::new(small_config(), rig.disk).open());
    assert_eq!((recovered.torn_tail, recovered.index_last), (None, FILLED));
}

#[test]
fn a_torn_record_at_the_end_of_an_earlier_segment_is_corruption() {
    let (mut disk, segments) = filled();
    let first = segments[0].file();
    let image = disk.files.get_mut(first.as_str()).unwrap();
    let cut_at = *record_offsets(image).last().unwrap();
    image.truncate(image.len() - 2);
    let out = HostRig::new(small_config(), disk).open();
    assert!(
        matches!(&out, Out::Wal(WalEvent::Failed { error: WalError::Corrupt { file, offset, .. } }) if *file == first && *offset == cut_at as u64),
        "{out:?}"
    );
}

#[test]
fn a_missing_segment_in_the_middle_is_a_gap() {
    let (mut disk, segments) = filled();
    disk.files.remove(segments[1].file().as_str());
    let out = HostRig::new(small_config(), disk).open();
    match out {
        Out::Wal(WalEvent::Failed { error: WalError::Corrupt { file, offset: 0, reason } }) => {
            assert_eq!(file, segments[2].file());
            assert!(reason.contains("cannot follow"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_leftover_temporary_snapshot_is_removed_and_ignored() {
    let mut disk = MemDisk::default();
    disk.files.insert("snapshot.tmp".into(), vec![1, 2, 3]);
    disk.files.insert("epoch".into(), vec![9; 17]);
    let mut rig = HostRig::new(small_config(), disk);
    let recovered = opened(rig.open());
    assert_eq!(recovered.snapshot, None);
    assert!(!rig.disk.files.contains_key("snapshot.tmp"));
    assert!(rig.disk.files.contains_key("epoch"), "other components' files are left alone");
}

#[test]
fn a_corrupt_snapshot_is_fatal() {
    let mut rig = HostRig::new(small_config(), MemDisk::default());
    rig.open();
    rig.deliver(Cmd::Snapshot(SnapshotMeta { index: 5, term: 1 }, vec![7; 300]));
    rig.settle();
    let mut disk = rig.disk;
    disk.files.get_mut("snapshot").unwrap()[150] ^= 0x40;
    let out = HostRig::new(small_config(), disk).open();
    assert!(
        matches!(&out, Out::Wal(WalEvent::Failed { error: WalError::Corrupt { file, .. } }) if file.as_str() == "snapshot"),
        "{out:?}"
    );
}

#[test]
fn the_read_done_answer_to_a_request_is_checked() {
    // A read returning fewer bytes than the listing promised means the file
    // changed under recovery: an error, not a silently shorter log.
    let (disk, segments) = filled();
    let mut rig = HostRig::new(small_config(), disk);
    let mut fx = Vec::new();
    rig.host.start(rig.now, &mut fx);
    for effect in fx {
        if let haven_runtime::Effect::Io { id, request } = effect {
            rig.pending.push_back((id, request));
        }
    }
    rig.complete(); // list
    let read = rig.pending.front().unwrap().1.clone();
    assert!(matches!(&read, IoRequest::Read { file, .. } if *file == segments[0].file()));
    rig.complete_with(Ok(IoDone::Read(vec![1, 2, 3])));
    assert!(matches!(rig.wal_events().last(), Some(WalEvent::Failed { error: WalError::Corrupt { .. } })));
}
