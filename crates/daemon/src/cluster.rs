//! The initial cluster, as etcd's `--initial-cluster`.
//!
//! In: the operator's member list `id=peer_host:port=http://client_host:port,...`.
//! Out: [`MemberSpec`]s sorted by id, or a [`ConfigError`] naming the entry
//! and showing the expected form. Whole-list checks (duplicates, this
//! member's presence) are in `config.rs`.

use crate::config_error::ConfigError;
use std::net::SocketAddr;

/// One member of the initial cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpec {
    /// The member id (also its Raft node id); 1 or more.
    pub id: u64,
    /// Where the member listens for its peers (Raft traffic).
    pub peer_addr: SocketAddr,
    /// Where the member serves clients, e.g. `http://127.0.0.1:2379`.
    pub client_url: String,
}

impl MemberSpec {
    /// The client URL's host and port as a socket address, when it is an IP.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.client_url.strip_prefix("http://")?.trim_end_matches('/').parse().ok()
    }
}

/// Parses a whole member list; an empty string is an empty list.
pub fn parse_initial_cluster(text: &str) -> Result<Vec<MemberSpec>, ConfigError> {
    let mut members = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        members.push(parse_member(entry)?);
    }
    members.sort_by_key(|m| m.id);
    Ok(members)
}

fn parse_member(entry: &str) -> Result<MemberSpec, ConfigError> {
    let bad = |reason: &str| ConfigError::ClusterEntry { entry: entry.to_owned(), reason: reason.to_owned() };
    let mut parts = entry.splitn(3, '=');
    let (Some(id), Some(peer), Some(client_url)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected three parts separated by '='"));
    };
    let id: u64 = id.trim().parse().map_err(|_| bad("the id is not a positive integer"))?;
    let peer_addr: SocketAddr = peer.trim().parse().map_err(|_| bad("the peer address is not IP:port"))?;
    let client_url = client_url.trim().trim_end_matches('/').to_owned();
    let Some(rest) = client_url.strip_prefix("http://") else {
        return Err(bad("the client URL must start with http://"));
    };
    let port = rest.rsplit_once(':').and_then(|(host, port)| (!host.is_empty()).then_some(port));
    if port.is_none_or(|port| port.parse::<u16>().is_err()) {
        return Err(bad("the client URL needs a host and a port"));
    }
    Ok(MemberSpec { id, peer_addr, client_url })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_list_parses_sorted_by_id() {
        let members =
            parse_initial_cluster("2=127.0.0.1:2480=http://127.0.0.1:2479, 1=127.0.0.1:2380=http://127.0.0.1:2379/")
                .unwrap();
        assert_eq!(members.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(members[0].client_url, "http://127.0.0.1:2379");
        assert_eq!(members[0].client_addr(), Some("127.0.0.1:2379".parse().unwrap()));
        assert_eq!(members[1].peer_addr, "127.0.0.1:2480".parse().unwrap());
        assert_eq!(parse_initial_cluster("").unwrap(), vec![]);
    }

    #[test]
    fn each_malformed_entry_is_named_with_its_reason() {
        let cases = [
            ("1=127.0.0.1:2380", "three parts"),
            ("x=127.0.0.1:2380=http://127.0.0.1:2379", "id is not"),
            ("1=localhost=http://127.0.0.1:2379", "peer address"),
            ("1=127.0.0.1:2380=https://127.0.0.1:2379", "http://"),
            ("1=127.0.0.1:2380=http://127.0.0.1", "host and a port"),
        ];
        for (entry, reason) in cases {
            let error = parse_initial_cluster(entry).unwrap_err().to_string();
            assert!(error.contains(entry) && error.contains(reason), "{entry}: {error}");
            assert!(error.contains("e.g. 1=127.0.0.1:2380=http://127.0.0.1:2379"), "shows the form: {error}");
        }
    }
}
