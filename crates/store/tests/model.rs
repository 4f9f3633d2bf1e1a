//! The store against a brute-force reference model.
//!
//! The model keeps the whole keyspace at every revision (a Vec of maps) and
//! the events of every revision, recomputing nothing incrementally; it
//! knows etcd's rules directly (revision per write txn, version reset on
//! delete, missing keys compare as zero, duplicate keys refused, reads and
//! watches refused below the compaction point). Random sequences of puts,
//! deletes, txns, compactions, reads and snapshot round trips must get the
//! same answers from both, and after every step every retained revision
//! and every watch start must agree.

use crate::common;
use common::*;
use haven_store::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const KEYS: [&[u8]; 4] = [b"a", b"b", b"c", b"d"];

#[derive(Clone, Debug)]
enum End {
    Single,
    Nul,
    Key(usize),
}

impl End {
    fn bytes(&self) -> Vec<u8> {
        match self {
            End::Single => Vec::new(),
            End::Nul => vec![0],
            End::Key(i) => KEYS[*i].to_vec(),
        }
    }
}

#[derive(Clone, Debug)]
enum TxnOp {
    Put(usize, u8),
    Delete(usize, End),
    Get(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Put(usize, u8),
    Delete(usize, End),
    Txn { key: usize, version: u64, result: CompareResult, success: Vec<TxnOp>, failure: Vec<TxnOp> },
    Compact(u64),
    Read { key: usize, end: End, revision: u64, limit: u64 },
    SnapshotRestore,
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![Just(End::Single), Just(End::Nul), (0..KEYS.len()).prop_map(End::Key)]
}

fn txn_op() -> impl Strategy<Value = TxnOp> {
    let k = 0..KEYS.len();
    prop_oneof![
        (k.clone(), any::<u8>()).prop_map(|(k, v)| TxnOp::Put(k, v)),
        // No "\0" end inside txns: etcd's duplicate check reads it literally,
        // which the model does not try to imitate (a unit test covers it).
        (k.clone(), prop_oneof![Just(End::Single), (0..KEYS.len()).prop_map(End::Key)])
            .prop_map(|(k, e)| TxnOp::Delete(k, e)),
        k.prop_map(TxnOp::Get),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS.len();
    let result = prop_oneof![
        Just(CompareResult::Equal),
        Just(CompareResult::NotEqual),
        Just(CompareResult::Less),
        Just(CompareResult::Greater)
    ];
    prop_oneof![
        4 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (k.clone(), end()).prop_map(|(k, e)| Op::Delete(k, e)),
        3 => (k.clone(), 0u64..3, result, prop::collection::vec(txn_op(), 0..4), prop::collection::vec(txn_op(), 0..4))
            .prop_map(|(key, version, result, success, failure)| Op::Txn { key, version, result, success, failure }),
        1 => (0u64..6).prop_map(Op::Compact),
        3 => (k, end(), 0u64..40, 0u64..3).prop_map(|(key, end, revision, limit)| Op::Read { key, end, revision, limit }),
        1 => Just(Op::SnapshotRestore),
    ]
}

/// The reference: every revision's full state and events, kept forever.
struct Model {
    /// `states[r]` is the keyspace at revision `r` (index 0 unused).
    states: Vec<BTreeMap<Vec<u8>, KeyValue>>,
    /// `events[r]` are the changes revision `r` made, in order.
    events: Vec<Vec<Event>>,
    compacted: Option<u64>,
}

impl Model {
    fn new() -> Model {
        Model { states: vec![BTreeMap::new(), BTreeMap::new()], events: vec![Vec::new(), Vec::new()], compacted: None }
    }

    fn revision(&self) -> u64 {
        self.states.len() as u64 - 1
    }

    fn now(&self) -> &BTreeMap<Vec<u8>, KeyValue> {
        self.states.last().unwrap()
    }

    fn prev_visible(&self, rev: u64) -> bool {
        self.compacted.is_none_or(|c| rev > c)
    }

    fn read(&self, key: &[u8], end: &[u8], revision: u64, limit: u64) -> Result<RangeResponse, StoreError> {
        let current = self.revision();
        if revision > current {
            return Err(StoreError::FutureRevision { current_revision: current });
        }
        if let Some(c) = self.compacted.filter(|&c| revision != 0 && revision < c) {
            return Err(StoreError::Compacted { compact_revision: c });
        }
        let at = if revision == 0 { current } else { revision };
        let range = KeyRange::new(key, end);
        let all: Vec<KeyValue> =
            self.states[at as usize].values().filter(|kv| range.contains(&kv.key)).cloned().collect();
        let count = all.len() as u64;
        let more = limit > 0 && count > limit;
        let kvs = if limit > 0 { all.into_iter().take(limit as usize).collect() } else { all };
        Ok(RangeResponse { header: ResponseHeader { revision: current }, kvs, more, count })
    }

    /// Applies a list of writes as one transaction and returns each op's response.
    fn write(&mut self, ops: &[TxnOp]) -> Vec<ResponseOp> {
        let rev = self.revision() + 1;
        let mut state = self.now().clone();
        let mut events = Vec::new();
        let mut responses = Vec::new();
        for op in ops {
            let changed_rev = |events: &Vec<Event>| if events.is_empty() { rev - 1 } else { rev };
            match op {
                TxnOp::Put(k, v) => {
                    let prev = state.get(KEYS[*k]).cloned();
                    let kv = KeyValue {
                        key: KEYS[*k].to_vec(),
                        create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        value: vec![*v],
                        lease: 0,
                    };
                    state.insert(kv.key.clone(), kv.clone());
                    events.push(Event { kind: EventKind::Put, kv, prev_kv: prev });
                    responses
                        .push(ResponseOp::Put(PutResponse { header: ResponseHeader { revision: rev }, prev_kv: None }));
                }
                TxnOp::Delete(k, e) => {
                    let range = KeyRange::new(KEYS[*k], &e.bytes());
                    let doomed: Vec<Vec<u8>> = state.keys().filter(|key| range.contains(key)).cloned().collect();
                    for key in &doomed {
                        let prev = state.remove(key);
                        let kv = KeyValue { key: key.clone(), mod_revision: rev, ..KeyValue::default() };
                        events.push(Event {
                            kind: EventKind::Delete,
                            kv,
                            prev_kv: prev.filter(|_| self.prev_visible(rev)),
                        });
                    }
                    let header = ResponseHeader { revision: changed_rev(&events) };
                    let deleted = doomed.len() as u64;
                    responses.push(ResponseOp::DeleteRange(DeleteRangeResponse {
                        header,
                        deleted,
                        prev_kvs: Vec::new(),
                    }));
                }
                TxnOp::Get(k) => {
                    let kvs: Vec<KeyValue> = state.get(KEYS[*k]).cloned().into_iter().collect();
                    let header = ResponseHeader { revision: changed_rev(&events) };
                    let count = kvs.len() as u64;
                    responses.push(ResponseOp::Range(RangeResponse { header, kvs, more: false, count }));
                }
            }
        }
        if !events.is_empty() {
            self.states.push(state);
            self.events.push(events);
        }
        responses
    }

    fn duplicate(ops: &[TxnOp]) -> bool {
        let puts: Vec<&[u8]> =
            ops.iter().filter_map(|o| if let TxnOp::Put(k, _) = o { Some(KEYS[*k]) } else { None }).collect();
        let twice = puts.iter().enumerate().any(|(i, a)| puts[..i].contains(a));
        let deleted = ops.iter().any(|o| match o {
            TxnOp::Delete(k, e) => puts.iter().any(|p| KeyRange::new(KEYS[*k], &e.bytes()).contains(p)),
            _ => false,
        });
        twice || deleted
    }

    fn txn(
        &mut self,
        key: usize,
        version: u64,
        result: CompareResult,
        success: &[TxnOp],
        failure: &[TxnOp],
    ) -> Result<TxnResponse, StoreError> {
        if Self::duplicate(success) || Self::duplicate(failure) {
            return Err(StoreError::DuplicateKey);
        }
        let have = self.now().get(KEYS[key]).map_or(0, |kv| kv.version);
        let succeeded = match result {
            CompareResult::Equal => have == version,
            CompareResult::NotEqual => have != version,
            CompareResult::Less => have < version,
            CompareResult::Greater => have > version,
        };
        let responses = self.write(if succeeded { success } else { failure });
        Ok(TxnResponse { header: ResponseHeader { revision: self.revision() }, succeeded, responses })
    }

    fn compact(&mut self, revision: u64) -> Result<(), StoreError> {
        if let Some(c) = self.compacted.filter(|&c| revision <= c) {
            return Err(StoreError::Compacted { compact_revision: c });
        }
        if revision > self.revision() {
            return Err(StoreError::FutureRevision { current_revision: self.revision() });
        }
        self.compacted = Some(revision);
        Ok(())
    }

    fn events_since(&self, start: u64, range: &KeyRange) -> Result<Vec<Event>, Compacted> {
        if let Some(c) = self.compacted.filter(|&c| start < c) {
            return Err(Compacted { compact_revision: c });
        }
        let from = (start as usize).min(self.events.len());
        let events = self.events[from..].iter().flatten().filter(|e| range.contains(&e.kv.key));
        // etcd reads prev_kv at mod_revision - 1, so compaction can hide it later.
        let hide_prev = |mut e: Event| {
            if !self.prev_visible(e.kv.mod_revision) {
                e.prev_kv = None;
            }
            e
        };
        Ok(events.cloned().map(hide_prev).collect())
    }
}

fn to_request(ops: &[TxnOp]) -> Vec<RequestOp> {
    ops.iter()
        .map(|o| match o {
            TxnOp::Put(k, v) => {
                RequestOp::Put(PutRequest { key: KEYS[*k].to_vec(), value: vec![*v], ..PutRequest::default() })
            }
            TxnOp::Delete(k, e) => RequestOp::DeleteRange(DeleteRangeRequest {
                key: KEYS[*k].to_vec(),
                range_end: e.bytes(),
                prev_kv: false,
            }),
            TxnOp::Get(k) => RequestOp::Range(RangeRequest { key: KEYS[*k].to_vec(), ..RangeRequest::default() }),
        })
        .collect()
}

fn step(store: &mut Store, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Put(k, v) => {
            let got = store.apply(&Request::Put(PutRequest {
                key: KEYS[*k].to_vec(),
                value: vec![*v],
                ..PutRequest::default()
            }));
            let ResponseOp::Put(want) = model.write(&[TxnOp::Put(*k, *v)]).remove(0) else { unreachable!() };
            prop_assert_eq!(got, Ok(Response::Put(want)));
        }
        Op::Delete(k, e) => {
            let got = store.apply(&Request::DeleteRange(DeleteRangeRequest {
                key: KEYS[*k].to_vec(),
                range_end: e.bytes(),
                prev_kv: false,
            }));
            let ResponseOp::DeleteRange(want) = model.write(&[TxnOp::Delete(*k, e.clone())]).remove(0) else {
                unreachable!()
            };
            prop_assert_eq!(got, Ok(Response::DeleteRange(want)));
        }
        Op::Txn { key, version, result, success, failure } => {
            let req = TxnRequest {
                compare: vec![Compare {
                    result: *result,
                    target: CompareTarget::Version(*version),
                    key: KEYS[*key].to_vec(),
                    range_end: Vec::new(),
                }],
                success: to_request(success),
                failure: to_request(failure),
            };
            let got = store.apply(&Request::Txn(req));
            let want = model.txn(*key, *version, *result, success, failure).map(Response::Txn);
            prop_assert_eq!(got, want);
        }
        Op::Compact(back) => {
            let revision = model.revision().saturating_sub(*back).max(1) + u64::from(*back == 5);
            let got = store.apply(&Request::Compact(CompactionRequest { revision, physical: false })).map(|_| ());
            prop_assert_eq!(got, model.compact(revision));
        }
        Op::Read { key, end, revision, limit } => {
            let req = RangeRequest {
                key: KEYS[*key].to_vec(),
                range_end: end.bytes(),
                revision: *revision,
                limit: *limit,
                ..RangeRequest::default()
            };
            prop_assert_eq!(store.range(&req), model.read(KEYS[*key], &end.bytes(), *revision, *limit));
        }
        Op::SnapshotRestore => {
            let restored = Store::restore(&store.snapshot().unwrap(), StoreConfig::default()).unwrap();
            prop_assert_eq!(&restored, &*store);
            *store = restored;
        }
    }
    Ok(())
}

/// Every retained revision reads the same, and every watch start gets the same events.
fn agree_everywhere(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(store.revision(), model.revision());
    prop_assert_eq!(store.compact_revision(), model.compacted);
    let floor = model.compacted.unwrap_or(1);
    for rev in 1..=model.revision() {
        prop_assert_eq!(
            store.range(&RangeRequest { revision: rev, ..range_req("\0", "\0") }),
            model.read(b"\0", b"\0", rev, 0),
            "revision {}",
            rev
        );
    }
    for range in [KeyRange::new(b"\0", b"\0"), KeyRange::new(b"b", b"d"), KeyRange::single(b"c")] {
        for start in floor.saturating_sub(1)..=model.revision() + 1 {
            prop_assert_eq!(
                store.events_since(start, &range, usize::MAX),
                model.events_since(start, &range),
                "start {}",
                start
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_brute_force_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut store = store();
        let mut model = Model::new();
        for op in &ops {
            step(&mut store, &mut model, op)?;
            agree_everywhere(&store, &model)?;
        }
    }

    #[test]
    fn a_restored_snapshot_answers_like_the_original(ops in prop::collection::vec(op(), 1..40), more in prop::collection::vec(op(), 1..10)) {
        let mut original = store();
        let mut model = Model::new();
        for op in &ops {
            step(&mut original, &mut model, op)?;
        }
        let mut restored = Store::restore(&original.snapshot().unwrap(), StoreConfig::default()).unwrap();
        let mut model_copy = Model { states: model.states.clone(), events: model.events.clone(), compacted: model.compacted };
        for op in &more {
            step(&mut original, &mut model, op)?;
            step(&mut restored, &mut model_copy, op)?;
        }
        agree_everywhere(&restored, &model_copy)?;
        prop_assert_eq!(restored, original);
    }
}
