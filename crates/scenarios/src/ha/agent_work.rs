//! The agent's instances: the commands that start, promote and stop them,
//! their start delay, the writes of primaries, crashes, and the reports.
//!
//! In: station commands (after the session joined), the agent's timers, a
//! crash of one instance. Out: reports to the leader, writes to the
//! resource, refusals.
//!
//! A command is acted on only once the session joined, if it was decided
//! for this session (an earlier one's may arrive late, after its instances
//! were fenced and replaced), and the fence admitted it; a repeat of the command that made a running incarnation is
//! answered again and changes nothing. A start of a primary or a promotion
//! is ignored (not acknowledged, so the coordinator sends it again) while
//! the agent cannot rely on its lease. Exits are reported at once and again
//! every report round for `exit_reports_max` rounds, unless a newer command
//! for the instance arrives; running instances are reported active every
//! round (the coordinator ignores what it already knows, and reports carry
//! the incarnation's token, so a stale one changes nothing).

use super::agent::{Agent, AgentEvent, AgentTimer, Exit, Phase, Running};
use super::agent_session::RETIRED_MAX;
use super::resource::write_request;
use haven_ha::{Action, AgentCommand, CommandId, Event, InstanceId, Role};
use haven_runtime::CtxFor;
use rand::RngExt;

impl Agent {
    pub(crate) fn on_command(&mut self, ctx: &mut impl CtxFor<Self>, command: AgentCommand) {
        if command.node != ctx.node() || self.phase != (Phase::Joined { lease: command.session }) {
            return; // not joined, or decided for an earlier session
        }
        self.commanded = true;
        if self.instances.get(&command.instance).is_some_and(|r| r.command == command.id) {
            return self.acknowledge(ctx, &command);
        }
        if self.done.contains(command.id) {
            // Done before and its instance gone since: done is all it gets.
            return self.report(ctx, Event::CommandDone { command: command.id });
        }
        let retired = self.retired.contains(&command.instance);
        let admitted = if retired {
            Err(format!("{} belonged to an ended session of this agent", command.instance))
        } else {
            self.fence.admit(&command)
        };
        if let Err(error) = admitted {
            ctx.output(AgentEvent::Refused { command: command.id, error: error.clone() });
            return self.report(ctx, Event::CommandFailed { command: command.id, error });
        }
        let serving = match &command.action {
            Action::Start { role, .. } => *role == Role::Primary,
            Action::Promote { .. } => true,
            Action::Stop { .. } => false,
        };
        self.session_instances.insert(command.instance);
        if self.session_instances.len() > RETIRED_MAX {
            self.session_instances.pop_first();
        }
        if serving && !self.can_serve(ctx.now()) {
            return; // sent again later, when the lease may be renewed
        }
        match command.action {
            Action::Start { spec, role, token } => {
                // A new incarnation: the old one's exit is no longer news.
                self.exits.remove(&command.instance);
                self.start(ctx, command.id, command.instance, spec.name, role, token)
            }
            // A promote (maybe a late repeat) changes nothing about an exit
            // still being reported: the instance is gone and must be said so
            // until the coordinator acts on it (ha-failover seed 144).
            Action::Promote { token, .. } => self.promote(ctx, command.id, command.instance, token),
            Action::Stop { .. } => {
                self.exits.remove(&command.instance);
                self.instances.remove(&command.instance);
                self.report(ctx, Event::CommandDone { command: command.id });
            }
        }
    }

    /// Answers a repeated command again.
    fn acknowledge(&mut self, ctx: &mut impl CtxFor<Self>, command: &AgentCommand) {
        self.report(ctx, Event::CommandDone { command: command.id });
        if let Some(running) = self.instances.get(&command.instance).filter(|r| r.up).cloned() {
            self.report(ctx, Event::InstanceStarted { instance: command.instance, token: running.token });
            self.report(ctx, Event::InstanceActive { instance: command.instance, token: running.token });
        }
    }

    fn start(
        &mut self,
        ctx: &mut impl CtxFor<Self>,
        command: CommandId,
        instance: InstanceId,
        service: String,
        role: Role,
        token: Option<u64>,
    ) {
        let replaces = self.instances.contains_key(&instance);
        if !replaces && self.instances.len() >= self.config.instances_max {
            let error = format!("this agent runs {} instances, the most it takes", self.config.instances_max);
            return self.report(ctx, Event::CommandFailed { command, error });
        }
        // An older incarnation of the instance stops first: it is replaced.
        self.instances.insert(instance, Running { service, role, token, command, up: false });
        let (lo, hi) = self.config.start_delay;
        let delay = ctx.rng().random_range(lo..=hi);
        ctx.set_timer(delay, AgentTimer::Up { instance, command });
        self.report(ctx, Event::CommandDone { command });
    }

    fn promote(&mut self, ctx: &mut impl CtxFor<Self>, command: CommandId, instance: InstanceId, token: u64) {
        let Some(running) = self.instances.get_mut(&instance).filter(|r| r.up && r.role == Role::Standby) else {
            let error = format!("no ready standby {instance} here");
            return self.report(ctx, Event::CommandFailed { command, error });
        };
        running.role = Role::Primary;
        running.token = Some(token);
        running.command = command;
        self.report(ctx, Event::CommandDone { command });
        self.report(ctx, Event::InstanceActive { instance, token: Some(token) });
    }

    /// The start delay of `instance` (started by `command`) is over.
    pub(crate) fn up(&mut self, ctx: &mut impl CtxFor<Self>, instance: InstanceId, command: CommandId) {
        let Some(running) = self.instances.get_mut(&instance).filter(|r| r.command == command && !r.up) else {
            return;
        };
        running.up = true;
        let token = running.token;
        self.report(ctx, Event::InstanceStarted { instance, token });
        self.report(ctx, Event::InstanceActive { instance, token });
        self.fence_if_due(ctx);
    }

    /// Every write interval: each running primary writes, if the lease
    /// still covers it; else the agent fences itself.
    pub(crate) fn write(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.fence_if_due(ctx);
        let writes: Vec<(String, InstanceId, u64)> = self
            .instances
            .iter()
            .filter(|(_, r)| r.up && r.role == Role::Primary)
            .filter_map(|(&id, r)| Some((r.service.clone(), id, r.token?)))
            .collect();
        for (service, instance, token) in writes {
            let seq = self.next_seq;
            self.next_seq += 1;
            ctx.send(self.config.resource, write_request(self.client, seq, &service, instance, token));
        }
    }

    /// The instance ends here (crash or self-fence): reported as exited.
    pub(crate) fn end_instance(&mut self, ctx: &mut impl CtxFor<Self>, instance: InstanceId, code: Option<i32>) {
        let Some(running) = self.instances.remove(&instance) else { return };
        let exit = Exit { token: running.token, code, reports_left: self.config.exit_reports_max };
        self.exits.insert(instance, exit);
        self.report(ctx, Event::InstanceExited { instance, token: running.token, code });
    }

    /// The simulator crashed one of this agent's instances.
    pub(crate) fn crash_instance(&mut self, ctx: &mut impl CtxFor<Self>, instance: InstanceId) {
        if self.instances.get(&instance).is_some_and(|r| r.up) {
            self.end_instance(ctx, instance, Some(1));
        }
    }

    /// Every report round: running instances are active, exits repeated.
    pub(crate) fn report_state(&mut self, ctx: &mut impl CtxFor<Self>) {
        if !matches!(self.phase, Phase::Joined { .. }) {
            return;
        }
        self.ask_proxy(ctx);
        let active: Vec<(InstanceId, Option<u64>)> =
            self.instances.iter().filter(|(_, r)| r.up).map(|(&id, r)| (id, r.token)).collect();
        for (instance, token) in active {
            self.report(ctx, Event::InstanceActive { instance, token });
        }
        let exits: Vec<(InstanceId, Exit)> = self.exits.iter().map(|(&id, e)| (id, e.clone())).collect();
        for (instance, exit) in exits {
            self.report(ctx, Event::InstanceExited { instance, token: exit.token, code: exit.code });
        }
        self.exits.retain(|_, exit| {
            exit.reports_left = exit.reports_left.saturating_sub(1);
            exit.reports_left > 0
        });
    }
}
