//! A TCP fault proxy in front of one station's peer port (test support).
//!
//! In: connections from the other stations to the peer address the cluster
//! list names for this station, each opening with a hello frame that says
//! who dials; and, from the test, a [`LinkFault`] per source node. Out: the
//! same frames at the station's real peer address — passed, delayed, or
//! swallowed (blackhole: read and thrown away, connection kept open) — or
//! the connection closed (drop); never a byte that was not sent.
//!
//! Frames are forwarded whole (read with the runtime's record header), so a
//! swallowed frame is a lost message, never a corrupt stream. Per connection
//! at most `QUEUE_BYTES_MAX` bytes wait to be written (a delay holds them
//! there); beyond that the proxy stops reading and the sender's TCP backs up.

use haven_net::frame::Frame;
use haven_runtime::record::{self, Decoded, HEADER_BYTES};
use haven_runtime::wire::{self, WIRE_VERSION};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Largest frame passed on: the stations' own default `frame_bytes_max`.
const FRAME_BYTES_MAX: u32 = 16 * 1024 * 1024;
/// Bytes read but not yet written, per connection.
const QUEUE_BYTES_MAX: usize = 2 * FRAME_BYTES_MAX as usize;
/// Frames read but not yet written, per connection.
const QUEUE_FRAMES_MAX: usize = 4096;
const READ_BUF_BYTES: usize = 64 * 1024;
/// A dialler that sends no hello within this is not a station.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// What happens to the frames from one source node to this station.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkFault {
    #[default]
    Pass,
    /// Read and thrown away; the connection stays open.
    Blackhole,
    /// Open connections are closed, new ones closed after their hello.
    Drop,
    /// Every frame is written this long after it was read.
    Delay(Duration),
}

/// What the proxy did, for tests and the summary.
#[derive(Debug, Default)]
pub struct ProxyCounts {
    pub connections: AtomicU64,
    pub frames_passed: AtomicU64,
    pub frames_swallowed: AtomicU64,
    pub connections_dropped: AtomicU64,
}

type Faults = BTreeMap<u64, LinkFault>;

/// One proxy; dropping it stops accepting and closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    faults: watch::Sender<Faults>,
    counts: Arc<ProxyCounts>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Serves on `listener` (already bound, so its address can be handed out
    /// first), forwarding to `target`. Must be called inside a tokio runtime.
    pub fn start(listener: std::net::TcpListener, target: SocketAddr) -> io::Result<FaultProxy> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let (faults, _) = watch::channel(Faults::new());
        let counts = Arc::new(ProxyCounts::default());
        let accept = tokio::spawn(accept_loop(listener, target, faults.subscribe(), counts.clone()));
        Ok(FaultProxy { addr, faults, counts, accept })
    }

    /// The address stations dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn counts(&self) -> &ProxyCounts {
        &self.counts
    }

    /// Sets the fault of the link from `source`; it applies to the next frame
    /// read (and at once, for `Drop`).
    pub fn set(&self, source: u64, fault: LinkFault) {
        self.faults.send_modify(|faults| {
            faults.insert(source, fault);
        });
    }

    /// Every link passes again.
    pub fn heal(&self) {
        self.faults.send_modify(Faults::clear);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Connections watch `faults`: they end when its sender is gone.
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    faults: watch::Receiver<Faults>,
    counts: Arc<ProxyCounts>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        counts.connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(stream, target, faults.clone(), counts.clone()));
    }
}

fn fault_of(faults: &watch::Receiver<Faults>, source: u64) -> LinkFault {
    faults.borrow().get(&source).copied().unwrap_or_default()
}

/// One connection: learn the source from its hello, then forward until
/// either side closes or the link is dropped.
async fn serve(inbound: TcpStream, target: SocketAddr, faults: watch::Receiver<Faults>, counts: Arc<ProxyCounts>) {
    let _ = inbound.set_nodelay(true);
    let (read, mut write_back) = inbound.into_split();
    let mut read = BufReader::with_capacity(READ_BUF_BYTES, read);
    let Ok(Ok(Some(hello))) = tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut read)).await else { return };
    let Some(source) = hello_source(&hello) else { return };
    if fault_of(&faults, source) == LinkFault::Drop {
        counts.connections_dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let Ok(outbound) = TcpStream::connect(target).await else { return };
    let _ = outbound.set_nodelay(true);
    let (mut read_back, write) = outbound.into_split();

    let (queue, queued) = mpsc::channel(QUEUE_FRAMES_MAX);
    let room = Arc::new(Semaphore::new(QUEUE_BYTES_MAX));
    let forward = Forward { source, faults: faults.clone(), counts: counts.clone(), queue, room };
    let to_station = async { tokio::join!(forward.run(read, hello), write_frames(queued, write)) };
    // A station sends nothing back on a peer link, but its close must reach the dialler.
    let back = tokio::io::copy(&mut read_back, &mut write_back);
    tokio::select! {
        _ = to_station => {}
        _ = back => {}
        () = dropped(faults, source) => {
            counts.connections_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Resolves when the link from `source` is set to `Drop` or the proxy is gone.
async fn dropped(mut faults: watch::Receiver<Faults>, source: u64) {
    while fault_of(&faults, source) != LinkFault::Drop {
        if faults.changed().await.is_err() {
            return;
        }
    }
}

/// The reading half of one connection: frames in, decisions out.
struct Forward {
    source: u64,
    faults: watch::Receiver<Faults>,
    counts: Arc<ProxyCounts>,
    queue: mpsc::Sender<(Instant, Vec<u8>, tokio::sync::OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
}

impl Forward {
    /// Ends at the end of the stream, on a malformed frame or a dropped link;
    /// the writer then drains what is queued.
    async fn run<R: AsyncRead + Unpin>(self, mut read: R, hello: Vec<u8>) {
        let mut frame = Some(hello);
        while let Some(bytes) = frame {
            let at = match fault_of(&self.faults, self.source) {
                LinkFault::Pass => Instant::now(),
                LinkFault::Delay(delay) => Instant::now() + delay,
                LinkFault::Blackhole => {
                    self.counts.frames_swallowed.fetch_add(1, Ordering::Relaxed);
                    frame = read_frame(&mut read).await.ok().flatten();
                    continue;
                }
                LinkFault::Drop => return,
            };
            let permits = u32::try_from(bytes.len()).expect("a frame is below FRAME_BYTES_MAX");
            let Ok(permit) = self.room.clone().acquire_many_owned(permits).await else { return };
            if self.queue.send((at, bytes, permit)).await.is_err() {
                return;
            }
            self.counts.frames_passed.fetch_add(1, Ordering::Relaxed);
            frame = read_frame(&mut read).await.ok().flatten();
        }
    }
}

async fn write_frames(
    mut queued: mpsc::Receiver<(Instant, Vec<u8>, tokio::sync::OwnedSemaphorePermit)>,
    mut write: tokio::net::tcp::OwnedWriteHalf,
) {
    while let Some((at, bytes, _permit)) = queued.recv().await {
        tokio::time::sleep_until(at).await;
        if write.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// The next whole frame (header included), `None` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(read: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; HEADER_BYTES];
    if read.read(&mut buf[..1]).await? == 0 {
        return Ok(None);
    }
    read.read_exact(&mut buf[1..]).await?;
    let len_total = match record::decode(&buf, &[WIRE_VERSION], FRAME_BYTES_MAX) {
        Ok(Decoded::Incomplete { len_total } | Decoded::Record { len_total, .. }) => len_total,
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    buf.resize(len_total, 0);
    read.read_exact(&mut buf[HEADER_BYTES..]).await?;
    match record::decode(&buf, &[WIRE_VERSION], FRAME_BYTES_MAX) {
        Ok(Decoded::Record { .. }) => Ok(Some(buf)),
        Ok(Decoded::Incomplete { .. }) => Err(io::Error::new(io::ErrorKind::InvalidData, "short frame")),
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    }
}

/// The node a hello frame names; `None` for any other frame.
pub fn hello_source(frame: &[u8]) -> Option<u64> {
    let Ok(Decoded::Record { payload, .. }) = record::decode(frame, &[WIRE_VERSION], FRAME_BYTES_MAX) else {
        return None;
    };
    // The message type is irrelevant to a hello; `()` decodes any Msg as empty.
    match wire::decode::<Frame<()>>(payload) {
        Ok(Frame::Hello { node, .. }) => Some(node.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_net::frame::{FrameReader, encode};
    use haven_runtime::NodeId;

    type Msg = String;
    const WAIT: Duration = Duration::from_secs(10);

    fn frame(f: &Frame<Msg>) -> Vec<u8> {
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        encode(f, FRAME_BYTES_MAX, &mut scratch, &mut out).unwrap();
        out
    }

    fn hello(node: u64) -> Vec<u8> {
        frame(&Frame::Hello { node: NodeId(node), wire_version: WIRE_VERSION, listen: None, cluster: 0 })
    }

    fn msg(text: &str) -> Vec<u8> {
        frame(&Frame::Msg(text.to_owned()))
    }

    /// A proxy in front of a fake station, which hands over each accepted connection.
    async fn setup() -> (FaultProxy, mpsc::Receiver<FrameReader<TcpStream>>) {
        let station = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = station.local_addr().unwrap();
        let (accepted, accepted_rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((stream, _)) = station.accept().await {
                let _ = accepted.send(FrameReader::new(stream, FRAME_BYTES_MAX)).await;
            }
        });
        let proxy = FaultProxy::start(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), target).unwrap();
        (proxy, accepted_rx)
    }

    async fn dial(proxy: &FaultProxy, node: u64) -> TcpStream {
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        stream.write_all(&hello(node)).await.unwrap();
        stream
    }

    async fn next(reader: &mut FrameReader<TcpStream>) -> Option<Frame<Msg>> {
        tokio::time::timeout(WAIT, reader.next::<Msg>()).await.expect("a frame in time").unwrap().map(|(f, _)| f)
    }

    async fn accepted(rx: &mut mpsc::Receiver<FrameReader<TcpStream>>) -> FrameReader<TcpStream> {
        tokio::time::timeout(WAIT, rx.recv()).await.expect("a connection in time").unwrap()
    }

    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Reads from a dialler's socket until the proxy closes it.
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        matches!(tokio::time::timeout(WAIT, stream.read(&mut byte)).await, Ok(Ok(0) | Err(_)))
    }

    #[test]
    fn hello_names_its_sender_and_nothing_else_does() {
        assert_eq!(hello_source(&hello(7)), Some(7));
        assert_eq!(hello_source(&msg("x")), None);
        let mut corrupt = hello(7);
        *corrupt.last_mut().unwrap() ^= 1;
        assert_eq!(hello_source(&corrupt), None);
    }

    #[tokio::test]
    async fn frames_pass_whole_and_in_order() {
        let (proxy, mut stations) = setup().await;
        let mut dialler = dial(&proxy, 7).await;
        let mut both = msg("a");
        both.extend(msg("b"));
        // Split mid-frame: the proxy must reassemble.
        dialler.write_all(&both[..3]).await.unwrap();
        dialler.write_all(&both[3..]).await.unwrap();
        let mut station = accepted(&mut stations).await;
        assert_eq!(
            next(&mut station).await,
            Some(Frame::Hello { node: NodeId(7), wire_version: WIRE_VERSION, listen: None, cluster: 0 })
        );
        assert_eq!(next(&mut station).await, Some(Frame::Msg("a".into())));
        assert_eq!(next(&mut station).await, Some(Frame::Msg("b".into())));
        drop(dialler);
        assert_eq!(next(&mut station).await, None, "the dialler's close reaches the station");
    }

    #[tokio::test]
    async fn blackhole_swallows_one_sources_frames_and_keeps_its_connection() {
        let (proxy, mut stations) = setup().await;
        let (mut seven, mut eight) = (dial(&proxy, 7).await, dial(&proxy, 8).await);
        let (mut first, mut second) = (accepted(&mut stations).await, accepted(&mut stations).await);
        let (Some(Frame::Hello { node: a, .. }), Some(Frame::Hello { .. })) =
            (next(&mut first).await, next(&mut second).await)
        else {
            panic!("hellos first");
        };
        let (from_seven, from_eight) =
            if a == NodeId(7) { (&mut first, &mut second) } else { (&mut second, &mut first) };
        proxy.set(7, LinkFault::Blackhole);
        seven.write_all(&msg("lost")).await.unwrap();
        eight.write_all(&msg("kept")).await.unwrap();
        assert_eq!(next(from_eight).await, Some(Frame::Msg("kept".into())), "another source still passes");
        until("the frame to be swallowed", || proxy.counts().frames_swallowed.load(Ordering::Relaxed) == 1).await;
        proxy.heal();
        seven.write_all(&msg("after")).await.unwrap();
        assert_eq!(next(from_seven).await, Some(Frame::Msg("after".into())), "same connection, next frame");
    }

    #[tokio::test]
    async fn drop_closes_open_connections_and_refuses_new_ones() {
        let (proxy, mut stations) = setup().await;
        let mut dialler = dial(&proxy, 7).await;
        let mut station = accepted(&mut stations).await;
        assert!(matches!(next(&mut station).await, Some(Frame::Hello { .. })));
        proxy.set(7, LinkFault::Drop);
        assert!(closed(&mut dialler).await, "the open connection is closed");
        assert_eq!(next(&mut station).await, None, "and so is the station's side");
        let mut again = dial(&proxy, 7).await;
        assert!(closed(&mut again).await, "a new connection is closed after its hello");
        let other = dial(&proxy, 8).await;
        let mut station = accepted(&mut stations).await;
        assert_eq!(
            next(&mut station).await,
            Some(Frame::Hello { node: NodeId(8), wire_version: WIRE_VERSION, listen: None, cluster: 0 })
        );
        assert!(stations.try_recv().is_err(), "the dropped source never reached the station again");
        drop(other);
    }

    #[tokio::test]
    async fn delay_holds_each_frame_at_least_the_delay() {
        let (proxy, mut stations) = setup().await;
        let delay = Duration::from_millis(300);
        proxy.set(7, LinkFault::Delay(delay));
        let sent = Instant::now();
        let mut dialler = dial(&proxy, 7).await;
        dialler.write_all(&msg("late")).await.unwrap();
        let mut station = accepted(&mut stations).await;
        assert!(matches!(next(&mut station).await, Some(Frame::Hello { .. })));
        assert_eq!(next(&mut station).await, Some(Frame::Msg("late".into())));
        assert!(sent.elapsed() >= delay, "arrived after {:?}, under the delay {delay:?}", sent.elapsed());
    }

    #[tokio::test]
    async fn a_connection_that_does_not_open_with_a_hello_is_closed() {
        let (proxy, mut stations) = setup().await;
        let mut stranger = TcpStream::connect(proxy.addr()).await.unwrap();
        stranger.write_all(&msg("no hello")).await.unwrap();
        assert!(closed(&mut stranger).await);
        let mut garbage = TcpStream::connect(proxy.addr()).await.unwrap();
        garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(closed(&mut garbage).await);
        assert!(stations.try_recv().is_err(), "nothing reached the station");
    }
}
