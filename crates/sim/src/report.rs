//! What a run ends with.
//!
//! In: the seed, trace hash, counters and outcome of a finished run.
//! Out: a [`RunReport`] whose [`RunReport::line`] is the one line a test
//! prints last, `seed=N trace_hash=<16 hex> result=ok` or
//! `... result=violation: <what broke>`; the seed replays the run.

use crate::time::SimTime;
use std::fmt;

/// A checker (or a limit) that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name, or `limit`, `scenario` or `panic`.
    pub checker: String,
    pub at: SimTime,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.checker, self.at, self.detail)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Violation(Violation),
}

/// The summary of one run. Wall-clock time is deliberately absent: this
/// crate never reads the real clock; callers that want it measure it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    pub seed: u64,
    pub trace_hash: u64,
    pub outcome: Outcome,
    /// Events processed.
    pub events: u64,
    /// Virtual time when the run stopped.
    pub sim_time: SimTime,
}

impl RunReport {
    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    /// `seed=N trace_hash=<16 lowercase hex> result=ok`, or with
    /// `result=violation: <checker> at <time>: <detail>`, always one line.
    pub fn line(&self) -> String {
        let result = match &self.outcome {
            Outcome::Ok => "ok".to_owned(),
            Outcome::Violation(v) => format!("violation: {v}").replace(['\n', '\r'], " "),
        };
        format!("seed={} trace_hash={:016x} result={result}", self.seed, self.trace_hash)
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_is_exact() {
        let mut report =
            RunReport { seed: 42, trace_hash: 0xab, outcome: Outcome::Ok, events: 3, sim_time: SimTime::ZERO };
        assert_eq!(report.line(), "seed=42 trace_hash=00000000000000ab result=ok");
        report.outcome = Outcome::Violation(Violation {
            checker: "one leader".into(),
            at: SimTime::from_millis(1_500),
            detail: "n1 and n2\nboth lead term 3".into(),
        });
        assert_eq!(
            report.line(),
            "seed=42 trace_hash=00000000000000ab result=violation: one leader at 1.500000s: n1 and n2 both lead term 3"
        );
    }
}
