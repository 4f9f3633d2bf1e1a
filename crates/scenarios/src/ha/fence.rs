//! The agent's refusal of stale commands.
//!
//! In: every command a station sends the agent, before it acts on it. Out:
//! admitted, or why not. [`TokenFence`] (the agent's rule) refuses a
//! command whose fencing token is lower than the highest this agent has
//! seen for the service, and one older (by command id, which only grows)
//! than a command it already handled for the same instance: a delayed copy
//! of an old start must not bring back an incarnation the coordinator has
//! replaced or stopped. A command admitted once is admitted again (a
//! re-issue keeps its id), so the agent can acknowledge it again.
//!
//! The trait exists so that tests can plant an agent that accepts stale
//! commands; the scenario always uses [`TokenFence`].

use haven_ha::{AgentCommand, CommandId, InstanceId};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// Instances whose last handled command the fence remembers; the oldest
/// instance ids are forgotten first (ids only grow).
pub const INSTANCES_REMEMBERED_MAX: usize = 1_024;
/// Services whose highest token the fence remembers.
pub const SERVICES_REMEMBERED_MAX: usize = 1_024;

pub trait CommandFence: Debug {
    /// Whether the agent may act on `command`; records it if so.
    fn admit(&mut self, command: &AgentCommand) -> Result<(), String>;
}

#[derive(Debug, Default)]
pub struct TokenFence {
    token_max: BTreeMap<String, u64>,
    last_command: BTreeMap<InstanceId, CommandId>,
}

impl TokenFence {
    pub fn new() -> TokenFence {
        TokenFence::default()
    }

    pub fn boxed() -> Box<dyn CommandFence> {
        Box::new(TokenFence::new())
    }
}

impl CommandFence for TokenFence {
    fn admit(&mut self, command: &AgentCommand) -> Result<(), String> {
        let service = command.service();
        if let (Some(token), Some(&max)) = (command.token(), self.token_max.get(service))
            && token < max
        {
            return Err(format!("stale fencing token {token} for {service}: {max} was seen"));
        }
        if let Some(&last) = self.last_command.get(&command.instance)
            && command.id < last
        {
            return Err(format!("{} is older than {last}, already handled for {}", command.id, command.instance));
        }
        if let Some(token) = command.token() {
            let max = self.token_max.entry(service.to_string()).or_insert(token);
            *max = (*max).max(token);
            if self.token_max.len() > SERVICES_REMEMBERED_MAX {
                self.token_max.pop_first();
            }
        }
        self.last_command.insert(command.instance, command.id);
        if self.last_command.len() > INSTANCES_REMEMBERED_MAX {
            self.last_command.pop_first();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_ha::Action;
    use haven_runtime::NodeId;

    fn promote(id: u64, instance: u64, token: u64) -> AgentCommand {
        let action = Action::Promote { service: "db".into(), token };
        AgentCommand { id: CommandId(id), node: NodeId(4), session: 1, instance: InstanceId(instance), action }
    }

    fn stop(id: u64, instance: u64) -> AgentCommand {
        let action = Action::Stop { service: "db".into(), timeout_ms: 1 };
        AgentCommand { id: CommandId(id), node: NodeId(4), session: 1, instance: InstanceId(instance), action }
    }

    #[test]
    fn lower_tokens_and_older_commands_are_refused_repeats_are_not() {
        let mut fence = TokenFence::new();
        assert!(fence.admit(&promote(5, 1, 10)).is_ok());
        assert!(fence.admit(&promote(5, 1, 10)).is_ok(), "a re-issue is admitted again");
        assert!(fence.admit(&promote(7, 2, 9)).is_err(), "token 9 after 10");
        assert!(fence.admit(&promote(8, 2, 11)).is_ok());
        assert!(fence.admit(&stop(9, 2)).is_ok());
        assert!(fence.admit(&promote(8, 2, 11)).is_err(), "the start of a stopped instance, delayed");
        assert!(fence.admit(&stop(3, 3)).is_ok(), "another instance has its own history");
    }
}
