//! Raft's safety properties, checked after every simulated event.
//!
//! In: the replicas' role and applied-entry events, and (for log matching
//! and leader completeness) their in-memory logs.
//! Out: the first violation, naming nodes, terms and indexes.
//!
//! - Election safety (§5.2): at most one leader per term, over the whole run.
//! - State machine safety (§5.4.3): no two replicas apply different entries
//!   at the same index; with the WAL under every crash the simulator makes,
//!   this is also "nothing committed is lost while a majority's disks are
//!   intact" — a lost committed entry would be replaced and applied anew.
//! - Leader completeness (§5.4): a leader of term T holds every entry
//!   committed in a term below T. An entry's commit term is at most the
//!   current term of the first replica that applied it, so entries first
//!   applied in a term below T are required; later ones may have been
//!   committed in T or after (a leader can report its win late, e.g. after
//!   a pause), and are not.
//! - Log matching (§5.3): two logs that agree on an entry's term agree on
//!   the whole prefix; checked every `LOG_MATCHING_EVERY` events (it walks
//!   whole logs).

use super::node::{KvNode, KvOut, StationReplica};
use haven_raft::{Raft, Role};
use haven_runtime::NodeId;
use haven_sim::Sim;
use haven_station::ReplicaEvent;
use std::collections::BTreeMap;

const LOG_MATCHING_EVERY: u64 = 256;

#[derive(Debug, Default)]
pub struct RaftInvariants {
    leaders: BTreeMap<u64, NodeId>,
    applied: BTreeMap<u64, AppliedEntry>,
    events: u64,
}

/// The first application of an index anywhere.
#[derive(Clone, Copy, Debug)]
struct AppliedEntry {
    term: u64,
    digest: u32,
    by: NodeId,
    /// The applier's current term then: an upper bound on the commit term.
    commit_term_max: u64,
}

fn raft<R: StationReplica>(sim: &Sim<KvNode<R>>, node: NodeId) -> Option<&Raft> {
    StationReplica::raft(sim.component(node)?.replica()?)
}

impl RaftInvariants {
    pub fn check<R: StationReplica>(&mut self, sim: &Sim<KvNode<R>>) -> Result<(), String> {
        for (node, out) in sim.last_outputs() {
            match out {
                KvOut::Replica(ReplicaEvent::Role { role: Role::Leader, term, .. }) => {
                    self.new_leader(sim, *node, *term)?
                }
                KvOut::Replica(ReplicaEvent::Applied { index, term, current_term, digest }) => {
                    let first =
                        AppliedEntry { term: *term, digest: *digest, by: *node, commit_term_max: *current_term };
                    self.applied(*index, first)?
                }
                _ => {}
            }
        }
        self.events += 1;
        if self.events.is_multiple_of(LOG_MATCHING_EVERY) {
            log_matching(sim)?;
        }
        Ok(())
    }

    fn new_leader<R: StationReplica>(&mut self, sim: &Sim<KvNode<R>>, node: NodeId, term: u64) -> Result<(), String> {
        if let Some(&other) = self.leaders.get(&term)
            && other != node
        {
            return Err(format!("two leaders in term {term}: {other} and {node}"));
        }
        self.leaders.insert(term, node);
        let raft = raft(sim, node).ok_or_else(|| format!("{node} became leader without a running raft"))?;
        let required = self.applied.iter().filter(|(_, a)| a.commit_term_max < term);
        for (&index, &AppliedEntry { term: entry_term, digest, by, .. }) in required {
            match raft.entry(index) {
                Some(e) if e.term == entry_term && crc32c::crc32c(&e.payload) == digest => {}
                Some(e) => {
                    return Err(format!(
                        "leader completeness: {node}, leader of term {term}, has ({index}, term {}) where {by} \
                         applied (index {index}, term {entry_term}) committed before term {term}",
                        e.term
                    ));
                }
                None if index < raft.first_index() => {} // compacted into a snapshot
                None => {
                    return Err(format!(
                        "leader completeness: {node}, leader of term {term}, lacks index {index} (term {entry_term}) \
                         applied by {by} before term {term}; its log ends at {:?}",
                        raft.last_log()
                    ));
                }
            }
        }
        Ok(())
    }

    fn applied(&mut self, index: u64, now: AppliedEntry) -> Result<(), String> {
        match self.applied.get(&index) {
            Some(first) if (first.term, first.digest) != (now.term, now.digest) => Err(format!(
                "state machine safety: {} applied (index {index}, term {}, digest {:08x}) but {} applied (term {}, \
                 digest {:08x})",
                now.by, now.term, now.digest, first.by, first.term, first.digest
            )),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(index, now);
                Ok(())
            }
        }
    }
}

/// Log matching over every pair of running replicas.
pub fn log_matching<R: StationReplica>(sim: &Sim<KvNode<R>>) -> Result<(), String> {
    let rafts: Vec<(NodeId, &Raft)> = sim.node_ids().iter().filter_map(|&n| Some((n, raft(sim, n)?))).collect();
    for (i, (a, ra)) in rafts.iter().enumerate() {
        for (b, rb) in &rafts[i + 1..] {
            let first = ra.first_index().max(rb.first_index());
            let last = ra.last_log().index.min(rb.last_log().index);
            let Some(top) = (first..=last).rev().find(|&k| ra.entry(k).map(|e| e.term) == rb.entry(k).map(|e| e.term))
            else {
                continue;
            };
            for k in first..=top {
                if ra.entry(k) != rb.entry(k) {
                    return Err(format!(
                        "log matching: {a} and {b} agree on the term of index {top} but differ at {k}"
                    ));
                }
            }
        }
    }
    Ok(())
}
