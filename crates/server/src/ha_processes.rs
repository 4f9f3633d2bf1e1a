//! The processes of a local high-availability cluster, and their cleanup.
//!
//! In: stations and agents to start (a name, the binary, its arguments, a
//! log file), each agent's data directory, signals to send them. Out: the
//! running children, the process groups of the instances each agent runs
//! (read from its `instances.pids`), and a stop that leaves nothing behind:
//! SIGTERM (and SIGCONT, for anything frozen) to every child, SIGKILL after
//! a grace period, then SIGKILL to every instance group an agent recorded.
//! Dropping [`Processes`] stops them too, so an error or a panic cannot
//! leak a process.

use crate::agent::supervisor::group_alive;
use anyhow::{Context as _, Result};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long stopped children get to exit on their own before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The children a local cluster started; all stopped when dropped.
#[derive(Debug, Default)]
pub struct Processes {
    children: Vec<(String, Child)>,
    agent_dirs: BTreeMap<u64, PathBuf>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Processes {
    /// Starts `binary args` as `name`; stdout and stderr are appended to `log`
    /// (appended, so a restarted agent keeps its predecessor's lines).
    pub fn spawn(&mut self, name: &str, binary: &Path, args: &[String], log: &Path) -> Result<()> {
        let file = std::fs::File::options().create(true).append(true).open(log);
        let file = file.with_context(|| format!("opening {}", log.display()))?;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name} ({})", binary.display()))?;
        self.children.push((name.to_owned(), child));
        Ok(())
    }

    /// Remembers where agent `node` records its instances, for the cleanup.
    pub fn add_agent_dir(&mut self, node: u64, dir: PathBuf) {
        self.agent_dirs.insert(node, dir);
    }

    pub fn pid(&self, name: &str) -> Option<Pid> {
        let (_, child) = self.children.iter().find(|(n, _)| n == name)?;
        Some(Pid::from_raw(i32::try_from(child.id()).ok()?))
    }

    /// Sends `signal` to the child `name`.
    pub fn signal(&self, name: &str, signal: Signal) -> Result<()> {
        let pid = self.pid(name).with_context(|| format!("{name} is not running"))?;
        kill(pid, signal).with_context(|| format!("sending {signal} to {name} (pid {pid})"))
    }

    /// SIGKILLs the child `name` and reaps it, so it can be started again.
    pub fn kill(&mut self, name: &str) -> Result<()> {
        let index = self.children.iter().position(|(n, _)| n == name);
        let (_, mut child) = self.children.remove(index.with_context(|| format!("{name} is not running"))?);
        child.kill().with_context(|| format!("killing {name}"))?;
        child.wait().with_context(|| format!("reaping {name}"))?;
        Ok(())
    }

    /// The process groups of the instances agent `node` runs.
    pub fn instance_groups(&self, node: u64) -> Vec<Pid> {
        self.agent_dirs.get(&node).map(|dir| instance_groups(dir)).unwrap_or_default()
    }

    /// Sends `signal` to every instance group of agent `node`; groups
    /// already gone are skipped (an instance may exit at any moment).
    pub fn signal_instances(&self, node: u64, signal: Signal) {
        for pgid in self.instance_groups(node) {
            let _ = killpg(pgid, signal);
        }
    }

    /// Instance process groups with a live (not zombie) member.
    pub fn groups_alive(&self) -> usize {
        let nodes = self.agent_dirs.keys();
        nodes.flat_map(|node| self.instance_groups(*node)).filter(|pgid| group_alive(*pgid)).count()
    }

    /// SIGTERM to everyone (agents first, in reverse start order: they kill
    /// their instances), SIGCONT so that frozen ones can act on it, then
    /// SIGKILL to whoever is still there after the grace period, and to
    /// every instance group an agent recorded.
    pub fn stop(&mut self) {
        for (_, child) in self.children.iter().rev() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for (_, child) in &mut self.children {
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
        for node in self.agent_dirs.keys() {
            self.signal_instances(*node, Signal::SIGKILL);
        }
    }
}

/// The process groups listed in an agent's `instances.pids` (in its data
/// directory): its instances, for a harness to signal.
pub fn instance_groups(agent_dir: &Path) -> Vec<Pid> {
    let text = std::fs::read_to_string(agent_dir.join("instances.pids")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<i32>().ok())
        .filter(|pgid| *pgid > 1) // never this session's group or init's
        .map(Pid::from_raw)
        .collect()
}
