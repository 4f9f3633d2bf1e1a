//! Who the members are, as this station knows them now.
//!
//! In: the configuration's member list (what is known before the log is
//! read), then every [`ReplicaEvent::Members`]: the replicated member table
//! and the configuration in force. Out: the member list for the API (with
//! who is a learner), each member's client URL for forwarding, the cluster
//! id, and the peer map the executor dials — published on a watch channel
//! whenever it changes, so an added member is dialled and a removed one
//! forgotten without a restart; and whether this member was removed, from
//! its own table or from another member's word (`removal_probe.rs`).
//!
//! The peer map is `haven_station::peer_ids`: the table's members plus any
//! member the table dropped that the configuration in force still has (why:
//! see there), with the addresses it had in the table; plus guests, nodes
//! that dialled in and are not known to be removed (`admit_guest`).

use crate::cluster::MemberSpec;
use crate::config::StationConfig;
use haven_gateway::Member;
use haven_runtime::NodeId;
use haven_station::{MemberRecord, ReplicaEvent};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, watch};

pub type PeerMap = BTreeMap<NodeId, SocketAddr>;

#[derive(Debug)]
pub struct Roster {
    me: u64,
    name: String,
    state: Mutex<State>,
    peers: watch::Sender<PeerMap>,
    /// Bumped whenever the configuration in force changes, for `wait_voter`
    /// and `wait_gone`.
    configs: watch::Sender<u64>,
    /// This member was listed by a replicated member table (a joiner is not
    /// until it applied its own add), and then left it, or another member's
    /// table says so: removed for good, since ids are never reused. Outside
    /// the lock: every client request reads it.
    removed: AtomicBool,
    /// Rung when a client request found no leader to answer it: this member
    /// may have been removed without hearing of it, so it should ask.
    doubt: Notify,
    /// The cluster id once a replicated table gave it (0 before: a joiner
    /// cannot compute it from its configuration), for the executor's hellos.
    cluster_known: Arc<AtomicU64>,
}

#[derive(Debug)]
struct State {
    cluster_id: u64,
    members: Vec<MemberRecord>,
    /// Above every id the table gave out (0 until a table was seen).
    next_id: u64,
    learners: BTreeSet<u64>,
    /// Voters and learners of the configuration in force.
    in_force: BTreeSet<u64>,
    /// Members the table no longer has but the configuration in force
    /// still does, with their peer addresses: dialled until Raft drops them.
    departing: Vec<MemberRecord>,
    /// Nodes outside the table that dialled in, not known to be removed,
    /// with the address their hello gave: dialled back until the table
    /// says who they are. A member that was down while the cluster changed
    /// may know none of the members that now want to reach it.
    guests: BTreeMap<u64, SocketAddr>,
    /// A replicated member table has listed this member.
    listed: bool,
}

/// Unknown nodes dialled back at most (`admit_guest`).
const GUESTS_LEN_MAX: usize = 16;

impl State {
    fn standing(&self, id: u64) -> Standing {
        if haven_station::was_removed(&self.members, self.next_id, id) {
            Standing::Removed
        } else if self.members.iter().any(|m| m.id == id) {
            Standing::Member
        } else {
            Standing::Unknown
        }
    }

    /// The table's members, the departing ones and the guests.
    fn peer_map(&self) -> PeerMap {
        let guests = self.guests.iter().map(|(&id, &addr)| (NodeId(id), addr));
        peer_map(self.members.iter().chain(&self.departing)).into_iter().chain(guests).collect()
    }
}

/// Where a member stands in this member's table, for a member that asks
/// whether it was removed (`GET /haven/v1/members/{id}/standing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Member,
    /// Once given this id and removed since: for good.
    Removed,
    /// Not given out yet as far as this table knows: it may be behind.
    Unknown,
}

fn record(spec: &MemberSpec) -> MemberRecord {
    MemberRecord {
        id: spec.id,
        peer_addr: spec.peer_addr.to_string(),
        client_url: spec.client_url.clone(),
        voter: true,
    }
}

/// The peer map of `members`; an address that does not parse (never
/// accepted by `member add`) is left out with a warning.
fn peer_map<'a>(members: impl Iterator<Item = &'a MemberRecord>) -> PeerMap {
    let parse = |m: &MemberRecord| match m.peer_addr.parse() {
        Ok(addr) => Some((NodeId(m.id), addr)),
        Err(_) => {
            tracing::warn!(member = m.id, addr = %m.peer_addr, "member's peer address is not IP:port; not dialled");
            None
        }
    };
    members.filter_map(parse).collect()
}

impl Roster {
    /// The roster before the log is read: the configured members.
    pub fn new(config: &StationConfig) -> Roster {
        let members: Vec<MemberRecord> = config.members.iter().map(record).collect();
        let cluster_id = haven_station::cluster_id(&members);
        let learners = BTreeSet::new();
        let (departing, guests) = (Vec::new(), BTreeMap::new());
        let in_force = members.iter().map(|m| m.id).collect();
        let state = State { cluster_id, members, next_id: 0, learners, in_force, departing, guests, listed: false };
        let peers = watch::Sender::new(state.peer_map());
        let configs = watch::Sender::new(0);
        let (removed, doubt, cluster_known) = (AtomicBool::new(false), Notify::new(), Arc::default());
        let (me, name, state) = (config.id, config.name.clone(), Mutex::new(state));
        Roster { me, name, state, peers, configs, removed, doubt, cluster_known }
    }

    /// The cluster id as replicated tables give it, 0 until one did; shared
    /// with the executor, which tells it in every hello.
    pub fn cluster_known(&self) -> Arc<AtomicU64> {
        self.cluster_known.clone()
    }

    /// The peer map now and as it changes, for the executor.
    pub fn peer_updates(&self) -> watch::Receiver<PeerMap> {
        self.peers.subscribe()
    }

    pub fn peers(&self) -> PeerMap {
        self.peers.borrow().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("never poisoned: nothing panics while holding it")
    }

    pub fn observe(&self, event: &ReplicaEvent) {
        let ReplicaEvent::Members { cluster_id, members, next_id, voters, learners } = event else { return };
        let dialled = haven_station::peer_ids(members, voters, learners);
        let learners: BTreeSet<u64> = learners.iter().map(|n| n.0).collect();
        let listed = members.iter().any(|m| m.id == self.me);
        let (config_changed, unlisted, map) = {
            let mut state = self.lock();
            let old = std::mem::replace(&mut state.members, members.clone());
            let departed = old.into_iter().chain(std::mem::take(&mut state.departing));
            let mut departing: Vec<MemberRecord> =
                departed.filter(|m| dialled.contains(&NodeId(m.id)) && !members.iter().any(|n| n.id == m.id)).collect();
            departing.sort_by_key(|m| m.id);
            departing.dedup_by_key(|m| m.id);
            state.departing = departing;
            (state.cluster_id, state.next_id) = (*cluster_id, *next_id);
            let unlisted = state.listed && !listed;
            state.listed |= listed;
            let in_force: BTreeSet<u64> = voters.iter().map(|n| n.0).chain(learners.iter().copied()).collect();
            let learners_changed = std::mem::replace(&mut state.learners, learners) != state.learners;
            let config_changed =
                (std::mem::replace(&mut state.in_force, in_force) != state.in_force) | learners_changed;
            // A guest the table now names is a member (or was removed): the
            // table has the last word on it.
            let named: Vec<u64> =
                state.guests.keys().copied().filter(|&id| state.standing(id) != Standing::Unknown).collect();
            state.guests.retain(|id, _| !named.contains(id));
            (config_changed, unlisted, state.peer_map())
        };
        self.cluster_known.store(*cluster_id, Ordering::Relaxed);
        if unlisted {
            self.mark_removed("this member's own member table");
        }
        if config_changed {
            self.configs.send_modify(|generation| *generation += 1);
        }
        self.publish_peers(map);
    }

    fn publish_peers(&self, map: PeerMap) {
        self.peers.send_if_modified(|current| {
            let changed = *current != map;
            if changed {
                tracing::info!(peers = ?map, "peer map changed");
                *current = map;
            }
            changed
        });
    }

    /// A node outside the peer map dialled in, saying it listens at
    /// `addr`: unless this member's table says it was removed, it is
    /// dialled back and its next hello accepted, until the table names it.
    /// Answers whether it is in the peer map now.
    pub fn admit_guest(&self, id: u64, addr: SocketAddr) -> bool {
        let map = {
            let mut state = self.lock();
            // Members are in the map already, and departing ones are removed.
            if id == self.me || state.standing(id) != Standing::Unknown {
                return false;
            }
            if state.guests.get(&id) == Some(&addr) {
                return true;
            }
            if state.guests.len() >= GUESTS_LEN_MAX && !state.guests.contains_key(&id) {
                tracing::warn!(node = id, %addr, guests = GUESTS_LEN_MAX, "too many unknown nodes dialling in; not dialling this one back");
                return false;
            }
            tracing::info!(
                node = id,
                %addr,
                "a node this member's table does not name dialled in; dialling it back until the table says who it is"
            );
            state.guests.insert(id, addr);
            state.peer_map()
        };
        self.publish_peers(map);
        true
    }

    /// Records that this member was removed, as `source` says. It keeps
    /// its place in Raft (the configuration in force may still count its
    /// vote) but serves no client from now on.
    pub fn mark_removed(&self, source: &str) {
        if !self.removed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                source,
                "this member was removed from the cluster: it refuses every client request from now on; \
                 stop it and delete its data directory (ids are never reused: to return, add it as a new member)"
            );
        }
    }

    /// Where member `id` stands in this member's table.
    pub fn standing(&self, id: u64) -> Standing {
        self.lock().standing(id)
    }

    /// Says a client request found no leader: worth asking the others
    /// whether this member was removed.
    pub fn doubt(&self) {
        self.doubt.notify_one();
    }

    /// Resolves once a client request doubted, since the last call.
    pub async fn doubted(&self) {
        self.doubt.notified().await;
    }

    pub fn cluster_id(&self) -> u64 {
        self.lock().cluster_id
    }

    pub fn client_url(&self, id: u64) -> Option<String> {
        self.lock().members.iter().find(|m| m.id == id).map(|m| m.client_url.clone()).filter(|url| !url.is_empty())
    }

    /// This member's own entry, once the table has one.
    pub fn own_record(&self) -> Option<MemberRecord> {
        self.lock().members.iter().find(|m| m.id == self.me).cloned()
    }

    /// Whether the replicated member table no longer has this member.
    pub fn removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    pub fn is_learner(&self, id: u64) -> bool {
        self.lock().learners.contains(&id)
    }

    /// Waits until `id` is no longer a learner in the configuration in
    /// force, or until `deadline`; says whether it got there. A promotion is
    /// recorded in the member table at once but takes effect only when the
    /// leader finds the learner caught up, so a caller that wants etcd's
    /// answer (the member listed as a voter) waits for it here.
    pub async fn wait_voter(&self, id: u64, deadline: tokio::time::Instant) -> bool {
        self.wait_config(deadline, |state| !state.learners.contains(&id)).await
    }

    /// Waits until the configuration in force no longer has `id`, or until
    /// `deadline`, or until this member knows it was removed itself (it
    /// may never see the configuration without it); says whether it got
    /// there. The table drops a member at once, but Raft's configuration
    /// counts its vote until the leader has moved it, so stopping the
    /// member before then could cost a cluster short of members its quorum.
    pub async fn wait_gone(&self, id: u64, deadline: tokio::time::Instant) -> bool {
        self.wait_config(deadline, |state| !state.in_force.contains(&id) || (id == self.me && self.removed())).await
    }

    async fn wait_config(&self, deadline: tokio::time::Instant, done: impl Fn(&State) -> bool) -> bool {
        // Subscribed before the check, so a change between the two is seen.
        let mut changes = self.configs.subscribe();
        loop {
            if done(&self.lock()) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return false,
            }
        }
    }

    /// etcd's member list: every member by id, learners marked.
    pub fn members(&self) -> Vec<Member> {
        let state = self.lock();
        state.members.iter().map(|m| self.member(m, state.learners.contains(&m.id))).collect()
    }

    /// etcd's view of `m`: a member added at runtime has no name until it
    /// started and published where it serves clients.
    pub fn member(&self, m: &MemberRecord, is_learner: bool) -> Member {
        let name = if m.id == self.me {
            self.name.clone()
        } else if m.client_url.is_empty() {
            String::new()
        } else {
            format!("n{}", m.id)
        };
        Member {
            id: m.id,
            name,
            peer_urls: vec![format!("http://{}", m.peer_addr)],
            client_urls: if m.client_url.is_empty() { Vec::new() } else { vec![m.client_url.clone()] },
            is_learner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{StationArgs, StationConfig};

    fn roster() -> Roster {
        let cluster = "1=127.0.0.1:2380=http://127.0.0.1:2379,2=127.0.0.1:2480=http://127.0.0.1:2479";
        let args = StationArgs {
            id: Some(1),
            data_dir: Some("/tmp/x".into()),
            initial_cluster: Some(cluster.into()),
            ..StationArgs::default()
        };
        Roster::new(&StationConfig::resolve(args).unwrap().0)
    }

    #[test]
    fn the_peer_map_follows_the_table_and_learners_are_marked() {
        let roster = roster();
        let mut updates = roster.peer_updates();
        assert_eq!(roster.peers().len(), 2);
        let mut members: Vec<MemberRecord> = roster.lock().members.clone();
        members.remove(1);
        members.push(MemberRecord {
            id: 3,
            peer_addr: "127.0.0.1:2580".into(),
            client_url: String::new(),
            voter: false,
        });
        let cluster_id = roster.cluster_id();
        roster.observe(&ReplicaEvent::Members {
            cluster_id,
            members,
            next_id: 4,
            voters: vec![NodeId(1)],
            learners: vec![NodeId(3)],
        });
        assert!(updates.has_changed().unwrap());
        let ids: Vec<u64> = updates.borrow_and_update().keys().map(|n| n.0).collect();
        assert_eq!(ids, vec![1, 3], "2 is forgotten, 3 is dialled");
        let listed = roster.members();
        assert_eq!(listed.iter().map(|m| (m.id, m.is_learner)).collect::<Vec<_>>(), vec![(1, false), (3, true)]);
        assert!(listed[1].client_urls.is_empty(), "3 has not published its client URL yet");
        assert_eq!((listed[0].name.as_str(), listed[1].name.as_str()), ("n1", ""), "no name before it starts, as etcd");
        assert_eq!(roster.client_url(3), None);
        assert_eq!(roster.client_url(1).as_deref(), Some("http://127.0.0.1:2379"));
    }

    #[test]
    fn a_member_is_removed_once_a_table_that_listed_it_no_longer_does() {
        let roster = roster();
        // A joiner first applies the tables from before its own add.
        roster.observe(&table(&[2, 3], &[2, 3]));
        assert!(!roster.removed(), "never listed yet: joining, not removed");
        roster.observe(&table(&[1, 2, 3], &[1, 2, 3]));
        assert!(!roster.removed());
        roster.observe(&table(&[2, 3], &[2, 3]));
        assert!(roster.removed(), "listed, then not");
        assert_eq!(roster.cluster_known().load(Ordering::Relaxed), 7, "known once a table gave it");
        roster.observe(&table(&[2, 3, 4], &[2, 3, 4]));
        assert!(roster.removed(), "for good");
    }

    fn record(id: u64) -> MemberRecord {
        MemberRecord { id, peer_addr: format!("127.0.0.1:{}", 2000 + id), client_url: String::new(), voter: true }
    }

    /// The table `ids`, the next id above them, and `in_force` voting.
    fn table(ids: &[u64], in_force: &[u64]) -> ReplicaEvent {
        ReplicaEvent::Members {
            cluster_id: 7,
            members: ids.iter().map(|&id| record(id)).collect(),
            next_id: ids.iter().max().map_or(1, |max| max + 1),
            voters: in_force.iter().map(|&id| NodeId(id)).collect(),
            learners: Vec::new(),
        }
    }

    #[test]
    fn a_member_dropped_from_the_table_is_dialled_until_the_configuration_drops_it() {
        let roster = roster();
        let dialled = |roster: &Roster| roster.peers().keys().map(|n| n.0).collect::<Vec<_>>();
        roster.observe(&table(&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5]));
        roster.observe(&table(&[1, 2, 3, 4], &[1, 2, 3, 4, 5]));
        assert_eq!(dialled(&roster), vec![1, 2, 3, 4, 5], "5 still votes: its vote may be needed for a quorum");
        roster.observe(&table(&[1, 2, 3], &[1, 2, 3, 4, 5]));
        assert_eq!(dialled(&roster), vec![1, 2, 3, 4, 5], "a second departing member is kept beside the first");
        roster.observe(&table(&[1, 2, 3], &[1, 2, 3, 4]));
        assert_eq!(dialled(&roster), vec![1, 2, 3, 4]);
        roster.observe(&table(&[1, 2, 3], &[1, 2, 3]));
        assert_eq!(dialled(&roster), vec![1, 2, 3]);
        assert_eq!(roster.peers()[&NodeId(2)], "127.0.0.1:2002".parse().unwrap());
    }

    #[test]
    fn a_member_s_standing_is_removed_only_for_an_id_given_out_and_gone() {
        let roster = roster();
        assert_eq!(roster.standing(1), Standing::Member, "the configured members, before any table");
        assert_eq!(roster.standing(5), Standing::Unknown);
        roster.observe(&table(&[1, 2, 4], &[1, 2, 4]));
        assert_eq!(roster.standing(4), Standing::Member);
        assert_eq!(roster.standing(3), Standing::Removed, "below the next id and not in the table");
        assert_eq!(roster.standing(5), Standing::Unknown, "not given out yet, as far as this table knows");
    }

    #[test]
    fn a_node_that_dials_in_is_a_guest_unless_removed_until_the_table_names_it() {
        let roster = roster();
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        roster.observe(&table(&[1, 2, 4], &[1, 2, 4]));
        assert!(!roster.admit_guest(3, addr(3)), "3 was removed: refused");
        assert!(!roster.admit_guest(2, addr(2)), "2 is a member already");
        assert!(roster.admit_guest(7, addr(7)), "7 is newer than this table");
        assert_eq!(roster.peers().get(&NodeId(7)), Some(&addr(7)), "and dialled back");
        assert!(roster.admit_guest(7, addr(7)), "again: still a guest");
        roster.observe(&table(&[1, 2, 4, 7], &[1, 2, 4, 7]));
        assert_eq!(roster.peers().get(&NodeId(7)), Some(&"127.0.0.1:2007".parse().unwrap()), "the table's address now");
        let mut removed = table(&[1, 2, 4], &[1, 2, 4]);
        if let ReplicaEvent::Members { next_id, .. } = &mut removed {
            *next_id = 8;
        }
        roster.observe(&removed);
        assert_eq!(roster.peers().get(&NodeId(7)), None, "removed by the table: forgotten");
        assert!(!roster.admit_guest(7, addr(7)), "and refused from now on");
        for id in 100..100 + GUESTS_LEN_MAX as u64 {
            assert!(roster.admit_guest(id, addr(1)));
        }
        assert!(!roster.admit_guest(999, addr(1)), "at most {GUESTS_LEN_MAX} guests");
    }
}
