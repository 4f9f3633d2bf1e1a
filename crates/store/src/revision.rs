//! A position in the store's history.
//!
//! In: the main revision of a write transaction and the index of one change
//! inside it. Out: a totally ordered position, as etcd's (main, sub) pair:
//! every change ever made has a distinct one, and the event history, every
//! key's versions and every watcher's cursor are ordered by it.

use serde::{Deserialize, Serialize};

/// The position of one change: `main` is the store revision the write
/// transaction created, `sub` counts the changes inside that transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Revision {
    pub main: u64,
    pub sub: u64,
}

impl Revision {
    pub const fn new(main: u64, sub: u64) -> Revision {
        Revision { main, sub }
    }

    /// The first position of main revision `main`.
    pub const fn start_of(main: u64) -> Revision {
        Revision { main, sub: 0 }
    }
}
