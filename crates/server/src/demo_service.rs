//! `haven demo-service`: the sample service of `haven demo`, a small HTTP
//! server that says which node it runs on and with which fencing token.
//!
//! In: `HAVEN_NODE` and, for a primary, `HAVEN_FENCING_TOKEN` (set by the
//! agent), a directory and a base port. Out: HTTP on `127.0.0.1:(base +
//! node)`: `200 node N token T` as the primary, `503 standby on node N` as a
//! standby. A standby becomes the primary when its promote command (a
//! script the demo writes) drops `promoted-N` with the new token into the
//! directory; the server looks for it every 20 ms.

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How often a standby looks for its promotion.
const PROMOTION_POLL: Duration = Duration::from_millis(20);
/// Bytes of a request read before answering (the request is not parsed).
const REQUEST_BYTES_MAX: usize = 1024;

#[derive(Clone, Debug, clap::Args)]
pub struct DemoServiceArgs {
    /// Where the promote script drops `promoted-<node>`.
    #[arg(long)]
    pub dir: PathBuf,
    /// The server listens on this port plus the node id.
    #[arg(long)]
    pub port_base: u16,
}

/// The file a promotion of `node` writes its token to.
pub fn promoted_file(dir: &Path, node: u64) -> PathBuf {
    dir.join(format!("promoted-{node}"))
}

/// The promote script: writes the new token where the standby looks.
pub fn promote_script(dir: &Path) -> String {
    format!("#!/bin/sh\necho \"$HAVEN_FENCING_TOKEN\" > {}/promoted-\"$HAVEN_NODE\"\n", dir.display())
}

pub fn run(args: DemoServiceArgs) -> Result<()> {
    let node: u64 = std::env::var("HAVEN_NODE").context("HAVEN_NODE (set by haven agent)")?.parse()?;
    let token: u64 = std::env::var("HAVEN_FENCING_TOKEN").ok().and_then(|t| t.parse().ok()).unwrap_or(0);
    let port = args.port_base.checked_add(u16::try_from(node)?).context("--port-base plus the node id")?;
    let _ = std::fs::remove_file(promoted_file(&args.dir, node)); // a previous incarnation's
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve(args.dir, node, port, token))
}

async fn serve(dir: PathBuf, node: u64, port: u16, token: u64) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.with_context(|| format!("port {port}"))?;
    let token = Arc::new(AtomicU64::new(token));
    let watched = token.clone();
    tokio::spawn(async move {
        while watched.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(PROMOTION_POLL).await;
            let promoted = std::fs::read_to_string(promoted_file(&dir, node)).ok();
            if let Some(t) = promoted.and_then(|t| t.trim().parse::<u64>().ok()) {
                watched.store(t, Ordering::SeqCst);
            }
        }
    });
    loop {
        let (mut socket, _) = listener.accept().await?;
        let token = token.load(Ordering::SeqCst);
        tokio::spawn(async move {
            let mut buf = [0u8; REQUEST_BYTES_MAX];
            let _ = socket.read(&mut buf).await;
            let (status, body) = if token == 0 {
                ("503 Service Unavailable", format!("standby on node {node}\n"))
            } else {
                ("200 OK", format!("node {node} token {token}\n"))
            };
            let answer = format!("HTTP/1.0 {status}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let _ = socket.write_all(answer.as_bytes()).await;
        });
    }
}
