//! Concurrent clients doing get/put/delete/txn/range on a small key space
//! through etcd's JSON API, recording what they saw (test support).
//!
//! In: the endpoints of each client (each starts at a different station and
//! fails over), a seed, the key prefix and bounds on the run. Out, when
//! stopped: the linearizability checker's history — call and return times in
//! real monotonic nanoseconds since the run began; a call that failed in any
//! way has no response (it may or may not have happened) — plus counts, and
//! any answer that does not fit its request.

use haven_client::{
    Client, ClientConfig, Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest,
    RequestOp, ResponseOp, TxnRequest, prefix_end,
};
use haven_lincheck as lin;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How a run is shaped.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub prefix: String,
    pub keys_len: u64,
    /// Operations per client at most, so a run stays under the stations'
    /// history bound and the checker's reach.
    pub ops_per_client_max: u64,
    /// Pause between one client's operations.
    pub think: Duration,
    pub request_timeout: Duration,
    pub seed: u64,
}

/// What the clients did, as counters the test can watch while they run.
#[derive(Debug, Default)]
pub struct Progress {
    pub acknowledged: AtomicU64,
    pub failed: AtomicU64,
}

#[derive(Debug)]
pub struct Workload {
    stop: Arc<AtomicBool>,
    pub progress: Arc<Progress>,
    anomalies: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<Vec<lin::Operation>>>,
}

/// What a stopped workload hands back.
#[derive(Debug)]
pub struct Recorded {
    pub history: Vec<lin::Operation>,
    pub anomalies: Vec<String>,
}

/// A small deterministic generator (splitmix64): the op mix, not the
/// timing, is reproducible from the seed.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

impl Workload {
    /// Starts one client per entry of `endpoints` (inside a tokio runtime).
    pub fn start(endpoints: Vec<Vec<String>>, config: &WorkloadConfig, epoch: Instant) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let anomalies = Arc::new(Mutex::new(Vec::new()));
        let tasks = endpoints
            .into_iter()
            .enumerate()
            .map(|(index, endpoints)| {
                let client_config = ClientConfig {
                    endpoints,
                    request_timeout: config.request_timeout,
                    rounds_max: 2,
                    ..Default::default()
                };
                let worker = Worker {
                    id: index as u64 + 1,
                    client: Client::new(client_config).expect("valid endpoints"),
                    config: config.clone(),
                    rng: Rng(config.seed ^ (index as u64 + 1).wrapping_mul(0x5851_f42d_4c95_7f2d)),
                    epoch,
                    stop: stop.clone(),
                    progress: progress.clone(),
                    anomalies: anomalies.clone(),
                    mod_revisions: BTreeMap::new(),
                };
                tokio::spawn(worker.run())
            })
            .collect();
        Workload { stop, progress, anomalies, tasks }
    }

    pub fn acknowledged(&self) -> u64 {
        self.progress.acknowledged.load(Ordering::Relaxed)
    }

    /// Lets each client finish its call in flight, then collects.
    pub async fn stop(self) -> Recorded {
        self.stop.store(true, Ordering::Relaxed);
        let mut history = Vec::new();
        for task in self.tasks {
            history.extend(task.await.expect("a workload client panicked"));
        }
        history.sort_by_key(|op| op.call_ns);
        let anomalies = std::mem::take(&mut *self.anomalies.lock().unwrap_or_else(PoisonError::into_inner));
        Recorded { history, anomalies }
    }
}

struct Worker {
    id: u64,
    client: Client,
    config: WorkloadConfig,
    rng: Rng,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    anomalies: Arc<Mutex<Vec<String>>>,
    /// The last mod_revision this client saw of each key it saw present.
    mod_revisions: BTreeMap<Vec<u8>, u64>,
}

/// One request as sent, with the checker's view of it.
enum Call {
    Get(RangeRequest),
    Range(RangeRequest),
    Put(PutRequest),
    Delete(DeleteRangeRequest),
    Txn(TxnRequest),
}

impl Worker {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).expect("a run shorter than 584 years")
    }

    async fn run(mut self) -> Vec<lin::Operation> {
        let mut history = Vec::new();
        for seq in 0..self.config.ops_per_client_max {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let (call, input) = self.next_call(seq);
            let call_ns = self.now_ns();
            let output = self.send(&call).await;
            let return_ns = self.now_ns();
            let response = match output {
                Ok(output) => {
                    self.remember(&input, &output);
                    self.progress.acknowledged.fetch_add(1, Ordering::Relaxed);
                    Some(lin::Response { return_ns, output })
                }
                Err(Failure::Unknown) => {
                    self.progress.failed.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(Failure::Misfit(detail)) => {
                    let mut anomalies = self.anomalies.lock().unwrap_or_else(PoisonError::into_inner);
                    anomalies.push(format!("client {} op {seq}: {detail}", self.id));
                    None
                }
            };
            history.push(lin::Operation { client: self.id, call_ns, input, response });
            tokio::time::sleep(self.config.think).await;
        }
        history
    }

    fn remember(&mut self, input: &lin::Input, output: &lin::Output) {
        let seen: Vec<&lin::KeyValue> = match output {
            lin::Output::Get { kv, .. } | lin::Output::Txn { outcome: lin::TxnOutcome::Got { kv }, .. } => {
                kv.iter().collect()
            }
            lin::Output::Range { kvs, .. } => kvs.iter().collect(),
            lin::Output::Put { revision, .. } | lin::Output::Txn { revision, outcome: lin::TxnOutcome::Put } => {
                if let Some(key) = input.key() {
                    self.mod_revisions.insert(key.to_vec(), *revision);
                }
                Vec::new()
            }
            _ => Vec::new(),
        };
        for kv in seen {
            self.mod_revisions.insert(kv.key.clone(), kv.mod_revision);
        }
    }

    fn key(&mut self) -> Vec<u8> {
        format!("{}{}", self.config.prefix, self.rng.below(self.config.keys_len)).into_bytes()
    }

    /// The next request; every value written is unique (client, seq).
    fn next_call(&mut self, seq: u64) -> (Call, lin::Input) {
        let key = self.key();
        let value = format!("c{}-{seq}", self.id).into_bytes();
        match self.rng.below(100) {
            0..30 => (Call::Get(RangeRequest { key: key.clone(), ..Default::default() }), lin::Input::Get { key }),
            30..60 => {
                let prev_kv = self.rng.below(2) == 0;
                let put = PutRequest { key: key.clone(), value: value.clone(), prev_kv, ..Default::default() };
                (Call::Put(put), lin::Input::Put { key, value, prev_kv })
            }
            60..70 => (
                Call::Delete(DeleteRangeRequest { key: key.clone(), ..Default::default() }),
                lin::Input::Delete { key },
            ),
            70..88 => self.txn(key, value),
            _ => {
                let prefix = self.config.prefix.as_bytes();
                let range = RangeRequest { key: prefix.to_vec(), range_end: prefix_end(prefix), ..Default::default() };
                (Call::Range(range), lin::Input::Range { range: lin::KeyRange::prefix(prefix) })
            }
        }
    }

    /// A compare-and-put or compare-and-delete on one key, reading it when
    /// the compare fails: on the key's mod_revision as this client last saw
    /// it, or on a small version, so that both branches happen. Never on
    /// `mod_revision == 0`: haven_lincheck's lost-update rule takes two
    /// successes of it for a violation even when a delete came between.
    fn txn(&mut self, key: Vec<u8>, value: Vec<u8>) -> (Call, lin::Input) {
        let (result, op) = match self.rng.below(3) {
            0 => (CompareResult::Equal, lin::CompareOp::Equal),
            1 => (CompareResult::Greater, lin::CompareOp::Greater),
            _ => (CompareResult::Less, lin::CompareOp::Less),
        };
        let known = self.mod_revisions.get(&key).copied().filter(|_| self.rng.below(3) > 0);
        let (target, lin_target) = match known {
            // Compare-and-swap on the key as this client last saw it.
            Some(mod_revision) => {
                (CompareTarget::ModRevision(mod_revision as i64), lin::CompareTarget::ModRevision(mod_revision))
            }
            None => {
                let version = self.rng.below(4);
                (CompareTarget::Version(version as i64), lin::CompareTarget::Version(version))
            }
        };
        let (success, on_success) = if self.rng.below(4) == 0 {
            (
                RequestOp::DeleteRange(DeleteRangeRequest { key: key.clone(), ..Default::default() }),
                lin::TxnWrite::Delete,
            )
        } else {
            let put = PutRequest { key: key.clone(), value: value.clone(), ..Default::default() };
            (RequestOp::Put(put), lin::TxnWrite::Put { value })
        };
        let request = TxnRequest {
            compare: vec![Compare { key: key.clone(), range_end: Vec::new(), result, target }],
            success: vec![success],
            failure: vec![RequestOp::Range(RangeRequest { key: key.clone(), ..Default::default() })],
        };
        let compare = lin::Compare { target: lin_target, op };
        (Call::Txn(request), lin::Input::Txn { key, compare, on_success })
    }

    async fn send(&self, call: &Call) -> Result<lin::Output, Failure> {
        let unknown = |_| Failure::Unknown;
        Ok(match call {
            Call::Get(request) => {
                let response = self.client.range(request).await.map_err(unknown)?;
                if response.kvs.len() > 1 {
                    return Err(Failure::Misfit(format!("a get returned {} keys", response.kvs.len())));
                }
                lin::Output::Get { revision: revision(response.header.revision)?, kv: response.kvs.first().map(kv) }
            }
            Call::Range(request) => {
                let response = self.client.range(request).await.map_err(unknown)?;
                lin::Output::Range {
                    revision: revision(response.header.revision)?,
                    kvs: response.kvs.iter().map(kv).collect(),
                }
            }
            Call::Put(request) => {
                let response = self.client.put(request).await.map_err(unknown)?;
                lin::Output::Put {
                    revision: revision(response.header.revision)?,
                    prev: response.prev_kv.as_ref().map(kv),
                }
            }
            Call::Delete(request) => {
                let response = self.client.delete_range(request).await.map_err(unknown)?;
                let deleted = u64::try_from(response.deleted).map_err(|_| Failure::Misfit("deleted < 0".into()))?;
                lin::Output::Delete { revision: revision(response.header.revision)?, deleted }
            }
            Call::Txn(request) => {
                let response = self.client.txn(request).await.map_err(unknown)?;
                let outcome = match (response.succeeded, response.responses.as_slice()) {
                    (true, [ResponseOp::Put(_)]) => lin::TxnOutcome::Put,
                    (true, [ResponseOp::DeleteRange(d)]) => lin::TxnOutcome::Deleted {
                        deleted: u64::try_from(d.deleted).map_err(|_| Failure::Misfit("deleted < 0".into()))?,
                    },
                    (false, [ResponseOp::Range(r)]) if r.kvs.len() <= 1 => {
                        lin::TxnOutcome::Got { kv: r.kvs.first().map(kv) }
                    }
                    _ => return Err(Failure::Misfit(format!("txn answer {response:?} does not fit {request:?}"))),
                };
                lin::Output::Txn { revision: revision(response.header.revision)?, outcome }
            }
        })
    }
}

enum Failure {
    /// Any error: the call may or may not have taken effect.
    Unknown,
    /// An answer that cannot be right for the request (reported, not checked).
    Misfit(String),
}

fn revision(revision: i64) -> Result<u64, Failure> {
    u64::try_from(revision).map_err(|_| Failure::Misfit(format!("negative header revision {revision}")))
}

pub fn kv(kv: &haven_client::KeyValue) -> lin::KeyValue {
    lin::KeyValue {
        key: kv.key.clone(),
        value: kv.value.clone(),
        mod_revision: u64::try_from(kv.mod_revision).unwrap_or(0),
        version: u64::try_from(kv.version).unwrap_or(0),
    }
}
