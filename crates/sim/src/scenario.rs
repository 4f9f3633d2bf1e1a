//! The scenario language: a run as a set of named stochastic processes.
//!
//! In: processes built by the test, each a count of events, an inter-arrival
//! distribution, an action, and when it starts (at a time, after another
//! process starts, or after another ends); optionally a terminal step.
//! Out: scenario events in the simulator's queue; when they come due, the
//! actions run with the process's own RNG stream.
//!
//! A process that starts at S runs its action `count` times, event i at S
//! plus i+1 inter-arrival draws, and ends right after its last event. The
//! terminal step ([`Scenario::end_after`]) waits for the listed processes to
//! end, then heals everything, declares the faults over, runs the liveness
//! phase and ends the run. Actions are generic over the component; ready-made
//! ones are in [`crate::actions`].

use crate::dist::Dist;
use crate::error::ConfigError;
use crate::event::EventKind;
use crate::hash::derive_rng;
use crate::process::{Action, ProcId, Process, Start};
use crate::sim::Sim;
use haven_runtime::Component;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

/// A set of processes and an optional terminal step.
pub struct Scenario<C: Component> {
    procs: Vec<Process<C>>,
    end: Option<(Vec<ProcId>, Duration)>,
    on_heal: Option<HealHook<C>>,
}

/// Extra repairs of the terminal step (see [`Scenario::on_heal`]).
pub(crate) type HealHook<C> = Box<dyn FnOnce(&mut Sim<C>)>;

impl<C: Component> fmt::Debug for Scenario<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario").field("procs", &self.procs).field("end", &self.end).finish()
    }
}

impl<C: Component> Default for Scenario<C> {
    fn default() -> Self {
        Scenario { procs: Vec::new(), end: None, on_heal: None }
    }
}

impl<C: Component> Scenario<C> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a process; a process can only start after one added before it.
    pub fn add(&mut self, process: Process<C>) -> ProcId {
        self.procs.push(process);
        ProcId(self.procs.len() - 1)
    }

    /// The terminal step: `delay` after every process in `procs` has ended,
    /// heal everything, declare the faults over and run the liveness phase;
    /// the run ends when it does.
    pub fn end_after(&mut self, procs: &[ProcId], delay: Duration) {
        self.end = Some((procs.to_vec(), delay));
    }

    /// Extra repairs the terminal step makes right after `heal_all` and
    /// before declaring the faults over, e.g. making lossy links reliable
    /// (the global stabilisation time of partial synchrony).
    pub fn on_heal(&mut self, f: impl FnOnce(&mut Sim<C>) + 'static) {
        self.on_heal = Some(Box::new(f));
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (p, process) in self.procs.iter().enumerate() {
            process.interval.validate("process interval")?;
            if let Start::AfterStartOf(other, _) | Start::AfterEndOf(other, _) = process.start
                && other.0 >= p
            {
                return Err(ConfigError::ProcessOrder { process: process.name.clone() });
            }
        }
        if let Some((procs, _)) = &self.end
            && let Some(bad) = procs.iter().find(|p| p.0 >= self.procs.len())
        {
            return Err(ConfigError::ProcessOrder { process: format!("#{} (in end_after)", bad.0) });
        }
        Ok(())
    }
}

/// A process while the scenario runs.
pub(crate) struct ProcState<C: Component> {
    name: String,
    count: u32,
    interval: Dist,
    /// `None` only while the action runs.
    runner: Option<(Action<C>, ChaCha8Rng)>,
    on_start: Vec<(u32, Duration)>,
    on_end: Vec<(u32, Duration)>,
}

/// The terminal step, waiting for these processes to end.
#[derive(Debug)]
pub(crate) struct ScenarioEnd {
    waiting: BTreeSet<u32>,
    delay: Duration,
}

impl<C: Component + 'static> Sim<C> {
    pub(crate) fn install(&mut self, scenario: Scenario<C>) -> Result<(), ConfigError> {
        scenario.validate()?;
        if !self.procs.is_empty() || self.scenario_end.is_some() {
            return Err(ConfigError::ScenarioTwice { procs: self.procs.len() });
        }
        for (p, process) in scenario.procs.into_iter().enumerate() {
            let id = p as u32;
            match process.start {
                Start::At(at) => self.push(at, EventKind::ProcStart { proc: id }),
                Start::AfterStartOf(other, delay) => self.procs[other.0].on_start.push((id, delay)),
                Start::AfterEndOf(other, delay) => self.procs[other.0].on_end.push((id, delay)),
            }
            let rng = derive_rng(self.seed, "process", p as u64, 0);
            self.procs.push(ProcState {
                name: process.name,
                count: process.count,
                interval: process.interval,
                runner: Some((process.action, rng)),
                on_start: Vec::new(),
                on_end: Vec::new(),
            });
        }
        if let Some((procs, delay)) = scenario.end {
            let waiting: BTreeSet<u32> = procs.iter().map(|p| p.0 as u32).collect();
            if waiting.is_empty() {
                self.push(self.now + delay, EventKind::Heal);
            }
            self.scenario_end = Some(ScenarioEnd { waiting, delay });
        }
        self.heal_hook = scenario.on_heal;
        Ok(())
    }

    fn trace_proc(&mut self, p: usize, what: std::fmt::Arguments<'_>) {
        self.trace.tag("proc");
        self.trace.u64(p as u64);
        if self.trace.on() {
            let _ = write!(self.trace.begin(self.now), "process {} {what}", self.procs[p].name);
        }
    }

    pub(crate) fn proc_start(&mut self, p: usize) {
        self.trace_proc(p, format_args!("starts"));
        for (q, delay) in self.procs[p].on_start.clone() {
            self.push(self.now + delay, EventKind::ProcStart { proc: q });
        }
        self.schedule_fire(p, 0);
    }

    /// Schedules event `index`, or ends the process if it has had them all.
    fn schedule_fire(&mut self, p: usize, index: u32) {
        let proc = &mut self.procs[p];
        if index >= proc.count {
            return self.proc_end(p);
        }
        let (_, rng) = proc.runner.as_mut().expect("not running");
        let at = self.now + proc.interval.sample(rng);
        self.push(at, EventKind::ProcFire { proc: p as u32, index });
    }

    pub(crate) fn proc_fire(&mut self, p: usize, index: u32) {
        self.trace_proc(p, format_args!("#{index}"));
        self.trace.u64(u64::from(index));
        let (mut action, mut rng) = self.procs[p].runner.take().expect("process actions do not nest");
        action(self, &mut rng, index);
        self.procs[p].runner = Some((action, rng));
        self.schedule_fire(p, index + 1);
    }

    fn proc_end(&mut self, p: usize) {
        self.trace_proc(p, format_args!("ends"));
        for (q, delay) in self.procs[p].on_end.clone() {
            self.push(self.now + delay, EventKind::ProcStart { proc: q });
        }
        if let Some(end) = &mut self.scenario_end
            && end.waiting.remove(&(p as u32))
            && end.waiting.is_empty()
        {
            let at = self.now + end.delay;
            self.push(at, EventKind::Heal);
        }
    }
}
