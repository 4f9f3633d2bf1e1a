//! Wakes the agents' command fetches that wait on this station.
//!
//! In: the nodes an applied step issued commands to
//! (`ReplicaEvent::CommandsIssued`, on the executor's thread). Out: every
//! fetch waiting for one of those nodes is woken, and every fetch of a
//! proxy (which serves nodes this station does not track), so it asks the
//! replica again and answers at once instead of at its next poll.
//!
//! Only the nodes with a waiting fetch have an entry, and at most
//! [`WAITERS_LEN_MAX`] fetches wait at once; past that a fetch does not
//! wait, it answers what there is (its agent then polls). A wake-up may be
//! spurious (the fetch asks again and finds nothing new); none is lost: a
//! fetch enables its [`Listener`] before it asks the replica.

use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Fetches that may wait at once on one station (each holds a connection).
pub const WAITERS_LEN_MAX: usize = 16_384;

#[derive(Debug, Default)]
pub struct CommandBell {
    /// One bell per node with a waiting fetch, which the fetches share;
    /// `None`'s rings for every node (proxies wait on it).
    bells: Mutex<BTreeMap<Option<NodeId>, Arc<Notify>>>,
    waiters: AtomicUsize,
}

/// A fetch's claim on its node's bell; released when dropped.
#[derive(Debug)]
pub struct Listener<'a> {
    owner: &'a CommandBell,
    node: Option<NodeId>,
    bell: Arc<Notify>,
}

impl CommandBell {
    fn bells(&self) -> std::sync::MutexGuard<'_, BTreeMap<Option<NodeId>, Arc<Notify>>> {
        self.bells.lock().expect("never poisoned: no panics while held")
    }

    /// Rings the bells of `nodes` and the bell for all: every fetch
    /// waiting for one of them, or for any, wakes.
    pub fn ring(&self, nodes: &[NodeId]) {
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return;
        }
        let bells = self.bells();
        for node in nodes.iter().copied().map(Some).chain([None]) {
            if let Some(bell) = bells.get(&node) {
                bell.notify_waiters();
            }
        }
    }

    /// A listener for `node`'s bell (`None`: rung for any node), or `None`
    /// when [`WAITERS_LEN_MAX`] fetches already wait.
    pub fn listen(&self, node: Option<NodeId>) -> Option<Listener<'_>> {
        let claimed =
            self.waiters.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < WAITERS_LEN_MAX).then_some(n + 1));
        claimed.ok()?;
        let bell = self.bells().entry(node).or_default().clone();
        Some(Listener { owner: self, node, bell })
    }

    /// Fetches waiting now.
    pub fn waiters(&self) -> usize {
        self.waiters.load(Ordering::Relaxed)
    }
}

impl Listener<'_> {
    /// The bell to wait on: create the `notified()` future and `enable` it
    /// before asking the replica, so a ring in between is not missed.
    pub fn bell(&self) -> &Notify {
        &self.bell
    }
}

impl Drop for Listener<'_> {
    fn drop(&mut self) {
        let mut bells = self.owner.bells();
        // The map holds one reference and this listener another: the last
        // listener of a node removes its bell.
        if Arc::strong_count(&self.bell) == 2 {
            bells.remove(&self.node);
        }
        drop(bells);
        self.owner.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_ring_for_its_node_wakes_a_listener_enabled_before_it() {
        let bell = CommandBell::default();
        let listener = bell.listen(Some(NodeId(4))).expect("room to wait");
        let notified = listener.bell().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        bell.ring(&[NodeId(5)]);
        let other = tokio::time::timeout(Duration::from_millis(20), notified.as_mut()).await;
        assert!(other.is_err(), "node 5's ring does not wake node 4's fetch");
        bell.ring(&[NodeId(3), NodeId(4)]);
        tokio::time::timeout(Duration::from_secs(5), notified).await.expect("node 4's ring wakes it");
    }

    #[tokio::test]
    async fn a_ring_for_any_node_wakes_a_listener_for_all() {
        let bell = CommandBell::default();
        let listener = bell.listen(None).expect("room to wait");
        let notified = listener.bell().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        bell.ring(&[NodeId(7)]);
        tokio::time::timeout(Duration::from_secs(5), notified).await.expect("any ring wakes it");
    }

    #[test]
    fn the_last_listener_of_a_node_removes_its_bell() {
        let bell = CommandBell::default();
        let first = bell.listen(Some(NodeId(4))).unwrap();
        let second = bell.listen(Some(NodeId(4))).unwrap();
        assert_eq!((bell.waiters(), bell.bells().len()), (2, 1));
        drop(first);
        assert_eq!((bell.waiters(), bell.bells().len()), (1, 1));
        drop(second);
        assert_eq!((bell.waiters(), bell.bells().len()), (0, 0));
    }

    #[test]
    fn past_the_bound_a_fetch_does_not_wait() {
        let bell = CommandBell::default();
        let held: Vec<_> = (0..WAITERS_LEN_MAX as u64).map(|n| bell.listen(Some(NodeId(n))).unwrap()).collect();
        assert!(bell.listen(Some(NodeId(u64::MAX))).is_none(), "the bound holds");
        drop(held);
        assert!(bell.listen(Some(NodeId(u64::MAX))).is_some(), "room again once they answered");
    }
}
