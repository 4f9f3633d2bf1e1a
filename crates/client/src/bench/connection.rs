//! One HTTP/1.1 connection of `haven bench kv`, opened once and reused.
//!
//! In: a normalised endpoint (`http://host:port`), a path and a JSON body
//! per request. Out: each answer's status and body, or why there is none.
//! A connection that failed, or whose request was abandoned, is closed; the
//! next request opens a new one.
//!
//! Why not the CLI's pooled client: the benchmark client shares the
//! machine's cores with the cluster it measures, so whatever it spends per
//! request is taken from the servers. This path parses no URL, looks up no
//! pool and arms no timer of its own per request (the caller's timeout is
//! the only one), which made the client about half as costly per request.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::StatusCode;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request body of the benchmark, sent as is.
type Body = Full<Bytes>;

#[derive(Debug)]
pub(crate) struct BenchConnection {
    /// `host:port`: what is dialled and what the Host header names.
    authority: String,
    sender: Option<SendRequest<Body>>,
}

impl BenchConnection {
    pub(crate) fn new(endpoint: &str) -> BenchConnection {
        let authority = endpoint.strip_prefix("http://").unwrap_or(endpoint).trim_end_matches('/').to_owned();
        BenchConnection { authority, sender: None }
    }

    /// POSTs `body` as JSON to `path` and reads the whole answer. On any
    /// error the connection is closed, so the next request starts clean.
    pub(crate) async fn post(&mut self, path: &'static str, body: String) -> Result<(StatusCode, Bytes), String> {
        let result = self.exchange(path, body).await;
        if result.is_err() {
            self.close();
        }
        result
    }

    /// Drops the connection, e.g. after the caller abandoned a request on a
    /// timeout: its answer may still arrive and must not be read as the
    /// next request's.
    pub(crate) fn close(&mut self) {
        self.sender = None;
    }

    async fn exchange(&mut self, path: &'static str, body: String) -> Result<(StatusCode, Bytes), String> {
        let request = hyper::Request::post(path)
            .header(HOST, self.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("building the request: {e}"))?;
        let sender = self.open().await?;
        sender.ready().await.map_err(|e| format!("connection lost: {e}"))?;
        let response = sender.send_request(request).await.map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| format!("reading the answer: {e}"))?;
        Ok((status, body.to_bytes()))
    }

    async fn open(&mut self) -> Result<&mut SendRequest<Body>, String> {
        if let Some(sender) = self.sender.take().filter(|s| !s.is_closed()) {
            return Ok(self.sender.insert(sender));
        }
        let authority = &self.authority;
        let stream = TcpStream::connect(authority).await.map_err(|e| format!("cannot connect to {authority}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("setting TCP_NODELAY on {authority}: {e}"))?;
        let (sender, connection) = http1::handshake::<_, Body>(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {authority}: {e}"))?;
        // Drives the socket; it ends once the sender is dropped or the peer closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(self.sender.insert(sender))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

    /// A keep-alive HTTP/1.1 server that echoes each body; counts connections.
    pub(crate) async fn echo_server() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(echo(stream));
            }
        });
        (endpoint, accepted)
    }

    async fn echo(stream: TcpStream) {
        let mut stream = BufReader::new(stream);
        loop {
            let mut length = 0;
            let mut line = String::new();
            while stream.read_line(&mut line).await.unwrap_or(0) > 0 && line != "\r\n" {
                if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap();
                }
                line.clear();
            }
            if line.is_empty() {
                return;
            }
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await.unwrap();
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\n");
            stream.get_mut().write_all(&[head.as_bytes(), &body].concat()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_connection_is_reused_and_opened_again_after_it_closed() {
        let (endpoint, accepted) = echo_server().await;
        let mut connection = BenchConnection::new(&endpoint);
        for n in 0..3 {
            let (status, body) = connection.post("/v3/kv/put", format!("{{\"n\":{n}}}")).await.unwrap();
            assert_eq!((status, body), (StatusCode::OK, Bytes::from(format!("{{\"n\":{n}}}"))));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "three requests, one connection");
        connection.close();
        connection.post("/v3/kv/put", "{}".into()).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "a closed connection is opened again");
    }

    #[tokio::test]
    async fn a_refused_connection_says_where_it_dialled() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let error = BenchConnection::new(&endpoint).post("/v3/kv/put", "{}".into()).await.unwrap_err();
        assert!(error.starts_with("cannot connect to 127.0.0.1:"), "{error}");
    }
}
