//! The command line: every subcommand and flag of `haven`, with the help
//! text an operator reads. Parsing only; the work is in the other modules.

use clap::{Args, Parser, Subcommand};
use haven_basics::DetectorConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "haven",
    version,
    about = "Haven keeps services running across a cluster: it detects failures, agrees on what to do, and fails over.",
    long_about = "Haven keeps services running across a cluster: it detects failures of machines, processes and \
links, agrees through consensus on what to do, and restarts services elsewhere.\n\n\
This build runs the station: a Raft-replicated key-value store that speaks etcd's v3 JSON API \
(`haven station`, `haven up`, the client commands `haven kv|lease|member|status`, and backups with `haven snapshot`), Haven's operator \
API for services (`haven service|apply|events`, `haven node ls|drain|undrain`), plus the failure \
detector and leader election (`haven node`, `haven demo`) and the deterministic simulator (`haven sim`).\n\n\
Start here:\n  haven demo                                   watch a 3-node cluster fail over\n  \
haven up                                     a 3-station cluster on this machine, in the foreground\n  \
haven kv put greeting hello                  then: haven kv get greeting; haven status\n  \
haven apply services.toml                    declare services; then: haven service ls; haven events\n  \
haven sim list                               scenarios the simulator knows\n  \
haven sim run --scenario election --seed 7   one deterministic run\n  \
haven sim sweep --scenario election --seeds 0..2000\n",
    after_help = "Logs go to stderr (level: --log-level or HAVEN_LOG); machine-readable events go to stdout."
)]
pub struct Cli {
    /// Log level for stderr: error, warn, info, debug or trace.
    #[arg(long, global = true, env = "HAVEN_LOG", default_value = "info")]
    pub log_level: tracing::Level,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start 3 stations, 4 agents and a service with standbys on loopback, crash the machine
    /// serving it, and show the failover's timeline in milliseconds.
    Demo(DemoArgs),
    /// The sample service of `haven demo` (an HTTP server naming its node and fencing token).
    #[command(hide = true)]
    DemoService(crate::demo_service::DemoServiceArgs),
    /// The first process of every instance the agent starts: kills the instance's group if the agent dies.
    #[command(hide = true)]
    InstanceShim(crate::agent::shim::ShimArgs),
    /// Managed nodes (`haven node ls|drain|undrain`), or run one election node in the foreground.
    Node(NodeCmd),
    /// Run one station (a Raft member serving etcd's v3 JSON API) until SIGTERM or Ctrl-C.
    #[command(after_help = haven_daemon::STATION_EXAMPLES)]
    Station(Box<haven_daemon::StationArgs>),
    /// Run a 3-station cluster on loopback in the foreground; Ctrl-C stops it.
    Up(UpArgs),
    /// Run the agent of this machine: join the cluster, run the services the coordinator places here.
    Agent(crate::agent_cmd::AgentArgs),
    /// Run a proxy: agents renew their leases and report through it, in batches to the leader.
    #[command(after_help = crate::proxy_cmd::PROXY_EXAMPLES)]
    Proxy(crate::proxy_cmd::ProxyArgs),
    /// Read, write, delete and watch keys; run transactions.
    Kv(haven_client::cli::kv::KvArgs),
    /// Grant, renew, revoke and list leases.
    Lease(haven_client::cli::lease::LeaseArgs),
    /// List, add, remove and promote members.
    Member(haven_client::cli::member::MemberArgs),
    /// Back up the cluster to a file, inspect a backup, or seed a new cluster from one.
    Snapshot(crate::snapshot_cmd::SnapshotArgs),
    /// Every member's role, term, commit and applied index, as a table.
    Status(haven_client::cli::status::StatusArgs),
    /// Add, remove, list, show, move, enable and disable services.
    Service(haven_client::cli::service::ServiceArgs),
    /// The coordinator's decisions and why it took them; --follow for new ones.
    Events(haven_client::cli::events::EventsArgs),
    /// Add or replace every service of a TOML file of [[service]] tables.
    Apply(haven_client::cli::apply::ApplyArgs),
    /// The deterministic simulator: list scenarios, run or sweep seeds, benchmark.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Benchmarks that print figures (run them on an otherwise idle machine).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Committed writes per second of a 3-member group in one process (the
    /// shape of openraft's "minimal" benchmark: in-process, in-memory network,
    /// no disk delay), with 1 and with 256 concurrent clients.
    RaftCore {
        /// Writes to acknowledge in the 1-client run (the 256-client run does 10 times as many).
        #[arg(long, default_value_t = 20_000)]
        writes: u64,
    },
    /// Puts or ranges per second and latency percentiles against any etcd-API cluster, phase by phase.
    Kv(haven_client::bench::KvBenchArgs),
    /// Time from freezing the leader (SIGSTOP) to the next acknowledged write.
    Failover(haven_client::bench::FailoverBenchArgs),
    /// Time from a machine crash or freeze to its singleton answering on another node (real processes).
    FailoverHa(crate::bench_failover_ha::FailoverHaArgs),
    /// This disk's write + fdatasync latency: the floor of a durable write.
    Fsync(haven_client::bench::FsyncBenchArgs),
    /// Nanoseconds per put in the in-memory store alone (what every
    /// replica's event loop spends applying one write of `bench kv`).
    Store {
        /// Puts timed, after one warm-up put per key.
        #[arg(long, default_value_t = 2_000_000)]
        puts: u64,
        /// Distinct keys (8 ASCII digits each, as `bench kv`'s).
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        /// Bytes per value.
        #[arg(long, default_value_t = 256)]
        value_bytes: usize,
        /// Revisions of history kept, as a station's `--history-revisions-max` (0: all).
        #[arg(long, default_value_t = 10_000)]
        history: u64,
    },
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  haven up --dir /tmp/haven\n  \
# in another terminal:\n  haven kv put greeting hello\n  haven status")]
pub struct UpArgs {
    /// Directory for the stations' data and logs, relative to the current directory.
    #[arg(long, default_value = "haven-up")]
    pub dir: PathBuf,
    /// Number of stations.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=7))]
    pub size: u64,
    /// Client port of the first station; the others follow (2379, 2479, 2579, ...), peers at +1.
    #[arg(long, default_value_t = 2379)]
    pub base_port: u16,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the data and logs [default: a new directory under the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run the foundation's demo instead: three election nodes, the leader
    /// killed and frozen, the takeover timed.
    #[arg(long)]
    pub election: bool,
}

/// `haven node ls|drain|undrain` (the HA nodes, through the `/v1/` API),
/// or, with flags and no subcommand, one election node in the foreground.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = NODE_CMD_HELP
)]
pub struct NodeCmd {
    #[command(subcommand)]
    pub command: Option<haven_client::cli::nodes::NodeCommand>,
    #[command(flatten)]
    pub run: Option<NodeArgs>,
}

const NODE_CMD_HELP: &str = "Examples:
  haven node ls              the managed nodes: address, lease, drained or not, instance count, labels
  haven node drain n4        move n4's instances away and place nothing new there (maintenance)
  haven node undrain 4       let the coordinator place instances on n4 again

Without a subcommand, runs one election node of the failure-detector demo (three terminals):
  haven node --id 1 --listen 127.0.0.1:7001 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 --data-dir /tmp/n1";

#[derive(Debug, Args)]
#[command(after_help = "Example (three terminals):\n  \
haven node --id 1 --listen 127.0.0.1:7001 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 --data-dir /tmp/n1\n\n\
Each event is printed on stdout as one line, e.g. `event node=1 kind=leader leader=2`.")]
pub struct NodeArgs {
    /// This node's id, a positive integer unique in the cluster.
    #[arg(long)]
    pub id: u64,
    /// Address to listen on for peers, e.g. 127.0.0.1:7001.
    #[arg(long)]
    pub listen: SocketAddr,
    /// A peer as ID=ADDRESS, e.g. 2=127.0.0.1:7002. Repeat for each peer.
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(u64, SocketAddr)>,
    /// Directory for this node's durable state (its epoch); created if missing.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Interval between pings to each peer, in milliseconds.
    #[arg(long, default_value_t = millis(DetectorConfig::default().period))]
    pub ping_ms: u64,
    /// Silence after which a peer is first suspected, in milliseconds.
    #[arg(long, default_value_t = millis(DetectorConfig::default().timeout_initial))]
    pub timeout_ms: u64,
    /// Added to a peer's timeout each time a suspicion of it proves false, in milliseconds.
    #[arg(long, default_value_t = millis(DetectorConfig::default().timeout_increment))]
    pub timeout_increment_ms: u64,
    /// Upper bound on a peer's timeout as false suspicions grow it, in milliseconds.
    #[arg(long, default_value_t = millis(DetectorConfig::default().timeout_max))]
    pub timeout_ms_max: u64,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// List the scenarios with what each one checks.
    List,
    /// Run one scenario with one seed; the last line is `seed=N trace_hash=H result=...`.
    Run {
        /// Scenario name (see `haven sim list`).
        #[arg(long)]
        scenario: String,
        #[arg(long)]
        seed: u64,
        /// Print the full timeline (virtual time, node, event, effects) to stdout.
        #[arg(long)]
        trace: bool,
        /// ha-scale only: the number of agents [default: 10000].
        #[arg(long)]
        agents: Option<u64>,
        /// ha-scale only: agents report through this many proxies, 0 for none (they talk to the
        /// stations directly) [default: one per 100 agents].
        #[arg(long)]
        proxies: Option<u64>,
    },
    /// Run a range of seeds in parallel; prints a replay command for every failure.
    Sweep {
        #[arg(long)]
        scenario: String,
        /// Seeds as A..B (B excluded), e.g. 0..2000.
        #[arg(long, value_parser = parse_seed_range)]
        seeds: std::ops::Range<u64>,
        /// Worker threads [default: the number of CPUs].
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Time the coordinator's step on synthetic graphs of ha-scale's shape
    /// (one instance per node), at each node count.
    BenchCoordinator {
        /// Node counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 10_000, 30_000])]
        nodes: Vec<u64>,
        /// Steps timed per figure.
        #[arg(long, default_value_t = 200)]
        steps: u64,
    },
    /// Measure simulator speed on the 5-node election scenario.
    Bench {
        /// Seeds to run (more gives a steadier figure).
        #[arg(long, default_value_t = 50)]
        seeds: u64,
    },
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn parse_peer(text: &str) -> Result<(u64, SocketAddr), String> {
    let (id, addr) =
        text.split_once('=').ok_or_else(|| format!("`{text}`: write a peer as ID=ADDRESS, e.g. 2=127.0.0.1:7002"))?;
    let id = id.parse().map_err(|_| format!("`{text}`: the peer id `{id}` is not a positive integer"))?;
    let addr = addr.parse().map_err(|_| format!("`{text}`: `{addr}` is not an address like 127.0.0.1:7002"))?;
    Ok((id, addr))
}

fn parse_seed_range(text: &str) -> Result<std::ops::Range<u64>, String> {
    let usage = || format!("`{text}`: write seeds as A..B with A < B, e.g. 0..2000");
    let (a, b) = text.split_once("..").ok_or_else(usage)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| usage())?, b.parse().map_err(|_| usage())?);
    if a >= b {
        return Err(usage());
    }
    Ok(a..b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn node_is_both_the_ha_node_commands_and_the_election_node() {
        use haven_client::cli::nodes::NodeCommand;
        let cli = Cli::try_parse_from(["haven", "node", "drain", "n4", "--endpoints", "http://127.0.0.1:1"]).unwrap();
        let Command::Node(NodeCmd { command: Some(NodeCommand::Drain { id, global }), run: None }) = cli.command else {
            panic!("a drain")
        };
        assert_eq!((id, global.endpoints), (4, vec!["http://127.0.0.1:1".to_owned()]));
        let election = ["haven", "node", "--id", "1", "--listen", "127.0.0.1:7001", "--data-dir", "/tmp/x"];
        let cli = Cli::try_parse_from(election).unwrap();
        let Command::Node(NodeCmd { command: None, run: Some(args) }) = cli.command else { panic!("an election node") };
        assert_eq!(args.id, 1);
        assert!(Cli::try_parse_from(["haven", "node", "--id", "1", "ls"]).is_err(), "one or the other");
    }

    #[test]
    fn bad_values_say_how_to_fix_them() {
        assert!(parse_peer("2:127.0.0.1:1").unwrap_err().contains("ID=ADDRESS"));
        assert!(parse_peer("x=127.0.0.1:1").unwrap_err().contains("positive integer"));
        assert_eq!(parse_seed_range("3..10"), Ok(3..10));
        assert!(parse_seed_range("10..3").unwrap_err().contains("A < B"));
    }
}
