//! Reconciliation: for every service, compare the desired instances with
//! those in the graph and start, promote or stop what differs.
//!
//! In: the working graph after the event and the timed rules. Out: changes,
//! commands and decisions on the `Stepper`. A singleton gets a new primary
//! only when no primary holds its slot (see `lifecycle.rs` for when a slot
//! is freed). When nothing is eligible the reason is recorded once, and the
//! placement is tried again on every later step.

use crate::coordinator::Stepper;
use crate::end::EndReason;
use crate::graph::Change;
use crate::instance::{Instance, InstanceState, Role};
use crate::lifecycle::describe;
use crate::placement::{Candidates, has_active_primary, waiting_for};
use crate::service::Service;
use crate::spec::ServiceKind;
use haven_runtime::NodeId;

impl Stepper<'_> {
    pub(crate) fn reconcile(&mut self, name: &str) {
        let Some(service) = self.g.services.get(name).cloned() else { return };
        if !service.wants_instances() {
            return self.wind_down(&service);
        }
        self.stop_misplaced(&service);
        match service.spec.kind {
            ServiceKind::Singleton { standbys } => {
                let holders = self.g.instances_of(name).filter(|i| i.is_primary() && i.holds()).count();
                assert!(holders <= 1, "singleton {name} has {holders} primaries holding its slot");
                if holders == 0 {
                    self.place_primary(name, standbys > 0);
                }
                self.keep_count(name, Role::Standby, standbys);
            }
            ServiceKind::Replicated { count } => self.keep_count(name, Role::Primary, count),
            ServiceKind::EveryNode => self.place_everywhere(name),
        }
    }

    fn wanted(&self, name: &str, role: Role) -> Vec<Instance> {
        self.g.instances_of(name).filter(|i| i.role == role && i.is_wanted()).cloned().collect()
    }

    /// Disabled or being removed: stop everything; a removed service leaves
    /// once nothing of it holds.
    fn wind_down(&mut self, service: &Service) {
        let name = service.name();
        let reason = if service.removing { EndReason::Removed } else { EndReason::Disabled };
        let running: Vec<Instance> = self.g.instances_of(name).filter(|i| i.is_wanted()).cloned().collect();
        for instance in running {
            self.stop(instance, reason.clone());
        }
        if service.removing && !self.g.instances_of(name).any(Instance::holds) {
            let ended: Vec<_> = self.g.instances_of(name).map(|i| i.id).collect();
            for id in ended {
                self.change(Change::RemoveInstance(id));
            }
            self.decide(Some(name), format!("removed service {name}"));
            self.change(Change::RemoveService(name.to_string()));
        }
    }

    /// Instances that may no longer stay where they are.
    fn stop_misplaced(&mut self, service: &Service) {
        let running: Vec<Instance> = self.g.instances_of(service.name()).filter(|i| i.is_wanted()).cloned().collect();
        for instance in running {
            if let Some(reason) = self.must_leave(service, &instance) {
                self.stop(instance, reason);
            }
        }
    }

    fn must_leave(&mut self, service: &Service, instance: &Instance) -> Option<EndReason> {
        let node = self.g.nodes.get(&instance.node)?;
        if node.drained {
            return Some(EndReason::Drained { node: node.id });
        }
        if let Some(with) = &service.spec.placement.colocate_with {
            // While `with` has no active primary anywhere (it is failing over), stay.
            let here = self
                .g
                .instances_on(node.id)
                .any(|i| i.service == *with && i.is_primary() && i.state == InstanceState::Active);
            if !here && has_active_primary(self.g, with) {
                return Some(EndReason::NotColocated { with: with.clone() });
            }
        }
        let to = service.move_to.filter(|to| instance.is_primary() && *to != node.id)?;
        let target_ok = self.g.nodes.get(&to).map(|t| Candidates::new(self.g, service, self.now_ms, true).why_not(t));
        match target_ok {
            Some(None) => Some(EndReason::Moved { to }),
            Some(Some(why)) => {
                self.abandon_move(service.name(), to, format!("{to} {why}"));
                None
            }
            None => {
                self.abandon_move(service.name(), to, format!("no node {to}"));
                None
            }
        }
    }

    fn abandon_move(&mut self, name: &str, to: NodeId, why: String) {
        let Some(mut service) = self.g.services.get(name).cloned() else { return };
        service.move_to = None;
        self.put_service(service);
        self.decide(Some(name), format!("gave up moving {name} to {to}: {why}"));
    }

    /// Records once why the service cannot be placed.
    fn block(&mut self, name: &str, why: String) {
        let Some(mut service) = self.g.services.get(name).cloned() else { return };
        if service.blocked.as_deref() != Some(why.as_str()) {
            service.blocked = Some(why.clone());
            self.put_service(service);
            self.decide(Some(name), format!("{name}: {why}"));
        }
    }

    fn ready_to_place(&mut self, name: &str) -> bool {
        let Some(service) = self.g.services.get(name) else { return false };
        match waiting_for(self.g, service) {
            Some(dep) => {
                self.block(name, format!("waiting for {dep} to be active"));
                false
            }
            None => true,
        }
    }

    /// The singleton's new primary: a ready standby on the best node is
    /// promoted, else a new instance starts there.
    fn place_primary(&mut self, name: &str, promoting: bool) {
        if !self.ready_to_place(name) {
            return;
        }
        let Some(mut service) = self.g.services.get(name).cloned() else { return };
        let candidates = Candidates::new(self.g, &service, self.now_ms, promoting);
        let best = match candidates.best() {
            Ok(node) => node,
            Err(why) => return self.block(name, why),
        };
        let standby = candidates.ready_standby(best).cloned();
        let how = standby.as_ref().map(|s| format!(" (promoted standby {})", s.id)).unwrap_or_default();
        let text = match &service.last_end {
            Some(ended) if ended.node == best => format!("started {name} again on {best}{how}: {}", ended.reason),
            Some(ended) => format!("moved {name} from {} to {best}{how}: {}", ended.node, ended.reason),
            None => format!("started {name} on {best}{how}"),
        };
        self.decide(Some(name), text);
        let before = (service.move_to, service.last_end.take(), service.blocked.take());
        service.move_to = None;
        if before != (None, None, None) {
            self.put_service(service);
        }
        match standby {
            Some(standby) => self.promote(standby),
            None => self.start_new(name, best, Role::Primary),
        }
    }

    /// Keeps `count` wanted instances of `role`: places the missing ones,
    /// stops the newest extra ones.
    fn keep_count(&mut self, name: &str, role: Role, count: u32) {
        let wanted = self.wanted(name, role);
        let count = count as usize;
        for _ in wanted.len()..count {
            if !self.place_one(name, role) {
                break;
            }
        }
        let over = wanted.len().saturating_sub(count);
        for extra in wanted.into_iter().rev().take(over) {
            self.stop(extra, EndReason::Surplus);
        }
    }

    fn place_one(&mut self, name: &str, role: Role) -> bool {
        if !self.ready_to_place(name) {
            return false;
        }
        let Some(service) = self.g.services.get(name) else { return false };
        match Candidates::new(self.g, service, self.now_ms, false).best() {
            Ok(node) => {
                self.start_new(name, node, role);
                true
            }
            Err(why) => {
                self.block(name, why);
                false
            }
        }
    }

    fn place_everywhere(&mut self, name: &str) {
        if !self.ready_to_place(name) {
            return;
        }
        let Some(service) = self.g.services.get(name) else { return };
        let candidates = Candidates::new(self.g, service, self.now_ms, false);
        let free: Vec<NodeId> =
            self.g.nodes.values().filter(|n| candidates.why_not(n).is_none()).map(|n| n.id).collect();
        for node in free {
            self.start_new(name, node, Role::Primary);
        }
    }

    /// A new instance on `node`; clears a recorded block since placement works again.
    fn start_new(&mut self, name: &str, node: NodeId, role: Role) {
        let Some(mut service) = self.g.services.get(name).cloned() else { return };
        let target = self.g.nodes.get(&node);
        let eligible = |n: &crate::node::Node| n.is_alive(self.now_ms) && !n.drained && n.runs_services();
        assert!(target.is_some_and(eligible), "placing {name} on {node}");
        let instance = Instance {
            id: self.take_instance_id(),
            service: name.to_string(),
            node,
            role,
            state: InstanceState::Pending,
            token: None,
            since_ms: self.now_ms,
            restarts_ms: Vec::new(),
            command: None,
            end: None,
        };
        if role == Role::Standby || !service.spec.is_singleton() {
            self.decide(Some(name), format!("started {} on {node}", describe(&instance)));
        }
        if service.blocked.take().is_some() {
            self.put_service(service.clone());
        }
        self.start(instance, &service.spec);
    }
}
