//! Streamed answers (`/v1/events?follow=true`, `/v3/watch`) read line by
//! line from a tiny local HTTP server that sends its lines in awkward
//! chunks: a line split across writes, a blank line, a last line with no
//! newline, and an error line in the middle of a stream.

use haven_client::{Client, ClientConfig, ClientError};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Serves one streamed answer, written as the given chunks with a pause
/// between them, then closes the connection.
async fn serve(chunks: Vec<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 64 << 10];
        let _ = socket.read(&mut request).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        for chunk in chunks {
            socket.write_all(chunk.as_bytes()).await.unwrap();
            socket.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    url
}

fn client(url: String) -> Client {
    Client::new(ClientConfig { endpoints: vec![url], ..ClientConfig::default() }).unwrap()
}

#[tokio::test]
async fn followed_events_arrive_whole_however_the_lines_are_cut() {
    let url = serve(vec![
        r#"{"at_ms":1,"text":"n1 joi"#,
        "ned\",\"cause\":\"n1 joined\"}\n\n",
        r#"{"at_ms":2,"service":"db","text":"started db on n1","cause":"tick"}"#,
    ])
    .await;
    let mut stream = client(url).ha_follow_events(None).await.unwrap();
    let first = stream.next().await.unwrap().expect("the first decision");
    assert_eq!((first.at_ms, first.text.as_str(), first.cause.as_str()), (1, "n1 joined", "n1 joined"));
    let last = stream.next().await.unwrap().expect("the last line, with no newline");
    assert_eq!((last.service.as_deref(), last.text.as_str()), (Some("db"), "started db on n1"));
    assert!(stream.next().await.unwrap().is_none(), "the station closed the stream");
}

#[tokio::test]
async fn an_error_line_ends_the_events_with_the_stations_message() {
    let url = serve(vec!["{\"error\":\"no leader\"}\n"]).await;
    let mut stream = client(url).ha_follow_events(None).await.unwrap();
    match stream.next().await {
        Err(ClientError::Api { message, .. }) => assert_eq!(message, "no leader"),
        other => panic!("expected the station's error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_watch_line_that_is_not_json_is_a_protocol_error_naming_the_path() {
    let url = serve(vec!["{\"result\":{\"header\":{\"revision\":\"3\"}}}\n", "not json\n"]).await;
    let create = haven_client::WatchCreateRequest { key: b"a".to_vec(), ..Default::default() };
    let mut watch = client(url).watch(&create).await.unwrap();
    let first = watch.next().await.unwrap().expect("the created answer");
    assert_eq!(first.header.revision, 3);
    match watch.next().await {
        Err(ClientError::Protocol { detail, .. }) => assert!(detail.starts_with("/v3/watch: "), "{detail}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}
