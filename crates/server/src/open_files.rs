//! The open-file limit of the long-running commands (`haven station`,
//! `haven proxy`).
//!
//! In: the process's `RLIMIT_NOFILE`. Out: its soft limit raised to the
//! hard limit, a line in the log saying so, and a warning when the result
//! is still below [`OPEN_FILES_WANTED_MIN`].
//!
//! Why: every client connection, peer link, WAL segment and snapshot file
//! takes a descriptor, and the soft limit is often 1,024 (systemd's default
//! for services, most shells' too) while the hard limit is far higher
//! (524,288 under systemd). At the soft limit a station can accept no more
//! connections (EMFILE) and cannot open its next WAL segment. A process may
//! raise its own soft limit up to the hard one without privileges; Go
//! programs, etcd among them, do it at start.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Below this many descriptors, a station or proxy with many clients runs
/// short: the start-up log warns.
pub const OPEN_FILES_WANTED_MIN: u64 = 4096;

/// Descriptors a station or proxy keeps for itself beyond its client
/// connections: WAL segments and snapshots, peer links, its own client
/// connections to other stations, fence commands' pipes, the runtime's. A
/// handful each; this leaves a wide margin.
pub const OPEN_FILES_RESERVED: u64 = 256;

/// The client connections `wanted` (as set by `source`, named in the
/// warning), lowered to what an open-file `limit` leaves after the reserve, so that
/// connections past it wait in the kernel's queue instead of failing to
/// be accepted while the station runs out of descriptors for its log.
pub fn connections_within(limit: Option<u64>, wanted: usize, source: &str) -> usize {
    let Some(limit) = limit else { return wanted };
    let room = limit - OPEN_FILES_RESERVED.min(limit / 2);
    let room = usize::try_from(room).unwrap_or(usize::MAX).max(1);
    if room >= wanted {
        return wanted;
    }
    tracing::warn!(
        limit,
        wanted,
        allowed = room,
        "the open-file limit leaves room for {room} client connections, fewer than the {wanted} wanted \
         ({source}); holding at most {room}; raise the hard limit (ulimit -Hn, or LimitNOFILE= in a systemd unit)"
    );
    room
}

/// Raises the soft open-file limit to the hard one; returns the limit in
/// force afterwards (or `None` if it cannot be read). Never fails the
/// command: a limit that cannot be raised is logged and left as it is.
pub fn raise_open_files_limit() -> Option<u64> {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    let mut limit = soft;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                tracing::info!(from = soft, to = hard, "raised the open-file limit to its hard limit");
                limit = hard;
            }
            Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit"),
        }
    }
    if limit < OPEN_FILES_WANTED_MIN {
        tracing::warn!(
            limit,
            "few open files allowed: each client connection takes one, and at the limit no more are accepted; \
             raise the hard limit (ulimit -Hn, or LimitNOFILE= in a systemd unit)"
        );
    }
    Some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_lowered_to_what_the_open_files_leave() {
        assert_eq!(connections_within(Some(524_288), 10_000, "--x"), 10_000);
        assert_eq!(connections_within(Some(4096), 10_000, "--x"), 4096 - 256);
        assert_eq!(connections_within(Some(300), 10_000, "--x"), 150, "half kept when the reserve would take most");
        assert_eq!(connections_within(Some(1), 10_000, "--x"), 1);
        assert_eq!(connections_within(None, 10_000, "--x"), 10_000, "an unknown limit changes nothing");
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        // Lowered first to a common default, so the raise has work to do.
        let lowered = hard.min(1024);
        setrlimit(Resource::RLIMIT_NOFILE, lowered, hard).unwrap();
        assert_eq!(raise_open_files_limit(), Some(hard));
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap(), (hard, hard));
    }
}
