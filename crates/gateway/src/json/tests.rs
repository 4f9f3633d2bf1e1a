//! The JSON mapping alone: integers as strings, bytes as base64, enums by
//! name, defaults omitted, jsonpb's lenient input, and round trips through
//! the store's types.

use super::*;
use haven_store as store;
use serde_json::json;

fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("serializes")
}

#[test]
fn integers_are_written_as_strings_and_read_from_numbers_or_strings() {
    let r: RangeRequest = parse(br#"{"key":"Zm9v","limit":2,"revision":"3","min_mod_revision":-1}"#).expect("parses");
    assert_eq!((r.limit, r.revision, r.min_mod_revision), (2, 3, -1));
    let kv =
        KeyValue { key: b"k".to_vec(), create_revision: 5, mod_revision: 9_007_199_254_740_993, ..KeyValue::default() };
    assert_eq!(to_json(&kv), json!({"key": "aw==", "create_revision": "5", "mod_revision": "9007199254740993"}));
}

#[test]
fn integers_that_are_fractional_or_out_of_range_are_refused() {
    assert!(parse::<RangeRequest>(br#"{"limit":1.5}"#).is_err());
    assert!(parse::<RangeRequest>(br#"{"limit":"99999999999999999999"}"#).is_err());
    assert!(parse::<MemberIdRequest>(br#"{"ID":"-1"}"#).is_err(), "member ids are uint64");
    assert!(parse::<RangeRequest>(br#"{"limit":"two"}"#).is_err());
}

#[test]
fn bytes_are_standard_base64_and_bad_base64_is_refused() {
    let p = PutRequest { key: vec![0, 255, 10], value: b"bar".to_vec(), ..PutRequest::default() };
    assert_eq!(to_json(&p), json!({"key": "AP8K", "value": "YmFy"}));
    let back: PutRequest = parse(br#"{"key":"AP8K","value":"YmFy"}"#).expect("parses");
    assert_eq!(back, p);
    assert!(parse::<PutRequest>(br#"{"key":"YQ"}"#).is_err(), "padding is required, as in Go");
    assert!(parse::<PutRequest>(br#"{"key":"!!"}"#).is_err());
}

#[test]
fn defaults_are_omitted_as_proto3_json_does() {
    assert_eq!(to_json(&RangeResponse::default()), json!({"header": {}}));
    assert_eq!(to_json(&TxnResponse::default()), json!({"header": {}}));
    let put = PutResponse::from_store(&store::PutResponse::default(), ResponseHeader::inner(4));
    assert_eq!(to_json(&put), json!({"header": {"revision": "4"}}));
    let id = crate::Identity { cluster_id: 1, member_id: 2, raft_term: 3 };
    assert_eq!(
        to_json(&ResponseHeader::new(&id, 0)),
        json!({"cluster_id": "1", "member_id": "2", "raft_term": "3"}),
        "member answers carry no revision"
    );
    let ttl = LeaseTimeToLiveResponse { id: 7, ttl: -1, ..LeaseTimeToLiveResponse::default() };
    assert_eq!(to_json(&ttl), json!({"header": {}, "ID": "7", "TTL": "-1"}));
}

#[test]
fn enums_are_written_by_name_and_read_by_name_or_number() {
    let by_name: RangeRequest = parse(br#"{"sort_order":"DESCEND","sort_target":"MOD"}"#).expect("parses");
    let by_number: RangeRequest = parse(br#"{"sort_order":2,"sort_target":3}"#).expect("parses");
    assert_eq!(by_name, by_number);
    assert_eq!((by_name.sort_order, by_name.sort_target), (SortOrder::Descend, SortTarget::Mod));
    assert_eq!(to_json(&by_name), json!({"sort_order": "DESCEND", "sort_target": "MOD"}));
    let err = parse::<RangeRequest>(br#"{"sort_order":"UP"}"#).expect_err("unknown name");
    assert!(err.message.contains("RangeRequest_SortOrder"), "{}", err.message);
    assert!(parse::<RangeRequest>(br#"{"sort_order":7}"#).is_err());
}

#[test]
fn null_camel_case_unknown_fields_and_empty_bodies_are_accepted_like_jsonpb() {
    let r: RangeRequest =
        parse(br#"{"key":"YQ==","rangeEnd":"Yg==","keysOnly":true,"limit":null,"count_only":null,"x":[1]}"#)
            .expect("parses");
    assert_eq!((r.key.as_slice(), r.range_end.as_slice(), r.keys_only, r.limit), (&b"a"[..], &b"b"[..], true, 0));
    assert_eq!(parse::<RangeRequest>(b"  \n").expect("empty body"), RangeRequest::default());
    assert!(parse::<RangeRequest>(b"[]").is_err());
}

#[test]
fn lease_and_member_messages_use_etcds_own_field_names() {
    let g: LeaseGrantRequest = parse(br#"{"TTL":"5","ID":1000}"#).expect("parses");
    assert_eq!((g.ttl, g.id), (5, 1000));
    let m = Member { id: 9, name: "n".into(), peer_urls: vec!["http://p:1".into()], ..Member::default() };
    assert_eq!(to_json(&m), json!({"ID": "9", "name": "n", "peerURLs": ["http://p:1"]}));
    let add: MemberAddRequest = parse(br#"{"peerURLs":["http://p:1"],"isLearner":true}"#).expect("parses");
    assert!(add.is_learner);
}

fn every_kind_of_txn() -> store::TxnRequest {
    let kv = |k: &str| k.as_bytes().to_vec();
    let range = store::RangeRequest {
        key: kv("a"),
        range_end: kv("z"),
        limit: 3,
        revision: 2,
        sort_order: store::SortOrder::Descend,
        sort_target: store::SortTarget::Create,
        keys_only: true,
        min_mod_revision: 1,
        max_create_revision: 8,
        ..store::RangeRequest::default()
    };
    let put = store::PutRequest { key: kv("p"), value: vec![0, 1], lease: 5, prev_kv: true, ..Default::default() };
    let compare =
        |target| store::Compare { result: store::CompareResult::Less, target, key: kv("c"), range_end: vec![] };
    store::TxnRequest {
        compare: vec![
            compare(store::CompareTarget::Version(1)),
            compare(store::CompareTarget::Create(2)),
            compare(store::CompareTarget::Mod(3)),
            compare(store::CompareTarget::Value(kv("v"))),
            compare(store::CompareTarget::Lease(4)),
        ],
        success: vec![store::RequestOp::Range(range), store::RequestOp::Put(put)],
        failure: vec![
            store::RequestOp::DeleteRange(store::DeleteRangeRequest {
                key: kv("d"),
                range_end: kv("e"),
                prev_kv: true,
            }),
            store::RequestOp::Txn(store::TxnRequest { compare: vec![], success: vec![], failure: vec![] }),
        ],
    }
}

#[test]
fn a_txn_survives_the_round_trip_through_json() {
    let original = every_kind_of_txn();
    let text = serde_json::to_string(&TxnRequest::from(&original)).expect("serializes");
    let parsed: TxnRequest = parse(text.as_bytes()).expect("parses back");
    assert_eq!(store::TxnRequest::try_from(&parsed).expect("converts"), original);
    assert!(text.contains(r#""target":"LEASE""#) && text.contains(r#""lease":"4""#), "{text}");
}

#[test]
fn an_empty_txn_op_is_refused() {
    let t: TxnRequest = parse(br#"{"success":[{}]}"#).expect("parses");
    assert!(store::TxnRequest::try_from(&t).is_err());
}

#[test]
fn answers_inside_a_txn_carry_only_the_revision_and_nested_txns_an_empty_header() {
    let inner =
        store::TxnResponse { header: store::ResponseHeader { revision: 7 }, succeeded: true, responses: vec![] };
    let put = store::PutResponse { header: store::ResponseHeader { revision: 7 }, prev_kv: None };
    let outer = store::TxnResponse {
        header: store::ResponseHeader { revision: 7 },
        succeeded: false,
        responses: vec![store::ResponseOp::Put(put), store::ResponseOp::Txn(inner)],
    };
    let id = crate::Identity { cluster_id: 1, member_id: 2, raft_term: 3 };
    let body = response_body(&store::Response::Txn(outer), ResponseHeader::new(&id, 7));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
    assert_eq!(v["responses"][0], json!({"response_put": {"header": {"revision": "7"}}}));
    assert_eq!(v["responses"][1], json!({"response_txn": {"header": {}, "succeeded": true}}));
    assert!(v.get("succeeded").is_none(), "false is omitted");
    let text = String::from_utf8(body).expect("utf-8");
    assert!(text.starts_with(r#"{"header":{"cluster_id":"1""#), "fields in etcd's order: {text}");
}

#[test]
fn events_name_deletes_and_omit_the_put_type() {
    let kv = store::KeyValue { key: b"k".to_vec(), mod_revision: 4, ..store::KeyValue::default() };
    let del = Event::from(&store::Event { kind: store::EventKind::Delete, kv: kv.clone(), prev_kv: None });
    assert_eq!(to_json(&del), json!({"type": "DELETE", "kv": {"key": "aw==", "mod_revision": "4"}}));
    let put = Event::from(&store::Event { kind: store::EventKind::Put, kv, prev_kv: None });
    assert!(to_json(&put).get("type").is_none());
    let back: Event = serde_json::from_value(to_json(&del)).expect("parses back");
    assert_eq!(back, del);
}

#[test]
fn watch_requests_read_filters_and_ids() {
    let w: WatchRequest =
        parse(br#"{"create_request":{"key":"YQ==","filters":["NODELETE",0],"watch_id":"3","start_revision":5}}"#)
            .expect("parses");
    let c = w.create_request.expect("a create");
    assert_eq!((c.filters, c.watch_id, c.start_revision), (vec![FilterType::NoDelete, FilterType::NoPut], 3, 5));
}
