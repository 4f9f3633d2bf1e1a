//! Loopback ports for clusters on one machine (`haven up`, the demo, the
//! tests): a listener at a free port below the kernel's ephemeral range.
//!
//! In: nothing. Out: a listener on 127.0.0.1 at a port in
//! [`LOOPBACK_PORT_FIRST`], [`LOOPBACK_PORT_FIRST`] + [`LOOPBACK_PORTS_LEN`]).
//!
//! Why not port 0: a local cluster learns a free port by binding it, then
//! frees it for the process that will serve on it. In between, the kernel
//! may hand that very port to any outgoing connection on the machine as its
//! source port (it draws those from the ephemeral range, 32768-60999 by
//! default on Linux), and the server then fails to bind; busy test runs saw
//! it. Ports below that range are never given out that way. Each process
//! starts its search at its own place and moves past every port it hands
//! out, so that its threads do not pick one another's freed ports.

use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

pub const LOOPBACK_PORT_FIRST: u16 = 20_000;
pub const LOOPBACK_PORTS_LEN: u16 = 12_000;

/// Offset of the next port this process tries (wrapped into the range).
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A listener on a free loopback port of the range above.
pub fn loopback_listener() -> io::Result<TcpListener> {
    let len = u32::from(LOOPBACK_PORTS_LEN);
    // A multiplicative hash of the pid spreads processes over the range.
    let first = std::process::id().wrapping_mul(2_654_435_761) % len;
    let _ = NEXT.compare_exchange(u32::MAX, first, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..len {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % len;
        let port = LOOPBACK_PORT_FIRST + u16::try_from(offset).expect("offsets are below the range's length");
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    let last = u32::from(LOOPBACK_PORT_FIRST) + len;
    Err(io::Error::new(io::ErrorKind::AddrInUse, format!("no free loopback port in {LOOPBACK_PORT_FIRST}..{last}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_handed_out_are_distinct_and_below_the_ephemeral_range() {
        let held: Vec<TcpListener> = (0..3).map(|_| loopback_listener().unwrap()).collect();
        let freed: Vec<u16> = (0..3).map(|_| loopback_listener().unwrap().local_addr().unwrap().port()).collect();
        let mut ports: Vec<u16> = held.iter().map(|l| l.local_addr().unwrap().port()).chain(freed).collect();
        assert!(ports.iter().all(|p| (LOOPBACK_PORT_FIRST..LOOPBACK_PORT_FIRST + LOOPBACK_PORTS_LEN).contains(p)));
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 6, "a freed port is not handed out again at once");
    }
}
