//! The agent's loop: lease, commands, processes, reports.
//!
//! In: a [`StationLink`] to the stations, the agent's settings, a shutdown
//! signal. Out: the node's lease kept alive, the coordinator's commands
//! carried out through the [`Supervisor`], the events reported, and
//! self-fencing when the lease cannot be renewed (`AgentCore` decides; this
//! loop only feeds it time and answers).
//!
//! Every `poll` it renews the lease when a third of the TTL has passed and
//! sends what there is to report (a report that fails is kept and sent
//! again, up to a bound). Beside that, one fetch at a time asks for this
//! node's pending commands (served from any station's applied state: a
//! command is there only once the decision behind it is committed), which
//! the station answers once they differ from what the agent carried out
//! last, or after `commands_wait`; fetches start at most once per `poll`.
//!
//! On a clean stop (SIGTERM, SIGINT) it kills its instances and, once they
//! are gone, revokes its lease, so their services move at once.
//!
//! On start it kills the process groups a previous run of the agent left
//! (their ids and start times are in `instances.pids` in the data
//! directory; a group whose leader's start time differs is another
//! program that reused the id, and is left alone): the new run
//! holds a new lease, and the old instances ran under the old one, which
//! the station may have expired and replaced elsewhere; only the
//! coordinator can say, so they are killed and it starts them again.

use crate::agent::supervisor::{Supervisor, SupervisorConfig, group_alive};
use haven_daemon::agent_api::commands_digest;
use haven_ha::{AgentCommand, AgentConfig, AgentCore, Event, ProcessEvent};
use haven_runtime::NodeId;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Reports kept for another try when sending fails.
const REPORTS_PENDING_LEN_MAX: usize = 4_096;
/// Process events buffered between the supervisor and the loop.
const PROCESS_EVENTS_LEN_MAX: usize = 1_024;
/// How long a clean stop waits for its killed instances to be gone before
/// it revokes the lease.
const LEAVE_WAIT_MAX: Duration = Duration::from_secs(2);

/// Why a keep-alive did not renew the lease.
#[derive(Debug, PartialEq, Eq)]
pub enum KeepAliveError {
    /// The stations answered that the lease no longer exists: the node is
    /// dead to them, and this session is over.
    Gone,
    /// Nobody renewed it (no station or proxy answered in time, or one
    /// refused for now): the lease may still run.
    Unanswered(String),
}

impl std::fmt::Display for KeepAliveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepAliveError::Gone => f.write_str("the stations say the lease is gone"),
            KeepAliveError::Unanswered(why) => f.write_str(why),
        }
    }
}

/// How the agent reaches the stations.
#[allow(async_fn_in_trait)]
pub trait StationLink {
    /// A new lease of `ttl_ms`; its id and the TTL
    /// the stations granted (they may raise it to their minimum), in ms.
    async fn grant(&self, ttl_ms: u64) -> Result<(i64, u64), String>;
    /// Renews the lease.
    async fn keep_alive(&self, lease: i64) -> Result<(), KeepAliveError>;
    async fn join(
        &self,
        node: NodeId,
        address: &str,
        labels: &BTreeMap<String, String>,
        lease: i64,
    ) -> Result<(), String>;
    async fn report(&self, node: NodeId, events: &[Event]) -> Result<(), String>;
    /// Ends the lease now (a clean stop, its instances gone).
    async fn revoke(&self, lease: i64) -> Result<(), String>;
    /// This node's commands awaiting acknowledgement: at once, or once
    /// they no longer have digest `known` (`commands_digest`), waiting up
    /// to `wait` for that where the far side can.
    async fn commands(&self, node: NodeId, known: u32, wait: Duration) -> Result<Vec<AgentCommand>, String>;
}

#[derive(Clone, Debug)]
pub struct AgentSettings {
    pub core: AgentConfig,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub data_dir: PathBuf,
    pub poll: Duration,
    /// How long a command fetch may wait at a station for a change (zero:
    /// it answers at once, and the agent asks every `poll`).
    pub commands_wait: Duration,
    pub supervisor: SupervisorConfig,
}

/// Runs the agent until `shutdown` resolves; kills its instances then.
pub async fn run(link: impl StationLink, settings: AgentSettings, shutdown: impl Future<Output = ()>) {
    kill_leftovers(&settings.data_dir);
    let (tx, mut process_events) = mpsc::channel(PROCESS_EVENTS_LEN_MAX);
    let mut supervisor = Supervisor::new(settings.supervisor.clone(), tx);
    let mut agent = Agent { core: AgentCore::new(settings.core.clone()), settings, lease: None, pending: Vec::new() };
    let started = Instant::now();
    let mut saved = String::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut poll = tokio::time::interval(agent.settings.poll);
    let (node, wait, spacing) = (agent.settings.core.node, agent.settings.commands_wait, agent.settings.poll);
    // What was carried out last; the fetch waits while the station's list is the same.
    let mut known = commands_digest(&[]);
    let fetch = |known, not_before| fetch_commands(&link, node, known, wait, not_before);
    let mut fetching = std::pin::pin!(fetch(known, tokio::time::Instant::now()));
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(event) = process_events.recv() => {
                if let ProcessEvent::Exited { instance, .. } = &event {
                    supervisor.forget(*instance);
                }
                agent.core.process(event);
            }
            (fetched, asked) = &mut fetching => {
                if let Some(carried_out) = agent.carry_out(fetched, &mut supervisor, started) {
                    known = carried_out;
                }
                let not_before = (asked + spacing).max(tokio::time::Instant::now());
                fetching.set(fetch(known, not_before));
            }
            _ = poll.tick() => agent.turn(&link, &mut supervisor, started).await,
        }
        save_pids(&agent.settings.data_dir, &supervisor, &mut saved);
    }
    let groups: Vec<Pid> = supervisor.running().map(|(_, pgid)| Pid::from_raw(pgid)).collect();
    supervisor.kill_all();
    save_pids(&agent.settings.data_dir, &supervisor, &mut saved);
    tracing::info!("agent stopping; its instances were killed");
    agent.leave(&link, &groups).await;
}

struct Agent {
    core: AgentCore,
    settings: AgentSettings,
    /// The lease, and when it was last renewed (agent clock).
    lease: Option<(i64, u64)>,
    pending: Vec<Event>,
}

fn ms_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Agent {
    async fn turn(&mut self, link: &impl StationLink, supervisor: &mut Supervisor, started: Instant) {
        for action in self.core.tick(ms_since(started)) {
            supervisor.carry_out(action);
        }
        if self.core.is_fenced() || self.lease.is_none() {
            self.lease = None;
            self.join(link, started).await;
            return;
        }
        self.renew(link, supervisor, started).await;
        self.send_reports(link).await;
    }

    /// Hands fetched commands to the core, if the agent is a member now;
    /// their digest when it did. Fetched while it was not, they are left
    /// for the next fetch, which answers them again at once.
    fn carry_out(
        &mut self,
        fetched: Result<Vec<AgentCommand>, String>,
        supervisor: &mut Supervisor,
        started: Instant,
    ) -> Option<u32> {
        let commands = fetched.map_err(|e| tracing::debug!(error = %e, "no commands fetched")).ok()?;
        if self.core.is_fenced() || self.lease.is_none() {
            return None;
        }
        for command in &commands {
            for action in self.core.command(command, ms_since(started)) {
                supervisor.carry_out(action);
            }
        }
        Some(commands_digest(&commands))
    }

    /// Grants a lease, joins with it, and counts the grant as the first
    /// acknowledged keep-alive (sent when the grant was).
    async fn join(&mut self, link: &impl StationLink, started: Instant) {
        let sent_ms = ms_since(started);
        let ttl_ms = self.settings.core.lease_ttl_ms;
        let (lease, granted_ms) = match link.grant(ttl_ms).await {
            Ok(granted) => granted,
            Err(e) => return tracing::warn!(error = %e, "cannot get a lease; retrying"),
        };
        if granted_ms != self.core.lease_ttl_ms() {
            tracing::info!(asked_ms = ttl_ms, granted_ms, "the stations granted another lease TTL; fencing by it");
        }
        let node = self.settings.core.node;
        if let Err(e) = link.join(node, &self.settings.address, &self.settings.labels, lease).await {
            return tracing::warn!(error = %e, "cannot join; retrying");
        }
        let seq = u64::try_from(lease).unwrap_or(0);
        self.core.lease_granted(granted_ms);
        self.core.keep_alive_sent(seq, sent_ms);
        self.core.keep_alive_acknowledged(seq);
        self.core.joined(lease);
        self.lease = Some((lease, sent_ms));
        tracing::info!(lease, "joined");
    }

    async fn renew(&mut self, link: &impl StationLink, supervisor: &mut Supervisor, started: Instant) {
        let Some((lease, renewed_ms)) = self.lease else { return };
        let now_ms = ms_since(started);
        if now_ms.saturating_sub(renewed_ms) < self.core.lease_ttl_ms() / 3 {
            return;
        }
        let seq = now_ms;
        self.core.keep_alive_sent(seq, now_ms);
        match link.keep_alive(lease).await {
            Ok(()) => {
                self.core.keep_alive_acknowledged(seq);
                self.lease = Some((lease, now_ms));
            }
            // Renewing a lease that is gone would go on forever: the node
            // would stay dead to the stations (and with no instance, no
            // fence deadline would ever end the session).
            Err(KeepAliveError::Gone) => {
                tracing::warn!(lease, "the stations say the lease is gone: ending this session and joining again");
                for action in self.core.lease_gone() {
                    supervisor.carry_out(action);
                }
                self.lease = None;
            }
            Err(e) => tracing::warn!(lease, error = %e, "lease not renewed"),
        }
    }

    /// A clean stop: once every instance's process group is gone, the
    /// lease is revoked, so the coordinator moves this node's services now
    /// instead of once the lease would have expired. A group still alive
    /// after [`LEAVE_WAIT_MAX`] leaves the lease to expire, as after a crash
    /// (the self-fence deadline then holds as always).
    async fn leave(&self, link: &impl StationLink, groups: &[Pid]) {
        let Some((lease, _)) = self.lease.filter(|_| !self.core.is_fenced()) else { return };
        let deadline = Instant::now() + LEAVE_WAIT_MAX;
        while groups.iter().any(|group| group_alive(*group)) {
            if Instant::now() > deadline {
                return tracing::warn!(lease, "an instance outlived its SIGKILL; the lease is left to expire");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match link.revoke(lease).await {
            Ok(()) => tracing::info!(lease, "lease revoked: the stations move this node's services now"),
            Err(e) => {
                tracing::warn!(lease, error = %e, "lease not revoked; the stations move this node's services once it expires")
            }
        }
    }

    async fn send_reports(&mut self, link: &impl StationLink) {
        self.pending.extend(self.core.take_reports());
        if self.pending.is_empty() {
            return;
        }
        let excess = self.pending.len().saturating_sub(REPORTS_PENDING_LEN_MAX);
        self.pending.drain(..excess);
        match link.report(self.settings.core.node, &self.pending).await {
            Ok(()) => self.pending.clear(),
            Err(e) => tracing::debug!(error = %e, reports = self.pending.len(), "reports kept for another try"),
        }
    }
}

/// One command fetch, not before `not_before` (fetches are spaced by the
/// poll interval, whether they waited at the station or not); the answer
/// and when it was asked.
async fn fetch_commands(
    link: &impl StationLink,
    node: NodeId,
    known: u32,
    wait: Duration,
    not_before: tokio::time::Instant,
) -> (Result<Vec<AgentCommand>, String>, tokio::time::Instant) {
    tokio::time::sleep_until(not_before).await;
    let asked = tokio::time::Instant::now();
    (link.commands(node, known, wait).await, asked)
}

fn pids_file(dir: &Path) -> PathBuf {
    dir.join("instances.pids")
}

/// The start time of process `pid` (clock ticks since boot), from procfs.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis; start time is the 20th.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// Records the process groups running now (when they changed), for `kill_leftovers`.
fn save_pids(dir: &Path, supervisor: &Supervisor, saved: &mut String) {
    let line = |(instance, pgid): (haven_ha::InstanceId, i32)| {
        format!("{} {pgid} {}\n", instance.0, start_time(pgid).unwrap_or(0))
    };
    let text: String = supervisor.running().map(line).collect();
    if text == *saved {
        return;
    }
    match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(pids_file(dir), &text)) {
        Ok(()) => *saved = text,
        Err(e) => tracing::warn!(error = %e, "cannot record the instances' process groups"),
    }
}

/// Kills the process groups a previous run left (see the module header).
fn kill_leftovers(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(pids_file(dir)) else { return };
    for line in text.lines() {
        let fields: Vec<u64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        let [_, pgid, started] = fields[..] else { continue };
        let Ok(pgid) = i32::try_from(pgid) else { continue };
        if pgid <= 1 || start_time(pgid) != Some(started) {
            continue; // gone, or another program has the id now
        }
        if killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok() {
            tracing::warn!(pgid, "killed an instance a previous run of the agent left");
        }
    }
    let _ = std::fs::remove_file(pids_file(dir));
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_ha::{Action, CommandId, InstanceId, QuorumLossPolicy, Role, ServiceKind, ServiceSpec};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A station that grants, acknowledges keep-alives while `alive` (and
    /// says the lease is gone while `gone`), and hands out one start command
    /// unless `idle`.
    #[derive(Default)]
    struct FakeStation {
        alive: AtomicBool,
        gone: AtomicBool,
        idle: AtomicBool,
        grants: Mutex<u32>,
        reports: Mutex<Vec<Event>>,
        last_ack: Mutex<Option<Instant>>,
    }

    impl StationLink for &FakeStation {
        async fn grant(&self, ttl_ms: u64) -> Result<(i64, u64), String> {
            *self.grants.lock().unwrap() += 1;
            *self.last_ack.lock().unwrap() = Some(Instant::now());
            Ok((1, ttl_ms))
        }
        async fn keep_alive(&self, _lease: i64) -> Result<(), KeepAliveError> {
            if self.gone.load(Ordering::SeqCst) {
                return Err(KeepAliveError::Gone);
            }
            if !self.alive.load(Ordering::SeqCst) {
                return Err(KeepAliveError::Unanswered("unreachable".into()));
            }
            *self.last_ack.lock().unwrap() = Some(Instant::now());
            Ok(())
        }
        async fn join(&self, _: NodeId, _: &str, _: &BTreeMap<String, String>, _: i64) -> Result<(), String> {
            Ok(())
        }
        async fn report(&self, _: NodeId, events: &[Event]) -> Result<(), String> {
            self.reports.lock().unwrap().extend_from_slice(events);
            Ok(())
        }
        async fn revoke(&self, _: i64) -> Result<(), String> {
            Ok(())
        }
        async fn commands(&self, node: NodeId, _: u32, _: Duration) -> Result<Vec<AgentCommand>, String> {
            if self.idle.load(Ordering::SeqCst) {
                return Ok(Vec::new());
            }
            let mut spec = ServiceSpec::new("db", "/bin/sh", ServiceKind::Singleton { standbys: 0 });
            spec.args = vec!["-c".into(), "sleep 30".into()];
            let action = Action::Start { spec: Box::new(spec), role: Role::Primary, token: Some(3) };
            Ok(vec![AgentCommand { id: CommandId(1), node, session: 1, instance: InstanceId(1), action }])
        }
    }

    fn settings(dir: &std::path::Path) -> AgentSettings {
        let core = AgentConfig {
            node: NodeId(4),
            lease_ttl_ms: 1_500,
            drift_ppm_max: 200,
            fence_margin_ms: 300,
            on_quorum_loss: QuorumLossPolicy::Stop,
        };
        let supervisor =
            SupervisorConfig { log_dir: dir.join("logs"), shim: None, log_bytes_max: 1 << 20, log_files_max: 2 };
        AgentSettings {
            core,
            address: "127.0.0.1:1".into(),
            labels: BTreeMap::new(),
            data_dir: dir.to_owned(),
            poll: Duration::from_millis(20),
            commands_wait: Duration::ZERO,
            supervisor,
        }
    }

    /// Once the stations say its lease is gone, an agent with nothing to
    /// kill still ends its session and joins again at once: renewing the
    /// gone lease would leave the node dead to the stations for good.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_agent_whose_lease_is_gone_joins_again_even_with_no_instance() {
        let dir = std::env::temp_dir().join(format!("haven-agent-gone-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let station: &'static FakeStation = Box::leak(Box::new(FakeStation::default()));
        station.alive.store(true, Ordering::SeqCst);
        station.idle.store(true, Ordering::SeqCst);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let agent = tokio::spawn(run(station, settings(&dir), async move {
            let _ = stopped.await;
        }));
        let grants = || *station.grants.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while grants() < 1 {
            assert!(Instant::now() < deadline, "the agent joins");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        station.gone.store(true, Ordering::SeqCst);
        let gone_at = Instant::now();
        while grants() < 2 {
            assert!(Instant::now() < deadline, "the agent joins again");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A renewal is due every third of the 1.5 s TTL; the rejoin follows
        // the first answer "gone", long before any fence deadline would.
        assert!(gone_at.elapsed() < Duration::from_millis(900), "joined again {:?} after", gone_at.elapsed());
        let _ = stop.send(());
        agent.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_agent_that_cannot_renew_kills_its_singleton_before_the_lease_can_expire() {
        let dir = std::env::temp_dir().join(format!("haven-agent-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = settings(&dir);
        let station: &'static FakeStation = Box::leak(Box::new(FakeStation::default()));
        station.alive.store(true, Ordering::SeqCst);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let agent = tokio::spawn(run(station, settings, async move {
            let _ = stopped.await;
        }));
        let started = |reports: &[Event]| reports.iter().any(|e| matches!(e, Event::InstanceStarted { .. }));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !started(&station.reports.lock().unwrap()) {
            assert!(Instant::now() < deadline, "the instance starts");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        station.alive.store(false, Ordering::SeqCst);
        let cut_off = station.last_ack.lock().unwrap().expect("acknowledged");
        let exited = |reports: &[Event]| reports.iter().any(|e| matches!(e, Event::InstanceExited { .. }));
        while !exited(&station.reports.lock().unwrap()) {
            assert!(Instant::now() < deadline, "the instance is killed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let killed_after = cut_off.elapsed();
        // The fence deadline is 1500 ms × (1 - ρ)/(1 + ρ) - 300 ms ≈ 1199 ms after the
        // last acknowledged renewal was sent; the exit is reported after a rejoin,
        // later still, and must still come before the TTL could have run out.
        assert!(killed_after < Duration::from_millis(1_500), "killed {killed_after:?} after the last renewal");
        assert!(killed_after > Duration::from_millis(1_000), "not before the deadline: {killed_after:?}");
        assert!(*station.grants.lock().unwrap() >= 2, "fenced, it asked for a new lease");
        let _ = stop.send(());
        agent.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
