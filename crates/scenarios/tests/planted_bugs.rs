//! The simulator finds bugs: broken variants of the protocol, planted here
//! on purpose, must fail the `election` scenario within a few hundred seeds.
//! The correct protocol passes the same seeds (see `sweep_slice.rs` and the
//! CI sweep), so each failure below is the planted bug being caught.

use haven_basics::detector::{Detector, DetectorSpec};
use haven_basics::{DetectorConfig, DetectorEvent, DetectorMsg, DetectorTimer, Never, PingDetector};
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_scenarios::election;
use haven_sim::RunReport;
use std::collections::BTreeSet;
use std::time::Duration;

const SEEDS_MAX: u64 = 300;

/// Runs seeds in order until one fails; that report, or `None`.
fn first_failure(run: impl Fn(u64) -> RunReport) -> Option<RunReport> {
    (0..SEEDS_MAX).map(run).find(|report| !report.is_ok())
}

#[test]
fn detector_without_growing_timeout_is_caught() {
    let fixed = DetectorConfig { timeout_increment: Duration::ZERO, ..DetectorConfig::default() };
    assert!(fixed.validate().is_err(), "production refuses this configuration; only this test builds it");
    let failure = first_failure(|seed| election::run_with::<PingDetector>(seed, fixed.clone(), None))
        .unwrap_or_else(|| panic!("a detector that never grows its timeout passed {SEEDS_MAX} seeds"));
    println!("caught: {}", failure.line());
    assert!(failure.line().contains("violation"), "{}", failure.line());
}

/// A ping detector that, once it suspects a node, never trusts it again.
#[derive(Debug)]
struct NeverRestore {
    inner: PingDetector,
    suspected: BTreeSet<NodeId>,
}

impl NeverRestore {
    /// Forwards the inner detector's events, minus every restore.
    fn filter(&mut self, ctx: &mut impl CtxFor<Self>, events: Vec<DetectorEvent>) {
        for event in events {
            match event {
                DetectorEvent::Suspect { node } => {
                    self.suspected.insert(node);
                    ctx.output(event);
                }
                DetectorEvent::Trust { node, .. } if self.suspected.contains(&node) => {}
                DetectorEvent::Trust { .. } => ctx.output(event),
            }
        }
    }
}

impl Detector for NeverRestore {
    fn new(spec: DetectorSpec) -> Self {
        NeverRestore { inner: PingDetector::new(spec), suspected: BTreeSet::new() }
    }
}

impl Component for NeverRestore {
    type Msg = DetectorMsg;
    type Timer = DetectorTimer;
    type Io = Never;
    type Out = DetectorEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        let mut events = Vec::new();
        self.inner.on_start(&mut ctx.sub(&mut events));
        self.filter(ctx, events);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: DetectorMsg) {
        let mut events = Vec::new();
        self.inner.on_message(&mut ctx.sub(&mut events), from, msg);
        self.filter(ctx, events);
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: DetectorTimer) {
        let mut events = Vec::new();
        self.inner.on_timer(&mut ctx.sub(&mut events), id, timer);
        self.filter(ctx, events);
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, tag: Never, _result: IoResult) {
        match tag {}
    }
}

#[test]
fn detector_that_never_restores_is_caught() {
    let failure = first_failure(|seed| election::run_with::<NeverRestore>(seed, DetectorConfig::default(), None))
        .unwrap_or_else(|| panic!("a detector that never restores passed {SEEDS_MAX} seeds"));
    println!("caught: {}", failure.line());
    assert!(failure.line().contains("violation"), "{}", failure.line());
}
