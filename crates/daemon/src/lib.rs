//! `haven station`: one station replica as a service.
//!
//! In: a [`StationConfig`] (TOML file, `HAVEN_*` environment, flags; see
//! [`StationArgs`]). Out: a running member — the replica on the production
//! executor with its data directory, the etcd v3 JSON API of
//! `haven_gateway` served through [`StationHandle`] (followers forward
//! writes and linearizable reads to the leader; serializable reads are
//! served locally), Haven's operator API under `/v1/` (services, nodes,
//! instances, events), a dashboard at `/dashboard`, `/metrics` and `/health`
//! — until SIGTERM or SIGINT.
//!
//! Layout: `config.rs` and `cluster.rs` read the settings, `checks.rs`
//! checks the data directory and ports, `capped_listener.rs` bounds the
//! client connections; `run.rs` starts everything;
//! `handle.rs` is the backend, `routes.rs` routes the replica's answers,
//! `forward.rs` carries requests to the leader, `sessions.rs` numbers
//! commands; `ha_api.rs` serves the operator API under `/v1/` (described
//! by `openapi.json`), `ha_json.rs` converts between its JSON and the HA
//! model; `dashboard.rs` serves the page that draws the cluster;
//! `progress.rs` and `metrics.rs` observe the replica; `roster.rs` keeps
//! the members and `removal_probe.rs` finds out if this one was removed; `command_bell.rs`
//! wakes the agents' command fetches waiting on this station.

pub mod agent_api;
pub mod capped_listener;
mod checks;
mod cluster;
mod command_bell;
mod config;
mod config_error;
mod dashboard;
mod error;
pub mod fence;
mod forward;
mod ha_api;
mod ha_json;
mod handle;
mod http;
mod in_span;
mod metrics;
mod progress;
pub mod proxy_api;
mod removal_probe;
pub mod restore;
mod roster;
mod routes;
mod run;
mod sessions;

pub use checks::{Bound, bind, check_data_dir};
pub use cluster::{MemberSpec, parse_initial_cluster};
pub use config::{
    CLIENT_CONNECTIONS_MAX_DEFAULT, ClusterState, REQUEST_BYTES_MAX_CEILING, REQUEST_BYTES_MAX_DEFAULT,
    REQUEST_BYTES_MAX_FLOOR, STATION_EXAMPLES, StationArgs, StationConfig,
};
pub use config_error::{ConfigError, MEMBER_EXAMPLE};
pub use error::DaemonError;
pub use forward::FORWARD_PATH;
pub use ha_api::{OPENAPI_JSON, router as ha_router};
pub use handle::{API_VERSION, BackupRefused, StationHandle};
pub use http::{SNAPSHOT_INDEX_HEADER, SNAPSHOT_PATH, SNAPSHOT_TERM_HEADER};
pub use metrics::Metrics;
pub use progress::{Progress, ProgressSnapshot};
pub use run::{LOCAL_CLIENT_ID, replica_config, run, run_until, shutdown_signal};
