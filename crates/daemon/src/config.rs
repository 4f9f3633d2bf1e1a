//! `haven station`'s settings.
//!
//! In: [`StationArgs`] — flags and `HAVEN_*` variables (clap reads both;
//! flags win), plus the TOML file named by `--config` for whatever neither
//! gave. Out: a [`StationConfig`] with every default filled in and every
//! check that needs no system call passed, and warnings (e.g. an even
//! number of voters); or the first [`ConfigError`], naming the field and
//! the fix. The checks that touch the system (data directory writable,
//! ports free) are in `checks.rs`.

use crate::cluster::{MemberSpec, parse_initial_cluster};
use crate::config_error::ConfigError;
use crate::fence::FenceSettings;
use haven_station::config::SNAPSHOT_KEYS_PER_TURN_DEFAULT;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// etcd's default request size limit (1.5 MiB).
pub const REQUEST_BYTES_MAX_DEFAULT: u64 = 3 * 512 * 1024;
/// The largest request size accepted: the WAL reads back entries of up to
/// 4 MiB, and a request must fit in one with room for its envelope.
pub const REQUEST_BYTES_MAX_CEILING: u64 = 3 * 1024 * 1024;
pub const REQUEST_BYTES_MAX_FLOOR: u64 = 1024;
/// History kept by default: enough for watchers to resume after a short
/// disconnection, small enough that snapshots stay cheap under load.
pub const HISTORY_REVISIONS_MAX_DEFAULT: u64 = 10_000;

/// Entries applied between two snapshots by default: etcd's --snapshot-count.
/// A snapshot writes the whole store (a few keys per turn, see
/// `--snapshot-keys-per-turn`), so it is kept rare; the log between two is
/// replayed on restart.
pub const SNAPSHOT_ENTRIES_DEFAULT: u64 = 100_000;
/// Shortest election timeout, in ms; followers draw theirs from 1-1.5x it
/// (`run::replica_config`). A frozen leader is replaced about 230 ms later
/// (the sooner of two followers' draws from 200..300 ms, less the time
/// since the last heartbeat). What bounds it from below is the longest turn
/// a healthy leader takes without sending a heartbeat: on the README's
/// 2-core VM, a leader's snapshot of a 100,000-key store took 100-220 ms in
/// one turn until session 10, when snapshots came to be written over many
/// turns; the timeout was not lowered since. (A station's own stall, when
/// the whole VM stops every station together, no longer costs an election
/// at any setting: see `run::stall_gap_min`.) Under 256 clients: at 150 ms,
/// 2 elections in 70 s; at 200 ms, none in 80 s.
///
/// The draw was 1-2x until session 12. Session 8 had tried 1-1.5x: the
/// median fell from 270 to 243 ms over 20 trials, but a split vote took
/// 665 ms. Since session 12 a follower that grants a pre-vote restarts its
/// timeout, so two followers split only when they time out within the
/// pre-vote's one-way delay of each other; over 100 trials each, 1-2x gave
/// a median of 262 ms (max 387), 1-1.5x 234 ms (max 298), neither a split
/// vote. A split still costs one more timeout: at most 600 ms at 1-1.5x,
/// against 800 ms at 1-2x.
pub const ELECTION_TIMEOUT_MS_DEFAULT: u64 = 200;
/// How often the leader sends heartbeats, in ms.
pub const HEARTBEAT_MS_DEFAULT: u64 = 40;
/// Client connections open at once by default: far above what a cluster
/// manager's clients need (each agent holds one or two), far below the
/// 524,288 open files systemd allows a service.
pub const CLIENT_CONNECTIONS_MAX_DEFAULT: u64 = 10_000;
/// The most a station may be told to hold: beyond this the open-file limit
/// of any ordinary host runs out first.
pub const CLIENT_CONNECTIONS_MAX_CEILING: u64 = 1_000_000;

/// The most worker threads a station may be given: far more than any
/// host's cores, so a typo (an extra zero) is caught before it spawns
/// threads by the thousand.
pub const WORKER_THREADS_CEILING: u64 = 1024;

/// How `haven station --help` ends: examples to copy.
pub const STATION_EXAMPLES: &str = "\
Examples:
  # A three-member cluster on one machine (run each line in its own terminal):
  haven station --id 1 --data-dir /tmp/h1 \\
    --initial-cluster 1=127.0.0.1:2380=http://127.0.0.1:2379,2=127.0.0.1:2480=http://127.0.0.1:2479,3=127.0.0.1:2580=http://127.0.0.1:2579
  haven station --id 2 --data-dir /tmp/h2 --initial-cluster <same list>
  haven station --id 3 --data-dir /tmp/h3 --initial-cluster <same list>

  # A fourth member joining that running cluster: ask the cluster to add it
  # (it prints the id), then start it with the whole list and 'existing':
  haven member add --peer-url http://127.0.0.1:2680 --endpoints http://127.0.0.1:2379
  haven station --id 4 --data-dir /tmp/h4 --initial-cluster-state existing \
    --initial-cluster <same list>,4=127.0.0.1:2680=http://127.0.0.1:2679

  # The same settings from a file (keys are the flag names with underscores):
  #   id = 1
  #   data_dir = \"/var/lib/haven\"
  #   initial_cluster = \"1=10.0.0.1:2380=http://10.0.0.1:2379,...\"
  haven station --config /etc/haven/station.toml

  # Every flag also reads HAVEN_<FLAG>, e.g. HAVEN_DATA_DIR; flags win over
  # variables, which win over the file.
  curl -s http://127.0.0.1:2379/health";

/// The settings as given: every field optional, so the file, the
/// environment and the flags can be layered.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationArgs {
    /// TOML file with any of the settings below; flags and HAVEN_* variables override it.
    #[arg(long, env = "HAVEN_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This member's id: its entry in --initial-cluster.
    #[arg(long, env = "HAVEN_ID")]
    pub id: Option<u64>,
    /// A human-readable name for this member [default: n<id>].
    #[arg(long, env = "HAVEN_NAME")]
    pub name: Option<String>,
    /// Where the write-ahead log lives; a restart recovers everything acknowledged from it.
    #[arg(long, env = "HAVEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address for Raft traffic from peers [default: this member's peer address in --initial-cluster].
    #[arg(long, env = "HAVEN_LISTEN_PEER", value_name = "IP:PORT")]
    pub listen_peer: Option<SocketAddr>,
    /// Address for the client API [default: this member's client URL in --initial-cluster].
    #[arg(long, env = "HAVEN_LISTEN_CLIENT", value_name = "IP:PORT")]
    pub listen_client: Option<SocketAddr>,
    /// Every member as id=peer_ip:port=http://client_host:port, comma-separated (like etcd's).
    #[arg(long, env = "HAVEN_INITIAL_CLUSTER", value_name = "LIST")]
    pub initial_cluster: Option<String>,
    /// `new` to bootstrap a cluster from --initial-cluster; `existing` to join a running
    /// one after `haven member add` (this member then learns everything from the leader) [default: new].
    #[arg(long, env = "HAVEN_INITIAL_CLUSTER_STATE", value_name = "STATE")]
    pub initial_cluster_state: Option<ClusterState>,
    /// Shortest election timeout; followers wait 1-1.5x this for a leader's heartbeat [default: 200].
    #[arg(long, env = "HAVEN_ELECTION_TIMEOUT_MS", value_name = "MS")]
    pub election_timeout_ms: Option<u64>,
    /// How often the leader sends heartbeats; under half the election timeout [default: 40].
    #[arg(long, env = "HAVEN_HEARTBEAT_MS", value_name = "MS")]
    pub heartbeat_ms: Option<u64>,
    /// How long a client request may wait for its answer [default: 5000].
    #[arg(long, env = "HAVEN_REQUEST_TIMEOUT_MS", value_name = "MS")]
    pub request_timeout_ms: Option<u64>,
    /// Largest client request body, in bytes [default: 1572864, as etcd].
    #[arg(long, env = "HAVEN_REQUEST_BYTES_MAX", value_name = "BYTES")]
    pub request_bytes_max: Option<u64>,
    /// Client connections (HTTP clients, agents, watchers) open at once; past it new ones wait
    /// in the kernel's queue until one closes. Lowered at start to what the open-file limit
    /// leaves, with a warning [default: 10000].
    #[arg(long, env = "HAVEN_CLIENT_CONNECTIONS_MAX", value_name = "CONNECTIONS")]
    pub client_connections_max: Option<u64>,
    /// MVCC history kept, in revisions: the leader compacts older history
    /// once it grows an eighth past this (etcd's revision auto-compaction,
    /// in small steps so that no compaction stalls the stations); 0 keeps
    /// everything until a client compacts [default: 10000].
    #[arg(long, env = "HAVEN_HISTORY_REVISIONS_MAX", value_name = "REVISIONS")]
    pub history_revisions_max: Option<u64>,
    /// Entries applied between two snapshots of the store (etcd's --snapshot-count);
    /// the log before a snapshot is dropped [default: 100000].
    #[arg(long, env = "HAVEN_SNAPSHOT_ENTRIES", value_name = "ENTRIES")]
    pub snapshot_entries: Option<u64>,
    /// Keys of the store a snapshot writes per turn of the station's event loop; between
    /// turns the station applies and answers as usual. Lower spreads a snapshot thinner and
    /// longer [default: 1024, about half a millisecond of 256-byte values].
    #[arg(long, env = "HAVEN_SNAPSHOT_KEYS_PER_TURN", value_name = "KEYS")]
    pub snapshot_keys_per_turn: Option<u64>,
    /// External fence command, run by the leader as `<command> <node id> <node address>` (also
    /// HAVEN_FENCE_NODE and HAVEN_FENCE_ADDRESS in its environment) for a node that holds a
    /// singleton and went silent; exit 0 means the node is powered off or cut off. Split on
    /// whitespace, no shell and no quoting: for more, name a script [default: none, failover
    /// waits for the node's lease to expire].
    #[arg(long, env = "HAVEN_FENCE_COMMAND", value_name = "COMMAND")]
    pub fence_command: Option<String>,
    /// Silence (time since a node's last lease renewal) after which it is fenced; above two
    /// renewal intervals of the agents (2/3 of their lease TTL), below the TTL [default: 750].
    #[arg(long, env = "HAVEN_FENCE_AFTER_MS", value_name = "MS")]
    pub fence_after_ms: Option<u64>,
    /// How long one run of the fence command may take before it is killed and counted failed
    /// [default: 10000].
    #[arg(long, env = "HAVEN_FENCE_TIMEOUT_MS", value_name = "MS")]
    pub fence_timeout_ms: Option<u64>,
    /// Threads that serve clients and peers and run the event loop (the disk has its own).
    /// Several stations on one machine each take one per core unless told otherwise, and
    /// then wait on one another; `haven up` gives each its share [default: one per core].
    #[arg(long, env = "HAVEN_WORKER_THREADS", value_name = "THREADS")]
    pub worker_threads: Option<u64>,
}

/// Whether a member bootstraps a new cluster or joins a running one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    #[default]
    New,
    Existing,
}

/// The settings in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StationConfig {
    pub id: u64,
    pub name: String,
    pub data_dir: PathBuf,
    pub listen_peer: SocketAddr,
    pub listen_client: SocketAddr,
    /// Every member, sorted by id, this one included.
    pub members: Vec<MemberSpec>,
    /// Joining a running cluster (`--initial-cluster-state existing`): the
    /// member neither seeds the member table nor counts itself a voter; it
    /// learns both from the leader, which added it as a learner.
    pub joining: bool,
    pub election_timeout: Duration,
    pub heartbeat: Duration,
    pub request_timeout: Duration,
    pub request_bytes_max: u64,
    /// Client connections open at once (`capped_listener.rs`).
    pub client_connections_max: usize,
    /// `None`: no auto-compaction.
    pub history_revisions_max: Option<u64>,
    pub snapshot_entries: u64,
    pub snapshot_keys_per_turn: usize,
    /// Client requests (local and forwarded) waiting for an answer at once;
    /// more are refused "too many requests".
    pub requests_pending_len_max: usize,
    /// Watches open at once through this member.
    pub watches_len_max: usize,
    /// The external fence command and its timings (`fence.rs`); `None`: none.
    pub fence: Option<FenceSettings>,
    /// The async runtime's worker threads; `None`: one per core.
    pub worker_threads: Option<usize>,
}

impl StationArgs {
    /// `self` (flags and environment) over the `--config` file, if any.
    pub fn with_file(self) -> Result<StationArgs, ConfigError> {
        let Some(path) = self.config.clone() else { return Ok(self) };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::File { path: path.clone(), source })?;
        let file = parse_file(&path, &text)?;
        Ok(self.over(file))
    }

    /// Each field of `self`, or `base`'s where `self` has none.
    fn over(self, base: StationArgs) -> StationArgs {
        StationArgs {
            config: self.config,
            id: self.id.or(base.id),
            name: self.name.or(base.name),
            data_dir: self.data_dir.or(base.data_dir),
            listen_peer: self.listen_peer.or(base.listen_peer),
            listen_client: self.listen_client.or(base.listen_client),
            initial_cluster: self.initial_cluster.or(base.initial_cluster),
            initial_cluster_state: self.initial_cluster_state.or(base.initial_cluster_state),
            election_timeout_ms: self.election_timeout_ms.or(base.election_timeout_ms),
            heartbeat_ms: self.heartbeat_ms.or(base.heartbeat_ms),
            request_timeout_ms: self.request_timeout_ms.or(base.request_timeout_ms),
            request_bytes_max: self.request_bytes_max.or(base.request_bytes_max),
            client_connections_max: self.client_connections_max.or(base.client_connections_max),
            history_revisions_max: self.history_revisions_max.or(base.history_revisions_max),
            snapshot_entries: self.snapshot_entries.or(base.snapshot_entries),
            snapshot_keys_per_turn: self.snapshot_keys_per_turn.or(base.snapshot_keys_per_turn),
            fence_command: self.fence_command.or(base.fence_command),
            fence_after_ms: self.fence_after_ms.or(base.fence_after_ms),
            fence_timeout_ms: self.fence_timeout_ms.or(base.fence_timeout_ms),
            worker_threads: self.worker_threads.or(base.worker_threads),
        }
    }
}

pub(crate) fn parse_file(path: &Path, text: &str) -> Result<StationArgs, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::FileSyntax { path: path.to_owned(), message: e.message().to_owned() })
}

impl StationConfig {
    /// Loads the file under the flags, fills in defaults and checks
    /// everything that needs no system call. Returns the warnings too.
    pub fn load(args: StationArgs) -> Result<(StationConfig, Vec<String>), ConfigError> {
        StationConfig::resolve(args.with_file()?)
    }

    /// As [`StationConfig::load`], for settings already layered.
    pub fn resolve(args: StationArgs) -> Result<(StationConfig, Vec<String>), ConfigError> {
        let id = args.id.ok_or(ConfigError::Missing { flag: "--id", hint: "this member's id, e.g. --id 1" })?;
        if id == 0 || id == u64::MAX {
            return Err(ConfigError::ReservedId { id });
        }
        let data_dir = args.data_dir.ok_or(ConfigError::Missing {
            flag: "--data-dir",
            hint: "where this member keeps its log, e.g. --data-dir /var/lib/haven",
        })?;
        let cluster = args.initial_cluster.ok_or(ConfigError::Missing {
            flag: "--initial-cluster",
            hint: "every member as id=peer_ip:port=http://client_host:port, comma-separated, e.g. 1=127.0.0.1:2380=http://127.0.0.1:2379",
        })?;
        let members = parse_initial_cluster(&cluster)?;
        let warnings = check_members(&members)?;
        let me = members.iter().find(|m| m.id == id).ok_or_else(|| ConfigError::NotAMember {
            id,
            members: members.iter().map(|m| m.id.to_string()).collect::<Vec<_>>().join(", "),
        })?;
        let listen_peer = args.listen_peer.unwrap_or(me.peer_addr);
        let listen_client = match args.listen_client {
            Some(addr) => addr,
            None => me.client_addr().ok_or_else(|| ConfigError::ClientAddr { url: me.client_url.clone() })?,
        };
        let election_ms =
            positive("--election-timeout-ms", args.election_timeout_ms.unwrap_or(ELECTION_TIMEOUT_MS_DEFAULT))?;
        let heartbeat_ms = positive("--heartbeat-ms", args.heartbeat_ms.unwrap_or(HEARTBEAT_MS_DEFAULT))?;
        if election_ms <= heartbeat_ms.saturating_mul(2) {
            return Err(ConfigError::Timing { election_ms, heartbeat_ms });
        }
        let request_timeout_ms = positive("--request-timeout-ms", args.request_timeout_ms.unwrap_or(5_000))?;
        let request_bytes_max = args.request_bytes_max.unwrap_or(REQUEST_BYTES_MAX_DEFAULT);
        if !(REQUEST_BYTES_MAX_FLOOR..=REQUEST_BYTES_MAX_CEILING).contains(&request_bytes_max) {
            let (min, max) = (REQUEST_BYTES_MAX_FLOOR, REQUEST_BYTES_MAX_CEILING);
            return Err(ConfigError::RequestBytes { value: request_bytes_max, min, max });
        }
        let client_connections_max = args.client_connections_max.unwrap_or(CLIENT_CONNECTIONS_MAX_DEFAULT);
        if !(1..=CLIENT_CONNECTIONS_MAX_CEILING).contains(&client_connections_max) {
            let max = CLIENT_CONNECTIONS_MAX_CEILING;
            return Err(ConfigError::ClientConnections { value: client_connections_max, max });
        }
        let fence = FenceSettings::resolve(args.fence_command.as_deref(), args.fence_after_ms, args.fence_timeout_ms)?;
        if let Some(value) = args.worker_threads.filter(|n| !(1..=WORKER_THREADS_CEILING).contains(n)) {
            return Err(ConfigError::WorkerThreads { value, max: WORKER_THREADS_CEILING });
        }
        let config = StationConfig {
            id,
            name: args.name.unwrap_or_else(|| format!("n{id}")),
            data_dir,
            listen_peer,
            listen_client,
            members,
            joining: args.initial_cluster_state == Some(ClusterState::Existing),
            election_timeout: Duration::from_millis(election_ms),
            heartbeat: Duration::from_millis(heartbeat_ms),
            request_timeout: Duration::from_millis(request_timeout_ms),
            request_bytes_max,
            client_connections_max: usize::try_from(client_connections_max).expect("at most the ceiling"),
            history_revisions_max: Some(args.history_revisions_max.unwrap_or(HISTORY_REVISIONS_MAX_DEFAULT))
                .filter(|&kept| kept > 0),
            snapshot_entries: positive(
                "--snapshot-entries",
                args.snapshot_entries.unwrap_or(SNAPSHOT_ENTRIES_DEFAULT),
            )?,
            snapshot_keys_per_turn: positive(
                "--snapshot-keys-per-turn",
                args.snapshot_keys_per_turn.unwrap_or(SNAPSHOT_KEYS_PER_TURN_DEFAULT as u64),
            )
            .map(|keys| usize::try_from(keys).unwrap_or(usize::MAX))?,
            requests_pending_len_max: 4096,
            watches_len_max: 1000,
            fence,
            worker_threads: args.worker_threads.map(|n| usize::try_from(n).expect("at most the ceiling")),
        };
        Ok((config, warnings))
    }

    /// This member's entry.
    pub fn me(&self) -> &MemberSpec {
        self.members.iter().find(|m| m.id == self.id).expect("resolve checked that this member is listed")
    }
}

fn positive(flag: &'static str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 { Err(ConfigError::Zero { flag }) } else { Ok(value) }
}

/// Whole-list checks: non-empty, unique ids and addresses; warns about an
/// even number of voters.
fn check_members(members: &[MemberSpec]) -> Result<Vec<String>, ConfigError> {
    if members.is_empty() {
        return Err(ConfigError::NoMembers);
    }
    let mut ids = BTreeMap::new();
    let mut addrs: BTreeMap<String, u64> = BTreeMap::new();
    for m in members {
        if m.id == 0 || m.id == u64::MAX {
            return Err(ConfigError::ReservedId { id: m.id });
        }
        if ids.insert(m.id, ()).is_some() {
            return Err(ConfigError::DuplicateId { id: m.id });
        }
        let peer = m.peer_addr.to_string();
        let client = m.client_addr().map_or_else(|| m.client_url.clone(), |addr| addr.to_string());
        for (what, addr) in [("address", peer), ("address", client)] {
            if let Some(&first) = addrs.get(&addr) {
                return Err(ConfigError::DuplicateAddr { what, addr, first, second: m.id });
            }
            addrs.insert(addr, m.id);
        }
    }
    let mut warnings = Vec::new();
    if members.len().is_multiple_of(2) {
        let n = members.len();
        warnings.push(format!(
            "--initial-cluster has {n} voters: an even number tolerates no more failures than {} voters do \
             ({} down); an odd number is as safe for less cost",
            n - 1,
            (n - 1) / 2
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const CLUSTER3: &str = "1=127.0.0.1:2380=http://127.0.0.1:2379,2=127.0.0.1:2480=http://127.0.0.1:2479,3=127.0.0.1:2580=http://127.0.0.1:2579";

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: StationArgs,
    }

    fn flags(line: &str) -> StationArgs {
        Cli::try_parse_from(std::iter::once("station").chain(line.split_whitespace())).expect("flags parse").args
    }

    fn valid() -> StationArgs {
        flags(&format!("--id 2 --data-dir /tmp/h2 --initial-cluster {CLUSTER3}"))
    }

    fn error(args: StationArgs) -> String {
        StationConfig::resolve(args).expect_err("refused").to_string()
    }

    #[test]
    fn a_minimal_configuration_takes_its_addresses_from_the_member_list() {
        let (config, warnings) = StationConfig::resolve(valid()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.name, "n2");
        assert_eq!(config.listen_peer, "127.0.0.1:2480".parse().unwrap());
        assert_eq!(config.listen_client, "127.0.0.1:2479".parse().unwrap());
        assert_eq!(config.members.len(), 3);
        assert_eq!(
            (config.election_timeout, config.heartbeat),
            (Duration::from_millis(200), Duration::from_millis(40))
        );
        assert_eq!(config.request_bytes_max, 1_572_864);
        assert_eq!(config.history_revisions_max, Some(10_000));
        assert_eq!(config.snapshot_keys_per_turn, 1_024);
        assert_eq!(config.me().id, 2);
    }

    #[test]
    fn the_client_connection_cap_defaults_to_ten_thousand_and_refuses_zero() {
        assert_eq!(StationConfig::resolve(valid()).unwrap().0.client_connections_max, 10_000);
        let set = StationConfig::resolve(flags(&format!(
            "--id 2 --data-dir /tmp/h2 --initial-cluster {CLUSTER3} --client-connections-max 64"
        )));
        assert_eq!(set.unwrap().0.client_connections_max, 64);
        for value in [0, CLIENT_CONNECTIONS_MAX_CEILING + 1] {
            let message = error(StationArgs { client_connections_max: Some(value), ..valid() });
            assert!(message.contains("--client-connections-max"), "{message}");
        }
    }

    #[test]
    fn worker_threads_default_to_the_runtimes_choice_and_refuse_zero_and_absurd_counts() {
        assert_eq!(StationConfig::resolve(valid()).unwrap().0.worker_threads, None);
        let set = flags(&format!("--id 2 --data-dir /tmp/h2 --initial-cluster {CLUSTER3} --worker-threads 3"));
        assert_eq!(StationConfig::resolve(set).unwrap().0.worker_threads, Some(3));
        for value in [0, WORKER_THREADS_CEILING + 1] {
            let message = error(StationArgs { worker_threads: Some(value), ..valid() });
            assert!(message.starts_with("--worker-threads") && message.contains("one per core"), "{message}");
        }
    }

    #[test]
    fn a_snapshot_that_writes_no_key_per_turn_is_refused_naming_the_flag() {
        let message = error(StationArgs { snapshot_keys_per_turn: Some(0), ..valid() });
        assert!(message.contains("--snapshot-keys-per-turn"), "{message}");
        let args = StationArgs { snapshot_keys_per_turn: Some(64), ..valid() };
        assert_eq!(StationConfig::resolve(args).unwrap().0.snapshot_keys_per_turn, 64);
    }

    #[test]
    fn a_zero_history_bound_keeps_the_whole_history() {
        let args = StationArgs { history_revisions_max: Some(0), ..valid() };
        assert_eq!(StationConfig::resolve(args).unwrap().0.history_revisions_max, None);
    }

    #[test]
    fn a_missing_field_is_named_with_an_example() {
        let cases = [
            (StationArgs { id: None, ..valid() }, "--id is required"),
            (StationArgs { data_dir: None, ..valid() }, "--data-dir is required"),
            (StationArgs { initial_cluster: None, ..valid() }, "--initial-cluster is required"),
        ];
        for (args, expected) in cases {
            let message = error(args);
            assert!(message.starts_with(expected) && message.contains("e.g."), "{message}");
        }
    }

    #[test]
    fn member_list_mistakes_are_named_with_the_fix() {
        let cluster = |text: &str| StationArgs { initial_cluster: Some(text.to_owned()), ..valid() };
        let cases = [
            (cluster(""), "--initial-cluster is empty; list every member"),
            (
                cluster("2=127.0.0.1:2480=http://127.0.0.1:2479,2=127.0.0.1:2580=http://127.0.0.1:2579"),
                "lists member id 2 twice; give every member its own id",
            ),
            (
                cluster("1=127.0.0.1:2480=http://127.0.0.1:2379,2=127.0.0.1:2480=http://127.0.0.1:2479"),
                "address 127.0.0.1:2480 is given to members 1 and 2; give every member its own ports",
            ),
            (
                cluster("1=127.0.0.1:2380=http://127.0.0.1:2479,2=127.0.0.1:2480=http://127.0.0.1:2479"),
                "address 127.0.0.1:2479 is given to members 1 and 2",
            ),
            (
                cluster("1=127.0.0.1:2380=http://127.0.0.1:2379,3=127.0.0.1:2580=http://127.0.0.1:2579"),
                "--id 2 is not in --initial-cluster (members: 1, 3); add an entry for it or fix --id",
            ),
            (cluster("0=127.0.0.1:2380=http://127.0.0.1:2379"), "--id 0 is reserved"),
            (cluster("2=127.0.0.1:2480=http://station-2:2479"), "--listen-client is required"),
        ];
        for (args, expected) in cases {
            let message = error(args);
            assert!(message.contains(expected), "expected {expected:?} in {message:?}");
        }
        let named = StationArgs {
            initial_cluster: Some("2=127.0.0.1:2480=http://station-2:2479".into()),
            listen_client: Some("127.0.0.1:2479".parse().unwrap()),
            ..valid()
        };
        assert!(StationConfig::resolve(named).is_ok(), "a host name is fine with --listen-client");
    }

    #[test]
    fn an_even_number_of_voters_is_a_warning_not_an_error() {
        let two = "1=127.0.0.1:2380=http://127.0.0.1:2379,2=127.0.0.1:2480=http://127.0.0.1:2479";
        let (_, warnings) =
            StationConfig::resolve(StationArgs { initial_cluster: Some(two.into()), ..valid() }).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("2 voters") && warnings[0].contains("odd number"), "{warnings:?}");
    }

    #[test]
    fn timing_and_size_mistakes_are_named_with_the_fix() {
        let cases = [
            (
                StationArgs { election_timeout_ms: Some(100), heartbeat_ms: Some(50), ..valid() },
                "--election-timeout-ms (100) must be above twice --heartbeat-ms (50); raise it to at least 101",
            ),
            (StationArgs { heartbeat_ms: Some(0), ..valid() }, "--heartbeat-ms must be at least 1"),
            (StationArgs { request_timeout_ms: Some(0), ..valid() }, "--request-timeout-ms must be at least 1"),
            (
                StationArgs { request_bytes_max: Some(10), ..valid() },
                "--request-bytes-max 10 is outside 1024..=3145728",
            ),
            (StationArgs { id: Some(u64::MAX), ..valid() }, "is reserved; use an id from 1 to"),
        ];
        for (args, expected) in cases {
            let message = error(args);
            assert!(message.contains(expected), "expected {expected:?} in {message:?}");
        }
        let edge = StationArgs { election_timeout_ms: Some(101), heartbeat_ms: Some(50), ..valid() };
        assert!(StationConfig::resolve(edge).is_ok(), "just above twice the heartbeat is enough");
    }

    #[test]
    fn the_fence_command_comes_from_a_flag_or_the_file_and_is_checked_at_start() {
        let (config, _) = StationConfig::resolve(valid()).unwrap();
        assert_eq!(config.fence, None, "no fence command by default");
        let args = StationArgs { fence_command: Some("sh -c true".into()), fence_timeout_ms: Some(500), ..valid() };
        let fence = StationConfig::resolve(args).unwrap().0.fence.expect("configured");
        assert!(fence.argv[0].ends_with("/sh") && fence.argv[1..] == ["-c", "true"], "{:?}", fence.argv);
        assert_eq!((fence.after, fence.timeout), (Duration::from_millis(750), Duration::from_millis(500)));
        let toml =
            parse_file(Path::new("s.toml"), "fence_command = \"/bin/sh -c true\"\nfence_after_ms = 600\n").unwrap();
        assert_eq!((toml.fence_command.as_deref(), toml.fence_after_ms), (Some("/bin/sh -c true"), Some(600)));
        let flag = flags(&format!("--id 2 --data-dir /d --initial-cluster {CLUSTER3} --fence-command /no/such/fence"));
        let message = error(flag);
        assert!(message.starts_with("fence_command program \"/no/such/fence\" does not exist"), "{message}");
        let message = error(StationArgs { fence_after_ms: Some(600), ..valid() });
        assert!(message.contains("--fence-after-ms is set but --fence-command is not"), "{message}");
    }

    #[test]
    fn the_file_fills_in_what_the_flags_do_not_give_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("haven-daemon-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("station.toml");
        let text = format!("id = 3\ndata_dir = \"/from/file\"\nheartbeat_ms = 20\ninitial_cluster = \"{CLUSTER3}\"\n");
        std::fs::write(&file, text).unwrap();
        let args = flags(&format!("--config {} --data-dir /from/flag", file.display()));
        let (config, _) = StationConfig::load(args).unwrap();
        assert_eq!((config.id, config.heartbeat), (3, Duration::from_millis(20)), "from the file");
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"), "the flag wins");

        std::fs::write(&file, "id = 3\ndatadir = \"/x\"\n").unwrap();
        let message = StationConfig::load(flags(&format!("--config {}", file.display()))).unwrap_err().to_string();
        assert!(message.contains("unknown field `datadir`") && message.contains("data_dir ="), "{message}");
        let missing = flags(&format!("--config {}", dir.join("nothing.toml").display()));
        let message = StationConfig::load(missing).unwrap_err().to_string();
        assert!(message.starts_with("cannot read --config") && message.contains("nothing.toml"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
