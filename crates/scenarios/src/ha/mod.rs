//! High-availability scenarios: station replicas running the coordinator,
//! simulated agents that supervise instances and fence themselves, a
//! protected resource the primaries write to, and an operator
//! (`ha-failover`), checked for fencing-token order at the resource after
//! every event and for every service running as wanted after healing.

pub mod agent;
mod agent_session;
mod agent_work;
pub mod checks;
pub mod failover;
pub mod faults;
pub mod fence;
pub mod fence_device;
pub mod fence_recovery;
pub mod operator;
pub mod proxy;
pub mod resource;
pub mod scale;
