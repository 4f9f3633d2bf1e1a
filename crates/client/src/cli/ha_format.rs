//! How the `/v1/` API's answers look on a terminal, and how node ids and
//! KEY=VALUE pairs are read from the command line.
//!
//! In: views of services, nodes, instances and decisions. Out: table rows
//! and text; node ids print as `n4` and parse from `4` or `n4`.

use crate::cli::table::Table;
use crate::ha::{EventView, InstanceView, LeaseView, NodeView, Queued, Role, ServiceView, State, secs, to_toml};

pub const SERVICE_HEADER: [&str; 6] = ["NAME", "KIND", "PRIMARY", "STATE", "TOKEN", "NOTE"];
pub const NODE_HEADER: [&str; 6] = ["ID", "ADDRESS", "LEASE", "DRAINED", "INSTANCES", "LABELS"];
pub const EVENT_HEADER: [&str; 4] = ["TIME", "SERVICE", "TEXT", "CAUSE"];
const INSTANCE_HEADER: [&str; 8] = ["INSTANCE", "NODE", "ROLE", "STATE", "TOKEN", "SINCE", "RESTARTS", "WHY"];

/// A node id: `4` or `n4`.
pub fn node_id(text: &str) -> Result<u64, String> {
    let digits = text.trim().strip_prefix('n').unwrap_or(text.trim());
    digits.parse().map_err(|_| format!("`{text}` is not a node id: write 4 or n4 (see `haven node ls`)"))
}

/// `KEY=VALUE`.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}`: write KEY=VALUE")),
    }
}

pub fn queued_line(what: &str, queued: &Queued) -> String {
    format!("{what}: queued as event {}; the coordinator acts on it shortly (see `haven events`)", queued.event_id)
}

fn dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_owned())
}

/// The primaries that hold the service's slot, active ones first.
fn primaries(service: &ServiceView) -> Vec<&InstanceView> {
    let holds = |i: &&InstanceView| i.role == Role::Primary && !matches!(i.state, State::Failed | State::Fenced);
    let mut found: Vec<&InstanceView> = service.instances.iter().filter(holds).collect();
    found.sort_by_key(|i| (i.state != State::Active, i.node));
    found
}

pub fn service_row(service: &ServiceView) -> Vec<String> {
    let primaries = primaries(service);
    let first = primaries.first();
    let mut place = first.map(|i| format!("n{}", i.node));
    if let Some(place) = place.as_mut().filter(|_| primaries.len() > 1) {
        place.push_str(&format!(" +{}", primaries.len() - 1));
    }
    let note = if service.removing {
        "removing".to_owned()
    } else if !service.spec.enabled {
        "disabled".to_owned()
    } else if let Some(to) = service.move_to {
        format!("moving to n{to}")
    } else {
        service.blocked.clone().unwrap_or_default()
    };
    vec![
        service.name.clone(),
        service.spec.kind_text(),
        dash(place),
        dash(first.map(|i| i.state.to_string())),
        dash(first.and_then(|i| i.token).map(|t| t.to_string())),
        note,
    ]
}

pub fn instance_row(i: &InstanceView) -> Vec<String> {
    vec![
        format!("i{}", i.id),
        format!("n{}", i.node),
        i.role.to_string(),
        i.state.to_string(),
        dash(i.token.map(|t| t.to_string())),
        secs(i.since_ms),
        i.restarts.to_string(),
        i.end.clone().unwrap_or_default(),
    ]
}

/// The definition as a `[[service]]` table, then the state and instances.
pub fn show_service(service: &ServiceView) -> String {
    let mut text = to_toml(&service.spec);
    text.push('\n');
    if service.removing {
        text.push_str("# removing: its instances are stopping\n");
    }
    if let Some(to) = service.move_to {
        text.push_str(&format!("# moving to n{to}\n"));
    }
    if let Some(blocked) = &service.blocked {
        text.push_str(&format!("# cannot place: {blocked}\n"));
    }
    if service.instances.is_empty() {
        text.push_str("# no instances\n");
        return text;
    }
    let mut table = Table::new(INSTANCE_HEADER);
    service.instances.iter().for_each(|i| table.push(instance_row(i)));
    text.push_str(&table.render());
    text
}

pub fn node_row(node: &NodeView) -> Vec<String> {
    let lease = match node.lease {
        LeaseView::Alive { expires_at_ms } => format!("alive until {}", secs(expires_at_ms)),
        LeaseView::Expired { at_ms, cause } => format!("expired at {} ({cause:?})", secs(at_ms)).to_lowercase(),
    };
    let labels: Vec<String> = node.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    vec![
        format!("n{}", node.id),
        node.address.clone(),
        lease,
        if node.drained { "yes" } else { "no" }.to_owned(),
        node.instances.to_string(),
        labels.join(","),
    ]
}

pub fn event_row(event: &EventView) -> Vec<String> {
    vec![secs(event.at_ms), dash(event.service.clone()), event.text.clone(), event.cause.clone()]
}

/// One decision on one line, for `haven events --follow`.
pub fn event_line(event: &EventView) -> String {
    let row = event_row(event);
    format!("{}  {}  {}  [{}]", row[0], row[1], row[2], row[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::ServiceDef;

    fn instance(id: u64, node: u64, role: Role, state: State, token: Option<u64>) -> InstanceView {
        InstanceView { id, service: "db".into(), node, role, state, token, since_ms: 1_500, restarts: 0, end: None }
    }

    #[test]
    fn a_service_row_shows_the_active_primary_and_its_token() {
        let mut service = ServiceView {
            name: "db".into(),
            spec: ServiceDef { standbys: Some(1), ..ServiceDef::new("db", "/db") },
            removing: false,
            move_to: None,
            blocked: None,
            instances: vec![
                instance(1, 3, Role::Primary, State::Fenced, Some(4)),
                instance(2, 5, Role::Standby, State::Active, None),
                instance(3, 4, Role::Primary, State::Active, Some(7)),
            ],
        };
        assert_eq!(service_row(&service), vec!["db", "singleton+1", "n4", "active", "7", ""]);
        service.instances.clear();
        service.blocked = Some("no eligible node: no node has joined".into());
        assert_eq!(
            service_row(&service),
            vec!["db", "singleton+1", "-", "-", "-", "no eligible node: no node has joined"]
        );
        let shown = show_service(&service);
        assert!(shown.starts_with("[[service]]\nname = \"db\""), "{shown}");
        assert!(shown.contains("# cannot place: no eligible node"), "{shown}");
    }

    #[test]
    fn node_ids_and_pairs_parse_as_printed() {
        assert_eq!(node_id("n4"), Ok(4));
        assert_eq!(node_id("4"), Ok(4));
        assert!(node_id("four").unwrap_err().contains("write 4 or n4"));
        assert_eq!(parse_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_pair("=x").is_err());
        let node = NodeView {
            id: 4,
            address: "10.0.0.4:7000".into(),
            labels: [("disk".to_owned(), "ssd".to_owned())].into(),
            lease: LeaseView::Expired { at_ms: 2_000, cause: crate::ha::ExpiryCause::Lease },
            drained: true,
            proxy: None,
            instances: 2,
        };
        assert_eq!(node_row(&node), vec!["n4", "10.0.0.4:7000", "expired at 2.000 s (lease)", "yes", "2", "disk=ssd"]);
    }
}
