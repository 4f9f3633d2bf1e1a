//! The start-up checks that touch the system.
//!
//! In: a resolved [`StationConfig`]. Out: the data directory created and
//! proven writable, and both listening sockets bound (kept, so nobody can
//! take the ports between the check and the start); or a [`ConfigError`]
//! naming the flag to change.

use crate::config::StationConfig;
use crate::config_error::ConfigError;
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;

/// The sockets a station serves on, bound at start.
#[derive(Debug)]
pub struct Bound {
    pub peer: TcpListener,
    pub client: TcpListener,
}

/// Creates `dir` if missing and writes, syncs and removes a probe file in it.
pub fn check_data_dir(dir: &Path) -> Result<(), ConfigError> {
    let fail = |reason: String| ConfigError::DataDir { path: dir.to_owned(), reason };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let probe = dir.join(".haven-write-probe");
    let written = std::fs::File::create(&probe).and_then(|file| {
        use std::io::Write as _;
        let mut file = file;
        file.write_all(b"probe")?;
        file.sync_all()
    });
    let removed = std::fs::remove_file(&probe);
    written.map_err(|e| fail(e.to_string()))?;
    removed.map_err(|e| fail(format!("cannot remove the probe file: {e}")))
}

/// Binds the peer and the client address.
pub async fn bind(config: &StationConfig) -> Result<Bound, ConfigError> {
    let peer = bind_one("--listen-peer", config.listen_peer).await?;
    let client = bind_one("--listen-client", config.listen_client).await?;
    Ok(Bound { peer, client })
}

async fn bind_one(flag: &'static str, addr: SocketAddr) -> Result<TcpListener, ConfigError> {
    haven_net::listen(addr).map_err(|source| ConfigError::PortInUse { flag, addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{StationArgs, StationConfig};

    fn config(peer: SocketAddr, client: SocketAddr) -> StationConfig {
        let args = StationArgs {
            id: Some(1),
            data_dir: Some(std::env::temp_dir()),
            initial_cluster: Some(format!("1={peer}=http://{client}")),
            ..StationArgs::default()
        };
        StationConfig::resolve(args).expect("valid").0
    }

    #[test]
    fn a_data_dir_that_cannot_be_written_is_named() {
        let file = std::env::temp_dir().join(format!("haven-daemon-not-a-dir-{}", std::process::id()));
        std::fs::write(&file, b"a file, not a directory").unwrap();
        let message = check_data_dir(&file.join("data")).unwrap_err().to_string();
        assert!(message.starts_with(&format!("--data-dir {}", file.join("data").display())), "{message}");
        assert!(message.contains("choose a directory this user can write"), "{message}");
        std::fs::remove_file(&file).unwrap();
        let fresh = std::env::temp_dir().join(format!("haven-daemon-fresh-{}", std::process::id()));
        check_data_dir(&fresh).expect("a fresh directory is created and writable");
        assert_eq!(std::fs::read_dir(&fresh).unwrap().count(), 0, "the probe is removed");
        std::fs::remove_dir_all(&fresh).unwrap();
    }

    #[tokio::test]
    async fn a_port_in_use_names_the_flag_to_change() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let taken_addr = taken.local_addr().unwrap();
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let message = bind(&config(taken_addr, free)).await.unwrap_err().to_string();
        assert!(message.starts_with(&format!("--listen-peer {taken_addr}: cannot listen")), "{message}");
        assert!(message.contains("change --listen-peer"), "{message}");
        let message = bind(&config(free, taken_addr)).await.unwrap_err().to_string();
        assert!(message.starts_with(&format!("--listen-client {taken_addr}")), "{message}");
        let bound = bind(&config(free, "127.0.0.1:0".parse().unwrap())).await.expect("free ports bind");
        assert_eq!(bound.peer.local_addr().unwrap(), free);
    }
}
