//! A simulated power switch for the `ha-failover` scenario: the station's
//! external fence device on the seeds that configure one.
//!
//! In: the replicas' `FenceRequested` outputs (collected after every event
//! by a checker, since checkers only read the simulator), acted on by a
//! process that looks every `POLL_INTERVAL`. Out: the node powered off —
//! its agent crashed with every instance it runs — and then, after a drawn
//! delay, `FenceResult { fenced: true }` injected into the replica that
//! asked; the machine boots again (a new agent incarnation) after another
//! draw, sometimes before the late confirmation arrives. Some attempts fail
//! (reported after the delay, nothing crashed) and some hang (no answer).
//! A crash the simulator refuses (faults are over) is a failed attempt: a
//! switch that could not cut the power must not say it did.
//!
//! The check it adds: a node the device reported fenced must not be
//! running a singleton's primary (same incarnation, so it never went down)
//! while another node runs a primary of that singleton with a greater
//! token: a fenced node's instances are dead before any replacement
//! starts. With an honest device it holds by construction; the planted
//! device that confirms without fencing breaks it.

use crate::kv::node::{KvNode, KvOut, StationReplica};
use haven_ha::{Role, ServiceSpec};
use haven_runtime::NodeId;
use haven_sim::{Dist, Process, Sim, SimTime};
use haven_station::{FenceConfig, ReplicaEvent, StationMsg};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

/// How often the device looks for new requests.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Looks at most: 200 s of simulated time, longer than any run.
const POLLS_MAX: u32 = 40_000;
/// Requests waiting for the device; more are dropped (the leader times
/// the attempt out and retries).
pub const QUEUE_LEN_MAX: usize = 64;
/// Confirmed fences the check remembers (the oldest are forgotten).
pub const CONFIRMED_LEN_MAX: usize = 64;
const FAIL_PROBABILITY: f64 = 0.1;
const HANG_PROBABILITY: f64 = 0.1;

/// Whether the device cuts the power before it confirms (the planted bug
/// confirms without fencing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Honest,
    ConfirmsWithoutFencing,
}

/// The station's fencing policy on the seeds with a device: fence after
/// 60% of the 2 s TTL (agents renew every third of it, so a healthy agent
/// is silent for at most one renewal and a retry), attempts time out
/// after 1 s.
pub fn station_policy() -> FenceConfig {
    FenceConfig {
        attempt_timeout: Duration::from_secs(1),
        retry_interval: Duration::from_millis(200),
        ..FenceConfig::new(Duration::from_millis(1_200))
    }
}

/// Whether `seed` configures a fence device: one seed in three, decided by
/// the seed alone so the others replay exactly as before the device.
pub fn configured(seed: u64) -> bool {
    seed % 3 == 1
}

#[derive(Clone, Debug)]
struct Request {
    leader: NodeId,
    node: NodeId,
    session: i64,
}

#[derive(Clone, Copy, Debug)]
struct Confirmed {
    node: NodeId,
    /// The node's incarnation when the device was asked.
    incarnation: u32,
    at: SimTime,
}

/// What the device has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceFigures {
    pub requests: u64,
    pub fenced: u64,
    pub failed: u64,
    pub hung: u64,
}

#[derive(Debug)]
pub struct FenceDevice {
    kind: DeviceKind,
    queue: VecDeque<Request>,
    confirmed: VecDeque<Confirmed>,
    figures: DeviceFigures,
    /// Singletons, by name: the services the check is about.
    singletons: Vec<String>,
}

pub type SharedDevice = Rc<RefCell<FenceDevice>>;

impl FenceDevice {
    pub fn shared(kind: DeviceKind, services: &[ServiceSpec]) -> SharedDevice {
        let singletons = services.iter().filter(|s| s.is_singleton()).map(|s| s.name.clone()).collect();
        let device = FenceDevice {
            kind,
            queue: VecDeque::new(),
            confirmed: VecDeque::new(),
            figures: DeviceFigures::default(),
            singletons,
        };
        Rc::new(RefCell::new(device))
    }

    pub fn figures(&self) -> DeviceFigures {
        self.figures
    }

    /// Checker side, after every event: queues its requests, then checks.
    pub fn observe_and_check<R: StationReplica>(&mut self, sim: &Sim<KvNode<R>>) -> Result<(), String> {
        self.observe(sim);
        self.check(sim)
    }

    /// Queues the requests the last event produced.
    fn observe<R: StationReplica>(&mut self, sim: &Sim<KvNode<R>>) {
        for (from, out) in sim.last_outputs() {
            if let KvOut::Replica(ReplicaEvent::FenceRequested { node, session, .. }) = out
                && self.queue.len() < QUEUE_LEN_MAX
            {
                self.queue.push_back(Request { leader: *from, node: *node, session: *session });
            }
        }
    }

    /// The safety check of the header.
    fn check<R: StationReplica>(&mut self, sim: &Sim<KvNode<R>>) -> Result<(), String> {
        self.confirmed.retain(|c| powered(sim, c.node) && sim.incarnation(c.node) == c.incarnation);
        for c in &self.confirmed {
            for service in &self.singletons {
                let Some(old) = primary_token(sim, c.node, service) else { continue };
                let newer = sim.node_ids().iter().filter(|&&n| n != c.node && powered(sim, n));
                if let Some((n, token)) =
                    newer.filter_map(|&n| Some((n, primary_token(sim, n, service)?))).find(|(_, t)| t > &old)
                {
                    return Err(format!(
                        "{} was reported fenced at {} but its {service} (token {old}) still runs while {n} runs \
                         {service} with token {token}",
                        c.node, c.at
                    ));
                }
            }
        }
        Ok(())
    }

    /// Process side: acts on every queued request (tests driving the
    /// simulator by hand call it between steps).
    pub fn act<R: StationReplica>(&mut self, sim: &mut Sim<KvNode<R>>, rng: &mut ChaCha8Rng) {
        while let Some(request) = self.queue.pop_front() {
            self.figures.requests += 1;
            let draw: f64 = rng.random();
            if draw < HANG_PROBABILITY {
                self.figures.hung += 1;
                continue;
            }
            let incarnation = sim.incarnation(request.node);
            let mut fenced = draw >= HANG_PROBABILITY + FAIL_PROBABILITY;
            if fenced && self.kind == DeviceKind::Honest && powered(sim, request.node) {
                sim.crash(request.node);
                fenced = !powered(sim, request.node);
                if fenced {
                    let node = request.node;
                    sim.after(Dist::uniform(ms(200), ms(6_000)).sample(rng), move |sim, _| sim.restart(node));
                }
            }
            match fenced {
                true => self.figures.fenced += 1,
                false => self.figures.failed += 1,
            }
            if fenced {
                self.confirmed.push_back(Confirmed { node: request.node, incarnation, at: sim.now() });
                if self.confirmed.len() > CONFIRMED_LEN_MAX {
                    self.confirmed.pop_front();
                }
            }
            let Request { leader, node, session } = request;
            let delay = Dist::uniform(ms(10), ms(800)).sample(rng);
            sim.after(delay, move |sim, _| {
                sim.inject(leader, leader, StationMsg::FenceResult { node, session, fenced })
            });
        }
    }
}

/// Running, paused or not: a paused machine resumes unless the power is cut.
fn powered<R: StationReplica>(sim: &Sim<KvNode<R>>, node: NodeId) -> bool {
    sim.is_up(node) || sim.is_paused(node)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The token of the primary of `service` that `node`'s agent runs, if it runs one.
fn primary_token<R: StationReplica>(sim: &Sim<KvNode<R>>, node: NodeId, service: &str) -> Option<u64> {
    let agent = sim.component(node)?.agent()?;
    agent.instances().values().filter(|r| r.up && r.role == Role::Primary && r.service == service).find_map(|r| r.token)
}

/// The device's process: looks for requests every `POLL_INTERVAL`.
pub fn process<R: StationReplica>(device: SharedDevice) -> Process<KvNode<R>> {
    Process::new("fence-device", POLLS_MAX, Dist::constant(POLL_INTERVAL), move |sim, rng, _| {
        device.borrow_mut().act(sim, rng)
    })
}
