//! A small fixed slice of `ha-scale` for CI: 1,000 agents and 10 proxies,
//! one seed. Checks
//! that the cluster settles, that every singleton whose primary died is
//! active again elsewhere, and that the report's figures are sane — in
//! simulated time only (no real time is asserted). On failure the message
//! names the seed and the command that replays it.

use haven_scenarios::ha::scale::{RECOVERY_WITHIN, ScaleConfig, TTL_SECONDS, run_scaled};
use std::time::Duration;

const SEED: u64 = 7;
const AGENTS: u64 = 1_000;
const PROXIES: u64 = 10;

#[test]
fn a_thousand_agents_recover_every_singleton_after_one_percent_crash() {
    let report = run_scaled(SEED, ScaleConfig { agents: AGENTS, proxies: PROXIES }, None);
    let replay =
        format!("haven sim run --scenario ha-scale --seed {SEED} --agents {AGENTS} --proxies {PROXIES} --trace");
    assert!(report.run.is_ok(), "{} (replay: {replay})", report.run.line());
    assert_eq!(report.crashed, 10, "1% of {AGENTS} agents crash (replay: {replay})");
    assert!(report.affected >= 1, "the crash hit no singleton (replay: {replay})");
    assert_eq!(report.recoveries.len(), report.affected, "every affected singleton recovered (replay: {replay})");
    let ttl = Duration::from_secs(TTL_SECONDS as u64);
    let (p50, max) = (report.recovery_quantile(0.5).unwrap(), *report.recoveries.last().unwrap());
    // A replacement may not serve before the dead node's lease could have
    // lapsed: its last renewal was at most a third of the TTL before the crash.
    assert!(
        p50 >= ttl * 2 / 3 && report.recoveries[0] >= ttl * 2 / 3,
        "too early: {:?} (replay: {replay})",
        report.recoveries
    );
    assert!(max <= 2 * ttl && max < RECOVERY_WITHIN, "recovery took {max:?} (replay: {replay})");
    assert!(report.leader_rate_before > 0.0 && report.leader_rate_during > 0.0, "the leader heard nothing? {report:?}");
    // Through proxies the leader hears from the proxies, not from every
    // agent: fewer messages a second than there are agents (direct, each
    // agent alone sends several a second).
    assert!(
        report.leader_rate_before < AGENTS as f64,
        "the leader got {:.0} messages/s from {AGENTS} agents behind {PROXIES} proxies (replay: {replay})",
        report.leader_rate_before
    );
    assert!(
        report.settled_after.is_some_and(|d| d < Duration::from_secs(120)),
        "{:?} (replay: {replay})",
        report.settled_after
    );
}
