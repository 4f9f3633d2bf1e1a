//! The agent's decisions, pure: which commands to carry out, which to
//! refuse, when to fence itself, and what to report.
//!
//! In: the coordinator's commands, the shell's process events, keep-alive
//! sends and acknowledgements, and the agent's clock (`tick`). Out:
//! [`AgentAction`]s for the shell that runs processes (spawn, promote,
//! stop, kill) and the events to report to the station.
//!
//! Rules, each with its reason:
//! - A command whose fencing token is lower than one already seen for its
//!   service is refused: it comes from a decision the coordinator has
//!   since superseded, and running it would bring back a deposed primary.
//! - A command already carried out is not run again (the coordinator
//!   re-issues until it hears back); its outcome is reported again.
//! - A command decided for another session (another lease) is ignored: it
//!   was meant for instances an earlier session ran, which the coordinator
//!   has since fenced and replaced, and this session does not know the
//!   tokens that session saw.
//! - Nothing starts while the lease is not known alive (`FenceClock`).
//! - Past the fence deadline every singleton instance is killed, and the
//!   others too unless the policy is `Freeze`: the station may expire the
//!   lease from then on and start a replacement elsewhere. The agent then
//!   ignores commands until it has joined again with a new lease.

use crate::command::{Action, AgentCommand, CommandId};
use crate::done_commands::DoneCommands;
use crate::fence_clock::FenceClock;
use crate::input::Event;
use crate::instance::{InstanceId, Role};
use crate::spec::{ServiceKind, ServiceSpec};
use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Reports waiting to be sent; the oldest are dropped beyond it (the
/// coordinator's re-issues make the agent report again).
pub const REPORTS_LEN_MAX: usize = 4_096;

/// What happens to non-singleton instances when the lease is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuorumLossPolicy {
    /// Stop them with the singletons.
    Stop,
    /// Keep them running: a replicated or every-node service tolerates a
    /// duplicate better than an outage. Singletons are killed regardless.
    Freeze,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub node: NodeId,
    pub lease_ttl_ms: u64,
    pub drift_ppm_max: u64,
    /// How long before the safe deadline the kill starts.
    pub fence_margin_ms: u64,
    pub on_quorum_loss: QuorumLossPolicy,
}

/// What the shell must do with processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentAction {
    /// Start the instance's program with this environment added to the spec's.
    Spawn { instance: InstanceId, spec: Box<ServiceSpec>, env: BTreeMap<String, String> },
    /// Run `command` (the spec's promote) with the new token in `env`.
    Promote { instance: InstanceId, command: String, env: BTreeMap<String, String> },
    /// SIGTERM the process group, SIGKILL after `timeout_ms`.
    Stop { instance: InstanceId, timeout_ms: u64 },
    /// SIGKILL the process group now.
    Kill { instance: InstanceId },
}

/// What the shell saw happen to a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessEvent {
    Spawned {
        instance: InstanceId,
    },
    /// Its health check passed (the first time after a start or promote).
    Healthy {
        instance: InstanceId,
    },
    /// Its health check failed `failure_threshold` times in a row.
    Unhealthy {
        instance: InstanceId,
    },
    /// It exited; `code` is `None` when a signal ended it.
    Exited {
        instance: InstanceId,
        code: Option<i32>,
    },
    /// The promote command finished.
    Promoted {
        instance: InstanceId,
        ok: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Local {
    service: String,
    singleton: bool,
    role: Role,
    token: Option<u64>,
    /// The command being carried out for this instance, if any.
    command: Option<CommandId>,
    stopping: bool,
    /// The spec's promote command, for a standby.
    promote: Option<String>,
}

#[derive(Debug)]
pub struct AgentCore {
    config: AgentConfig,
    clock: FenceClock,
    /// The highest fencing token seen per service.
    tokens: BTreeMap<String, u64>,
    instances: BTreeMap<InstanceId, Local>,
    done: DoneCommands,
    reports: VecDeque<Event>,
    fenced: bool,
    /// The lease the agent joined with; `None` before the first join.
    session: Option<i64>,
}

impl AgentCore {
    pub fn new(config: AgentConfig) -> AgentCore {
        let clock = FenceClock::new(config.lease_ttl_ms, config.drift_ppm_max, config.fence_margin_ms);
        AgentCore {
            config,
            clock,
            tokens: BTreeMap::new(),
            instances: BTreeMap::new(),
            done: DoneCommands::default(),
            reports: VecDeque::new(),
            fenced: false,
            session: None,
        }
    }

    pub fn keep_alive_sent(&mut self, seq: u64, now_ms: u64) {
        self.clock.sent(seq, now_ms);
    }

    pub fn keep_alive_acknowledged(&mut self, seq: u64) {
        self.clock.acknowledged(seq);
    }

    pub fn fence_deadline_ms(&self) -> Option<u64> {
        self.clock.deadline_ms()
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced
    }

    /// Joined with lease `session`: commands of that session count from
    /// now on, and those of earlier sessions no longer do.
    pub fn joined(&mut self, session: i64) {
        self.fenced = false;
        self.session = Some(session);
    }

    /// The stations granted a lease of `ttl_ms` (they may raise what was
    /// asked): the fence deadline counts with it from now on. Call before
    /// the grant's keep-alive is recorded.
    pub fn lease_granted(&mut self, ttl_ms: u64) {
        let AgentConfig { drift_ppm_max, fence_margin_ms, .. } = self.config;
        self.config.lease_ttl_ms = ttl_ms;
        self.clock = FenceClock::new(ttl_ms, drift_ppm_max, fence_margin_ms);
    }

    pub fn lease_ttl_ms(&self) -> u64 {
        self.config.lease_ttl_ms
    }

    pub fn running(&self) -> impl Iterator<Item = (InstanceId, &str, Option<u64>)> + '_ {
        self.instances.iter().map(|(id, l)| (*id, l.service.as_str(), l.token))
    }

    pub fn take_reports(&mut self) -> Vec<Event> {
        self.reports.drain(..).collect()
    }

    fn report(&mut self, event: Event) {
        if self.reports.len() >= REPORTS_LEN_MAX {
            self.reports.pop_front();
        }
        self.reports.push_back(event);
    }

    fn finish(&mut self, command: CommandId) {
        self.done.remember(command);
        self.report(Event::CommandDone { command });
    }

    /// Fences the agent once the deadline has passed.
    pub fn tick(&mut self, now_ms: u64) -> Vec<AgentAction> {
        if self.fenced || !self.clock.expired(now_ms) || self.instances.is_empty() {
            return Vec::new();
        }
        self.fence()
    }

    /// The stations answered that the lease is gone: they count this node
    /// dead and may have replaced its singletons already, whatever the
    /// agent's clock says (it may have been stopped longer than the lease).
    /// The session ends as at the fence deadline, with or without
    /// instances, and the agent must join again.
    pub fn lease_gone(&mut self) -> Vec<AgentAction> {
        if self.fenced {
            return Vec::new();
        }
        self.fence()
    }

    fn fence(&mut self) -> Vec<AgentAction> {
        self.fenced = true;
        self.clock.reset();
        let keep = |l: &Local| !l.singleton && self.config.on_quorum_loss == QuorumLossPolicy::Freeze;
        let doomed: Vec<InstanceId> = self.instances.iter().filter(|(_, l)| !keep(l)).map(|(id, _)| *id).collect();
        doomed.into_iter().map(|instance| AgentAction::Kill { instance }).collect()
    }

    /// Carries out `command`, refuses it, or reports a duplicate's outcome.
    pub fn command(&mut self, command: &AgentCommand, now_ms: u64) -> Vec<AgentAction> {
        assert_eq!(command.node, self.config.node, "the station sends each agent its own commands");
        if self.fenced || self.session != Some(command.session) {
            return Vec::new(); // not a member until it joins again, or meant for another session
        }
        if self.done.contains(command.id) {
            self.report(Event::CommandDone { command: command.id });
            return Vec::new();
        }
        if self.instances.get(&command.instance).is_some_and(|l| l.command == Some(command.id)) {
            return Vec::new(); // under way
        }
        if let Some(token) = command.token()
            && let Some(&seen) = self.tokens.get(command.service())
            && token < seen
        {
            let error = format!("fencing token {token} is older than {seen}, already seen for {}", command.service());
            self.report(Event::CommandFailed { command: command.id, error });
            return Vec::new();
        }
        match &command.action {
            Action::Start { spec, role, token } => self.start(command, spec, *role, *token, now_ms),
            Action::Promote { service, token } => self.promote(command, service, *token),
            Action::Stop { timeout_ms, .. } => self.stop(command, *timeout_ms),
        }
    }

    fn env(&self, service: &str, token: Option<u64>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([
            ("HAVEN_SERVICE".to_owned(), service.to_owned()),
            ("HAVEN_NODE".to_owned(), self.config.node.0.to_string()),
        ]);
        if let Some(token) = token {
            env.insert("HAVEN_FENCING_TOKEN".to_owned(), token.to_string());
        }
        env
    }

    fn start(
        &mut self,
        command: &AgentCommand,
        spec: &ServiceSpec,
        role: Role,
        token: Option<u64>,
        now_ms: u64,
    ) -> Vec<AgentAction> {
        if self.clock.expired(now_ms) {
            let error = "the lease is not known to be alive; nothing starts".to_owned();
            self.report(Event::CommandFailed { command: command.id, error });
            return Vec::new();
        }
        if let Some(token) = token {
            self.tokens.insert(spec.name.clone(), token);
        }
        let mut actions = Vec::new();
        if self.instances.contains_key(&command.instance) {
            actions.push(AgentAction::Kill { instance: command.instance }); // an older incarnation
        }
        let singleton = matches!(spec.kind, ServiceKind::Singleton { .. });
        let local = Local {
            service: spec.name.clone(),
            singleton,
            role,
            token,
            command: Some(command.id),
            stopping: false,
            promote: spec.promote.clone(),
        };
        self.instances.insert(command.instance, local);
        let env = self.env(&spec.name, token);
        actions.push(AgentAction::Spawn { instance: command.instance, spec: Box::new(spec.clone()), env });
        actions
    }

    fn promote(&mut self, command: &AgentCommand, service: &str, token: u64) -> Vec<AgentAction> {
        let env = self.env(service, Some(token));
        let program = self.instances.get(&command.instance).map(|l| l.promote.clone());
        let Some(Some(program)) = program else {
            let error = format!("{} is not a standby with a promote command here", command.instance);
            self.report(Event::CommandFailed { command: command.id, error });
            return Vec::new();
        };
        self.tokens.insert(service.to_owned(), token);
        let local = self.instances.get_mut(&command.instance).expect("found above");
        local.command = Some(command.id);
        local.token = Some(token);
        local.role = Role::Primary;
        vec![AgentAction::Promote { instance: command.instance, command: program, env }]
    }

    fn stop(&mut self, command: &AgentCommand, timeout_ms: u64) -> Vec<AgentAction> {
        let Some(local) = self.instances.get_mut(&command.instance) else {
            self.finish(command.id); // already gone
            return Vec::new();
        };
        local.command = Some(command.id);
        local.stopping = true;
        vec![AgentAction::Stop { instance: command.instance, timeout_ms }]
    }

    /// Turns what happened to a process into reports.
    pub fn process(&mut self, event: ProcessEvent) {
        match event {
            ProcessEvent::Spawned { instance } => {
                let Some(local) = self.instances.get(&instance) else { return };
                let (token, command, stopping) = (local.token, local.command, local.stopping);
                self.report(Event::InstanceStarted { instance, token });
                if let Some(command) = command.filter(|_| !stopping) {
                    self.instances.get_mut(&instance).expect("found above").command = None;
                    self.finish(command);
                }
            }
            ProcessEvent::Healthy { instance } => {
                let Some(token) = self.instances.get(&instance).map(|l| l.token) else { return };
                self.report(Event::InstanceActive { instance, token });
            }
            ProcessEvent::Unhealthy { instance } => {
                let Some(token) = self.instances.get(&instance).map(|l| l.token) else { return };
                self.report(Event::InstanceUnhealthy { instance, token });
            }
            ProcessEvent::Promoted { instance, ok } => self.promoted(instance, ok),
            ProcessEvent::Exited { instance, code } => {
                let Some(local) = self.instances.remove(&instance) else { return };
                self.report(Event::InstanceExited { instance, token: local.token, code });
                if let Some(command) = local.command.filter(|_| local.stopping) {
                    self.finish(command);
                }
            }
        }
    }

    fn promoted(&mut self, instance: InstanceId, ok: bool) {
        let Some(local) = self.instances.get_mut(&instance) else { return };
        let Some(command) = local.command.take() else { return };
        if ok {
            self.finish(command);
        } else {
            let error = "the promote command failed".to_owned();
            self.report(Event::CommandFailed { command, error });
        }
    }
}
