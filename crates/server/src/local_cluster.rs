//! A cluster of `haven node` processes on loopback.
//!
//! In: the path of the `haven` binary, a size and a scratch directory.
//! Out: running child processes, each node's latest view (its leader and
//! epoch) as read from its stdout event lines, and operations to kill,
//! pause, resume and restart nodes and to wait, with a deadline, until the
//! views satisfy a predicate. Used by `haven demo` and the process tests.
//! Each node's stderr (its log) goes to `<dir>/node-<id>.log`.

use crate::event_line::EventLine;
use anyhow::{Context as _, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What one node last said about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    pub leader: Option<u64>,
    pub epoch: Option<u64>,
    pub fatal: Option<String>,
}

struct Observed {
    node: u64,
    incarnation: u64,
    line: EventLine,
}

pub struct LocalCluster {
    binary: PathBuf,
    dir: PathBuf,
    addrs: BTreeMap<u64, SocketAddr>,
    children: BTreeMap<u64, Child>,
    incarnations: BTreeMap<u64, u64>,
    views: BTreeMap<u64, NodeView>,
    tx: mpsc::Sender<Observed>,
    rx: mpsc::Receiver<Observed>,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster").field("dir", &self.dir).field("views", &self.views).finish()
    }
}

/// Ports for `n` nodes: bound together (so distinct), then released.
fn free_addrs(n: u64) -> Result<BTreeMap<u64, SocketAddr>> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| haven_net::loopback_listener()).collect::<Result<_, _>>().context("binding a free port")?;
    (1..=n).zip(listeners).map(|(id, l)| Ok((id, l.local_addr()?))).collect()
}

impl LocalCluster {
    /// Starts nodes 1..=size, each with its own data dir under `dir`.
    pub fn start(binary: &Path, size: u64, dir: &Path) -> Result<LocalCluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (tx, rx) = mpsc::channel();
        let mut cluster = LocalCluster {
            binary: binary.to_owned(),
            dir: dir.to_owned(),
            addrs: free_addrs(size)?,
            children: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            views: BTreeMap::new(),
            tx,
            rx,
        };
        for id in 1..=size {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    pub fn ids(&self) -> Vec<u64> {
        self.addrs.keys().copied().collect()
    }

    pub fn addr(&self, id: u64) -> SocketAddr {
        self.addrs[&id]
    }

    pub fn pid(&self, id: u64) -> Option<u32> {
        self.children.get(&id).map(Child::id)
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.log"))
    }

    pub fn views(&self) -> &BTreeMap<u64, NodeView> {
        &self.views
    }

    fn spawn(&mut self, id: u64) -> Result<()> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("node").arg("--id").arg(id.to_string()).arg("--listen").arg(self.addrs[&id].to_string());
        cmd.arg("--data-dir").arg(self.dir.join(format!("n{id}")));
        for (&peer, addr) in self.addrs.iter().filter(|(p, _)| **p != id) {
            cmd.arg("--peer").arg(format!("{peer}={addr}"));
        }
        let log = File::options().create(true).append(true).open(self.log_path(id))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        let mut child = cmd.spawn().with_context(|| format!("starting {}", self.binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let incarnation = self.incarnations.entry(id).and_modify(|i| *i += 1).or_insert(1);
        let (tx, incarnation) = (self.tx.clone(), *incarnation);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(line) = EventLine::parse(&line)
                    && tx.send(Observed { node: id, incarnation, line }).is_err()
                {
                    return;
                }
            }
        });
        self.views.insert(id, NodeView::default());
        self.children.insert(id, child);
        Ok(())
    }

    fn signal(&self, id: u64, signal: Signal) -> Result<()> {
        let Some(child) = self.children.get(&id) else { bail!("n{id} is not running") };
        let pid = Pid::from_raw(i32::try_from(child.id()).context("pid out of range")?);
        kill(pid, signal).with_context(|| format!("sending {signal} to n{id}"))
    }

    /// SIGKILL, like a machine losing power: no chance to clean up.
    pub fn kill(&mut self, id: u64) -> Result<()> {
        self.signal(id, Signal::SIGKILL)?;
        if let Some(mut child) = self.children.remove(&id) {
            child.wait()?;
        }
        self.views.insert(id, NodeView::default());
        Ok(())
    }

    /// SIGSTOP: the process is frozen (as in a long GC pause or a hung VM).
    pub fn pause(&mut self, id: u64) -> Result<()> {
        self.signal(id, Signal::SIGSTOP)
    }

    pub fn resume(&mut self, id: u64) -> Result<()> {
        self.signal(id, Signal::SIGCONT)
    }

    /// Starts a killed node again from its data directory.
    pub fn restart(&mut self, id: u64) -> Result<()> {
        if self.children.contains_key(&id) {
            bail!("n{id} is still running; kill it first");
        }
        self.spawn(id)
    }

    fn apply(&mut self, seen: Observed) {
        if self.incarnations.get(&seen.node) != Some(&seen.incarnation) {
            return; // a line from a process that has since been killed
        }
        let view = self.views.entry(seen.node).or_default();
        match seen.line.kind.as_str() {
            "leader" => view.leader = seen.line.number("leader"),
            "ready" => view.epoch = seen.line.number("epoch"),
            "fatal" => view.fatal = seen.line.fields.get("reason").cloned(),
            _ => {}
        }
    }

    /// Waits until `check` returns `Some`, or fails after `timeout` with
    /// `what` and the views at that moment.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&BTreeMap<u64, NodeView>) -> Option<T>,
    ) -> Result<(T, Duration)> {
        let start = Instant::now();
        loop {
            if let Some(found) = check(&self.views) {
                return Ok((found, start.elapsed()));
            }
            let left = timeout.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(seen) => self.apply(seen),
                Err(_) => bail!("timed out after {timeout:?} waiting for {what}; views: {:?}", self.views),
            }
        }
    }

    /// Waits until every node of `among` trusts the same node, which must be
    /// one of `among`; returns it and the time it took.
    pub fn wait_for_leader(&mut self, among: &[u64], timeout: Duration) -> Result<(u64, Duration)> {
        let what = format!("nodes {among:?} to agree on a leader among themselves");
        self.wait_for(&what, timeout, |views| agreed_leader(views, among))
    }
}

/// The leader all of `among` trust, if they agree on one of themselves.
pub fn agreed_leader(views: &BTreeMap<u64, NodeView>, among: &[u64]) -> Option<u64> {
    let first = views.get(among.first()?)?.leader?;
    let all_agree = among.iter().all(|id| views.get(id).and_then(|v| v.leader) == Some(first));
    (all_agree && among.contains(&first)).then_some(first)
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
