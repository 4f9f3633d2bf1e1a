//! How instances are started, restarted, stopped and fenced, and the timed
//! rules that run on every step (lease expiry, start timeouts, re-issue of
//! lost commands, collection of old terminal instances).
//!
//! In: the working graph and the step's time. Out: changes, commands and
//! decisions on the `Stepper`. The rules that make failover safe live here:
//! an instance leaves the set holding its service's slot only when its stop
//! is confirmed or its node is dead (lease expired or fence confirmed).

use crate::command::Action;
use crate::coordinator::Stepper;
use crate::decision::secs;
use crate::end::EndReason;
use crate::graph::Change;
use crate::instance::{Instance, InstanceId, InstanceState, Role};
use crate::node::{Expiry, Lease};
use crate::service::Ended;
use haven_runtime::NodeId;

impl Stepper<'_> {
    /// Declares `node` dead at `at_ms` and fences every instance it held:
    /// by now its agent has killed them (self-fencing before the lease could
    /// lapse here) or the external fence did.
    pub(crate) fn expire(&mut self, node: NodeId, at_ms: u64, cause: Expiry) {
        let Some(mut record) = self.g.nodes.get(&node).cloned() else { return };
        record.lease = Lease::Expired { at_ms, cause };
        self.change(Change::PutNode(record));
        let reason = match cause {
            Expiry::Lease => EndReason::LeaseExpired { node, at_ms },
            Expiry::Fenced => EndReason::FenceConfirmed { node, at_ms },
        };
        self.fence_held(node, &reason);
        let how = match cause {
            Expiry::Lease => format!("its lease expired at {}", secs(at_ms)),
            Expiry::Fenced => "its fence was confirmed".to_string(),
        };
        self.decide(None, format!("{node} is dead: {how}"));
    }

    /// The node's agent joined with a new session while the old one's lease
    /// still ran: an agent ends every instance of its old session before
    /// it joins again (it kills what it finds left after a restart), so
    /// the old session's instances are gone and their commands void.
    pub(crate) fn end_session(&mut self, node: NodeId) {
        self.fence_held(node, &EndReason::NewSession { node });
        self.decide(None, format!("{node}'s agent started a new session; its earlier instances are gone"));
    }

    /// Every instance `node` holds is fenced for `reason`.
    fn fence_held(&mut self, node: NodeId, reason: &EndReason) {
        let held: Vec<Instance> = self.g.instances_on(node).filter(|i| i.holds()).cloned().collect();
        for mut i in held {
            self.remember_end(&i, reason);
            i.state = InstanceState::Fenced;
            i.since_ms = self.now_ms;
            i.command = None;
            i.end = Some(reason.clone());
            self.put(i);
        }
    }

    /// Nodes whose lease ran out before now.
    pub(crate) fn expire_leases(&mut self) {
        let lapsed: Vec<(u64, NodeId)> = self.g.index.lease_ends.range(..(self.now_ms, NodeId(0))).copied().collect();
        for (at_ms, node) in lapsed {
            self.expire(node, at_ms, Expiry::Lease);
        }
    }

    /// A singleton's replacement says why its primary went.
    fn remember_end(&mut self, instance: &Instance, reason: &EndReason) {
        let Some(mut service) = self.g.services.get(&instance.service).cloned() else { return };
        if service.spec.is_singleton() && instance.is_primary() {
            service.last_end = Some(Ended { node: instance.node, reason: reason.clone() });
            self.put_service(service);
        }
    }

    /// The instance failed on a live node: restart in place while the policy
    /// allows, else stop it there (and keep the node out for the window);
    /// the replacement elsewhere waits for the confirmed stop.
    pub(crate) fn failure(&mut self, mut instance: Instance, detail: String) {
        let Some(service) = self.g.services.get(&instance.service).cloned() else {
            return self.stop(instance, EndReason::Removed);
        };
        let policy = &service.spec.restart;
        let now = self.now_ms;
        instance.restarts_ms.retain(|t| t.saturating_add(policy.restart_window_ms) > now);
        let name = describe(&instance);
        if instance.restarts_ms.len() < policy.restarts_max as usize {
            instance.restarts_ms.push(now);
            let (n, max, window) = (instance.restarts_ms.len(), policy.restarts_max, secs(policy.restart_window_ms));
            let text =
                format!("restarted {name} on {} ({detail}): restart {n} of {max} within {window}", instance.node);
            self.decide(Some(&service.spec.name), text);
            return self.start(instance, &service.spec);
        }
        let mut service = service;
        let until_ms = now.saturating_add(service.spec.restart.restart_window_ms);
        service.bans.insert(instance.node, until_ms);
        let reason = EndReason::Failed {
            node: instance.node,
            restarts: instance.restarts_ms.len() as u32,
            window_ms: service.spec.restart.restart_window_ms,
            detail,
        };
        self.put_service(service);
        self.stop(instance, reason);
    }

    /// (Re)starts the instance where it is, as a new incarnation: a primary
    /// gets a fresh token.
    pub(crate) fn start(&mut self, mut instance: Instance, spec: &crate::spec::ServiceSpec) {
        instance.token = match instance.role {
            Role::Primary => Some(self.take_token()),
            Role::Standby => None,
        };
        instance.state = InstanceState::Pending;
        instance.since_ms = self.now_ms;
        let action = Action::Start { spec: Box::new(spec.clone()), role: instance.role, token: instance.token };
        self.issue(&mut instance, action);
        self.put(instance);
    }

    /// Turns a ready standby into the primary with a fresh token.
    pub(crate) fn promote(&mut self, mut instance: Instance) {
        assert!(instance.role == Role::Standby && instance.state == InstanceState::Active, "promote {instance}");
        let token = self.take_token();
        instance.role = Role::Primary;
        instance.token = Some(token);
        instance.state = InstanceState::Pending;
        instance.since_ms = self.now_ms;
        let action = Action::Promote { service: instance.service.clone(), token };
        self.issue(&mut instance, action);
        self.put(instance);
    }

    /// Asks the agent to stop the instance; it keeps its slot until the stop
    /// is confirmed or its node dies.
    pub(crate) fn stop(&mut self, mut instance: Instance, reason: EndReason) {
        let timeout_ms = self.g.services.get(&instance.service).map_or(10_000, |s| s.spec.stop_timeout_ms);
        let text = format!("stopping {} on {}: {reason}", describe(&instance), instance.node);
        self.decide(Some(&instance.service.clone()), text);
        self.remember_end(&instance, &reason);
        instance.state = InstanceState::Stopping;
        instance.since_ms = self.now_ms;
        instance.end = Some(reason);
        let action = Action::Stop { service: instance.service.clone(), timeout_ms };
        self.issue(&mut instance, action);
        self.put(instance);
    }

    /// The stop is confirmed: a failed instance stays visible as `failed`,
    /// any other leaves the graph.
    pub(crate) fn stopped(&mut self, mut instance: Instance) {
        let text = format!("stopped {} on {}", describe(&instance), instance.node);
        self.decide(Some(&instance.service.clone()), text);
        if instance.end.as_ref().is_some_and(EndReason::is_failure) {
            instance.state = InstanceState::Failed;
            instance.since_ms = self.now_ms;
            instance.command = None;
            self.put(instance);
        } else {
            self.change(Change::RemoveInstance(instance.id));
        }
    }

    /// Instances that did not become active within the start timeout failed.
    pub(crate) fn time_out_starts(&mut self) {
        let late: Vec<(Instance, u64)> = self
            .in_flight()
            .filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::Starting))
            .filter_map(|i| {
                let timeout_ms = self.g.services.get(&i.service)?.spec.start_timeout_ms;
                (i.since_ms.saturating_add(timeout_ms) <= self.now_ms).then(|| (i.clone(), timeout_ms))
            })
            .take(self.config.overdue_per_step_max)
            .collect();
        for (instance, timeout_ms) in late {
            self.failure(instance, format!("not active within {}", secs(timeout_ms)));
        }
    }

    /// Instances starting or awaiting a command: few, whatever the graph's size.
    fn in_flight(&self) -> impl Iterator<Item = &Instance> + '_ {
        self.g.index.in_flight.iter().filter_map(|id| self.g.instances.get(id))
    }

    /// Commands not acknowledged within `command_retry_ms` are sent again,
    /// the longest unacknowledged first, `overdue_per_step_max` at most: at
    /// boot thousands can be due together, and re-sending them all in one
    /// step would only add to the load that delays their answers.
    pub(crate) fn retry_commands(&mut self) {
        let Some(sent_before_ms) = self.now_ms.checked_sub(self.config.command_retry_ms) else { return };
        let due: Vec<Instance> = (self.g.index.awaiting.range(..=(sent_before_ms, InstanceId(u64::MAX))))
            .take(self.config.overdue_per_step_max)
            .filter_map(|(_, id)| self.g.instances.get(id))
            .cloned()
            .collect();
        for instance in due {
            self.reissue(instance);
        }
    }

    /// Failed and fenced instances leave once the operator has had time to see them.
    pub(crate) fn collect_terminal(&mut self) {
        let keep_ms = self.config.instance_terminal_keep_ms;
        let Some(before_ms) = self.now_ms.checked_sub(keep_ms) else { return };
        let old = self.g.index.terminal.range(..=(before_ms, InstanceId(u64::MAX))).map(|(_, id)| *id);
        let old: Vec<InstanceId> = old.take(self.config.overdue_per_step_max).collect();
        for id in old {
            self.change(Change::RemoveInstance(id));
        }
    }
}

/// `db` for a primary, `db standby` for a standby.
pub(crate) fn describe(instance: &Instance) -> String {
    match instance.role {
        Role::Primary => instance.service.clone(),
        Role::Standby => format!("{} standby", instance.service),
    }
}
