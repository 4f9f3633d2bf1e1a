//! Reading request bodies without trusting their size.
//!
//! In: an HTTP body and a byte limit. Out: the whole body for unary calls,
//! or, for streaming calls, one JSON message at a time. Either way a body
//! or message above the limit is refused as soon as it is known to be too
//! large (from Content-Length, or after reading `limit + 1` bytes), never
//! after buffering it whole.

use crate::error::GatewayError;
use axum::body::{Body, BodyDataStream, Bytes};
use axum::http::{HeaderMap, header};
use futures::StreamExt;
use serde::de::DeserializeOwned;

/// The whole body, at most `limit` bytes.
pub(crate) async fn read_bounded(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, GatewayError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::BodyTooLarge);
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| GatewayError::Body(e.to_string()))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(GatewayError::BodyTooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.into())
}

/// A request body carrying a sequence of JSON messages (newline-delimited
/// or simply concatenated, as Go's JSON decoder reads them).
#[derive(Debug)]
pub(crate) struct MessageStream {
    body: BodyDataStream,
    buf: Vec<u8>,
    message_bytes_max: usize,
    ended: bool,
    /// Whether `buf` may hold a whole message not yet parsed.
    parse_due: bool,
}

impl MessageStream {
    pub(crate) fn new(body: Body, message_bytes_max: u64) -> MessageStream {
        MessageStream {
            body: body.into_data_stream(),
            buf: Vec::new(),
            message_bytes_max: usize::try_from(message_bytes_max).unwrap_or(usize::MAX),
            ended: false,
            parse_due: false,
        }
    }

    /// The next message; `None` once the body ended cleanly.
    pub(crate) async fn next<T: DeserializeOwned>(&mut self) -> Option<Result<T, GatewayError>> {
        loop {
            let skip = self.buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            self.buf.drain(..skip);
            if self.buf.first().is_some_and(|&b| b != b'{') {
                return Some(Err(crate::json::JsonError::new("each message must be a JSON object").into()));
            }
            if self.parse_due && !self.buf.is_empty() {
                self.parse_due = false;
                let mut it = serde_json::Deserializer::from_slice(&self.buf).into_iter::<T>();
                match it.next() {
                    Some(Ok(msg)) => {
                        let used = it.byte_offset();
                        self.buf.drain(..used);
                        self.parse_due = true;
                        return Some(Ok(msg));
                    }
                    Some(Err(e)) if !e.is_eof() => {
                        return Some(Err(crate::json::JsonError::new(format!("invalid JSON message: {e}")).into()));
                    }
                    _ => {}
                }
            }
            if self.ended {
                return (!self.buf.is_empty())
                    .then(|| Err(crate::json::JsonError::new("the body ended inside a JSON message").into()));
            }
            if self.buf.len() > self.message_bytes_max {
                return Some(Err(GatewayError::BodyTooLarge));
            }
            match self.body.next().await {
                None => (self.ended, self.parse_due) = (true, true),
                Some(Err(e)) => return Some(Err(GatewayError::Body(e.to_string()))),
                Some(Ok(chunk)) => self.push(&chunk),
            }
        }
    }

    /// Only a chunk with a closing brace can complete an object (and one
    /// with a newline may end garbage worth reporting), so big messages
    /// arriving in many chunks are not re-parsed for each.
    fn push(&mut self, chunk: &[u8]) {
        self.parse_due |= chunk.iter().any(|&b| b == b'}' || b == b'\n');
        self.buf.extend_from_slice(chunk);
    }
}
