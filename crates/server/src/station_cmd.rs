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
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = config.worker_threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build().context("starting the async runtime")?;
    runtime.block_on(haven_daemon::run(config))?;
    Ok(())
}
