//! The agent's decisions (`AgentCore`), step by step: the exact actions and
//! reports each input produces. The safety rules first: a stale fencing
//! token is refused, nothing starts without a live lease, and past the
//! fence deadline the singletons are killed and commands ignored until the
//! agent joins again.

use haven_ha::{
    Action, AgentAction, AgentCommand, AgentConfig, AgentCore, CommandId, Event, InstanceId, ProcessEvent,
    QuorumLossPolicy, Role, ServiceKind, ServiceSpec,
};
use haven_runtime::NodeId;
use std::collections::BTreeMap;

const NODE: NodeId = NodeId(7);
const SESSION: i64 = 41;

fn agent_config() -> AgentConfig {
    AgentConfig {
        node: NODE,
        lease_ttl_ms: 1_000,
        drift_ppm_max: 200,
        fence_margin_ms: 50,
        on_quorum_loss: QuorumLossPolicy::Stop,
    }
}

fn agent(policy: QuorumLossPolicy) -> AgentCore {
    let mut agent = AgentCore::new(AgentConfig { on_quorum_loss: policy, ..agent_config() });
    agent.joined(SESSION);
    agent.keep_alive_sent(1, 0);
    agent.keep_alive_acknowledged(1);
    agent
}

fn spec(name: &str, kind: ServiceKind) -> Box<ServiceSpec> {
    let mut spec = ServiceSpec::new(name, "/bin/true", kind);
    spec.promote = Some("/bin/promote".into());
    Box::new(spec)
}

fn start(id: u64, instance: u64, name: &str, token: Option<u64>) -> AgentCommand {
    let role = if token.is_some() { Role::Primary } else { Role::Standby };
    let spec = spec(name, ServiceKind::Singleton { standbys: 1 });
    AgentCommand {
        id: CommandId(id),
        node: NODE,
        session: SESSION,
        instance: InstanceId(instance),
        action: Action::Start { spec, role, token },
    }
}

fn env(service: &str, token: Option<u64>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([("HAVEN_SERVICE".into(), service.into()), ("HAVEN_NODE".into(), "7".into())]);
    if let Some(token) = token {
        env.insert("HAVEN_FENCING_TOKEN".into(), token.to_string());
    }
    env
}

#[test]
fn a_start_spawns_with_the_token_in_the_environment_and_reports_once_running() {
    let mut agent = agent(QuorumLossPolicy::Stop);
    let actions = agent.command(&start(1, 10, "db", Some(5)), 100);
    let spawn = AgentAction::Spawn {
        instance: InstanceId(10),
        spec: spec("db", ServiceKind::Singleton { standbys: 1 }),
        env: env("db", Some(5)),
    };
    assert_eq!(actions, vec![spawn]);
    assert!(agent.take_reports().is_empty(), "nothing to say before the process runs");
    agent.process(ProcessEvent::Spawned { instance: InstanceId(10) });
    agent.process(ProcessEvent::Healthy { instance: InstanceId(10) });
    assert_eq!(
        agent.take_reports(),
        vec![
            Event::InstanceStarted { instance: InstanceId(10), token: Some(5) },
            Event::CommandDone { command: CommandId(1) },
            Event::InstanceActive { instance: InstanceId(10), token: Some(5) },
        ]
    );
}

#[test]
fn a_token_older_than_one_seen_is_refused() {
    let mut agent = agent(QuorumLossPolicy::Stop);
    agent.command(&start(1, 10, "db", Some(9)), 100);
    let stale = agent.command(&start(2, 11, "db", Some(8)), 110);
    assert!(stale.is_empty(), "a deposed decision must not start anything");
    let reports = agent.take_reports();
    assert!(
        matches!(&reports[..], [Event::CommandFailed { command: CommandId(2), error }] if error.contains("8 is older than 9")),
        "{reports:?}"
    );
    let other_service = agent.command(&start(3, 12, "web", Some(1)), 120);
    assert_eq!(other_service.len(), 1, "tokens are per service");
}

#[test]
fn a_reissued_command_is_not_run_twice_and_its_outcome_is_reported_again() {
    let mut agent = agent(QuorumLossPolicy::Stop);
    let first = start(1, 10, "db", Some(5));
    assert_eq!(agent.command(&first, 100).len(), 1);
    assert!(agent.command(&first, 150).is_empty(), "under way: not again");
    agent.process(ProcessEvent::Spawned { instance: InstanceId(10) });
    agent.take_reports();
    assert!(agent.command(&first, 600).is_empty(), "done: not again");
    assert_eq!(agent.take_reports(), vec![Event::CommandDone { command: CommandId(1) }], "but said again");
}

#[test]
fn a_command_decided_for_another_session_is_ignored() {
    let mut agent = agent(QuorumLossPolicy::Stop);
    let mut late = start(1, 10, "db", Some(5));
    late.session = SESSION - 1;
    assert!(agent.command(&late, 100).is_empty(), "an earlier session's start, delivered late");
    assert!(agent.take_reports().is_empty(), "nothing to say to the coordinator: that session is over");
    let mut fresh = AgentCore::new(agent_config());
    fresh.keep_alive_sent(1, 0);
    fresh.keep_alive_acknowledged(1);
    assert!(fresh.command(&start(1, 10, "db", Some(5)), 100).is_empty(), "not joined yet");
    fresh.joined(SESSION);
    assert_eq!(fresh.command(&start(1, 10, "db", Some(5)), 100).len(), 1);
}

#[test]
fn nothing_starts_before_the_lease_is_known_alive() {
    let mut fresh = AgentCore::new(agent_config());
    fresh.joined(SESSION);
    assert!(fresh.command(&start(1, 10, "db", Some(5)), 0).is_empty());
    assert!(matches!(&fresh.take_reports()[..], [Event::CommandFailed { .. }]));
}

#[test]
fn past_the_fence_deadline_singletons_die_and_commands_wait_for_a_new_join() {
    let mut agent = agent(QuorumLossPolicy::Freeze);
    agent.command(&start(1, 10, "db", Some(5)), 100);
    let mut web = start(2, 11, "web", Some(6));
    if let Action::Start { spec, .. } = &mut web.action {
        spec.kind = ServiceKind::Replicated { count: 2 };
    }
    agent.command(&web, 100);
    // Acknowledged keep-alive sent at 0: 1000 × (1 - 200 ppm)/(1 + 200 ppm) = 999, less the 50 ms margin.
    assert_eq!(agent.fence_deadline_ms(), Some(949));
    assert!(agent.tick(948).is_empty(), "the lease is still certainly alive");
    assert_eq!(
        agent.tick(949),
        vec![AgentAction::Kill { instance: InstanceId(10) }],
        "Freeze keeps the replicated web"
    );
    assert!(agent.is_fenced());
    assert!(agent.tick(2_000).is_empty(), "once");
    assert!(agent.command(&start(3, 12, "db", Some(7)), 2_000).is_empty(), "not a member until it joins again");
    agent.joined(SESSION + 1);
    agent.keep_alive_sent(2, 2_100);
    agent.keep_alive_acknowledged(2);
    assert!(agent.command(&start(3, 12, "db", Some(7)), 2_200).is_empty(), "decided for the fenced session");
    let mut anew = start(4, 12, "db", Some(8));
    anew.session = SESSION + 1;
    assert_eq!(agent.command(&anew, 2_200).len(), 1);
}

#[test]
fn a_lease_the_stations_call_gone_ends_the_session_before_the_deadline_even_with_nothing_to_kill() {
    let mut idle = agent(QuorumLossPolicy::Stop);
    assert!(idle.tick(5_000).is_empty(), "past the deadline with no instance: nothing to fence by the clock");
    assert!(!idle.is_fenced());
    assert!(idle.lease_gone().is_empty(), "nothing to kill");
    assert!(idle.is_fenced(), "but the session is over: the agent joins again");
    let mut busy = agent(QuorumLossPolicy::Freeze);
    busy.command(&start(1, 10, "db", Some(5)), 100);
    assert_eq!(busy.lease_gone(), vec![AgentAction::Kill { instance: InstanceId(10) }], "at 100 ms, long before 949");
    assert!(busy.lease_gone().is_empty(), "once");
}

#[test]
fn the_stop_policy_kills_everything_on_fencing() {
    let mut agent = agent(QuorumLossPolicy::Stop);
    agent.command(&start(1, 10, "db", Some(5)), 100);
    let mut web = start(2, 11, "web", Some(6));
    if let Action::Start { spec, .. } = &mut web.action {
        spec.kind = ServiceKind::EveryNode;
    }
    agent.command(&web, 100);
    let killed = agent.tick(1_000);
    assert_eq!(
        killed,
        vec![AgentAction::Kill { instance: InstanceId(10) }, AgentAction::Kill { instance: InstanceId(11) }]
    );
}

#[test]
fn a_standby_is_promoted_with_its_new_token_and_a_stop_completes_on_exit() {
    let mut agent = agent(QuorumLossPolicy::Stop);
    agent.command(&start(1, 10, "db", None), 100);
    agent.process(ProcessEvent::Spawned { instance: InstanceId(10) });
    let promote = AgentCommand {
        id: CommandId(2),
        node: NODE,
        session: SESSION,
        instance: InstanceId(10),
        action: Action::Promote { service: "db".into(), token: 8 },
    };
    let actions = agent.command(&promote, 200);
    assert_eq!(
        actions,
        vec![AgentAction::Promote {
            instance: InstanceId(10),
            command: "/bin/promote".into(),
            env: env("db", Some(8))
        }]
    );
    agent.process(ProcessEvent::Promoted { instance: InstanceId(10), ok: true });
    agent.take_reports();
    let stop = AgentCommand {
        id: CommandId(3),
        node: NODE,
        session: SESSION,
        instance: InstanceId(10),
        action: Action::Stop { service: "db".into(), timeout_ms: 2_000 },
    };
    assert_eq!(agent.command(&stop, 300), vec![AgentAction::Stop { instance: InstanceId(10), timeout_ms: 2_000 }]);
    agent.process(ProcessEvent::Exited { instance: InstanceId(10), code: Some(0) });
    assert_eq!(
        agent.take_reports(),
        vec![
            Event::InstanceExited { instance: InstanceId(10), token: Some(8), code: Some(0) },
            Event::CommandDone { command: CommandId(3) },
        ]
    );
    assert!(agent.command(&start(4, 11, "db", Some(7)), 400).is_empty(), "7 is older than the promoted 8");
}
