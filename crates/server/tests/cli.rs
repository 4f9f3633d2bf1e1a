//! The `haven` command line as a user meets it: the exact report formats of
//! `sim run` and `sim sweep`, replay on failure, and errors that say what to do.

use std::process::{Command, Output};

fn haven(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_haven")).args(args).output().expect("haven runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn last_line(output: &Output) -> String {
    stdout(output).lines().last().unwrap_or_default().to_owned()
}

#[test]
fn sim_run_ends_with_the_report_line_and_replays_exactly() {
    let first = haven(&["sim", "run", "--scenario", "election", "--seed", "42"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let line = last_line(&first);
    let hash = line.strip_prefix("seed=42 trace_hash=").and_then(|rest| rest.strip_suffix(" result=ok"));
    let hash = hash.unwrap_or_else(|| panic!("unexpected last line: {line}"));
    assert!(hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{line}");
    assert_eq!(last_line(&haven(&["sim", "run", "--scenario", "election", "--seed", "42"])), line);
    let traced = haven(&["sim", "run", "--scenario", "election", "--seed", "42", "--trace"]);
    assert_eq!(last_line(&traced), line, "--trace must not change the run");
    assert!(stdout(&traced).lines().count() > 1000, "the trace is the full timeline");
}

#[test]
fn sim_sweep_ends_with_its_summary_line() {
    let output = haven(&["sim", "sweep", "--scenario", "election", "--seeds", "0..6", "--jobs", "2"]);
    assert!(output.status.success());
    let line = last_line(&output);
    let rest = line.strip_prefix("seeds=6 failures=0 elapsed_s=").unwrap_or_else(|| panic!("{line}"));
    assert!(rest.parse::<f64>().is_ok(), "{line}");
}

#[test]
fn sim_list_names_the_election_scenario() {
    let output = haven(&["sim", "list"]);
    assert!(stdout(&output).lines().any(|l| l == "election"));
}

#[test]
fn mistakes_get_errors_that_say_what_to_do() {
    let unknown = haven(&["sim", "run", "--scenario", "nope", "--seed", "1"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("known scenarios: election"));

    let bad_peer =
        haven(&["node", "--id", "1", "--listen", "127.0.0.1:1", "--peer", "1=127.0.0.1:2", "--data-dir", "/tmp/x"]);
    assert!(!bad_peer.status.success());
    assert!(String::from_utf8_lossy(&bad_peer.stderr).contains("own --id"));

    let bad_timeout =
        haven(&["node", "--id", "1", "--listen", "127.0.0.1:1", "--data-dir", "/tmp/x", "--timeout-ms", "10"]);
    assert!(String::from_utf8_lossy(&bad_timeout.stderr).contains("timeout_initial"));

    let bad_range = haven(&["sim", "sweep", "--scenario", "election", "--seeds", "9..3"]);
    assert!(String::from_utf8_lossy(&bad_range.stderr).contains("A < B"));
}
