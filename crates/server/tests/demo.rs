//! `haven demo`, the README's main job, as a user runs it: it must exit 0,
//! narrate the failover to the end, and leave no process behind (the demo
//! itself checks the instances' process groups and fails otherwise).

use std::process::Command;

#[test]
fn the_demo_fails_over_and_exits_zero() {
    let dir = std::env::temp_dir().join(format!("haven-demo-test-{}", std::process::id()));
    let output =
        Command::new(env!("CARGO_BIN_EXE_haven")).args(["demo", "--dir"]).arg(&dir).output().expect("haven demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "exit {:?}\n{stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    for line in ["lease expired at the stations", "decision committed", "web answers again", "0 process groups left"] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
