//! The WAL as a sub-component.
//!
//! In: the parent's calls (open, then appends, hard-state updates, suffix
//! truncations, snapshot saves and compactions), each with a sub-context;
//! and the completions and timers tagged [`WalIo`] / [`WalTimer`] that the
//! parent routes back.
//! Out: disk requests and timers through the context, [`WalEvent`]s as
//! outputs, and for each accepted request a [`Ticket`] that a later
//! `WalEvent::Durable` covers.
//!
//! Lifecycle: `Created` → `open` → `Opening` → `WalEvent::Opened` → `Open`.
//! A fatal error (`WalEvent::Failed`) ends this instance: from then on it
//! refuses everything and ignores completions. The parent rebuilds the node
//! as after a crash, and a new `Wal` recovers what is durable.

use crate::config::{ConfigError, WalConfig};
use crate::entry::{Entry, SnapshotMeta};
use crate::error::WalError;
use crate::event::{Ticket, WalEvent};
use crate::open::{OpenNext, Opener};
use crate::running::Running;
use crate::segment_name::SegmentName;
use crate::tags::{NoMsg, WalIo, WalTimer};
use bytes::Bytes;
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};

#[derive(Debug)]
enum State {
    Created,
    Opening(Box<Opener>),
    Open(Box<Running>),
    Failed,
}

/// The write-ahead log and snapshot store of one node.
#[derive(Debug)]
pub struct Wal {
    config: WalConfig,
    state: State,
}

impl Wal {
    pub fn new(config: WalConfig) -> Result<Wal, ConfigError> {
        config.validate()?;
        Ok(Wal { config, state: State::Created })
    }

    /// Starts recovery; `WalEvent::Opened` (or `Failed`) reports its end.
    pub fn open(&mut self, ctx: &mut impl CtxFor<Self>) -> Result<(), WalError> {
        if !matches!(self.state, State::Created) {
            return Err(WalError::AlreadyOpened);
        }
        let (opener, request) = Opener::start(self.config.clone());
        ctx.io(request, WalIo::Open);
        self.state = State::Opening(Box::new(opener));
        Ok(())
    }

    fn running(&mut self) -> Result<&mut Running, WalError> {
        match &mut self.state {
            State::Open(running) => Ok(running),
            State::Created | State::Opening(_) => Err(WalError::NotOpen),
            State::Failed => Err(WalError::Failed),
        }
    }

    /// Queues `entries`, which must continue the log (the first index is
    /// `index_last() + 1`) with terms that never decrease.
    pub fn append(&mut self, ctx: &mut impl CtxFor<Self>, entries: &[Entry]) -> Result<Ticket, WalError> {
        let running = self.running()?;
        let ticket = running.append(entries)?;
        running.kick(ctx);
        Ok(ticket)
    }

    /// Queues a new hard state; the last one made durable wins on recovery.
    pub fn set_hard_state(&mut self, ctx: &mut impl CtxFor<Self>, hard_state: Vec<u8>) -> Result<Ticket, WalError> {
        let running = self.running()?;
        let ticket = running.set_hard_state(hard_state)?;
        running.kick(ctx);
        Ok(ticket)
    }

    /// Queues the removal of every entry from `index_from` on. Entries
    /// appended afterwards go into the same or a later batch, so the
    /// truncation is durable no later than they are.
    pub fn truncate_suffix(&mut self, ctx: &mut impl CtxFor<Self>, index_from: u64) -> Result<Ticket, WalError> {
        let running = self.running()?;
        let ticket = running.truncate_suffix(index_from)?;
        running.kick(ctx);
        Ok(ticket)
    }

    /// Starts saving a snapshot; `SnapshotSaved` or `SnapshotFailed` follows.
    /// Once saved, an index past the log's end becomes its new end.
    pub fn save_snapshot(
        &mut self,
        ctx: &mut impl CtxFor<Self>,
        meta: SnapshotMeta,
        data: impl Into<Bytes>,
    ) -> Result<(), WalError> {
        self.running()?.save_snapshot(ctx, meta, data.into())
    }

    /// Starts removing the segments holding only entries at or below `index`
    /// (which the saved snapshot must cover); returns how many, and
    /// `Compacted` follows unless that is 0.
    pub fn compact(&mut self, ctx: &mut impl CtxFor<Self>, index: u64) -> Result<usize, WalError> {
        self.running()?.compact(ctx, index)
    }

    /// The log's last index as accepted so far (durable or not); `None` until open.
    pub fn index_last(&self) -> Option<u64> {
        match &self.state {
            State::Open(running) => Some(running.index_last()),
            _ => None,
        }
    }

    /// The saved snapshot's metadata, if open and one is saved.
    pub fn snapshot(&self) -> Option<SnapshotMeta> {
        match &self.state {
            State::Open(running) => Some(running.snapshot()).filter(|s| s.index > 0),
            _ => None,
        }
    }

    /// Segments durably on disk, oldest first (empty until open).
    pub fn segments(&self) -> &[SegmentName] {
        match &self.state {
            State::Open(running) => running.segments(),
            _ => &[],
        }
    }

    /// Bytes of accepted requests not yet handed to a write.
    pub fn queue_bytes(&self) -> usize {
        match &self.state {
            State::Open(running) => running.queue_bytes(),
            _ => 0,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    fn fail(&mut self, ctx: &mut impl CtxFor<Self>, error: WalError) {
        self.state = State::Failed;
        ctx.output(WalEvent::Failed { error });
    }

    fn on_open_io(&mut self, ctx: &mut impl CtxFor<Self>, result: IoResult) -> Result<(), WalError> {
        let State::Opening(opener) = &mut self.state else { unreachable!("routed by state") };
        match opener.on_io(result)? {
            OpenNext::Io(request) => {
                ctx.io(request, WalIo::Open);
            }
            OpenNext::Done(opened) => {
                let (running, event) = Running::new(self.config.clone(), *opened);
                self.state = State::Open(Box::new(running));
                ctx.output(event);
            }
        }
        Ok(())
    }
}

impl Component for Wal {
    type Msg = NoMsg;
    type Timer = WalTimer;
    type Io = WalIo;
    type Out = WalEvent;

    /// Opens the log, so that a `Wal` can also run as a node's top component.
    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        if let Err(error) = self.open(ctx) {
            self.fail(ctx, error);
        }
    }

    fn on_message(&mut self, _: &mut impl CtxFor<Self>, _: NodeId, msg: NoMsg) {
        match msg {}
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, _: TimerId, timer: WalTimer) {
        match &mut self.state {
            State::Open(running) => running.on_timer(ctx, timer),
            State::Failed => {}
            state => panic!("timer {timer:?} fired in state {state:?}"),
        }
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, _: IoId, tag: WalIo, result: IoResult) {
        let outcome = match (&mut self.state, tag) {
            // Operations started before a failure still complete; nothing
            // depends on them any more.
            (State::Failed, _) => Ok(()),
            (State::Opening(_), WalIo::Open) => self.on_open_io(ctx, result),
            (State::Open(running), WalIo::Log) => running.on_log_io(ctx, result),
            (State::Open(running), WalIo::Snapshot) => {
                running.on_snapshot_io(ctx, result);
                Ok(())
            }
            (State::Open(running), WalIo::Compact) => {
                running.on_compact_io(ctx, result);
                Ok(())
            }
            (state, tag) => panic!("{tag:?} completion in state {state:?}"),
        };
        if let Err(error) = outcome {
            self.fail(ctx, error);
        }
    }
}
