//! `haven instance-shim`, the first process of every instance's group, on
//! real processes: an instance and everything it started die with the
//! agent, and otherwise the shim is transparent (exit codes pass through,
//! a missing program is 127).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const HAVEN: &str = env!("CARGO_BIN_EXE_haven");

/// Running and not a zombie (an orphan's zombie may wait for a reaper).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn an_instance_and_its_children_die_with_the_agent() {
    let dir = std::env::temp_dir().join(format!("haven-shim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (service_pid, child_pid) = (dir.join("service.pid"), dir.join("child.pid"));
    // The outer shell plays the agent: it starts the shim with its own pid and waits.
    let service = format!("echo $$ > {}; sleep 300 & echo $! > {}; wait", service_pid.display(), child_pid.display());
    let agent_script = format!("{HAVEN} instance-shim --parent $$ -- sh -c '{service}' & wait");
    let mut agent = Command::new("sh").arg("-c").arg(agent_script).spawn().expect("sh starts");

    let deadline = Instant::now() + Duration::from_secs(10);
    let pids = loop {
        if let (Some(service), Some(child)) = (read_pid(&service_pid), read_pid(&child_pid)) {
            break [service, child];
        }
        assert!(Instant::now() < deadline, "the service did not start under the shim");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(pids.iter().all(|&pid| alive(pid)), "running before the agent dies");

    agent.kill().expect("SIGKILL the agent");
    agent.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&pid| alive(pid)) {
        assert!(Instant::now() < deadline, "{pids:?} outlived their agent");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exit_codes_pass_through_and_a_missing_program_is_127() {
    // Run through a shell so that the shim's parent is the pid it is given.
    let code = |service: &str| {
        let script = format!("{HAVEN} instance-shim --parent $$ -- {service}");
        Command::new("sh").arg("-c").arg(script).output().expect("sh runs")
    };
    assert_eq!(code("sh -c 'exit 7'").status.code(), Some(7));
    let missing = code("/no/such/program");
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot start /no/such/program"));
    let orphan = Command::new(HAVEN).args(["instance-shim", "--parent", "1", "--", "true"]).output().unwrap();
    assert_eq!(orphan.status.code(), Some(1), "started by someone else than the agent it names: refused");
}
