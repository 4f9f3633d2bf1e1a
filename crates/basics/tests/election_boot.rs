//! Transcript tests of the election node's boot: the epoch is made durable,
//! step by step, before the node takes part; disk failures are reported and
//! retried; a persistently corrupt epoch file halts the node.

use haven_basics::election::BootStep;
use haven_basics::{DetectorConfig, ElectionEvent, ElectionMsg, ElectionNode, epoch_file};
use haven_runtime::{Effect, FileName, Host, Instant, IoDone, IoError, IoId, IoRequest, NodeId, TimerId};
use rand::SeedableRng;

type Node = ElectionNode;
type Fx = Vec<Effect<ElectionMsg, ElectionEvent>>;

fn file(name: &str) -> FileName {
    FileName::new(name).unwrap()
}

fn host() -> Host<Node> {
    let node = Node::new(vec![NodeId(1), NodeId(2)], DetectorConfig::default());
    Host::new(NodeId(1), node, rand_chacha::ChaCha8Rng::seed_from_u64(0))
}

fn io_of(fx: &Fx) -> (IoId, IoRequest) {
    match fx.as_slice() {
        [Effect::Io { id, request }] => (*id, request.clone()),
        other => panic!("expected one io effect, got {other:?}"),
    }
}

/// Completes the single pending io with `done` and returns the next effects.
fn answer(host: &mut Host<Node>, fx: &Fx, done: Result<IoDone, IoError>) -> Fx {
    let (id, _) = io_of(fx);
    let mut next = Fx::new();
    host.complete(Instant::ZERO, id, done, &mut next);
    next
}

#[test]
fn first_boot_writes_epoch_one_durably_then_pings() {
    let mut host = host();
    let mut fx = Fx::new();
    host.start(Instant::ZERO, &mut fx);
    assert_eq!(io_of(&fx).1, IoRequest::Read { file: file("epoch"), offset: 0, len_max: epoch_file::FILE_BYTES_MAX });
    let fx = answer(&mut host, &fx, Err(IoError::NotFound));
    assert_eq!(io_of(&fx).1, IoRequest::Write { file: file("epoch.tmp"), offset: 0, data: epoch_file::encode(1) });
    let fx = answer(&mut host, &fx, Ok(IoDone::Written));
    assert_eq!(io_of(&fx).1, IoRequest::Sync { file: file("epoch.tmp") });
    let fx = answer(&mut host, &fx, Ok(IoDone::Synced));
    assert_eq!(io_of(&fx).1, IoRequest::Rename { from: file("epoch.tmp"), to: file("epoch") });
    let fx = answer(&mut host, &fx, Ok(IoDone::Renamed));
    assert_eq!(io_of(&fx).1, IoRequest::SyncDir);
    assert_eq!(host.component().leader(), None, "not running before the directory is synced");
    let fx = answer(&mut host, &fx, Ok(IoDone::DirSynced));
    assert_eq!(fx[0], Effect::Output(ElectionEvent::Ready { epoch: 1 }));
    assert_eq!(fx[1], Effect::Output(ElectionEvent::Leader { leader: NodeId(1) }));
    assert!(matches!(fx[2], Effect::Send { to: NodeId(2), .. }));
    assert_eq!(host.component().epoch(), Some(1));
}

#[test]
fn restart_increments_the_stored_epoch() {
    let mut host = host();
    let mut fx = Fx::new();
    host.start(Instant::ZERO, &mut fx);
    let fx = answer(&mut host, &fx, Ok(IoDone::Read(epoch_file::encode(41))));
    assert_eq!(io_of(&fx).1, IoRequest::Write { file: file("epoch.tmp"), offset: 0, data: epoch_file::encode(42) });
}

#[test]
fn no_space_is_reported_and_the_step_retried_after_a_backoff() {
    let mut host = host();
    let mut fx = Fx::new();
    host.start(Instant::ZERO, &mut fx);
    let fx = answer(&mut host, &fx, Err(IoError::NotFound));
    let fx = answer(&mut host, &fx, Err(IoError::NoSpace));
    assert_eq!(
        fx,
        vec![
            Effect::Output(ElectionEvent::DiskError { step: BootStep::WriteTmp, error: IoError::NoSpace }),
            Effect::SetTimer { id: TimerId(3), at: Instant::from_nanos(100_000_000) },
        ]
    );
    let mut retry = Fx::new();
    host.fire(Instant::from_nanos(100_000_000), TimerId(3), &mut retry);
    assert_eq!(io_of(&retry).1, IoRequest::Write { file: file("epoch.tmp"), offset: 0, data: epoch_file::encode(1) });
}

#[test]
fn a_failed_sync_is_retried_from_the_write_not_by_syncing_again() {
    let (write, sync) = (
        IoRequest::Write { file: file("epoch.tmp"), offset: 0, data: epoch_file::encode(1) },
        IoRequest::Sync { file: file("epoch.tmp") },
    );
    let mut host = host();
    let mut fx = Fx::new();
    host.start(Instant::ZERO, &mut fx);
    let fx = answer(&mut host, &fx, Err(IoError::NotFound));
    let fx = answer(&mut host, &fx, Ok(IoDone::Written));
    assert_eq!(io_of(&fx).1, sync);
    let failed = answer(&mut host, &fx, Err(IoError::SyncFailed("EIO".into())));
    let error = IoError::SyncFailed("EIO".into());
    assert_eq!(failed[0], Effect::Output(ElectionEvent::DiskError { step: BootStep::SyncTmp, error }));
    let Effect::SetTimer { id, at } = failed[1] else { panic!("{failed:?}") };
    let mut retry = Fx::new();
    host.fire(at, id, &mut retry);
    assert_eq!(io_of(&retry).1, write, "the temp file is written again before the next sync");
    let fx = answer(&mut host, &retry, Ok(IoDone::Written));
    assert_eq!(io_of(&fx).1, sync);
}

#[test]
fn corrupt_epoch_file_is_retried_then_fatal() {
    let mut host = host();
    let mut fx = Fx::new();
    host.start(Instant::ZERO, &mut fx);
    let mut corrupt = epoch_file::encode(5);
    corrupt[9] ^= 1; // the payload byte
    for attempt in 1..=3 {
        let next = answer(&mut host, &fx, Ok(IoDone::Read(corrupt.clone())));
        if attempt < 3 {
            assert!(matches!(next[0], Effect::Output(ElectionEvent::DiskError { step: BootStep::ReadEpoch, .. })));
            let Effect::SetTimer { id, at } = next[1] else { panic!("{next:?}") };
            fx.clear();
            host.fire(at, id, &mut fx);
        } else {
            assert!(
                matches!(&next[..], [Effect::Output(ElectionEvent::Fatal { reason })] if reason.contains("3 reads"))
            );
        }
    }
    assert_eq!(host.component().leader(), None);
}
