//! Real `haven station` processes on loopback: every write acknowledged
//! before all three stations are SIGKILLed at once is there after they
//! restart from their data directories (the issue's "after SIGKILL, restart
//! recovers everything that was acknowledged"), read back through etcd's
//! JSON API from another member than the one written to.

use haven_client::{Client, ClientConfig, PutRequest, RangeRequest, prefix_end};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const STATIONS: u64 = 3;
const WRITES: u64 = 40;
/// Time to elect a leader and answer, on a loaded CI machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

struct Cluster {
    dir: PathBuf,
    initial_cluster: String,
    clients: Vec<SocketAddr>,
    children: Vec<Child>,
}

impl Cluster {
    fn new(dir: PathBuf) -> Cluster {
        let ports: Vec<TcpListener> = (0..2 * STATIONS).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        let addrs: Vec<SocketAddr> = ports.iter().map(|l| l.local_addr().unwrap()).collect();
        let (clients, peers) = addrs.split_at(STATIONS as usize);
        let members: Vec<String> =
            (1..=STATIONS).zip(clients.iter().zip(peers)).map(|(id, (c, p))| format!("{id}={p}=http://{c}")).collect();
        Cluster { dir, initial_cluster: members.join(","), clients: clients.to_vec(), children: Vec::new() }
    }

    fn start(&mut self) {
        for id in 1..=STATIONS {
            let log = std::fs::File::create(self.dir.join(format!("n{id}.log"))).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_haven"))
                .args(["station", "--id", &id.to_string(), "--initial-cluster", &self.initial_cluster])
                .arg("--data-dir")
                .arg(self.dir.join(format!("n{id}")))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("haven station starts");
            self.children.push(child);
        }
    }

    fn kill_all(&mut self) {
        for mut child in self.children.drain(..) {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    fn client(&self, first: usize) -> Client {
        let n = self.clients.len();
        let endpoints = (0..n).map(|i| format!("http://{}", self.clients[(first + i) % n])).collect();
        Client::new(ClientConfig { endpoints, request_timeout: Duration::from_secs(2), ..Default::default() }).unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn put(key: String, value: String) -> PutRequest {
    PutRequest { key: key.into_bytes(), value: value.into_bytes(), ..Default::default() }
}

/// Retries the first put until a leader answers.
async fn first_put(client: &Client, request: &PutRequest, logs: &Path) {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match client.put(request).await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the cluster: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no station answered within {READY_TIMEOUT:?}: {e}; logs in {}", logs.display()),
        }
    }
}

#[test]
fn every_acknowledged_write_survives_sigkill_of_every_station() {
    let dir = std::env::temp_dir().join(format!("haven-test-stations-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = Cluster::new(dir.clone());
    let runtime = tokio::runtime::Runtime::new().unwrap();

    cluster.start();
    let writer = cluster.client(0);
    runtime.block_on(first_put(&writer, &put("k000".into(), "v0".into()), &dir));
    let mut acknowledged = vec![("k000".to_owned(), "v0".to_owned())];
    for i in 1..WRITES {
        let (key, value) = (format!("k{i:03}"), format!("v{i}"));
        if runtime.block_on(writer.put(&put(key.clone(), value.clone()))).is_ok() {
            acknowledged.push((key, value));
        }
    }
    assert!(acknowledged.len() as u64 > WRITES / 2, "only {} of {WRITES} writes acknowledged", acknowledged.len());
    cluster.kill_all();

    cluster.start();
    let reader = cluster.client(1);
    runtime.block_on(first_put(&reader, &put("after-restart".into(), "x".into()), &dir));
    let range = RangeRequest { key: b"k".to_vec(), range_end: prefix_end(b"k"), ..Default::default() };
    let found = runtime.block_on(reader.range(&range)).expect("a linearizable range after the restart");
    let found: Vec<(String, String)> = found
        .kvs
        .iter()
        .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), String::from_utf8_lossy(&kv.value).into_owned()))
        .collect();
    for pair in &acknowledged {
        assert!(found.contains(pair), "acknowledged {pair:?} lost after SIGKILL; found {} keys", found.len());
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `haven <args>`; its stdout, or a panic with its stderr.
fn haven(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_haven")).args(args).output().expect("haven runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(out.status.success(), "haven {args:?} failed: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn keys_at(runtime: &tokio::runtime::Runtime, client: &Client) -> Vec<(String, String)> {
    let range = RangeRequest { key: b"k".to_vec(), range_end: prefix_end(b"k"), ..Default::default() };
    let found = runtime.block_on(client.range(&range)).expect("a linearizable range");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    found.kvs.iter().map(|kv| (text(&kv.key), text(&kv.value))).collect()
}

/// `haven snapshot save|status|restore` as an operator runs them, on real
/// processes: a backup saved through any station (a follower points to the
/// leader) holds every acknowledged write, and three new stations on other
/// ports, seeded from it, serve exactly those.
#[test]
fn a_backup_saved_through_any_station_restores_into_new_stations_on_other_ports() {
    let dir = std::env::temp_dir().join(format!("haven-test-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (old_dir, new_dir) = (dir.join("old"), dir.join("new"));
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::create_dir_all(&new_dir).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut old = Cluster::new(old_dir.clone());
    old.start();
    let writer = old.client(0);
    runtime.block_on(first_put(&writer, &put("k000".into(), "v0".into()), &old_dir));
    for i in 1..20 {
        runtime.block_on(writer.put(&put(format!("k{i:03}"), format!("v{i}")))).expect("acknowledged");
    }
    let expected = keys_at(&runtime, &writer);
    assert_eq!(expected.len(), 20);

    let backups: Vec<PathBuf> = (0..STATIONS).map(|i| dir.join(format!("b{i}.haven"))).collect();
    for (backup, client) in backups.iter().zip(&old.clients) {
        let saved = haven(&["snapshot", "save", backup.to_str().unwrap(), "--endpoints", &format!("http://{client}")]);
        assert!(saved.starts_with("saved "), "{saved}");
    }
    let status = haven(&["snapshot", "status", backups[1].to_str().unwrap()]);
    assert!(status.contains(", 20 keys,") && status.contains("checksums good"), "{status}");
    old.kill_all();

    let mut new = Cluster::new(new_dir.clone());
    for id in 1..=STATIONS {
        let data_dir = new_dir.join(format!("n{id}"));
        let (id, data_dir) = (id.to_string(), data_dir.to_str().unwrap().to_owned());
        let backup = backups[2].to_str().unwrap();
        let args = ["snapshot", "restore", backup, "--id", &id, "--data-dir", &data_dir];
        let seeded = haven(&[&args[..], &["--initial-cluster", &new.initial_cluster]].concat());
        assert!(seeded.contains("seeded"), "{seeded}");
    }
    new.start();
    let reader = new.client(1);
    runtime.block_on(first_put(&reader, &put("after-restore".into(), "x".into()), &new_dir));
    assert_eq!(keys_at(&runtime, &reader), expected, "the restored cluster serves exactly the backed-up keys");
    drop((old, new));
    let _ = std::fs::remove_dir_all(&dir);
}
