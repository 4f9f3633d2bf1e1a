//! Frames on a TCP link between two nodes.
//!
//! In (sending): a [`Frame`] to append to an output buffer. In (receiving):
//! an async byte stream from a peer that may be honest, broken or hostile.
//! Out: encoded bytes; or the next frame, a clean end of stream, or a typed
//! [`FrameError`] after which the connection must be closed.
//!
//! Every frame is a runtime record (version byte `WIRE_VERSION`, u32 length,
//! crc32c) whose payload is the postcard encoding of a [`Frame`]. The reader
//! checks the version on the first byte and the length on the 9-byte header,
//! so garbage or a hostile length costs at most a header's worth of reading,
//! never an allocation.

use haven_runtime::NodeId;
use haven_runtime::record::{self, Decoded, HEADER_BYTES, RecordError};
use haven_runtime::wire::{self, WIRE_VERSION, WireError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A reader keeps at most this much buffer between frames, so one large
/// frame does not pin its memory for the life of the connection.
const BUF_RETAIN_BYTES_MAX: usize = 1024 * 1024;

/// What travels in one frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame<M> {
    /// First frame on every connection: who is dialling, which message
    /// encoding it speaks, where it can be dialled back, if it says (a
    /// member that does not know the dialler yet learns its address here),
    /// and its cluster's id, 0 while it does not know it.
    Hello {
        node: NodeId,
        wire_version: u8,
        listen: Option<SocketAddr>,
        cluster: u64,
    },
    Msg(M),
}

/// Why a frame could not be sent or received.
#[derive(Debug, Error)]
pub enum FrameError {
    #[error("bad frame: {0}")]
    Record(#[from] RecordError),
    #[error("bad frame payload: {0}")]
    Wire(#[from] WireError),
    #[error("frame payload of {len} bytes exceeds frame_bytes_max {len_max}")]
    TooLarge { len: usize, len_max: u32 },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("i/o error: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof { FrameError::Truncated } else { FrameError::Io(e) }
    }
}

/// Appends the encoding of `frame` to `out` and returns its size in bytes.
/// `scratch` is a reusable buffer for the payload. On error `out` is unchanged.
pub fn encode<M: Serialize>(
    frame: &Frame<M>,
    frame_bytes_max: u32,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<usize, FrameError> {
    scratch.clear();
    wire::encode(frame, scratch)?;
    if scratch.len() > frame_bytes_max as usize {
        return Err(FrameError::TooLarge { len: scratch.len(), len_max: frame_bytes_max });
    }
    record::encode(WIRE_VERSION, scratch, out);
    Ok(HEADER_BYTES + scratch.len())
}

/// Reads frames from one connection.
#[derive(Debug)]
pub struct FrameReader<R> {
    reader: R,
    buf: Vec<u8>,
    frame_bytes_max: u32,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(reader: R, frame_bytes_max: u32) -> Self {
        FrameReader { reader, buf: Vec::new(), frame_bytes_max }
    }

    /// The next frame and its size in bytes, or `None` if the peer closed the
    /// connection cleanly between two frames.
    pub async fn next<M: DeserializeOwned>(&mut self) -> Result<Option<(Frame<M>, usize)>, FrameError> {
        let versions = [WIRE_VERSION];
        self.buf.resize(HEADER_BYTES, 0);
        if self.reader.read(&mut self.buf[..1]).await? == 0 {
            return Ok(None);
        }
        // Refuse a foreign version or garbage before waiting for a header.
        record::decode(&self.buf[..1], &versions, self.frame_bytes_max)?;
        self.reader.read_exact(&mut self.buf[1..HEADER_BYTES]).await?;
        let len_total = match record::decode(&self.buf, &versions, self.frame_bytes_max)? {
            Decoded::Incomplete { len_total } => len_total,
            Decoded::Record { len_total, .. } => len_total,
        };
        // The length was checked against frame_bytes_max by decode above.
        self.buf.resize(len_total, 0);
        self.reader.read_exact(&mut self.buf[HEADER_BYTES..]).await?;
        let frame = match record::decode(&self.buf, &versions, self.frame_bytes_max)? {
            Decoded::Record { payload, .. } => wire::decode(payload)?,
            Decoded::Incomplete { .. } => unreachable!("a buffer of len_total bytes holds the whole record"),
        };
        if self.buf.capacity() > BUF_RETAIN_BYTES_MAX {
            self.buf = Vec::new();
        }
        Ok(Some((frame, len_total)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Msg = (u32, String);

    fn encoded(frames: &[Frame<Msg>]) -> Vec<u8> {
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        for frame in frames {
            encode(frame, 1 << 20, &mut scratch, &mut out).unwrap();
        }
        out
    }

    async fn read_all(bytes: &[u8], frame_bytes_max: u32) -> (Vec<Frame<Msg>>, Option<FrameError>) {
        let mut reader = FrameReader::new(bytes, frame_bytes_max);
        let mut frames = Vec::new();
        loop {
            match reader.next::<Msg>().await {
                Ok(Some((frame, _))) => frames.push(frame),
                Ok(None) => return (frames, None),
                Err(e) => return (frames, Some(e)),
            }
        }
    }

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let frames = vec![
            Frame::Hello { node: NodeId(3), wire_version: WIRE_VERSION, listen: None, cluster: 0 },
            Frame::Msg((7, "x".into())),
        ];
        let (read, err) = read_all(&encoded(&frames), 1 << 20).await;
        assert_eq!(read, frames);
        assert!(err.is_none(), "{err:?}");
    }

    #[tokio::test]
    async fn sizes_are_reported() {
        let bytes = encoded(&[Frame::Msg((1, "abc".into()))]);
        let mut reader = FrameReader::new(&bytes[..], 1024);
        let (_, len) = reader.next::<Msg>().await.unwrap().unwrap();
        assert_eq!(len, bytes.len());
    }

    #[tokio::test]
    async fn a_cut_frame_is_truncated() {
        let bytes = encoded(&[Frame::Msg((1, "hello".into()))]);
        for cut in [1, HEADER_BYTES - 1, HEADER_BYTES, bytes.len() - 1] {
            let (read, err) = read_all(&bytes[..cut], 1024).await;
            assert!(read.is_empty());
            assert!(matches!(err, Some(FrameError::Truncated)), "cut at {cut}: {err:?}");
        }
    }

    #[tokio::test]
    async fn hostile_headers_and_payloads_are_errors() {
        let good = encoded(&[Frame::Msg((1, "hello".into()))]);
        let mut foreign = good.clone();
        foreign[0] = WIRE_VERSION + 1;
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let huge = [WIRE_VERSION, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0];
        let mut undecodable = Vec::new();
        record::encode(WIRE_VERSION, &[9, 9, 9], &mut undecodable);
        type Expected = fn(&FrameError) -> bool;
        let cases: [(&[u8], Expected); 4] = [
            (&foreign, |e| matches!(e, FrameError::Record(RecordError::UnknownVersion { .. }))),
            (&flipped, |e| matches!(e, FrameError::Record(RecordError::Checksum { .. }))),
            (&huge, |e| matches!(e, FrameError::Record(RecordError::TooLarge { .. }))),
            (&undecodable, |e| matches!(e, FrameError::Wire(_))),
        ];
        for (bytes, expected) in cases {
            let (read, err) = read_all(bytes, 1024).await;
            assert!(read.is_empty());
            let err = err.expect("an error");
            assert!(expected(&err), "unexpected error {err:?}");
        }
    }

    #[test]
    fn oversized_messages_are_not_encoded() {
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        let err = encode(&Frame::Msg((1, "y".repeat(2000))), 1024, &mut scratch, &mut out).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len_max: 1024, .. }), "{err:?}");
        assert!(out.is_empty());
    }
}
