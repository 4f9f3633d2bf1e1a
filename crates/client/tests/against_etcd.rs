//! The client and CLI commands (`commands/mod.rs`) against a real
//! single-member etcd 3.4 on free loopback ports.
//!
//! Skipped with an install hint when `etcd` is not on PATH, unless
//! HAVEN_REQUIRE_ETCD=1 (then a missing etcd fails the test).

mod commands;

use commands::free_port;
use std::process::{Child, Command, Stdio};

struct Etcd {
    child: Child,
    dir: std::path::PathBuf,
    client_url: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_etcd() -> Option<Etcd> {
    let required = std::env::var("HAVEN_REQUIRE_ETCD").is_ok_and(|v| v == "1");
    if Command::new("etcd").arg("--version").stdout(Stdio::null()).status().is_err() {
        assert!(!required, "HAVEN_REQUIRE_ETCD=1 but `etcd` is not on PATH: apt-get install -y etcd-server");
        eprintln!("skipping: `etcd` not found; install it with `apt-get install -y etcd-server` to run this test");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("haven-client-etcd-{}", std::process::id()));
    let (client_port, peer_port) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let child = Command::new("etcd")
        .args(["--name", "t1", "--data-dir"])
        .arg(&dir)
        .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("t1={peer_url}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting etcd");
    Some(Etcd { child, dir, client_url })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_work_against_real_etcd() {
    let Some(etcd) = start_etcd() else { return };
    commands::run_all(&etcd.client_url, "t1").await;
}
