//! `haven service add|rm|ls|show|move|enable|disable`: services through
//! Haven's `/v1/` API.
//!
//! In: the parsed subcommand (a definition from flags for `add`). Out: a
//! table, the service as a `[[service]]` TOML table (`show`), the receipt
//! of a queued action, or the API's JSON with `--output json`.

use crate::cli::ha_format::{SERVICE_HEADER, node_id, parse_pair, queued_line, service_row, show_service};
use crate::cli::table::Table;
use crate::cli::{GlobalArgs, OutputFormat, Printer};
use crate::client::Client;
use crate::error::ClientError;
use crate::ha::{
    CheckKind, FAILURE_THRESHOLD_DEFAULT, HEALTH_INTERVAL_MS_DEFAULT, HEALTH_TIMEOUT_MS_DEFAULT, HealthDef, Kind,
    RESTART_WINDOW_MS_DEFAULT, RESTARTS_MAX_DEFAULT, START_TIMEOUT_MS_DEFAULT, STOP_TIMEOUT_MS_DEFAULT, ServiceDef,
};
use clap::{Args, Subcommand};

const SERVICE_EXAMPLES: &str = "Examples:
  haven service add --name db --command /usr/bin/db --standbys 1 --promote /usr/bin/db-promote \\
      --prefer 4,5 --check tcp:127.0.0.1:5432          a singleton with a hot standby, n4 first, then n5
  haven service add --name web --command /usr/bin/web --arg --port --arg 8080 \\
      --kind replicated --count 3 --check http://127.0.0.1:8080/health
  haven service ls                     every service: where its primary runs, in which state, its token
  haven service show db                its definition (a [[service]] table for `haven apply`) and instances
  haven service move db --to 5         move the singleton's primary to node 5
  haven service disable db             stop its instances, keep the definition (enable starts them again)
  haven service rm db                  stop its instances and forget it

Changes are queued for the coordinator, which acts on them within moments:
`haven events` shows what it decided and why. For many services, or every
option, write a TOML file and use `haven apply FILE`.";

#[derive(Debug, Args)]
#[command(after_help = SERVICE_EXAMPLES)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: ServiceCommand,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Add a service, or replace the definition of the one of that name.
    Add(Box<AddArgs>),
    /// Remove a service: its instances are stopped, then it is forgotten.
    Rm { name: String },
    /// List the services with where their primary runs.
    Ls,
    /// One service: its definition as TOML and its instances.
    Show { name: String },
    /// Move a singleton's primary to another node.
    Move {
        name: String,
        /// The node to move to: 5 or n5.
        #[arg(long, value_parser = node_id)]
        to: u64,
    },
    /// Start a disabled service's instances again.
    Enable { name: String },
    /// Stop a service's instances; the definition stays.
    Disable { name: String },
}

/// A definition from flags; anything not given takes the API's default.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The service's name: a-z, 0-9 and '-', starting with a letter.
    #[arg(long)]
    pub name: String,
    /// The program to run (no shell).
    #[arg(long)]
    pub command: String,
    /// One argument of the program; repeat for each, in order.
    #[arg(long = "arg", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// An environment variable as KEY=VALUE; repeat for each.
    #[arg(long = "env", value_parser = parse_pair)]
    pub env: Vec<(String, String)>,
    #[arg(long)]
    pub working_dir: Option<String>,
    #[arg(long, value_enum, default_value_t = Kind::Singleton)]
    pub kind: Kind,
    /// Singleton: ready standbys beside the primary (needs --promote).
    #[arg(long)]
    pub standbys: Option<u32>,
    /// Replicated: primaries on distinct nodes.
    #[arg(long)]
    pub count: Option<u32>,
    /// Preferred nodes, best first, comma-separated: 4,5 or n4,n5.
    #[arg(long = "prefer", value_delimiter = ',', value_parser = node_id)]
    pub preferred: Vec<u64>,
    /// A node label the service needs, as KEY=VALUE; repeat for each.
    #[arg(long = "label", value_parser = parse_pair)]
    pub labels: Vec<(String, String)>,
    /// Services never to share a node with, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub anti_affinity: Vec<String>,
    /// Run only where this service has an active primary.
    #[arg(long)]
    pub colocate_with: Option<String>,
    /// Place only once these services have an active primary, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub start_after: Vec<String>,
    /// The health check: process, tcp:HOST:PORT, http://URL or exec:COMMAND.
    #[arg(long, default_value = "process", value_parser = parse_check)]
    pub check: HealthDef,
    /// An argument of an exec check's command; repeat for each.
    #[arg(long = "check-arg", allow_hyphen_values = true)]
    pub check_args: Vec<String>,
    #[arg(long, default_value_t = HEALTH_INTERVAL_MS_DEFAULT)]
    pub check_interval_ms: u64,
    #[arg(long, default_value_t = HEALTH_TIMEOUT_MS_DEFAULT)]
    pub check_timeout_ms: u64,
    /// Consecutive failed checks before the instance counts as unhealthy.
    #[arg(long, default_value_t = FAILURE_THRESHOLD_DEFAULT)]
    pub failure_threshold: u32,
    /// Restarts in place within the window before the service moves elsewhere.
    #[arg(long, default_value_t = RESTARTS_MAX_DEFAULT)]
    pub restarts_max: u32,
    #[arg(long, default_value_t = RESTART_WINDOW_MS_DEFAULT)]
    pub restart_window_ms: u64,
    /// The command that turns a standby into the primary.
    #[arg(long)]
    pub promote: Option<String>,
    #[arg(long)]
    pub demote: Option<String>,
    #[arg(long, default_value_t = START_TIMEOUT_MS_DEFAULT)]
    pub start_timeout_ms: u64,
    #[arg(long, default_value_t = STOP_TIMEOUT_MS_DEFAULT)]
    pub stop_timeout_ms: u64,
    /// Declare it disabled: nothing runs until `haven service enable`.
    #[arg(long)]
    pub disabled: bool,
    /// Only have the station check the definition; queue nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `process`, `tcp:HOST:PORT`, `http://URL` or `exec:COMMAND`.
fn parse_check(text: &str) -> Result<HealthDef, String> {
    let mut health = HealthDef::default();
    if text == "process" {
        return Ok(health);
    }
    if let Some(address) = text.strip_prefix("tcp:") {
        (health.check, health.address) = (CheckKind::Tcp, Some(address.to_owned()));
    } else if text.starts_with("http://") {
        (health.check, health.url) = (CheckKind::Http, Some(text.to_owned()));
    } else if let Some(command) = text.strip_prefix("exec:") {
        (health.check, health.command) = (CheckKind::Exec, Some(command.to_owned()));
    } else {
        return Err(format!(
            "`{text}`: write process, tcp:127.0.0.1:5432, http://127.0.0.1:8080/health or exec:/usr/bin/check"
        ));
    }
    Ok(health)
}

impl AddArgs {
    pub fn definition(&self) -> ServiceDef {
        let mut def = ServiceDef::new(&self.name, &self.command);
        def.args = self.args.clone();
        def.env = self.env.iter().cloned().collect();
        def.working_dir = self.working_dir.clone();
        (def.kind, def.standbys, def.count) = (self.kind, self.standbys, self.count);
        def.placement.preferred = self.preferred.clone();
        def.placement.labels = self.labels.iter().cloned().collect();
        def.placement.anti_affinity = self.anti_affinity.clone();
        def.placement.colocate_with = self.colocate_with.clone();
        def.placement.start_after = self.start_after.clone();
        def.health = HealthDef {
            args: self.check_args.clone(),
            interval_ms: self.check_interval_ms,
            timeout_ms: self.check_timeout_ms,
            failure_threshold: self.failure_threshold,
            ..self.check.clone()
        };
        def.restart.restarts_max = self.restarts_max;
        def.restart.restart_window_ms = self.restart_window_ms;
        (def.promote, def.demote) = (self.promote.clone(), self.demote.clone());
        (def.start_timeout_ms, def.stop_timeout_ms) = (self.start_timeout_ms, self.stop_timeout_ms);
        def.enabled = !self.disabled;
        def
    }
}

pub async fn run(args: ServiceArgs) -> Result<(), ClientError> {
    let client = args.global.client()?;
    let mut stdout = std::io::stdout();
    execute(&client, args.command, &mut Printer::new(args.global.output, &mut stdout)).await
}

pub async fn execute(client: &Client, command: ServiceCommand, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let json = printer.format == OutputFormat::Json;
    let (what, queued) = match command {
        ServiceCommand::Ls => {
            let list = client.ha_services().await?;
            if json {
                return printer.json(&list);
            }
            let mut table = Table::new(SERVICE_HEADER);
            list.services.iter().for_each(|s| table.push(service_row(s)));
            return printer.text(&table.render());
        }
        ServiceCommand::Show { name } => {
            let service = client.ha_service(&name).await?;
            return if json { printer.json(&service) } else { printer.text(&show_service(&service)) };
        }
        ServiceCommand::Add(add) if add.dry_run => {
            let checked = client.ha_check_service(&add.definition()).await?;
            return if json { printer.json(&checked) } else { printer.line(&format!("{}: valid", checked.name)) };
        }
        ServiceCommand::Add(add) => (format!("add {}", add.name), client.ha_add_service(&add.definition()).await?),
        ServiceCommand::Rm { name } => (format!("remove {name}"), client.ha_remove_service(&name).await?),
        ServiceCommand::Move { name, to } => (format!("move {name} to n{to}"), client.ha_move(&name, to).await?),
        ServiceCommand::Enable { name } => (format!("enable {name}"), client.ha_enable(&name, true).await?),
        ServiceCommand::Disable { name } => (format!("disable {name}"), client.ha_enable(&name, false).await?),
    };
    if json { printer.json(&queued) } else { printer.line(&queued_line(&what, &queued)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ServiceCommand,
    }

    fn add(line: &str) -> ServiceDef {
        let cli = Cli::try_parse_from(line.split_whitespace()).unwrap();
        match cli.command {
            ServiceCommand::Add(add) => add.definition(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_become_the_definition_with_defaults_elsewhere() {
        assert_eq!(add("x add --name db --command /usr/bin/db"), ServiceDef::new("db", "/usr/bin/db"));
        let def =
            add("x add --name db --command /usr/bin/db --arg -p --arg 5432 --standbys 1 --promote /p --prefer 4,n5 \
             --label disk=ssd --env A=1 --check tcp:127.0.0.1:5432 --check-interval-ms 2000 --disabled");
        assert_eq!(def.args, vec!["-p", "5432"]);
        assert_eq!((def.kind, def.standbys, def.promote.as_deref()), (Kind::Singleton, Some(1), Some("/p")));
        assert_eq!(def.placement.preferred, vec![4, 5]);
        assert_eq!(def.placement.labels.get("disk").map(String::as_str), Some("ssd"));
        assert_eq!(def.env.get("A").map(String::as_str), Some("1"));
        assert_eq!((def.health.check, def.health.address.as_deref()), (CheckKind::Tcp, Some("127.0.0.1:5432")));
        assert_eq!((def.health.interval_ms, def.enabled), (2000, false));
        let web = add("x add --name web --command /w --kind replicated --count 3 --check http://h:1/x");
        assert_eq!((web.kind, web.count, web.health.url.as_deref()), (Kind::Replicated, Some(3), Some("http://h:1/x")));
        let exec = add("x add --name e --command /e --kind every-node --check exec:/c --check-arg -q");
        assert_eq!((exec.health.command.as_deref(), exec.health.args.clone()), (Some("/c"), vec!["-q".to_owned()]));
    }

    #[test]
    fn a_bad_check_says_how_to_write_one() {
        assert!(parse_check("ping").unwrap_err().contains("tcp:127.0.0.1:5432"));
        assert!(Cli::try_parse_from(["x", "move", "db", "--to", "nx"]).is_err());
    }
}
