//! [`DoneCommands`]: the commands an agent carried out, remembered so that
//! a repeat is answered "done" instead of being carried out again.
//!
//! In: the id of each command as it is carried out; lookups by id. Out:
//! whether an id is among the last [`DONE_LEN_MAX`] remembered.
//!
//! Why: the coordinator, or a proxy on its behalf, sends a command again
//! until it hears that it was done, and the first answer may be lost. A
//! start repeated after its instance exited must not start it again.

use crate::command::CommandId;
use std::collections::VecDeque;

/// Commands remembered as done, for deduplication.
pub const DONE_LEN_MAX: usize = 1_024;

/// The newest [`DONE_LEN_MAX`] commands carried out, oldest first.
#[derive(Clone, Debug, Default)]
pub struct DoneCommands {
    ids: VecDeque<CommandId>,
}

impl DoneCommands {
    pub fn contains(&self, id: CommandId) -> bool {
        self.ids.contains(&id)
    }

    /// Remembers `id` (once), forgetting the oldest beyond the bound.
    pub fn remember(&mut self, id: CommandId) {
        if self.contains(id) {
            return;
        }
        if self.ids.len() >= DONE_LEN_MAX {
            self.ids.pop_front();
        }
        self.ids.push_back(id);
        assert!(self.ids.len() <= DONE_LEN_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_is_forgotten_beyond_the_bound_and_a_repeat_takes_no_room() {
        let mut done = DoneCommands::default();
        for id in 0..DONE_LEN_MAX as u64 {
            done.remember(CommandId(id));
            done.remember(CommandId(id));
        }
        assert!(done.contains(CommandId(0)), "repeats took no room");
        done.remember(CommandId(DONE_LEN_MAX as u64));
        assert!(!done.contains(CommandId(0)) && done.contains(CommandId(1)));
        assert!(done.contains(CommandId(DONE_LEN_MAX as u64)));
    }
}
