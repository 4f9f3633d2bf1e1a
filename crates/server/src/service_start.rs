//! How long the sample service takes to start on its own, without Haven:
//! the term a failover adds on top of what Haven does.
//!
//! In: the path of this binary, a scratch directory, a number of samples.
//! Out: two lists of milliseconds, measured on the wall clock here:
//! - cold start: from spawning `haven demo-service` as a primary to its
//!   first `200` answer;
//! - promotion: a standby of it already answering `503`, from starting its
//!   promote script (the one `web` is applied with) to the first `200` with
//!   the token the script passed — what a failover to a warm standby costs.
//!
//! Every process started here is killed before the next sample, and when
//! the guard holding it is dropped (on error too).

use crate::demo_service::promote_script;
use crate::ha_cluster::{WebAnswer, free_addr, probe};
use anyhow::{Context as _, Result, bail};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Time a sample may take before the measurement gives up.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two probes of the starting service.
const PROBE_INTERVAL: Duration = Duration::from_millis(1);
/// The node id the measured service believes it runs on.
const NODE: u64 = 1;

#[derive(Clone, Debug, Default)]
pub struct StartTimes {
    pub cold_ms: Vec<f64>,
    pub promotion_ms: Vec<f64>,
}

/// A child killed and reaped when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn measure(binary: &Path, dir: &Path, samples: u32) -> Result<StartTimes> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let script = dir.join("promote.sh");
    std::fs::write(&script, promote_script(dir))?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let mut times = StartTimes::default();
    for sample in 1..=samples {
        let port = free_addr()?.port();
        let started = Instant::now();
        let primary = spawn(binary, dir, port, Some(sample.into()))?;
        wait_for(port, "a cold start", |a| a.status == 200).await?;
        times.cold_ms.push(started.elapsed().as_secs_f64() * 1e3);
        drop(primary);

        let port = free_addr()?.port();
        let _standby = spawn(binary, dir, port, None)?;
        wait_for(port, "a standby", |a| a.status == 503).await?;
        let token = u64::from(sample) + 1_000;
        let started = Instant::now();
        let status = Command::new(&script)
            .env("HAVEN_NODE", NODE.to_string())
            .env("HAVEN_FENCING_TOKEN", token.to_string())
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !status.success() {
            bail!("{} exited with {status}", script.display());
        }
        wait_for(port, "a promotion", |a| a.token() == Some(token)).await?;
        times.promotion_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

/// `haven demo-service` as node [`NODE`] on `port`; a primary if it has a token.
fn spawn(binary: &Path, dir: &Path, port: u16, token: Option<u64>) -> Result<Killed> {
    let port_base = port.checked_sub(u16::try_from(NODE)?).context("a free port above the node id")?;
    let mut command = Command::new(binary);
    command.args(["demo-service", "--port-base", &port_base.to_string(), "--dir"]).arg(dir);
    command.env("HAVEN_NODE", NODE.to_string()).env_remove("HAVEN_FENCING_TOKEN");
    if let Some(token) = token {
        command.env("HAVEN_FENCING_TOKEN", token.to_string());
    }
    let child = command.stdin(Stdio::null()).stdout(Stdio::null()).spawn();
    Ok(Killed(child.with_context(|| format!("starting {} demo-service", binary.display()))?))
}

async fn wait_for(port: u16, what: &str, done: impl Fn(&WebAnswer) -> bool) -> Result<()> {
    let deadline = Instant::now() + SAMPLE_TIMEOUT;
    while !probe(port).await.is_some_and(|a| done(&a)) {
        if Instant::now() > deadline {
            bail!("no answer of {what} of demo-service on port {port} within {SAMPLE_TIMEOUT:?}");
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    Ok(())
}
