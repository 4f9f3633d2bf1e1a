//! A development server: the etcd v3 JSON gateway over one in-memory store.
//!
//! In: a listen address (default 127.0.0.1:2379). Out: an HTTP server that
//! etcd clients can talk to until Ctrl-C; nothing is persisted.
//!
//! Example:
//!   cargo run -p haven-gateway --example memory_gateway -- 127.0.0.1:2379
//!   curl -s -XPOST 127.0.0.1:2379/v3/kv/put -d '{"key":"Zm9v","value":"YmFy"}'

use haven_gateway::{GatewayLimits, MemoryBackend, router};
use haven_store::StoreConfig;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:2379".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let backend = MemoryBackend::new(StoreConfig::default(), vec![url.clone()]);
    eprintln!("etcd v3 JSON gateway over an in-memory store at {url} (Ctrl-C stops it)");
    axum::serve(listener, router(backend, GatewayLimits::default())).await
}
