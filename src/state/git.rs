//! The state on a branch of a git remote (`backend "git" {}`), for a team
//! whose runners share no disk: docs/backends.md.
//!
//! What is stored where, on the remote `repo`:
//!
//! - **The state**: the file `path` (`cutover.state.json`) on the branch
//!   `branch` (`cutover-state`), exactly [`super::to_bytes`]. Every write is
//!   one commit whose message says what changed and who did it (`cutover
//!   apply: serial 4 -> 5 (router.public)`), so `git log` of the branch is
//!   the audit trail: one commit per apply that changed something (a
//!   journal is folded mid-apply only past 1 MiB, `stored_size`). Every write
//!   is a compare-and-swap: the branch is read, its state checked against
//!   the expected lineage and serial ([`check_expected`]), and the commit
//!   pushed with `--force-with-lease=refs/heads/BRANCH:<the tip read>`,
//!   which the receiving git checks under its ref lock. A push refused
//!   because the branch moved is read again: another run's state is a
//!   [`StateError::Conflict`]; a branch that moved for another reason (a
//!   commit that left the state alone) is written on top of, up to three
//!   times. A branch without the file is no state yet (`Ok(None)`): the
//!   first write adds the file to what the branch holds.
//! - **The lock**: the branch `BRANCH-lock` (a branch, so that every git
//!   host accepts it), created by a push that only succeeds when it does
//!   not exist (`--force-with-lease=refs/heads/BRANCH-lock:`, an empty
//!   expectation). Its commit holds `lock.json`, the holder's details
//!   ([`LockInfo`]), so a run that finds it taken names the holder, the
//!   lock's age and id. It is removed by a push that deletes it only while
//!   it is still this run's commit.
//! - **The journal** lives on the lock: each sync of the apply walk is a new
//!   commit on the lock branch (parent: this run's previous lock commit,
//!   pushed with a lease on it) holding `lock.json` and `journal`, the full
//!   text so far. So the journal costs no commit on the state branch, and a
//!   runner killed mid-apply leaves it where every other runner reads it. A
//!   lock whose journal was not folded is not removed when the run ends: it
//!   would take the journal with it. `cutover force-unlock ID` folds such a
//!   journal into the state and removes the lock in one atomic push
//!   (`--atomic`, both refs leased), and refuses, removing nothing, when
//!   the journal cannot be folded.
//! - **The pause** of an apply waiting for approval: the branch
//!   `BRANCH-approval`, whose tip holds `approval.json`, changed by
//!   compare-and-swap pushes of its own (state/git/approval.rs), never by a
//!   commit on the lock branch.
//!
//! The real git CLI does the work (plumbing in a scratch repository:
//! state/git/plumbing.rs), not gix: gix has no push, and the push with a
//! lease is the whole point. Using the operator's git also means that
//! their git configuration — credential helpers, `url.*.insteadOf` rules,
//! SSH setup, also given through the environment (`GIT_CONFIG_COUNT`, as
//! examples/ci does) — applies as it does for their own pushes; what a
//! checkout keeps in its own `.git/config` does not, since the scratch
//! repository is not that checkout.

mod approval;
mod branches;
mod held;
mod message;
mod plumbing;
mod remote;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::bail;

use super::approval::{ApproveError, Approved, Pause};
use super::backend::{check_expected, Backend, Lock, Stamp};
use super::lock::{LockError, LockInfo};
use super::model::State;
use super::StateError;
use crate::config::model::GitSettings;
use plumbing::{Git, Pushed, Update};
use remote::Remote;

/// The holder's details, in each commit of the lock branch.
const LOCK_FILE: &str = "lock.json";
/// The journal of the holder's apply, beside it.
const JOURNAL_FILE: &str = "journal";
/// How often a run waiting for the lock tries again.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How many times a push refused for another reason than a change of what
/// it leases is tried.
const PUSH_ATTEMPTS: usize = 3;
/// The journal's size from which it is folded mid-apply ([`Backend::stored_size`]).
const FOLD_FLOOR: u64 = 1 << 20;
/// Where the scratch repository keeps what it fetched.
const LOCAL_STATE: &str = "refs/cutover/state";
const LOCAL_LOCK: &str = "refs/cutover/lock";

/// The backend `settings` name; `dir`: the configuration directory, against
/// which a relative local `repo` is read. Nothing is run until the state
/// or the lock is used, so `validate` needs neither git nor the remote.
pub fn open(settings: &GitSettings, dir: &Path) -> anyhow::Result<Box<dyn Backend>> {
    let at = format!(
        "{}:{}:{}: backend \"git\"",
        settings.span.file.display(),
        settings.span.line,
        settings.span.column
    );
    if settings.repo.trim().is_empty() {
        bail!(
            "{at}: `repo` is empty; it names the remote as `git push` takes it (a URL or a path)"
        );
    }
    if let Some(problem) = plumbing::branch_problem(&settings.branch) {
        bail!(
            "{at}: `branch = {:?}` is not a branch name git accepts: {problem}",
            settings.branch
        );
    }
    if let Some(problem) = plumbing::path_problem(&settings.path) {
        bail!("{at}: `path = {:?}`: {problem}", settings.path);
    }
    Ok(Box::new(GitBackend {
        remote: Remote::new(&settings.repo, dir),
        branch: settings.branch.clone(),
        path: settings.path.clone(),
        scratch: Mutex::new(None),
        size: Mutex::new(None),
    }))
}

/// The scratch repository, one git command sequence at a time.
type Scratch = Arc<Mutex<Git>>;

/// The state on a branch of a git remote.
struct GitBackend {
    remote: Remote,
    branch: String,
    path: String,
    /// Made at first use; shared with the locks this backend gives out.
    scratch: Mutex<Option<Scratch>>,
    /// The size of the state last read or written.
    size: Mutex<Option<u64>>,
}

/// A mutex's value, also after a panic elsewhere (what it guards is never
/// left half-changed: a git command either ran or not).
fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Backend for GitBackend {
    fn kind(&self) -> &'static str {
        "git"
    }

    /// `git REPO BRANCH:PATH` ("the state git ... is locked"), with no
    /// password.
    fn describe(&self) -> String {
        format!("git {} {}:{}", self.remote.shown, self.branch, self.path)
    }

    /// `REPO BRANCH-lock:journal` ("the journal ... cannot be folded").
    fn journal_name(&self) -> String {
        format!("{} {}-lock:{JOURNAL_FILE}", self.remote.shown, self.branch)
    }

    fn read_state(&self) -> Result<Option<State>, StateError> {
        let scratch = self.scratch().map_err(|e| self.state_err(e))?;
        let stored = self
            .stored(&guard(&scratch))
            .map_err(|e| self.state_err(e))?;
        let state = self.parse(stored.bytes.as_deref())?;
        *guard(&self.size) = Some(stored.bytes.map_or(0, |b| b.len() as u64));
        Ok(state)
    }

    fn read_journal(&self) -> Result<Option<String>, StateError> {
        let scratch = self.scratch().map_err(|e| self.state_err(e))?;
        let lock = self
            .stored_lock(&guard(&scratch))
            .map_err(|e| self.state_err(e))?;
        Ok(lock
            .and_then(|l| l.journal)
            .map(|j| String::from_utf8_lossy(&j).into_owned()))
    }

    fn write_state(
        &self,
        lock: &Lock,
        expected: Option<&Stamp>,
        state: &State,
    ) -> Result<(), StateError> {
        let held = self.held(lock);
        let err = |e| self.state_err(e);
        let bytes = super::to_bytes(state);
        let git = guard(&held.scratch);
        let state_ref = self.state_ref();
        let mut refused = String::new();
        for _ in 0..PUSH_ATTEMPTS {
            let now = self.stored(&git).map_err(err)?;
            let stored = self.parse(now.bytes.as_deref())?;
            check_expected(&self.describe(), expected, stored.as_ref(), state)?;
            if now.bytes.as_deref() != Some(bytes.as_slice()) {
                let message = message::state_write(&held.info, stored.as_ref(), state);
                let commit = self
                    .state_commit(&git, now.tip.as_deref(), &bytes, &message, &held.info)
                    .map_err(err)?;
                let update = Update {
                    refname: &state_ref,
                    new: Some(&commit),
                    expect: now.tip.as_deref(),
                };
                if let Pushed::Rejected(reason) = git.push(&[update], false).map_err(err)? {
                    // Read again: another run's state is a conflict; a
                    // branch moved by a commit that left the state alone
                    // is written on top of.
                    refused = reason;
                    continue;
                }
            }
            *guard(&self.size) = Some(bytes.len() as u64);
            return Ok(());
        }
        Err(err(format!(
            "the push to {} was refused {PUSH_ATTEMPTS} times ({refused})",
            self.branch
        )))
    }

    /// At least [`FOLD_FLOOR`]: the journal is folded mid-apply only once
    /// it is that large. A fold rewrites the local file to keep the bytes
    /// written in line with the state's size; here the journal is pushed
    /// as a delta of its previous version, so a fold would save little and
    /// cost a commit on the state branch, which is to get one per apply.
    fn stored_size(&self) -> u64 {
        let known = *guard(&self.size);
        let size = known.unwrap_or_else(|| {
            // Unknown only before any read; a failed read is reported by
            // the next one that matters.
            let _ = self.read_state();
            guard(&self.size).unwrap_or(0)
        });
        size.max(FOLD_FLOOR)
    }

    fn append_journal(&self, lock: &Lock, bytes: &[u8], fresh: bool) -> Result<(), StateError> {
        let held = self.held(lock);
        let git = guard(&held.scratch);
        let mut text = if fresh {
            Vec::new()
        } else {
            guard(&held.now).journal.clone().unwrap_or_default()
        };
        text.extend_from_slice(bytes);
        self.move_lock(&git, held, Some(text), "journal")
            .map_err(|e| {
                self.state_err(format!(
                    "cannot write the journal to {}-lock: {e}",
                    self.branch
                ))
            })
    }

    fn discard_journal(&self, lock: &Lock) -> Result<(), StateError> {
        let held = self.held(lock);
        let git = guard(&held.scratch);
        if guard(&held.now).journal.is_none() {
            return Ok(());
        }
        self.move_lock(&git, held, None, "journal folded")
            .map_err(|e| {
                self.state_err(format!(
                    "cannot remove the folded journal from {}-lock: {e}",
                    self.branch
                ))
            })
    }

    /// The lock is still this run's: a push to the state branch then fails
    /// only if another run wrote it (a conflict, reported as such).
    fn check_writable(&self, lock: &Lock) -> Result<(), String> {
        let held = self.held(lock);
        let git = guard(&held.scratch);
        let tip = guard(&held.now).tip.clone();
        let lock_ref = self.lock_ref();
        let refs = git.ls_remote(&[&lock_ref])?;
        if refs.get(&lock_ref) == tip.as_ref() {
            Ok(())
        } else {
            Err(format!(
                "the lock {}-lock is no longer this run's: it was removed with force-unlock, or \
                 taken by another run since",
                self.branch
            ))
        }
    }

    /// A round trip: the lock branch is still this run's tip, so the remote
    /// answers and a write would be accepted.
    fn confirm(&self, lock: &Lock) -> Result<(), StateError> {
        super::backend::confirm_by_round_trip(self, lock)
    }

    fn lock(
        &self,
        operation: &str,
        timeout: Duration,
        waiting: &mut dyn FnMut(&LockInfo),
    ) -> Result<Lock, LockError> {
        let err = |e| self.lock_err(format!("cannot take the lock {}-lock: {e}", self.branch));
        let scratch = self.scratch().map_err(err)?;
        let mut info = LockInfo::ours(operation);
        let lock_ref = self.lock_ref();
        let deadline = Instant::now() + timeout;
        let mut told = false;
        // Whether the lock looked free (a push is tried only then), and how
        // often a push was refused while nobody held it.
        let mut free = true;
        let mut refused = 0;
        // The holder, and the lock commit it was read from: a waiting run
        // polls with one `ls-remote`, and reads the holder again only when
        // the lock changed hands.
        let mut seen: Option<(String, LockInfo)> = None;
        loop {
            let git = guard(&scratch);
            if free {
                // The lock says when it was taken, not when the wait began.
                info.created = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
                if let Some(lock) = self.try_lock(&git, &info).map_err(err)? {
                    return Ok(lock);
                }
            }
            let tip = git.ls_remote(&[&lock_ref]).map_err(err)?.remove(&lock_ref);
            let Some(tip) = tip else {
                // Released in between; or the push was refused for another
                // reason, which trying again does not change.
                if free {
                    refused += 1;
                    if refused == PUSH_ATTEMPTS {
                        return Err(err(
                            "the push was refused, and nobody holds the lock".to_owned()
                        ));
                    }
                }
                free = true;
                continue;
            };
            (free, refused) = (false, 0);
            if seen.as_ref().map(|(commit, _)| commit) != Some(&tip) {
                let Some(found) = self.stored_lock(&git).map_err(err)? else {
                    free = true;
                    continue;
                };
                let holder = self.holder_of(&found).map_err(err)?;
                seen = Some((found.tip, holder));
            }
            drop(git);
            let holder = &seen.as_ref().expect("read above").1;
            let now = Instant::now();
            if now >= deadline {
                return Err(LockError::Held {
                    state: self.describe(),
                    stale: holder.is_stale(),
                    holder: Box::new(holder.clone()),
                });
            }
            if !told {
                waiting(holder);
                told = true;
            }
            std::thread::sleep(POLL_INTERVAL.min(deadline - now));
        }
    }

    /// The branch `BRANCH-approval` (state/git/approval.rs).
    fn publish_pause(&self, lock: &Lock, pause: &Pause) -> Result<(), StateError> {
        self.publish(lock, pause)
    }

    fn read_pause(&self) -> Result<Option<Pause>, StateError> {
        self.pause()
    }

    fn approve(&self, routers: &[String], by: &str) -> Result<Approved, ApproveError> {
        self.approve_pause(routers, by)
    }

    fn clear_pause(&self, lock: &Lock) -> Result<(), StateError> {
        self.clear(lock)
    }

    fn read_lock(&self) -> Result<Option<LockInfo>, LockError> {
        let err = |e| self.lock_err(e);
        let scratch = self.scratch().map_err(err)?;
        let git = guard(&scratch);
        match self.stored_lock(&git).map_err(err)? {
            Some(found) => self.holder_of(&found).map(Some).map_err(err),
            None => Ok(None),
        }
    }

    /// Fold the journal the holder left (it lives on the lock, and would go
    /// with it) and remove the lock, in one atomic push.
    fn force_unlock(&self, id: &str) -> Result<LockInfo, LockError> {
        let err = |e| self.lock_err(e);
        let scratch = self.scratch().map_err(err)?;
        let git = guard(&scratch);
        let Some(found) = self.stored_lock(&git).map_err(err)? else {
            return Err(LockError::NotLocked {
                state: self.describe(),
            });
        };
        let holder = self.holder_of(&found).map_err(err)?;
        if holder.id != id {
            return Err(LockError::IdMismatch {
                state: self.describe(),
                given: id.to_owned(),
                actual: Box::new(holder),
            });
        }
        let by = LockInfo::ours("force-unlock");
        let fold = match &found.journal {
            Some(text) => self.forced_fold(&git, &by, &holder, text)?,
            None => None,
        };
        let (state_ref, lock_ref) = (self.state_ref(), self.lock_ref());
        let mut updates = Vec::new();
        if let Some((commit, tip)) = &fold {
            updates.push(Update {
                refname: &state_ref,
                new: Some(commit),
                expect: tip.as_deref(),
            });
        }
        updates.push(Update {
            refname: &lock_ref,
            new: None,
            expect: Some(&found.tip),
        });
        match self.push_together(&git, &updates).map_err(err)? {
            Pushed::Done => Ok(holder),
            Pushed::Rejected(reason) => Err(err(format!(
                "nothing was removed: the lock or the state changed while force-unlock ran (is \
                 its holder still running?): {reason}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
