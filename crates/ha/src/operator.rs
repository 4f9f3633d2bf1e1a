//! Operator actions: add, update, remove, enable, disable and move services;
//! drain and undrain nodes.
//!
//! In: one `OperatorAction` (untrusted: it may name unknown services or
//! nodes or carry an invalid spec). Out: changes to the desired state and a
//! decision saying what was done or why it was refused; reconciliation in
//! the same step then acts on it.

use crate::coordinator::Stepper;
use crate::graph::Change;
use crate::input::OperatorAction;
use crate::placement::Candidates;
use crate::service::Service;
use crate::spec::ServiceSpec;
use crate::validate::validate;
use haven_runtime::NodeId;

impl Stepper<'_> {
    pub(crate) fn operator(&mut self, action: &OperatorAction) {
        match action {
            OperatorAction::AddService(spec) => self.add_service(spec),
            OperatorAction::RemoveService { service } => self.edit_service(service, "removing service", |s| {
                s.removing = true;
            }),
            OperatorAction::Enable { service } => self.edit_service(service, "enabled", |s| s.spec.enabled = true),
            OperatorAction::Disable { service } => self.edit_service(service, "disabled", |s| s.spec.enabled = false),
            OperatorAction::Move { service, to } => self.move_service(service, *to),
            OperatorAction::Drain { node } => self.set_drained(*node, true),
            OperatorAction::Undrain { node } => self.set_drained(*node, false),
        }
    }

    fn add_service(&mut self, spec: &ServiceSpec) {
        let name = spec.name.as_str();
        if let Err(error) = validate(spec) {
            return self.decide(None, format!("refused service {name:?}: {error}"));
        }
        match self.g.services.get(name).cloned() {
            Some(mut service) if !service.removing => {
                service.spec = spec.clone();
                self.decide(Some(name), format!("updated service {name}"));
                self.put_service(service);
            }
            Some(_) => {
                self.decide(Some(name), format!("refused service {name}: it is being removed; add it again once gone"))
            }
            None if self.g.services.len() >= self.config.services_len_max => {
                let max = self.config.services_len_max;
                self.decide(Some(name), format!("refused service {name}: there are {max} services, the most admitted"));
            }
            None => {
                self.decide(Some(name), format!("added service {name}"));
                self.put_service(Service::new(spec.clone()));
            }
        }
    }

    fn edit_service(&mut self, name: &str, verb: &str, edit: impl FnOnce(&mut Service)) {
        let Some(mut service) = self.g.services.get(name).cloned() else {
            return self.decide(None, format!("refused: no service {name:?}"));
        };
        edit(&mut service);
        self.decide(Some(name), format!("{verb} {name}"));
        self.put_service(service);
    }

    fn move_service(&mut self, name: &str, to: NodeId) {
        let Some(mut service) = self.g.services.get(name).cloned() else {
            return self.decide(None, format!("refused: no service {name:?}"));
        };
        if !service.spec.is_singleton() {
            return self.decide(Some(name), format!("refused to move {name}: only a singleton can be moved"));
        }
        let Some(node) = self.g.nodes.get(&to) else {
            return self.decide(Some(name), format!("refused to move {name}: no node {to}"));
        };
        let primary_here = self.g.instances_of(name).any(|i| i.is_primary() && i.is_wanted() && i.node == to);
        if primary_here {
            return self.decide(Some(name), format!("{name} already runs on {to}"));
        }
        if let Some(why) = Candidates::new(self.g, &service, self.now_ms, true).why_not(node) {
            return self.decide(Some(name), format!("refused to move {name} to {to}: {to} {why}"));
        }
        service.move_to = Some(to);
        self.decide(Some(name), format!("moving {name} to {to}"));
        self.put_service(service);
    }

    fn set_drained(&mut self, id: NodeId, drained: bool) {
        let Some(mut node) = self.g.nodes.get(&id).cloned() else {
            return self.decide(None, format!("refused: no node {id}"));
        };
        let verb = if drained { "drained" } else { "undrained" };
        node.drained = drained;
        self.decide(None, format!("{verb} {id}"));
        self.change(Change::PutNode(node));
    }
}
