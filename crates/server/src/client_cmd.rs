//! The client commands (`haven kv|lease|member|status|service|events|apply`,
//! `haven node ls|drain|undrain`, `haven bench kv|failover`)
//! live in `haven_client`; this runs one of them on a fresh async runtime.

use anyhow::{Context as _, Result};
use haven_client::ClientError;

pub fn block_on(command: impl Future<Output = Result<(), ClientError>>) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    Ok(runtime.block_on(command)?)
}
