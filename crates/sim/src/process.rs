//! One stochastic process of a scenario.
//!
//! In: a name, a number of events, an inter-arrival distribution, an action
//! and a start rule. Out: a [`Process`] value for `Scenario::add`, which the
//! scenario turns into events when it runs (see `scenario.rs`).

use crate::dist::Dist;
use crate::sim::Sim;
use crate::time::SimTime;
use haven_runtime::Component;
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::time::Duration;

/// What a process does at each of its events: the simulator, the process's
/// RNG and the event's index (0-based).
pub type Action<C> = Box<dyn FnMut(&mut Sim<C>, &mut ChaCha8Rng, u32)>;

/// A handle to a process of a [`Scenario`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProcId(pub(crate) usize);

/// When a process starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    At(SimTime),
    AfterStartOf(ProcId, Duration),
    AfterEndOf(ProcId, Duration),
}

pub struct Process<C: Component> {
    pub(crate) name: String,
    pub(crate) count: u32,
    pub(crate) interval: Dist,
    pub(crate) action: Action<C>,
    pub(crate) start: Start,
}

impl<C: Component> fmt::Debug for Process<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("count", &self.count)
            .field("interval", &self.interval)
            .field("start", &self.start)
            .finish()
    }
}

impl<C: Component> Process<C> {
    /// `count` events, `interval` apart, each running `action`; starts at
    /// time zero unless told otherwise.
    pub fn new(
        name: impl Into<String>,
        count: u32,
        interval: Dist,
        action: impl FnMut(&mut Sim<C>, &mut ChaCha8Rng, u32) + 'static,
    ) -> Process<C> {
        Process { name: name.into(), count, interval, action: Box::new(action), start: Start::At(SimTime::ZERO) }
    }

    pub fn at(mut self, at: SimTime) -> Self {
        self.start = Start::At(at);
        self
    }

    pub fn after_start_of(mut self, other: ProcId, delay: Duration) -> Self {
        self.start = Start::AfterStartOf(other, delay);
        self
    }

    pub fn after_end_of(mut self, other: ProcId, delay: Duration) -> Self {
        self.start = Start::AfterEndOf(other, delay);
        self
    }
}
