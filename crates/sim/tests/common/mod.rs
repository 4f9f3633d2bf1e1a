//! A small test component: pings its peers on a timer, answers pings, and
//! runs disk requests and timers it is sent, reporting everything as outputs.

#![allow(dead_code)]

use haven_runtime::{Component, CtxFor, Instant, IoId, IoRequest, IoResult, NodeId, TimerId};
use haven_sim::{Sim, SimConfig};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    Ping(u64),
    Pong(u64),
    /// Run this disk request and output its result.
    Io(IoRequest),
    /// Set a timer of this many milliseconds and output when it fires.
    Timer(u64),
}

#[derive(Debug)]
pub enum Tick {
    Ping,
    User(u64),
}

#[derive(Debug)]
pub enum Tag {
    Boot,
    Cmd,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    Started,
    /// The result of reading `state` at start.
    Boot(IoResult),
    Recv {
        from: NodeId,
        msg: Msg,
    },
    Io(IoResult),
    Fired {
        ms: u64,
        at: Instant,
    },
}

pub struct Node {
    nodes: u64,
    ping: Option<Duration>,
    seq: u64,
}

impl Node {
    pub fn new(nodes: u64, ping: Option<Duration>) -> Node {
        Node { nodes, ping, seq: 0 }
    }
}

pub fn state_file() -> haven_runtime::FileName {
    haven_runtime::FileName::new("state").unwrap()
}

impl Component for Node {
    type Msg = Msg;
    type Timer = Tick;
    type Io = Tag;
    type Out = Out;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        ctx.output(Out::Started);
        ctx.io(IoRequest::Read { file: state_file(), offset: 0, len_max: 1 << 20 }, Tag::Boot);
        if let Some(every) = self.ping {
            ctx.set_timer(every, Tick::Ping);
        }
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: Msg) {
        match &msg {
            Msg::Ping(seq) => ctx.send(from, Msg::Pong(*seq)),
            Msg::Pong(_) => {}
            Msg::Io(request) => {
                ctx.io(request.clone(), Tag::Cmd);
            }
            Msg::Timer(ms) => {
                ctx.set_timer(Duration::from_millis(*ms), Tick::User(*ms));
            }
        }
        ctx.output(Out::Recv { from, msg });
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, _: TimerId, timer: Tick) {
        match timer {
            Tick::Ping => {
                self.seq += 1;
                let me = ctx.node();
                for peer in (1..=self.nodes).map(NodeId).filter(|p| *p != me) {
                    ctx.send(peer, Msg::Ping(self.seq));
                }
                ctx.set_timer(self.ping.expect("ping timer only when pinging"), Tick::Ping);
            }
            Tick::User(ms) => ctx.output(Out::Fired { ms, at: ctx.now() }),
        }
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, _: IoId, tag: Tag, result: IoResult) {
        match tag {
            Tag::Boot => ctx.output(Out::Boot(result)),
            Tag::Cmd => ctx.output(Out::Io(result)),
        }
    }
}

/// A simulator of `nodes` pinging nodes (every `ping`, if given).
pub fn sim(config: SimConfig, ping: Option<Duration>) -> Sim<Node> {
    let nodes = config.nodes as u64;
    Sim::new(config, move |_| Node::new(nodes, ping)).unwrap()
}

/// Every output of the run, with its time, collected by a safety checker
/// that never fails.
pub type Log = Rc<RefCell<Vec<(haven_sim::SimTime, NodeId, Out)>>>;

pub fn record(sim: &mut Sim<Node>) -> Log {
    let log: Log = Rc::default();
    let sink = log.clone();
    sim.add_safety("record", move |sim| {
        sink.borrow_mut().extend(sim.last_outputs().iter().map(|(n, o)| (sim.now(), *n, o.clone())));
        Ok(())
    });
    log
}

/// Lines of the readable trace.
pub fn trace(sim: &mut Sim<Node>) -> Rc<RefCell<Vec<String>>> {
    let lines: Rc<RefCell<Vec<String>>> = Rc::default();
    let sink = lines.clone();
    sim.set_trace(move |line| sink.borrow_mut().push(line.to_owned()));
    lines
}

pub fn n(i: u64) -> NodeId {
    NodeId(i)
}

pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}
