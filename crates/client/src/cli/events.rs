//! `haven events [--follow]`: the coordinator's decisions, with their
//! reasons and causes.
//!
//! In: the parsed arguments. Out: a table (time, service, text, cause) of
//! the decision log, oldest first; with `--follow`, one line per decision
//! as it is made, until Ctrl-C or until the station closes the stream.
//! With `--output json`, the API's JSON (one object per line when following).

use crate::cli::ha_format::{EVENT_HEADER, event_line, event_row};
use crate::cli::table::Table;
use crate::cli::{GlobalArgs, OutputFormat, Printer};
use crate::client::Client;
use crate::error::ClientError;
use clap::Args;

const EVENTS_EXAMPLES: &str = "Examples:
  haven events                   the last decisions: \"moved db from n3 to n5: n3's lease expired at ...\"
  haven events --service db      only those about db
  haven events --follow          then each new decision as it is made (Ctrl-C to stop)

Times are cluster time (the station leader's clock, carried across leaders).";

#[derive(Debug, Args)]
#[command(after_help = EVENTS_EXAMPLES)]
pub struct EventsArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Keep printing new decisions as they are made.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the decisions about this service.
    #[arg(long)]
    pub service: Option<String>,
}

pub async fn run(args: EventsArgs) -> Result<(), ClientError> {
    let client = args.global.client()?;
    let mut stdout = std::io::stdout();
    let mut printer = Printer::new(args.global.output, &mut stdout);
    let service = args.service.as_deref();
    if !args.follow {
        return execute(&client, service, &mut printer).await;
    }
    tokio::select! {
        followed = follow(&client, service, &mut printer) => followed,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Prints the decision log once.
pub async fn execute(client: &Client, service: Option<&str>, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let list = client.ha_events(service).await?;
    if printer.format == OutputFormat::Json {
        return printer.json(&list);
    }
    let mut table = Table::new(EVENT_HEADER);
    list.events.iter().for_each(|e| table.push(event_row(e)));
    printer.text(&table.render())
}

/// Prints every decision as it arrives, until the stream ends.
pub async fn follow(client: &Client, service: Option<&str>, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let mut stream = client.ha_follow_events(service).await?;
    while let Some(event) = stream.next().await? {
        match printer.format {
            OutputFormat::Json => printer.json(&event)?,
            OutputFormat::Table => printer.line(&event_line(&event))?,
        }
        printer.flush()?;
    }
    Ok(())
}
