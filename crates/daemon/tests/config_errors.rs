//! `run` refuses to start, with the flag to change, when its ports are
//! taken or its data directory cannot be written, and a valid member list
//! with a wrong `--id` never gets that far.

use haven_daemon::{ConfigError, DaemonError, StationArgs, StationConfig, run_until};
use std::net::{SocketAddr, TcpListener};

fn config(data_dir: std::path::PathBuf, peer: SocketAddr, client: SocketAddr) -> StationConfig {
    let args = StationArgs {
        id: Some(1),
        data_dir: Some(data_dir),
        initial_cluster: Some(format!("1={peer}=http://{client}")),
        ..StationArgs::default()
    };
    StationConfig::resolve(args).expect("valid").0
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[tokio::test]
async fn a_taken_client_port_stops_the_start_and_names_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = std::env::temp_dir().join(format!("haven-daemon-port-{}", std::process::id()));
    let result = run_until(config(dir.clone(), free_addr(), taken.local_addr().unwrap()), async {}).await;
    let Err(DaemonError::Config(error @ ConfigError::PortInUse { flag: "--listen-client", .. })) = result else {
        panic!("expected a port-in-use error, got {result:?}");
    };
    assert!(error.to_string().contains("change --listen-client"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unwritable_data_dir_stops_the_start_before_any_port_is_bound() {
    let file = std::env::temp_dir().join(format!("haven-daemon-file-{}", std::process::id()));
    std::fs::write(&file, b"not a directory").unwrap();
    let peer = free_addr();
    let result = run_until(config(file.join("data"), peer, free_addr()), async {}).await;
    assert!(matches!(result, Err(DaemonError::Config(ConfigError::DataDir { .. }))), "{result:?}");
    TcpListener::bind(peer).expect("the peer port was never taken");
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn an_id_missing_from_the_member_list_is_refused_at_load() {
    let args = StationArgs {
        id: Some(4),
        data_dir: Some("/tmp/unused".into()),
        initial_cluster: Some("1=127.0.0.1:2380=http://127.0.0.1:2379".into()),
        ..StationArgs::default()
    };
    let error = StationConfig::load(args).unwrap_err().to_string();
    assert_eq!(error, "--id 4 is not in --initial-cluster (members: 1); add an entry for it or fix --id");
}
