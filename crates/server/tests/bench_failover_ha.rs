//! `haven bench failover-ha --trials 1`, as a user runs it: one machine
//! crash and one frozen machine on real processes. It must exit 0 (no
//! error, no SAFETY failure, nothing left running), print the service's
//! start time, a progress line per trial with its milliseconds and the
//! node that took over, and the final table with both fault kinds.

use std::process::Command;

/// The number in `line` just before the word `unit` (as in `912.3 ms`).
fn number_before(line: &str, unit: &str) -> Option<f64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == unit)?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

#[test]
fn one_crash_and_one_freeze_fail_over_and_the_table_has_both() {
    let dir = std::env::temp_dir().join(format!("haven-bench-failover-ha-test-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_haven"))
        .args(["bench", "failover-ha", "--trials", "1", "--dir"])
        .arg(&dir)
        .output()
        .expect("haven bench failover-ha runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "exit {:?}\n{stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    assert!(!stdout.contains("SAFETY"), "{stdout}");
    for kind in ["crash (SIGKILL)", "freeze (SIGSTOP)"] {
        let trial = stdout.lines().find(|l| l.starts_with(kind) && l.contains("trial   1/1"));
        let trial = trial.unwrap_or_else(|| panic!("no trial line for {kind}:\n{stdout}"));
        let ms = number_before(trial, "ms").unwrap_or_else(|| panic!("no milliseconds in {trial:?}"));
        assert!(ms > 0.0 && ms < 20_000.0, "{trial}");
        assert!(trial.contains("-> node"), "{trial}");
        let row = stdout.lines().find(|l| l.starts_with(kind) && !l.contains("trial"));
        let row = row.unwrap_or_else(|| panic!("no table row for {kind}:\n{stdout}"));
        let words: Vec<&str> = row[kind.len()..].split_whitespace().collect();
        assert_eq!(words.first(), Some(&"1"), "one trial in {row:?}");
        assert!(words.len() >= 5, "trials, p50, p99, max and a verdict in {row:?}");
        let figures: Vec<f64> = words[1..4].iter().filter_map(|w| w.parse().ok()).collect();
        assert_eq!(figures.len(), 3, "p50, p99 and max in {row:?}");
        assert!(figures.iter().all(|f| (ms - f).abs() < 0.06), "one trial: every figure is its time, {row:?}");
        assert!(["met", "MISSED"].contains(&words[4]), "a verdict in {row:?}");
    }
    for line in ["web's own start", "lease TTL 900 ms", "target: p99 <= 1000 ms", "0 process groups left"] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
