//! Endpoint failover and the retry policy, against tiny local HTTP servers
//! that refuse, stay silent or answer 503: reads go on to the next
//! endpoint; writes do so only when the failed attempt surely changed
//! nothing, and otherwise report that their outcome is unknown.

use haven_client::{Client, ClientConfig, ClientError, PutRequest, RangeRequest};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads the request and never answers.
    Silent,
    /// Answers `503` with etcd's "no leader" body.
    Unavailable,
    /// Answers 200 with a minimal etcd answer.
    Healthy,
}

async fn serve(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 << 10];
                let _ = socket.read(&mut request).await;
                let (status, body) = match behaviour {
                    Behaviour::Silent => return tokio::time::sleep(Duration::from_secs(60)).await,
                    Behaviour::Unavailable => (
                        "503 Service Unavailable",
                        r#"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#,
                    ),
                    Behaviour::Healthy => ("200 OK", r#"{"header":{"revision":"7"}}"#),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

fn client(endpoints: Vec<String>) -> Client {
    Client::new(ClientConfig { endpoints, request_timeout: Duration::from_millis(300), ..ClientConfig::default() })
        .unwrap()
}

fn put() -> PutRequest {
    PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..PutRequest::default() }
}

#[tokio::test]
async fn reads_fail_over_past_a_silent_member_and_remember_the_good_one() {
    let (silent, healthy) = (serve(Behaviour::Silent).await, serve(Behaviour::Healthy).await);
    let client = client(vec![silent, healthy.clone()]);
    let answer = client.range(&RangeRequest { key: b"k".to_vec(), ..Default::default() }).await.unwrap();
    assert_eq!(answer.header.revision, 7);
    assert_eq!(client.preferred_endpoint(), healthy);
}

#[tokio::test]
async fn a_write_that_timed_out_is_not_resent() {
    let (silent, healthy) = (serve(Behaviour::Silent).await, serve(Behaviour::Healthy).await);
    let error = client(vec![silent.clone(), healthy]).put(&put()).await.unwrap_err();
    match &error {
        ClientError::OutcomeUnknown { endpoint, timeout_ms } => assert_eq!((endpoint, *timeout_ms), (&silent, 300)),
        other => panic!("expected an unknown outcome, got {other:?}"),
    }
    assert!(error.to_string().contains("may or may not have been applied"), "{error}");
}

#[tokio::test]
async fn writes_fail_over_past_refusals_and_503() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (unavailable, healthy) = (serve(Behaviour::Unavailable).await, serve(Behaviour::Healthy).await);
    let client = client(vec![closed, unavailable, healthy.clone()]);
    assert_eq!(client.put(&put()).await.unwrap().header.revision, 7);
    assert_eq!(client.preferred_endpoint(), healthy);
}

#[tokio::test]
async fn when_nobody_answers_every_endpoint_is_named() {
    let (silent, unavailable) = (serve(Behaviour::Silent).await, serve(Behaviour::Unavailable).await);
    let client = Client::new(ClientConfig {
        endpoints: vec![unavailable.clone(), silent.clone()],
        request_timeout: Duration::from_millis(100),
        rounds_max: 2,
        ..ClientConfig::default()
    })
    .unwrap();
    let error = client.range(&RangeRequest::default()).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&format!("{unavailable} (HTTP 503: etcdserver: no leader)")), "{text}");
    assert!(text.contains(&format!("{silent} (no answer within 100 ms)")), "{text}");
    assert!(text.contains("haven up"), "{text}");
}
