//! The revisions that answered changes own, across all keys.
//!
//! In: the history (revisions already checked unique).
//! Out: [`Owned::next_free`], the least revision at or above a bound that no
//! answered change owns, and [`Owned::owner`].
//!
//! A change whose response is missing, if it took effect, got a revision
//! that no answered change has. In a store where every committed change
//! takes the next revision, the free revisions are few, so this bounds how
//! many timed-out changes can fit between two known ones: the main pruning
//! of the search when many calls timed out.

use crate::history::{OpId, Operation};

#[derive(Clone, Debug, Default)]
pub struct Owned {
    /// Owned revisions, ascending.
    sorted: Vec<u64>,
    /// `owner[i]` owns `sorted[i]`.
    owner: Vec<OpId>,
    /// `run_end[i]`: the least free revision above `sorted[i]`.
    run_end: Vec<u64>,
}

impl Owned {
    pub fn new(history: &[Operation]) -> Self {
        let mut pairs: Vec<(u64, OpId)> = history
            .iter()
            .enumerate()
            .filter_map(|(id, op)| {
                let output = &op.response.as_ref()?.output;
                output.is_change().then_some((output.revision(), id))
            })
            .collect();
        pairs.sort_unstable();
        let sorted: Vec<u64> = pairs.iter().map(|&(r, _)| r).collect();
        let mut run_end = vec![0; sorted.len()];
        for i in (0..sorted.len()).rev() {
            let next_owned = sorted.get(i + 1).is_some_and(|&n| Some(n) == sorted[i].checked_add(1));
            run_end[i] = if next_owned { run_end[i + 1] } else { sorted[i].saturating_add(1) };
        }
        Owned { sorted, owner: pairs.into_iter().map(|(_, id)| id).collect(), run_end }
    }

    pub fn owner(&self, revision: u64) -> Option<OpId> {
        self.sorted.binary_search(&revision).ok().map(|i| self.owner[i])
    }

    /// The least revision >= `revision` that no answered change owns.
    pub fn next_free(&self, revision: u64) -> u64 {
        match self.sorted.binary_search(&revision) {
            Ok(i) => self.run_end[i],
            Err(_) => revision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Input, Output, Response};

    fn put_at(revision: u64) -> Operation {
        let input = Input::Put { key: b"k".to_vec(), value: vec![], prev_kv: false };
        let output = Output::Put { revision, prev: None };
        Operation { client: 0, call_ns: 0, input, response: Some(Response { return_ns: 0, output }) }
    }

    #[test]
    fn next_free_skips_whole_runs_of_owned_revisions() {
        let owned = Owned::new(&[put_at(3), put_at(5), put_at(2), put_at(6)]);
        assert_eq!(owned.next_free(1), 1);
        assert_eq!(owned.next_free(2), 4);
        assert_eq!(owned.next_free(4), 4);
        assert_eq!(owned.next_free(5), 7);
        assert_eq!(owned.owner(5), Some(1));
        assert_eq!(owned.owner(4), None);
    }
}
