//! Ω, the eventual leader detector, on top of a failure detector.
//!
//! In: the detector's `Suspect`/`Trust` events. Out: the trusted leader,
//! and whether it changed.
//!
//! The leader is the node with the lowest (epoch, id) among this node and
//! the peers the detector currently trusts. With ◇P underneath, every
//! correct node eventually trusts the same correct node. Preferring the
//! lowest epoch (fewest restarts) keeps leadership away from a node that
//! crashes and recovers repeatedly, which the plain "lowest id" rule would
//! hand leadership back to on every recovery.

use crate::detector::DetectorEvent;
use haven_runtime::NodeId;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Omega {
    me: NodeId,
    epoch: u64,
    trusted: BTreeMap<NodeId, u64>,
    leader: NodeId,
}

impl Omega {
    pub fn new(me: NodeId, epoch: u64) -> Omega {
        Omega { me, epoch, trusted: BTreeMap::new(), leader: me }
    }

    pub fn leader(&self) -> NodeId {
        self.leader
    }

    /// Applies a detector event; returns the new leader if it changed.
    pub fn on_detector(&mut self, event: &DetectorEvent) -> Option<NodeId> {
        match *event {
            DetectorEvent::Suspect { node } => self.trusted.remove(&node),
            DetectorEvent::Trust { node, epoch } => self.trusted.insert(node, epoch),
        };
        let mine = (self.epoch, self.me);
        let best = self.trusted.iter().map(|(&node, &epoch)| (epoch, node)).fold(mine, |a, b| a.min(b));
        let changed = best.1 != self.leader;
        self.leader = best.1;
        changed.then_some(self.leader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(node: u64, epoch: u64) -> DetectorEvent {
        DetectorEvent::Trust { node: NodeId(node), epoch }
    }

    #[test]
    fn lowest_epoch_then_lowest_id_wins() {
        let mut omega = Omega::new(NodeId(3), 1);
        assert_eq!(omega.leader(), NodeId(3));
        assert_eq!(omega.on_detector(&trust(1, 4)), None, "n1 restarted thrice; n3 (epoch 1) stays");
        assert_eq!(omega.on_detector(&trust(2, 1)), Some(NodeId(2)), "same epoch, lower id");
        assert_eq!(omega.on_detector(&DetectorEvent::Suspect { node: NodeId(2) }), Some(NodeId(3)));
        assert_eq!(omega.on_detector(&trust(2, 2)), None, "n2 came back in a later epoch");
    }
}
