//! Which store lease keeps each node alive, looked up both ways: by lease
//! (the store revoked it: whose node dies?) and by node (the node joined
//! again: which lease no longer counts?). Each node has at most one lease
//! and each lease at most one node.
//!
//! In: joins (node, lease) and revoked leases. Out: the node a revoked
//! lease kept alive. Serialized as the lease → node map alone, so snapshots
//! keep their format; the node → lease side is rebuilt when one is read,
//! and a map that names a node twice is refused as corrupt.
//!
//! Why both ways: a join used to drop the node's earlier lease by scanning
//! every lease, which made 30,000 joins cost 30,000² steps on each replica.

use haven_runtime::NodeId;
use haven_store::LeaseId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeLeases {
    by_lease: BTreeMap<LeaseId, NodeId>,
    by_node: BTreeMap<NodeId, LeaseId>,
}

impl NodeLeases {
    /// From now on `node` lives by `lease` alone.
    pub(crate) fn join(&mut self, node: NodeId, lease: LeaseId) {
        if let Some(old) = self.by_node.insert(node, lease) {
            self.by_lease.remove(&old);
        }
        if let Some(other) = self.by_lease.insert(lease, node).filter(|other| *other != node) {
            let was = self.by_node.remove(&other);
            assert_eq!(was, Some(lease), "lease and node maps disagree about {other}");
        }
        assert_eq!(self.by_lease.len(), self.by_node.len(), "one lease per node and one node per lease");
    }

    /// The store revoked `lease`: the node it kept alive, if any.
    pub(crate) fn gone(&mut self, lease: LeaseId) -> Option<NodeId> {
        let node = self.by_lease.remove(&lease)?;
        let was = self.by_node.remove(&node);
        assert_eq!(was, Some(lease), "lease and node maps disagree about {node}");
        Some(node)
    }
}

impl Serialize for NodeLeases {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_lease.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for NodeLeases {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let by_lease = BTreeMap::<LeaseId, NodeId>::deserialize(deserializer)?;
        let by_node: BTreeMap<NodeId, LeaseId> = by_lease.iter().map(|(lease, node)| (*node, *lease)).collect();
        if by_node.len() != by_lease.len() {
            return Err(serde::de::Error::custom("node leases: a node kept alive by two leases"));
        }
        Ok(NodeLeases { by_lease, by_node })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejoin_replaces_the_nodes_lease_and_a_reused_lease_moves_to_its_new_node() {
        let mut leases = NodeLeases::default();
        leases.join(NodeId(1), 10);
        leases.join(NodeId(2), 20);
        leases.join(NodeId(1), 11);
        assert_eq!(leases.gone(10), None, "n1's old lease no longer kills it");
        leases.join(NodeId(3), 20);
        assert_eq!(leases.gone(20), Some(NodeId(3)));
        assert_eq!(leases.gone(11), Some(NodeId(1)));
        assert_eq!(leases, NodeLeases::default(), "n2 lost its lease to n3");
    }

    #[test]
    fn it_is_written_as_the_lease_map_alone_and_read_back_whole() {
        let mut leases = NodeLeases::default();
        leases.join(NodeId(4), 40);
        leases.join(NodeId(5), 50);
        let bytes = postcard::to_allocvec(&leases).unwrap();
        let map = BTreeMap::from([(40, NodeId(4)), (50, NodeId(5))]);
        assert_eq!(bytes, postcard::to_allocvec(&map).unwrap(), "the snapshot format is the plain map");
        assert_eq!(postcard::from_bytes::<NodeLeases>(&bytes).unwrap(), leases);
        let twice = postcard::to_allocvec(&BTreeMap::from([(40, NodeId(4)), (41, NodeId(4))])).unwrap();
        assert!(postcard::from_bytes::<NodeLeases>(&twice).is_err(), "a node with two leases is corrupt");
    }
}
