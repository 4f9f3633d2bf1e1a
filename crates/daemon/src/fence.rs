//! The operator's fence command: checked at start, run when the leader's
//! replica asks for a node to be fenced.
//!
//! In: `fence_command` (a program and its arguments, split on whitespace
//! with no shell and no quoting: for anything more, point it at a script),
//! `fence_after_ms` and `fence_timeout_ms`; then each
//! `ReplicaEvent::FenceRequested`. Out: the command run as
//! `<program> <args…> <node id> <node address>` with `HAVEN_FENCE_NODE`
//! and `HAVEN_FENCE_ADDRESS` in its environment (like Pacemaker's fence
//! agents, it must power off or cut off that node and exit 0 only once it
//! has); its verdict — exit 0 is fenced, any other exit, a signal or the
//! timeout (the command is then killed) is failed — sent to the replica as
//! `StationMsg::FenceResult`; the first `OUTPUT_BYTES_MAX` of its stdout and
//! stderr in the station log; fences started, succeeded and failed in the
//! metrics. Retries and the bound on fences in flight are the replica's
//! (`haven_station::ha_fence`).
//!
//! A timeout kills the command's process, not processes it started: a
//! script should `exec` its last step so that the kill reaches it.

use crate::metrics::Metrics;
use haven_runtime::NodeId;
use haven_station::{FenceConfig, StationMsg};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// Captured bytes of each of stdout and stderr; the rest is read and dropped.
pub const OUTPUT_BYTES_MAX: usize = 4 * 1024;
/// Arguments `fence_command` may have, the program included.
pub const ARGS_LEN_MAX: usize = 64;
/// Default silence before a holder is fenced: two missed renewals of an
/// agent with the default 1 s lease (it renews every third of its TTL).
pub const FENCE_AFTER_MS_DEFAULT: u64 = 750;
pub const FENCE_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// How much longer than the command's timeout the replica waits for the
/// verdict before it counts the attempt failed (the kill and the message).
const VERDICT_SLACK: Duration = Duration::from_secs(1);

/// The fence settings in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceSettings {
    /// The program (resolved to a path) and its leading arguments.
    pub argv: Vec<String>,
    pub after: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FenceSetupError {
    #[error("fence_command is empty; give the program to run, e.g. --fence-command \"/usr/sbin/fence_ipmi --lanplus\"")]
    Empty,
    #[error("fence_command has {len} arguments, more than {ARGS_LEN_MAX}; put them in a script and name the script")]
    TooLong { len: usize },
    #[error("fence_command program {program:?} {reason}; give the absolute path of an executable file (chmod +x it)")]
    Program { program: String, reason: String },
    #[error("{flag} must be at least 1 (milliseconds)")]
    Zero { flag: &'static str },
    #[error("{flag} is set but --fence-command is not; set the command too, or drop {flag}")]
    NoCommand { flag: &'static str },
}

impl FenceSettings {
    /// The settings from the layered options: `None` without a command.
    pub fn resolve(
        command: Option<&str>,
        after_ms: Option<u64>,
        timeout_ms: Option<u64>,
    ) -> Result<Option<FenceSettings>, FenceSetupError> {
        let Some(command) = command else {
            return match (after_ms, timeout_ms) {
                (Some(_), _) => Err(FenceSetupError::NoCommand { flag: "--fence-after-ms" }),
                (_, Some(_)) => Err(FenceSetupError::NoCommand { flag: "--fence-timeout-ms" }),
                _ => Ok(None),
            };
        };
        let mut argv: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        if argv.is_empty() {
            return Err(FenceSetupError::Empty);
        }
        if argv.len() > ARGS_LEN_MAX {
            return Err(FenceSetupError::TooLong { len: argv.len() });
        }
        argv[0] = executable(&argv[0])?.to_string_lossy().into_owned();
        let after_ms = after_ms.unwrap_or(FENCE_AFTER_MS_DEFAULT);
        let timeout_ms = timeout_ms.unwrap_or(FENCE_TIMEOUT_MS_DEFAULT);
        if after_ms == 0 {
            return Err(FenceSetupError::Zero { flag: "--fence-after-ms" });
        }
        if timeout_ms == 0 {
            return Err(FenceSetupError::Zero { flag: "--fence-timeout-ms" });
        }
        let (after, timeout) = (Duration::from_millis(after_ms), Duration::from_millis(timeout_ms));
        Ok(Some(FenceSettings { argv, after, timeout }))
    }

    /// The replica's side of the policy.
    pub fn replica_config(&self) -> FenceConfig {
        FenceConfig { attempt_timeout: self.timeout + VERDICT_SLACK, ..FenceConfig::new(self.after) }
    }
}

/// `program` as a path to an executable file: as given when it has a
/// slash, else the first match on `PATH`.
fn executable(program: &str) -> Result<PathBuf, FenceSetupError> {
    let refuse = |reason: &str| FenceSetupError::Program { program: program.to_owned(), reason: reason.to_owned() };
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).map(|dir| dir.join(program)).collect()
    };
    let mut reason = if program.contains('/') { "does not exist" } else { "is not on PATH" };
    for candidate in candidates {
        let Ok(meta) = std::fs::metadata(&candidate) else { continue };
        if !meta.is_file() {
            reason = "is not a file";
        } else if meta.permissions().mode() & 0o111 == 0 {
            reason = "is not executable";
        } else {
            return Ok(candidate);
        }
    }
    Err(refuse(reason))
}

/// How one run of the command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceOutcome {
    Fenced,
    /// `code` is `None` when a signal ended it.
    Failed {
        code: Option<i32>,
    },
    TimedOut,
    /// It could not be started at all.
    NotStarted {
        error: String,
    },
}

/// What the command said, bounded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FenceOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Runs the fence command once for `node` at `address`.
pub async fn run_fence(argv: &[String], node: NodeId, address: &str, timeout: Duration) -> (FenceOutcome, FenceOutput) {
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .arg(node.0.to_string())
        .arg(address)
        .env("HAVEN_FENCE_NODE", node.0.to_string())
        .env("HAVEN_FENCE_ADDRESS", address)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return (FenceOutcome::NotStarted { error: e.to_string() }, FenceOutput::default()),
    };
    let stdout = child.stdout.take().map(|out| tokio::spawn(read_bounded(out)));
    let stderr = child.stderr.take().map(|err| tokio::spawn(read_bounded(err)));
    let outcome = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => FenceOutcome::Fenced,
        Ok(Ok(status)) => FenceOutcome::Failed { code: status.code() },
        Ok(Err(e)) => FenceOutcome::NotStarted { error: e.to_string() },
        Err(_) => {
            let _ = child.kill().await;
            FenceOutcome::TimedOut
        }
    };
    let output = FenceOutput { stdout: collect(stdout).await, stderr: collect(stderr).await };
    (outcome, output)
}

/// The reader's text, unless it is still held open (by a process the
/// command left behind) a moment after the command ended.
async fn collect(reader: Option<tokio::task::JoinHandle<String>>) -> String {
    let Some(mut reader) = reader else { return String::new() };
    match tokio::time::timeout(Duration::from_millis(100), &mut reader).await {
        Ok(text) => text.unwrap_or_default(),
        Err(_) => {
            reader.abort();
            "(output still open when the command ended; not read)".to_owned()
        }
    }
}

/// Everything `reader` gives, keeping the first `OUTPUT_BYTES_MAX` bytes.
async fn read_bounded(mut reader: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut dropped = 0usize;
    while let Ok(n) = reader.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let room = OUTPUT_BYTES_MAX.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&chunk[..room]);
        dropped += n - room;
    }
    let mut text = String::from_utf8_lossy(&kept).trim_end().to_owned();
    if dropped > 0 {
        text.push_str(&format!(" … ({dropped} more bytes)"));
    }
    text
}

/// Runs fences for the replica and sends their verdicts back.
#[derive(Clone, Debug)]
pub struct FenceRunner {
    settings: Arc<FenceSettings>,
    to_replica: mpsc::Sender<StationMsg>,
    metrics: Arc<Metrics>,
}

impl FenceRunner {
    pub fn new(settings: FenceSettings, to_replica: mpsc::Sender<StationMsg>, metrics: Arc<Metrics>) -> FenceRunner {
        FenceRunner { settings: Arc::new(settings), to_replica, metrics }
    }

    /// Starts one attempt in a task of its own (the replica bounds how many run).
    pub fn start(&self, node: NodeId, address: String, session: i64, attempt: u32) {
        let runner = self.clone();
        self.metrics.fences_started.inc();
        tracing::warn!(node = node.0, %address, session, attempt, "fencing node: running the fence command");
        tokio::spawn(async move { runner.attempt(node, address, session, attempt).await });
    }

    async fn attempt(self, node: NodeId, address: String, session: i64, attempt: u32) {
        let (outcome, output) = run_fence(&self.settings.argv, node, &address, self.settings.timeout).await;
        let fenced = outcome == FenceOutcome::Fenced;
        let (stdout, stderr) = (output.stdout.as_str(), output.stderr.as_str());
        if fenced {
            self.metrics.fences_succeeded.inc();
            tracing::warn!(node = node.0, attempt, stdout, stderr, "node fenced: the fence command exited 0");
        } else {
            self.metrics.fences_failed.inc();
            let outcome = format!("{outcome:?}");
            tracing::error!(
                node = node.0,
                attempt,
                outcome,
                stdout,
                stderr,
                "fencing failed; the leader retries (bounded), the lease expiry is the fallback"
            );
        }
        let verdict = StationMsg::FenceResult { node, session, fenced };
        if self.to_replica.send(verdict).await.is_err() {
            tracing::debug!(node = node.0, "the replica stopped before the fence verdict");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A temporary directory holding `script` as an executable file.
    fn script(name: &str, body: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("haven-fence-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fence.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, path)
    }

    fn argv(path: &Path, args: &str) -> Vec<String> {
        std::iter::once(path.display().to_string()).chain(args.split_whitespace().map(str::to_owned)).collect()
    }

    #[tokio::test]
    async fn exit_zero_is_fenced_and_the_node_comes_as_arguments_and_in_the_environment() {
        let (dir, path) = script("ok", "echo \"args $*; env $HAVEN_FENCE_NODE $HAVEN_FENCE_ADDRESS\"; echo oops >&2");
        let (outcome, output) =
            run_fence(&argv(&path, "--lanplus"), NodeId(7), "10.0.0.7:7000", Duration::from_secs(5)).await;
        assert_eq!(outcome, FenceOutcome::Fenced);
        assert_eq!(output.stdout, "args --lanplus 7 10.0.0.7:7000; env 7 10.0.0.7:7000");
        assert_eq!(output.stderr, "oops");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn another_exit_code_is_a_failure_and_long_output_is_cut() {
        let (dir, path) = script("fail", "head -c 10000 /dev/zero | tr '\\0' x; exit 3");
        let (outcome, output) = run_fence(&argv(&path, ""), NodeId(7), "a", Duration::from_secs(5)).await;
        assert_eq!(outcome, FenceOutcome::Failed { code: Some(3) });
        assert!(output.stdout.starts_with(&"x".repeat(OUTPUT_BYTES_MAX)), "{}", output.stdout.len());
        assert!(output.stdout.ends_with("… (5904 more bytes)"), "{}", &output.stdout[OUTPUT_BYTES_MAX..]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_command_that_hangs_is_killed_at_the_timeout() {
        let (dir, path) = script("hang", "echo started; exec sleep 30");
        let (outcome, output) = run_fence(&argv(&path, ""), NodeId(7), "a", Duration::from_millis(300)).await;
        assert_eq!(outcome, FenceOutcome::TimedOut);
        assert_eq!(output.stdout, "started", "what it said before the kill is kept");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_runner_sends_each_verdict_to_the_replica_and_counts_it() {
        let (dir, path) = script("runner", "test \"$1\" = 4");
        let settings =
            FenceSettings { argv: argv(&path, ""), after: Duration::from_secs(1), timeout: Duration::from_secs(5) };
        let metrics = Arc::new(Metrics::new(Arc::default()));
        let (tx, mut rx) = mpsc::channel(4);
        let runner = FenceRunner::new(settings, tx, metrics.clone());
        runner.start(NodeId(4), "10.0.0.4:7000".into(), 40, 1);
        let verdict = rx.recv().await.expect("a verdict");
        assert_eq!(verdict, StationMsg::FenceResult { node: NodeId(4), session: 40, fenced: true });
        runner.start(NodeId(5), "10.0.0.5:7000".into(), 50, 2);
        let verdict = rx.recv().await.expect("a verdict");
        assert_eq!(verdict, StationMsg::FenceResult { node: NodeId(5), session: 50, fenced: false });
        let counts = (metrics.fences_started.get(), metrics.fences_succeeded.get(), metrics.fences_failed.get());
        assert_eq!(counts, (2, 1, 1));
        assert!(metrics.encode().contains("haven_fences_failed_total 1"), "exported for Prometheus");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn settings_are_checked_with_the_field_and_the_fix() {
        let (dir, path) = script("check", "exit 0");
        let command = format!("{} --port 623", path.display());
        let settings = FenceSettings::resolve(Some(&command), None, Some(2_000)).unwrap().expect("configured");
        assert_eq!(settings.argv, argv(&path, "--port 623"));
        assert_eq!((settings.after, settings.timeout), (Duration::from_millis(750), Duration::from_secs(2)));
        assert_eq!(settings.replica_config().attempt_timeout, Duration::from_secs(3));
        assert_eq!(FenceSettings::resolve(None, None, None), Ok(None));
        let sh = FenceSettings::resolve(Some("sh"), None, None).unwrap().expect("configured");
        assert!(sh.argv[0].ends_with("/sh"), "found on PATH: {:?}", sh.argv);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let not_exec = path.display().to_string();
        let missing = dir.join("nothing").display().to_string();
        let dir_text = dir.display().to_string();
        let cases = [
            (FenceSettings::resolve(Some(&not_exec), None, None), "is not executable; give the absolute path"),
            (FenceSettings::resolve(Some(&missing), None, None), "does not exist"),
            (FenceSettings::resolve(Some(&dir_text), None, None), "is not a file"),
            (FenceSettings::resolve(Some("no-such-fence-agent"), None, None), "is not on PATH"),
            (FenceSettings::resolve(Some("  "), None, None), "fence_command is empty"),
            (FenceSettings::resolve(Some("sh"), Some(0), None), "--fence-after-ms must be at least 1"),
            (FenceSettings::resolve(Some("sh"), None, Some(0)), "--fence-timeout-ms must be at least 1"),
            (FenceSettings::resolve(None, Some(500), None), "--fence-after-ms is set but --fence-command is not"),
        ];
        for (result, expected) in cases {
            let message = result.expect_err("refused").to_string();
            assert!(message.contains(expected), "expected {expected:?} in {message:?}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
