//! `haven agent`: the process supervisor on a managed machine.
//!
//! In: the agent's decisions (`haven_ha::AgentCore`: which commands to
//! carry out, when to fence). Out: service processes, each in its own
//! process group with rotated logs and health checks, and the events about
//! them. This module is the I/O shell; the decisions are pure and tested
//! in crates/ha.

pub mod health;
pub mod http_link;
pub mod log_file;
pub mod routed_link;
pub mod run;
pub mod shim;
pub mod supervisor;
