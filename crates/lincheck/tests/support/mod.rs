//! Test support: terse constructors for hand-written histories, a reference
//! etcd-model store, and a generator of histories that are linearizable by
//! construction (each operation takes effect at a random instant inside its
//! call..return interval, in that order, on the reference store).

#![allow(dead_code)]

use haven_lincheck::{
    Compare, CompareOp, CompareTarget, Input, KeyRange, KeyValue, Limits, Operation, Output, Response, TxnOutcome,
    TxnWrite, Verdict, check,
};
use rand::RngExt;
use std::collections::BTreeMap;

/// The checker's verdict on a well-formed history, with default limits.
pub fn verdict(history: &[Operation]) -> Verdict {
    check(history, Limits::default()).expect("the history is well formed")
}

#[track_caller]
pub fn assert_linearizable(history: &[Operation]) {
    let verdict = verdict(history);
    assert_eq!(verdict, Verdict::Linearizable, "{verdict}");
}

/// Asserts a violation that names at least `ops` and returns its explanation.
#[track_caller]
pub fn assert_violation(history: &[Operation], ops: &[usize]) -> String {
    let verdict = verdict(history);
    let violation = verdict.violation().unwrap_or_else(|| panic!("expected a violation, got {verdict}"));
    for op in ops {
        assert!(violation.ops.contains(op), "op #{op} should be named: {verdict}");
    }
    violation.explanation.clone()
}

pub fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn done(client: u64, call: u64, ret: u64, input: Input, output: Output) -> Operation {
    Operation { client, call_ns: call, input, response: Some(Response { return_ns: ret, output }) }
}

pub fn put(client: u64, call: u64, ret: u64, key: &str, value: &str, revision: u64) -> Operation {
    let input = Input::Put { key: b(key), value: b(value), prev_kv: false };
    done(client, call, ret, input, Output::Put { revision, prev: None })
}

pub fn put_timeout(client: u64, call: u64, key: &str, value: &str) -> Operation {
    Operation {
        client,
        call_ns: call,
        input: Input::Put { key: b(key), value: b(value), prev_kv: false },
        response: None,
    }
}

/// `kv`: (value, mod_revision, version) or None for a missing key.
pub fn get(client: u64, call: u64, ret: u64, key: &str, kv: Option<(&str, u64, u64)>, revision: u64) -> Operation {
    let kv = kv.map(|(v, m, n)| KeyValue { key: b(key), value: b(v), mod_revision: m, version: n });
    done(client, call, ret, Input::Get { key: b(key) }, Output::Get { revision, kv })
}

pub fn delete(client: u64, call: u64, ret: u64, key: &str, deleted: u64, revision: u64) -> Operation {
    done(client, call, ret, Input::Delete { key: b(key) }, Output::Delete { revision, deleted })
}

/// A put with prev_kv; `prev`: (value, mod_revision, version) or None.
pub fn put_prev(
    at: (u64, u64, u64),
    key: &str,
    value: &str,
    prev: Option<(&str, u64, u64)>,
    revision: u64,
) -> Operation {
    let (client, call, ret) = at;
    let prev = prev.map(|(v, m, n)| KeyValue { key: b(key), value: b(v), mod_revision: m, version: n });
    let input = Input::Put { key: b(key), value: b(value), prev_kv: true };
    done(client, call, ret, input, Output::Put { revision, prev })
}

/// A lease expiry that deleted `keys` at `revision`, known to lie in call..ret.
pub fn expire(call: u64, ret: u64, keys: &[&str], revision: u64) -> Operation {
    let input = Input::Expire { keys: keys.iter().map(|k| b(k)).collect() };
    done(0, call, ret, input, Output::Delete { revision, deleted: keys.len() as u64 })
}

/// A range over [start, end) returning (key, value, mod_revision, version) entries.
pub fn range(
    client: u64,
    call: u64,
    ret: u64,
    start: &str,
    end: &str,
    kvs: &[(&str, &str, u64, u64)],
    revision: u64,
) -> Operation {
    let kvs =
        kvs.iter().map(|&(k, v, m, n)| KeyValue { key: b(k), value: b(v), mod_revision: m, version: n }).collect();
    let input = Input::Range { range: KeyRange { start: b(start), end: Some(b(end)) } };
    done(client, call, ret, input, Output::Range { revision, kvs })
}

/// A compare-and-put on `version == expected` by client `at.0`, called at
/// `at.1`, returning at `at.2`; `outcome: None` for a timeout.
pub fn cas_version(
    at: (u64, u64, u64),
    key: &str,
    expected: u64,
    value: &str,
    outcome: Option<TxnOutcome>,
    revision: u64,
) -> Operation {
    let (client, call, ret) = at;
    let compare = Compare { target: CompareTarget::Version(expected), op: CompareOp::Equal };
    let input = Input::Txn { key: b(key), compare, on_success: TxnWrite::Put { value: b(value) } };
    let response = outcome.map(|outcome| Response { return_ns: ret, output: Output::Txn { revision, outcome } });
    Operation { client, call_ns: call, input, response }
}

/// The etcd model, sequentially, as a plain map: the oracle the checker is compared with.
#[derive(Debug)]
pub struct RefStore {
    revision: u64,
    keys: BTreeMap<Vec<u8>, KeyValue>,
}

impl Default for RefStore {
    fn default() -> Self {
        RefStore { revision: 1, keys: BTreeMap::new() }
    }
}

impl RefStore {
    pub fn get(&self, key: &[u8]) -> Option<&KeyValue> {
        self.keys.get(key)
    }

    pub fn apply(&mut self, input: &Input) -> Output {
        match input {
            Input::Get { key } => Output::Get { revision: self.revision, kv: self.keys.get(key).cloned() },
            Input::Put { key, value, .. } => {
                let prev = self.put(key, value);
                Output::Put { revision: self.revision, prev }
            }
            Input::Delete { key } => {
                let deleted = self.delete(key);
                Output::Delete { revision: self.revision, deleted }
            }
            Input::Range { range } => {
                let kvs = self.keys.values().filter(|kv| range.contains(&kv.key)).cloned().collect();
                Output::Range { revision: self.revision, kvs }
            }
            Input::Expire { keys } => {
                let existing: Vec<&Vec<u8>> = keys.iter().filter(|k| self.keys.contains_key(*k)).collect();
                if !existing.is_empty() {
                    self.revision += 1;
                }
                existing.iter().for_each(|k| drop(self.keys.remove(*k)));
                Output::Delete { revision: self.revision, deleted: existing.len() as u64 }
            }
            Input::Txn { key, compare, on_success } => {
                let outcome = if self.holds(key, compare) {
                    match on_success {
                        TxnWrite::Put { value } => {
                            self.put(key, value);
                            TxnOutcome::Put
                        }
                        TxnWrite::Delete => TxnOutcome::Deleted { deleted: self.delete(key) },
                    }
                } else {
                    TxnOutcome::Got { kv: self.keys.get(key).cloned() }
                };
                Output::Txn { revision: self.revision, outcome }
            }
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Option<KeyValue> {
        self.revision += 1;
        let version = self.keys.get(key).map_or(0, |kv| kv.version) + 1;
        let kv = KeyValue { key: key.to_vec(), value: value.to_vec(), mod_revision: self.revision, version };
        self.keys.insert(key.to_vec(), kv)
    }

    fn delete(&mut self, key: &[u8]) -> u64 {
        if self.keys.remove(key).is_some() {
            self.revision += 1;
            1
        } else {
            0
        }
    }

    fn holds(&self, key: &[u8], compare: &Compare) -> bool {
        let kv = self.keys.get(key);
        let ordering = match (&compare.target, kv) {
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(v), Some(kv)) => kv.value.cmp(v),
            (CompareTarget::Version(n), kv) => kv.map_or(0, |kv| kv.version).cmp(n),
            (CompareTarget::ModRevision(r), kv) => kv.map_or(0, |kv| kv.mod_revision).cmp(r),
        };
        match compare.op {
            CompareOp::Equal => ordering.is_eq(),
            CompareOp::NotEqual => ordering.is_ne(),
            CompareOp::Less => ordering.is_lt(),
            CompareOp::Greater => ordering.is_gt(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct GenConfig {
    pub clients: u64,
    pub keys: u64,
    pub values: u64,
    pub ops_len: usize,
    /// Chance that a call gets no response (half of those still take effect).
    pub timeout_chance: f64,
    /// Whether calls of different clients overlap in time.
    pub concurrent: bool,
    /// Whether txns compare values with `<` and `>` too (rare in practice,
    /// and it keeps the checker from merging values no response shows).
    pub ordered_value_compares: bool,
    /// Chance that an operation is instead a lease expiry: at a random instant
    /// of the run, the store deletes about half of the keys that exist (at
    /// least one, else nothing is recorded). It is recorded as called at 0 and
    /// returned at the end of the history, as a scenario records one.
    pub expiry_chance: f64,
}

/// A history that is linearizable by construction.
pub fn generate(rng: &mut impl rand::Rng, config: GenConfig) -> Vec<Operation> {
    let mut clock = vec![0u64; config.clients as usize];
    let mut global = 0u64;
    // (instant of effect or None, operation without output)
    let mut planned: Vec<(Option<u64>, Operation)> = Vec::with_capacity(config.ops_len);
    for i in 0..config.ops_len {
        if config.expiry_chance > 0.0 && rng.random_bool(config.expiry_chance) {
            let effect = rng.random_range(0..=clock.iter().copied().max().unwrap_or(0).max(global));
            let response = Some(Response { return_ns: 0, output: Output::Get { revision: 0, kv: None } });
            planned.push((
                Some(effect),
                Operation { client: 0, call_ns: 0, input: Input::Expire { keys: vec![] }, response },
            ));
            continue;
        }
        let client = (i as u64) % config.clients;
        let (call, ret) = if config.concurrent {
            let call = clock[client as usize] + rng.random_range(0..50);
            (call, call + rng.random_range(1..200))
        } else {
            (global + 1, global + 1 + rng.random_range(1..10))
        };
        global = ret;
        clock[client as usize] = ret;
        let timed_out = rng.random_bool(config.timeout_chance);
        let effect = if timed_out && rng.random_bool(0.5) {
            None
        } else if timed_out {
            Some(call + rng.random_range(0..1000))
        } else {
            Some(rng.random_range(call..=ret))
        };
        let input = random_input(rng, config);
        let response =
            (!timed_out).then_some(Response { return_ns: ret, output: Output::Get { revision: 0, kv: None } });
        planned.push((effect, Operation { client, call_ns: call, input, response }));
    }
    let mut order: Vec<usize> = (0..planned.len()).filter(|&i| planned[i].0.is_some()).collect();
    order.sort_by_key(|&i| (planned[i].0, i));
    let mut store = RefStore::default();
    for i in order {
        let op = &mut planned[i].1;
        steer_txn(rng, &store, &mut op.input);
        pick_expired(rng, &store, &mut op.input);
        let output = store.apply(&op.input);
        if let Some(response) = &mut op.response {
            response.output = output;
        }
    }
    let end = planned.iter().filter_map(|(_, op)| op.response.as_ref().map(|r| r.return_ns)).max().unwrap_or(0);
    let mut history: Vec<Operation> = planned.into_iter().map(|(_, op)| op).collect();
    history.retain(|op| !matches!(&op.input, Input::Expire { keys } if keys.is_empty()));
    for op in history.iter_mut().filter(|op| !op.input.has_client()) {
        op.response.as_mut().expect("an expiry is answered").return_ns = end;
    }
    history
}

/// An expiry deletes about half of the keys that exist when it takes effect.
fn pick_expired(rng: &mut impl rand::Rng, store: &RefStore, input: &mut Input) {
    let Input::Expire { keys } = input else { return };
    *keys = store.keys.keys().filter(|_| rng.random_bool(0.5)).cloned().collect();
}

fn key(rng: &mut impl rand::Rng, config: GenConfig) -> Vec<u8> {
    b(&format!("k{}", rng.random_range(0..config.keys)))
}

fn value(rng: &mut impl rand::Rng, config: GenConfig) -> Vec<u8> {
    b(&format!("v{}", rng.random_range(0..config.values)))
}

fn random_input(rng: &mut impl rand::Rng, config: GenConfig) -> Input {
    let key = key(rng, config);
    match rng.random_range(0..100) {
        0..30 => Input::Get { key },
        30..55 => Input::Put { key, value: value(rng, config), prev_kv: rng.random_bool(0.3) },
        55..65 => Input::Delete { key },
        65..75 => {
            let start = rng.random_range(0..config.keys);
            let end = rng.random_range(start..=config.keys);
            Input::Range { range: KeyRange { start: b(&format!("k{start}")), end: Some(b(&format!("k{end}"))) } }
        }
        _ => {
            let mut op =
                [CompareOp::Equal, CompareOp::NotEqual, CompareOp::Less, CompareOp::Greater][rng.random_range(0..4)];
            let target = match rng.random_range(0..3) {
                0 => {
                    if !config.ordered_value_compares {
                        op = [CompareOp::Equal, CompareOp::NotEqual][rng.random_range(0..2)];
                    }
                    CompareTarget::Value(value(rng, config))
                }
                1 => CompareTarget::Version(rng.random_range(0..4)),
                _ => CompareTarget::ModRevision(rng.random_range(0..config.ops_len as u64 + 2)),
            };
            let on_success =
                if rng.random_bool(0.8) { TxnWrite::Put { value: value(rng, config) } } else { TxnWrite::Delete };
            Input::Txn { key, compare: Compare { target, op }, on_success }
        }
    }
}

/// Half of the txns compare against what the key holds when they take
/// effect, as a read-modify-write client would, so that many succeed.
fn steer_txn(rng: &mut impl rand::Rng, store: &RefStore, input: &mut Input) {
    let Input::Txn { key, compare, .. } = input else { return };
    if !rng.random_bool(0.5) {
        return;
    }
    let kv = store.get(key);
    compare.op = CompareOp::Equal;
    compare.target = match kv {
        Some(kv) if rng.random_bool(0.5) => CompareTarget::ModRevision(kv.mod_revision),
        kv => CompareTarget::Version(kv.map_or(0, |kv| kv.version)),
    };
}
