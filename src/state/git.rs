//! The state on a branch of a git remote (`backend "git" {}`), for a team
//! whose runners share no disk: docs/backends.md.
//!
//! What is stored where, on the remote `repo`:
//!
//! - **The state**: the file `path` (`cutover.state.json`) on the branch
//!   `branch` (`cutover-state`), exactly [`super::to_bytes`]. Every write is
//!   one commit whose message says what changed and who did it (`cutover
//!   apply: serial 4 -> 5 (router.public)`), so `git log` of the branch is
//!   the audit trail: one commit per apply that changed something (plus a
//!   rare mid-apply fold when the journal outgrows the state). Every write
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
//!
//! The real git CLI does the work (plumbing in a scratch repository:
//! state/git/plumbing.rs), not gix: gix has no push, and the push with a
//! lease is the whole point. Using the operator's git also means their
//! credentials, `insteadOf` rules and SSH setup apply as they do for their
//! own pushes.

mod message;
mod plumbing;
mod remote;

use std::any::Any;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::bail;

use super::backend::{check_expected, Backend, Held, Lock, Stamp};
use super::journal::{self, Found};
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

/// The state branch as read: its tip (`None`: no branch) and the file.
struct StoredState {
    tip: Option<String>,
    bytes: Option<Vec<u8>>,
}

/// The lock branch as read: its tip and its files.
struct StoredLock {
    tip: String,
    info: Option<Vec<u8>>,
    journal: Option<Vec<u8>>,
}

/// The tip of the remote's `refname`, fetched into `local` (`None`: there
/// is no such ref).
fn tip(git: &Git, refname: &str, local: &str) -> Result<Option<String>, String> {
    let refs = git.ls_remote(&[refname])?;
    let Some(sha) = refs.get(refname) else {
        return Ok(None);
    };
    if git.has_commit(sha) {
        return Ok(Some(sha.clone()));
    }
    match git.fetch(refname, local) {
        Ok(sha) => Ok(Some(sha)),
        // Deleted between the two (a lock released just now)?
        Err(e) if git.ls_remote(&[refname])?.contains_key(refname) => Err(e),
        Err(_) => Ok(None),
    }
}

/// A commit for the lock branch on `parent`: `holder`'s `lock.json`, and
/// `journal` when there is one; `what` for its message.
fn lock_commit(
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
    fn state_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    fn lock_ref(&self) -> String {
        format!("refs/heads/{}-lock", self.branch)
    }

    /// The state file in messages about its content.
    fn file_name(&self) -> String {
        format!("{} {}:{}", self.remote.shown, self.branch, self.path)
    }

    fn state_err(&self, message: String) -> StateError {
        StateError::Backend {
            state: self.describe(),
            message,
        }
    }

    fn lock_err(&self, message: String) -> LockError {
        LockError::Backend {
            state: self.describe(),
            message,
        }
    }

    /// The scratch repository, made now if it is not yet.
    fn scratch(&self) -> Result<Scratch, String> {
        let mut slot = guard(&self.scratch);
        if let Some(scratch) = &*slot {
            return Ok(scratch.clone());
        }
        let scratch = Arc::new(Mutex::new(Git::init(self.remote.clone())?));
        *slot = Some(scratch.clone());
        Ok(scratch)
    }

    fn stored(&self, git: &Git) -> Result<StoredState, String> {
        let tip = tip(git, &self.state_ref(), LOCAL_STATE)?;
        let bytes = match &tip {
            Some(commit) => git.files(commit, &[&self.path])?.pop().flatten(),
            None => None,
        };
        Ok(StoredState { tip, bytes })
    }

    fn parse(&self, bytes: Option<&[u8]>) -> Result<Option<State>, StateError> {
        let name = self.file_name();
        bytes
            .map(|b| super::from_bytes(Path::new(&name), b))
            .transpose()
    }

    fn stored_lock(&self, git: &Git) -> Result<Option<StoredLock>, String> {
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
    fn holder_of(&self, lock: &StoredLock) -> Result<LockInfo, String> {
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
    fn state_commit(
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
    fn held<'a>(&self, lock: &'a Lock) -> &'a GitHeld {
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
    fn move_lock(
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
                "the lock {}-lock is no longer this run's (removed with force-unlock, or taken \
                 by another run since), so the journal cannot be written to it ({reason})",
                self.branch
            )),
        }
    }

    /// The fold of the journal `text` the lost holder `holder` left, made
    /// by `by`: the commit and the state tip it goes on (`None`: nothing
    /// to fold).
    fn forced_fold(
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
                let bytes = super::to_bytes(&u.state);
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
    fn push_together(&self, git: &Git, updates: &[Update<'_>]) -> Result<Pushed, String> {
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
    fn try_lock(&self, git: &Git, info: &LockInfo) -> Result<Option<Lock>, String> {
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

    fn stored_size(&self) -> u64 {
        if let Some(size) = *guard(&self.size) {
            return size;
        }
        // Unknown only before any read; a failed read is reported by the
        // next one that matters.
        let _ = self.read_state();
        guard(&self.size).unwrap_or(0)
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
            .map_err(|e| self.state_err(e))
    }

    fn discard_journal(&self, lock: &Lock) -> Result<(), StateError> {
        let held = self.held(lock);
        let git = guard(&held.scratch);
        if guard(&held.now).journal.is_none() {
            return Ok(());
        }
        self.move_lock(&git, held, None, "journal folded")
            .map_err(|e| self.state_err(e))
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

    fn lock(
        &self,
        operation: &str,
        timeout: Duration,
        waiting: &mut dyn FnMut(&LockInfo),
    ) -> Result<Lock, LockError> {
        let err = |e| self.lock_err(e);
        let scratch = self.scratch().map_err(err)?;
        let mut info = LockInfo::ours(operation);
        let deadline = Instant::now() + timeout;
        let mut told = false;
        let mut vanished = 0;
        loop {
            let git = guard(&scratch);
            if let Some(lock) = self.try_lock(&git, &info).map_err(err)? {
                return Ok(lock);
            }
            let holder = match self.stored_lock(&git).map_err(err)? {
                Some(found) => self.holder_of(&found).map_err(err)?,
                // Released in between; or the push was refused for another
                // reason, which trying again does not change.
                None => {
                    vanished += 1;
                    if vanished == PUSH_ATTEMPTS {
                        return Err(err(format!(
                            "the lock branch {}-lock could not be created, and nobody holds it",
                            self.branch
                        )));
                    }
                    continue;
                }
            };
            drop(git);
            vanished = 0;
            let now = Instant::now();
            if now >= deadline {
                return Err(LockError::Held {
                    state: self.describe(),
                    stale: holder.is_stale(),
                    holder: Box::new(holder),
                });
            }
            if !told {
                waiting(&holder);
                told = true;
            }
            std::thread::sleep(POLL_INTERVAL.min(deadline - now));
            // The lock says when it was taken, not when the wait began.
            info.created = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        }
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

/// What a git lock holds: this run's last commit on the lock branch and the
/// journal in it.
struct GitHeld {
    scratch: Scratch,
    lock_ref: String,
    /// The backend's [`Backend::describe`], for errors.
    state: String,
    info: LockInfo,
    now: Mutex<HeldNow>,
}

struct HeldNow {
    /// This run's last commit on the lock branch (`None`: released).
    tip: Option<String>,
    /// The journal in it.
    journal: Option<Vec<u8>>,
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

#[cfg(test)]
mod tests;
