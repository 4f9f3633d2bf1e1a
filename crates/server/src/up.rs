//! `haven up`: a station cluster on loopback, in the foreground.
//!
//! In: a directory, a size and a base port. Out: `size` child processes
//! running `haven station`, each with its data and log under the directory;
//! the endpoints and how to use them once a leader is known; everything
//! stopped (SIGTERM, then SIGKILL after a grace period) on Ctrl-C or
//! SIGTERM. A station that exits on its own (killed to try a failover, say)
//! is reported with its log, and the others keep running; `haven up` ends
//! when none is left.
//!
//! The stations share this machine's cores: each is given its share as
//! `--worker-threads` (at least one), unless `HAVEN_WORKER_THREADS` says
//! otherwise. With one per core each, three stations and their clients
//! oversubscribe the cores threefold and spend the difference waking one
//! another's threads.

use crate::cli::UpArgs;
use anyhow::{Context as _, Result, bail};
use haven_client::{Client, ClientConfig};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Ports between stations: client at base + k·STRIDE, peer one above.
const PORT_STRIDE: u16 = 100;
/// How long the cluster may take to elect its first leader.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a station may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

struct Station {
    id: u64,
    client: SocketAddr,
    log: PathBuf,
    child: Child,
    /// Reported as exited already.
    exited: bool,
}

pub fn run(binary: &Path, args: UpArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating --dir {}", args.dir.display()))?;
    let dir = args.dir.canonicalize().with_context(|| format!("resolving --dir {}", args.dir.display()))?;
    let addrs = addresses(&args)?;
    let initial_cluster: Vec<String> =
        addrs.iter().map(|(id, client, peer)| format!("{id}={peer}=http://{client}")).collect();
    let initial_cluster = initial_cluster.join(",");
    let threads = worker_threads_each(addrs.len());
    let mut stations = Vec::new();
    for &(id, client, _) in &addrs {
        match spawn(binary, &dir, id, &initial_cluster, threads) {
            Ok((child, log)) => stations.push(Station { id, client, log, child, exited: false }),
            Err(e) => {
                stop(&mut stations);
                return Err(e);
            }
        }
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(supervise(&dir, &mut stations));
    stop(&mut stations);
    result
}

/// (id, client address, peer address) of each station, checked free.
fn addresses(args: &UpArgs) -> Result<Vec<(u64, SocketAddr, SocketAddr)>> {
    let mut addrs = Vec::new();
    for id in 1..=args.size {
        let step = u16::try_from(id - 1).expect("size is at most 7") * PORT_STRIDE;
        let client = args.base_port.checked_add(step).context("--base-port too high for this --size")?;
        let peer = client.checked_add(1).context("--base-port too high for this --size")?;
        for port in [client, peer] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if let Err(e) = TcpListener::bind(addr) {
                bail!("port {port} is not free ({e}): is another cluster running? Stop it or pass --base-port");
            }
        }
        addrs.push((id, SocketAddr::from(([127, 0, 0, 1], client)), SocketAddr::from(([127, 0, 0, 1], peer))));
    }
    Ok(addrs)
}

/// Each station's share of the cores, or `None` to leave the choice to
/// `HAVEN_WORKER_THREADS`, which the stations inherit.
fn worker_threads_each(stations: usize) -> Option<usize> {
    if std::env::var_os("HAVEN_WORKER_THREADS").is_some() {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some(share_of_cores(cores, stations))
}

fn share_of_cores(cores: usize, stations: usize) -> usize {
    assert!(stations > 0, "haven up runs at least one station");
    (cores / stations).max(1)
}

fn spawn(
    binary: &Path,
    dir: &Path,
    id: u64,
    initial_cluster: &str,
    worker_threads: Option<usize>,
) -> Result<(Child, PathBuf)> {
    let log = dir.join(format!("n{id}.log"));
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("duplicating the log file handle")?;
    let mut command = Command::new(binary);
    command
        .args(["station", "--id", &id.to_string(), "--initial-cluster", initial_cluster, "--data-dir"])
        .arg(dir.join(format!("n{id}")));
    if let Some(threads) = worker_threads {
        command.args(["--worker-threads", &threads.to_string()]);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting station {id} ({})", binary.display()))?;
    Ok((child, log))
}

/// Waits for a leader, prints how to use the cluster, then waits for a
/// signal or a station that exits on its own.
async fn supervise(dir: &Path, stations: &mut [Station]) -> Result<()> {
    let endpoints: Vec<String> = stations.iter().map(|s| format!("http://{}", s.client)).collect();
    let started = Instant::now();
    let mut shutdown = std::pin::pin!(haven_daemon::shutdown_signal());
    let leader = tokio::select! {
        leader = wait_for_leader(&endpoints, stations) => leader?,
        () = &mut shutdown => return Ok(()),
    };
    println!(
        "haven up: {} stations on loopback, leader n{leader} after {} ms",
        stations.len(),
        started.elapsed().as_millis()
    );
    for s in stations.iter() {
        println!("  n{}  http://{}  pid {}  log {}", s.id, s.client, s.child.id(), s.log.display());
    }
    let list = endpoints.join(",");
    println!("data in {}\n\nTry, in another terminal:", dir.display());
    println!("  export HAVEN_ENDPOINTS={list}\n  haven kv put greeting hello\n  haven kv get greeting\n  haven status");
    println!("  curl -s -XPOST {}/v3/kv/range -d '{{\"key\":\"Z3JlZXRpbmc=\"}}'", endpoints[0]);
    println!("  open {}/dashboard in a browser to watch the cluster", endpoints[0]);
    println!("\nCtrl-C stops every station. Kill one (kill -9 PID) to watch the others elect a new leader.");
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            _ = ticker.tick() => if report_exits(stations) == stations.len() {
                bail!("every station has exited; see their logs in {}", dir.display());
            },
        }
    }
}

/// Reports stations that exited since the last call; returns how many have.
fn report_exits(stations: &mut [Station]) -> usize {
    for s in stations.iter_mut().filter(|s| !s.exited) {
        if let Ok(Some(status)) = s.child.try_wait() {
            s.exited = true;
            println!("station n{} exited ({status}); its log: {}", s.id, s.log.display());
        }
    }
    stations.iter().filter(|s| s.exited).count()
}

async fn wait_for_leader(endpoints: &[String], stations: &mut [Station]) -> Result<u64> {
    let config = ClientConfig {
        endpoints: endpoints.to_vec(),
        request_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let client = Client::new(config).context("setting up the status client")?;
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        check_alive(stations)?;
        for endpoint in endpoints {
            if let Ok(status) = client.status_of(endpoint).await
                && status.leader != 0
            {
                return Ok(status.leader);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no leader within {READY_TIMEOUT:?}; see the stations' logs in the --dir")
}

fn check_alive(stations: &mut [Station]) -> Result<()> {
    for s in stations.iter_mut() {
        if let Some(status) = s.child.try_wait().context("checking a station")? {
            bail!("station n{} exited ({status}); its log: {}", s.id, s.log.display());
        }
    }
    Ok(())
}

/// SIGTERM to every station, then SIGKILL to those still running after the grace period.
fn stop(stations: &mut [Station]) {
    for s in stations.iter() {
        let _ = kill(Pid::from_raw(s.child.id() as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + STOP_GRACE;
    for s in stations.iter_mut() {
        while Instant::now() < deadline && matches!(s.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(s.child.try_wait(), Ok(None)) {
            eprintln!("station n{} did not stop within {STOP_GRACE:?}: killing it", s.id);
            let _ = s.child.kill();
        }
        let _ = s.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::share_of_cores;

    #[test]
    fn each_station_gets_its_share_of_the_cores_and_never_none() {
        assert_eq!(share_of_cores(2, 3), 1, "fewer cores than stations: one thread each");
        assert_eq!(share_of_cores(8, 3), 2);
        assert_eq!(share_of_cores(64, 5), 12);
        assert_eq!(share_of_cores(1, 1), 1);
    }
}
