//! Where a state lives: the [`Backend`] trait, and the local file, one of
//! its implementations (`pg` and `git` are the others, for a state shared by
//! a team: docs/backends.md).
//!
//! A backend stores four things and nothing more: the state (the same
//! deterministic JSON everywhere, [`super::to_bytes`]), the journal of the
//! apply that runs (state/journal.rs: its text, appended to), the lock,
//! with its holder's details, and the pause of an apply waiting for
//! approval (state/approval.rs), which an approver changes without the
//! lock, by a compare-and-swap of its own. Everything above — folding a journal a crash
//! left (state/open.rs), the journal's own rules, the refusal of a journal
//! that extends another state — is written once, against this trait, so
//! the crash-safety rules of DESIGN.md §4 hold for every backend alike.
//!
//! Every write of the state is a compare-and-swap: the caller names the
//! lineage and serial it read ([`Stamp`]), and the backend refuses the
//! write ([`StateError::Conflict`]) when what it holds is another. The lock
//! keeps cutover runs apart; the compare-and-swap catches what the lock
//! cannot (a lock broken with `force-unlock` while its holder still ran, a
//! PostgreSQL session cut off by the network).

use std::any::Any;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::approval::{self, ApproveError, Approved, Pause};
use super::lock::{self, LockError, LockInfo, StateLock};
use super::model::State;
use super::{files, from_file, journal, StateError};

/// The lineage and serial of a stored state: what a compare-and-swap write
/// expects to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The state's lineage.
    pub lineage: String,
    /// Its serial.
    pub serial: u64,
}

impl Stamp {
    /// The stamp of `state`.
    pub fn of(state: &State) -> Stamp {
        Stamp {
            lineage: state.lineage.clone(),
            serial: state.serial,
        }
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lineage {} serial {}", self.lineage, self.serial)
    }
}

/// Where a state is stored and how it is locked. Implementations do the
/// storage only; the rules live in the callers (see the module's
/// documentation). Every method that changes something takes the [`Lock`]
/// as proof that the caller holds it.
pub trait Backend: Send + Sync {
    /// The kind, as the configuration names it: `local`, `pg`, `git`.
    fn kind(&self) -> &'static str;
    /// The state in messages: a path for the local file, or where in the
    /// shared backend (`PostgreSQL state "prod" on db:5432/cutover`).
    fn describe(&self) -> String;
    /// The journal in messages.
    fn journal_name(&self) -> String;
    /// What to do once the state has changed, for messages ("commit the
    /// state file"), if anything.
    fn after_change(&self) -> Option<&'static str> {
        None
    }
    /// The stored state alone, without its journal (`None`: none yet).
    fn read_state(&self) -> Result<Option<State>, StateError>;
    /// The journal's text (`None`: there is none).
    fn read_journal(&self) -> Result<Option<String>, StateError>;
    /// Replace the stored state, which must be `expected` (`None`: there
    /// must be none), with `state`; unchanged bytes may be left as they are.
    fn write_state(
        &self,
        lock: &Lock,
        expected: Option<&Stamp>,
        state: &State,
    ) -> Result<(), StateError>;
    /// The size in bytes of the stored state (0: none): the journal is
    /// folded once it has grown as large.
    fn stored_size(&self) -> u64;
    /// Append `bytes` to the journal durably; `fresh`: they replace any
    /// journal there is (the first write of an apply).
    fn append_journal(&self, lock: &Lock, bytes: &[u8], fresh: bool) -> Result<(), StateError>;
    /// Remove the journal, if there is one.
    fn discard_journal(&self, lock: &Lock) -> Result<(), StateError>;
    /// Temporary files of interrupted writes (the local file's only).
    fn leftovers(&self) -> Result<Vec<PathBuf>, StateError> {
        Ok(Vec::new())
    }
    /// Remove [`Backend::leftovers`]; what was removed.
    fn remove_leftovers(&self, _lock: &Lock) -> Result<Vec<PathBuf>, StateError> {
        Ok(Vec::new())
    }
    /// Whether a state write would succeed now, checked before anything
    /// live changes (`Err`: why not).
    fn check_writable(&self, lock: &Lock) -> Result<(), String>;
    /// Whether the state can still be written, asked by the apply before
    /// each wave of steps that change something live, so that nothing live
    /// moves once it cannot (DESIGN.md §4). The local file: the lock's own
    /// word (no round trip). A shared backend that can lose its lock or its
    /// connection asks it ([`Backend::check_writable`]).
    fn confirm(&self, lock: &Lock) -> Result<(), StateError> {
        match lock.lost() {
            Some(why) => Err(StateError::Backend {
                state: self.describe(),
                message: why,
            }),
            None => Ok(()),
        }
    }
    /// Whether a stored state exists (`init`ed), without reading it whole
    /// where the backend can tell more cheaply.
    fn has_state(&self) -> Result<bool, StateError> {
        Ok(self.read_state()?.is_some())
    }
    /// Take the lock for `operation`, waiting up to `timeout` while another
    /// run holds it and calling `waiting` once, with the holder, when the
    /// wait begins.
    fn lock(
        &self,
        operation: &str,
        timeout: Duration,
        waiting: &mut dyn FnMut(&LockInfo),
    ) -> Result<Lock, LockError>;
    /// Who holds the lock, if anyone.
    fn read_lock(&self) -> Result<Option<LockInfo>, LockError>;
    /// Publish that the apply holding `lock` waits for approval (`pause`,
    /// whose `lock_id` must be `lock`'s), replacing any older pause
    /// (state/approval.rs). The default: a backend with no approval
    /// channel refuses.
    fn publish_pause(&self, _lock: &Lock, _pause: &Pause) -> Result<(), StateError> {
        Err(no_approvals(self))
    }
    /// The pause published, if any, with its approvals; anyone may read
    /// it, without the lock.
    fn read_pause(&self) -> Result<Option<Pause>, StateError> {
        Err(no_approvals(self))
    }
    /// Approve `routers` (none: every router the pause waits for) as
    /// `by`, without the lock: a compare-and-swap read-modify-write
    /// ([`approval::approve_with`]), refused as [`ApproveError`] says.
    fn approve(&self, _routers: &[String], _by: &str) -> Result<Approved, ApproveError> {
        Err(no_approvals(self).into())
    }
    /// Remove the pause, only if it is `lock`'s (the apply stops waiting:
    /// approved, timed out or stopped), before the lock is released.
    fn clear_pause(&self, _lock: &Lock) -> Result<(), StateError> {
        Err(no_approvals(self))
    }
    /// How often a waiting apply reads its pause again ([`approval::poll`]).
    fn approval_poll(&self) -> Duration {
        Duration::from_secs(1)
    }
    /// Remove the lock if its id is `id`; who held it. What the holder left
    /// (its journal) is not lost: the next command that opens the state
    /// folds it, or this call folds it first where the journal lives with
    /// the lock (git).
    fn force_unlock(&self, id: &str) -> Result<LockInfo, LockError>;
}

/// What a backend keeps of a lock it gave out.
pub trait Held: Send + Sync {
    /// Release the lock now (only if it is still ours).
    fn release(&mut self) -> Result<(), LockError>;
    /// Why the lock may no longer be ours (a PostgreSQL session that
    /// died), if the backend can tell.
    fn lost(&self) -> Option<String> {
        None
    }
    /// For the backend that made it.
    fn as_any(&self) -> &dyn Any;
}

/// A held lock, of any backend; dropping it releases it.
pub struct Lock {
    info: LockInfo,
    /// [`Backend::describe`] of the backend that gave it.
    owner: String,
    held: Option<Box<dyn Held>>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("info", &self.info)
            .field("owner", &self.owner)
            .finish()
    }
}

impl Lock {
    /// A lock `backend` gave out, held as `held`.
    pub fn new(backend: &dyn Backend, info: LockInfo, held: Box<dyn Held>) -> Lock {
        Lock {
            info,
            owner: backend.describe(),
            held: Some(held),
        }
    }

    /// Whether this is the lock of `backend`'s state.
    pub fn guards(&self, backend: &dyn Backend) -> bool {
        self.held.is_some() && self.owner == backend.describe()
    }

    /// Who holds it (us).
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The backend's own record of it.
    pub fn held(&self) -> &dyn Held {
        self.held.as_deref().expect("a Lock is held until released")
    }

    /// Why it may no longer be ours, if the backend can tell.
    pub fn lost(&self) -> Option<String> {
        self.held.as_ref().and_then(|h| h.lost())
    }

    /// Release it now, reporting failure (dropping ignores it).
    pub fn release(mut self) -> Result<(), LockError> {
        match self.held.take() {
            Some(mut held) => held.release(),
            None => Ok(()),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(mut held) = self.held.take() {
            let _ = held.release();
        }
    }
}

/// The local file: `cutover.state.json` beside the configuration, its
/// journal `<state>.journal`, its lock `<state>.lock` and the pause of an
/// apply waiting for approval `<state>.approval` beside it.
#[derive(Debug, Clone)]
pub struct LocalFile {
    path: PathBuf,
}

impl LocalFile {
    /// The state file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> LocalFile {
        LocalFile { path: path.into() }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn state_lock<'a>(&self, lock: &'a Lock) -> &'a StateLock {
        assert!(
            lock.guards(self),
            "a change of {} needs its lock",
            self.path.display()
        );
        lock.held()
            .as_any()
            .downcast_ref::<LocalHeld>()
            .and_then(|h| h.0.as_ref())
            .expect("the local file's lock is a StateLock")
    }
}

/// The local file's lock.
struct LocalHeld(Option<StateLock>);

impl Held for LocalHeld {
    fn release(&mut self) -> Result<(), LockError> {
        match self.0.take() {
            Some(lock) => lock.release(),
            None => Ok(()),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Backend for LocalFile {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn journal_name(&self) -> String {
        journal::path_for(&self.path).display().to_string()
    }

    fn after_change(&self) -> Option<&'static str> {
        Some("commit the state file")
    }

    fn read_state(&self) -> Result<Option<State>, StateError> {
        from_file(&self.path)
    }

    fn read_journal(&self) -> Result<Option<String>, StateError> {
        let path = journal::path_for(&self.path);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    fn write_state(
        &self,
        lock: &Lock,
        expected: Option<&Stamp>,
        state: &State,
    ) -> Result<(), StateError> {
        self.state_lock(lock);
        // Under the lock nobody else writes the file, so this compare and
        // the rename below are one step for every cutover run.
        super::save_if(&self.path, state, |existing| {
            let stored = existing
                .map(|bytes| super::from_bytes(&self.path, bytes))
                .transpose()?;
            check_expected(&self.describe(), expected, stored.as_ref(), state)
        })
    }

    fn has_state(&self) -> Result<bool, StateError> {
        Ok(self.path.exists())
    }

    fn stored_size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    fn append_journal(&self, lock: &Lock, bytes: &[u8], fresh: bool) -> Result<(), StateError> {
        self.state_lock(lock);
        journal::append_file(&self.path, bytes, fresh)
    }

    fn discard_journal(&self, lock: &Lock) -> Result<(), StateError> {
        self.state_lock(lock);
        journal::discard(&self.path)
    }

    /// The temporary files of interrupted writes, and a pause left by an
    /// apply that no longer holds the lock (state/approval/local.rs).
    fn leftovers(&self) -> Result<Vec<PathBuf>, StateError> {
        let mut found = files::leftovers(&self.path).map_err(|source| StateError::Read {
            path: files::dir_of(&self.path).to_owned(),
            source,
        })?;
        found.extend(approval::local::stale(&self.path));
        Ok(found)
    }

    fn remove_leftovers(&self, lock: &Lock) -> Result<Vec<PathBuf>, StateError> {
        approval::local::remove_leftovers(&self.path, self.state_lock(lock))
    }

    fn check_writable(&self, lock: &Lock) -> Result<(), String> {
        self.state_lock(lock);
        files::check_writable(&self.path).map_err(|e| e.to_string())
    }

    /// `<state>.approval`, beside the state.
    fn publish_pause(&self, lock: &Lock, pause: &Pause) -> Result<(), StateError> {
        let id = self.state_lock(lock).id();
        approval::check_own(self, lock, pause)?;
        approval::local::publish(&self.path, id, pause)
    }

    fn read_pause(&self) -> Result<Option<Pause>, StateError> {
        approval::local::read(&self.path)
    }

    fn approve(&self, routers: &[String], by: &str) -> Result<Approved, ApproveError> {
        approval::local::approve(&self.path, routers, by)
    }

    fn clear_pause(&self, lock: &Lock) -> Result<(), StateError> {
        approval::local::clear(&self.path, self.state_lock(lock).id())
    }

    fn approval_poll(&self) -> Duration {
        Duration::from_millis(250)
    }

    fn lock(
        &self,
        operation: &str,
        timeout: Duration,
        waiting: &mut dyn FnMut(&LockInfo),
    ) -> Result<Lock, LockError> {
        let lock = StateLock::acquire_telling(&self.path, operation, timeout, waiting)?;
        let info = lock.info().clone();
        Ok(Lock::new(self, info, Box::new(LocalHeld(Some(lock)))))
    }

    fn read_lock(&self) -> Result<Option<LockInfo>, LockError> {
        lock::read_lock(&self.path)
    }

    fn force_unlock(&self, id: &str) -> Result<LockInfo, LockError> {
        lock::force_unlock(&self.path, id)
    }
}

/// The refusal of a backend that keeps no approvals.
fn no_approvals<B: Backend + ?Sized>(backend: &B) -> StateError {
    StateError::Backend {
        state: backend.describe(),
        message: format!(
            "the {} backend keeps no approvals, so an apply cannot wait for one here",
            backend.kind()
        ),
    }
}

/// [`Backend::confirm`] by a round trip, for a backend that can lose its
/// lock or its connection: [`Backend::check_writable`].
pub fn confirm_by_round_trip(backend: &dyn Backend, lock: &Lock) -> Result<(), StateError> {
    backend
        .check_writable(lock)
        .map_err(|e| StateError::Backend {
            state: backend.describe(),
            message: format!("checked before anything live changes: {e}"),
        })
}

/// The compare of a compare-and-swap write: `stored` must be `expected`,
/// unless it already is exactly `state` (a write repeated after a crash
/// that came between it and what followed).
pub fn check_expected(
    name: &str,
    expected: Option<&Stamp>,
    stored: Option<&State>,
    state: &State,
) -> Result<(), StateError> {
    let found = stored.map(Stamp::of);
    if found.as_ref() == expected || stored == Some(state) {
        return Ok(());
    }
    Err(StateError::Conflict {
        state: name.to_owned(),
        expected: expected.cloned(),
        found,
    })
}

/// Take `backend`'s lock at once (no wait), as a command that holds it for
/// a moment does.
pub fn lock_now(backend: &dyn Backend, operation: &str) -> Result<Lock, LockError> {
    backend.lock(operation, Duration::ZERO, &mut |_| {})
}

/// The backend the configuration names (`cutover { backend "..." {} }`),
/// or the local file at `state_path`. `dir`: the configuration directory,
/// against which relative paths in the block are read.
pub fn configured(
    settings: &crate::config::model::Settings,
    dir: &Path,
    state_path: &Path,
) -> anyhow::Result<Box<dyn Backend>> {
    use crate::config::model::BackendSettings;
    Ok(match &settings.backend {
        None => Box::new(LocalFile::new(state_path)),
        Some(BackendSettings::Pg(pg)) => super::pg::open(pg, dir)?,
        Some(BackendSettings::Git(git)) => super::git::open(git, dir)?,
    })
}

#[cfg(test)]
#[path = "backend_tests.rs"]
mod tests;
