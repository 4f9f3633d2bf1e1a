//! `haven node ls|drain|undrain`: the managed nodes through Haven's `/v1/`
//! API.
//!
//! In: the parsed subcommand. Out: the node table (id, address, lease,
//! drained, instances, labels), the receipt of a queued drain, or the
//! API's JSON with `--output json`.

use crate::cli::ha_format::{NODE_HEADER, node_id, node_row, queued_line};
use crate::cli::table::Table;
use crate::cli::{GlobalArgs, OutputFormat, Printer};
use crate::client::Client;
use crate::error::ClientError;
use clap::Subcommand;

pub const NODE_EXAMPLES: &str = "Examples:
  haven node ls              every node: address, lease, drained or not, instance count, labels
  haven node drain n4        move n4's instances away and place nothing new there (maintenance)
  haven node undrain 4       let the coordinator place instances on n4 again

Nodes appear when their agent joins; `haven events` shows what a drain moved.";

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List the nodes.
    Ls {
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Move a node's instances away and place nothing new on it.
    Drain {
        /// The node: 4 or n4.
        #[arg(value_parser = node_id)]
        id: u64,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Let instances be placed on a drained node again.
    Undrain {
        #[arg(value_parser = node_id)]
        id: u64,
        #[command(flatten)]
        global: GlobalArgs,
    },
}

impl NodeCommand {
    pub fn global(&self) -> &GlobalArgs {
        match self {
            NodeCommand::Ls { global } | NodeCommand::Drain { global, .. } | NodeCommand::Undrain { global, .. } => {
                global
            }
        }
    }
}

pub async fn run(command: NodeCommand) -> Result<(), ClientError> {
    let global = command.global().clone();
    let client = global.client()?;
    let mut stdout = std::io::stdout();
    execute(&client, command, &mut Printer::new(global.output, &mut stdout)).await
}

pub async fn execute(client: &Client, command: NodeCommand, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let json = printer.format == OutputFormat::Json;
    let (what, queued) = match command {
        NodeCommand::Ls { .. } => {
            let list = client.ha_nodes().await?;
            if json {
                return printer.json(&list);
            }
            let mut table = Table::new(NODE_HEADER);
            list.nodes.iter().for_each(|n| table.push(node_row(n)));
            return printer.text(&table.render());
        }
        NodeCommand::Drain { id, .. } => (format!("drain n{id}"), client.ha_drain(id, true).await?),
        NodeCommand::Undrain { id, .. } => (format!("undrain n{id}"), client.ha_drain(id, false).await?),
    };
    if json { printer.json(&queued) } else { printer.line(&queued_line(&what, &queued)) }
}
