//! The coordinator's reaction to the event itself, before reconciliation:
//! nodes joining and their leases, agents' reports about instances and
//! commands. Operator actions are in `operator.rs`.
//!
//! In: one event and the working graph. Out: changes and decisions on the
//! `Stepper`. Reports about an older incarnation (another token) or a
//! finished instance are ignored: the graph already moved on.

use crate::command::Action;
use crate::coordinator::Stepper;
use crate::decision::secs;
use crate::input::Event;
use crate::instance::{Instance, InstanceId, InstanceState};
use crate::node::{Expiry, Lease, Node};
use crate::validate::{LIST_LEN_MAX, STRING_BYTES_MAX};
use haven_runtime::NodeId;
use std::collections::BTreeMap;

impl Stepper<'_> {
    pub(crate) fn handle_event(&mut self, event: &Event) {
        match event {
            Event::Tick => {}
            Event::NodeJoined { node, address, labels, lease_expires_at_ms, session } => {
                self.node_joined(*node, address, labels, *lease_expires_at_ms, *session)
            }
            Event::LeaseRenewed { node, expires_at_ms } => self.lease_renewed(*node, *expires_at_ms),
            Event::LeaseExpired { node } => {
                if let Some(Lease::Alive { expires_at_ms }) = self.g.nodes.get(node).map(|n| n.lease) {
                    // The station's lease table is the authority; it may run slightly ahead of this clock.
                    self.expire(*node, expires_at_ms.min(self.now_ms), Expiry::Lease);
                }
            }
            Event::FenceConfirmed { node, session } => {
                let fenced = |n: &Node| n.session == *session && matches!(n.lease, Lease::Alive { .. });
                if self.g.nodes.get(node).is_some_and(fenced) {
                    self.expire(*node, self.now_ms, Expiry::Fenced);
                }
            }
            Event::InstanceStarted { instance, token } => self.report_started(*instance, *token),
            Event::InstanceActive { instance, token } => self.report_active(*instance, *token),
            Event::InstanceExited { instance, token, code } => self.report_exited(*instance, *token, *code),
            Event::InstanceUnhealthy { instance, token } => {
                if let Some(i) = self.current(*instance, *token).filter(|i| i.state != InstanceState::Stopping) {
                    self.failure(i, "unhealthy".to_string());
                }
            }
            Event::CommandDone { command } => self.command_done(*command),
            Event::CommandFailed { command, error } => self.command_failed(*command, error),
            Event::Operator(action) => self.operator(action),
        }
    }

    fn node_joined(
        &mut self,
        id: NodeId,
        address: &str,
        labels: &BTreeMap<String, String>,
        expires_at_ms: u64,
        session: i64,
    ) {
        let known = self.g.nodes.get(&id).cloned();
        if known.is_none() && self.g.nodes.len() >= self.config.nodes_len_max {
            let max = self.config.nodes_len_max;
            return self.decide(None, format!("refused {id}: the cluster has {max} nodes, the most it admits"));
        }
        let too_long = address.len() > STRING_BYTES_MAX
            || labels.len() > LIST_LEN_MAX
            || labels.iter().any(|(k, v)| k.len() + v.len() > STRING_BYTES_MAX);
        if too_long {
            return self.decide(None, format!("refused {id}: its address or labels are too long"));
        }
        if known.as_ref().is_some_and(|n| n.session != session && n.is_alive(self.now_ms)) {
            self.end_session(id);
        }
        let lease = match known.as_ref().map(|n| n.lease) {
            Some(Lease::Alive { expires_at_ms: old }) => Lease::Alive { expires_at_ms: old.max(expires_at_ms) },
            _ => Lease::Alive { expires_at_ms },
        };
        let node = Node {
            id,
            address: address.to_string(),
            labels: labels.clone(),
            lease,
            session,
            drained: known.as_ref().is_some_and(|n| n.drained),
            proxy: known.as_ref().and_then(|n| n.proxy),
        };
        let verb = if known.is_some() { "rejoined" } else { "joined" };
        self.decide(None, format!("{id} {verb} at {address}"));
        self.change(crate::graph::Change::PutNode(node));
    }

    fn lease_renewed(&mut self, id: NodeId, expires_at_ms: u64) {
        let Some(mut node) = self.g.nodes.get(&id).cloned() else { return };
        match node.lease {
            Lease::Alive { expires_at_ms: old } if old >= expires_at_ms => return,
            Lease::Alive { .. } => {}
            Lease::Expired { .. } => {
                self.decide(None, format!("{id} is back: lease renewed until {}", secs(expires_at_ms)));
            }
        }
        node.lease = Lease::Alive { expires_at_ms };
        self.change(crate::graph::Change::PutNode(node));
    }

    /// The instance, if the report is about its current incarnation and it
    /// has not ended.
    fn current(&self, id: InstanceId, token: Option<u64>) -> Option<Instance> {
        self.g.instances.get(&id).filter(|i| i.token == token && !i.is_terminal()).cloned()
    }

    fn report_started(&mut self, id: InstanceId, token: Option<u64>) {
        if let Some(mut i) = self.current(id, token).filter(|i| i.state == InstanceState::Pending) {
            i.state = InstanceState::Starting;
            i.since_ms = self.now_ms;
            i.command = None;
            self.put(i);
        }
    }

    fn report_active(&mut self, id: InstanceId, token: Option<u64>) {
        let Some(mut i) = self.current(id, token) else { return };
        if matches!(i.state, InstanceState::Pending | InstanceState::Starting) {
            i.state = InstanceState::Active;
            i.since_ms = self.now_ms;
            i.command = None;
            self.put(i);
        }
    }

    fn report_exited(&mut self, id: InstanceId, token: Option<u64>, code: Option<i32>) {
        let Some(i) = self.current(id, token) else { return };
        if i.state == InstanceState::Stopping {
            // The agent saw the process go: that is the stop we were waiting for.
            return self.stopped(i);
        }
        let detail = match code {
            Some(code) => format!("exit code {code}"),
            None => "killed by a signal".to_string(),
        };
        self.failure(i, detail);
    }

    fn awaiting(&self, command: crate::command::CommandId) -> Option<Instance> {
        self.g.awaiting(command).cloned()
    }

    fn command_done(&mut self, command: crate::command::CommandId) {
        let Some(mut i) = self.awaiting(command) else { return };
        let action = i.command.take().map(|issued| issued.command.action);
        match action {
            Some(Action::Stop { .. }) => self.stopped(i),
            Some(Action::Promote { .. }) => {
                i.state = InstanceState::Active;
                i.since_ms = self.now_ms;
                self.put(i);
            }
            _ => {
                if i.state == InstanceState::Pending {
                    i.state = InstanceState::Starting;
                    i.since_ms = self.now_ms;
                }
                self.put(i);
            }
        }
    }

    fn command_failed(&mut self, command: crate::command::CommandId, error: &str) {
        let Some(i) = self.awaiting(command) else { return };
        let stopping = i.command.as_ref().is_some_and(|c| matches!(c.command.action, Action::Stop { .. }));
        if stopping {
            // Only a confirmed stop or the node's death frees a singleton's slot: keep asking.
            let (service, node) = (i.service.clone(), i.node);
            return self.decide(Some(&service), format!("stop of {service} on {node} failed ({error}); will retry"));
        }
        self.failure(i, format!("start failed ({error})"));
    }
}
