//! `haven-client`: the client commands of `haven` on their own, for
//! benchmark scripts and for machines without the full binary. `haven`
//! mounts the same commands (`haven kv …`, `haven bench kv …`).
//!
//! In: a command line. Out: the command's output on stdout; on failure the
//! error (which says what to do) on stderr and exit status 1.

use clap::{Parser, Subcommand};
use haven_client::ClientError;
use haven_client::bench::{FailoverBenchArgs, FsyncBenchArgs, KvBenchArgs};
use haven_client::cli::kv::KvArgs;
use haven_client::cli::lease::LeaseArgs;
use haven_client::cli::member::MemberArgs;
use haven_client::cli::status::StatusArgs;

#[derive(Debug, Parser)]
#[command(
    name = "haven-client",
    version,
    about = "Talk to a Haven (or etcd) cluster over the etcd v3 JSON API, and benchmark it.",
    after_help = "Examples:
  haven-client status --endpoints http://127.0.0.1:2379
  haven-client kv put greeting hello
  haven-client bench kv --endpoints http://127.0.0.1:2379 --phases 1,16,64,256"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read, write, delete and watch keys; run transactions.
    Kv(KvArgs),
    /// Grant, renew, revoke and list leases.
    Lease(LeaseArgs),
    /// List, add, remove and promote members.
    Member(MemberArgs),
    /// Every member's role, term, commit and applied index.
    Status(StatusArgs),
    /// Benchmarks against loopback clusters.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Puts or ranges per second and latency percentiles, phase by phase.
    Kv(KvBenchArgs),
    /// Time from freezing the leader to the next acknowledged write.
    Failover(FailoverBenchArgs),
    /// This disk's write + fdatasync latency: the floor of a durable write.
    Fsync(FsyncBenchArgs),
}

async fn run(command: Command) -> Result<(), ClientError> {
    match command {
        Command::Kv(args) => haven_client::cli::kv::run(args).await,
        Command::Lease(args) => haven_client::cli::lease::run(args).await,
        Command::Member(args) => haven_client::cli::member::run(args).await,
        Command::Status(args) => haven_client::cli::status::run(args).await,
        Command::Bench(BenchCommand::Kv(args)) => haven_client::bench::kv::run(args).await,
        Command::Bench(BenchCommand::Failover(args)) => haven_client::bench::failover::run(args).await,
        Command::Bench(BenchCommand::Fsync(args)) => haven_client::bench::fsync::run(args),
    }
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(run(cli.command)) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let before = Cli::try_parse_from(["h", "kv", "--endpoints", "http://a:1,http://b:2", "get", "k"]).unwrap();
        let after = Cli::try_parse_from(["h", "kv", "get", "k", "--endpoints", "http://a:1,http://b:2"]).unwrap();
        for cli in [before, after] {
            let Command::Kv(args) = cli.command else { panic!("expected kv") };
            assert_eq!(args.global.endpoints, ["http://a:1", "http://b:2"]);
        }
        assert!(Cli::try_parse_from(["h", "lease", "revoke", "nothex"]).is_err());
        assert!(
            Cli::try_parse_from(["h", "bench", "failover", "--endpoints", "http://127.0.0.1:1"]).is_err(),
            "pids are required"
        );
    }
}
