//! Who each node talks to: the production executor's peer map, simulated.
//!
//! In: a policy from the scenario — each node's peer map when it starts,
//! and the new map an output of it announces (a station's member table) —
//! then every start and every output. Out: whether a message from one node
//! to another passes; the network model drops it otherwise, as the real
//! executor does (it dials only the nodes of its map and accepts a hello
//! only from them).
//!
//! A node outside a receiver's map that the receiver does not refuse
//! outright (a member its table says was removed) becomes its guest, as
//! `haven station` makes a node that dialled in: its first message is
//! dropped (the connection was refused), later ones pass both ways, until
//! the receiver's next map names it or refuses it, or the receiver restarts.
//!
//! A node without a map (a client, or every node when no policy is given)
//! talks to anyone: the filter applies between two nodes that both have
//! one, since clients reach stations through a channel, not the peer links.

use haven_runtime::NodeId;
use std::collections::BTreeSet;
use std::fmt;

/// One node's peer map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerMap {
    /// The nodes it dials and accepts.
    pub peers: BTreeSet<NodeId>,
    /// The nodes it refuses outright, never taking them as guests.
    pub refused: BTreeSet<NodeId>,
}

/// A node's map when it (re)starts; `None`: unfiltered.
pub(crate) type InitialPeers = Box<dyn Fn(NodeId) -> Option<PeerMap>>;
/// The map an output of a node announces, if it announces one.
pub(crate) type AnnouncedPeers<Out> = Box<dyn Fn(NodeId, &Out) -> Option<PeerMap>>;

/// Guests a node takes at most; later strangers are refused.
const GUESTS_LEN_MAX: usize = 16;

pub(crate) struct PeerMaps<Out> {
    initial: InitialPeers,
    announced: AnnouncedPeers<Out>,
    /// By node index: the map and the guests.
    maps: Vec<Option<(PeerMap, BTreeSet<NodeId>)>>,
}

impl<Out> fmt::Debug for PeerMaps<Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerMaps").field("maps", &self.maps).finish_non_exhaustive()
    }
}

impl<Out> PeerMaps<Out> {
    pub(crate) fn new(nodes: usize, initial: InitialPeers, announced: AnnouncedPeers<Out>) -> Self {
        PeerMaps { initial, announced, maps: vec![None; nodes] }
    }

    /// Node `i`, `id`, (re)started: back to its initial map and no guests,
    /// as a restarted station starts from its configured members.
    pub(crate) fn started(&mut self, i: usize, id: NodeId) {
        self.maps[i] = (self.initial)(id).map(|map| (map, BTreeSet::new()));
    }

    pub(crate) fn output(&mut self, i: usize, id: NodeId, out: &Out) {
        let Some(map) = (self.announced)(id, out) else { return };
        let mut guests = self.maps[i].take().map(|(_, guests)| guests).unwrap_or_default();
        guests.retain(|g| !map.peers.contains(g) && !map.refused.contains(g));
        self.maps[i] = Some((map, guests));
    }

    /// Whether a message from `from` (index `f`) to `to` (index `t`)
    /// passes: `from` dials `to`, and `to` accepts `from` (or takes it as a
    /// guest, dropping this first message).
    pub(crate) fn pass(&mut self, f: usize, from: NodeId, t: usize, to: NodeId) -> bool {
        let (Some((sender, sender_guests)), Some((receiver, _))) = (&self.maps[f], &self.maps[t]) else { return true };
        if !sender.peers.contains(&to) && !sender_guests.contains(&to) {
            return false;
        }
        let refused = receiver.refused.contains(&from);
        let Some((receiver, guests)) = &mut self.maps[t] else { unreachable!("checked above") };
        if receiver.peers.contains(&from) || guests.contains(&from) {
            return true;
        }
        if !refused && guests.len() < GUESTS_LEN_MAX {
            guests.insert(from);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(ids: &[u64], refused: &[u64]) -> PeerMap {
        let set = |ids: &[u64]| ids.iter().map(|&id| NodeId(id)).collect();
        PeerMap { peers: set(ids), refused: set(refused) }
    }

    /// Nodes 1-4 are stations knowing 1-3 (and themselves); node 5 is a
    /// client. An output `(n, r)` means "my peers are now 1..=n, and I
    /// refuse r".
    fn maps() -> PeerMaps<(u64, u64)> {
        let initial: InitialPeers = Box::new(|id| (id.0 <= 4).then(|| map(&[1, 2, 3, id.0], &[])));
        let announced: AnnouncedPeers<(u64, u64)> =
            Box::new(|_, &(n, r)| Some(map(&(1..=n).collect::<Vec<_>>(), &[r])));
        let mut maps = PeerMaps::new(5, initial, announced);
        for i in 0..5 {
            maps.started(i, NodeId(i as u64 + 1));
        }
        maps
    }

    fn pass(maps: &mut PeerMaps<(u64, u64)>, a: u64, b: u64) -> bool {
        maps.pass(a as usize - 1, NodeId(a), b as usize - 1, NodeId(b))
    }

    #[test]
    fn both_ends_must_have_each_other_and_a_node_without_a_map_talks_to_anyone() {
        let mut maps = maps();
        assert!(pass(&mut maps, 1, 3) && pass(&mut maps, 3, 1));
        assert!(pass(&mut maps, 5, 1) && pass(&mut maps, 1, 5), "a client is not filtered");
        maps.output(0, NodeId(1), &(2, 3));
        assert!(!pass(&mut maps, 1, 3), "1 no longer dials 3");
        assert!(!pass(&mut maps, 3, 1), "and refuses 3, which its table says was removed");
        assert!(!pass(&mut maps, 3, 1), "every time");
        assert!(pass(&mut maps, 1, 2));
        maps.started(0, NodeId(1));
        assert!(pass(&mut maps, 3, 1), "a restart goes back to the configured members");
    }

    #[test]
    fn a_stranger_is_refused_once_then_taken_as_a_guest_both_ways() {
        let mut maps = maps();
        // 4 knows only 1 (its table is behind); 2 knows 1-4.
        maps.output(3, NodeId(4), &(1, 0));
        maps.output(1, NodeId(2), &(4, 0));
        assert!(!pass(&mut maps, 2, 4), "4 does not know 2: the first hello is refused");
        assert!(pass(&mut maps, 2, 4), "then 2 is 4's guest");
        assert!(pass(&mut maps, 4, 2), "and 4 dials it back");
        maps.output(3, NodeId(4), &(2, 0));
        assert!(pass(&mut maps, 4, 2), "its table names 2 now");
        maps.output(3, NodeId(4), &(1, 2));
        assert!(!pass(&mut maps, 2, 4), "refused once its table says 2 was removed");
        assert!(!pass(&mut maps, 2, 4), "and never taken as a guest");
    }
}
