//! The trace: a running hash of everything that happens, and optionally a
//! readable timeline.
//!
//! In: structured facts about each event (integers, message encodings, debug
//! text of outputs) and, when a sink is installed, the text of each line.
//! Out: the trace hash (same seed, same hash; any divergence in any event
//! changes it) and one line per event or fault handed to the sink:
//! `   1.234567s n3 recv from n1 Ping -> send n1 Pong; timer#4 at 1.334000s`.
//! With no sink installed, nothing is ever formatted.

use crate::hash::Fnv64;
use crate::time::SimTime;
use serde::Serialize;
use std::fmt::{self, Write as _};

/// Where readable trace lines go.
pub type TraceSink = Box<dyn FnMut(&str)>;

pub(crate) struct Trace {
    hash: Fnv64,
    /// Reused for every message encoding, so hashing does not allocate.
    buf: Vec<u8>,
    sink: Option<TraceSink>,
    line: String,
    /// Effects already appended to the line being built.
    effects: usize,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace").field("hash", &self.hash).field("lines", &self.sink.is_some()).finish()
    }
}

impl Trace {
    pub(crate) fn new() -> Trace {
        Trace { hash: Fnv64::default(), buf: Vec::new(), sink: None, line: String::new(), effects: 0 }
    }

    pub(crate) fn set_sink(&mut self, sink: Option<TraceSink>) {
        self.emit();
        self.sink = sink;
    }

    /// Whether lines are wanted; callers format only if so.
    pub(crate) fn on(&self) -> bool {
        self.sink.is_some()
    }

    pub(crate) fn value(&self) -> u64 {
        self.hash.value()
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.hash.u64(v);
    }

    pub(crate) fn tag(&mut self, tag: &str) {
        self.hash.slice(tag.as_bytes());
    }

    /// Hashes the postcard encoding of `value` (a marker if it has none).
    pub(crate) fn encoded<T: Serialize>(&mut self, value: &T) {
        self.buf.clear();
        match haven_runtime::wire::encode(value, &mut self.buf) {
            Ok(()) => self.hash.slice(&self.buf),
            Err(_) => self.hash.slice(b"\xffunencodable"),
        }
    }

    /// Hashes the `Debug` text of `value` without building a string.
    pub(crate) fn debug<T: fmt::Debug>(&mut self, value: &T) {
        let _ = write!(self.hash, "{value:?}");
        self.hash.u64(0);
    }

    /// Starts a new line at `now` (emitting any line still open) and returns
    /// it for the caller to write the event into.
    pub(crate) fn begin(&mut self, now: SimTime) -> &mut String {
        self.emit();
        let _ = write!(self.line, "{now:>12} ");
        &mut self.line
    }

    /// Appends the separator for one more effect of the current line.
    pub(crate) fn effect(&mut self) -> &mut String {
        self.line.push_str(if self.effects == 0 { " -> " } else { "; " });
        self.effects += 1;
        &mut self.line
    }

    /// Text added to the current line as is (e.g. a message's fate).
    pub(crate) fn note(&mut self) -> &mut String {
        &mut self.line
    }

    /// Hands the current line, if any, to the sink.
    pub(crate) fn emit(&mut self) {
        if let Some(sink) = &mut self.sink
            && !self.line.is_empty()
        {
            sink(&self.line);
        }
        self.line.clear();
        self.effects = 0;
    }
}
