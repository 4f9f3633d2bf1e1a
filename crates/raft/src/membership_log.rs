//! Which configuration is in force at each point of the log (thesis §4.1).
//!
//! In: the configuration a snapshot recorded (or the bootstrap one), then
//! every entry appended, every suffix truncation, compaction and snapshot
//! install the log goes through.
//! Out: the configuration in force — the latest configuration entry in the
//! log, committed or not, since a configuration takes effect as soon as it
//! is appended — the index of that entry, and the configuration at any
//! index from the snapshot on (for a snapshot's metadata).

use crate::entry::{Entry, EntryKind};
use crate::membership::Membership;

#[derive(Debug)]
pub(crate) struct MembershipLog {
    /// In force at the log's snapshot point.
    base: Membership,
    /// Configuration entries after the snapshot, ascending by index.
    changes: Vec<(u64, Membership)>,
}

/// The configuration an entry carries, if it is a configuration entry.
/// Entries reaching the log were validated, so the body decodes.
fn carried(entry: &Entry) -> Option<Membership> {
    match entry.kind() {
        Ok(EntryKind::Config(body)) => {
            Some(Membership::from_bytes(body).expect("configuration entries are validated on arrival"))
        }
        _ => None,
    }
}

impl MembershipLog {
    pub(crate) fn new(base: Membership, entries: &[Entry]) -> MembershipLog {
        assert!(base.validate().is_ok(), "the base configuration is valid: {base:?}");
        let mut log = MembershipLog { base, changes: Vec::new() };
        entries.iter().for_each(|e| log.on_append(e));
        log
    }

    pub(crate) fn current(&self) -> &Membership {
        self.changes.last().map_or(&self.base, |(_, m)| m)
    }

    /// The index of the entry that set the current configuration (0: the base).
    pub(crate) fn current_index(&self) -> u64 {
        self.changes.last().map_or(0, |(index, _)| *index)
    }

    pub(crate) fn at(&self, index: u64) -> &Membership {
        self.changes.iter().rev().find(|(at, _)| *at <= index).map_or(&self.base, |(_, m)| m)
    }

    pub(crate) fn on_append(&mut self, entry: &Entry) {
        if let Some(membership) = carried(entry) {
            self.changes.push((entry.index, membership));
        }
    }

    /// Entries from `index` on are gone: so are the configurations they set.
    pub(crate) fn on_truncate(&mut self, index: u64) {
        self.changes.retain(|(at, _)| *at < index);
    }

    /// Entries up to `index` are compacted: the configuration there becomes the base.
    pub(crate) fn on_compact(&mut self, index: u64) {
        self.base = self.at(index).clone();
        self.changes.retain(|(at, _)| *at > index);
    }

    /// A snapshot from the leader replaced the log up to `index`, keeping
    /// the entries after it or not.
    pub(crate) fn on_install(&mut self, index: u64, membership: Membership, kept_after: bool) {
        self.base = membership;
        self.changes.retain(|(at, _)| kept_after && *at > index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_runtime::NodeId;

    fn config(voters: &[u64]) -> Membership {
        Membership::new(voters.iter().copied().map(NodeId).collect(), vec![])
    }

    fn config_entry(index: u64, voters: &[u64]) -> Entry {
        Entry::new(index, 1, EntryKind::Config(&config(voters).to_bytes()))
    }

    #[test]
    fn a_configuration_is_in_force_once_appended_and_gone_when_truncated() {
        let mut log = MembershipLog::new(config(&[1]), &[Entry::noop(1, 1), config_entry(2, &[1, 2])]);
        assert_eq!((log.current(), log.current_index()), (&config(&[1, 2]), 2));
        log.on_append(&Entry::noop(3, 1));
        log.on_append(&config_entry(4, &[1, 2, 3]));
        assert_eq!((log.at(3), log.at(1)), (&config(&[1, 2]), &config(&[1])));
        log.on_truncate(4);
        assert_eq!((log.current(), log.current_index()), (&config(&[1, 2]), 2));
        log.on_truncate(2);
        assert_eq!((log.current(), log.current_index()), (&config(&[1]), 0));
    }

    #[test]
    fn compaction_and_install_move_the_base() {
        let entries = [config_entry(2, &[1, 2]), config_entry(4, &[1, 2, 3])];
        let mut log = MembershipLog::new(config(&[1]), &entries);
        log.on_compact(3);
        assert_eq!((log.at(3), log.current()), (&config(&[1, 2]), &config(&[1, 2, 3])));
        log.on_install(5, config(&[7]), true);
        assert_eq!(log.current(), &config(&[7]), "the change at 4 is inside the snapshot");
        let mut log = MembershipLog::new(config(&[1]), &entries);
        log.on_install(3, config(&[7]), false);
        assert_eq!(log.current(), &config(&[7]), "the log after the snapshot was dropped");
    }
}
