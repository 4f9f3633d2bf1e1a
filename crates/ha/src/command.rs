//! Commands the coordinator sends to agents.
//!
//! In: the coordinator's decisions. Out: what an agent must do to one
//! instance. A command that makes an instance serve (`Start` of a primary,
//! `Promote`) carries a fencing token greater than any earlier one of its
//! service; the agent refuses a token lower than one it has seen. A command
//! that is re-issued keeps its id and token, so the agent can deduplicate.
//! Every command names the node's session it was decided for.

use crate::instance::{InstanceId, Role};
use crate::spec::ServiceSpec;
use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct CommandId(pub u64);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCommand {
    pub id: CommandId,
    pub node: NodeId,
    /// The node's session (the store lease it joined with) when the command
    /// was decided. An agent carries out only commands of its own session:
    /// one decided for an earlier session may arrive late, after the
    /// coordinator has fenced that session's instances and replaced them,
    /// and a restarted agent no longer knows the tokens it had seen.
    pub session: i64,
    pub instance: InstanceId,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Start the instance (stopping an older incarnation of it first). A
    /// primary gets `Some(token)`, a standby `None`.
    Start { spec: Box<ServiceSpec>, role: Role, token: Option<u64> },
    /// Run the spec's promote command: the standby becomes the primary.
    Promote { service: String, token: u64 },
    /// Stop the instance: SIGTERM, then SIGKILL after `timeout_ms`.
    Stop { service: String, timeout_ms: u64 },
}

/// A command awaiting acknowledgement, and when it was last sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    pub command: AgentCommand,
    pub issued_at_ms: u64,
}

impl AgentCommand {
    /// The fencing token this command hands out, if it makes an instance serve.
    pub fn token(&self) -> Option<u64> {
        match &self.action {
            Action::Start { token, .. } => *token,
            Action::Promote { token, .. } => Some(*token),
            Action::Stop { .. } => None,
        }
    }

    pub fn service(&self) -> &str {
        match &self.action {
            Action::Start { spec, .. } => &spec.name,
            Action::Promote { service, .. } | Action::Stop { service, .. } => service,
        }
    }
}

impl fmt::Display for AgentCommand {
    /// `c4 n2 start i3 db primary token 7`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.id, self.node)?;
        match &self.action {
            Action::Start { spec, role, token } => {
                write!(f, "start {} {} {role}", self.instance, spec.name)?;
                if let Some(token) = token {
                    write!(f, " token {token}")?;
                }
                Ok(())
            }
            Action::Promote { service, token } => write!(f, "promote {} {service} token {token}", self.instance),
            Action::Stop { service, .. } => write!(f, "stop {} {service}", self.instance),
        }
    }
}
