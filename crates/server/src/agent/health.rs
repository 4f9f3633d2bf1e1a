//! One instance's health check, run by the agent on its interval.
//!
//! In: the service's [`HealthSpec`]. Out: `Healthy` the first time a check
//! passes (and again after it was unhealthy), `Unhealthy` once
//! `failure_threshold` checks in a row failed; each check bounded by its
//! timeout. HTTP is checked with a plain HTTP/1.0 GET: a 2xx status line
//! is all it needs, so no client library.

use haven_ha::{HealthCheck, HealthSpec, InstanceId, ProcessEvent};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Bytes of an HTTP answer read to find its status line.
const STATUS_LINE_BYTES_MAX: usize = 256;

/// Runs the checks of `instance` until the receiver of `events` is gone
/// (the task is also aborted when the instance ends).
pub async fn watch(instance: InstanceId, spec: HealthSpec, events: mpsc::Sender<ProcessEvent>) {
    let (interval, timeout) = (Duration::from_millis(spec.interval_ms), Duration::from_millis(spec.timeout_ms));
    let mut failures = 0u32;
    let mut healthy = false;
    loop {
        let passed = tokio::time::timeout(timeout, check(&spec.check)).await.unwrap_or(false);
        let event = if passed {
            failures = 0;
            (!healthy).then_some(ProcessEvent::Healthy { instance })
        } else {
            failures = failures.saturating_add(1);
            // Said once per run of failures, when it reaches the threshold.
            (failures == spec.failure_threshold.max(1)).then_some(ProcessEvent::Unhealthy { instance })
        };
        if let Some(event) = event {
            healthy = passed;
            if events.send(event).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

async fn check(check: &HealthCheck) -> bool {
    match check {
        // The supervisor reports the exit itself; a running process passes.
        HealthCheck::Process => true,
        HealthCheck::Exec { command, args } => {
            let status = tokio::process::Command::new(command).args(args).kill_on_drop(true).status().await;
            status.is_ok_and(|s| s.success())
        }
        HealthCheck::Tcp { addr } => TcpStream::connect(addr).await.is_ok(),
        HealthCheck::Http { url } => http_ok(url).await,
    }
}

/// `http://host:port/path` answers a 2xx status.
async fn http_ok(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let Ok(mut stream) = TcpStream::connect(authority).await else { return false };
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; STATUS_LINE_BYTES_MAX];
    let mut len = 0;
    while len < buf.len() && !buf[..len].contains(&b'\n') {
        match stream.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    let line = String::from_utf8_lossy(&buf[..len]);
    let code = line.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok());
    line.starts_with("HTTP/") && code.is_some_and(|c| (200..300).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(check: HealthCheck) -> HealthSpec {
        HealthSpec { check, interval_ms: 10, timeout_ms: 200, failure_threshold: 2 }
    }

    #[tokio::test]
    async fn a_listening_port_is_healthy_and_a_closed_one_becomes_unhealthy_after_the_threshold() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, mut rx) = mpsc::channel(8);
        let task = tokio::spawn(watch(InstanceId(1), spec(HealthCheck::Tcp { addr }), tx));
        assert_eq!(rx.recv().await, Some(ProcessEvent::Healthy { instance: InstanceId(1) }));
        drop(listener);
        assert_eq!(rx.recv().await, Some(ProcessEvent::Unhealthy { instance: InstanceId(1) }));
        task.abort();
    }

    #[tokio::test]
    async fn http_wants_a_2xx_status_line() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 512];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes()).await;
            }
        });
        assert!(http_ok(&format!("http://{addr}/health")).await);
        assert!(!http_ok(&format!("http://{addr}/health")).await);
        assert!(!http_ok("https://127.0.0.1:1/").await, "only plain http");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_exec_check_passes_on_exit_zero() {
        assert!(check(&HealthCheck::Exec { command: "true".into(), args: vec![] }).await);
        assert!(!check(&HealthCheck::Exec { command: "false".into(), args: vec![] }).await);
        assert!(!check(&HealthCheck::Exec { command: "/nonexistent/x".into(), args: vec![] }).await);
    }
}
