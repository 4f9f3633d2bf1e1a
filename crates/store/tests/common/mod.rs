//! Shorthands for building requests and reading answers in the store's tests.
#![allow(dead_code)]

use haven_store::*;

pub fn store() -> Store {
    Store::new(StoreConfig::default())
}

pub fn put_req(key: &str, value: &str) -> PutRequest {
    PutRequest { key: key.into(), value: value.into(), ..PutRequest::default() }
}

pub fn put(s: &mut Store, key: &str, value: &str) -> PutResponse {
    put_with(s, put_req(key, value))
}

pub fn put_with(s: &mut Store, req: PutRequest) -> PutResponse {
    match s.apply(&Request::Put(req)).expect("put is accepted") {
        Response::Put(r) => r,
        other => panic!("a put answered {other:?}"),
    }
}

pub fn range_req(key: &str, range_end: &str) -> RangeRequest {
    RangeRequest { key: key.into(), range_end: range_end.into(), ..RangeRequest::default() }
}

pub fn range(s: &Store, req: RangeRequest) -> RangeResponse {
    s.range(&req).expect("range is accepted")
}

/// The value of `key` now, if it exists.
pub fn get(s: &Store, key: &str) -> Option<KeyValue> {
    range(s, range_req(key, "")).kvs.into_iter().next()
}

pub fn delete_req(key: &str, range_end: &str) -> DeleteRangeRequest {
    DeleteRangeRequest { key: key.into(), range_end: range_end.into(), prev_kv: false }
}

pub fn delete(s: &mut Store, req: DeleteRangeRequest) -> DeleteRangeResponse {
    match s.apply(&Request::DeleteRange(req)).expect("delete is accepted") {
        Response::DeleteRange(r) => r,
        other => panic!("a delete answered {other:?}"),
    }
}

pub fn txn(s: &mut Store, req: TxnRequest) -> Result<TxnResponse, StoreError> {
    s.apply(&Request::Txn(req)).map(|r| match r {
        Response::Txn(t) => t,
        other => panic!("a txn answered {other:?}"),
    })
}

pub fn compare(key: &str, result: CompareResult, target: CompareTarget) -> Compare {
    Compare { result, target, key: key.into(), range_end: Vec::new() }
}

pub fn grant(s: &mut Store, id: LeaseId, ttl: i64) -> LeaseGrantResponse {
    match s.apply(&Request::LeaseGrant(LeaseGrantRequest { ttl, id })).expect("grant is accepted") {
        Response::LeaseGrant(r) => r,
        other => panic!("a grant answered {other:?}"),
    }
}

pub fn keys_of(kvs: &[KeyValue]) -> Vec<String> {
    kvs.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect()
}
