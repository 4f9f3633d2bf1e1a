//! The line a `haven node` prints on stdout for each election event.
//!
//! In: an [`ElectionEvent`] of node `n` (format), or a line of text (parse).
//! Out: `event node=1 kind=leader leader=2`-style lines, stable so that the
//! demo, the tests and an operator's scripts can follow a node's view.
//! Diagnostics go to stderr through `tracing`; stdout carries only these.

use haven_basics::ElectionEvent;
use haven_runtime::NodeId;
use std::collections::BTreeMap;

pub fn format(node: NodeId, event: &ElectionEvent) -> String {
    let node = node.0;
    match event {
        ElectionEvent::Ready { epoch } => format!("event node={node} kind=ready epoch={epoch}"),
        ElectionEvent::Suspect { node: peer } => format!("event node={node} kind=suspect peer={}", peer.0),
        ElectionEvent::Trust { node: peer, epoch } => {
            format!("event node={node} kind=trust peer={} epoch={epoch}", peer.0)
        }
        ElectionEvent::Leader { leader } => format!("event node={node} kind=leader leader={}", leader.0),
        ElectionEvent::Announced { from, epoch } => {
            format!("event node={node} kind=announced from={} epoch={epoch}", from.0)
        }
        ElectionEvent::DiskError { step, error } => {
            format!("event node={node} kind=disk_error step={step:?} error={:?}", error.to_string())
        }
        ElectionEvent::Fatal { reason } => format!("event node={node} kind=fatal reason={reason:?}"),
    }
}

/// A parsed event line: its `kind` and its other `key=value` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLine {
    pub node: u64,
    pub kind: String,
    pub fields: BTreeMap<String, String>,
}

impl EventLine {
    /// Parses a line printed by [`format`]; any other line gives `None`.
    pub fn parse(line: &str) -> Option<EventLine> {
        let rest = line.strip_prefix("event ")?;
        let mut fields = BTreeMap::new();
        for pair in split_fields(rest) {
            let (key, value) = pair.split_once('=')?;
            fields.insert(key.to_owned(), value.trim_matches('"').to_owned());
        }
        let node = fields.remove("node")?.parse().ok()?;
        let kind = fields.remove("kind")?;
        Some(EventLine { node, kind, fields })
    }

    pub fn number(&self, key: &str) -> Option<u64> {
        self.fields.get(key)?.parse().ok()
    }
}

/// Splits on spaces outside double quotes (values of text fields are quoted).
fn split_fields(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_lines_round_trip() {
        let line = format(NodeId(3), &ElectionEvent::Leader { leader: NodeId(1) });
        assert_eq!(line, "event node=3 kind=leader leader=1");
        let parsed = EventLine::parse(&line).unwrap();
        assert_eq!((parsed.node, parsed.kind.as_str(), parsed.number("leader")), (3, "leader", Some(1)));
        assert_eq!(EventLine::parse("2026-11-21 INFO something"), None);
        let error = ElectionEvent::Fatal { reason: "disk said \"no\" twice".into() };
        let parsed = EventLine::parse(&format(NodeId(2), &error)).unwrap();
        assert_eq!(parsed.kind, "fatal");
        assert!(parsed.fields["reason"].contains("twice"));
    }
}
