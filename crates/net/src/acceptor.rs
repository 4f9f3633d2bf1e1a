//! The node's listening socket.
//!
//! In: TCP connections from peers (and from anyone else who finds the port).
//! Out: one [`Inbound`] task per accepted connection, at most
//! `inbound_connections_max` at once; connections beyond that are closed at
//! once. The tasks live in a `JoinSet` owned here, so stopping the acceptor
//! closes every inbound connection too.

use crate::counters::bump;
use crate::inbound::{Inbound, InboundShared};
use haven_runtime::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::Instrument;

/// Pause after a failed accept (e.g. out of file descriptors), so the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct Acceptor<M> {
    listener: TcpListener,
    connections_max: usize,
    shared: Arc<InboundShared<M>>,
}

impl<M: Message> Acceptor<M> {
    pub(crate) fn new(listener: TcpListener, connections_max: usize, shared: Arc<InboundShared<M>>) -> Self {
        Acceptor { listener, connections_max, shared }
    }

    /// Accepts until the task is aborted.
    pub(crate) async fn run(self) {
        let mut connections = JoinSet::new();
        let mut seq: u64 = 0;
        loop {
            let accepted = self.listener.accept().await;
            while connections.try_join_next().is_some() {}
            let (stream, addr) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            bump(&self.shared.counters.accepts);
            if connections.len() >= self.connections_max {
                bump(&self.shared.counters.inbound_errors);
                tracing::error!(%addr, connections_max = self.connections_max, "too many inbound connections, closing");
                continue;
            }
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(%addr, error = %e, "set_nodelay failed");
            }
            seq += 1;
            let span = tracing::error_span!("inbound", %addr);
            connections.spawn(Inbound::new(stream, addr, seq, self.shared.clone()).run().instrument(span));
        }
    }
}
