//! How messages become bytes.
//!
//! In: any serde type (a component's message enum). Out: postcard bytes, and
//! back. The bytes travel inside a record (see [`crate::record`]) whose
//! version byte is [`WIRE_VERSION`]; a peer speaking another version is
//! refused at the frame, before any payload is decoded.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use thiserror::Error;

/// Version of the message encoding, carried in every frame's version byte.
/// 3: a leader's answer to a relayed command carries its commit index.
pub const WIRE_VERSION: u8 = 3;

/// What a message type must be to travel between nodes and through the
/// simulator (which clones to duplicate and hashes the encoding for traces).
pub trait Message: Serialize + DeserializeOwned + Debug + Clone + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Debug + Clone + Send + 'static> Message for T {}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("message does not encode: {0}")]
    Encode(String),
    #[error("message does not decode: {0}")]
    Decode(String),
    #[error("message has {0} trailing bytes")]
    Trailing(usize),
}

/// Appends the encoding of `msg` to `out`.
pub fn encode<M: Serialize>(msg: &M, out: &mut Vec<u8>) -> Result<(), WireError> {
    let bytes = postcard::to_extend(msg, std::mem::take(out)).map_err(|e| WireError::Encode(e.to_string()))?;
    *out = bytes;
    Ok(())
}

/// Decodes exactly one message from `bytes`.
pub fn decode<M: DeserializeOwned>(bytes: &[u8]) -> Result<M, WireError> {
    let (msg, rest) = postcard::take_from_bytes(bytes).map_err(|e| WireError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Ping { seq: u64 },
        Data(Vec<u8>),
    }

    #[test]
    fn round_trip_and_trailing_bytes() {
        let mut buf = Vec::new();
        encode(&Msg::Ping { seq: 7 }, &mut buf).unwrap();
        assert_eq!(decode::<Msg>(&buf), Ok(Msg::Ping { seq: 7 }));
        buf.push(0);
        assert_eq!(decode::<Msg>(&buf), Err(WireError::Trailing(1)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&[][..], &[9], &[1, 0xff, 0xff, 0xff, 0xff, 0x0f]] {
            assert!(decode::<Msg>(bytes).is_err());
        }
    }
}
