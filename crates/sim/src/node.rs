//! One simulated machine.
//!
//! In: the simulator's decisions (start, crash, pause, clock changes).
//! Out: the state the simulator needs per node: the running component (in
//! its `Host`), incarnation, clock, live timer deadlines, pause status and
//! the events a pause holds back, and the disk, which outlives crashes.

use crate::clock::Clock;
use crate::disk::SimDisk;
use crate::event::EventKind;
use crate::time::SimTime;
use haven_runtime::{Component, Host, Instant, NodeId, TimerId};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// What a node is doing, as checkers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    NotStarted,
    Up,
    /// Running but stopped (SIGSTOP): processes nothing until resumed.
    Paused,
    Crashed,
}

pub(crate) struct Node<C: Component> {
    pub(crate) id: NodeId,
    pub(crate) host: Option<Host<C>>,
    pub(crate) ever_started: bool,
    /// Bumped by every start; events for an older one are stale.
    pub(crate) incarnation: u32,
    pub(crate) clock: Clock,
    /// Live timers and their local deadlines, to reschedule them when the
    /// clock changes.
    pub(crate) timers: BTreeMap<TimerId, Instant>,
    pub(crate) timer_epoch: u32,
    pub(crate) paused: bool,
    /// Numbers pauses so that the end of an extended one is recognised.
    pub(crate) pause_id: u32,
    pub(crate) pause_until: SimTime,
    /// Events that came due during a pause, in the order they came due.
    pub(crate) deferred: VecDeque<EventKind<C::Msg>>,
    pub(crate) disk: SimDisk,
}

impl<C: Component> fmt::Debug for Node<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("state", &self.state())
            .field("incarnation", &self.incarnation)
            .field("timers", &self.timers.len())
            .field("deferred", &self.deferred.len())
            .finish()
    }
}

impl<C: Component> Node<C> {
    pub(crate) fn new(id: NodeId, disk: SimDisk) -> Node<C> {
        Node {
            id,
            host: None,
            ever_started: false,
            incarnation: 0,
            clock: Clock::default(),
            timers: BTreeMap::new(),
            timer_epoch: 0,
            paused: false,
            pause_id: 0,
            pause_until: SimTime::ZERO,
            deferred: VecDeque::new(),
            disk,
        }
    }

    pub(crate) fn state(&self) -> NodeState {
        match (&self.host, self.paused, self.ever_started) {
            (Some(_), false, _) => NodeState::Up,
            (Some(_), true, _) => NodeState::Paused,
            (None, _, false) => NodeState::NotStarted,
            (None, _, true) => NodeState::Crashed,
        }
    }

    /// Whether an event for `incarnation` still concerns this node.
    pub(crate) fn runs(&self, incarnation: u32) -> bool {
        self.host.is_some() && self.incarnation == incarnation
    }
}
