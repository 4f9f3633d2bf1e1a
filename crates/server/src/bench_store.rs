//! `haven bench store`: the cost of one put in the in-memory store alone.
//!
//! In: how many puts, over how many keys, of how many value bytes. Out:
//! one line per pass with nanoseconds per put, with the history kept to
//! `history` revisions as a station's auto-compaction keeps it, then a
//! second pass that keeps every revision (the only pass if `history` is 0). It isolates what every replica does
//! on its event loop for each write of `bench kv`: no Raft, no disk, no
//! HTTP. Keys are `bench kv`'s (8 ASCII digits), drawn by a fixed
//! xorshift, so two runs apply the same puts.

use anyhow::{Result, ensure};
use haven_store::{CompactionRequest, PutRequest, Request, Store, StoreConfig};
use std::time::Instant;

/// Puts timed per pass after the warm-up has filled the key space.
#[derive(Clone, Debug)]
pub struct StoreBenchArgs {
    pub puts: u64,
    pub keys: u64,
    pub value_bytes: usize,
    pub history: u64,
}

pub fn run(args: &StoreBenchArgs) -> Result<()> {
    ensure!(args.keys > 0 && args.puts > 0, "--keys and --puts must be above 0");
    println!(
        "bench store: {} puts over {} keys, {}-byte values, after a warm-up of one put per key",
        args.puts, args.keys, args.value_bytes
    );
    // 0 keeps every revision, as a station's `--history-revisions-max 0`.
    let kept = Some(args.history).filter(|&h| h > 0);
    let passes = if kept.is_some() { vec![kept, None] } else { vec![None] };
    for history in passes {
        let ns = pass(args, history);
        let kept = history.map_or("all history".to_string(), |h| format!("history {h} revisions"));
        println!("{kept:>24}: {ns:.0} ns/put, {:.0} puts/s", 1e9 / ns);
    }
    Ok(())
}

/// One pass on a fresh store; returns nanoseconds per timed put.
fn pass(args: &StoreBenchArgs, history: Option<u64>) -> f64 {
    let mut store = Store::new(StoreConfig::default());
    let mut draw = Xorshift(0x2545_f491_4f6c_dd1d);
    let value = vec![b'v'; args.value_bytes];
    for n in 0..args.keys {
        put(&mut store, n, &value, history);
    }
    let start = Instant::now();
    for _ in 0..args.puts {
        put(&mut store, draw.next() % args.keys, &value, history);
    }
    start.elapsed().as_nanos() as f64 / args.puts as f64
}

/// A put, then the compaction a station's leader would propose after it.
fn put(store: &mut Store, n: u64, value: &[u8], history: Option<u64>) {
    let key = format!("{:08}", n % 100_000_000).into_bytes();
    let request = Request::Put(PutRequest { key, value: value.to_vec(), ..PutRequest::default() });
    store.apply(&request).expect("bench puts are valid");
    let Some(kept) = history else { return };
    let oldest = store.compact_revision().unwrap_or(0);
    if store.revision() - oldest >= kept + (kept / 8).max(1) {
        let compact = CompactionRequest { revision: store.revision() - kept, physical: false };
        store.apply(&Request::Compact(compact)).expect("compacting below the revision");
    }
}

/// A fixed pseudo-random sequence (Marsaglia's xorshift64).
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_keeps_the_history_a_station_keeps() {
        let mut store = Store::new(StoreConfig::default());
        for n in 0..1_000 {
            put(&mut store, n % 50, b"value", Some(100));
        }
        let kept = store.revision() - store.compact_revision().expect("1,000 puts compact a 100-revision history");
        // The station compacts back to 100 once the history is an eighth over.
        assert!((100..=112).contains(&kept), "kept {kept} revisions");
    }
}
