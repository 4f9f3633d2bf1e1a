//! `haven`: parses the command line, sets up logging on stderr, dispatches.

use anyhow::{Context as _, Result};
use clap::Parser;
use haven_server::cli::{Cli, Command, DemoArgs, NodeCmd};
use haven_server::{
    agent_cmd, bench_cmd, client_cmd, demo, demo_service, ha_demo, node_cmd, proxy_cmd, sim_cmd, snapshot_cmd,
    station_cmd, up,
};
use std::io::IsTerminal as _;

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(cli.log_level)
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Demo(args) => run_demo(args),
        Command::DemoService(args) => demo_service::run(args),
        Command::InstanceShim(args) => haven_server::agent::shim::run(args),
        Command::Node(NodeCmd { command: Some(command), .. }) => {
            client_cmd::block_on(haven_client::cli::nodes::run(command))
        }
        Command::Node(NodeCmd { run: Some(args), .. }) => node_cmd::run(args),
        Command::Node(NodeCmd { command: None, run: None }) => {
            Err(anyhow::anyhow!("give a subcommand (haven node ls|drain|undrain) or the flags of an election node"))
        }
        Command::Sim(command) => sim_cmd::run(command),
        Command::Bench(command) => bench_cmd::run(command),
        Command::Station(args) => station_cmd::run(*args),
        Command::Agent(args) => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|runtime| runtime.block_on(agent_cmd::run_agent(args))),
        Command::Proxy(args) => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|runtime| runtime.block_on(proxy_cmd::run_proxy(args))),
        Command::Up(args) => std::env::current_exe()
            .context("finding the haven binary to start the stations")
            .and_then(|binary| up::run(&binary, args)),
        Command::Kv(args) => client_cmd::block_on(haven_client::cli::kv::run(args)),
        Command::Lease(args) => client_cmd::block_on(haven_client::cli::lease::run(args)),
        Command::Member(args) => client_cmd::block_on(haven_client::cli::member::run(args)),
        Command::Snapshot(args) => snapshot_cmd::run(args),
        Command::Status(args) => client_cmd::block_on(haven_client::cli::status::run(args)),
        Command::Service(args) => client_cmd::block_on(haven_client::cli::service::run(args)),
        Command::Events(args) => client_cmd::block_on(haven_client::cli::events::run(args)),
        Command::Apply(args) => client_cmd::block_on(haven_client::cli::apply::run(args)),
    };
    if let Err(error) = result {
        // `{:#}` prints the whole chain of causes on one line, without a backtrace.
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run_demo(args: DemoArgs) -> Result<()> {
    let binary = std::env::current_exe().context("finding the haven binary to start the nodes")?;
    let dir = args.dir.unwrap_or_else(|| std::env::temp_dir().join(format!("haven-demo-{}", std::process::id())));
    if args.election {
        return demo::run(&binary, &dir);
    }
    ha_demo::run(&binary, &dir)
}
