//! Turns the clients' invoke/complete events, and the store's own deletions
//! by lease expiry, into the linearizability checker's history.
//!
//! In: store requests and responses as the simulated clients saw them, with
//! the global virtual time of each event; at the end, a replica's store.
//! Out: `haven_lincheck` operations.
//! An operation the client gave up on, or that the replica answered with an
//! error that leaves its effect unknown (`SessionExpired`), has no response:
//! it may or may not have taken effect. A put refused with `LeaseNotFound`
//! is left out: the store applied it as a no-op (it looks the lease up
//! first) and the session gives every retry that same answer.
//! Deletions no client called — a lease's expiry or revoke — come from the
//! store's history ([`expiries`]): one [`lin::Input::Expire`] per revision,
//! with its keys and revision known and its time not.

use haven_lincheck as lin;
use haven_station::ReplyError;
use haven_store::{
    CompareResult, CompareTarget, EventKind, KeyRange, KeyValue, Request, RequestOp, Response, ResponseOp, Store,
    StoreError,
};
use std::collections::{BTreeMap, BTreeSet};

/// Calls waiting for their completion, by (client, op).
#[derive(Debug, Default)]
pub struct Recorder {
    open: BTreeMap<(u64, u64), (usize, Request)>,
    ops: Vec<lin::Operation>,
    /// Calls known to have changed nothing and answered nothing checkable.
    void: BTreeSet<usize>,
}

fn kv(kv: &KeyValue) -> lin::KeyValue {
    lin::KeyValue { key: kv.key.clone(), value: kv.value.clone(), mod_revision: kv.mod_revision, version: kv.version }
}

/// The checker's view of a request; `None` for requests it has no model of.
pub fn input(request: &Request) -> Option<lin::Input> {
    Some(match request {
        Request::Range(r) if r.range_end.is_empty() => lin::Input::Get { key: r.key.clone() },
        Request::Range(r) => {
            lin::Input::Range { range: lin::KeyRange { start: r.key.clone(), end: Some(r.range_end.clone()) } }
        }
        Request::Put(p) => lin::Input::Put { key: p.key.clone(), value: p.value.clone(), prev_kv: p.prev_kv },
        Request::DeleteRange(d) if d.range_end.is_empty() => lin::Input::Delete { key: d.key.clone() },
        Request::Txn(t) => txn_input(t)?,
        _ => return None,
    })
}

fn txn_input(t: &haven_store::TxnRequest) -> Option<lin::Input> {
    let [compare] = t.compare.as_slice() else { return None };
    let op = match compare.result {
        CompareResult::Equal => lin::CompareOp::Equal,
        CompareResult::NotEqual => lin::CompareOp::NotEqual,
        CompareResult::Less => lin::CompareOp::Less,
        CompareResult::Greater => lin::CompareOp::Greater,
    };
    let target = match &compare.target {
        CompareTarget::Version(v) => lin::CompareTarget::Version(*v),
        CompareTarget::Mod(r) => lin::CompareTarget::ModRevision(*r),
        CompareTarget::Value(v) => lin::CompareTarget::Value(v.clone()),
        _ => return None,
    };
    let on_success = match t.success.as_slice() {
        [RequestOp::Put(p)] if p.key == compare.key => lin::TxnWrite::Put { value: p.value.clone() },
        [RequestOp::DeleteRange(d)] if d.key == compare.key => lin::TxnWrite::Delete,
        _ => return None,
    };
    Some(lin::Input::Txn { key: compare.key.clone(), compare: lin::Compare { target, op }, on_success })
}

/// The checker's view of a response to `request`.
pub fn output(request: &Request, response: &Response) -> Option<lin::Output> {
    Some(match (request, response) {
        (Request::Range(r), Response::Range(resp)) if r.range_end.is_empty() => {
            lin::Output::Get { revision: resp.header.revision, kv: resp.kvs.first().map(kv) }
        }
        (Request::Range(_), Response::Range(resp)) => {
            lin::Output::Range { revision: resp.header.revision, kvs: resp.kvs.iter().map(kv).collect() }
        }
        (Request::Put(_), Response::Put(resp)) => {
            lin::Output::Put { revision: resp.header.revision, prev: resp.prev_kv.as_ref().map(kv) }
        }
        (Request::DeleteRange(_), Response::DeleteRange(resp)) => {
            lin::Output::Delete { revision: resp.header.revision, deleted: resp.deleted }
        }
        (Request::Txn(_), Response::Txn(resp)) => {
            let outcome = match (resp.succeeded, resp.responses.as_slice()) {
                (true, [ResponseOp::Put(_)]) => lin::TxnOutcome::Put,
                (true, [ResponseOp::DeleteRange(d)]) => lin::TxnOutcome::Deleted { deleted: d.deleted },
                (false, [ResponseOp::Range(r)]) => lin::TxnOutcome::Got { kv: r.kvs.first().map(kv) },
                _ => return None,
            };
            lin::Output::Txn { revision: resp.header.revision, outcome }
        }
        _ => return None,
    })
}

impl Recorder {
    pub fn invoke(&mut self, client: u64, op: u64, request: Request, now_ns: u64) {
        let Some(input) = input(&request) else { return };
        self.ops.push(lin::Operation { client, call_ns: now_ns, input, response: None });
        let previous = self.open.insert((client, op), (self.ops.len() - 1, request));
        assert!(previous.is_none(), "client {client} invoked op {op} twice");
    }

    /// Records the end of an operation; an error names what cannot be mapped.
    pub fn complete(
        &mut self,
        client: u64,
        op: u64,
        result: Option<&Result<Response, ReplyError>>,
        now_ns: u64,
    ) -> Result<(), String> {
        let Some((index, request)) = self.open.remove(&(client, op)) else { return Ok(()) };
        let response = match result {
            Some(Ok(response)) => response,
            // Unknown outcome: leave the response out.
            None | Some(Err(ReplyError::SessionExpired)) => return Ok(()),
            Some(Err(ReplyError::Store(StoreError::LeaseNotFound))) if matches!(request, Request::Put(_)) => {
                self.void.insert(index);
                return Ok(());
            }
            Some(Err(e)) => return Err(format!("client {client} op {op}: unexpected error {e:?} for {request:?}")),
        };
        let output = output(&request, response)
            .ok_or_else(|| format!("client {client} op {op}: response {response:?} does not answer {request:?}"))?;
        self.ops[index].response = Some(lin::Response { return_ns: now_ns, output });
        Ok(())
    }

    /// The history so far, in call order.
    pub fn operations(&self) -> Vec<lin::Operation> {
        let kept = self.ops.iter().enumerate().filter(|(i, _)| !self.void.contains(i));
        kept.map(|(_, op)| op.clone()).collect()
    }

    pub fn completed(&self) -> usize {
        self.ops.iter().filter(|o| o.response.is_some()).count()
    }
}

/// The deletions in `store`'s history of `range`, one expiry per revision,
/// each as called at 0 and returned at `end_ns` (the end of the run). In the
/// lease scenario no client deletes, so every deletion is an expiry or revoke.
pub fn expiries(store: &Store, range: &KeyRange, end_ns: u64) -> Result<Vec<lin::Operation>, String> {
    let events_len_max = super::watch_checks::HISTORY_EVENTS_LEN_MAX;
    let events = store
        .events_since(1, range, events_len_max)
        .map_err(|e| format!("the store's history is gone, so its deletions are unknown: {e}"))?;
    if events.len() >= events_len_max {
        return Err(format!("the store's history holds more than {events_len_max} events"));
    }
    let mut by_revision: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.kind == EventKind::Delete) {
        by_revision.entry(event.kv.mod_revision).or_default().push(event.kv.key.clone());
    }
    let expiry = |(revision, keys): (u64, Vec<Vec<u8>>)| {
        let output = lin::Output::Delete { revision, deleted: keys.len() as u64 };
        let response = Some(lin::Response { return_ns: end_ns, output });
        lin::Operation { client: 0, call_ns: 0, input: lin::Input::Expire { keys }, response }
    };
    Ok(by_revision.into_iter().map(expiry).collect())
}
