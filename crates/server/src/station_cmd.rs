//! `haven station`: one Raft member serving etcd's v3 JSON API.
//!
//! In: the station's flags (with `HAVEN_*` variables and `--config` file).
//! Out: warnings about the configuration on stderr, then the running
//! station until SIGTERM or Ctrl-C; a configuration error names the field
//! and the fix.

use crate::open_files;
use anyhow::{Context as _, Result};
use haven_daemon::{StationArgs, StationConfig};

pub fn run(args: StationArgs) -> Result<()> {
    let (mut config, warnings) = StationConfig::load(args)?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    tracing::error_span!("station", node = config.id).in_scope(|| {
        let limit = open_files::raise_open_files_limit();
        let wanted = config.client_connections_max;
        config.client_connections_max = open_files::connections_within(limit, wanted, "--client-connections-max");
    });
    let runtime = runtime_for(config.worker_threads).build().context("starting the async runtime")?;
    runtime.block_on(haven_daemon::run(config))?;
    Ok(())
}

/// The async runtime for `threads` workers (`None`: one per core).
///
/// One worker gets Tokio's current-thread scheduler rather than a
/// multi-thread one of size one: the same single thread runs every task,
/// without the work-stealing scheduler's shared queues and wake-ups. Three
/// stations of one worker each on the 2-core VM spent 6-8% less CPU per
/// write at 256 clients (8 interleaved pairs each, README).
fn runtime_for(threads: Option<usize>) -> tokio::runtime::Builder {
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all();
    builder
}
