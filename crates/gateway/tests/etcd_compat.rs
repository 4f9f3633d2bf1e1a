//! Compatibility with the real thing, for the gateway over its in-memory
//! backend (`MemoryBackend`): the shared etcd comparison (`compat`) against
//! a gateway in this process. `crates/daemon/tests/etcd_compat.rs` runs the
//! same comparison against a real station.

mod compat;

use haven_gateway::{GatewayLimits, MemoryBackend, router};
use haven_store::StoreConfig;

async fn start_gateway() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the gateway");
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    let backend = MemoryBackend::new(StoreConfig::default(), vec![url.clone()]);
    tokio::spawn(async move { axum::serve(listener, router(backend, GatewayLimits::default())).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_answers_like_etcd() {
    let Some(binary) = compat::etcd_or_skip() else { return };
    let haven = start_gateway().await;
    compat::compare_with_etcd(&binary, 1, &haven).await;
}
