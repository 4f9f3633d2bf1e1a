//! Listening sockets with room for a burst of connections.
//!
//! In: an address. Out: a tokio listener bound to it (with `SO_REUSEADDR`,
//! as `TcpListener::bind` sets it) whose accept queue holds up to
//! [`ACCEPT_QUEUE_LEN_MAX`] connections; the kernel caps that at
//! `net.core.somaxconn` (4096 by default since Linux 5.4).
//!
//! Why not `TcpListener::bind`: it asks for a queue of 128, as the standard
//! library does. When more clients than that connect at once, the kernel
//! drops the SYNs it has no room for, and each of those clients waits for
//! its retransmission, a second later on Linux: 256 benchmark clients at
//! the start of a phase saw 1 s requests, and so would every client of a
//! failed member reconnecting elsewhere, or the agents of a restarted
//! proxy. etcd's listeners (Go's) ask for the system's maximum as well.

use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel may hold for a listener before they are accepted.
pub const ACCEPT_QUEUE_LEN_MAX: u32 = 4096;

/// A listener on `addr` with an accept queue of [`ACCEPT_QUEUE_LEN_MAX`].
/// Must be called within a tokio runtime.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_QUEUE_LEN_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The kernel's cap on any listener's accept queue on this machine.
    fn somaxconn() -> usize {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(128)
    }

    /// With a queue of 128, connections past the 129th get no SYN-ACK while
    /// nothing is accepted, and their connects hang for minutes of SYN
    /// retransmissions; here all of them complete before any is accepted.
    #[tokio::test]
    async fn a_burst_of_connections_beyond_128_is_queued_not_dropped() {
        let burst = 300.min(somaxconn().saturating_sub(1));
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let connects: Vec<_> = (0..burst).map(|_| tokio::spawn(tokio::net::TcpStream::connect(addr))).collect();
        let all = async {
            let mut streams = Vec::new();
            for connect in connects {
                streams.push(connect.await.unwrap().expect("connected"));
            }
            streams
        };
        // Far beyond a loopback handshake, far below the retransmissions'
        // two minutes: a generous bound that still fails with a queue of 128.
        let streams = tokio::time::timeout(Duration::from_secs(30), all).await.expect("every connect completes");
        assert_eq!(streams.len(), burst);
        drop(listener);
    }

    #[tokio::test]
    async fn a_taken_address_is_an_error() {
        let first = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let error = listen(first.local_addr().unwrap()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }
}
