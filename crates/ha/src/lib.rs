//! High availability as pure logic: the service model, the state graph of
//! nodes, services and instances, and the coordinator that turns (state
//! graph, event or tick) into (new state graph, commands, decisions).
//!
//! In: the replicated state graph and one input at a time. Out: the changes
//! to commit and the commands to send once they are committed. No I/O, no
//! clock, no randomness: time comes in with every input.

mod agent;
mod assign;
mod command;
mod config;
mod coordinator;
mod decision;
mod done_commands;
mod end;
mod events;
mod fence_clock;
mod graph;
mod index;
mod input;
mod instance;
mod lifecycle;
mod node;
mod operator;
mod placement;
mod proxy;
mod reconcile;
mod service;
mod spec;
mod validate;

pub use agent::{AgentAction, AgentConfig, AgentCore, ProcessEvent, QuorumLossPolicy};
pub use assign::{PROXY_AGENTS_MAX, PROXY_LABEL, PROXY_URL_LABEL};
pub use command::{Action, AgentCommand, CommandId, Issued};
pub use config::CoordinatorConfig;
pub use coordinator::{Step, step, step_batch};
pub use decision::{Decision, DecisionLog, secs};
pub use done_commands::{DONE_LEN_MAX, DoneCommands};
pub use end::EndReason;
pub use fence_clock::FenceClock;
pub use graph::{Change, StateGraph, Violation};
pub use input::{Event, Input, OperatorAction};
pub use instance::{Instance, InstanceId, InstanceState, Role};
pub use node::{Expiry, Lease, NO_SERVICES_LABEL, Node};
pub use proxy::{
    AgentKeepAlive, BatchAnswer, BatchLease, BatchOutcome, ProxyBatch, ProxyConfig, ProxyCore, ProxyOutput, Renewal,
};
pub use service::{Ended, Service};
pub use spec::{HealthCheck, HealthSpec, Placement, RestartPolicy, ServiceKind, ServiceSpec};
pub use validate::{
    LIST_LEN_MAX, NAME_BYTES_MAX, REPLICAS_MAX, RESTARTS_MAX, STANDBYS_MAX, STRING_BYTES_MAX, SpecError,
    TEXT_BYTES_MAX, TIMEOUT_MS_MAX, validate,
};
