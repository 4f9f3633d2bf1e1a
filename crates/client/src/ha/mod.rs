//! Haven's own operator API (`/v1/`): the JSON types a station serves and
//! accepts, and the client calls.
//!
//! In: service definitions (JSON or TOML) and operator actions. Out: typed
//! views of nodes, services, instances and the coordinator's decisions.

mod api;
mod service;
mod views;

pub use api::EventStream;
pub use service::{
    CheckKind, FAILURE_THRESHOLD_DEFAULT, HEALTH_INTERVAL_MS_DEFAULT, HEALTH_TIMEOUT_MS_DEFAULT, HealthDef, Kind,
    PlacementDef, RESTART_WINDOW_MS_DEFAULT, RESTARTS_MAX_DEFAULT, RestartDef, SERVICES_FILE_BYTES_MAX,
    START_TIMEOUT_MS_DEFAULT, STOP_TIMEOUT_MS_DEFAULT, ServiceDef, ServicesFile, parse_services_toml, to_toml,
};
pub use views::{
    ApiError, Checked, EventList, EventView, ExpiryCause, InstanceList, InstanceView, LeaseView, MoveRequest, NodeList,
    NodeView, Queued, Role, ServiceList, ServiceView, State, secs,
};
