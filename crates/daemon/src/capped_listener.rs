//! [`CappedListener`]: a listener that holds at most a set number of
//! connections open at once.
//!
//! In: a bound listener, the most connections it may hold, and the gauge and
//! counter to keep. Out: accepted connections for `axum::serve`, each
//! holding one permit until it closes; while every permit is taken, nothing
//! is accepted, and new connections wait in the kernel's accept queue (see
//! `haven_net::listen`) until one closes.
//!
//! Why: requests in flight are bounded (`requests_pending_len_max`), but
//! connections were bounded only by the open-file limit. Past it, `accept`
//! fails with EMFILE while the station also needs descriptors for its next
//! WAL segment, its snapshots and its peer links. A cap below that limit
//! keeps those, and turns a flood of idle or leaked client connections into
//! waiting newcomers instead of a station that cannot write its log.
//! Waiting rather than refusing: a client past the cap is not told no, and
//! one with several endpoints tries the next after its connect timeout.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// At most one "connections at the cap" warning per this long.
const FULL_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Pause after an accept error that is not the connection's own (EMFILE,
/// ENFILE, ENOBUFS): retrying at once would spin while nothing has closed.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What a capped listener reports; shared with the metrics registry (a
/// gauge and a counter are handles onto one value).
#[derive(Clone, Debug, Default)]
pub struct ConnectionCounts {
    /// Connections open now.
    pub open: Gauge,
    /// Times a new connection had to wait because every permit was taken.
    pub waits: Counter,
}

#[derive(Debug)]
pub struct CappedListener {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    connections_max: usize,
    counts: ConnectionCounts,
    /// What the operator can do when the cap is reached (the flag that
    /// sets it, for a station), ending the warning.
    remedy: &'static str,
    last_full_log: Option<Instant>,
}

impl CappedListener {
    pub fn new(listener: TcpListener, connections_max: usize, remedy: &'static str, counts: ConnectionCounts) -> Self {
        assert!(connections_max > 0, "validated: a listener needs room for one connection");
        let permits = Arc::new(Semaphore::new(connections_max));
        CappedListener { listener, permits, connections_max, counts, remedy, last_full_log: None }
    }

    /// Waits for a free permit, logging (rarely) when that means waiting.
    async fn permit(&mut self) -> OwnedSemaphorePermit {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return permit;
        }
        self.counts.waits.inc();
        let now = Instant::now();
        if self.last_full_log.is_none_or(|last| now.duration_since(last) >= FULL_LOG_INTERVAL) {
            self.last_full_log = Some(now);
            tracing::warn!(
                connections_max = self.connections_max,
                "every connection this listener allows is open; new ones wait in the kernel's queue \
                 until one closes; {}",
                self.remedy
            );
        }
        self.permits.clone().acquire_owned().await.expect("the semaphore is never closed")
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (CappedStream, std::net::SocketAddr) {
        let permit = self.permit().await;
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    // Nagle's algorithm holds a small write back while an
                    // earlier one is unacknowledged (the next event of a watch
                    // stream), which a client's delayed ACK can stretch to tens
                    // of milliseconds across a network. Go servers such as etcd
                    // turn it off too. On loopback, 500 back-to-back watch
                    // events arrived no later with it on than off.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%addr, error = %e, "set_nodelay failed");
                    }
                    self.counts.open.inc();
                    let stream = CappedStream { stream, _permit: permit, open: self.counts.open.clone() };
                    return (stream, addr);
                }
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        "cannot accept a connection; if it says too many open files, raise the \
                         open-file limit (ulimit -Hn, or LimitNOFILE= in a systemd unit)"
                    );
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

/// Errors of one connection that went away before it was accepted; the
/// next accept is unaffected.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection; its permit returns when it is dropped.
#[derive(Debug)]
pub struct CappedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl Drop for CappedStream {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn capped(connections_max: usize) -> (CappedListener, std::net::SocketAddr, ConnectionCounts) {
        let listener = haven_net::listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = ConnectionCounts::default();
        (CappedListener::new(listener, connections_max, "the test", counts.clone()), addr, counts)
    }

    #[tokio::test]
    async fn past_the_cap_a_connection_waits_until_one_closes() {
        let (mut listener, addr, counts) = capped(2).await;
        let _clients: Vec<_> = [(); 3].iter().map(|()| tokio::spawn(TcpStream::connect(addr))).collect();
        let (first, _) = listener.accept().await;
        let (second, _) = listener.accept().await;
        assert_eq!(counts.open.get(), 2);

        let third = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(third.is_err(), "a third connection is not accepted while two are open");
        assert_eq!(counts.waits.get(), 1);

        drop(first);
        assert_eq!(counts.open.get(), 1);
        let (third, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await.expect("accepted");
        assert_eq!(counts.open.get(), 2);
        drop((second, third));
        assert_eq!(counts.open.get(), 0);
    }

    #[tokio::test]
    async fn an_accepted_connection_carries_bytes_both_ways() {
        let (mut listener, addr, _) = capped(1).await;
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(b"ping").await.unwrap();
            let mut answer = [0; 4];
            stream.read_exact(&mut answer).await.unwrap();
            answer
        });
        let (mut server, _) = listener.accept().await;
        let mut asked = [0; 4];
        server.read_exact(&mut asked).await.unwrap();
        assert_eq!(&asked, b"ping");
        server.write_all(b"pong").await.unwrap();
        assert_eq!(&client.await.unwrap(), b"pong");
    }
}
