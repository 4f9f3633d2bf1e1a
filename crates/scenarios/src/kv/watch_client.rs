//! A simulated watcher: watches a key range from revision 1 on one replica
//! (asking for each event's `prev_kv`) and moves to another when that one
//! goes quiet or loses its place.
//!
//! In: `WatchEvents` from replicas, its timers. Out: watch and cancel
//! requests, and a [`WatchEvent`] per event received, in the order it
//! accepted them, for the scenario's watch-order checker.
//!
//! A replica numbers the messages of a watch, so the client accepts only
//! the next number: a repeat is a duplicated message (ignored), a gap a lost
//! one; a gap, a refusal, a compaction notice or `quiet_timeout` without any
//! message ends the watch, and the client watches again on the next replica
//! from where it got to. It does not smooth anything else over: whatever a
//! replica sends in order is reported as is, so the checker sees the
//! replica's gaps and duplicates.

use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_station::{StationMsg, WatchCreate, WatchEvents};
use haven_store::{Event, EventKind};
use rand::RngExt;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct WatchClientConfig {
    pub servers: Vec<NodeId>,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// Without any message for this long, watch elsewhere.
    pub quiet_timeout: Duration,
}

impl WatchClientConfig {
    /// The watcher of the kv scenarios: `key`..`range_end` on any of
    /// `servers`, moving on after a second of silence.
    pub fn new(servers: Vec<NodeId>, key: &[u8], range_end: &[u8]) -> WatchClientConfig {
        let quiet_timeout = Duration::from_secs(1);
        WatchClientConfig { servers, key: key.to_vec(), range_end: range_end.to_vec(), quiet_timeout }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    Received {
        revision: u64,
        key: Vec<u8>,
        kind: EventKind,
        /// The revision of the event's `prev_kv` (the watch asks for it).
        prev_revision: Option<u64>,
    },
    /// A replica reported the history from `from_revision` compacted.
    Compacted { from_revision: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchClientTimer {
    /// `quiet_timeout` passed since the current watch last heard anything.
    Quiet,
}

/// Where the client got to: the last revision it received events of, and
/// how many events of that revision it has (a batch may end inside one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Position {
    revision: u64,
    events_in_revision: usize,
}

#[derive(Debug)]
pub struct WatchClient {
    config: WatchClientConfig,
    target: usize,
    /// The current watch: its id, and the number of the last batch accepted.
    watch: u64,
    batch: u64,
    quiet: Option<TimerId>,
    at: Position,
    /// Events of `at.revision` the current watch re-sends and the client skips.
    skip: usize,
}

impl WatchClient {
    pub fn new(config: WatchClientConfig) -> WatchClient {
        assert!(!config.servers.is_empty(), "a watcher needs a replica to watch");
        assert!(!config.quiet_timeout.is_zero(), "a zero quiet timeout would re-watch forever");
        WatchClient { config, target: 0, watch: 0, batch: 0, quiet: None, at: Position::default(), skip: 0 }
    }

    /// Watches again on the next replica, from the revision it got to
    /// (skipping the events of that revision it has).
    fn rewatch(&mut self, ctx: &mut impl CtxFor<Self>) {
        let client = ctx.node().0;
        if self.watch > 0 {
            let old = self.config.servers[self.target % self.config.servers.len()];
            ctx.send(old, StationMsg::CancelWatch { client, watch: self.watch });
            self.target += 1;
        }
        self.watch += 1;
        self.batch = 0;
        self.skip = self.at.events_in_revision;
        let start_revision = self.at.revision.max(1);
        let to = self.config.servers[self.target % self.config.servers.len()];
        let (key, range_end) = (self.config.key.clone(), self.config.range_end.clone());
        let create = WatchCreate { client, watch: self.watch, key, range_end, start_revision, prev_kv: true };
        ctx.send(to, StationMsg::Watch(create));
        self.arm(ctx);
    }

    fn arm(&mut self, ctx: &mut impl CtxFor<Self>) {
        if let Some(id) = self.quiet.take() {
            ctx.cancel_timer(id);
        }
        self.quiet = Some(ctx.set_timer(self.config.quiet_timeout, WatchClientTimer::Quiet));
    }

    fn on_events(&mut self, ctx: &mut impl CtxFor<Self>, message: WatchEvents) {
        if message.client != ctx.node().0 || message.watch != self.watch || message.batch <= self.batch {
            return; // another watch's, or a duplicate
        }
        if message.batch > self.batch + 1 || message.refused.is_some() {
            return self.rewatch(ctx); // a message was lost, or the replica cannot serve
        }
        if message.compacted {
            ctx.output(WatchEvent::Compacted { from_revision: self.at.revision });
            return self.rewatch(ctx);
        }
        self.batch = message.batch;
        message.events.iter().for_each(|e| self.accept(ctx, e));
        self.arm(ctx);
    }

    fn accept(&mut self, ctx: &mut impl CtxFor<Self>, event: &Event) {
        let revision = event.kv.mod_revision;
        if revision == self.at.revision && self.skip > 0 {
            self.skip -= 1;
            return;
        }
        self.skip = 0;
        match revision == self.at.revision {
            true => self.at.events_in_revision += 1,
            false => self.at = Position { revision, events_in_revision: 1 },
        }
        let prev_revision = event.prev_kv.as_ref().map(|kv| kv.mod_revision);
        ctx.output(WatchEvent::Received { revision, key: event.kv.key.clone(), kind: event.kind, prev_revision });
    }
}

impl Component for WatchClient {
    type Msg = StationMsg;
    type Timer = WatchClientTimer;
    type Io = haven_basics::Never;
    type Out = WatchEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.target = ctx.rng().random_range(0..self.config.servers.len());
        self.rewatch(ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, _from: NodeId, msg: StationMsg) {
        if let StationMsg::WatchEvents(message) = msg {
            self.on_events(ctx, message);
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: WatchClientTimer) {
        let WatchClientTimer::Quiet = timer;
        if self.quiet == Some(id) {
            self.quiet = None;
            self.rewatch(ctx);
        }
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, tag: haven_basics::Never, _result: IoResult) {
        match tag {}
    }
}
