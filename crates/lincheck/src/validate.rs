//! Well-formedness of a history, checked before anything else.
//!
//! In: the history as recorded.
//! Out: `Err(HistoryError)` if the recorder broke the rules (a response before
//! its call, an output of the wrong kind, a client with two calls running,
//! an expiry that does not delete exactly its distinct keys),
//! `Ok(Some(violation))` if a response has an impossible shape (a range with
//! keys out of order or outside the range), `Ok(None)` otherwise.

use crate::describe;
use crate::history::{Input, KeyRange, KeyValue, OpId, Operation, Output, TxnOutcome, TxnWrite};
use crate::verdict::{HistoryError, Partition, Violation};
use std::collections::{BTreeMap, BTreeSet};

pub fn validate(history: &[Operation]) -> Result<Option<Violation>, HistoryError> {
    let mut running: BTreeMap<u64, (OpId, u64)> = BTreeMap::new();
    let mut by_call: Vec<OpId> = (0..history.len()).collect();
    by_call.sort_by_key(|&id| history[id].call_ns);
    // An expiry has no client, so it keeps nobody busy.
    for id in by_call.into_iter().filter(|&id| history[id].input.has_client()) {
        let op = &history[id];
        if let Some(&(previous, return_ns)) = running.get(&op.client)
            && op.call_ns < return_ns
        {
            return Err(HistoryError::ClientOverlap { op: id, previous, client: op.client, call_ns: op.call_ns });
        }
        // A call that never returned does not keep its client busy: the client gave up on it.
        if let Some(response) = &op.response {
            running.insert(op.client, (id, response.return_ns));
        }
    }
    let mut shape = None;
    for (id, op) in history.iter().enumerate() {
        let Some(response) = &op.response else { continue };
        if response.return_ns < op.call_ns {
            return Err(HistoryError::ReturnBeforeCall { op: id, call_ns: op.call_ns, return_ns: response.return_ns });
        }
        check_kind(id, &op.input, &response.output)?;
        check_expiry(id, &op.input, &response.output)?;
        if shape.is_none() {
            shape = check_shape(id, op, &response.output);
        }
    }
    Ok(shape)
}

fn check_kind(op: OpId, input: &Input, output: &Output) -> Result<(), HistoryError> {
    // (the input's name, the name of the output that answers it)
    let (input_name, answer_name) = match input {
        Input::Get { .. } => ("get", "get"),
        Input::Put { .. } => ("put", "put"),
        Input::Delete { .. } => ("delete", "delete"),
        Input::Range { .. } => ("range", "range"),
        Input::Txn { .. } => ("txn", "txn"),
        Input::Expire { .. } => ("expiry", "delete"),
    };
    let output_name = match output {
        Output::Get { .. } => "get",
        Output::Put { .. } => "put",
        Output::Delete { .. } => "delete",
        Output::Range { .. } => "range",
        Output::Txn { .. } => "txn",
    };
    let txn_branch_matches = match (input, output) {
        (Input::Txn { on_success, .. }, Output::Txn { outcome, .. }) => matches!(
            (on_success, outcome),
            (_, TxnOutcome::Got { .. })
                | (TxnWrite::Put { .. }, TxnOutcome::Put)
                | (TxnWrite::Delete, TxnOutcome::Deleted { .. })
        ),
        _ => true,
    };
    if answer_name != output_name {
        return Err(HistoryError::OutputKind { op, input: input_name, output: output_name });
    }
    if !txn_branch_matches {
        return Err(HistoryError::OutputKind { op, input: input_name, output: "txn outcome of the other write kind" });
    }
    Ok(())
}

/// An answered expiry lists distinct keys, at least one, and deleted each.
fn check_expiry(op: OpId, input: &Input, output: &Output) -> Result<(), HistoryError> {
    let (Input::Expire { keys }, Output::Delete { deleted, .. }) = (input, output) else { return Ok(()) };
    let distinct = keys.iter().collect::<BTreeSet<_>>().len();
    if keys.is_empty() || distinct != keys.len() || *deleted != keys.len() as u64 {
        return Err(HistoryError::Expiry { op, keys: keys.len(), distinct, deleted: *deleted });
    }
    Ok(())
}

/// Responses that no store state could produce, whatever the order of operations.
fn check_shape(id: OpId, op: &Operation, output: &Output) -> Option<Violation> {
    let problem = match (&op.input, output) {
        (Input::Range { range }, Output::Range { kvs, .. }) => range_problem(range, kvs),
        (Input::Get { key }, Output::Get { kv: Some(kv), .. })
        | (Input::Put { key, prev_kv: true, .. }, Output::Put { prev: Some(kv), .. })
        | (Input::Txn { key, .. }, Output::Txn { outcome: TxnOutcome::Got { kv: Some(kv) }, .. })
            if kv.key != *key =>
        {
            Some(format!("it returned key {}", describe::bytes(&kv.key)))
        }
        (Input::Delete { .. }, Output::Delete { deleted, .. }) if *deleted > 1 => {
            Some("a single-key delete removed several keys".into())
        }
        _ => None,
    }?;
    let explanation = format!("{}: {problem}", describe::op(id, op));
    Some(Violation { partition: Partition::Response(id), ops: vec![id], explanation })
}

fn range_problem(range: &KeyRange, kvs: &[KeyValue]) -> Option<String> {
    if let Some(kv) = kvs.iter().find(|kv| !range.contains(&kv.key)) {
        return Some(format!("it returned key {}, which is outside the range", describe::bytes(&kv.key)));
    }
    if let Some(pair) = kvs.windows(2).find(|pair| pair[0].key >= pair[1].key) {
        let (a, b) = (describe::bytes(&pair[0].key), describe::bytes(&pair[1].key));
        return Some(format!("its keys are not strictly ascending ({a} then {b})"));
    }
    None
}
