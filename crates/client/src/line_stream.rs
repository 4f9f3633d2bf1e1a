//! A streamed answer of newline-delimited JSON (etcd's `/v3/watch`,
//! Haven's `/v1/events?follow=true`), read one line at a time.
//!
//! In: the open response, the endpoint and path it came from (for errors)
//! and a bound on a line's length. Out: each non-blank line's bytes as it
//! completes, `None` once the server has closed the stream; a `Protocol`
//! error for a line over the bound, `Unreachable` if the connection breaks.

use crate::error::{AttemptFailure, ClientError};
use crate::lines::LineBuffer;

#[derive(Debug)]
pub(crate) struct LineStream {
    endpoint: String,
    path: &'static str,
    response: reqwest::Response,
    lines: LineBuffer,
    ended: bool,
}

impl LineStream {
    pub(crate) fn new(
        endpoint: String,
        path: &'static str,
        response: reqwest::Response,
        line_bytes_max: usize,
    ) -> Self {
        LineStream { endpoint, path, response, lines: LineBuffer::new(line_bytes_max), ended: false }
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A malformed stream, named by its endpoint and path.
    pub(crate) fn protocol(&self, detail: &str) -> ClientError {
        ClientError::Protocol { endpoint: self.endpoint.clone(), detail: format!("{}: {detail}", self.path) }
    }

    /// The next line; `None` once the stream has ended and nothing is left.
    pub(crate) async fn next_line(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            let line = self
                .lines
                .next_line()
                .map_err(|e| self.protocol(&format!("a line over {} bytes", e.line_bytes_max)))?;
            if line.is_some() {
                return Ok(line);
            }
            if self.ended {
                return Ok(self.lines.finish());
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.lines.push(&chunk),
                Ok(None) => self.ended = true,
                Err(error) => {
                    let cause = crate::client::transport_cause(&error, std::time::Duration::ZERO);
                    let attempt = AttemptFailure { endpoint: self.endpoint.clone(), cause };
                    return Err(ClientError::Unreachable { attempts: vec![attempt] });
                }
            }
        }
    }
}
