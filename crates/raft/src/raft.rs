//! The Raft node: the public face of the core.
//!
//! In: the caller's clock readings, messages from peers, proposals, and
//! reports that persist requests are durable and entries applied.
//! Out: [`Ready`] batches (see `ready.rs` for the caller's loop), the next
//! deadline at which `tick` must be called, and read-only status.
//!
//! This file holds the state, construction and restore, the public entry
//! points, term handling and role changes. Elections are in `election.rs`,
//! the leader's side of replication in `replication.rs`, the follower's in
//! `follower.rs`.

use crate::config::Config;
use crate::entry::{Entry, EntryKind, LogPosition};
use crate::error::{ProposeError, RestoreError, UsageError};
use crate::gate::DurabilityGate;
use crate::leadership::Leadership;
use crate::log::RaftLog;
use crate::membership::Membership;
use crate::message::{AppendOutcome, Message, TERM_MAX};
use crate::reads::{ReadQueue, ReadState};
use crate::ready::{PersistRequest, Ready, ReceivedSnapshot, Role, SoftState};
use crate::snapshot_inbox::SnapshotInbox;
use crate::snapshot_install::{Chunk, Installing};
use crate::snapshots::{CachedSnapshot, SnapshotRequest};
use crate::state::{DurableState, HardState};
use crate::votes::Tally;
use haven_runtime::{Instant, NodeId};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// Who this node is and how it is tuned: the part of its setup that is not
/// recovered from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    pub id: NodeId,
    /// The bootstrap configuration's voters, used until the log or a
    /// snapshot says otherwise. A node joining a running cluster passes
    /// that cluster's voters (without itself): it never campaigns, and
    /// learns its membership from the leader once added as a learner.
    pub voters: Vec<NodeId>,
    pub config: Config,
}

/// Inputs the core refused or had to discard, for metrics and for tests
/// (a correct cluster keeps `protocol_violations` at zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Malformed, from a non-member, or claiming more than we sent.
    pub messages_invalid: u64,
    /// Outgoing messages dropped because the queue was full.
    pub messages_dropped: u64,
    /// Vote requests ignored because a leader was heard from recently.
    pub votes_ignored_in_lease: u64,
    /// Appends or heartbeats from a second leader in our term: only
    /// misconfiguration (two nodes with one id) or a bug can cause them.
    pub protocol_violations: u64,
    /// Gaps of `stall_gap_min` or more between calls: our own stalls,
    /// forgiven to the peers (see `Config::stall_gap_min`).
    pub stalls_forgiven: u64,
}

#[derive(Debug)]
pub(crate) enum RoleState {
    Follower,
    PreCandidate(Tally),
    Candidate(Tally),
    Leader(Box<Leadership>),
}

#[derive(Debug)]
pub struct Raft {
    pub(crate) id: NodeId,
    pub(crate) config: Config,
    rng: ChaCha8Rng,
    /// The latest clock reading the caller gave; never goes back.
    pub(crate) now: Instant,
    pub(crate) term: u64,
    pub(crate) vote: Option<NodeId>,
    pub(crate) leader: Option<NodeId>,
    /// When the current leader was last heard from (None without a leader).
    leader_contact: Option<Instant>,
    /// When any leader was last heard from, kept across term changes; and
    /// until when votes are withheld after a restart. Both only matter
    /// with `lease_reads` (a leader's lease relies on them).
    lease_contact: Option<Instant>,
    votes_withheld_until: Instant,
    pub(crate) role: RoleState,
    pub(crate) log: RaftLog,
    pub(crate) commit: u64,
    /// Next committed index to hand out for applying.
    pub(crate) apply_next: u64,
    pub(crate) applied: u64,
    pub(crate) election_deadline: Instant,
    /// When a stall of ours was last forgiven (`Config::stall_gap_min`).
    stall_forgiven_at: Option<Instant>,
    pub(crate) gate: DurabilityGate,
    reported: Option<SoftState>,
    pub(crate) counters: Counters,
    pub(crate) reads: ReadQueue,
    /// Confirmed reads and failed read contexts for the next `Ready`.
    pub(crate) read_states: Vec<ReadState>,
    pub(crate) reads_failed: Vec<u64>,
    /// The latest snapshot the caller supplied, for lagging followers.
    pub(crate) snapshot_cache: Option<CachedSnapshot>,
    pub(crate) snapshot_request: SnapshotRequest,
    pub(crate) inbox: SnapshotInbox,
    /// Complete, not yet handed to the caller.
    pub(crate) received_snapshot: Option<ReceivedSnapshot>,
    /// Received (and maybe handed out), not yet installed; with its sender.
    pub(crate) installing: Option<Installing>,
}

impl Raft {
    /// A node that has never run: empty log, term 0.
    pub fn new(setup: Setup, rng: ChaCha8Rng, now: Instant) -> Result<Raft, RestoreError> {
        Raft::restore(setup, DurableState::default(), rng, now)
    }

    /// A node restarting from what its WAL recovered. It starts as a
    /// follower; its commit index is the snapshot's until a leader says more.
    pub fn restore(setup: Setup, durable: DurableState, rng: ChaCha8Rng, now: Instant) -> Result<Raft, RestoreError> {
        setup.config.validate()?;
        let bootstrap = validated_voters(&setup)?;
        validate_log(&durable)?;
        let DurableState { hard_state, snapshot, entries } = durable;
        let base = if snapshot.membership == Membership::default() { bootstrap } else { snapshot.membership };
        let hard_state = reconcile_term(hard_state, entries.last().map_or(snapshot.last.term, |e| e.term));
        let log_last = entries.last().map_or(snapshot.last.index, |e| e.index);
        let gate = DurabilityGate::new(setup.id, hard_state, log_last, setup.config.messages_queued_max);
        let mut raft = Raft {
            id: setup.id,
            config: setup.config,
            rng,
            now,
            term: hard_state.term,
            vote: hard_state.vote,
            leader: None,
            leader_contact: None,
            lease_contact: None,
            votes_withheld_until: now,
            role: RoleState::Follower,
            log: RaftLog::new(snapshot.last, entries, base),
            commit: snapshot.last.index,
            apply_next: snapshot.last.index + 1,
            applied: snapshot.last.index,
            election_deadline: now,
            stall_forgiven_at: None,
            gate,
            reported: None,
            counters: Counters::default(),
            reads: ReadQueue::default(),
            read_states: Vec::new(),
            reads_failed: Vec::new(),
            snapshot_cache: None,
            snapshot_request: SnapshotRequest::None,
            inbox: SnapshotInbox::default(),
            received_snapshot: None,
            installing: None,
        };
        raft.reset_election_deadline();
        if raft.config.lease_reads {
            // We may have acknowledged a lease before the restart, and forgot when.
            raft.votes_withheld_until = now + raft.config.election_timeout_min;
        }
        raft.reported = Some(raft.soft_state());
        Ok(raft)
    }

    /// A message from peer `from`. Anything a peer can send is handled
    /// without panicking; what is malformed (including a term above
    /// [`TERM_MAX`]) is counted and dropped. Senders outside our
    /// configuration are heard (a leader may be in a configuration we have
    /// not received yet); only voters of ours count in any quorum.
    pub fn step(&mut self, now: Instant, from: NodeId, msg: Message) {
        self.advance_clock(now);
        if from == self.id || msg.term() > TERM_MAX {
            self.counters.messages_invalid += 1;
            return;
        }
        self.handle(from, msg);
    }

    /// Lets time pass; call it at [`Raft::next_deadline`] (earlier is harmless).
    pub fn tick(&mut self, now: Instant) {
        self.advance_clock(now);
        if matches!(self.role, RoleState::Leader(_)) {
            self.tick_leader();
        } else if self.now >= self.election_deadline {
            if self.is_voter(self.id) {
                self.start_pre_vote();
            } else {
                // Learners and removed nodes never run (§4.2.1, §4.2.3).
                self.reset_election_deadline();
            }
        }
    }

    /// When `tick` must be called next.
    pub fn next_deadline(&self) -> Instant {
        let deadline = match &self.role {
            RoleState::Leader(l) => {
                let next = l.heartbeat_deadline.min(l.quorum_check_deadline);
                l.transfer.map_or(next, |t| next.min(t.deadline))
            }
            _ => self.election_deadline,
        };
        // Called at least this often, a gap of `stall_gap_min` can only be a stall.
        self.config.stall_gap_min.map_or(deadline, |gap| deadline.min(self.now + gap / 2))
    }

    /// Appends a client command to the leader's log; returns its index. The
    /// command is committed once an entry at that index with this term
    /// comes out of `Ready::committed`.
    pub fn propose(&mut self, command: &[u8]) -> Result<u64, ProposeError> {
        if !matches!(self.role, RoleState::Leader(_)) {
            return Err(ProposeError::NotLeader { leader_hint: self.leader });
        }
        self.check_no_transfer()?;
        if command.len() > self.config.command_bytes_max {
            return Err(ProposeError::TooLarge { bytes: command.len(), bytes_max: self.config.command_bytes_max });
        }
        let uncommitted = self.log.last_index() - self.commit;
        if uncommitted >= self.config.uncommitted_entries_max {
            return Err(ProposeError::Backpressure {
                uncommitted,
                uncommitted_max: self.config.uncommitted_entries_max,
            });
        }
        Ok(self.append_own(EntryKind::Command(command)))
    }

    /// Everything the caller must do now; see `ready.rs` for the protocol.
    pub fn take_ready(&mut self) -> Ready {
        if let RoleState::Leader(leadership) = &self.role {
            if leadership.read_round_wanted {
                self.broadcast_heartbeats();
            }
            self.replicate_all();
            self.confirm_reads();
        }
        let persist = self.issue_persist();
        let messages = self.gate.take_ready();
        Ready {
            persist,
            messages,
            committed: self.committed_batch(),
            soft_state: self.soft_state_change(),
            read_states: std::mem::take(&mut self.read_states),
            reads_failed: std::mem::take(&mut self.reads_failed),
            snapshot_needed: self.take_snapshot_request(),
            snapshot: self.take_received_snapshot(),
        }
    }

    /// A received snapshot goes out only once every persist issued before
    /// it is durable: the log is frozen while installing, so the disk then
    /// holds exactly the log `log_kept_after` was decided on. Handed out
    /// earlier, a crash could leave a kept suffix on disk that a pending
    /// truncation was about to replace — entries of an older term after
    /// the snapshot's (found by the cluster harness, seed 23174).
    fn take_received_snapshot(&mut self) -> Option<ReceivedSnapshot> {
        if self.gate.persists_pending() > 0 {
            return None;
        }
        self.received_snapshot.take()
    }

    /// Persist request `id` (and so every earlier one) is durable.
    pub fn on_persisted(&mut self, now: Instant, id: crate::PersistId) -> Result<(), UsageError> {
        self.advance_clock(now);
        for msg in self.gate.durable(id)? {
            self.handle(self.id, msg);
        }
        Ok(())
    }

    /// Every entry up to `index` handed out in `Ready::committed` is applied.
    pub fn applied(&mut self, index: u64) -> Result<(), UsageError> {
        let handed_out = self.apply_next - 1;
        if index < self.applied || index > handed_out {
            return Err(UsageError::Applied { index, applied: self.applied, handed_out });
        }
        self.applied = index;
        Ok(())
    }

    fn handle(&mut self, from: NodeId, msg: Message) {
        match msg {
            Message::PreVote { term, last_log } => self.on_pre_vote(from, term, last_log),
            Message::PreVoteResponse { term, granted } => self.on_pre_vote_response(from, term, granted),
            Message::Vote { term, last_log, transfer } => {
                // With leases, a term change does not end the promise not to vote.
                let promised = term > self.term || self.config.lease_reads;
                if promised && self.in_lease() && !transfer {
                    self.counters.votes_ignored_in_lease += 1;
                } else if self.accept_term(from, term, false) {
                    self.on_vote(from, last_log);
                }
            }
            Message::VoteResponse { term, granted } => {
                if self.accept_term(from, term, false) {
                    self.on_vote_response(from, granted);
                }
            }
            Message::Append { term, prev, entries, commit } => {
                if self.accept_term(from, term, true) {
                    self.on_append(from, prev, entries, commit);
                }
            }
            Message::AppendResponse { term, outcome } => {
                if self.accept_term(from, term, false) {
                    self.on_append_response(from, outcome);
                }
            }
            Message::Heartbeat { term, commit, round } => {
                if self.accept_term(from, term, true) {
                    self.on_heartbeat(from, commit, round);
                }
            }
            Message::HeartbeatResponse { term, round } => {
                if self.accept_term(from, term, false) {
                    self.on_heartbeat_response(from, round);
                }
            }
            Message::InstallSnapshot { term, meta, offset, total_bytes, data } => {
                if self.accept_term(from, term, true) {
                    self.on_install_snapshot(from, Chunk { meta, offset, total_bytes, data });
                }
            }
            Message::InstallSnapshotResponse { term, last, received_bytes } => {
                if self.accept_term(from, term, false) {
                    self.on_install_snapshot_response(from, last, received_bytes);
                }
            }
            Message::TimeoutNow { term } => {
                if self.accept_term(from, term, true) {
                    self.on_timeout_now(from);
                }
            }
        }
    }

    /// §5.1: a higher term makes us a follower of it; a lower one is stale
    /// and ignored, except that a stale leader is told the newer term.
    /// Returns whether the message belongs to our (possibly new) term.
    fn accept_term(&mut self, from: NodeId, term: u64, from_leader: bool) -> bool {
        match term.cmp(&self.term) {
            std::cmp::Ordering::Greater => {
                self.become_follower(term, from_leader.then_some(from));
                true
            }
            std::cmp::Ordering::Less => {
                if from_leader {
                    self.gate.send(from, Message::HeartbeatResponse { term: self.term, round: 0 });
                }
                false
            }
            std::cmp::Ordering::Equal => true,
        }
    }

    pub(crate) fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        assert!(term >= self.term, "term must never decrease: {} -> {term}", self.term);
        if matches!(self.role, RoleState::Leader(_)) {
            self.fail_reads();
        }
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.gate.note_hard_state();
        }
        self.role = RoleState::Follower;
        self.set_leader(leader);
        self.reset_election_deadline();
    }

    pub(crate) fn become_leader(&mut self) {
        // §10.2.1 lets a leader send before its log is durable, never before its term is.
        assert_eq!(self.gate.durable_hard_state(), self.hard_state(), "leader's term and vote must be durable");
        let next_index = self.log.last_index() + 1;
        let heartbeat = self.now + self.config.heartbeat_interval;
        let check = self.now + self.config.election_timeout_min;
        let leadership = Leadership::new(self.id, &self.log.membership().members(), next_index, heartbeat, check);
        self.role = RoleState::Leader(Box::new(leadership));
        self.set_leader(Some(self.id));
        // §5.4.2: entries of earlier terms commit only under one of ours.
        self.append_own(EntryKind::Noop);
    }

    pub(crate) fn set_leader(&mut self, leader: Option<NodeId>) {
        self.leader = leader;
        self.leader_contact = leader.map(|_| self.now);
        if leader.is_some() {
            self.lease_contact = self.leader_contact;
        }
    }

    pub(crate) fn reset_election_deadline(&mut self) {
        let timeout = self.rng.random_range(self.config.election_timeout_min..self.config.election_timeout_max);
        self.election_deadline = self.now + timeout;
    }

    /// True while a leader is presumed alive: then no vote may unseat it
    /// (§4.2.3), which together with check-quorum keeps a partitioned node
    /// from disrupting a healthy leader.
    pub(crate) fn in_lease(&self) -> bool {
        let recent =
            |contact: Option<Instant>| contact.is_some_and(|at| self.now < at + self.config.election_timeout_min);
        let lease_promise =
            self.config.lease_reads && (recent(self.lease_contact) || self.now < self.votes_withheld_until);
        matches!(self.role, RoleState::Leader(_)) || recent(self.leader_contact) || lease_promise
    }

    pub(crate) fn is_voter(&self, id: NodeId) -> bool {
        self.log.membership().is_voter(id)
    }

    /// Everyone the leader replicates to.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        self.log.membership().members().into_iter().filter(|&v| v != self.id).collect()
    }

    /// Everyone whose vote counts, for (pre-)vote requests.
    pub(crate) fn voting_peers(&self) -> Vec<NodeId> {
        self.log.membership().all_voters().into_iter().filter(|&v| v != self.id).collect()
    }

    pub(crate) fn append_own(&mut self, kind: EntryKind<'_>) -> u64 {
        let index = self.log.last_index() + 1;
        let is_config = matches!(kind, EntryKind::Config(_));
        self.log.append(Entry::new(index, self.term, kind));
        self.gate.note_entries_from(index);
        if is_config {
            self.sync_progress();
        }
        index
    }

    pub(crate) fn advance_clock(&mut self, now: Instant) {
        let gap = now.saturating_since(self.now);
        self.now = self.now.max(now);
        if self.config.stall_gap_min.is_some_and(|min| gap >= min) {
            self.forgive_stall();
        }
    }

    /// We were not running, so the silence we saw is ours, not our peers':
    /// the time we missed does not count against them. A follower's
    /// election timer and a leader's check-quorum window start again from
    /// now (the peers were likely stalled with us, and their messages are
    /// on the way). Once per `election_timeout_max` at most, so a node too
    /// busy to run often still campaigns, one timeout late.
    fn forgive_stall(&mut self) {
        let forgiven_lately = self.stall_forgiven_at.is_some_and(|at| self.now < at + self.config.election_timeout_max);
        if forgiven_lately {
            return;
        }
        self.stall_forgiven_at = Some(self.now);
        self.counters.stalls_forgiven += 1;
        let check = self.now + self.config.election_timeout_min;
        match &mut self.role {
            RoleState::Leader(l) => {
                l.reset_activity();
                l.quorum_check_deadline = check;
            }
            _ => self.reset_election_deadline(),
        }
    }

    fn issue_persist(&mut self) -> Option<PersistRequest> {
        let unstable = self.gate.unstable()?;
        let hard_state = unstable.hard_state.then(|| self.hard_state());
        let last = self.log.last_index();
        let entries = unstable.entries_from.map_or_else(Vec::new, |from| {
            assert!(from <= last, "a truncation is always followed by an append");
            self.log.slice(from, last).to_vec()
        });
        let written = entries.first().zip(entries.last()).map(|(first, last)| (first.index, last.index));
        let id = self.gate.issue(hard_state, written);
        if matches!(self.role, RoleState::Leader(_)) && !entries.is_empty() {
            // The leader's own vote toward commit, released once this persist is durable.
            let outcome = AppendOutcome::Accepted { match_index: last };
            self.gate.send(self.id, Message::AppendResponse { term: self.term, outcome });
        }
        Some(PersistRequest { id, hard_state, entries })
    }

    fn committed_batch(&mut self) -> Vec<Entry> {
        if self.installing.is_some() {
            return Vec::new();
        }
        let handed_out = self.apply_next - 1;
        let outstanding = handed_out - self.applied;
        let room = self.config.apply_batch_entries_max.saturating_sub(outstanding);
        let hi = self.commit.min(handed_out + room);
        if hi < self.apply_next {
            return Vec::new();
        }
        let batch = self.log.slice(self.apply_next, hi).to_vec();
        self.apply_next = hi + 1;
        batch
    }

    pub fn soft_state(&self) -> SoftState {
        SoftState { role: self.role(), term: self.term, leader: self.leader }
    }

    /// The soft state if it changed since the last `Ready` (or since restore).
    fn soft_state_change(&mut self) -> Option<SoftState> {
        let now = self.soft_state();
        if self.reported == Some(now) {
            return None;
        }
        self.reported = Some(now);
        Some(now)
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The voters of the configuration in force (the incoming half if joint).
    pub fn voters(&self) -> &[NodeId] {
        &self.log.membership().voters
    }

    /// The configuration in force: the latest in the log, committed or not.
    pub fn membership(&self) -> &Membership {
        self.log.membership()
    }

    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate(_) => Role::PreCandidate,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    pub fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote }
    }

    /// The hard state a crash now would leave on disk, as far as the caller reported.
    pub fn durable_hard_state(&self) -> HardState {
        self.gate.durable_hard_state()
    }

    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    pub fn last_log(&self) -> LogPosition {
        self.log.last()
    }

    pub fn first_index(&self) -> u64 {
        self.log.first_index()
    }

    /// The entry at `index` in this node's (possibly not yet durable) log.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        self.log.entry(index)
    }

    /// Persist requests issued and not yet reported durable.
    pub fn persists_pending(&self) -> u64 {
        self.gate.persists_pending()
    }

    pub fn counters(&self) -> Counters {
        Counters { messages_dropped: self.gate.dropped(), ..self.counters }
    }
}

/// The bootstrap configuration: non-empty, no duplicates, at most `MEMBERS_MAX`.
fn validated_voters(setup: &Setup) -> Result<Membership, RestoreError> {
    let membership = Membership::new(setup.voters.clone(), Vec::new());
    if membership.validate().is_err() {
        return Err(RestoreError::Voters { voters: setup.voters.clone() });
    }
    Ok(membership)
}

/// Recovered state is input from disk: check everything `RaftLog` assumes.
fn validate_log(durable: &DurableState) -> Result<(), RestoreError> {
    durable.snapshot.validate()?;
    let term = durable.hard_state.term.max(durable.snapshot.last.term);
    if term > TERM_MAX {
        return Err(RestoreError::TermTooLarge { term, term_max: TERM_MAX });
    }
    let mut previous = durable.snapshot.last;
    for (position, entry) in durable.entries.iter().enumerate() {
        let expected = previous.index + 1;
        if entry.index != expected {
            return Err(RestoreError::Gap { position, expected, found: entry.index });
        }
        if entry.term > TERM_MAX {
            return Err(RestoreError::TermTooLarge { term: entry.term, term_max: TERM_MAX });
        }
        if entry.term < previous.term {
            return Err(RestoreError::TermRegression { index: entry.index, term: entry.term, previous: previous.term });
        }
        entry.kind().map_err(|error| RestoreError::Payload { index: entry.index, error })?;
        previous = entry.position();
    }
    Ok(())
}

/// A crash between writing entries and writing the hard state of the same
/// persist request can leave entries of a term the hard state does not
/// know yet. That request was never reported durable, so no vote or ack of
/// that term left this node: adopting the term without a vote is safe.
fn reconcile_term(hard_state: HardState, last_log_term: u64) -> HardState {
    if last_log_term > hard_state.term {
        return HardState { term: last_log_term, vote: None };
    }
    hard_state
}
