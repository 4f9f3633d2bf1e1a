//! Between the `/v1/` API's JSON (`haven_client::ha`) and the HA model
//! (`haven_ha`).
//!
//! In: a [`ServiceDef`] from an operator (untrusted), or the replica's
//! state graph. Out: a validated [`ServiceSpec`], or an [`Invalid`] whose
//! message starts with the JSON field to fix (the model's own messages,
//! with its field paths rewritten to the JSON's); and the views the API
//! serves. Views are built in one pass over the instances, so listing
//! every service or node stays linear in the size of the graph.

use haven_client::ha::{
    CheckKind, EventView, ExpiryCause, HealthDef, InstanceView, Kind, LeaseView, NodeView, PlacementDef, RestartDef,
    Role, ServiceDef, ServiceView, State,
};
use haven_ha::{
    Decision, Expiry, HealthCheck, HealthSpec, Instance, InstanceState, Lease, Node, Placement, RestartPolicy, Service,
    ServiceKind, ServiceSpec, StateGraph, validate,
};
use haven_runtime::NodeId;
use std::collections::BTreeMap;

/// A definition the station refuses: the message and the field it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub message: String,
    pub field: Option<String>,
}

impl Invalid {
    fn at(field: &str, problem: &str) -> Invalid {
        Invalid { message: format!("{field}: {problem}"), field: Some(field.to_owned()) }
    }
}

/// The model's field paths where the JSON's differ.
const FIELD_RENAMES: &[(&str, &str)] = &[
    ("kind.count", "count"),
    ("kind.standbys", "standbys"),
    ("health.check.addr", "health.address"),
    ("health.check.url", "health.url"),
    ("health.check.command", "health.command"),
    ("health.check.args", "health.args"),
];

/// Checks `def` and turns it into the model's spec.
pub(crate) fn spec_of(def: &ServiceDef) -> Result<ServiceSpec, Invalid> {
    let spec = ServiceSpec {
        name: def.name.clone(),
        command: def.command.clone(),
        args: def.args.clone(),
        env: def.env.clone(),
        working_dir: def.working_dir.clone(),
        kind: kind_of(def)?,
        placement: placement_of(&def.placement),
        health: HealthSpec {
            check: check_of(&def.health)?,
            interval_ms: def.health.interval_ms,
            timeout_ms: def.health.timeout_ms,
            failure_threshold: def.health.failure_threshold,
        },
        restart: RestartPolicy {
            restarts_max: def.restart.restarts_max,
            restart_window_ms: def.restart.restart_window_ms,
        },
        promote: def.promote.clone(),
        demote: def.demote.clone(),
        start_timeout_ms: def.start_timeout_ms,
        stop_timeout_ms: def.stop_timeout_ms,
        enabled: def.enabled,
    };
    validate(&spec).map_err(|e| invalid_of(&e.to_string()))?;
    Ok(spec)
}

/// A model message `field: problem`, with the field as the JSON names it.
fn invalid_of(message: &str) -> Invalid {
    let Some((field, problem)) = message.split_once(": ") else {
        return Invalid { message: message.to_owned(), field: None };
    };
    let field = field.trim_end_matches("[]");
    let renamed = FIELD_RENAMES.iter().find(|(model, _)| *model == field).map_or(field, |(_, json)| json);
    Invalid::at(renamed, problem)
}

fn kind_of(def: &ServiceDef) -> Result<ServiceKind, Invalid> {
    match def.kind {
        Kind::Singleton => {
            if def.count.is_some() {
                return Err(Invalid::at(
                    "count",
                    "only a replicated service has a count; use standbys for a singleton",
                ));
            }
            Ok(ServiceKind::Singleton { standbys: def.standbys.unwrap_or(0) })
        }
        Kind::Replicated => {
            if def.standbys.is_some() {
                return Err(Invalid::at("standbys", "only a singleton has standbys; use count for a replicated one"));
            }
            Ok(ServiceKind::Replicated { count: def.count.unwrap_or(1) })
        }
        Kind::EveryNode => match (def.standbys, def.count) {
            (Some(_), _) => Err(Invalid::at("standbys", "an every-node service has no standbys; remove it")),
            (_, Some(_)) => Err(Invalid::at("count", "an every-node service runs on every node; remove count")),
            (None, None) => Ok(ServiceKind::EveryNode),
        },
    }
}

fn placement_of(p: &PlacementDef) -> Placement {
    Placement {
        labels: p.labels.clone(),
        anti_affinity: p.anti_affinity.clone(),
        preferred: p.preferred.iter().copied().map(NodeId).collect(),
        colocate_with: p.colocate_with.clone(),
        start_after: p.start_after.clone(),
    }
}

fn check_of(h: &HealthDef) -> Result<HealthCheck, Invalid> {
    let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
    let (wants, check) = match h.check {
        CheckKind::Process => ("", HealthCheck::Process),
        CheckKind::Exec => {
            let command = h.command.clone().filter(|c| !c.is_empty());
            let command = command.ok_or_else(|| Invalid::at("health.command", "an exec check needs the command"))?;
            ("command", HealthCheck::Exec { command, args: h.args.clone() })
        }
        CheckKind::Tcp if given(&h.address) => {
            ("address", HealthCheck::Tcp { addr: h.address.clone().unwrap_or_default() })
        }
        CheckKind::Tcp => return Err(Invalid::at("health.address", "a tcp check needs host:port to connect to")),
        CheckKind::Http if given(&h.url) => ("url", HealthCheck::Http { url: h.url.clone().unwrap_or_default() }),
        CheckKind::Http => return Err(Invalid::at("health.url", "an http check needs the URL to GET")),
    };
    let stray = [
        ("command", h.command.is_some()),
        ("args", !h.args.is_empty() && wants != "command"),
        ("address", h.address.is_some()),
        ("url", h.url.is_some()),
    ];
    for (field, present) in stray {
        let belongs = field == wants || (field == "args" && wants == "command");
        if present && !belongs {
            let problem = format!("does not apply to a {} check; remove it", check_name(h.check));
            return Err(Invalid::at(&format!("health.{field}"), &problem));
        }
    }
    Ok(check)
}

fn check_name(check: CheckKind) -> &'static str {
    match check {
        CheckKind::Process => "process",
        CheckKind::Exec => "exec",
        CheckKind::Tcp => "tcp",
        CheckKind::Http => "http",
    }
}

/// The model's spec as the API shows it (every field explicit).
pub(crate) fn def_of(spec: &ServiceSpec) -> ServiceDef {
    let (kind, standbys, count) = match spec.kind {
        ServiceKind::Singleton { standbys } => (Kind::Singleton, Some(standbys), None),
        ServiceKind::Replicated { count } => (Kind::Replicated, None, Some(count)),
        ServiceKind::EveryNode => (Kind::EveryNode, None, None),
    };
    let mut health = HealthDef {
        interval_ms: spec.health.interval_ms,
        timeout_ms: spec.health.timeout_ms,
        failure_threshold: spec.health.failure_threshold,
        ..HealthDef::default()
    };
    match &spec.health.check {
        HealthCheck::Process => health.check = CheckKind::Process,
        HealthCheck::Exec { command, args } => {
            (health.check, health.command, health.args) = (CheckKind::Exec, Some(command.clone()), args.clone())
        }
        HealthCheck::Tcp { addr } => (health.check, health.address) = (CheckKind::Tcp, Some(addr.clone())),
        HealthCheck::Http { url } => (health.check, health.url) = (CheckKind::Http, Some(url.clone())),
    }
    let p = &spec.placement;
    ServiceDef {
        name: spec.name.clone(),
        command: spec.command.clone(),
        args: spec.args.clone(),
        env: spec.env.clone(),
        working_dir: spec.working_dir.clone(),
        kind,
        standbys,
        count,
        placement: PlacementDef {
            labels: p.labels.clone(),
            anti_affinity: p.anti_affinity.clone(),
            preferred: p.preferred.iter().map(|n| n.0).collect(),
            colocate_with: p.colocate_with.clone(),
            start_after: p.start_after.clone(),
        },
        health,
        restart: RestartDef {
            restarts_max: spec.restart.restarts_max,
            restart_window_ms: spec.restart.restart_window_ms,
        },
        promote: spec.promote.clone(),
        demote: spec.demote.clone(),
        start_timeout_ms: spec.start_timeout_ms,
        stop_timeout_ms: spec.stop_timeout_ms,
        enabled: spec.enabled,
    }
}

pub(crate) fn instance_view(i: &Instance) -> InstanceView {
    InstanceView {
        id: i.id.0,
        service: i.service.clone(),
        node: i.node.0,
        role: match i.role {
            haven_ha::Role::Primary => Role::Primary,
            haven_ha::Role::Standby => Role::Standby,
        },
        state: match i.state {
            InstanceState::Pending => State::Pending,
            InstanceState::Starting => State::Starting,
            InstanceState::Active => State::Active,
            InstanceState::Stopping => State::Stopping,
            InstanceState::Failed => State::Failed,
            InstanceState::Fenced => State::Fenced,
        },
        token: i.token,
        since_ms: i.since_ms,
        restarts: i.restarts_ms.len() as u64,
        end: i.end.as_ref().map(ToString::to_string),
    }
}

fn node_view(node: &Node, instances: u64) -> NodeView {
    NodeView {
        id: node.id.0,
        address: node.address.clone(),
        labels: node.labels.clone(),
        lease: match node.lease {
            Lease::Alive { expires_at_ms } => LeaseView::Alive { expires_at_ms },
            Lease::Expired { at_ms, cause } => LeaseView::Expired {
                at_ms,
                cause: match cause {
                    Expiry::Lease => ExpiryCause::Lease,
                    Expiry::Fenced => ExpiryCause::Fenced,
                },
            },
        },
        drained: node.drained,
        proxy: node.proxy,
        instances,
    }
}

/// Every node, with the number of instances on it.
pub(crate) fn node_views(g: &StateGraph) -> Vec<NodeView> {
    let mut counts: BTreeMap<NodeId, u64> = BTreeMap::new();
    for i in g.instances.values() {
        *counts.entry(i.node).or_default() += 1;
    }
    g.nodes.values().map(|n| node_view(n, counts.get(&n.id).copied().unwrap_or(0))).collect()
}

fn service_view(s: &Service, instances: Vec<InstanceView>) -> ServiceView {
    ServiceView {
        name: s.spec.name.clone(),
        spec: def_of(&s.spec),
        removing: s.removing,
        move_to: s.move_to.map(|n| n.0),
        blocked: s.blocked.clone(),
        instances,
    }
}

/// The services `wanted` admits (all when `None`), each with its instances.
pub(crate) fn service_views(g: &StateGraph, wanted: Option<&str>) -> Vec<ServiceView> {
    let mut by_service: BTreeMap<&str, Vec<InstanceView>> = BTreeMap::new();
    for i in g.instances.values().filter(|i| wanted.is_none_or(|w| w == i.service)) {
        by_service.entry(i.service.as_str()).or_default().push(instance_view(i));
    }
    let services = g.services.values().filter(|s| wanted.is_none_or(|w| w == s.name()));
    services.map(|s| service_view(s, by_service.remove(s.name()).unwrap_or_default())).collect()
}

pub(crate) fn event_view(d: &Decision) -> EventView {
    EventView { at_ms: d.at_ms, service: d.service.clone(), text: d.text.clone(), cause: d.cause.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_spec() -> ServiceSpec {
        let mut spec = ServiceSpec::new("db", "/usr/bin/db", ServiceKind::Singleton { standbys: 1 });
        spec.args = vec!["--port".into(), "5432".into()];
        spec.env.insert("PGDATA".into(), "/var/lib/db".into());
        spec.working_dir = Some("/var/lib/db".into());
        spec.placement.preferred = vec![NodeId(4), NodeId(5)];
        spec.placement.labels.insert("disk".into(), "ssd".into());
        spec.placement.anti_affinity = vec!["cache".into()];
        spec.placement.start_after = vec!["net".into()];
        spec.health.check = HealthCheck::Tcp { addr: "127.0.0.1:5432".into() };
        spec.health.interval_ms = 2_000;
        spec.restart = RestartPolicy { restarts_max: 1, restart_window_ms: 30_000 };
        spec.promote = Some("/usr/bin/db-promote".into());
        spec.demote = Some("/usr/bin/db-demote".into());
        spec.start_timeout_ms = 5_000;
        spec.enabled = false;
        spec
    }

    #[test]
    fn a_minimal_definition_is_the_models_default_spec() {
        let def = ServiceDef::new("db", "/usr/bin/db");
        assert_eq!(spec_of(&def), Ok(ServiceSpec::new("db", "/usr/bin/db", ServiceKind::Singleton { standbys: 0 })));
    }

    #[test]
    fn specs_round_trip_through_the_json_shape() {
        let mut replicated = ServiceSpec::new("web", "/usr/bin/web", ServiceKind::Replicated { count: 3 });
        replicated.health.check = HealthCheck::Http { url: "http://127.0.0.1:8080/health".into() };
        let mut every = ServiceSpec::new("log", "/usr/bin/log", ServiceKind::EveryNode);
        every.health.check = HealthCheck::Exec { command: "/usr/bin/check".into(), args: vec!["-q".into()] };
        for spec in [full_spec(), replicated, every] {
            let def = def_of(&spec);
            assert_eq!(spec_of(&def).as_ref(), Ok(&spec), "{def:?}");
            let json = serde_json::to_string(&def).unwrap();
            let back: ServiceDef = serde_json::from_str(&json).unwrap();
            assert_eq!(def_of(&spec_of(&back).unwrap()), def, "{json}");
        }
        let json = serde_json::to_value(def_of(&full_spec())).unwrap();
        assert_eq!(json["kind"], "singleton");
        assert_eq!(json["standbys"], 1);
        assert_eq!(json["placement"]["preferred"], serde_json::json!([4, 5]));
        assert_eq!(json["health"]["check"], "tcp");
        assert_eq!(json["health"]["address"], "127.0.0.1:5432");
        assert!(json.get("count").is_none(), "no count on a singleton: {json}");
    }

    #[test]
    fn a_toml_table_becomes_the_spec_it_describes() {
        let text = r#"
[[service]]
name = "db"
command = "/usr/bin/db"
args = ["--port", "5432"]
env = { PGDATA = "/var/lib/db" }
working_dir = "/var/lib/db"
standbys = 1
promote = "/usr/bin/db-promote"
demote = "/usr/bin/db-demote"
start_timeout_ms = 5000
enabled = false
[service.placement]
labels = { disk = "ssd" }
preferred = [4, 5]
anti_affinity = ["cache"]
start_after = ["net"]
[service.health]
check = "tcp"
address = "127.0.0.1:5432"
interval_ms = 2000
[service.restart]
restarts_max = 1
restart_window_ms = 30000
"#;
        let defs = haven_client::ha::parse_services_toml(text).unwrap();
        assert_eq!(spec_of(&defs[0]), Ok(full_spec()));
    }

    #[test]
    fn refusals_name_the_json_field() {
        let field = |def: &ServiceDef| spec_of(def).unwrap_err().field;
        let mut def = ServiceDef::new("db", "/usr/bin/db");
        def.standbys = Some(1);
        let refused = spec_of(&def).unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("promote"), "{refused:?}");
        assert!(refused.message.starts_with("promote: is missing"), "{refused:?}");
        def.standbys = Some(17);
        assert_eq!(field(&def).as_deref(), Some("standbys"), "kind.standbys is `standbys` in JSON");
        def.standbys = None;
        def.count = Some(2);
        assert_eq!(field(&def).as_deref(), Some("count"));
        def.count = None;
        def.health.check = CheckKind::Tcp;
        assert_eq!(field(&def).as_deref(), Some("health.address"));
        def.health.address = Some("127.0.0.1:1".into());
        def.health.url = Some("http://x".into());
        assert_eq!(field(&def).as_deref(), Some("health.url"), "a stray field of another check");
        def.health = HealthDef { check: CheckKind::Http, url: Some("https://x".into()), ..HealthDef::default() };
        assert_eq!(field(&def).as_deref(), Some("health.url"), "health.check.url is `health.url` in JSON");
        def.health = HealthDef { timeout_ms: 5_000, ..HealthDef::default() };
        assert_eq!(field(&def).as_deref(), Some("health.timeout_ms"));
        def = ServiceDef::new("Bad_Name", "/x");
        let refused = spec_of(&def).unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("name"));
        assert!(refused.message.contains("a-z"), "{refused:?}");
        def = ServiceDef::new("db", "/x");
        def.args = vec!["a".repeat(5_000)];
        assert_eq!(field(&def).as_deref(), Some("args"), "args[] is reported as args");
    }

    #[test]
    fn views_count_instances_per_node_and_group_them_per_service() {
        use haven_ha::{InstanceId, Role as ModelRole};
        let mut g = StateGraph::new(10);
        for id in [1, 2] {
            let lease = Lease::Alive { expires_at_ms: 9_000 };
            let node = Node {
                id: NodeId(id),
                address: format!("10.0.0.{id}"),
                labels: BTreeMap::new(),
                lease,
                session: 1,
                drained: id == 2,
                proxy: None,
            };
            g.nodes.insert(NodeId(id), node);
        }
        g.services.insert("db".into(), Service::new(full_spec()));
        g.services
            .insert("web".into(), Service::new(ServiceSpec::new("web", "/w", ServiceKind::Replicated { count: 2 })));
        let instance = |id: u64, service: &str, node: u64| Instance {
            id: InstanceId(id),
            service: service.into(),
            node: NodeId(node),
            role: ModelRole::Primary,
            state: InstanceState::Active,
            token: Some(id),
            since_ms: 10,
            restarts_ms: vec![1, 2],
            command: None,
            end: None,
        };
        for i in [instance(1, "db", 1), instance(2, "web", 1), instance(3, "web", 2)] {
            g.instances.insert(i.id, i);
        }
        let nodes = node_views(&g);
        assert_eq!(
            nodes.iter().map(|n| (n.id, n.instances, n.drained)).collect::<Vec<_>>(),
            vec![(1, 2, false), (2, 1, true)]
        );
        let services = service_views(&g, None);
        let names: Vec<(&str, usize)> = services.iter().map(|s| (s.name.as_str(), s.instances.len())).collect();
        assert_eq!(names, vec![("db", 1), ("web", 2)]);
        assert_eq!(services[0].instances[0].restarts, 2);
        assert_eq!(services[0].instances[0].state, State::Active);
        let web = service_views(&g, Some("web"));
        assert_eq!((web.len(), web[0].instances.iter().map(|i| i.node).collect::<Vec<_>>()), (1, vec![1, 2]));
    }
}
