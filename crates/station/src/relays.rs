//! [`Relays`]: client requests a follower passed to its leader over the
//! replica links, waiting for the leader's answer to pass back.
//!
//! In: a relayed request's session key, the client node that asked and the
//! leader it went to; the leader's replies; the leader this replica knows.
//! Out: the client node each reply belongs to, and, when the leader
//! changes, every request still waiting (to be answered "leader lost", with
//! the new leader as hint, so its client retries at once instead of
//! waiting out its timeout, and knows the old leader may have applied it).
//!
//! Why relay at all: forwarding every request over its own HTTP exchange
//! cost the leader an HTTP request and response per forwarded write; over
//! the replica links, requests and replies ride the frames Raft already
//! sends, many per write. The relay is one hop: the leader serves a relayed
//! request as an ordinary one and never relays it again.
//!
//! Bounds: at most `len_max` requests wait at once (more are refused as
//! busy), and an entry older than [`RELAY_WAIT_MAX`] is dropped unanswered
//! (its client stopped waiting long before).

use crate::msg::{KeepAliveReply, Relayed, ReplyError, StationMsg};
use crate::replica::Replica;
use crate::running::{Running, reply};
use haven_runtime::{CtxFor, Instant, NodeId};
use haven_store::LeaseId;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How long a relayed request's entry is kept for its reply. Clients wait
/// at most a second per attempt; after this the entry only takes room.
pub(crate) const RELAY_WAIT_MAX: Duration = Duration::from_secs(5);

/// The answer a relayed request expects, so a refusal takes the right shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RelayKind {
    Request,
    KeepAlive(LeaseId),
}

/// A request still waiting for its leader's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waiting {
    pub(crate) key: (u64, u64),
    pub(crate) client_node: NodeId,
    pub(crate) kind: RelayKind,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    client_node: NodeId,
    kind: RelayKind,
    expires: Instant,
}

/// Why a request could not be relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RelaysFull;

#[derive(Debug)]
pub(crate) struct Relays {
    /// The leader every waiting request went to.
    leader: Option<NodeId>,
    waiting: BTreeMap<(u64, u64), Entry>,
    /// Keys in the order they were relayed: expiry times only grow along it.
    order: VecDeque<(Instant, (u64, u64))>,
    len_max: usize,
}

impl Relays {
    pub(crate) fn new(len_max: usize) -> Relays {
        assert!(len_max > 0, "relays need room for one request");
        Relays { leader: None, waiting: BTreeMap::new(), order: VecDeque::new(), len_max }
    }

    /// Records that the request `key` of `client_node` went to `leader`.
    /// A retry of a waiting key replaces its entry.
    pub(crate) fn start(
        &mut self,
        now: Instant,
        leader: NodeId,
        key: (u64, u64),
        client_node: NodeId,
        kind: RelayKind,
    ) -> Result<(), RelaysFull> {
        assert_eq!(self.leader, Some(leader), "retarget before relaying to a new leader");
        self.expire(now);
        if self.waiting.len() >= self.len_max && !self.waiting.contains_key(&key) {
            return Err(RelaysFull);
        }
        let expires = now + RELAY_WAIT_MAX;
        self.waiting.insert(key, Entry { client_node, kind, expires });
        self.order.push_back((expires, key));
        // Replaced entries leave their old place in `order` behind; bound it too.
        if self.order.len() > 2 * self.len_max {
            self.compact_order();
        }
        Ok(())
    }

    /// The client node waiting for `key`'s reply, if `from` is the leader it
    /// was relayed to. Replies from anyone else are not for a relay.
    pub(crate) fn finish(&mut self, from: NodeId, key: (u64, u64)) -> Option<NodeId> {
        if self.leader != Some(from) {
            return None;
        }
        self.waiting.remove(&key).map(|entry| entry.client_node)
    }

    /// Makes `leader` the target of future relays. If it differs from the
    /// one the waiting requests went to, returns them all: their answers
    /// will not come (or, from a deposed leader, only as refusals).
    pub(crate) fn retarget(&mut self, leader: Option<NodeId>) -> Vec<Waiting> {
        if self.leader == leader {
            return Vec::new();
        }
        self.leader = leader;
        self.order.clear();
        let waiting = std::mem::take(&mut self.waiting);
        waiting.into_iter().map(|(key, e)| Waiting { key, client_node: e.client_node, kind: e.kind }).collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Drops the entries whose time is up.
    fn expire(&mut self, now: Instant) {
        while let Some(&(expires, key)) = self.order.front() {
            if expires > now {
                break;
            }
            self.order.pop_front();
            // Only if this is the entry's latest relay, not an older place of a retried key.
            if self.waiting.get(&key).is_some_and(|e| e.expires == expires) {
                self.waiting.remove(&key);
            }
        }
    }

    fn compact_order(&mut self) {
        let waiting = &self.waiting;
        self.order.retain(|(expires, key)| waiting.get(key).is_some_and(|e| e.expires == *expires));
        assert!(self.order.len() <= self.waiting.len(), "one place per waiting key at most");
    }
}

impl Running {
    /// Passes `relayed` from `client_node` to the leader, or hands it back
    /// to be served here: this replica leads, or knows no leader.
    pub(crate) fn relay(
        &mut self,
        ctx: &mut impl CtxFor<Replica>,
        client_node: NodeId,
        relayed: Relayed,
    ) -> Option<Relayed> {
        self.retarget_relays(ctx);
        let Some(leader) = self.raft.leader().filter(|&l| l != ctx.node()) else { return Some(relayed) };
        let (key, kind, msg) = match relayed {
            Relayed::Request(r) => ((r.client, r.seq), RelayKind::Request, StationMsg::Request(r)),
            Relayed::KeepAlive(k) => ((k.client, k.seq), RelayKind::KeepAlive(k.lease), StationMsg::KeepAlive(k)),
        };
        match self.relays.start(ctx.now(), leader, key, client_node, kind) {
            Ok(()) => ctx.send(leader, msg),
            Err(RelaysFull) => refuse(ctx, Waiting { key, client_node, kind }, ReplyError::Busy),
        }
        None
    }

    /// Passes a leader's reply on to the client it is for, if it answers a
    /// relay. Returns whether the commit index the reply reports raised
    /// ours: the caller then drives the replica, which applies the write
    /// the client waits to see here.
    pub(crate) fn relay_reply(&mut self, ctx: &mut impl CtxFor<Replica>, from: NodeId, msg: StationMsg) -> bool {
        let (key, hint) = match &msg {
            StationMsg::Reply(r) => ((r.client, r.seq), r.commit),
            StationMsg::KeepAliveReply(k) => ((k.client, k.seq), None),
            _ => return false,
        };
        let learned = hint.is_some_and(|hint| self.raft.learn_commit(from, hint.term, hint.index));
        if let Some(client_node) = self.relays.finish(from, key) {
            ctx.send(client_node, msg);
        }
        learned
    }

    /// After a leader change, tells the clients of requests relayed to the
    /// old leader to try again, naming the new one. The old leader may have
    /// proposed them: the answer says the leader was lost, not "not leader".
    pub(crate) fn retarget_relays(&mut self, ctx: &mut impl CtxFor<Replica>) {
        let leader = self.raft.leader();
        for waiting in self.relays.retarget(leader) {
            refuse(ctx, waiting, ReplyError::LeaderLost { leader_hint: leader });
        }
    }
}

/// Answers a relayed request with `error`, in the reply type it expects.
fn refuse(ctx: &mut impl CtxFor<Replica>, waiting: Waiting, error: ReplyError) {
    let Waiting { key: (client, seq), client_node, kind } = waiting;
    match kind {
        RelayKind::Request => reply(ctx, client_node, (client, seq), Err(error)),
        RelayKind::KeepAlive(lease) => {
            let answer = KeepAliveReply { client, seq, lease, result: Err(error) };
            ctx.send(client_node, StationMsg::KeepAliveReply(answer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: NodeId = NodeId(100);

    fn relays(len_max: usize) -> (Relays, Instant) {
        let mut relays = Relays::new(len_max);
        assert!(relays.retarget(Some(NodeId(1))).is_empty());
        (relays, Instant::ZERO + Duration::from_secs(1))
    }

    #[test]
    fn a_reply_from_the_leader_finds_its_client_once() {
        let (mut r, now) = relays(4);
        r.start(now, NodeId(1), (7, 1), CLIENT, RelayKind::Request).unwrap();
        assert_eq!(r.finish(NodeId(2), (7, 1)), None, "not from the leader it went to");
        assert_eq!(r.finish(NodeId(1), (7, 1)), Some(CLIENT));
        assert_eq!(r.finish(NodeId(1), (7, 1)), None, "a duplicate reply finds nobody");
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn a_new_leader_hands_back_every_waiting_request() {
        let (mut r, now) = relays(4);
        r.start(now, NodeId(1), (7, 1), CLIENT, RelayKind::Request).unwrap();
        r.start(now, NodeId(1), (7, 2), CLIENT, RelayKind::KeepAlive(3)).unwrap();
        assert!(r.retarget(Some(NodeId(1))).is_empty(), "same leader: nothing changes");
        let back = r.retarget(Some(NodeId(2)));
        let keys: Vec<_> = back.iter().map(|w| (w.key, w.kind)).collect();
        assert_eq!(keys, vec![((7, 1), RelayKind::Request), ((7, 2), RelayKind::KeepAlive(3))]);
        assert_eq!(r.finish(NodeId(1), (7, 1)), None, "the old leader's late reply is not relayed");
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn the_table_is_bounded_and_old_entries_expire() {
        let (mut r, now) = relays(2);
        r.start(now, NodeId(1), (7, 1), CLIENT, RelayKind::Request).unwrap();
        r.start(now, NodeId(1), (7, 2), CLIENT, RelayKind::Request).unwrap();
        assert_eq!(r.start(now, NodeId(1), (7, 3), CLIENT, RelayKind::Request), Err(RelaysFull));
        assert!(r.start(now, NodeId(1), (7, 2), CLIENT, RelayKind::Request).is_ok(), "a retry takes no room");
        let later = now + RELAY_WAIT_MAX;
        assert!(r.start(later, NodeId(1), (7, 3), CLIENT, RelayKind::Request).is_ok(), "the old ones expired");
        assert_eq!(r.len(), 1);
        assert_eq!(r.finish(NodeId(1), (7, 1)), None);
    }

    #[test]
    fn a_retried_key_outlives_its_first_relay() {
        let (mut r, now) = relays(2);
        r.start(now, NodeId(1), (7, 1), CLIENT, RelayKind::Request).unwrap();
        let retry = now + RELAY_WAIT_MAX / 2;
        r.start(retry, NodeId(1), (7, 1), CLIENT, RelayKind::Request).unwrap();
        r.start(now + RELAY_WAIT_MAX, NodeId(1), (7, 2), CLIENT, RelayKind::Request).unwrap();
        assert_eq!(r.finish(NodeId(1), (7, 1)), Some(CLIENT), "the retry's entry is still there");
    }

    #[test]
    fn retried_keys_do_not_grow_the_order_without_bound() {
        let (mut r, now) = relays(2);
        for i in 0..100u32 {
            r.start(now + Duration::from_millis(u64::from(i)), NodeId(1), (7, 1), CLIENT, RelayKind::Request).unwrap();
            assert!(r.order.len() <= 4);
        }
        assert_eq!(r.len(), 1);
    }
}
