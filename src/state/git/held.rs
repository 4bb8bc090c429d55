//! The lock the git backend gives out: this run's last commit on the lock
//! branch, and the journal in it.

use std::any::Any;
use std::sync::Mutex;

use super::plumbing::{Pushed, Update};
use super::{guard, Scratch};
use crate::state::backend::Held;
use crate::state::lock::{LockError, LockInfo};

/// What a git lock holds: this run's last commit on the lock branch and the
/// journal in it.
pub(super) struct GitHeld {
    pub(super) scratch: Scratch,
    pub(super) lock_ref: String,
    /// The state as the backend describes it (`git REPO BRANCH:PATH`).
    pub(super) state: String,
    pub(super) info: LockInfo,
    pub(super) now: Mutex<HeldNow>,
}

pub(super) struct HeldNow {
    /// This run's last commit on the lock branch (`None`: released).
    pub(super) tip: Option<String>,
    /// The journal in it.
    pub(super) journal: Option<Vec<u8>>,
}

impl Held for GitHeld {
    fn release(&mut self) -> Result<(), LockError> {
        let err = |message: String| LockError::Backend {
            state: self.state.clone(),
            message,
        };
        let git = guard(&self.scratch);
        let mut now = guard(&self.now);
        let Some(tip) = now.tip.take() else {
            return Ok(());
        };
        if now.journal.is_some() {
            return Err(err(format!(
                "the lock stays: it holds this run's journal, which is not folded into the \
                 state yet; `cutover force-unlock {}` folds it",
                self.info.id
            )));
        }
        let update = Update {
            refname: &self.lock_ref,
            new: None,
            expect: Some(&tip),
        };
        match git.push(&[update], false).map_err(err)? {
            Pushed::Done => Ok(()),
            // No longer ours (force-unlocked, perhaps taken since): left
            // alone. Still ours: it stays, and the reason is said.
            Pushed::Rejected(reason) => match git.ls_remote(&[&self.lock_ref]) {
                Ok(refs) if refs.get(&self.lock_ref) == Some(&tip) => {
                    Err(err(format!("the lock could not be removed: {reason}")))
                }
                _ => Ok(()),
            },
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
