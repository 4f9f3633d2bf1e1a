//! A node's top component for the election protocol: boot, then ◇P + Ω +
//! best-effort broadcast.
//!
//! In: the executor's start, messages, timers and disk completions.
//! Out: pings/pongs and announcements to peers, disk requests, and
//! [`ElectionEvent`] observations (who is suspected, who is leader).
//!
//! Boot makes the node's new epoch durable before the node takes part:
//! read `epoch` (missing means first boot), then write `epoch.tmp`, sync it,
//! rename it over `epoch` and sync the directory. Only then does the node
//! ping, so two incarnations never share an epoch even across crashes at
//! any point of boot. Disk errors are reported and the failed step retried
//! with a capped backoff; a failed sync is retried from the write of
//! `epoch.tmp`, since syncing again could succeed over pages the kernel
//! dropped. An epoch file that stays unreadable after `READ_ATTEMPTS_MAX`
//! reads halts the node (it cannot know its incarnation).

use crate::Never;
use crate::broadcast::{Broadcast, BroadcastMsg, Delivered};
use crate::config::DetectorConfig;
use crate::detector::{Detector, DetectorEvent, DetectorMsg, DetectorSpec, DetectorTimer, PingDetector};
use crate::epoch_file;
use crate::omega::Omega;
use haven_runtime::{Component, CtxFor, FileName, IoDone, IoError, IoId, IoRequest, IoResult, NodeId, TimerId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Reads of a corrupt epoch file before the node halts.
pub const READ_ATTEMPTS_MAX: u32 = 3;
const RETRY_DELAY_MIN: Duration = Duration::from_millis(100);
const RETRY_DELAY_MAX: Duration = Duration::from_secs(5);

/// Sent by a node each time it becomes leader in its own view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub leader: NodeId,
    pub epoch: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionMsg {
    Detector(DetectorMsg),
    Broadcast(BroadcastMsg<Announcement>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionTimer {
    Detector(DetectorTimer),
    DiskRetry,
}

/// The boot step a disk operation belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootStep {
    ReadEpoch,
    WriteTmp,
    SyncTmp,
    Rename,
    SyncDir,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionEvent {
    /// Boot finished; the node takes part as incarnation `epoch`.
    Ready {
        epoch: u64,
    },
    Suspect {
        node: NodeId,
    },
    Trust {
        node: NodeId,
        epoch: u64,
    },
    /// This node now trusts `leader`.
    Leader {
        leader: NodeId,
    },
    /// `from` announced itself leader in its epoch `epoch`.
    Announced {
        from: NodeId,
        epoch: u64,
    },
    DiskError {
        step: BootStep,
        error: IoError,
    },
    /// The node stopped taking part and will not recover by itself.
    Fatal {
        reason: String,
    },
}

impl From<DetectorMsg> for ElectionMsg {
    fn from(m: DetectorMsg) -> Self {
        ElectionMsg::Detector(m)
    }
}
impl From<BroadcastMsg<Announcement>> for ElectionMsg {
    fn from(m: BroadcastMsg<Announcement>) -> Self {
        ElectionMsg::Broadcast(m)
    }
}
impl From<DetectorTimer> for ElectionTimer {
    fn from(t: DetectorTimer) -> Self {
        ElectionTimer::Detector(t)
    }
}
impl From<Never> for ElectionTimer {
    fn from(n: Never) -> Self {
        match n {}
    }
}
impl From<Never> for BootStep {
    fn from(n: Never) -> Self {
        match n {}
    }
}

#[derive(Debug)]
struct Boot {
    step: BootStep,
    /// The epoch being made durable (known once the old one is read).
    epoch: u64,
    read_failures: u32,
    retry_delay: Duration,
}

#[derive(Debug)]
struct Running<D> {
    epoch: u64,
    detector: D,
    omega: Omega,
    broadcast: Broadcast<Announcement>,
}

#[derive(Debug)]
enum Phase<D> {
    /// Built, `on_start` not yet called.
    Created,
    Booting(Boot),
    Running(Running<D>),
    Halted,
}

/// The election node. `D` is the failure detector; tests plant broken ones.
#[derive(Debug)]
pub struct ElectionNode<D: Detector = PingDetector> {
    nodes: Vec<NodeId>,
    config: DetectorConfig,
    phase: Phase<D>,
}

impl<D: Detector> ElectionNode<D> {
    /// `nodes` is every member of the group, this one included.
    pub fn new(nodes: Vec<NodeId>, config: DetectorConfig) -> Self {
        ElectionNode { nodes, config, phase: Phase::Created }
    }

    /// The leader this node trusts; `None` while booting or halted.
    pub fn leader(&self) -> Option<NodeId> {
        match &self.phase {
            Phase::Running(r) => Some(r.omega.leader()),
            _ => None,
        }
    }

    /// True once the node stopped for good (see [`ElectionEvent::Fatal`]).
    pub fn is_halted(&self) -> bool {
        matches!(self.phase, Phase::Halted)
    }

    pub fn epoch(&self) -> Option<u64> {
        match &self.phase {
            Phase::Running(r) => Some(r.epoch),
            _ => None,
        }
    }

    pub fn detector(&self) -> Option<&D> {
        match &self.phase {
            Phase::Running(r) => Some(&r.detector),
            _ => None,
        }
    }

    fn file(name: &str) -> FileName {
        FileName::new(name).expect("constant file names are valid")
    }

    fn start_step(ctx: &mut impl CtxFor<Self>, boot: &Boot) {
        let request = match boot.step {
            BootStep::ReadEpoch => {
                IoRequest::Read { file: Self::file(epoch_file::FILE), offset: 0, len_max: epoch_file::FILE_BYTES_MAX }
            }
            BootStep::WriteTmp => IoRequest::Write {
                file: Self::file(epoch_file::FILE_TMP),
                offset: 0,
                data: epoch_file::encode(boot.epoch),
            },
            BootStep::SyncTmp => IoRequest::Sync { file: Self::file(epoch_file::FILE_TMP) },
            BootStep::Rename => {
                IoRequest::Rename { from: Self::file(epoch_file::FILE_TMP), to: Self::file(epoch_file::FILE) }
            }
            BootStep::SyncDir => IoRequest::SyncDir,
        };
        ctx.io(request, boot.step);
    }

    /// Moves boot forward after a successful step; returns the epoch once durable.
    fn advance(boot: &mut Boot, done: IoDone) -> Result<Option<u64>, String> {
        boot.step = match (boot.step, done) {
            (BootStep::ReadEpoch, IoDone::Read(bytes)) => match epoch_file::decode(&bytes) {
                Ok(old) => {
                    boot.epoch = old.checked_add(1).ok_or("epoch exhausted")?;
                    BootStep::WriteTmp
                }
                Err(e) => return Err(e.to_string()),
            },
            (BootStep::WriteTmp, IoDone::Written) => BootStep::SyncTmp,
            (BootStep::SyncTmp, IoDone::Synced) => BootStep::Rename,
            (BootStep::Rename, IoDone::Renamed) => BootStep::SyncDir,
            (BootStep::SyncDir, IoDone::DirSynced) => return Ok(Some(boot.epoch)),
            (step, done) => panic!("executor answered {step:?} with {done:?}"),
        };
        Ok(None)
    }

    fn on_boot_io(&mut self, ctx: &mut impl CtxFor<Self>, step: BootStep, result: IoResult) {
        let Phase::Booting(boot) = &mut self.phase else { return };
        assert_eq!(boot.step, step, "one boot step at a time");
        let outcome = match result {
            Ok(done) => Self::advance(boot, done),
            Err(IoError::NotFound) if step == BootStep::ReadEpoch => {
                boot.epoch = 1;
                boot.step = BootStep::WriteTmp;
                Ok(None)
            }
            Err(error) => {
                // After a failed fsync the kernel may have dropped the pages
                // it was to write, and a later fsync that succeeds proves
                // nothing about them: start again from the write.
                if matches!(step, BootStep::SyncTmp | BootStep::SyncDir) {
                    boot.step = BootStep::WriteTmp;
                }
                ctx.output(ElectionEvent::DiskError { step, error });
                Self::retry_later(ctx, boot);
                return;
            }
        };
        match outcome {
            Ok(Some(epoch)) => self.run(ctx, epoch),
            Ok(None) => {
                boot.retry_delay = RETRY_DELAY_MIN;
                Self::start_step(ctx, boot);
            }
            Err(reason) => {
                boot.read_failures += 1;
                if boot.read_failures >= READ_ATTEMPTS_MAX {
                    let reason = format!("epoch file unreadable after {} reads: {reason}", boot.read_failures);
                    ctx.output(ElectionEvent::Fatal { reason });
                    self.phase = Phase::Halted;
                } else {
                    let error = IoError::Other(reason);
                    ctx.output(ElectionEvent::DiskError { step, error });
                    Self::retry_later(ctx, boot);
                }
            }
        }
    }

    fn retry_later(ctx: &mut impl CtxFor<Self>, boot: &mut Boot) {
        ctx.set_timer(boot.retry_delay, ElectionTimer::DiskRetry);
        boot.retry_delay = (boot.retry_delay * 2).min(RETRY_DELAY_MAX);
    }

    fn run(&mut self, ctx: &mut impl CtxFor<Self>, epoch: u64) {
        let me = ctx.node();
        let spec = DetectorSpec { me, epoch, peers: self.nodes.clone(), config: self.config.clone() };
        let mut running = Running {
            epoch,
            detector: D::new(spec),
            omega: Omega::new(me, epoch),
            broadcast: Broadcast::new(me, &self.nodes, epoch),
        };
        ctx.output(ElectionEvent::Ready { epoch });
        ctx.output(ElectionEvent::Leader { leader: me });
        let mut events = Vec::new();
        running.detector.on_start(&mut ctx.sub(&mut events));
        running.on_detector_events(ctx, events);
        self.phase = Phase::Running(running);
    }
}

impl<D: Detector> Running<D> {
    fn on_detector_events(&mut self, ctx: &mut impl CtxFor<ElectionNode<D>>, events: Vec<DetectorEvent>) {
        for event in events {
            match event {
                DetectorEvent::Suspect { node } => ctx.output(ElectionEvent::Suspect { node }),
                DetectorEvent::Trust { node, epoch } => ctx.output(ElectionEvent::Trust { node, epoch }),
            }
            if let Some(leader) = self.omega.on_detector(&event) {
                ctx.output(ElectionEvent::Leader { leader });
                if leader == ctx.node() {
                    let mut delivered = Vec::new();
                    let announcement = Announcement { leader, epoch: self.epoch };
                    self.broadcast.broadcast(&mut ctx.sub(&mut delivered), announcement);
                    Self::on_delivered(ctx, delivered);
                }
            }
        }
    }

    fn on_delivered(ctx: &mut impl CtxFor<ElectionNode<D>>, delivered: Vec<Delivered<Announcement>>) {
        for d in delivered {
            ctx.output(ElectionEvent::Announced { from: d.from, epoch: d.payload.epoch });
        }
    }
}

impl<D: Detector> Component for ElectionNode<D> {
    type Msg = ElectionMsg;
    type Timer = ElectionTimer;
    type Io = BootStep;
    type Out = ElectionEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        let boot = Boot { step: BootStep::ReadEpoch, epoch: 0, read_failures: 0, retry_delay: RETRY_DELAY_MIN };
        Self::start_step(ctx, &boot);
        self.phase = Phase::Booting(boot);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: ElectionMsg) {
        let Phase::Running(running) = &mut self.phase else { return };
        match msg {
            ElectionMsg::Detector(m) => {
                let mut events = Vec::new();
                running.detector.on_message(&mut ctx.sub(&mut events), from, m);
                running.on_detector_events(ctx, events);
            }
            ElectionMsg::Broadcast(m) => {
                let mut delivered = Vec::new();
                running.broadcast.on_message(&mut ctx.sub(&mut delivered), from, m);
                Running::<D>::on_delivered(ctx, delivered);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: ElectionTimer) {
        match (&mut self.phase, timer) {
            (Phase::Running(running), ElectionTimer::Detector(t)) => {
                let mut events = Vec::new();
                running.detector.on_timer(&mut ctx.sub(&mut events), id, t);
                running.on_detector_events(ctx, events);
            }
            (Phase::Booting(boot), ElectionTimer::DiskRetry) => Self::start_step(ctx, boot),
            (phase, timer) => panic!("timer {timer:?} fired in phase {phase:?}"),
        }
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, _id: IoId, step: BootStep, result: IoResult) {
        self.on_boot_io(ctx, step, result);
    }
}
