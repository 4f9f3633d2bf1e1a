//! Simulation scenarios: each builds a simulated cluster, a stochastic fault
//! schedule and the checkers that must hold, for `haven sim` and the tests.
//!
//! In: a scenario name and a seed (and optionally a trace sink).
//! Out: the run's [`RunReport`]. The registry ([`all`]) is what
//! `haven sim list` prints and what the determinism tests iterate.

pub mod election;
pub mod ha;
pub mod kv;

use haven_sim::{RunReport, TraceSink};

/// A named scenario and how to run one seed of it.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioInfo {
    pub name: &'static str,
    /// What the scenario does and what it checks, for `haven sim list`.
    pub summary: &'static str,
    pub run: fn(seed: u64, trace: Option<TraceSink>) -> RunReport,
}

/// Every scenario, in the order `haven sim list` shows them.
pub fn all() -> &'static [ScenarioInfo] {
    &[
        ScenarioInfo { name: "election", summary: election::SUMMARY, run: election::run },
        ScenarioInfo { name: "kv-linearizable", summary: kv::linearizable::SUMMARY, run: kv::linearizable::run },
        ScenarioInfo {
            name: "kv-batched",
            summary: kv::linearizable::BATCHED_SUMMARY,
            run: kv::linearizable::run_batched,
        },
        ScenarioInfo { name: "membership", summary: kv::membership::SUMMARY, run: kv::membership::run },
        ScenarioInfo {
            name: "member-table",
            summary: kv::membership::TABLE_SUMMARY,
            run: kv::membership::run_through_table,
        },
        ScenarioInfo { name: "lease", summary: kv::lease::SUMMARY, run: kv::lease::run },
        ScenarioInfo { name: "ha-failover", summary: ha::failover::SUMMARY, run: ha::failover::run },
        ScenarioInfo { name: "ha-scale", summary: ha::scale::SUMMARY, run: ha::scale::run },
    ]
}

pub fn find(name: &str) -> Option<&'static ScenarioInfo> {
    all().iter().find(|s| s.name == name)
}
