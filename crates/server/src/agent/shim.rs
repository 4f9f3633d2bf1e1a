//! `haven instance-shim`: the first process of every instance's group, so
//! that an instance never outlives its agent.
//!
//! In: the agent's pid and the service's command line (environment, working
//! directory and output come from the agent as for any child). Out: the
//! service running as its child in the same process group; the shim exits
//! with the service's exit code, or dies by SIGKILL when a signal ended the
//! service (so the agent still reports "killed by a signal").
//!
//! Why: a singleton's safety rests on its agent killing it before the lease
//! can expire at the stations. An agent that crashes (a bug, the OOM killer,
//! an operator's `kill -9`) fences nothing, the stations expire its lease
//! and start a replacement, and the old instance would keep serving beside
//! it. The kernel tells the shim when its parent dies (`PR_SET_PDEATHSIG`),
//! and the shim then kills its whole group: the instance and everything it
//! started. (Under systemd, `KillMode=control-group` does the same for the
//! agent's unit; the shim makes it true without it.)
//!
//! Signals: the agent stops an instance by signalling its group, which
//! reaches the shim too. The shim takes SIGTERM, SIGINT, SIGHUP and SIGQUIT
//! without dying (the service decides what they mean) and waits for the
//! service; SIGKILL ends both. Parent death arrives as SIGUSR2, which the
//! agent never sends.

use anyhow::{Context as _, Result, bail};
use nix::sys::prctl;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgrp, getpid, getppid, setpgid};
use tokio::signal::unix::{SignalKind, signal};

#[derive(clap::Args, Debug)]
pub struct ShimArgs {
    /// The agent's pid: if the shim's parent is already another process,
    /// the agent died while starting it, and the service must not start.
    #[arg(long)]
    pub parent: i32,
    /// The service's program and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

/// Runs the service under the shim; returns only on error before it started.
pub fn run(args: ShimArgs) -> Result<()> {
    prctl::set_pdeathsig(Signal::SIGUSR2).context("asking the kernel for the agent's death (PR_SET_PDEATHSIG)")?;
    if getppid() != Pid::from_raw(args.parent) {
        bail!("the agent (pid {}) exited before the instance started", args.parent);
    }
    // The agent starts the shim as a group leader already; being sure keeps
    // the kill below from reaching whatever group started it otherwise.
    setpgid(Pid::from_raw(0), Pid::from_raw(0)).context("leading a process group of its own")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the shim")?;
    let code = runtime.block_on(supervise(&args.command))?;
    match code {
        Some(code) => std::process::exit(code),
        None => {
            // Signalled: die by a signal too, so that the agent reports it as such.
            let _ = kill(getpid(), Signal::SIGKILL);
            std::process::exit(137) // not reached: SIGKILL cannot be caught
        }
    }
}

/// Starts the service and waits for it, or for the agent's death.
async fn supervise(command: &[String]) -> Result<Option<i32>> {
    let mut parent_died = signal(SignalKind::user_defined2()).context("listening for the agent's death")?;
    // Registered before the service starts: from now on these no longer end the shim.
    let mut ignored = Vec::new();
    for kind in [SignalKind::terminate(), SignalKind::interrupt(), SignalKind::hangup(), SignalKind::quit()] {
        ignored.push(signal(kind).context("taking the stop signals")?);
    }
    let (program, args) = command.split_first().expect("clap requires the command");
    let mut child = match tokio::process::Command::new(program).args(args).spawn() {
        Ok(child) => child,
        Err(e) => {
            // The instance's log gets the reason; 127 is what a shell answers for a missing program.
            eprintln!("haven instance-shim: cannot start {program}: {e}");
            return Ok(Some(127));
        }
    };
    tokio::select! {
        status = child.wait() => Ok(status.context("waiting for the service")?.code()),
        _ = parent_died.recv() => {
            // The agent is gone: nobody is left to fence this instance but us.
            let _ = killpg(getpgrp(), Signal::SIGKILL);
            std::process::exit(137) // not reached: the shim is in the group it killed
        }
    }
}
