//! `haven snapshot save|status|restore`: backups of a cluster, and new
//! clusters started from them.
//!
//! In: the parsed subcommand. Out: `save` writes a backup file fetched from
//! the leader (`GET /haven/v1/snapshot`, following a follower's pointer to
//! it), checked whole before it is renamed into place; `status` prints
//! what a backup holds; `restore` seeds a new member's empty data
//! directory from one (`haven_daemon::restore`), to be started with
//! `haven station` and the same flags.

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use haven_daemon::restore::restore_data_dir;
use haven_daemon::{SNAPSHOT_PATH, StationArgs, StationConfig};
use haven_station::restore::{Bumps, RestoreSummary, inspect};
use haven_station::snapshot_file::SNAPSHOT_BYTES_MAX;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SNAPSHOT_EXAMPLES: &str = "Examples:
  haven snapshot save backup.haven                     from the leader of the cluster at --endpoints
  haven snapshot status backup.haven                   what it holds, checked whole

  # The cluster is lost (a majority of its stations will not come back).
  # Stop every member still running, then seed each new member's empty
  # data directory from the backup, with the new cluster's member list:
  haven snapshot restore backup.haven --id 1 --data-dir /var/lib/haven-new \\
    --initial-cluster 1=10.0.0.1:2380=http://10.0.0.1:2379,2=10.0.0.2:2380=http://10.0.0.2:2379,3=10.0.0.3:2380=http://10.0.0.3:2379
  # (the same on members 2 and 3 with their --id and --data-dir), then start
  # each with the same three flags:
  haven station --id 1 --data-dir /var/lib/haven-new --initial-cluster <same list>

The restored cluster holds the backup's keys, leases, services and nodes,
with a cluster id of its own. Writes made after the backup are lost. Every
fencing token, instance id and command id it hands out is above any the
lost cluster could have handed out after the backup (--counter-bump), and
so is every revision (--revision-bump; older ones read as compacted).";

/// How long `save` waits for the leader's snapshot: a large store is
/// written a few keys per turn between the station's ordinary work.
const SAVE_TIMEOUT: Duration = Duration::from_secs(150);

#[derive(Debug, Args)]
#[command(after_help = SNAPSHOT_EXAMPLES)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Fetch a backup from the cluster's leader into FILE (written whole, then renamed).
    Save {
        /// Where to write the backup (an existing file is replaced only once the new one is whole).
        file: PathBuf,
        /// Client URLs of the cluster, comma-separated; a follower points to the leader.
        #[arg(long, env = "HAVEN_ENDPOINTS", value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
        endpoints: Vec<String>,
    },
    /// Check a backup whole and print what it holds.
    Status {
        /// The backup file.
        file: PathBuf,
    },
    /// Seed a new member's empty data directory from a backup.
    Restore {
        /// The backup file (`haven snapshot save`).
        file: PathBuf,
        /// The new member's id in --initial-cluster.
        #[arg(long)]
        id: u64,
        /// The new member's data directory: missing or empty.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The new cluster, as `haven station` takes it (id=peer_ip:port=http://client_host:port,...).
        #[arg(long, value_name = "LIST")]
        initial_cluster: String,
        /// Added to the fencing-token, instance and command counters, so that none the lost cluster
        /// handed out after the backup is handed out again; the same on every member.
        #[arg(long, default_value_t = 1_000_000_000)]
        counter_bump: u64,
        /// Added to the store's revision (everything below is marked compacted), so that no
        /// revision a client saw in the lost cluster names other changes here, and a watcher
        /// resuming from one is told to read again (etcd's --bump-revision); the same on every
        /// member.
        #[arg(long, default_value_t = 1_000_000_000)]
        revision_bump: u64,
    },
}

pub fn run(args: SnapshotArgs) -> Result<()> {
    match args.command {
        SnapshotCommand::Save { file, endpoints } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(save(&file, &endpoints))
        }
        SnapshotCommand::Status { file } => status(&file),
        SnapshotCommand::Restore { file, id, data_dir, initial_cluster, counter_bump, revision_bump } => {
            let args = StationArgs {
                id: Some(id),
                data_dir: Some(data_dir),
                initial_cluster: Some(initial_cluster),
                ..StationArgs::default()
            };
            let (config, _) = StationConfig::resolve(args)?;
            let backup = read_backup(&file)?;
            let bumps = Bumps { revision: revision_bump, counters: counter_bump };
            let summary = restore_data_dir(&backup, &config, bumps)?;
            print_summary(&summary);
            println!(
                "seeded {} for member {id} of {} members; start it with the same --id, --data-dir and --initial-cluster",
                config.data_dir.display(),
                config.members.len()
            );
            Ok(())
        }
    }
}

fn read_backup(file: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?.len();
    if len > u64::from(SNAPSHOT_BYTES_MAX) {
        bail!(
            "{} is {len} bytes, above the largest snapshot ({SNAPSHOT_BYTES_MAX}): not a Haven backup",
            file.display()
        );
    }
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

fn status(file: &Path) -> Result<()> {
    let backup = read_backup(file)?;
    let (_, summary, members) = inspect(&backup).with_context(|| file.display().to_string())?;
    print_summary(&summary);
    let ids: Vec<String> = members.iter().map(|m| format!("{} ({})", m.id, m.peer_addr)).collect();
    println!("members   {}", ids.join(", "));
    println!("size      {} bytes, checksums good", backup.len());
    Ok(())
}

fn print_summary(s: &RestoreSummary) {
    println!("log       index {} term {}", s.index, s.term);
    println!("store     revision {}, {} keys, {} leases", s.revision, s.keys, s.leases);
    println!("HA        {} services, {} nodes, last fencing token {}", s.services, s.nodes, s.token_last);
}

/// Fetches from each endpoint in turn, following a follower's pointer to
/// the leader once per endpoint.
async fn save(file: &Path, endpoints: &[String]) -> Result<()> {
    let client = reqwest::Client::builder().timeout(SAVE_TIMEOUT).build().context("building the HTTP client")?;
    let started = Instant::now();
    let mut errors = Vec::new();
    for endpoint in endpoints {
        let mut url = endpoint.trim_end_matches('/').to_owned();
        for _ in 0..2 {
            match fetch(&client, &url).await {
                Ok(Fetched::Backup(bytes)) => return write_backup(file, &bytes, &url, started),
                Ok(Fetched::Leader(leader)) => url = leader.trim_end_matches('/').to_owned(),
                Err(e) => {
                    errors.push(format!("{url}: {e:#}"));
                    break;
                }
            }
        }
    }
    bail!("no backup taken: {}", errors.join("; "))
}

enum Fetched {
    Backup(Vec<u8>),
    Leader(String),
}

async fn fetch(client: &reqwest::Client, base: &str) -> Result<Fetched> {
    let response = client.get(format!("{base}{SNAPSHOT_PATH}")).send().await?;
    let status = response.status();
    if status.is_success() {
        if response.content_length().is_some_and(|len| len > u64::from(SNAPSHOT_BYTES_MAX)) {
            bail!("the answer is larger than any snapshot");
        }
        return Ok(Fetched::Backup(response.bytes().await?.to_vec()));
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let error = body["error"].as_str().unwrap_or("no reason given").to_owned();
    match body["leader"].as_str() {
        Some(leader) if status == reqwest::StatusCode::MISDIRECTED_REQUEST => Ok(Fetched::Leader(leader.to_owned())),
        _ => bail!("{status}: {error}"),
    }
}

/// Checks the backup whole, then writes it beside `file` and renames it
/// into place, so `file` never holds a partial backup.
fn write_backup(file: &Path, bytes: &[u8], from: &str, started: Instant) -> Result<()> {
    let (_, summary, _) = inspect(bytes).with_context(|| format!("the backup {from} sent"))?;
    // FILE.part, beside FILE: `with_extension` would replace FILE's own.
    let mut part = file.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let mut out = std::fs::File::create(&part).with_context(|| format!("creating {}", part.display()))?;
    out.write_all(bytes).and_then(|()| out.sync_all()).with_context(|| format!("writing {}", part.display()))?;
    std::fs::rename(&part, file).with_context(|| format!("renaming {} to {}", part.display(), file.display()))?;
    println!("saved {} ({} bytes) from {from} in {} ms", file.display(), bytes.len(), started.elapsed().as_millis());
    print_summary(&summary);
    Ok(())
}
