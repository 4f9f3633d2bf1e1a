//! `haven status`: one row per member — role, term, commit and applied
//! index, lag — from `/v3/maintenance/status` on every endpoint (and every
//! client URL the member list names), with the leader marked.
//!
//! In: endpoints. Out: the table or JSON; [`ClusterStatus`] for benchmarks.

use crate::cli::display::hex_id;
use crate::cli::table::Table;
use crate::cli::{GlobalArgs, OutputFormat, Printer};
use crate::client::Client;
use crate::endpoint::parse_endpoint;
use crate::error::ClientError;
use crate::maintenance::StatusResponse;
use crate::member::Member;
use clap::Args;
use serde::Serialize;

const STATUS_EXAMPLES: &str = "Examples:
  haven status                                                  the local cluster (HAVEN_ENDPOINTS or 127.0.0.1:2379)
  haven status --endpoints http://127.0.0.1:2379,http://127.0.0.1:2479
  haven status --output json                                    every member's etcd StatusResponse

The leader is marked with *. LAG is how many log entries a member has yet to
apply compared with the leader's commit index; a member that stays behind is
slow or cut off. Members the member list names are asked too, so one
endpoint is enough to see the whole cluster.";

/// Members asked at most, whatever the member list says.
const STATUS_ENDPOINTS_MAX: usize = 64;

#[derive(Debug, Args)]
#[command(after_help = STATUS_EXAMPLES)]
pub struct StatusArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// What one endpoint said about its member.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointStatus {
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ClusterStatus {
    pub members: Vec<Member>,
    pub endpoints: Vec<EndpointStatus>,
}

impl ClusterStatus {
    /// Asks every endpoint of `client`, and every member's client URL.
    pub async fn gather(client: &Client) -> Result<ClusterStatus, ClientError> {
        let members = client.member_list().await.map(|list| list.members).unwrap_or_default();
        let mut endpoints: Vec<String> = client.endpoints().to_vec();
        for url in members.iter().flat_map(|member| &member.client_urls) {
            if let Ok(url) = parse_endpoint(url)
                && !endpoints.contains(&url)
            {
                endpoints.push(url);
            }
        }
        endpoints.truncate(STATUS_ENDPOINTS_MAX);
        let asked = endpoints.iter().map(|endpoint| async move {
            match client.status_of(endpoint).await {
                Ok(status) => EndpointStatus { endpoint: endpoint.clone(), status: Some(status), error: None },
                Err(ClientError::Unreachable { mut attempts }) if attempts.len() == 1 => {
                    let cause = attempts.pop().map(|attempt| attempt.cause);
                    EndpointStatus { endpoint: endpoint.clone(), status: None, error: cause }
                }
                Err(error) => {
                    EndpointStatus { endpoint: endpoint.clone(), status: None, error: Some(error.to_string()) }
                }
            }
        });
        let endpoints = futures::future::join_all(asked).await;
        if endpoints.iter().all(|e| e.status.is_none()) {
            let attempts = endpoints
                .iter()
                .map(|e| crate::error::AttemptFailure {
                    endpoint: e.endpoint.clone(),
                    cause: e.error.clone().unwrap_or_default(),
                })
                .collect();
            return Err(ClientError::Unreachable { attempts });
        }
        Ok(ClusterStatus { members, endpoints })
    }

    /// The endpoint whose member says it leads, with its status.
    pub fn leader(&self) -> Option<(&str, &StatusResponse)> {
        self.endpoints
            .iter()
            .find_map(|e| e.status.as_ref().filter(|s| s.is_leader()).map(|s| (e.endpoint.as_str(), s)))
    }

    /// The highest Raft term any member reports.
    pub fn term_max(&self) -> u64 {
        self.endpoints.iter().filter_map(|e| e.status.as_ref()).map(|s| s.raft_term).max().unwrap_or(0)
    }

    /// A line for each member that did not answer, and for each error a
    /// member reports about itself (no leader, removed, stopped), which
    /// the table has no room for.
    pub fn complaints(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for endpoint in &self.endpoints {
            let Some(status) = &endpoint.status else {
                let cause = endpoint.error.as_deref().unwrap_or("no answer");
                lines.push(format!("{} is unreachable: {cause}", endpoint.endpoint));
                continue;
            };
            for error in &status.errors {
                lines.push(format!("{} says: {error}", endpoint.endpoint));
            }
        }
        lines
    }

    pub fn table(&self) -> Table {
        let commit = self.leader().map(|(_, s)| s.raft_index).unwrap_or_else(|| {
            self.endpoints.iter().filter_map(|e| e.status.as_ref()).map(|s| s.raft_index).max().unwrap_or(0)
        });
        let mut table = Table::new(["MEMBER", "ID", "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG"]);
        for endpoint in &self.endpoints {
            let Some(status) = &endpoint.status else {
                table.push(vec!["?".into(), String::new(), endpoint.endpoint.clone(), "unreachable".into()]);
                continue;
            };
            let id = status.header.member_id;
            let name = self.members.iter().find(|m| m.id == id).map_or("?", |m| m.name.as_str());
            let (marked, role) = match (status.is_leader(), status.is_learner) {
                (true, _) => (format!("{name}*"), "leader"),
                (false, true) => (name.to_owned(), "learner"),
                (false, false) => (name.to_owned(), "follower"),
            };
            table.push(vec![
                marked,
                hex_id(id),
                endpoint.endpoint.clone(),
                role.to_owned(),
                status.raft_term.to_string(),
                status.raft_index.to_string(),
                status.raft_applied_index.to_string(),
                commit.saturating_sub(status.raft_applied_index).to_string(),
            ]);
        }
        table
    }
}

pub async fn run(args: StatusArgs) -> Result<(), ClientError> {
    let client = args.global.client()?;
    let mut stdout = std::io::stdout();
    execute(&client, &mut Printer::new(args.global.output, &mut stdout)).await
}

pub async fn execute(client: &Client, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let status = ClusterStatus::gather(client).await?;
    if printer.format == OutputFormat::Json {
        return printer.json(&status);
    }
    printer.text(&status.table().render())?;
    for line in status.complaints() {
        printer.line(&line)?;
    }
    if status.leader().is_none() {
        printer.line("no member answering says it leads: is a majority of the members running?")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::ResponseHeader;

    fn answering(endpoint: &str, member_id: u64, leader: u64, index: u64, applied: u64) -> EndpointStatus {
        let header = ResponseHeader { member_id, ..ResponseHeader::default() };
        let status = StatusResponse {
            header,
            leader,
            raft_index: index,
            raft_term: 3,
            raft_applied_index: applied,
            ..Default::default()
        };
        EndpointStatus { endpoint: endpoint.into(), status: Some(status), error: None }
    }

    #[test]
    fn table_marks_the_leader_and_measures_lag_from_its_commit() {
        let member = |id: u64, name: &str| Member { id, name: name.into(), ..Member::default() };
        let status = ClusterStatus {
            members: vec![member(1, "s1"), member(2, "s2")],
            endpoints: vec![
                answering("http://a:1", 1, 2, 90, 88),
                answering("http://b:2", 2, 2, 100, 100),
                EndpointStatus { endpoint: "http://c:3".into(), status: None, error: Some("refused".into()) },
            ],
        };
        assert_eq!(status.leader().map(|(endpoint, _)| endpoint), Some("http://b:2"));
        let text = status.table().render();
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].starts_with("MEMBER"), "{text}");
        let cells = |row: &str| row.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(cells(rows[1]), ["s1", "1", "http://a:1", "follower", "3", "90", "88", "12"]);
        assert_eq!(cells(rows[2]), ["s2*", "2", "http://b:2", "leader", "3", "100", "100", "0"]);
        assert_eq!(cells(rows[3]), ["?", "http://c:3", "unreachable"]);
        assert_eq!(status.complaints(), ["http://c:3 is unreachable: refused"]);
    }

    #[test]
    fn a_member_s_own_errors_are_told_below_the_table() {
        let mut lonely = answering("http://a:1", 1, 0, 50, 50);
        lonely.status.as_mut().unwrap().errors = vec!["etcdserver: no leader".into()];
        let status = ClusterStatus { members: Vec::new(), endpoints: vec![lonely] };
        assert_eq!(status.complaints(), ["http://a:1 says: etcdserver: no leader"]);
    }

    #[test]
    fn without_a_leader_lag_is_measured_from_the_highest_commit() {
        let status = ClusterStatus {
            members: Vec::new(),
            endpoints: vec![answering("http://a:1", 1, 0, 50, 40), answering("http://b:2", 2, 0, 45, 45)],
        };
        assert!(status.leader().is_none());
        let text = status.table().render();
        assert!(text.lines().nth(1).unwrap().trim_end().ends_with("10"), "{text}");
        assert!(text.lines().nth(2).unwrap().trim_end().ends_with(" 5"), "{text}");
    }
}
