//! `haven lease grant|revoke|keepalive|ls`: leases over the etcd v3 API.
//!
//! In: the parsed subcommand. Out: a line or table, or etcd's JSON;
//! `keepalive` renews every TTL/3 and prints each renewal until Ctrl-C (or
//! `--once`).

use crate::cli::display::{hex_id, parse_lease_id};
use crate::cli::table::Table;
use crate::cli::{GlobalArgs, OutputFormat, Printer};
use crate::client::Client;
use crate::error::ClientError;
use crate::lease::{LeaseGrantRequest, LeaseTimeToLiveRequest};
use clap::{Args, Subcommand};
use std::time::Duration;

const LEASE_EXAMPLES: &str = "Examples:
  haven lease grant 30                       a lease of 30 s; prints its id, e.g. 694d7a
  haven kv put session me --lease 694d7a     the key goes when the lease does
  haven lease keepalive 694d7a               renew it until Ctrl-C
  haven lease ls                             every lease with its remaining TTL
  haven lease revoke 694d7a                  end it now, deleting its keys

Lease ids are hexadecimal, as printed.";

#[derive(Debug, Args)]
#[command(after_help = LEASE_EXAMPLES)]
pub struct LeaseArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: LeaseCommand,
}

#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Create a lease that expires TTL seconds after its last renewal.
    Grant {
        /// Seconds, at least 1.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        ttl: i64,
    },
    /// End a lease now; its keys are deleted.
    Revoke {
        #[arg(value_parser = parse_lease_id)]
        id: i64,
    },
    /// Renew a lease every TTL/3 until Ctrl-C.
    Keepalive {
        #[arg(value_parser = parse_lease_id)]
        id: i64,
        /// Renew once and exit.
        #[arg(long)]
        once: bool,
    },
    /// List leases with their remaining and granted TTL.
    Ls,
}

/// `ls` asks each lease's TTL; past this many it lists ids only.
const LS_DETAILS_MAX: usize = 200;

pub async fn run(args: LeaseArgs) -> Result<(), ClientError> {
    let client = args.global.client()?;
    let mut stdout = std::io::stdout();
    execute(&client, args.command, &mut Printer::new(args.global.output, &mut stdout)).await
}

pub async fn execute(client: &Client, command: LeaseCommand, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    match command {
        LeaseCommand::Grant { ttl } => {
            let response = client.lease_grant(&LeaseGrantRequest { ttl, id: 0 }).await?;
            match printer.format {
                OutputFormat::Json => printer.json(&response),
                OutputFormat::Table => {
                    printer.line(&format!("lease {} granted with TTL {}s", hex_id(response.id as u64), response.ttl))
                }
            }
        }
        LeaseCommand::Revoke { id } => {
            let response = client.lease_revoke(id).await?;
            match printer.format {
                OutputFormat::Json => printer.json(&response),
                OutputFormat::Table => printer.line(&format!("lease {} revoked", hex_id(id as u64))),
            }
        }
        LeaseCommand::Keepalive { id, once } => keep_alive(client, id, once, printer).await,
        LeaseCommand::Ls => list(client, printer).await,
    }
}

async fn keep_alive(client: &Client, id: i64, once: bool, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let response = client.lease_keep_alive(id).await?;
        match printer.format {
            OutputFormat::Json => printer.json(&response)?,
            OutputFormat::Table => {
                printer.line(&format!("lease {} kept alive, TTL {}s", hex_id(id as u64), response.ttl))?
            }
        }
        printer.flush()?;
        if once {
            return Ok(());
        }
        let period =
            Duration::from_millis(u64::try_from(response.ttl).unwrap_or(1) * 1_000 / 3).max(Duration::from_millis(200));
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            () = tokio::time::sleep(period) => {}
        }
    }
}

async fn list(client: &Client, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let response = client.lease_leases().await?;
    if printer.format == OutputFormat::Json {
        return printer.json(&response);
    }
    let mut table = Table::new(["ID", "TTL", "GRANTED-TTL", "KEYS"]);
    for (index, lease) in response.leases.iter().enumerate() {
        if index >= LS_DETAILS_MAX {
            table.push(vec![hex_id(lease.id as u64)]);
            continue;
        }
        let ttl = client.lease_time_to_live(&LeaseTimeToLiveRequest { id: lease.id, keys: true }).await?;
        table.push(vec![
            hex_id(lease.id as u64),
            format!("{}s", ttl.ttl),
            format!("{}s", ttl.granted_ttl),
            ttl.keys.len().to_string(),
        ]);
    }
    printer.text(&table.render())?;
    printer.line(&format!("{} lease(s)", response.leases.len()))
}
