//! Many seeds, in parallel.
//!
//! In: a range of seeds, a number of worker threads and a function running
//! one seed. Out: a [`SweepReport`] with every run's report, sorted by seed.
//! Each run is its own deterministic world, so threads only change how fast
//! the sweep finishes, never what it finds. A run that panics is reported as
//! a violation (checker `panic`) instead of ending the sweep.

use crate::report::{Outcome, RunReport, Violation};
use crate::time::SimTime;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepReport {
    /// One report per seed, by seed.
    pub runs: Vec<RunReport>,
}

impl SweepReport {
    pub fn failures(&self) -> impl Iterator<Item = &RunReport> {
        self.runs.iter().filter(|r| !r.is_ok())
    }

    pub fn all_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// `runs=N ok=N failed=N`, then each failure's report line.
    pub fn summary(&self) -> String {
        let failed: Vec<String> = self.failures().map(RunReport::line).collect();
        let mut out = format!("runs={} ok={} failed={}", self.runs.len(), self.runs.len() - failed.len(), failed.len());
        for line in failed {
            out.push('\n');
            out.push_str(&line);
        }
        out
    }
}

/// Runs every seed of `seeds` on `jobs` threads (at least one).
pub fn sweep(seeds: Range<u64>, jobs: usize, run: impl Fn(u64) -> RunReport + Sync) -> SweepReport {
    let next = AtomicU64::new(seeds.start);
    let results = Mutex::new(Vec::with_capacity(seeds.end.saturating_sub(seeds.start) as usize));
    let jobs = jobs.clamp(1, 1024);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    mine.push(run_caught(seed, &run));
                }
                results.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend(mine);
            });
        }
    });
    let mut runs = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    runs.sort_by_key(|r| r.seed);
    SweepReport { runs }
}

fn run_caught(seed: u64, run: &(impl Fn(u64) -> RunReport + Sync)) -> RunReport {
    match catch_unwind(AssertUnwindSafe(|| run(seed))) {
        Ok(report) => report,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "non-string panic".to_owned());
            let violation = Violation { checker: "panic".into(), at: SimTime::ZERO, detail };
            RunReport {
                seed,
                trace_hash: 0,
                outcome: Outcome::Violation(violation),
                events: 0,
                sim_time: SimTime::ZERO,
            }
        }
    }
}
