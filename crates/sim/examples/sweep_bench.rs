//! A sweep of election-like runs, to measure the simulator's speed.
//!
//! Five nodes ping each other every 50 ms, answer pings, and write and sync
//! a small file every second; a scenario crashes, pauses, partitions and
//! clogs them for about 40 s of virtual time, then heals and checks for
//! 10 s more. Run with `time cargo run --release --example sweep_bench --
//! SEEDS JOBS`: this crate never reads the wall clock itself.

use haven_runtime::{Component, CtxFor, FileName, IoId, IoRequest, IoResult, NodeId, TimerId};
use haven_sim::{Dist, LinkConfig, Process, RunReport, Scenario, Sim, SimConfig, actions, sweep};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Msg {
    Ping(u64),
    Pong(u64),
}

#[derive(Debug)]
enum Tick {
    Ping,
    Persist,
}

struct Pinger {
    seq: u64,
    last_pong: u64,
    file: FileName,
}

impl Component for Pinger {
    type Msg = Msg;
    type Timer = Tick;
    type Io = ();
    type Out = u64;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        ctx.set_timer(Duration::from_millis(50), Tick::Ping);
        ctx.set_timer(Duration::from_secs(1), Tick::Persist);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Ping(seq) => ctx.send(from, Msg::Pong(seq)),
            Msg::Pong(seq) => self.last_pong = self.last_pong.max(seq),
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, _: TimerId, timer: Tick) {
        match timer {
            Tick::Ping => {
                self.seq += 1;
                let me = ctx.node();
                for peer in (1..=5).map(NodeId).filter(|p| *p != me) {
                    ctx.send(peer, Msg::Ping(self.seq));
                }
                ctx.set_timer(Duration::from_millis(50), Tick::Ping);
            }
            Tick::Persist => {
                let data = self.seq.to_le_bytes().to_vec();
                ctx.io(IoRequest::Write { file: self.file.clone(), offset: 0, data }, ());
                ctx.io(IoRequest::Sync { file: self.file.clone() }, ());
                ctx.set_timer(Duration::from_secs(1), Tick::Persist);
            }
        }
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, _: IoId, _: (), result: IoResult) {
        if result.is_err() {
            ctx.output(self.seq);
        }
    }
}

fn run(seed: u64) -> RunReport {
    let mut config = SimConfig::new(seed, 5);
    config.link = LinkConfig { loss_probability: 0.001, duplicate_probability: 0.001, ..LinkConfig::default() };
    let file = FileName::new("epoch").expect("valid name");
    let mut sim = Sim::new(config, move |_| Pinger { seq: 0, last_pong: 0, file: file.clone() }).expect("valid config");
    sim.add_liveness("everyone hears pongs", Duration::from_secs(2), Duration::from_secs(8), |sim: &Sim<Pinger>| {
        let ids = sim.node_ids();
        match ids.iter().find(|n| sim.component(**n).is_none_or(|c| c.last_pong + 5 < c.seq)) {
            Some(n) => Err(format!("{n} hears no pongs")),
            None => Ok(()),
        }
    });
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    let mut sc = Scenario::new();
    let clocks = sc.add(Process::new("clocks", 1, Dist::ZERO, actions::randomize_clocks(s(10), 100)));
    let boot = sc
        .add(Process::new("boot", 5, Dist::uniform(ms(0), ms(100)), actions::start_each()).after_end_of(clocks, ms(0)));
    let crashes = sc.add(
        Process::new("crashes", 8, Dist::exponential(s(5)), actions::crash_restart(Dist::uniform(ms(100), s(3))))
            .after_end_of(boot, s(1)),
    );
    let splits = sc.add(
        Process::new(
            "splits",
            6,
            Dist::exponential(s(6)),
            actions::split_majority_minority(Dist::uniform(ms(200), s(4))),
        )
        .after_end_of(boot, s(1)),
    );
    let pauses = sc.add(
        Process::new("pauses", 6, Dist::exponential(s(6)), actions::pause_one(Dist::uniform(ms(50), s(2))))
            .after_end_of(boot, s(1)),
    );
    let swizzle = sc.add(
        Process::new("swizzle", 2, Dist::exponential(s(15)), actions::swizzle(Dist::uniform(ms(50), ms(500))))
            .after_end_of(boot, s(1)),
    );
    sc.end_after(&[crashes, splits, pauses, swizzle], s(1));
    sim.run(sc)
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().expect("numbers: SEEDS JOBS"));
    let seeds = args.next().unwrap_or(200);
    let jobs = args.next().unwrap_or(2) as usize;
    let report = sweep(0..seeds, jobs, run);
    let events: u64 = report.runs.iter().map(|r| r.events).sum();
    let virtual_secs: f64 = report.runs.iter().map(|r| r.sim_time.as_nanos() as f64 / 1e9).sum();
    println!("{}", report.summary());
    println!("events={events} virtual_seconds={virtual_secs:.0} per_run_events={}", events / seeds.max(1));
}
