//! The agent's processes: each instance in its own process group, its
//! output in a rotated log file, its exit and health reported.
//!
//! In: [`AgentAction`]s from the agent's decisions (spawn, promote, stop,
//! kill). Out: [`ProcessEvent`]s on a bounded channel — spawned, healthy or
//! unhealthy, promoted, exited with its code — for the decisions to turn
//! into reports.
//!
//! With a shim configured, the group's first process is `haven
//! instance-shim`, which kills the group if the agent dies (`shim.rs`).
//! A stop sends SIGTERM to the whole group and SIGKILL after the stop
//! timeout; a kill (self-fencing) sends SIGKILL at once. Whatever ends the
//! main process, the rest of its group is killed too, so a service never
//! leaves children behind to hold its resources.

use crate::agent::health;
use crate::agent::log_file::LogFile;
use haven_ha::{AgentAction, InstanceId, ProcessEvent, ServiceSpec};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Clone, Debug)]
pub struct SupervisorConfig {
    pub log_dir: PathBuf,
    /// The `haven` binary, to start each instance under `haven
    /// instance-shim` so that it dies with the agent (see `shim.rs`);
    /// `None` starts the service directly (tests that run the agent in
    /// their own process, where there is no `haven` binary to call).
    pub shim: Option<PathBuf>,
    pub log_bytes_max: u64,
    pub log_files_max: u32,
}

#[derive(Debug)]
struct Running {
    pgid: Pid,
    health: JoinHandle<()>,
}

#[derive(Debug)]
pub struct Supervisor {
    config: SupervisorConfig,
    running: BTreeMap<InstanceId, Running>,
    events: mpsc::Sender<ProcessEvent>,
}

fn signal_group(pgid: Pid, signal: Signal) {
    // ESRCH: the group is already gone, which is what we want.
    let _ = killpg(pgid, signal);
}

impl Supervisor {
    pub fn new(config: SupervisorConfig, events: mpsc::Sender<ProcessEvent>) -> Supervisor {
        Supervisor { config, running: BTreeMap::new(), events }
    }

    pub fn running(&self) -> impl Iterator<Item = (InstanceId, i32)> + '_ {
        self.running.iter().map(|(id, r)| (*id, r.pgid.as_raw()))
    }

    pub fn carry_out(&mut self, action: AgentAction) {
        match action {
            AgentAction::Spawn { instance, spec, env } => {
                if let Err(e) = self.spawn(instance, &spec, &env) {
                    tracing::warn!(%instance, service = spec.name, error = %e, "cannot start the instance");
                    let events = self.events.clone();
                    tokio::spawn(async move { events.send(ProcessEvent::Exited { instance, code: Some(127) }).await });
                }
            }
            AgentAction::Promote { instance, command, env } => self.promote(instance, command, env),
            AgentAction::Stop { instance, timeout_ms } => self.stop(instance, Duration::from_millis(timeout_ms)),
            AgentAction::Kill { instance } => {
                if let Some(r) = self.running.get(&instance) {
                    tracing::warn!(%instance, "fencing: SIGKILL");
                    signal_group(r.pgid, Signal::SIGKILL);
                }
            }
        }
    }

    fn spawn(
        &mut self,
        instance: InstanceId,
        spec: &ServiceSpec,
        env: &BTreeMap<String, String>,
    ) -> std::io::Result<()> {
        if let Some(old) = self.running.remove(&instance) {
            signal_group(old.pgid, Signal::SIGKILL);
            old.health.abort();
        }
        let mut command = match &self.config.shim {
            Some(shim) => {
                let mut command = tokio::process::Command::new(shim);
                command.args(["instance-shim", "--parent", &std::process::id().to_string(), "--", &spec.command]);
                command
            }
            None => tokio::process::Command::new(&spec.command),
        };
        command.args(&spec.args).envs(&spec.env).envs(env).process_group(0);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(dir) = &spec.working_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn()?;
        let pid = child.id().and_then(|id| i32::try_from(id).ok()).ok_or_else(|| std::io::Error::other("no pid"))?;
        let pgid = Pid::from_raw(pid);
        let log = LogFile::open(
            &self.config.log_dir,
            &format!("{}-{instance}", spec.name),
            self.config.log_bytes_max,
            self.config.log_files_max,
        )?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(log));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(copy_lines(out, log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(copy_lines(err, log));
        }
        let events = self.events.clone();
        tokio::spawn(async move {
            let code = child.wait().await.ok().and_then(|status| status.code());
            signal_group(pgid, Signal::SIGKILL); // the rest of the group goes with it
            let _ = events.send(ProcessEvent::Exited { instance, code }).await;
        });
        let health = tokio::spawn(health::watch(instance, spec.health.clone(), self.events.clone()));
        self.running.insert(instance, Running { pgid, health });
        tracing::info!(%instance, service = spec.name, pid, "instance started");
        let events = self.events.clone();
        tokio::spawn(async move { events.send(ProcessEvent::Spawned { instance }).await });
        Ok(())
    }

    fn promote(&mut self, instance: InstanceId, program: String, env: BTreeMap<String, String>) {
        let events = self.events.clone();
        tokio::spawn(async move {
            let status = tokio::process::Command::new(&program).envs(&env).kill_on_drop(true).status().await;
            let ok = status.is_ok_and(|s| s.success());
            let _ = events.send(ProcessEvent::Promoted { instance, ok }).await;
        });
    }

    fn stop(&mut self, instance: InstanceId, timeout: Duration) {
        let Some(r) = self.running.get(&instance) else { return };
        let pgid = r.pgid;
        signal_group(pgid, Signal::SIGTERM);
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            signal_group(pgid, Signal::SIGKILL);
        });
    }

    /// The instance's process exited: stop watching it.
    pub fn forget(&mut self, instance: InstanceId) {
        if let Some(r) = self.running.remove(&instance) {
            r.health.abort();
        }
    }

    /// Kills every instance (the agent is stopping).
    pub fn kill_all(&mut self) {
        for (_, r) in std::mem::take(&mut self.running) {
            signal_group(r.pgid, Signal::SIGKILL);
            r.health.abort();
        }
    }
}

/// Whether a process of group `pgid` still runs. A zombie waiting to be
/// reaped is dead (`kill(0)` would count it: an orphan killed with its
/// group waits for init, which in a container may never reap it).
pub fn group_alive(pgid: Pid) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return killpg(pgid, None).is_ok() };
    let pgrp = pgid.as_raw().to_string();
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).any(|pid| {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
        // After the command's closing parenthesis: state, ppid, pgrp.
        let fields: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        fields.first().is_some_and(|state| *state != "Z") && fields.get(2) == Some(&pgrp.as_str())
    })
}

async fn copy_lines(stream: impl AsyncRead + Unpin, log: std::sync::Arc<std::sync::Mutex<LogFile>>) {
    let mut lines = BufReader::new(stream).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        let mut log = log.lock().expect("never poisoned: no panics while held");
        if let Err(e) = log.line(&line) {
            tracing::warn!(error = %e, "cannot write the instance's log");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_ha::ServiceKind;

    fn supervisor(tag: &str) -> (Supervisor, mpsc::Receiver<ProcessEvent>, PathBuf) {
        let dir = std::env::temp_dir().join(format!("haven-sup-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (tx, rx) = mpsc::channel(64);
        let config = SupervisorConfig { log_dir: dir.clone(), shim: None, log_bytes_max: 1 << 20, log_files_max: 2 };
        (Supervisor::new(config, tx), rx, dir)
    }

    fn shell(script: &str) -> Box<ServiceSpec> {
        let mut spec = ServiceSpec::new("svc", "/bin/sh", ServiceKind::Singleton { standbys: 0 });
        spec.args = vec!["-c".into(), script.into()];
        spec.health.interval_ms = 3_600_000; // one check, at start
        Box::new(spec)
    }

    async fn next_exit(rx: &mut mpsc::Receiver<ProcessEvent>) -> Option<i32> {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("an event in time") {
                Some(ProcessEvent::Exited { code, .. }) => return code,
                Some(_) => {}
                None => panic!("channel closed"),
            }
        }
    }

    #[tokio::test]
    async fn output_goes_to_the_log_and_the_exit_code_is_reported_with_the_token_in_the_environment() {
        let (mut sup, mut rx, dir) = supervisor("exit");
        let env = BTreeMap::from([("HAVEN_FENCING_TOKEN".to_owned(), "42".to_owned())]);
        let spec = shell("echo token=$HAVEN_FENCING_TOKEN; echo oops >&2; exit 3");
        sup.carry_out(AgentAction::Spawn { instance: InstanceId(1), spec, env });
        assert_eq!(next_exit(&mut rx).await, Some(3));
        tokio::time::sleep(Duration::from_millis(50)).await; // the copy tasks drain the pipes
        let log = std::fs::read_to_string(dir.join("svc-i1.log")).unwrap();
        assert!(log.contains("token=42") && log.contains("oops"), "{log}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_stop_terms_the_whole_group_and_kills_what_ignores_it() {
        let (mut sup, mut rx, dir) = supervisor("stop");
        // The shell ignores SIGTERM and has a child: both must go.
        let spec = shell("trap '' TERM; sleep 30 & wait");
        sup.carry_out(AgentAction::Spawn { instance: InstanceId(2), spec, env: BTreeMap::new() });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let pgid = sup.running().next().map(|(_, pgid)| pgid).expect("running");
        sup.carry_out(AgentAction::Stop { instance: InstanceId(2), timeout_ms: 300 });
        assert_eq!(next_exit(&mut rx).await, None, "killed by a signal after the stop timeout");
        sup.forget(InstanceId(2));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!group_alive(Pid::from_raw(pgid)), "nothing of the group is left running");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_program_that_does_not_exist_is_reported_as_exited() {
        let (mut sup, mut rx, dir) = supervisor("missing");
        let mut spec = shell("");
        spec.command = "/nonexistent/program".into();
        sup.carry_out(AgentAction::Spawn { instance: InstanceId(3), spec, env: BTreeMap::new() });
        assert_eq!(next_exit(&mut rx).await, Some(127));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
