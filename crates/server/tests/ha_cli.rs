//! `haven service|node|events|apply` as a user meets them without a
//! cluster: help with examples, a services file refused before anything is
//! sent (naming the line and field), and errors that say what to do.

use std::process::{Command, Output};

fn haven(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_haven")).args(args).output().expect("haven runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_shows_examples_of_every_ha_command() {
    for (args, example) in [
        (&["service", "--help"][..], "haven service add --name db"),
        (&["node", "--help"][..], "haven node drain n4"),
        (&["events", "--help"][..], "haven events --follow"),
        (&["apply", "--help"][..], "[[service]]"),
    ] {
        let output = haven(args);
        assert!(output.status.success(), "{args:?}");
        assert!(text(&output.stdout).contains(example), "{args:?}: {}", text(&output.stdout));
    }
}

#[test]
fn a_bad_services_file_is_refused_before_anything_is_sent() {
    let dir = std::env::temp_dir().join(format!("haven-ha-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("services.toml");
    std::fs::write(&file, "[[service]]\nname = \"db\"\ncomand = \"/usr/bin/db\"\n").unwrap();
    // Port 1 answers nothing: an error about it would mean a request was sent.
    let output = haven(&["apply", file.to_str().unwrap(), "--endpoints", "http://127.0.0.1:1"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("services.toml") && stderr.contains("comand"), "{stderr}");
    assert!(!stderr.contains("no endpoint answered"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_a_cluster_the_error_names_the_endpoint_and_what_to_do() {
    let output = haven(&["node", "ls", "--endpoints", "http://127.0.0.1:1", "--timeout-ms", "500"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("http://127.0.0.1:1") && stderr.contains("haven up"), "{stderr}");
    let output = haven(&["service", "add", "--name", "db", "--command", "/x", "--check", "ping"]);
    assert!(text(&output.stderr).contains("tcp:127.0.0.1:5432"), "a bad --check says how to write one");
}
