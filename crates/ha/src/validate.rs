//! Validation of a service spec before it enters the state graph.
//!
//! In: a `ServiceSpec` from an operator (untrusted). Out: `Ok(())` or the
//! first problem as a `SpecError` that names the field and says how to fix
//! it. Every list and string is bounded here so the graph stays bounded.

use crate::spec::{HealthCheck, ServiceKind, ServiceSpec};
use thiserror::Error;

pub const NAME_BYTES_MAX: usize = 63;
pub const STRING_BYTES_MAX: usize = 4096;
pub const LIST_LEN_MAX: usize = 256;
pub const STANDBYS_MAX: u32 = 16;
pub const REPLICAS_MAX: u32 = 10_000;
/// Restarts in place per window; the instance keeps one timestamp per restart.
pub const RESTARTS_MAX: u32 = 100;
/// The text of a definition together (command, args, env, working
/// directory, promote and demote): every start command and every instance
/// awaiting one carries the definition, and one step may hold hundreds of
/// them in a single log entry.
pub const TEXT_BYTES_MAX: usize = 64 * 1024;
/// A day: longer timeouts are almost certainly a unit mistake (s for ms).
pub const TIMEOUT_MS_MAX: u64 = 86_400_000;

/// Why a spec was refused. Each message starts with the field.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SpecError {
    #[error(
        "{field}: {value:?} is not a valid name; use 1 to 63 characters from a-z, 0-9 and '-', starting with a letter"
    )]
    Name { field: &'static str, value: String },
    #[error("command: is empty; give the program to run, e.g. \"/usr/bin/postgres\"")]
    CommandEmpty,
    #[error("{field}: is {len} long, more than {max}; shorten it")]
    TooLong { field: &'static str, len: usize, max: usize },
    #[error(
        "args, env: the definition's text (command, args, env, working_dir, promote, demote) is {bytes} bytes, more \
         than {max}; put long configuration in a file and pass its path"
    )]
    TextTooLong { bytes: usize, max: usize },
    #[error("kind.count: is 0; a replicated service needs count >= 1 (set enabled = false to stop it instead)")]
    ReplicasZero,
    #[error("kind.count: {count} is more than {max}; use every-node or fewer replicas")]
    ReplicasTooMany { count: u32, max: u32 },
    #[error("kind.standbys: {standbys} is more than {max}; fewer standbys give the same availability")]
    StandbysTooMany { standbys: u32, max: u32 },
    #[error(
        "promote: is missing but kind.standbys is {standbys}; give the command that promotes a standby, or set standbys = 0"
    )]
    StandbysWithoutPromote { standbys: u32 },
    #[error("restart.restarts_max: {restarts_max} is more than {max}; past a few restarts, moving is the better cure")]
    RestartsTooMany { restarts_max: u32, max: u32 },
    #[error("{field}: is 0; give a positive number of milliseconds")]
    Zero { field: &'static str },
    #[error("{field}: {value_ms} ms is more than a day ({max_ms} ms); the unit is milliseconds")]
    TimeoutTooLong { field: &'static str, value_ms: u64, max_ms: u64 },
    #[error("health.timeout_ms: {timeout_ms} is not below health.interval_ms {interval_ms}; checks would overlap")]
    HealthTimeoutNotBelowInterval { timeout_ms: u64, interval_ms: u64 },
    #[error("health.failure_threshold: is 0; use 1 or more consecutive failures")]
    FailureThresholdZero,
    #[error("health.check: {what} is empty; give the {what} to check")]
    HealthTargetEmpty { what: &'static str },
    #[error("health.check.url: {url:?} does not start with http://; only plain HTTP checks are supported")]
    HealthUrl { url: String },
    #[error("{field}: names the service itself; a service cannot depend on or avoid itself")]
    SelfReference { field: &'static str },
    #[error("placement.colocate_with: a service that is colocated cannot have standbys; set standbys = 0")]
    ColocatedStandbys,
    #[error("env: key {key:?} is not valid; use letters, digits and '_', not starting with a digit")]
    EnvKey { key: String },
}

/// Checks a spec; the first problem found is returned.
pub fn validate(spec: &ServiceSpec) -> Result<(), SpecError> {
    check_name("name", &spec.name)?;
    if spec.command.is_empty() {
        return Err(SpecError::CommandEmpty);
    }
    check_strings(spec)?;
    check_kind(spec)?;
    check_placement(spec)?;
    check_health(spec)?;
    check_timeouts(spec)
}

fn check_name(field: &'static str, name: &str) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok { Ok(()) } else { Err(SpecError::Name { field, value: name.to_string() }) }
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), SpecError> {
    if len > max { Err(SpecError::TooLong { field, len, max }) } else { Ok(()) }
}

fn check_strings(spec: &ServiceSpec) -> Result<(), SpecError> {
    check_len("command", spec.command.len(), STRING_BYTES_MAX)?;
    check_len("args", spec.args.len(), LIST_LEN_MAX)?;
    for arg in &spec.args {
        check_len("args[]", arg.len(), STRING_BYTES_MAX)?;
    }
    check_len("env", spec.env.len(), LIST_LEN_MAX)?;
    for (key, value) in &spec.env {
        let key_ok = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !key_ok {
            return Err(SpecError::EnvKey { key: key.clone() });
        }
        check_len("env[]", value.len(), STRING_BYTES_MAX)?;
    }
    let optional = [("working_dir", &spec.working_dir), ("promote", &spec.promote), ("demote", &spec.demote)];
    for (field, value) in optional {
        check_len(field, value.as_ref().map_or(0, String::len), STRING_BYTES_MAX)?;
    }
    let bytes = spec.command.len()
        + spec.args.iter().map(String::len).sum::<usize>()
        + spec.env.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        + optional.iter().map(|(_, value)| value.as_ref().map_or(0, String::len)).sum::<usize>();
    if bytes > TEXT_BYTES_MAX { Err(SpecError::TextTooLong { bytes, max: TEXT_BYTES_MAX }) } else { Ok(()) }
}

fn check_kind(spec: &ServiceSpec) -> Result<(), SpecError> {
    match spec.kind {
        ServiceKind::Replicated { count: 0 } => Err(SpecError::ReplicasZero),
        ServiceKind::Replicated { count } if count > REPLICAS_MAX => {
            Err(SpecError::ReplicasTooMany { count, max: REPLICAS_MAX })
        }
        ServiceKind::Singleton { standbys } if standbys > STANDBYS_MAX => {
            Err(SpecError::StandbysTooMany { standbys, max: STANDBYS_MAX })
        }
        ServiceKind::Singleton { standbys } if standbys > 0 && spec.promote.is_none() => {
            Err(SpecError::StandbysWithoutPromote { standbys })
        }
        ServiceKind::Singleton { standbys } if standbys > 0 && spec.placement.colocate_with.is_some() => {
            Err(SpecError::ColocatedStandbys)
        }
        _ => Ok(()),
    }
}

fn check_placement(spec: &ServiceSpec) -> Result<(), SpecError> {
    let p = &spec.placement;
    check_len("placement.labels", p.labels.len(), LIST_LEN_MAX)?;
    check_len("placement.anti_affinity", p.anti_affinity.len(), LIST_LEN_MAX)?;
    check_len("placement.preferred", p.preferred.len(), LIST_LEN_MAX)?;
    check_len("placement.start_after", p.start_after.len(), LIST_LEN_MAX)?;
    for (key, value) in &p.labels {
        check_len("placement.labels[]", key.len() + value.len(), STRING_BYTES_MAX)?;
    }
    for name in &p.anti_affinity {
        check_name("placement.anti_affinity[]", name)?;
    }
    for name in &p.start_after {
        check_name("placement.start_after[]", name)?;
    }
    if let Some(name) = &p.colocate_with {
        check_name("placement.colocate_with", name)?;
    }
    let names_self = |names: &[String]| names.contains(&spec.name);
    if names_self(&p.anti_affinity) {
        return Err(SpecError::SelfReference { field: "placement.anti_affinity" });
    }
    if names_self(&p.start_after) {
        return Err(SpecError::SelfReference { field: "placement.start_after" });
    }
    if p.colocate_with.as_deref() == Some(spec.name.as_str()) {
        return Err(SpecError::SelfReference { field: "placement.colocate_with" });
    }
    Ok(())
}

fn check_health(spec: &ServiceSpec) -> Result<(), SpecError> {
    let h = &spec.health;
    match &h.check {
        HealthCheck::Process => {}
        HealthCheck::Exec { command, args } => {
            if command.is_empty() {
                return Err(SpecError::HealthTargetEmpty { what: "command" });
            }
            check_len("health.check.command", command.len(), STRING_BYTES_MAX)?;
            check_len("health.check.args", args.len(), LIST_LEN_MAX)?;
        }
        HealthCheck::Tcp { addr } => {
            if addr.is_empty() {
                return Err(SpecError::HealthTargetEmpty { what: "addr" });
            }
            check_len("health.check.addr", addr.len(), STRING_BYTES_MAX)?;
        }
        HealthCheck::Http { url } => {
            if !url.starts_with("http://") {
                return Err(SpecError::HealthUrl { url: url.clone() });
            }
            check_len("health.check.url", url.len(), STRING_BYTES_MAX)?;
        }
    }
    if h.failure_threshold == 0 {
        return Err(SpecError::FailureThresholdZero);
    }
    if h.timeout_ms >= h.interval_ms && h.interval_ms > 0 {
        return Err(SpecError::HealthTimeoutNotBelowInterval { timeout_ms: h.timeout_ms, interval_ms: h.interval_ms });
    }
    Ok(())
}

fn check_timeouts(spec: &ServiceSpec) -> Result<(), SpecError> {
    let mut timeouts = vec![
        ("health.interval_ms", spec.health.interval_ms),
        ("health.timeout_ms", spec.health.timeout_ms),
        ("start_timeout_ms", spec.start_timeout_ms),
        ("stop_timeout_ms", spec.stop_timeout_ms),
    ];
    if spec.restart.restarts_max > RESTARTS_MAX {
        return Err(SpecError::RestartsTooMany { restarts_max: spec.restart.restarts_max, max: RESTARTS_MAX });
    }
    // A window only matters when restarts in place are allowed at all.
    if spec.restart.restarts_max > 0 {
        timeouts.push(("restart.restart_window_ms", spec.restart.restart_window_ms));
    }
    for (field, value_ms) in timeouts {
        if value_ms == 0 {
            return Err(SpecError::Zero { field });
        }
        if value_ms > TIMEOUT_MS_MAX {
            return Err(SpecError::TimeoutTooLong { field, value_ms, max_ms: TIMEOUT_MS_MAX });
        }
    }
    Ok(())
}
