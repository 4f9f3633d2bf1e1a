//! Client sessions this member uses towards the replicated state machine.
//!
//! In: a request about to be proposed, and the same request once it has
//! its final answer. Out: a (client id, sequence number) pair for it.
//!
//! The replicated session table applies a (client, seq) at most once and
//! keeps only the last answer per client, so a session must carry one
//! command at a time: each in-flight write takes a session of its own and
//! every retry of that write reuses the pair. When the write is over
//! (answered or given up), the session returns here with its next number;
//! a late copy of the old command then finds a newer one applied and is
//! refused, never applied twice. Sessions are created only while all are
//! busy, so there are never more than writes in flight at once.

/// (client id, next sequence number)
type Session = (u64, u64);

#[derive(Debug)]
pub(crate) struct SessionPool {
    /// Client ids are `base + n`; `base` is drawn from the OS at start so
    /// that no two members, nor two runs of one member, share an id.
    base: u64,
    created: u64,
    idle: Vec<Session>,
}

impl SessionPool {
    pub(crate) fn new(base: u64) -> SessionPool {
        SessionPool { base, created: 0, idle: Vec::new() }
    }

    /// A session for one command: (client, seq).
    pub(crate) fn take(&mut self) -> Session {
        self.idle.pop().unwrap_or_else(|| {
            self.created += 1;
            (self.base.wrapping_add(self.created), 1)
        })
    }

    /// The command that used `session` is over.
    pub(crate) fn give_back(&mut self, (client, seq): Session) {
        assert!(!self.idle.iter().any(|(idle, _)| *idle == client), "session {client} given back twice");
        self.idle.push((client, seq + 1));
    }

    #[cfg(test)]
    pub(crate) fn created(&self) -> u64 {
        self.created
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_commands_get_distinct_sessions_and_reuse_them_with_the_next_seq() {
        let mut pool = SessionPool::new(1_000);
        let a = pool.take();
        let b = pool.take();
        assert_ne!(a.0, b.0, "two commands in flight never share a session");
        assert_eq!((a.1, b.1), (1, 1));
        pool.give_back(a);
        let again = pool.take();
        assert_eq!(again, (a.0, 2), "the next command of a session has the next number");
        assert_eq!(pool.created(), 2, "no new session while one is idle");
    }
}
