//! The sending half of the link to one peer.
//!
//! In: messages for that peer from its [`crate::send_queue::SendQueue`].
//! Out: frames on an outbound TCP connection, opened and re-opened by this
//! task with exponential backoff; counters; log lines.
//!
//! The connection is used only for sending: it starts with a hello, then
//! carries message frames coalesced into writes of at most
//! `write_batch_bytes_max`. The task also reads from the socket, not for
//! data (a peer sends none) but to notice at once that the peer closed it.
//! Messages wait in the bounded queue while disconnected; the batch being
//! written when a connection breaks is written again on the next one, so a
//! peer may see it twice, which best-effort delivery allows.

use crate::backoff::Backoff;
use crate::coalesce::Coalesce;
use crate::config::Limits;
use crate::counters::{Counters, add, bump};
use crate::frame::{self, Frame, FrameError};
use haven_runtime::wire::WIRE_VERSION;
use haven_runtime::{Message, NodeId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

/// Why a connection ended.
#[derive(Debug, Error)]
enum LinkError {
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("write timed out after {0:?}")]
    WriteTimeout(Duration),
    #[error("closed by the peer")]
    ClosedByPeer,
    #[error("the peer sent data on a send-only connection")]
    UnexpectedData,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
}

/// Who dials, as its hello says: its id, where it is dialled back, and its
/// cluster (read at each hello: the caller learns it while running).
#[derive(Clone, Debug)]
pub(crate) struct Dialler {
    pub(crate) node: NodeId,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) cluster: Arc<AtomicU64>,
}

#[derive(Debug)]
pub(crate) struct Link<M> {
    me: Dialler,
    addr: SocketAddr,
    queue: mpsc::Receiver<M>,
    limits: Limits,
    counters: Arc<Counters>,
    /// Encoded frames not yet written.
    batch: Vec<u8>,
    batch_frames: u64,
    scratch: Vec<u8>,
    /// When the last write ended: whether a message found the link busy.
    since_write: Coalesce,
}

impl<M: Message> Link<M> {
    /// The link from `me` to the peer at `addr`.
    pub(crate) fn new(
        me: Dialler,
        addr: SocketAddr,
        queue: mpsc::Receiver<M>,
        limits: Limits,
        counters: Arc<Counters>,
    ) -> Self {
        let (batch, scratch) = (Vec::new(), Vec::new());
        Link { me, addr, queue, limits, counters, batch, batch_frames: 0, scratch, since_write: Coalesce::default() }
    }

    /// Connects, sends, reconnects, until the event loop drops the queue
    /// (noticed while connected) or the task is aborted (the peer left the
    /// peer map: see network.rs).
    pub(crate) async fn run(mut self) {
        let mut backoff = Backoff::new(self.limits.reconnect_backoff_ms_min, self.limits.reconnect_backoff_ms_max);
        // Only a connection that lasted resets the backoff, so a peer that
        // accepts and at once refuses us is not dialled in a tight loop.
        let lasting = Duration::from_millis(self.limits.reconnect_backoff_ms_max);
        let mut failures: u64 = 0;
        loop {
            let started = tokio::time::Instant::now();
            let error = match self.connect().await {
                Ok(stream) => match self.serve(stream, failures, lasting).await {
                    Ok(()) => return,
                    Err(e) => e,
                },
                Err(e) => e,
            };
            bump(&self.counters.connect_errors);
            if started.elapsed() >= lasting {
                backoff.reset();
                failures = 0;
            }
            failures += 1;
            // Say it once per outage; repeat quietly while the peer stays away.
            if failures == 1 {
                tracing::warn!(addr = %self.addr, error = %error, "link down, reconnecting");
            } else {
                tracing::debug!(addr = %self.addr, error = %error, failures, "reconnect failed");
            }
            let delay = backoff.next_delay(&mut rand::rng());
            tokio::time::sleep(delay).await;
        }
    }

    async fn connect(&mut self) -> Result<TcpStream, LinkError> {
        let timeout = self.limits.connect_timeout();
        let stream = tokio::time::timeout(timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| LinkError::ConnectTimeout(timeout))??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Sends until the connection breaks (`Err`) or the queue closes (`Ok`).
    /// After `failures` failed attempts, the link is said to be up only once
    /// the connection has lasted `lasting`: a peer that accepts and at once
    /// refuses (it no longer has this node in its peer map) would otherwise
    /// make every retry an info line.
    async fn serve(&mut self, stream: TcpStream, failures: u64, lasting: Duration) -> Result<(), LinkError> {
        let (mut reader, mut writer) = stream.into_split();
        let mut hello = Vec::new();
        let (node, listen, cluster) = (self.me.node, self.me.listen, self.me.cluster.load(Ordering::Relaxed));
        let hello_frame: Frame<M> = Frame::Hello { node, wire_version: WIRE_VERSION, listen, cluster };
        frame::encode(&hello_frame, self.limits.frame_bytes_max, &mut self.scratch, &mut hello)?;
        self.write(&mut writer, &hello).await?;
        add(&self.counters.bytes_out, hello.len() as u64);
        bump(&self.counters.connects);
        if failures == 0 {
            tracing::info!(addr = %self.addr, "link up");
        } else {
            tracing::debug!(addr = %self.addr, failures, "connected; link up once it lasts");
        }
        self.flush(&mut writer).await?;
        let mut probe = [0u8; 1];
        let mut untold = failures > 0;
        let lasted = tokio::time::sleep(lasting);
        tokio::pin!(lasted);
        loop {
            tokio::select! {
                () = &mut lasted, if untold => {
                    untold = false;
                    tracing::info!(addr = %self.addr, failures, "link up after failed attempts");
                }
                msg = self.queue.recv() => {
                    let Some(msg) = msg else { return Ok(()) };
                    self.append(msg);
                    // Under load, let the tasks ready now add their messages
                    // first (see `coalesce`): a follower relaying clients'
                    // writes sent each in its own system call otherwise.
                    if self.since_write.busy(tokio::time::Instant::now()) {
                        tokio::task::yield_now().await;
                    }
                    while self.batch.len() < self.limits.write_batch_bytes_max {
                        let Ok(msg) = self.queue.try_recv() else { break };
                        self.append(msg);
                    }
                    self.flush(&mut writer).await?;
                    self.since_write.idle(tokio::time::Instant::now());
                }
                read = reader.read(&mut probe) => {
                    return Err(if read? == 0 { LinkError::ClosedByPeer } else { LinkError::UnexpectedData });
                }
            }
        }
    }

    fn append(&mut self, msg: M) {
        match frame::encode(&Frame::Msg(msg), self.limits.frame_bytes_max, &mut self.scratch, &mut self.batch) {
            Ok(_) => self.batch_frames += 1,
            Err(e) => {
                bump(&self.counters.send_drops);
                tracing::error!(error = %e, "message not sent");
            }
        }
    }

    async fn flush(&mut self, writer: &mut OwnedWriteHalf) -> Result<(), LinkError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let written = self.write(writer, &batch).await;
        self.batch = batch;
        written?;
        add(&self.counters.frames_out, self.batch_frames);
        add(&self.counters.bytes_out, self.batch.len() as u64);
        self.batch.clear();
        self.batch_frames = 0;
        // Keep moderately sized buffers, not the largest batch or message ever seen.
        self.batch.shrink_to(self.limits.write_batch_bytes_max);
        self.scratch.shrink_to(self.limits.write_batch_bytes_max);
        Ok(())
    }

    async fn write(&self, writer: &mut OwnedWriteHalf, bytes: &[u8]) -> Result<(), LinkError> {
        let timeout = self.limits.write_timeout();
        tokio::time::timeout(timeout, writer.write_all(bytes))
            .await
            .map_err(|_| LinkError::WriteTimeout(timeout))??;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameReader;
    use tokio::net::TcpListener;

    const WAIT: Duration = Duration::from_secs(10);

    async fn next_frame(reader: &mut FrameReader<TcpStream>) -> Frame<u32> {
        let next = tokio::time::timeout(WAIT, reader.next::<u32>()).await.expect("a frame in time");
        next.expect("a valid frame").expect("not end of stream").0
    }

    async fn accept(listener: &TcpListener) -> FrameReader<TcpStream> {
        let (stream, _) = tokio::time::timeout(WAIT, listener.accept()).await.expect("a connection").unwrap();
        FrameReader::new(stream, 1024)
    }

    #[tokio::test]
    async fn messages_queued_while_down_go_out_after_the_hello_on_every_connection() {
        let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let limits = Limits { reconnect_backoff_ms_min: 5, reconnect_backoff_ms_max: 20, ..Limits::default() };
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(16);
        let link = tokio::spawn(
            Link::new(
                Dialler { node: NodeId(7), listen: None, cluster: Arc::default() },
                addr,
                rx,
                limits,
                counters.clone(),
            )
            .run(),
        );
        for i in 0..5u32 {
            tx.send(i).await.unwrap();
        }
        // Nobody listens yet: the link retries while the messages wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let listener = TcpListener::bind(addr).await.unwrap();
        let mut reader = accept(&listener).await;
        assert_eq!(
            next_frame(&mut reader).await,
            Frame::Hello { node: NodeId(7), wire_version: WIRE_VERSION, listen: None, cluster: 0 }
        );
        for i in 0..5 {
            assert_eq!(next_frame(&mut reader).await, Frame::Msg(i));
        }
        assert!(counters.snapshot().connect_errors >= 1);

        // The receiver hangs up; the link notices, reconnects and says hello again.
        drop(reader);
        let mut reader = accept(&listener).await;
        tx.send(99).await.unwrap();
        assert_eq!(
            next_frame(&mut reader).await,
            Frame::Hello { node: NodeId(7), wire_version: WIRE_VERSION, listen: None, cluster: 0 }
        );
        assert_eq!(next_frame(&mut reader).await, Frame::Msg(99));
        let snapshot = counters.snapshot();
        assert_eq!((snapshot.connects, snapshot.frames_out), (2, 6), "{snapshot:?}");

        drop(tx);
        tokio::time::timeout(WAIT, link).await.expect("the link ends with its queue").unwrap();
    }
}
