//! A process frozen with SIGSTOP for as long as a value lives.
//!
//! In: a pid. Out: a guard that sends SIGCONT when dropped — on success,
//! on error and on unwinding alike — so a benchmark never leaves a member
//! frozen behind it.

use crate::error::ClientError;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[derive(Debug)]
pub struct Stopped {
    pid: i32,
}

impl Stopped {
    pub fn new(pid: i32) -> Result<Stopped, ClientError> {
        kill(Pid::from_raw(pid), Signal::SIGSTOP)
            .map_err(|e| ClientError::Bench(format!("cannot SIGSTOP pid {pid}: {e}")))?;
        Ok(Stopped { pid })
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        resume(self.pid);
    }
}

/// SIGCONT, ignoring a process that is gone already.
pub fn resume(pid: i32) {
    if let Err(error) = kill(Pid::from_raw(pid), Signal::SIGCONT)
        && error != nix::errno::Errno::ESRCH
    {
        eprintln!("warning: could not SIGCONT pid {pid}: {error}; resume it by hand with `kill -CONT {pid}`");
    }
}

/// Refuses pids that cannot be a cluster member we may freeze.
pub fn check_pid(pid: i32) -> Result<(), ClientError> {
    if pid <= 1 || u32::try_from(pid).ok() == Some(std::process::id()) {
        return Err(ClientError::Bench(format!("pid {pid} cannot be a member: give the pids of the member processes")));
    }
    kill(Pid::from_raw(pid), None)
        .map_err(|e| ClientError::Bench(format!("pid {pid} cannot be signalled ({e}): is the member running?")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_guard_resumes_the_process() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        check_pid(pid).unwrap();
        let state =
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap().split(' ').nth(2).unwrap().to_owned();
        {
            let _stopped = Stopped::new(pid).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(state(), "T", "the child is stopped while the guard lives");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(state(), "S", "the child runs again once the guard is gone");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn refuses_init_ourselves_and_the_dead() {
        assert!(check_pid(1).is_err());
        assert!(check_pid(i32::try_from(std::process::id()).unwrap()).is_err());
        assert!(check_pid(i32::MAX).unwrap_err().to_string().contains("is the member running"));
    }
}
