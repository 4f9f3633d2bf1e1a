//! `haven apply FILE.toml`: add or replace every service a file defines.
//!
//! In: a TOML file of `[[service]]` tables (the JSON shape of `POST
//! /v1/services`). Out: every definition checked by the station first
//! (`dry_run`), then, only if all are valid, each one queued; a refusal
//! names the service and the field, and nothing is applied.

use crate::cli::ha_format::queued_line;
use crate::cli::{GlobalArgs, OutputFormat, Printer};
use crate::client::Client;
use crate::error::ClientError;
use crate::ha::{SERVICES_FILE_BYTES_MAX, ServiceDef, parse_services_toml};
use clap::Args;
use std::path::{Path, PathBuf};

const APPLY_EXAMPLES: &str = r#"Example services.toml (every field but name and command is optional):

  [[service]]
  name = "db"
  command = "/usr/bin/postgres"
  args = ["-D", "/var/lib/db"]
  kind = "singleton"            # or "replicated" (with count), "every-node"
  standbys = 1
  promote = "/usr/local/bin/db-promote"

  [service.placement]
  preferred = [4, 5]            # node ids, best first
  labels = { disk = "ssd" }

  [service.health]
  check = "tcp"                 # process, exec (command, args), tcp (address), http (url)
  address = "127.0.0.1:5432"

  [[service]]
  name = "web"
  command = "/usr/bin/web"
  kind = "replicated"
  count = 3

Then: haven apply services.toml; haven service ls; haven events"#;

#[derive(Debug, Args)]
#[command(after_help = APPLY_EXAMPLES)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The TOML file of [[service]] tables.
    pub file: PathBuf,
    /// Only check the definitions; apply nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: ApplyArgs) -> Result<(), ClientError> {
    let client = args.global.client()?;
    let defs = read_services(&args.file)?;
    let mut stdout = std::io::stdout();
    execute(&client, &defs, args.dry_run, &mut Printer::new(args.global.output, &mut stdout)).await
}

/// Reads and parses a services file; errors name the file.
pub fn read_services(path: &Path) -> Result<Vec<ServiceDef>, ClientError> {
    let context = || format!("reading {}", path.display());
    let size = std::fs::metadata(path).map_err(|e| ClientError::io(context(), e))?.len();
    if size > SERVICES_FILE_BYTES_MAX as u64 {
        return Err(ClientError::usage(format!("{}: larger than {SERVICES_FILE_BYTES_MAX} bytes", path.display())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| ClientError::io(context(), e))?;
    parse_services_toml(&text).map_err(|e| ClientError::usage(format!("{}: {e}", path.display())))
}

/// Checks every definition, then queues each if all passed.
pub async fn execute(
    client: &Client,
    defs: &[ServiceDef],
    dry_run: bool,
    printer: &mut Printer<'_>,
) -> Result<(), ClientError> {
    let mut refused = Vec::new();
    for def in defs {
        match client.ha_check_service(def).await {
            Ok(_) => {}
            Err(ClientError::Api { message, .. }) => refused.push(format!("service {}: {message}", def.name)),
            Err(other) => return Err(other),
        }
    }
    if !refused.is_empty() {
        let count = refused.len();
        return Err(ClientError::usage(format!("{count} invalid, nothing applied:\n  {}", refused.join("\n  "))));
    }
    for def in defs {
        if dry_run {
            printer.line(&format!("{}: valid", def.name))?;
            continue;
        }
        let queued = client.ha_add_service(def).await?;
        match printer.format {
            OutputFormat::Json => printer.json(&queued)?,
            OutputFormat::Table => printer.line(&queued_line(&format!("apply {}", def.name), &queued))?,
        }
    }
    Ok(())
}
