//! A service definition as operators write it: the JSON body of `POST
//! /v1/services` and the `[[service]]` tables of `haven apply FILE.toml`.
//!
//! In: JSON or TOML text (untrusted). Out: a [`ServiceDef`] with a default
//! for every field left out, or a message naming the field that is wrong.
//! The shape is flat on purpose (`kind = "singleton"` with `standbys = 1`,
//! `health.check = "tcp"` with `health.address`), so a TOML table reads
//! naturally; the station checks the values (`haven_ha::validate`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Defaults, the same as the station's `ServiceSpec::new` (a daemon test
/// holds the two together).
pub const HEALTH_INTERVAL_MS_DEFAULT: u64 = 1_000;
pub const HEALTH_TIMEOUT_MS_DEFAULT: u64 = 500;
pub const FAILURE_THRESHOLD_DEFAULT: u32 = 3;
pub const RESTARTS_MAX_DEFAULT: u32 = 3;
pub const RESTART_WINDOW_MS_DEFAULT: u64 = 60_000;
pub const START_TIMEOUT_MS_DEFAULT: u64 = 30_000;
pub const STOP_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// A services file larger than this is refused before parsing.
pub const SERVICES_FILE_BYTES_MAX: usize = 16 << 20;
/// Services one file may define.
pub const SERVICES_PER_FILE_MAX: usize = 10_000;

/// One service, as the operator declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    pub name: String,
    /// The program to run (no shell).
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub kind: Kind,
    /// Singleton only: ready instances beside the primary (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standbys: Option<u32>,
    /// Replicated only: active instances on distinct nodes (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default)]
    pub placement: PlacementDef,
    #[serde(default)]
    pub health: HealthDef,
    #[serde(default)]
    pub restart: RestartDef,
    /// Turns a standby into the primary; required with standbys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demote: Option<String>,
    #[serde(default = "start_timeout_ms")]
    pub start_timeout_ms: u64,
    #[serde(default = "stop_timeout_ms")]
    pub stop_timeout_ms: u64,
    #[serde(default = "yes")]
    pub enabled: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// One primary at a time, optionally with standbys.
    #[default]
    Singleton,
    /// `count` primaries on distinct nodes.
    Replicated,
    /// One primary on every node the placement admits.
    EveryNode,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementDef {
    /// Every key=value must be among a node's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Services never to share a node with.
    #[serde(default)]
    pub anti_affinity: Vec<String>,
    /// Node ids, best first (cascading failover).
    #[serde(default)]
    pub preferred: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colocate_with: Option<String>,
    #[serde(default)]
    pub start_after: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The process is alive.
    #[default]
    Process,
    /// `command` (with `args`) exits 0.
    Exec,
    /// A TCP connection to `address` succeeds.
    Tcp,
    /// A GET of `url` answers 2xx.
    Http,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthDef {
    #[serde(default)]
    pub check: CheckKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default = "interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "failure_threshold")]
    pub failure_threshold: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartDef {
    #[serde(default = "restarts_max")]
    pub restarts_max: u32,
    #[serde(default = "restart_window_ms")]
    pub restart_window_ms: u64,
}

fn start_timeout_ms() -> u64 {
    START_TIMEOUT_MS_DEFAULT
}
fn stop_timeout_ms() -> u64 {
    STOP_TIMEOUT_MS_DEFAULT
}
fn yes() -> bool {
    true
}
fn interval_ms() -> u64 {
    HEALTH_INTERVAL_MS_DEFAULT
}
fn timeout_ms() -> u64 {
    HEALTH_TIMEOUT_MS_DEFAULT
}
fn failure_threshold() -> u32 {
    FAILURE_THRESHOLD_DEFAULT
}
fn restarts_max() -> u32 {
    RESTARTS_MAX_DEFAULT
}
fn restart_window_ms() -> u64 {
    RESTART_WINDOW_MS_DEFAULT
}

impl Default for HealthDef {
    fn default() -> HealthDef {
        HealthDef {
            check: CheckKind::Process,
            command: None,
            args: Vec::new(),
            address: None,
            url: None,
            interval_ms: HEALTH_INTERVAL_MS_DEFAULT,
            timeout_ms: HEALTH_TIMEOUT_MS_DEFAULT,
            failure_threshold: FAILURE_THRESHOLD_DEFAULT,
        }
    }
}

impl Default for RestartDef {
    fn default() -> RestartDef {
        RestartDef { restarts_max: RESTARTS_MAX_DEFAULT, restart_window_ms: RESTART_WINDOW_MS_DEFAULT }
    }
}

impl ServiceDef {
    /// A singleton running `command`, every other field at its default.
    pub fn new(name: &str, command: &str) -> ServiceDef {
        ServiceDef {
            name: name.to_owned(),
            command: command.to_owned(),
            args: Vec::new(),
            env: BTreeMap::new(),
            working_dir: None,
            kind: Kind::Singleton,
            standbys: None,
            count: None,
            placement: PlacementDef::default(),
            health: HealthDef::default(),
            restart: RestartDef::default(),
            promote: None,
            demote: None,
            start_timeout_ms: START_TIMEOUT_MS_DEFAULT,
            stop_timeout_ms: STOP_TIMEOUT_MS_DEFAULT,
            enabled: true,
        }
    }

    /// `singleton`, `singleton+2` (standbys), `replicated×3`, `every-node`.
    pub fn kind_text(&self) -> String {
        match self.kind {
            Kind::Singleton => match self.standbys.unwrap_or(0) {
                0 => "singleton".to_owned(),
                n => format!("singleton+{n}"),
            },
            Kind::Replicated => format!("replicated×{}", self.count.unwrap_or(1)),
            Kind::EveryNode => "every-node".to_owned(),
        }
    }
}

/// A services file: `[[service]]` tables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesFile {
    #[serde(default)]
    pub service: Vec<ServiceDef>,
}

/// Parses a services file; the error names the line and field, or the
/// service defined twice.
pub fn parse_services_toml(text: &str) -> Result<Vec<ServiceDef>, String> {
    if text.len() > SERVICES_FILE_BYTES_MAX {
        return Err(format!("the file is larger than {SERVICES_FILE_BYTES_MAX} bytes; split it"));
    }
    let file: ServicesFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
    if file.service.is_empty() {
        return Err("no [[service]] table: write one per service, e.g.\n[[service]]\nname = \"db\"\ncommand = \
                    \"/usr/bin/db\""
            .to_owned());
    }
    if file.service.len() > SERVICES_PER_FILE_MAX {
        return Err(format!("{} services, more than {SERVICES_PER_FILE_MAX} in one file", file.service.len()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for def in &file.service {
        if !seen.insert(def.name.as_str()) {
            return Err(format!("service {:?} is defined twice; keep one [[service]] table per name", def.name));
        }
    }
    Ok(file.service)
}

/// One service as a `[[service]]` table, ready for `haven apply`.
pub fn to_toml(def: &ServiceDef) -> String {
    let file = ServicesFile { service: vec![def.clone()] };
    toml::to_string(&file).unwrap_or_else(|e| format!("# cannot show as TOML: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_table_gets_every_default() {
        let defs = parse_services_toml("[[service]]\nname = \"db\"\ncommand = \"/usr/bin/db\"\n").unwrap();
        assert_eq!(defs, vec![ServiceDef::new("db", "/usr/bin/db")]);
        let json: ServiceDef = serde_json::from_str(r#"{"name":"db","command":"/usr/bin/db"}"#).unwrap();
        assert_eq!(json, defs[0], "JSON and TOML have the same shape and defaults");
    }

    #[test]
    fn a_full_table_reads_every_field_and_round_trips() {
        let text = r#"
[[service]]
name = "db"
command = "/usr/bin/db"
args = ["--port", "5432"]
env = { PGDATA = "/var/lib/db" }
kind = "singleton"
standbys = 1
promote = "/usr/bin/db-promote"
start_timeout_ms = 5000
enabled = false

[service.placement]
labels = { disk = "ssd" }
preferred = [4, 5]
anti_affinity = ["cache"]

[service.health]
check = "tcp"
address = "127.0.0.1:5432"
interval_ms = 2000

[service.restart]
restarts_max = 1

[[service]]
name = "web"
command = "/usr/bin/web"
kind = "replicated"
count = 3
"#;
        let defs = parse_services_toml(text).unwrap();
        let db = &defs[0];
        assert_eq!(
            (db.kind, db.standbys, db.promote.as_deref()),
            (Kind::Singleton, Some(1), Some("/usr/bin/db-promote"))
        );
        assert_eq!(db.placement.preferred, vec![4, 5]);
        assert_eq!(db.placement.labels.get("disk").map(String::as_str), Some("ssd"));
        assert_eq!((db.health.check, db.health.address.as_deref()), (CheckKind::Tcp, Some("127.0.0.1:5432")));
        assert_eq!((db.health.interval_ms, db.health.timeout_ms), (2000, HEALTH_TIMEOUT_MS_DEFAULT));
        assert_eq!((db.restart.restarts_max, db.restart.restart_window_ms), (1, RESTART_WINDOW_MS_DEFAULT));
        assert_eq!((db.start_timeout_ms, db.enabled), (5000, false));
        assert_eq!(
            (defs[1].kind, defs[1].count, defs[1].kind_text()),
            (Kind::Replicated, Some(3), "replicated×3".into())
        );
        assert_eq!(parse_services_toml(&to_toml(db)).unwrap(), vec![db.clone()], "show prints what apply reads");
        let json = serde_json::to_string(db).unwrap();
        assert_eq!(&serde_json::from_str::<ServiceDef>(&json).unwrap(), db);
    }

    #[test]
    fn mistakes_name_the_field() {
        let error = parse_services_toml("[[service]]\nname = \"db\"\ncomand = \"/bin/x\"\n").unwrap_err();
        assert!(error.contains("comand"), "{error}");
        let error = parse_services_toml("[[service]]\nname = \"db\"\ncommand = \"x\"\nkind = \"pair\"\n").unwrap_err();
        assert!(error.contains("kind") || error.contains("pair"), "{error}");
        let twice = "[[service]]\nname = \"a\"\ncommand = \"x\"\n[[service]]\nname = \"a\"\ncommand = \"y\"\n";
        assert!(parse_services_toml(twice).unwrap_err().contains("defined twice"));
        assert!(parse_services_toml("").unwrap_err().contains("no [[service]]"));
    }
}
