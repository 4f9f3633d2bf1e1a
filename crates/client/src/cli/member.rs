//! `haven member ls|add|rm|promote`: cluster membership over the etcd v3 API.
//!
//! In: the parsed subcommand. Out: the member table (or etcd's JSON) after
//! the change; `add` also says how to start the new member.

use crate::cli::display::{hex_id, parse_hex_id};
use crate::cli::table::Table;
use crate::cli::{GlobalArgs, OutputFormat, Printer};
use crate::client::Client;
use crate::error::ClientError;
use crate::member::{Member, MemberAddRequest};
use clap::{Args, Subcommand};

const MEMBER_EXAMPLES: &str = "Examples:
  haven member ls                                                 the members, ids in hex
  haven member add s4 --peer-urls http://127.0.0.1:2480           add a member, then start it as printed
  haven member promote 8e9e05c52164694d                           make a caught-up learner a voter
  haven member rm 8e9e05c52164694d                                remove a member

A Haven cluster adds every member as a learner and promotes it by itself
once its log has caught up (--learner: only when you promote it). etcd adds
a voter at once, which counts against the majority until it runs.";

#[derive(Debug, Args)]
#[command(after_help = MEMBER_EXAMPLES)]
pub struct MemberArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: MemberCommand,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List the members.
    Ls,
    /// Add a member; start it afterwards with the printed settings.
    Add {
        /// The new member's name (used in the printed settings).
        name: String,
        /// Its peer URLs, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
        /// Add it as a non-voting learner (recommended; promote it later).
        #[arg(long)]
        learner: bool,
    },
    /// Remove a member by id.
    Rm {
        #[arg(value_parser = parse_hex_id)]
        id: u64,
    },
    /// Make a learner a voting member once it caught up with the leader.
    Promote {
        #[arg(value_parser = parse_hex_id)]
        id: u64,
    },
}

pub async fn run(args: MemberArgs) -> Result<(), ClientError> {
    let client = args.global.client()?;
    let mut stdout = std::io::stdout();
    execute(&client, args.command, &mut Printer::new(args.global.output, &mut stdout)).await
}

pub async fn execute(client: &Client, command: MemberCommand, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let (message, response) = match command {
        MemberCommand::Ls => (None, client.member_list().await?),
        MemberCommand::Add { name, peer_urls, learner } => {
            let added = client.member_add(&MemberAddRequest { peer_urls, is_learner: learner }).await?;
            if printer.format == OutputFormat::Json {
                return printer.json(&added);
            }
            let message = added_message(&name, &added.member, &added.members);
            let list = crate::member::MemberListResponse { header: added.header, members: added.members };
            (Some(message), list)
        }
        MemberCommand::Rm { id } => (Some(format!("member {} removed", hex_id(id))), client.member_remove(id).await?),
        MemberCommand::Promote { id } => {
            let response = client.member_promote(id).await?;
            (Some(promoted_message(id, &response.members)), response)
        }
    };
    if printer.format == OutputFormat::Json {
        return printer.json(&response);
    }
    if let Some(message) = message {
        printer.line(&message)?;
    }
    printer.text(&member_table(&response.members).render())
}

pub(crate) fn member_table(members: &[Member]) -> Table {
    let mut table = Table::new(["ID", "NAME", "PEER-URLS", "CLIENT-URLS", "LEARNER"]);
    for member in members {
        let name = if member.name.is_empty() { "(not started)".to_owned() } else { member.name.clone() };
        table.push(vec![
            hex_id(member.id),
            name,
            member.peer_urls.join(","),
            member.client_urls.join(","),
            if member.is_learner { "yes" } else { "no" }.to_owned(),
        ]);
    }
    table
}

/// etcd promotes at once or refuses; Haven records the wish and the
/// leader promotes once the learner has caught up, so say which happened.
fn promoted_message(id: u64, members: &[Member]) -> String {
    let id_text = hex_id(id);
    match members.iter().find(|m| m.id == id) {
        Some(m) if m.is_learner => format!(
            "member {id_text} will be promoted to voter once its log has caught up with the leader's; \
             `haven member ls` shows when"
        ),
        _ => format!("member {id_text} promoted to voter"),
    }
}

fn added_message(name: &str, added: &Member, members: &[Member]) -> String {
    let cluster: Vec<String> = members
        .iter()
        .flat_map(|member| {
            let name = if member.id == added.id { name } else { member.name.as_str() };
            member.peer_urls.iter().map(move |url| format!("{name}={url}"))
        })
        .collect();
    let role = if added.is_learner { "learner" } else { "voter once it has caught up" };
    format!(
        "member {} (id {}) added as a {role}. Start it with name `{name}`, initial cluster `{}` and cluster state \
         `existing`; for a Haven station:\n  {}",
        hex_id(added.id),
        added.id,
        cluster.join(","),
        station_command(added, members)
    )
}

/// The `haven station` line that starts the added member: Haven's
/// `--initial-cluster` is `id=peer_ip:port=client_url`, by decimal id.
fn station_command(added: &Member, members: &[Member]) -> String {
    let strip = |url: &str| url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let entry = |m: &Member| {
        let peer = m.peer_urls.first().map_or_else(|| "<peer-ip:port>".to_owned(), |url| strip(url));
        let client = m.client_urls.first().cloned().unwrap_or_else(|| "http://<client-ip:port>".to_owned());
        format!("{}={peer}={client}", m.id)
    };
    let list: Vec<String> = members.iter().map(entry).collect();
    format!(
        "haven station --id {} --data-dir <dir> --initial-cluster-state existing --initial-cluster {}",
        added.id,
        list.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_message_names_the_whole_cluster() {
        let old =
            Member { id: 1, name: "s1".into(), peer_urls: vec!["http://127.0.0.1:2380".into()], ..Member::default() };
        let new =
            Member { id: 0xab, peer_urls: vec!["http://127.0.0.1:2480".into()], is_learner: true, ..Member::default() };
        let text = added_message("s4", &new, &[old, new.clone()]);
        assert!(text.starts_with("member ab (id 171) added as a learner"), "{text}");
        let station = "haven station --id 171 --data-dir <dir> --initial-cluster-state existing \
                       --initial-cluster 1=127.0.0.1:2380=http://<client-ip:port>,171=127.0.0.1:2480=http://<client-ip:port>";
        assert!(text.contains(station), "{text}");
        assert!(text.contains("`s1=http://127.0.0.1:2380,s4=http://127.0.0.1:2480`"), "{text}");
    }

    #[test]
    fn unstarted_members_are_marked() {
        let table = member_table(&[Member { id: 255, ..Member::default() }]).render();
        assert!(table.lines().nth(1).unwrap().starts_with("ff  (not started)"), "{table}");
    }

    #[test]
    fn a_promotion_not_yet_in_force_says_so() {
        let learner = Member { id: 0xab, is_learner: true, ..Member::default() };
        let voter = Member { is_learner: false, ..learner.clone() };
        assert_eq!(promoted_message(0xab, &[voter]), "member ab promoted to voter");
        let text = promoted_message(0xab, &[learner]);
        assert!(text.starts_with("member ab will be promoted to voter once its log has caught up"), "{text}");
    }
}
