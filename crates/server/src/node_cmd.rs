//! `haven node`: one election node on the production executor.
//!
//! In: the command-line arguments. Out: a running node until SIGTERM or
//! Ctrl-C; one stdout line per election event (see `event_line`); logs on
//! stderr. Arguments are validated before anything starts, with errors that
//! name the flag and the fix.

use crate::cli::NodeArgs;
use crate::event_line;
use anyhow::{Context as _, Result, bail};
use haven_basics::{DetectorConfig, ElectionNode};
use haven_net::{Limits, NodeConfig};
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

fn detector_config(args: &NodeArgs) -> Result<DetectorConfig> {
    let config = DetectorConfig {
        period: Duration::from_millis(args.ping_ms),
        timeout_initial: Duration::from_millis(args.timeout_ms),
        timeout_increment: Duration::from_millis(args.timeout_increment_ms),
        timeout_max: Duration::from_millis(args.timeout_ms_max),
    };
    config.validate().context("check --ping-ms, --timeout-ms, --timeout-increment-ms and --timeout-ms-max")?;
    Ok(config)
}

fn peers(args: &NodeArgs) -> Result<BTreeMap<NodeId, std::net::SocketAddr>> {
    if args.id == 0 {
        bail!("--id must be a positive integer (0 is reserved)");
    }
    let mut peers = BTreeMap::new();
    for &(id, addr) in &args.peers {
        if id == args.id {
            bail!("--peer {id}={addr}: that is this node's own --id; list only the other nodes");
        }
        if peers.insert(NodeId(id), addr).is_some() {
            bail!("--peer {id}=...: peer id {id} is given twice; each peer needs a unique id");
        }
        if addr == args.listen {
            bail!("--peer {id}={addr}: same address as --listen; each node needs its own port");
        }
    }
    Ok(peers)
}

pub fn run(args: NodeArgs) -> Result<()> {
    let detector = detector_config(&args)?;
    let peers = peers(&args)?;
    let me = NodeId(args.id);
    let mut nodes: Vec<NodeId> = peers.keys().copied().collect();
    nodes.push(me);
    nodes.sort();
    let config = NodeConfig {
        id: me,
        listen: args.listen,
        peers,
        data_dir: args.data_dir.clone(),
        limits: Limits::default(),
        counters: Default::default(),
        peer_updates: None,
        advertise: Some(args.listen),
        cluster: Default::default(),
        unknown_peers: None,
    };
    let component = ElectionNode::<haven_basics::PingDetector>::new(nodes, detector);
    let on_output = move |event| {
        let mut out = std::io::stdout().lock();
        // A closed stdout (the demo went away) must not kill the node.
        let _ = writeln!(out, "{}", event_line::format(me, &event));
        let _ = out.flush();
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime
        .block_on(haven_net::run(config, None, component, on_output, shutdown_signal()))
        .with_context(|| format!("node n{} stopped with an error", args.id))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
    }
}
