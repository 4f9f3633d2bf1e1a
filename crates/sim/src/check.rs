//! Invariant checkers.
//!
//! In: predicates over the simulator, registered by the test. Out: the
//! first violation, if any, which stops the run.
//!
//! Safety predicates run after every processed event. A liveness predicate
//! runs only once the faults are declared over at some time T, at every
//! event from T + within to T + within + hold_for (check-point events make
//! sure it runs at exactly those two times too): the system had `within` to
//! recover and must then stay recovered for `hold_for`.

use crate::report::Violation;
use crate::sim::Sim;
use crate::time::SimTime;
use haven_runtime::Component;
use std::fmt;
use std::time::Duration;

/// A checker: `Err` explains what is wrong.
pub type Predicate<C> = Box<dyn FnMut(&Sim<C>) -> Result<(), String>>;

struct Safety<C: Component> {
    name: String,
    predicate: Predicate<C>,
}

struct Liveness<C: Component> {
    name: String,
    within: Duration,
    hold_for: Duration,
    predicate: Predicate<C>,
}

pub(crate) struct Checks<C: Component> {
    safety: Vec<Safety<C>>,
    liveness: Vec<Liveness<C>>,
}

impl<C: Component> Default for Checks<C> {
    fn default() -> Self {
        Checks { safety: Vec::new(), liveness: Vec::new() }
    }
}

impl<C: Component> fmt::Debug for Checks<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |v: &mut dyn Iterator<Item = &String>| v.cloned().collect::<Vec<_>>();
        f.debug_struct("Checks")
            .field("safety", &names(&mut self.safety.iter().map(|s| &s.name)))
            .field("liveness", &names(&mut self.liveness.iter().map(|l| &l.name)))
            .finish()
    }
}

impl<C: Component + 'static> Checks<C> {
    /// Each liveness checker's window, given the time the faults ended.
    pub(crate) fn liveness_windows(&self, over: SimTime) -> Vec<(SimTime, SimTime)> {
        self.liveness.iter().map(|l| (over + l.within, over + l.within + l.hold_for)).collect()
    }

    fn evaluate(&mut self, sim: &Sim<C>) -> Option<Violation> {
        for check in &mut self.safety {
            if let Err(detail) = (check.predicate)(sim) {
                return Some(Violation { checker: check.name.clone(), at: sim.now(), detail });
            }
        }
        let over = sim.faults_over_at()?;
        for check in &mut self.liveness {
            let (from, to) = (over + check.within, over + check.within + check.hold_for);
            if !(from..=to).contains(&sim.now()) {
                continue;
            }
            if let Err(detail) = (check.predicate)(sim) {
                let detail = format!("{detail} (faults over at {over}; must hold from {from} to {to})");
                return Some(Violation { checker: check.name.clone(), at: sim.now(), detail });
            }
        }
        None
    }
}

impl<C: Component + 'static> Sim<C> {
    /// Adds a safety checker, run after every event.
    pub fn add_safety(&mut self, name: impl Into<String>, f: impl FnMut(&Sim<C>) -> Result<(), String> + 'static) {
        self.checks.safety.push(Safety { name: name.into(), predicate: Box::new(f) });
    }

    /// Adds a liveness checker: once the faults are over at T, `f` must hold
    /// at every event from T + `within` to T + `within` + `hold_for`.
    pub fn add_liveness(
        &mut self,
        name: impl Into<String>,
        within: Duration,
        hold_for: Duration,
        f: impl FnMut(&Sim<C>) -> Result<(), String> + 'static,
    ) {
        self.checks.liveness.push(Liveness { name: name.into(), within, hold_for, predicate: Box::new(f) });
    }

    pub(crate) fn run_checks(&mut self) {
        let mut checks = std::mem::take(&mut self.checks);
        let violation = checks.evaluate(self);
        self.checks = checks;
        if let Some(violation) = violation {
            self.stop(violation);
        }
    }
}
