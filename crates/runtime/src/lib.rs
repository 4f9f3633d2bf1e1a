//! Haven's component model.
//!
//! In: messages from other nodes, timer firings and disk I/O completions,
//! each handed to a [`Component`] together with a context ([`Ctx`]).
//! Out: effects requested through that context: send a message, set or
//! cancel a timer, start a disk operation, or report an output upward.
//!
//! A component never touches the operating system. Its clock and its random
//! number generator come from the context, so the same code runs unchanged
//! in the deterministic simulator (`haven-sim`) and in production
//! (`haven-net`). Both executors drive a component through a [`Host`], which
//! owns the component, its RNG, its live timers and its pending I/O.
//!
//! Composition is hierarchical and static: a node's top component owns its
//! sub-components and calls their handlers with [`Ctx::sub`], which maps the
//! child's message, timer and I/O types into the parent's and collects the
//! child's outputs for the parent to act on.

pub mod byte_vec;
pub mod component;
pub mod disk;
pub mod host;
pub mod node;
pub mod record;
pub mod sub;
pub mod time;
pub mod wire;

pub use component::{Component, Ctx, CtxFor, IoId, MESSAGES_PER_BATCH_MAX, TimerId};
pub use disk::{FileInfo, FileName, IoDone, IoError, IoRequest, IoResult};
pub use host::{Effect, Host};
pub use node::NodeId;
pub use sub::Sub;
pub use time::Instant;
pub use wire::{Message, WireError};

/// The random number generator every component draws from. Seeded by the
/// simulator from the run's seed, and by production from the OS.
pub type Rng = rand_chacha::ChaCha8Rng;
