//! Human-readable text for keys, values and operations, used in violation
//! explanations.
//!
//! In: bytes or an [`Operation`] with its index.
//! Out: short strings such as `op #7 (client 2, put "b" -> rev 12, 10..40 ns)`,
//! or `op #9 (the store, expire "a", "b" -> deleted 2 at rev 15, 0..90 ns)`.

use crate::history::{Compare, CompareOp, CompareTarget, Input, KeyValue, Operation, Output, TxnOutcome, TxnWrite};
use std::fmt::Write;

/// Bytes as a quoted string when printable ASCII, else as hex.
pub fn bytes(data: &[u8]) -> String {
    if data.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(data))
    } else {
        data.iter().fold(String::from("0x"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

pub fn kv(kv: Option<&KeyValue>) -> String {
    match kv {
        None => "nothing".to_string(),
        Some(kv) => format!("{} (version {}, mod_revision {})", bytes(&kv.value), kv.version, kv.mod_revision),
    }
}

/// `op #id (client c, <input> -> <output>, <call>..<return> ns)`.
pub fn op(id: usize, op: &Operation) -> String {
    let ret = op.response.as_ref().map_or("timeout".to_string(), |r| r.return_ns.to_string());
    let out = op.response.as_ref().map_or("no response".to_string(), |r| output(&r.output));
    let by = if op.input.has_client() { format!("client {}", op.client) } else { "the store".to_string() };
    format!("op #{id} ({by}, {} -> {out}, {}..{ret} ns)", input(&op.input), op.call_ns)
}

fn input(input: &Input) -> String {
    match input {
        Input::Get { key } => format!("get {}", bytes(key)),
        Input::Put { key, value, .. } => format!("put {}={}", bytes(key), bytes(value)),
        Input::Delete { key } => format!("delete {}", bytes(key)),
        Input::Range { range } => {
            let end = range.end.as_deref().map_or("end".to_string(), bytes);
            format!("range [{}, {end})", bytes(&range.start))
        }
        Input::Expire { keys } => {
            let keys: Vec<String> = keys.iter().map(|k| bytes(k)).collect();
            format!("expire {}", keys.join(", "))
        }
        Input::Txn { key, compare, on_success } => {
            let then = match on_success {
                TxnWrite::Put { value } => format!("put {}", bytes(value)),
                TxnWrite::Delete => "delete".to_string(),
            };
            format!("txn on {}: if {} then {then} else get", bytes(key), self::compare(compare))
        }
    }
}

fn compare(compare: &Compare) -> String {
    let op = match compare.op {
        CompareOp::Equal => "==",
        CompareOp::NotEqual => "!=",
        CompareOp::Less => "<",
        CompareOp::Greater => ">",
    };
    match &compare.target {
        CompareTarget::Value(v) => format!("value {op} {}", bytes(v)),
        CompareTarget::Version(v) => format!("version {op} {v}"),
        CompareTarget::ModRevision(r) => format!("mod_revision {op} {r}"),
    }
}

fn output(output: &Output) -> String {
    match output {
        Output::Get { revision, kv } => format!("{} at rev {revision}", self::kv(kv.as_ref())),
        Output::Put { revision, .. } => format!("rev {revision}"),
        Output::Delete { revision, deleted } => format!("deleted {deleted} at rev {revision}"),
        Output::Range { revision, kvs } => {
            let items: Vec<String> = kvs.iter().map(|kv| format!("{}={}", bytes(&kv.key), bytes(&kv.value))).collect();
            format!("[{}] at rev {revision}", items.join(", "))
        }
        Output::Txn { revision, outcome } => match outcome {
            TxnOutcome::Put => format!("succeeded, put at rev {revision}"),
            TxnOutcome::Deleted { deleted } => format!("succeeded, deleted {deleted} at rev {revision}"),
            TxnOutcome::Got { kv } => format!("failed, got {} at rev {revision}", self::kv(kv.as_ref())),
        },
    }
}
