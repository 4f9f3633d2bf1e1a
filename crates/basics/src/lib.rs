//! The first protocols on Haven's component model (the "Kompics basics"),
//! written once and run unchanged by the simulator and by production.
//!
//! In: messages, timers and disk completions from an executor.
//! Out: sends, timers, disk requests and observations ([`ElectionEvent`]).
//!
//! - [`detector::PingDetector`]: an eventually-perfect failure detector (◇P)
//!   for the crash-recovery model: pings every period, suspects a peer whose
//!   pongs stop for longer than that peer's timeout, restores it when a pong
//!   arrives, and grows the timeout after each *false* suspicion.
//! - [`omega::Omega`]: eventual leader election (Ω) on top of it: trust the
//!   unsuspected node with the lowest (epoch, id), where the epoch is the
//!   node's incarnation number, so a node that keeps restarting does not keep
//!   taking leadership back.
//! - [`broadcast::Broadcast`]: best-effort broadcast with duplicate
//!   suppression (no creation, no duplication; delivery to all correct nodes
//!   when links do not lose the message).
//! - [`election::ElectionNode`]: a node's top component composing the three,
//!   with its epoch persisted durably on disk before it is used.

pub mod broadcast;
pub mod config;
pub mod detector;
pub mod election;
pub mod epoch_file;
pub mod omega;

pub use config::{ConfigError, DetectorConfig};
pub use detector::{DetectorEvent, DetectorMsg, DetectorTimer, PingDetector};
pub use election::{ElectionEvent, ElectionMsg, ElectionNode};
pub use omega::Omega;

/// A type with no values: the I/O tag of components that do no I/O, and so on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Never {}
