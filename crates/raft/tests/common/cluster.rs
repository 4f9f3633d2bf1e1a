//! An in-memory cluster of Raft cores driven by one seeded RNG, with the
//! invariants of §5.4 checked after every step.
//!
//! In: a seed and a cluster size. Out: a run of random steps — deliver a
//! random in-flight message (so messages reorder), drop or duplicate one,
//! complete a node's oldest persist, advance the clock and tick, propose,
//! read (ReadIndex), transfer leadership, change the membership (adding
//! spare nodes as learners, promoting, demoting, removing), pause a node, snapshot and
//! compact a node's log (lagging followers then get InstallSnapshot),
//! crash a node (its unfinished persists are lost or torn) and restart it
//! from its disk — and a panic naming the seed and step if any invariant
//! breaks:
//! - at most one leader per term (§5.2 election safety);
//! - log matching (§5.3);
//! - leader completeness: a leader of term T holds every entry known
//!   committed by term T-1 or earlier (§5.4);
//! - every node applies the same entry at each index (state machine safety);
//! - every committed entry is on the disks of a majority of the latest
//!   committed configuration's voters (durability order), counting a
//!   snapshot that covers it;
//! - a snapshot a follower installs is the state machine of the committed
//!   prefix it claims to cover;
//! - a read confirmed by ReadIndex (§6.4) or served from a leader lease
//!   (§6.4.1, even seeds) has an index at or above every commit index any
//!   node knew when the read was asked for;
//! - no node ever counts a protocol violation.

use super::disk::Disk;
use super::machine::Machine;
use bytes::Bytes;
use haven_raft::{
    CompactError, Entry, EntryKind, Envelope, MachineSnapshotError, Membership, Message, PersistRequest, Raft,
    ReceivedSnapshot, Role, Setup, StateMachine,
};
use haven_runtime::{Instant, NodeId};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Nodes outside the bootstrap configuration, for membership changes.
const SPARES: u64 = 2;
/// Voters a membership change never goes below.
const VOTERS_MIN: usize = 3;
/// Messages in flight before new ones are dropped (a bounded network).
const IN_FLIGHT_MAX: usize = 2_000;
/// Messages due for delivery before the clock stops advancing, so that
/// delivery keeps up with sending and latency stays near `LATENCY_MAX`.
const DUE_BEFORE_CLOCK_STOPS_MAX: usize = 20;
/// One-way latency range; a message overtakes others sent up to this much earlier.
const LATENCY_MIN: Duration = Duration::from_millis(1);
const LATENCY_MAX: Duration = Duration::from_millis(10);
/// Rarely, a message is delayed much longer (to arrive from an old term).
const LATENCY_SLOW: Duration = Duration::from_millis(400);

#[derive(Debug, Clone)]
struct InFlight {
    at: Instant,
    from: NodeId,
    to: NodeId,
    msg: Message,
}

#[derive(Debug)]
struct Node {
    raft: Option<Raft>,
    disk: Disk,
    persists: VecDeque<PersistRequest>,
    /// This incarnation's state machine.
    machine: Machine,
}

/// What the whole run has learned, for checks that span nodes and time.
#[derive(Debug, Default)]
struct History {
    leaders: BTreeMap<u64, NodeId>,
    /// Each committed entry, with the lowest term of a node that reported it.
    committed: BTreeMap<u64, (Entry, u64)>,
    /// Reads asked for and not yet answered: the node asked and the highest
    /// commit index known anywhere at that moment.
    reads: BTreeMap<u64, (NodeId, u64)>,
    reads_asked: u64,
    reads_confirmed: u64,
    lease_reads: u64,
    transfers_started: u64,
    compactions: u64,
    membership_changes: u64,
    /// Those that went through a joint configuration.
    voter_changes: u64,
    snapshots_installed: u64,
}

#[derive(Debug)]
pub struct Cluster {
    seed: u64,
    step: u64,
    rng: ChaCha8Rng,
    now: Instant,
    /// Every node, members or not.
    ids: Vec<NodeId>,
    /// The bootstrap voters; the others start outside the configuration.
    initial: Vec<NodeId>,
    nodes: BTreeMap<NodeId, Node>,
    network: Vec<InFlight>,
    history: History,
    proposed: u64,
    /// A node cut off from all others until the given time.
    isolated: Option<(NodeId, Instant)>,
    /// A node that is stopped (no ticks, deliveries, disk or output) until
    /// the given time, then resumes with the clock jumped forward.
    paused: Option<(NodeId, Instant)>,
    /// A fresh leader to cut off or crash at the given time (see `set_trap`).
    trap: Option<(NodeId, Instant)>,
    /// The highest term whose leader `set_trap` has considered.
    trap_term: u64,
}

/// Even seeds also serve reads from leader leases.
fn config(seed: u64) -> haven_raft::Config {
    let lease_reads = seed.is_multiple_of(2);
    haven_raft::Config { uncommitted_entries_max: 32, entries_per_append_max: 1, lease_reads, ..super::config() }
}

impl Cluster {
    /// `size` bootstrap voters and `SPARES` nodes that can be added later.
    pub fn new(seed: u64, size: u64) -> Cluster {
        let ids: Vec<NodeId> = (1..=size + SPARES).map(NodeId).collect();
        let mut cluster = Cluster {
            seed,
            step: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: Instant::ZERO,
            ids: ids.clone(),
            initial: ids[..size as usize].to_vec(),
            nodes: BTreeMap::new(),
            network: Vec::new(),
            history: History::default(),
            proposed: 0,
            isolated: None,
            paused: None,
            trap: None,
            trap_term: 0,
        };
        for id in ids {
            let node =
                Node { raft: None, disk: Disk::default(), persists: VecDeque::new(), machine: Machine::default() };
            cluster.nodes.insert(id, node);
            cluster.start(id);
        }
        cluster
    }

    fn start(&mut self, id: NodeId) {
        let setup = Setup { id, voters: self.initial.clone(), config: config(self.seed) };
        let node = self.nodes.get_mut(&id).expect("known node");
        let rng = ChaCha8Rng::seed_from_u64(self.rng.random());
        let seed = self.seed;
        let raft = Raft::restore(setup, node.disk.durable(), rng, self.now)
            .unwrap_or_else(|e| panic!("seed {seed}: {id}'s disk does not hold what the core persisted: {e:?}"));
        node.raft = Some(raft);
        node.machine = match node.disk.snapshot.last.index {
            0 => Machine::default(),
            _ => Machine::from_snapshot(&node.disk.snapshot_data),
        };
    }

    /// Runs `steps` random steps with faults, checking after each.
    pub fn run_faulty(&mut self, steps: u64) {
        for _ in 0..steps {
            self.random_step(true);
            self.check();
        }
    }

    /// Heals everything and runs until a new command is applied on every
    /// node; returns the simulated time that took, or panics after `limit`.
    pub fn run_until_quiet_commit(&mut self, limit: Duration) -> Duration {
        let crashed: Vec<NodeId> = self.nodes.iter().filter(|(_, n)| n.raft.is_none()).map(|(&id, _)| id).collect();
        for id in crashed {
            self.start(id);
        }
        self.paused = None;
        self.trap = None;
        let start = self.now;
        let deadline = start + limit;
        let mut index = None;
        while self.now < deadline {
            self.random_step(false);
            self.check();
            if index.is_none() {
                index = self.propose();
            }
            if let Some(i) = index
                && self.applied_by_every_member(i)
            {
                return self.now.saturating_since(start);
            }
        }
        panic!("seed {}: no command applied everywhere within {limit:?} after healing\n{}", self.seed, self.describe());
    }

    /// Whether every member of a leader's configuration applied `index`.
    fn applied_by_every_member(&self, index: u64) -> bool {
        let Some((_, leader)) = self.live().find(|(_, r)| r.role() == Role::Leader) else { return false };
        let members = leader.membership().members();
        members.iter().all(|id| self.nodes[id].machine.apply_next > index)
    }

    fn random_step(&mut self, faults: bool) {
        self.step += 1;
        let roll = self.rng.random_range(0..100);
        match roll {
            0..45 => self.deliver(),
            45..63 => self.persist_one(),
            63..65 => self.compact(),
            65..85 => self.advance_clock(),
            88..89 if faults => self.change_membership(),
            85..89 => {
                self.propose();
            }
            89..90 if faults => self.transfer(),
            90..93 => self.read(),
            93..94 if faults => self.drop_or_duplicate(),
            94..95 if faults => self.change_membership(),
            95..96 if faults && self.seed % 2 == 1 => self.isolate(),
            95..96 if faults => self.pause(),
            96..98 if faults => self.crash(),
            98..100 if faults => self.restart(),
            _ => self.deliver(),
        }
        for id in self.ids.clone() {
            self.drain(id, faults);
        }
    }

    fn due(&self) -> Vec<usize> {
        (0..self.network.len())
            .filter(|&i| self.network[i].at <= self.now && !self.is_paused(self.network[i].to))
            .collect()
    }

    fn is_paused(&self, id: NodeId) -> bool {
        self.paused.is_some_and(|(paused, until)| paused == id && self.now < until)
    }

    /// Stops a node, a leader if there is one, for a few election
    /// timeouts: long enough for a new leader to commit, so that a resumed
    /// leader may act on stale beliefs (the case ReadIndex guards against).
    fn pause(&mut self) {
        if self.paused.is_some_and(|(_, until)| self.now < until) {
            return;
        }
        let leaders = self.running_leaders();
        let id = match leaders.first() {
            Some(&leader) => leader,
            None => self.ids[self.rng.random_range(0..self.ids.len())],
        };
        self.paused = Some((id, self.now + Duration::from_millis(self.rng.random_range(150..700))));
    }

    /// Delivers a random due message, so messages reorder within the latency window.
    fn deliver(&mut self) {
        let due = self.due();
        let Some(&i) = due.get(self.rng.random_range(0..due.len().max(1))) else {
            return self.advance_clock();
        };
        let InFlight { from, to, msg, .. } = self.network.swap_remove(i);
        if let Some(raft) = self.nodes.get_mut(&to).and_then(|n| n.raft.as_mut()) {
            raft.step(self.now, from, msg);
        }
    }

    fn drop_or_duplicate(&mut self) {
        if self.network.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.network.len());
        if self.rng.random_bool(0.7) {
            self.network.swap_remove(i);
        } else if self.network.len() < IN_FLIGHT_MAX {
            let mut copy = self.network[i].clone();
            copy.at = copy.at + Duration::from_millis(self.rng.random_range(0..50));
            self.network.push(copy);
        }
    }

    /// Cuts a random node off for a few election timeouts.
    fn isolate(&mut self) {
        let id = self.ids[self.rng.random_range(0..self.ids.len())];
        self.isolated = Some((id, self.now + Duration::from_millis(self.rng.random_range(50..800))));
    }

    fn cut(&self, from: NodeId, to: NodeId) -> bool {
        self.isolated.is_some_and(|(id, until)| self.now < until && (from == id || to == id))
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Message, faults: bool) {
        if self.network.len() >= IN_FLIGHT_MAX || (faults && self.cut(from, to)) {
            return;
        }
        let latency = if faults && self.rng.random_bool(0.01) {
            LATENCY_SLOW
        } else {
            Duration::from_nanos(self.rng.random_range(LATENCY_MIN.as_nanos() as u64..=LATENCY_MAX.as_nanos() as u64))
        };
        self.network.push(InFlight { at: self.now + latency, from, to, msg });
    }

    fn persist_one(&mut self) {
        let id = self.ids[self.rng.random_range(0..self.ids.len())];
        if self.is_paused(id) {
            return;
        }
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(raft) = node.raft.as_mut() else { return };
        let Some(persist) = node.persists.pop_front() else { return };
        node.disk.write(&persist);
        raft.on_persisted(self.now, persist.id).expect("persists complete in order");
    }

    fn advance_clock(&mut self) {
        if self.due().len() > DUE_BEFORE_CLOCK_STOPS_MAX {
            return self.deliver();
        }
        let before = self.now;
        self.now = self.now + Duration::from_millis(self.rng.random_range(1..=5));
        self.spring_trap();
        if let Some((id, until)) = self.paused
            && before < until
            && until <= self.now
        {
            self.on_resume(id);
        }
        let paused = self.paused.filter(|&(_, until)| self.now < until).map(|(id, _)| id);
        for (&id, node) in &mut self.nodes {
            if let Some(raft) = node.raft.as_mut()
                && raft.next_deadline() <= self.now
                && paused != Some(id)
            {
                raft.tick(self.now);
            }
        }
    }

    /// Proposes on a random leader; returns the index if one accepted.
    fn propose(&mut self) -> Option<u64> {
        let leaders = self.running_leaders();
        let id = *leaders.get(self.rng.random_range(0..leaders.len().max(1)))?;
        let command = format!("s{}-c{}", self.seed, self.proposed);
        let raft = self.nodes.get_mut(&id)?.raft.as_mut()?;
        let index = raft.propose(command.as_bytes()).ok()?;
        self.proposed += 1;
        Some(index)
    }

    /// Leaders that are not paused, which clients can reach.
    fn running_leaders(&self) -> Vec<NodeId> {
        let leaders = self.live().filter(|(id, r)| r.role() == Role::Leader && !self.is_paused(*id));
        leaders.map(|(id, _)| id).collect()
    }

    /// A random running node snapshots its state machine and compacts its log.
    fn compact(&mut self) {
        let id = self.ids[self.rng.random_range(0..self.ids.len())];
        if self.is_paused(id) {
            return;
        }
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(raft) = node.raft.as_mut() else { return };
        if node.machine.applied_index() <= node.disk.snapshot.last.index {
            return;
        }
        let (meta, data) = match raft.snapshot_machine(&node.machine) {
            Ok(snapshot) => snapshot,
            Err(MachineSnapshotError::Compact(CompactError::NotDurable { .. })) => return,
            Err(e) => panic!("seed {}: compacting at the applied index: {e}", self.seed),
        };
        node.disk.save_snapshot(meta, data, true);
        self.history.compactions += 1;
    }

    /// Installs a snapshot received from the leader, after checking that it
    /// is the state machine of the committed prefix it claims to cover.
    fn install(&mut self, id: NodeId, snapshot: ReceivedSnapshot) {
        let ReceivedSnapshot { meta, data, log_kept_after } = snapshot;
        let index = meta.last.index;
        let prefix: Vec<&Entry> = self.history.committed.range(1..=index).map(|(_, (e, _))| e).collect();
        assert_eq!(prefix.len() as u64, index, "seed {}: a snapshot covers uncommitted entries", self.seed);
        let node = self.nodes.get_mut(&id).expect("known node");
        node.machine.restore(&meta, &data).expect("infallible");
        let expected = Machine::of_prefix(prefix.into_iter());
        assert_eq!(node.machine, expected, "seed {}: snapshot content differs", self.seed);
        node.disk.save_snapshot(meta.clone(), data, log_kept_after);
        let raft = node.raft.as_mut().expect("a live node installs");
        raft.on_snapshot_installed(&meta).expect("installed after applying what was handed out");
        self.history.snapshots_installed += 1;
    }

    /// A paused node resumes: a client request that waited for it is the
    /// first thing it handles, before any message or tick tells it what
    /// happened meanwhile — the moment a stale leader is most dangerous.
    fn on_resume(&mut self, id: NodeId) {
        let leads = self.nodes[&id].raft.as_ref().is_some_and(|r| r.role() == Role::Leader);
        if leads {
            self.read_on(id);
        }
    }

    /// Asks a random leader for a random membership change: add or remove
    /// a learner, promote one, remove or demote a voter. Refusals (a change
    /// in progress, a learner not caught up) are part of the test.
    fn change_membership(&mut self) {
        let leaders = self.running_leaders();
        let Some(&id) = leaders.get(self.rng.random_range(0..leaders.len().max(1))) else { return };
        let node = self.ids[self.rng.random_range(0..self.ids.len())];
        let roll = self.rng.random_range(0..4);
        let raft = self.nodes.get_mut(&id).and_then(|n| n.raft.as_mut()).expect("a live leader");
        let current = raft.membership().clone();
        let (mut voters, mut learners) = (current.voters.clone(), current.learners.clone());
        let is_voter = voters.contains(&node);
        match roll {
            0 if !is_voter && !learners.contains(&node) => learners.push(node),
            1 if learners.contains(&node) => {
                learners.retain(|&l| l != node);
                voters.push(node);
            }
            2 if is_voter && voters.len() > VOTERS_MIN => voters.retain(|&v| v != node),
            3 if is_voter && voters.len() > VOTERS_MIN => {
                voters.retain(|&v| v != node);
                learners.push(node);
            }
            _ => learners.retain(|&l| l != node),
        }
        let voters_change = voters != current.voters;
        if raft.propose_membership(voters, learners).is_ok() {
            self.history.membership_changes += 1;
            self.history.voter_changes += u64::from(voters_change);
        }
    }

    /// Asks a random leader to hand leadership to a random other voter.
    /// Rare: a transfer holds proposals back for up to an election timeout.
    fn transfer(&mut self) {
        if !self.rng.random_bool(0.2) {
            return;
        }
        let leaders = self.running_leaders();
        let Some(&id) = leaders.get(self.rng.random_range(0..leaders.len().max(1))) else { return };
        let target = self.ids[self.rng.random_range(0..self.ids.len())];
        let raft = self.nodes.get_mut(&id).and_then(|n| n.raft.as_mut()).expect("a live leader");
        if raft.transfer_leader(target).is_ok() {
            self.history.transfers_started += 1;
        }
    }

    /// Asks a random leader for a ReadIndex read.
    fn read(&mut self) {
        let leaders = self.running_leaders();
        let Some(&id) = leaders.get(self.rng.random_range(0..leaders.len().max(1))) else { return };
        self.read_on(id);
    }

    /// Asks `id`, a live node that believes it leads, for a read: from its
    /// lease if it holds one, else by ReadIndex.
    fn read_on(&mut self, id: NodeId) {
        let known = self.live().map(|(_, r)| r.commit_index()).max().unwrap_or(0);
        let floor = known.max(self.history.committed.keys().next_back().copied().unwrap_or(0));
        let ctx = self.history.reads_asked;
        let raft = self.nodes.get_mut(&id).and_then(|n| n.raft.as_mut()).expect("a live leader");
        if let Ok(index) = raft.lease_read(self.now) {
            let seed = self.seed;
            assert!(index >= floor, "seed {seed}: lease read at {index} below the known commit {floor}");
            self.history.lease_reads += 1;
            return;
        }
        if raft.read_index(ctx).is_ok() {
            self.history.reads_asked += 1;
            self.history.reads.insert(ctx, (id, floor));
        }
    }

    fn crash(&mut self) {
        let id = self.ids[self.rng.random_range(0..self.ids.len())];
        self.crash_node(id);
    }

    /// On one seed in four, half of the leaders fail within a few
    /// milliseconds of their election: the window in which it has sent its first appends but its
    /// no-op is not yet on a majority. Chains of such failures are what
    /// Figure 8 (§5.4.2) needs — an entry of an old term replicated to a
    /// majority by a later leader, then overwritten by a leader of a term
    /// in between — and plain random faults almost never make them.
    fn set_trap(&mut self, id: NodeId, term: u64) {
        if term <= self.trap_term {
            return;
        }
        self.trap_term = term;
        if self.seed % 4 == 1 && self.rng.random_bool(0.5) {
            self.trap = Some((id, self.now + Duration::from_millis(self.rng.random_range(0..=15))));
        }
    }

    /// Cuts the trapped leader off for a while or crashes it.
    fn spring_trap(&mut self) {
        let Some((id, _)) = self.trap.filter(|&(_, at)| at <= self.now) else { return };
        self.trap = None;
        if self.rng.random_bool(0.5) {
            self.isolated = Some((id, self.now + Duration::from_millis(self.rng.random_range(50..800))));
        } else {
            self.crash_node(id);
        }
    }

    fn crash_node(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        if node.raft.take().is_none() {
            return;
        }
        self.history.reads.retain(|_, (asked, _)| *asked != id);
        if let Some(persist) = node.persists.front() {
            node.disk.write_torn(persist, &mut self.rng);
        }
        node.persists.clear();
    }

    fn restart(&mut self) {
        let crashed: Vec<NodeId> = self.nodes.iter().filter(|(_, n)| n.raft.is_none()).map(|(&id, _)| id).collect();
        if let Some(&id) = crashed.get(self.rng.random_range(0..crashed.len().max(1))) {
            self.start(id);
        }
    }

    /// Carries out everything node `id` asks for, except that persists are
    /// queued (they complete in `persist_one`).
    fn drain(&mut self, id: NodeId, faults: bool) {
        if self.is_paused(id) {
            return;
        }
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(raft) = node.raft.as_mut() else { return };
        let ready = raft.take_ready();
        node.persists.extend(ready.persist);
        raft.apply_to(&mut node.machine, &ready.committed).expect("applied what was handed out");
        let term = raft.term();
        if ready.snapshot_needed {
            let data = Bytes::copy_from_slice(&node.disk.snapshot_data);
            raft.provide_snapshot(node.disk.snapshot.clone(), data).expect("the disk's snapshot is usable");
        }
        let commit = raft.commit_index();
        let leader_term = (raft.role() == Role::Leader).then(|| raft.term());
        for entry in ready.committed {
            self.record_committed(id, term, entry);
        }
        if let Some(snapshot) = ready.snapshot {
            self.install(id, snapshot);
        }
        for ctx in ready.reads_failed {
            self.history.reads.remove(&ctx).expect("a read fails once, on the node asked");
        }
        for read in ready.read_states {
            let (asked, floor) = self.history.reads.remove(&read.ctx).expect("a read is confirmed once");
            let seed = self.seed;
            assert_eq!(asked, id, "seed {seed}: read {} confirmed by another node", read.ctx);
            assert!(read.index >= floor, "seed {seed}: read index {} below the known commit {floor}", read.index);
            assert!(read.index <= commit, "seed {seed}: read index beyond the reader's commit");
            self.history.reads_confirmed += 1;
        }
        if let Some(term) = leader_term.filter(|_| faults) {
            self.set_trap(id, term);
        }
        for Envelope { to, msg } in ready.messages {
            self.send(id, to, msg, faults);
        }
    }

    fn record_committed(&mut self, id: NodeId, term: u64, entry: Entry) {
        let seed = self.seed;
        let (known, seen_at) = self.history.committed.entry(entry.index).or_insert_with(|| (entry.clone(), term));
        assert_eq!(*known, entry, "seed {seed}: {id} applied a different entry at index {}", entry.index);
        *seen_at = (*seen_at).min(term);
    }

    fn live(&self) -> impl Iterator<Item = (NodeId, &Raft)> {
        self.nodes.iter().filter_map(|(&id, n)| n.raft.as_ref().map(|r| (id, r)))
    }

    fn check(&mut self) {
        let context = format!("seed {} step {}", self.seed, self.step);
        self.check_one_leader_per_term(&context);
        self.check_log_matching(&context);
        self.check_leader_completeness(&context);
        self.check_committed_on_majority_disks(&context);
        for (id, raft) in self.live() {
            assert_eq!(raft.counters().protocol_violations, 0, "{context}: {id} saw a protocol violation");
        }
    }

    fn check_one_leader_per_term(&mut self, context: &str) {
        let leaders: Vec<(u64, NodeId)> =
            self.live().filter(|(_, r)| r.role() == Role::Leader).map(|(id, r)| (r.term(), id)).collect();
        for (term, id) in leaders {
            let first = *self.history.leaders.entry(term).or_insert(id);
            assert_eq!(first, id, "{context}: two leaders in term {term}");
        }
    }

    fn check_log_matching(&self, context: &str) {
        let live: Vec<(NodeId, &Raft)> = self.live().collect();
        for (i, &(a, ra)) in live.iter().enumerate() {
            for &(b, rb) in &live[i + 1..] {
                let mut diverged = false;
                // Compacted entries were applied, which the applied-entry check covers.
                let first = ra.first_index().max(rb.first_index());
                for index in first..=ra.last_log().index.min(rb.last_log().index) {
                    let (ea, eb) = (ra.entry(index).expect("in log"), rb.entry(index).expect("in log"));
                    if ea.term != eb.term {
                        diverged = true;
                        continue;
                    }
                    assert!(!diverged && ea == eb, "{context}: logs of {a} and {b} break log matching at {index}");
                }
            }
        }
    }

    fn check_leader_completeness(&self, context: &str) {
        for (id, raft) in self.live().filter(|(_, r)| r.role() == Role::Leader) {
            for (entry, seen_at) in self.history.committed.values() {
                if *seen_at < raft.term() && entry.index >= raft.first_index() {
                    let held = raft.entry(entry.index);
                    assert_eq!(
                        held,
                        Some(entry),
                        "{context}: leader {id} of term {} lacks a committed entry",
                        raft.term()
                    );
                }
            }
        }
    }

    /// Every committed entry is on the disks of a majority of the voters
    /// of the latest committed configuration (of its incoming half, if
    /// joint): those acknowledged its entry, which follows every entry
    /// committed before it, and every entry committed after it needs them.
    fn check_committed_on_majority_disks(&self, context: &str) {
        let voters = self.latest_committed_voters();
        let majority = voters.len() / 2 + 1;
        for (entry, _) in self.history.committed.values() {
            let copies = voters.iter().filter(|id| self.nodes[*id].disk.holds(entry)).count();
            assert!(copies >= majority, "{context}: committed {entry:?} is on {copies} of {voters:?} only");
        }
    }

    fn latest_committed_voters(&self) -> Vec<NodeId> {
        let configs = self.history.committed.values().rev().filter_map(|(e, _)| match e.kind() {
            Ok(EntryKind::Config(body)) => Some(Membership::from_bytes(body).expect("valid").voters),
            _ => None,
        });
        configs.into_iter().next().unwrap_or_else(|| self.initial.clone())
    }

    /// One line per node, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = format!("at {} with {} messages in flight\n", self.now, self.network.len());
        for (id, node) in &self.nodes {
            let Some(r) = node.raft.as_ref() else {
                out += &format!("{id}: crashed\n");
                continue;
            };
            out += &format!(
                "{id}: {:?} term {} leader {:?} commit {} last {:?} applied-next {} persists {} deadline {} {:?}\n",
                r.role(),
                r.term(),
                r.leader(),
                r.commit_index(),
                r.last_log(),
                node.machine.apply_next,
                node.persists.len(),
                r.next_deadline(),
                r.counters()
            );
        }
        out
    }

    pub fn committed_len(&self) -> usize {
        self.history.committed.len()
    }

    /// All accepted membership changes, and those that changed the voters.
    pub fn membership_changes(&self) -> (u64, u64) {
        (self.history.membership_changes, self.history.voter_changes)
    }

    pub fn snapshots_installed(&self) -> u64 {
        self.history.snapshots_installed
    }

    pub fn transfers_started(&self) -> u64 {
        self.history.transfers_started
    }

    /// Reads confirmed by ReadIndex, and served from a lease.
    pub fn reads_confirmed(&self) -> (u64, u64) {
        (self.history.reads_confirmed, self.history.lease_reads)
    }

    pub fn terms_with_leaders(&self) -> usize {
        self.history.leaders.len()
    }
}
