//! Reading and writing the two branches of the git backend: the state
//! branch and the lock branch (see the parent module for what they hold),
//! each read as its tip and files, each written as one new commit pushed
//! with a lease on the tip read.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::held::{GitHeld, HeldNow};
use super::plumbing::{Git, Pushed, Update};
use super::{
    guard, message, GitBackend, Scratch, JOURNAL_FILE, LOCAL_LOCK, LOCAL_STATE, LOCK_FILE,
};
use crate::state::backend::{Backend, Lock};
use crate::state::journal::{self, Found};
use crate::state::lock::{LockError, LockInfo};
use crate::state::model::State;
use crate::state::StateError;

/// The state branch as read: its tip (`None`: no branch) and the file.
pub(super) struct StoredState {
    pub(super) tip: Option<String>,
    pub(super) bytes: Option<Vec<u8>>,
}

/// The lock branch as read: its tip and its files.
pub(super) struct StoredLock {
    pub(super) tip: String,
    pub(super) info: Option<Vec<u8>>,
    pub(super) journal: Option<Vec<u8>>,
}

/// The tip of the remote's `refname`, fetched into `local` (`None`: there
/// is no such ref).
pub(super) fn tip(git: &Git, refname: &str, local: &str) -> Result<Option<String>, String> {
    let mut last_error = String::new();
    // A lock changes hands between the listing and the fetch when runners
    // queue for it (released, then taken by the next): look again.
    for _ in 0..TIP_ATTEMPTS {
        let refs = git.ls_remote(&[refname])?;
        let Some(sha) = refs.get(refname) else {
            return Ok(None);
        };
        if git.has_commit(sha) {
            return Ok(Some(sha.clone()));
        }
        match git.fetch(refname, local) {
            Ok(sha) => return Ok(Some(sha)),
            Err(e) => match git.ls_remote(&[refname])?.get(refname) {
                // Deleted between the two (a lock released just now).
                None => return Ok(None),
                // Still the same: the fetch itself failed.
                Some(now) if now == sha => return Err(e),
                // Moved on (taken again since): look again.
                Some(_) => last_error = e,
            },
        }
    }
    Err(format!(
        "{refname} kept moving while it was read ({TIP_ATTEMPTS} times): {last_error}"
    ))
}

/// How often [`tip`] looks again at a ref that moves while it is read.
const TIP_ATTEMPTS: usize = 5;

/// A commit for the lock branch on `parent`: `holder`'s `lock.json`, and
/// `journal` when there is one; `what` for its message.
pub(super) fn lock_commit(
    git: &Git,
    holder: &LockInfo,
    parent: Option<&str>,
    journal: Option<&[u8]>,
    what: &str,
) -> Result<String, String> {
    let mut json = serde_json::to_vec_pretty(holder).expect("a LockInfo always serializes");
    json.push(b'\n');
    let mut files = vec![(LOCK_FILE, git.blob(&json)?)];
    if let Some(journal) = journal {
        files.push((JOURNAL_FILE, git.blob(journal)?));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let tree = git.flat_tree(&files)?;
    git.commit(
        &tree,
        parent,
        &message::lock_commit(holder, what),
        &message::who(holder),
    )
}

impl GitBackend {
    pub(super) fn state_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    pub(super) fn lock_ref(&self) -> String {
        format!("refs/heads/{}-lock", self.branch)
    }

    /// The state file in messages about its content.
    pub(super) fn file_name(&self) -> String {
        format!("{} {}:{}", self.remote.shown, self.branch, self.path)
    }

    pub(super) fn state_err(&self, message: String) -> StateError {
        StateError::Backend {
            state: self.describe(),
            message,
        }
    }

    pub(super) fn lock_err(&self, message: String) -> LockError {
        LockError::Backend {
            state: self.describe(),
            message,
        }
    }

    /// The scratch repository, made now if it is not yet.
    pub(super) fn scratch(&self) -> Result<Scratch, String> {
        let mut slot = guard(&self.scratch);
        if let Some(scratch) = &*slot {
            return Ok(scratch.clone());
        }
        let scratch = Arc::new(Mutex::new(Git::init(self.remote.clone())?));
        *slot = Some(scratch.clone());
        Ok(scratch)
    }

    pub(super) fn stored(&self, git: &Git) -> Result<StoredState, String> {
        let tip = tip(git, &self.state_ref(), LOCAL_STATE)?;
        let bytes = match &tip {
            Some(commit) => git.files(commit, &[&self.path])?.pop().flatten(),
            None => None,
        };
        Ok(StoredState { tip, bytes })
    }

    pub(super) fn parse(&self, bytes: Option<&[u8]>) -> Result<Option<State>, StateError> {
        let name = self.file_name();
        bytes
            .map(|b| crate::state::from_bytes(Path::new(&name), b))
            .transpose()
    }

    pub(super) fn stored_lock(&self, git: &Git) -> Result<Option<StoredLock>, String> {
        let Some(tip) = tip(git, &self.lock_ref(), LOCAL_LOCK)? else {
            return Ok(None);
        };
        let mut files = git.files(&tip, &[LOCK_FILE, JOURNAL_FILE])?.into_iter();
        Ok(Some(StoredLock {
            tip,
            info: files.next().flatten(),
            journal: files.next().flatten(),
        }))
    }

    /// Who holds `lock`, from its `lock.json`.
    pub(super) fn holder_of(&self, lock: &StoredLock) -> Result<LockInfo, String> {
        let problem = match &lock.info {
            Some(bytes) => match serde_json::from_slice(bytes) {
                Ok(info) => return Ok(info),
                Err(e) => format!("its {LOCK_FILE} cannot be read ({e})"),
            },
            None => format!("it has no {LOCK_FILE}"),
        };
        Err(format!(
            "the lock branch {}-lock exists but does not say who holds it: {problem}; if no \
             cutover run uses this state, delete it: git push {} --delete {}-lock",
            self.branch, self.remote.shown, self.branch
        ))
    }

    /// A commit of the state branch on `parent` whose file is `bytes`.
    pub(super) fn state_commit(
        &self,
        git: &Git,
        parent: Option<&str>,
        bytes: &[u8],
        message: &str,
        by: &LockInfo,
    ) -> Result<String, String> {
        let blob = git.blob(bytes)?;
        let tree = git.tree_with(parent, &self.path, &blob)?;
        git.commit(&tree, parent, message, &message::who(by))
    }

    /// What `lock` holds of this backend.
    pub(super) fn held<'a>(&self, lock: &'a Lock) -> &'a GitHeld {
        assert!(
            lock.guards(self),
            "a change of {} needs its lock",
            self.describe()
        );
        lock.held()
            .as_any()
            .downcast_ref::<GitHeld>()
            .expect("the git backend's lock is a GitHeld")
    }

    /// Push a new commit on this run's lock holding `journal` (`None`:
    /// none); `what` for its message.
    pub(super) fn move_lock(
        &self,
        git: &Git,
        held: &GitHeld,
        journal: Option<Vec<u8>>,
        what: &str,
    ) -> Result<(), String> {
        let mut now = guard(&held.now);
        let Some(tip) = now.tip.clone() else {
            return Err("the lock was released already".to_owned());
        };
        let commit = lock_commit(git, &held.info, Some(&tip), journal.as_deref(), what)?;
        let lock_ref = self.lock_ref();
        let update = Update {
            refname: &lock_ref,
            new: Some(&commit),
            expect: Some(&tip),
        };
        match git.push(&[update], false)? {
            Pushed::Done => {
                now.tip = Some(commit);
                now.journal = journal;
                Ok(())
            }
            Pushed::Rejected(reason) => Err(format!(
                "the lock is no longer this run's (removed with force-unlock, or taken by \
                 another run since): {reason}"
            )),
        }
    }

    /// The fold of the journal `text` the lost holder `holder` left, made
    /// by `by`: the commit and the state tip it goes on (`None`: nothing
    /// to fold).
    pub(super) fn forced_fold(
        &self,
        git: &Git,
        by: &LockInfo,
        holder: &LockInfo,
        text: &[u8],
    ) -> Result<Option<(String, Option<String>)>, LockError> {
        let now = self.stored(git).map_err(|e| self.lock_err(e))?;
        let stored = self
            .parse(now.bytes.as_deref())
            .map_err(|e| self.lock_err(format!("{e}; the lock was not removed")))?;
        match journal::compare(&String::from_utf8_lossy(text), stored.as_ref()) {
            Found::Unfolded(u) => {
                let Some(before) = &stored else {
                    return Ok(None);
                };
                let message = message::forced_fold(by, holder, before, &u.state);
                let bytes = crate::state::to_bytes(&u.state);
                let commit = self
                    .state_commit(git, now.tip.as_deref(), &bytes, &message, by)
                    .map_err(|e| self.lock_err(e))?;
                Ok(Some((commit, now.tip)))
            }
            Found::Unusable(problem) => Err(self.lock_err(format!(
                "the lock was not removed: it holds the journal of {} ({}), which cannot be \
                 folded into the state: {problem}. Once the state holds what it did, drop the \
                 journal with the lock by hand: git push {} --delete {}-lock",
                holder.describe(),
                self.journal_name(),
                self.remote.shown,
                self.branch
            ))),
            Found::Absent | Found::Empty | Found::AlreadyFolded => Ok(None),
        }
    }

    /// Push `updates` all or none; with a remote that cannot push
    /// atomically, one after the other (the state first).
    pub(super) fn push_together(
        &self,
        git: &Git,
        updates: &[Update<'_>],
    ) -> Result<Pushed, String> {
        match git.push(updates, updates.len() > 1) {
            Err(e) if updates.len() > 1 && e.contains("atomic") => {
                for update in updates {
                    if let Pushed::Rejected(reason) = git.push(&[*update], false)? {
                        return Ok(Pushed::Rejected(reason));
                    }
                }
                Ok(Pushed::Done)
            }
            other => other,
        }
    }

    /// Take the lock with one push of `info`; `Ok(None)`: someone holds it.
    pub(super) fn try_lock(&self, git: &Git, info: &LockInfo) -> Result<Option<Lock>, String> {
        let commit = lock_commit(git, info, None, None, "lock")?;
        let lock_ref = self.lock_ref();
        let update = Update {
            refname: &lock_ref,
            new: Some(&commit),
            expect: None,
        };
        match git.push(&[update], false)? {
            Pushed::Done => {
                let held = GitHeld {
                    scratch: self.scratch()?,
                    lock_ref,
                    state: self.describe(),
                    info: info.clone(),
                    now: Mutex::new(HeldNow {
                        tip: Some(commit),
                        journal: None,
                    }),
                };
                Ok(Some(Lock::new(self, info.clone(), Box::new(held))))
            }
            Pushed::Rejected(_) => Ok(None),
        }
    }
}
