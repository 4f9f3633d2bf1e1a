//! The sequential specification of one key: etcd's semantics for a single key
//! plus what the key's history says about the global revision.
//!
//! In: a state and one [`KeyOp`] (its response, if it has one).
//! Out: the states the key may be in after the operation, or the
//! [`Mismatch`] that makes the operation impossible in that state.
//!
//! Besides the key's value, version and mod_revision, the state keeps `floor`:
//! the least global revision the store can be at, given the operations of
//! this key placed so far. A change must get a revision above it and a read's
//! header revision may not be below it, which checks each key's writes and
//! reads against the order of revisions (e.g. a range's part is pinned to its
//! header revision). A change whose response is missing gets an unknown
//! revision above the floor that no answered change owns (a [`RevRange`]),
//! narrowed by later operations.
//! A txn comparing an unknown revision may go both ways, so one state can
//! lead to two.

use crate::owned::Owned;
use crate::partition::{KeyCompare, KeyInput, KeyOp, KeyOutput, KeyWrite, Seen, TxnBranch, ValueId};
use crate::rev_range::RevRange;
use std::cmp::Ordering;

/// One possible state of a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyState {
    pub kv: Option<Kv>,
    /// The global revision is at least this.
    pub floor: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kv {
    pub value: ValueId,
    pub version: u64,
    pub mod_revision: RevRange,
}

/// Why an operation cannot take effect in a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The operation showed the key as `returned`, but it `holds` something else.
    Read { holds: Option<Kv>, returned: Option<Seen> },
    /// A change got `revision`, not above the `floor` the key's history implies.
    ChangeNotAfter { revision: u64, floor: u64 },
    /// A response's `revision` is below the `floor` the key's history implies.
    RevisionBehind { revision: u64, floor: u64 },
    /// A delete removed the key, but it does not exist.
    DeletedMissing,
    /// A delete removed nothing, but the key `holds` a value.
    NotDeleted { holds: Kv },
    /// A txn took the branch for `compare_held`, but its compare does the opposite on `holds`.
    Branch { compare_held: bool, holds: Option<Kv> },
}

impl KeyState {
    /// Appends to `next` every state `op` may lead to (one, or two for a txn
    /// whose compare cannot be decided); on failure appends nothing.
    pub fn step(&self, op: &KeyOp, owned: &Owned, next: &mut Vec<KeyState>) -> Result<(), Mismatch> {
        let output = op.output.as_ref();
        match (op.input, output) {
            (KeyInput::Read, Some(KeyOutput::Read { revision, seen })) => {
                next.push(self.read(*revision, *seen, owned)?)
            }
            (KeyInput::Read, _) => unreachable!("partitioning drops reads without a response"),
            (KeyInput::Put { value, prev_kv }, output) => next.push(self.put(value, prev_kv, output, owned)?),
            (KeyInput::Delete, output) => next.push(self.delete(output, owned)?),
            (KeyInput::Txn { compare, write }, output) => self.txn(compare, write, output, owned, next)?,
        }
        Ok(())
    }

    fn read(mut self, revision: u64, seen: Option<Seen>, owned: &Owned) -> Result<KeyState, Mismatch> {
        self.at(revision)?;
        self.observe(seen, owned)?;
        Ok(self)
    }

    fn put(
        mut self,
        value: ValueId,
        prev_kv: bool,
        output: Option<&KeyOutput>,
        owned: &Owned,
    ) -> Result<KeyState, Mismatch> {
        let revision = match output {
            None => None,
            Some(KeyOutput::Put { revision, prev }) => {
                self.change_at(*revision)?;
                if prev_kv {
                    self.observe(*prev, owned)?;
                }
                Some(*revision)
            }
            Some(other) => unreachable!("validation pairs a put with a put output, not {other:?}"),
        };
        Ok(self.write(value, revision, owned))
    }

    fn delete(mut self, output: Option<&KeyOutput>, owned: &Owned) -> Result<KeyState, Mismatch> {
        match output {
            None if self.kv.is_some() => {
                self.floor = owned.next_free(self.floor.saturating_add(1));
                self.kv = None;
            }
            None => {}
            Some(KeyOutput::Delete { revision, deleted }) => self.delete_answered(*revision, *deleted)?,
            Some(other) => unreachable!("validation pairs a delete with a delete output, not {other:?}"),
        }
        Ok(self)
    }

    fn delete_answered(&mut self, revision: u64, deleted: bool) -> Result<(), Mismatch> {
        match (self.kv, deleted) {
            (Some(_), true) => {
                self.change_at(revision)?;
                self.kv = None;
                Ok(())
            }
            (None, false) => self.at(revision),
            (None, true) => Err(Mismatch::DeletedMissing),
            (Some(holds), false) => Err(Mismatch::NotDeleted { holds }),
        }
    }

    fn txn(
        &self,
        compare: KeyCompare,
        write: KeyWrite,
        output: Option<&KeyOutput>,
        owned: &Owned,
        next: &mut Vec<KeyState>,
    ) -> Result<(), Mismatch> {
        let (held, failed) = self.compare(compare, owned);
        let branch = match output {
            None => None,
            Some(KeyOutput::Txn { revision, branch }) => Some((*revision, *branch)),
            Some(other) => unreachable!("validation pairs a txn with a txn output, not {other:?}"),
        };
        let claims_held = branch.is_none_or(|(_, b)| !matches!(b, TxnBranch::Got(_)));
        let claims_failed = branch.is_none_or(|(_, b)| matches!(b, TxnBranch::Got(_)));
        let mut error = Mismatch::Branch { compare_held: claims_held, holds: self.kv };
        if let Some(state) = held.filter(|_| claims_held) {
            match state.txn_write(write, branch, owned) {
                Ok(state) => next.push(state),
                Err(e) => error = e,
            }
        }
        if let Some(mut state) = failed.filter(|_| claims_failed) {
            let read = match branch {
                Some((revision, TxnBranch::Got(seen))) => state.at(revision).and_then(|()| state.observe(seen, owned)),
                _ => Ok(()),
            };
            match read {
                Ok(()) => next.push(state),
                Err(e) => error = e,
            }
        }
        if next.is_empty() { Err(error) } else { Ok(()) }
    }

    fn txn_write(
        mut self,
        write: KeyWrite,
        branch: Option<(u64, TxnBranch)>,
        owned: &Owned,
    ) -> Result<KeyState, Mismatch> {
        match (write, branch) {
            (KeyWrite::Put(value), None) => Ok(self.write(value, None, owned)),
            (KeyWrite::Put(value), Some((revision, _))) => {
                self.change_at(revision)?;
                Ok(self.write(value, Some(revision), owned))
            }
            (KeyWrite::Delete, None) => self.delete(None, owned),
            (KeyWrite::Delete, Some((revision, TxnBranch::Deleted(deleted)))) => {
                self.delete_answered(revision, deleted)?;
                Ok(self)
            }
            (KeyWrite::Delete, Some((_, other))) => {
                unreachable!("validation pairs a txn delete with Deleted, not {other:?}")
            }
        }
    }

    /// The parts of this state where `compare` holds and where it does not.
    fn compare(&self, compare: KeyCompare, owned: &Owned) -> (Option<KeyState>, Option<KeyState>) {
        let decided = |holds: bool| if holds { (Some(*self), None) } else { (None, Some(*self)) };
        match (compare, self.kv) {
            // etcd: comparing the value of a missing key is always false.
            (KeyCompare::Value(..), None) => decided(false),
            (KeyCompare::Value(op, value), Some(kv)) => decided(holds(op, kv.value.cmp(&value))),
            (KeyCompare::Version(op, n), kv) => decided(holds(op, kv.map_or(0, |kv| kv.version).cmp(&n))),
            (KeyCompare::ModRevision(op, r), None) => decided(holds(op, 0.cmp(&r))),
            (KeyCompare::ModRevision(op, r), Some(kv)) => {
                let (mut yes, mut no) = kv.mod_revision.split(op, r);
                // An unknown revision cannot be one that an answered change owns.
                let owned_pin = |part: &mut Option<RevRange>| {
                    if kv.mod_revision.known().is_none()
                        && part.and_then(RevRange::known).is_some_and(|p| owned.owner(p).is_some())
                    {
                        *part = None;
                    }
                };
                owned_pin(&mut yes);
                owned_pin(&mut no);
                // Learning that the unknown revision is higher also raises the floor.
                let with = |range: RevRange| KeyState {
                    kv: Some(Kv { mod_revision: range, ..kv }),
                    floor: self.floor.max(range.lo()),
                };
                (yes.map(with), no.map(with))
            }
        }
    }

    /// A change answered with `revision`: it must come after everything the
    /// key has seen, and the key's current mod_revision is below it.
    fn change_at(&mut self, revision: u64) -> Result<(), Mismatch> {
        if revision <= self.floor {
            return Err(Mismatch::ChangeNotAfter { revision, floor: self.floor });
        }
        if let Some(kv) = &mut self.kv {
            kv.mod_revision = kv.mod_revision.at_most(revision - 1).expect("a key's mod_revision is <= the floor");
        }
        self.floor = revision;
        Ok(())
    }

    /// An operation that changed nothing, answered at header `revision`.
    fn at(&mut self, revision: u64) -> Result<(), Mismatch> {
        if revision < self.floor {
            return Err(Mismatch::RevisionBehind { revision, floor: self.floor });
        }
        if let Some(kv) = &mut self.kv {
            kv.mod_revision = kv.mod_revision.at_most(revision).expect("a key's mod_revision is <= the floor");
        }
        self.floor = revision;
        Ok(())
    }

    fn observe(&mut self, seen: Option<Seen>, owned: &Owned) -> Result<(), Mismatch> {
        let mismatch = Mismatch::Read { holds: self.kv, returned: seen };
        match (&mut self.kv, seen) {
            (None, None) => Ok(()),
            (Some(kv), Some(seen)) if kv.value == seen.value && kv.version == seen.version => {
                // An unknown revision cannot be one that an answered change owns.
                if kv.mod_revision.known().is_none() && owned.owner(seen.mod_revision).is_some() {
                    return Err(mismatch);
                }
                kv.mod_revision = kv.mod_revision.pin(seen.mod_revision).ok_or(mismatch)?;
                Ok(())
            }
            _ => Err(mismatch),
        }
    }

    /// Installs a put of `value`; `revision: None` when its response is missing.
    fn write(mut self, value: ValueId, revision: Option<u64>, owned: &Owned) -> KeyState {
        let mod_revision = match revision {
            Some(revision) => RevRange::exactly(revision),
            None => {
                self.floor = owned.next_free(self.floor.saturating_add(1));
                RevRange::at_least(self.floor)
            }
        };
        let version = self.kv.map_or(1, |kv| kv.version + 1);
        self.kv = Some(Kv { value, version, mod_revision });
        self
    }
}

fn holds(op: crate::history::CompareOp, ordering: Ordering) -> bool {
    use crate::history::CompareOp::*;
    match op {
        Equal => ordering == Ordering::Equal,
        NotEqual => ordering != Ordering::Equal,
        Less => ordering == Ordering::Less,
        Greater => ordering == Ordering::Greater,
    }
}
