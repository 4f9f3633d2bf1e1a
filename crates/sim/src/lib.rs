//! Haven's deterministic whole-system simulator.
//!
//! In: a seed, a node count, a factory for the node's top component, checkers
//! and a scenario. Out: a [`RunReport`] whose last line,
//! `seed=N trace_hash=<16 hex> result=ok|violation: ...`, identifies the run:
//! the same seed replays it exactly, event for event.
//!
//! All nodes run in one thread, in virtual time ([`SimTime`]), each through a
//! `haven_runtime::Host` like in production. Every random choice (latencies,
//! losses, disk tears, scenario decisions, each node's own RNG) is drawn from
//! a stream derived from the one seed. The world models a network (latency
//! distributions, loss, duplication, partitions including one-way ones, and
//! clogging), crashes with a disk that loses what was not synced, pauses, and
//! drifting clocks.
//!
//! ```
//! use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
//! use haven_sim::{Dist, Process, Scenario, Sim, SimConfig, actions};
//! use std::time::Duration;
//!
//! /// Sends one hello to every node when it starts.
//! struct Hello;
//!
//! impl Component for Hello {
//!     type Msg = u32;
//!     type Timer = ();
//!     type Io = ();
//!     type Out = u32;
//!     fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
//!         for to in 1..=3 {
//!             ctx.send(NodeId(to), 7);
//!         }
//!     }
//!     fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, _: NodeId, msg: u32) {
//!         ctx.output(msg);
//!     }
//!     fn on_timer(&mut self, _: &mut impl CtxFor<Self>, _: TimerId, _: ()) {}
//!     fn on_io(&mut self, _: &mut impl CtxFor<Self>, _: IoId, _: (), _: IoResult) {}
//! }
//!
//! let mut sim = Sim::new(SimConfig::new(42, 3), |_| Hello).unwrap();
//! sim.add_safety("only sevens", |sim| match sim.last_outputs().iter().find(|(_, out)| *out != 7) {
//!     Some((node, out)) => Err(format!("{node} received {out}")),
//!     None => Ok(()),
//! });
//! let mut scenario = Scenario::new();
//! let boot = scenario.add(Process::new("boot", 3, Dist::ZERO, actions::start_each()));
//! scenario.end_after(&[boot], Duration::from_secs(1));
//! let report = sim.run(scenario);
//! assert!(report.is_ok(), "{report}");
//! // n1 starts first, while n2 and n3 are still down: what it sends them is
//! // lost, as a connection to a machine not yet up would be. Then n2, then n3.
//! assert_eq!(sim.counters().messages_delivered, 1 + 2 + 3);
//! ```

pub mod actions;
mod check;
pub mod clock;
mod config;
pub mod disk;
mod dispatch;
mod dist;
mod error;
mod event;
mod faults;
mod hash;
mod network;
mod node;
mod peers;
mod process;
mod report;
mod scenario;
mod sim;
mod sweep;
mod time;
mod trace;

pub use check::Predicate;
pub use clock::Clock;
pub use config::{NODES_MAX, SimConfig};
pub use disk::{DiskConfig, SimDisk};
pub use dist::{DIST_DEPTH_MAX, Dist, EXPONENTIAL_MEANS_MAX};
pub use error::ConfigError;
pub use hash::derive_rng;
pub use network::LinkConfig;
pub use node::NodeState;
pub use peers::PeerMap;
pub use process::{Action, ProcId, Process, Start};
pub use report::{Outcome, RunReport, Violation};
pub use scenario::Scenario;
pub use sim::{Call, Counters, Sim};
pub use sweep::{SweepReport, sweep};
pub use time::SimTime;
pub use trace::TraceSink;
