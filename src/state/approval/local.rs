//! The local file's approval channel: `<state>.approval` beside the state
//! (and beside its lock file), the [`Pause`] as JSON, replaced atomically
//! as the state is ([`files::write_atomically`], with temporary files of its
//! own name, `.cutover-approval-<state>.XXXXXX.tmp`).
//!
//! The waiting apply holds the state lock, so an approver cannot take it.
//! What keeps the writers of the file apart instead is an exclusive `flock`
//! on the lock file, `<state>.lock`, taken for the moment of each change:
//! the apply's publish and clear, and an approver's read-modify-write. The
//! lock file exists exactly while a run holds the state lock, and a new
//! lock is a new file: a writer that finds, once it has the `flock`, that
//! the path names another file than the one it opened looks again. So two
//! approvers are serialised on the lock file of the apply they approve,
//! and both land; and an approval can only be written while the lock it
//! names is held. The pause is only ever removed by the apply that
//! published it (same lock id), or, once that apply no longer holds the
//! lock, as a leftover by the next run that does ([`remove_leftovers`]).

use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{approve_with, ApproveError, Approved, Pause};
use crate::state::lock::{lock_path, read_lock_settled, StateLock};
use crate::state::{files, StateError};

/// The longest a writer waits for another's `flock` (each holds it for one
/// small write).
const FLOCK_WAIT: Duration = Duration::from_secs(10);
/// How often it looks again meanwhile.
const FLOCK_POLL: Duration = Duration::from_millis(5);

/// The approval file of the state at `state`: `<state>.approval`.
pub(crate) fn path_for(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".approval");
    PathBuf::from(name)
}

/// An exclusive `flock` on the lock file as it is now; released when
/// dropped (the file is closed).
pub(crate) struct Flocked {
    _file: File,
}

/// Take the `flock` on the state's lock file; `None`: there is none
/// (nobody holds the state lock).
fn flock(state: &Path) -> Result<Option<Flocked>, StateError> {
    let path = lock_path(state);
    let read_error = |source| StateError::Read {
        path: path.clone(),
        source,
    };
    let deadline = Instant::now() + FLOCK_WAIT;
    loop {
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_error(e)),
        };
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(FLOCK_POLL)
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(read_error(io::Error::other(format!(
                        "another cutover kept it locked for {}s while changing the approval \
                         file; try again",
                        FLOCK_WAIT.as_secs()
                    ))))
                }
                Err(TryLockError::Error(e)) => return Err(read_error(e)),
            }
        }
        // Released and taken again between the open and the flock: the
        // path names a new file, whose flock this is not.
        let ours = file.metadata().map_err(read_error)?;
        match fs::metadata(&path) {
            Ok(now) if (now.dev(), now.ino()) == (ours.dev(), ours.ino()) => {
                return Ok(Some(Flocked { _file: file }))
            }
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_error(e)),
        }
    }
}

/// The pause published beside the state at `state`, if any.
pub(crate) fn read(state: &Path) -> Result<Option<Pause>, StateError> {
    let path = path_for(state);
    match fs::read(&path) {
        Ok(bytes) => Pause::from_bytes(&path.display().to_string(), &bytes).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read { path, source }),
    }
}

fn write(state: &Path, pause: &Pause) -> Result<(), StateError> {
    let path = path_for(state);
    let prefix = files::approval_temp_prefix(state);
    files::write_atomically(&path, &pause.to_bytes(), &prefix, 0o644)
        .map_err(|source| StateError::Write { path, source })
}

fn lost(state: &Path, what: &str) -> StateError {
    StateError::Backend {
        state: state.display().to_string(),
        message: format!(
            "this run's lock {} was removed (force-unlock?) or taken by another run: {what}",
            lock_path(state).display()
        ),
    }
}

/// Publish `pause` for the holder of the lock `lock_id`.
pub(crate) fn publish(state: &Path, lock_id: &str, pause: &Pause) -> Result<(), StateError> {
    let Some(guard) = flock(state)? else {
        return Err(lost(state, "nothing was published"));
    };
    let holder = read_lock_settled(state).map_err(|e| lost(state, &e.to_string()))?;
    if holder.is_none_or(|h| h.id != lock_id) {
        return Err(lost(state, "nothing was published"));
    }
    write(state, pause)?;
    drop(guard);
    Ok(())
}

/// Remove the pause if it is the lock `lock_id`'s.
pub(crate) fn clear(state: &Path, lock_id: &str) -> Result<(), StateError> {
    // Without a lock file (ours was removed), no approver writes the file:
    // each refuses a pause whose lock is not held.
    let guard = flock(state)?;
    let removed = remove_if(state, |pause| pause.lock_id == lock_id);
    drop(guard);
    removed.map(|_| ())
}

/// Remove the pause if `whose` says so; whether it did.
fn remove_if(state: &Path, whose: impl FnOnce(&Pause) -> bool) -> Result<bool, StateError> {
    let path = path_for(state);
    match read(state)? {
        Some(pause) if whose(&pause) => match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StateError::Write { path, source }),
        },
        _ => Ok(false),
    }
}

/// `cutover approve` of the state at `state`.
pub(crate) fn approve(
    state: &Path,
    routers: &[String],
    by: &str,
) -> Result<Approved, ApproveError> {
    let name = state.display().to_string();
    approve_with(
        &name,
        routers,
        by,
        || {
            let guard = flock(state)?;
            Ok((read(state)?, guard))
        },
        || Ok(read_lock_settled(state)?),
        |guard, approved| {
            // A lock file that appeared after the read: read again.
            let Some(guard) = guard else {
                return Ok(false);
            };
            write(state, &approved.pause)?;
            drop(guard);
            Ok(true)
        },
    )
}

/// The approval file, when it is a pause left by an apply that no longer
/// holds the lock (a leftover); a pause that cannot be read, or whose
/// holder cannot be told, is left alone.
pub(crate) fn stale(state: &Path) -> Option<PathBuf> {
    let pause = read(state).ok()??;
    match read_lock_settled(state) {
        Ok(Some(holder)) if holder.id == pause.lock_id => None,
        Ok(_) => Some(path_for(state)),
        Err(_) => None,
    }
}

/// Remove the leftovers beside the state ([`files::remove_leftovers`]) and
/// the pause if it is not the caller's (`lock`, held): under the `flock`,
/// so that no approval of the caller's own pause is in flight, and no
/// approver writes another's (each refuses a pause whose lock is not
/// held). What was removed.
pub(crate) fn remove_leftovers(state: &Path, lock: &StateLock) -> Result<Vec<PathBuf>, StateError> {
    let guard = flock(state)?;
    let mut removed = files::remove_leftovers(state, lock).map_err(|source| StateError::Write {
        path: state.to_owned(),
        source,
    })?;
    if remove_if(state, |pause| pause.lock_id != lock.id())? {
        removed.push(path_for(state));
    }
    drop(guard);
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::state::backend::{lock_now, Backend, LocalFile};
    use crate::state::files::tests::names_in;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| r.to_string()).collect()
    }

    fn minute() -> SystemTime {
        SystemTime::now() + Duration::from_secs(60)
    }

    /// A state in a new directory, and an apply holding its lock that has
    /// published its pause for `routers`.
    struct Waiting {
        dir: tempfile::TempDir,
        state: PathBuf,
        backend: LocalFile,
        lock: crate::state::backend::Lock,
        pause: Pause,
    }

    fn waiting(file_name: &str, routers: &[&str]) -> Waiting {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(file_name);
        let backend = LocalFile::new(&state);
        let lock = lock_now(&backend, "apply").unwrap();
        let pause = Pause::new(&lock, names(routers), minute());
        backend.publish_pause(&lock, &pause).unwrap();
        Waiting {
            dir,
            state,
            backend,
            lock,
            pause,
        }
    }

    #[test]
    fn the_pause_is_a_file_beside_the_state_replaced_atomically_and_removed_by_clear() {
        let Waiting {
            dir,
            state,
            backend: apply,
            lock,
            pause,
        } = waiting("cutover.state.json", &["public", "admin"]);
        let file = dir.path().join("cutover.state.json.approval");
        assert_eq!(fs::read(&file).unwrap(), pause.to_bytes());
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o644);
        let inode = fs::metadata(&file).unwrap().ino();

        // Another process's view: the same path, no lock.
        let approver = LocalFile::new(&state);
        let approved = approver.approve(&names(&["public"]), "bob@laptop").unwrap();
        assert_eq!(approved.now, names(&["public"]));
        assert_ne!(
            fs::metadata(&file).unwrap().ino(),
            inode,
            "renamed into place"
        );
        assert_eq!(
            names_in(dir.path()),
            ["cutover.state.json.approval", "cutover.state.json.lock"],
            "no temporary file left"
        );
        let seen = crate::state::approval::poll(&apply, &lock, &pause).unwrap();
        assert_eq!(seen.awaiting(), ["admin"]);
        assert_eq!(apply.leftovers().unwrap(), [] as [PathBuf; 0], "in use");

        apply.clear_pause(&lock).unwrap();
        assert_eq!(names_in(dir.path()), ["cutover.state.json.lock"]);
        assert!(matches!(
            approver.approve(&[], "bob").unwrap_err(),
            ApproveError::NotWaiting {
                holder: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn a_pause_left_behind_is_a_leftover_refused_to_approvers_and_removed_by_the_next_run() {
        let Waiting {
            dir,
            state,
            backend,
            lock,
            pause,
        } = waiting("s.json", &["public"]);
        // The lock released without the pause cleared.
        lock.release().unwrap();
        let file = path_for(&state);
        assert_eq!(backend.leftovers().unwrap(), std::slice::from_ref(&file));
        let err = backend.approve(&[], "bob").unwrap_err();
        assert!(
            matches!(err, ApproveError::Stale { holder: None, .. }),
            "{err:?}"
        );
        assert_eq!(read(&state).unwrap(), Some(pause), "nothing approved");

        // A temporary file of an approval killed mid-write is one too.
        let temp = dir.path().join(".cutover-approval-s.json.aB3xYz.tmp");
        fs::write(&temp, "{").unwrap();
        let mut want = vec![temp, file];
        want.sort();
        let mut found = backend.leftovers().unwrap();
        found.sort();
        assert_eq!(found, want);

        let next = lock_now(&backend, "apply").unwrap();
        let mut removed = backend.remove_leftovers(&next).unwrap();
        removed.sort();
        assert_eq!(removed, want);
        assert_eq!(names_in(dir.path()), ["s.json.lock"]);
    }

    #[test]
    fn clear_and_leftover_removal_leave_another_run_s_pause_alone() {
        let Waiting {
            dir: _dir,
            state,
            backend,
            lock,
            pause,
        } = waiting("s.json", &["public"]);
        // Not the apply's own: the same run's clear of another lock id.
        let mut other = pause.clone();
        other.lock_id = "another".into();
        fs::write(path_for(&state), other.to_bytes()).unwrap();
        backend.clear_pause(&lock).unwrap();
        assert_eq!(read(&state).unwrap(), Some(other.clone()), "not removed");
        // While the pause is its holder's, the holder's leftovers removal
        // keeps it.
        fs::write(path_for(&state), pause.to_bytes()).unwrap();
        assert!(backend.remove_leftovers(&lock).unwrap().is_empty());
        assert_eq!(read(&state).unwrap(), Some(pause));
    }

    #[test]
    fn an_apply_killed_while_it_waited_is_gone_and_its_pause_never_approved() {
        let Waiting {
            dir: _dir,
            state,
            backend,
            lock,
            pause: _,
        } = waiting("s.json", &["public"]);
        // SIGKILL: the lock file stays, naming a process that is gone.
        let mut info = lock.info().clone();
        info.pid = u32::MAX;
        std::mem::forget(lock);
        fs::write(lock_path(&state), serde_json::to_vec(&info).unwrap()).unwrap();
        let err = backend.approve(&[], "bob").unwrap_err();
        assert!(matches!(err, ApproveError::Gone { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("cutover force-unlock {}", info.id)),
            "{err}"
        );
        assert!(read(&state).unwrap().unwrap().approved.is_empty());
        assert!(
            backend.leftovers().unwrap().is_empty(),
            "its lock is still there"
        );
    }

    #[test]
    fn approvers_on_threads_of_their_own_all_land() {
        let routers = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let Waiting {
            state,
            backend,
            lock,
            pause,
            dir: _dir,
        } = waiting("s.json", &routers);
        let threads: Vec<_> = routers
            .into_iter()
            .map(|r| {
                let approver = LocalFile::new(&state);
                std::thread::spawn(move || approver.approve(&names(&[r]), r).unwrap().now)
            })
            .collect();
        for (t, r) in threads.into_iter().zip(routers) {
            assert_eq!(t.join().unwrap(), names(&[r]));
        }
        let seen = crate::state::approval::poll(&backend, &lock, &pause).unwrap();
        assert!(seen.is_approved(), "{seen:?}");
        for r in routers {
            assert_eq!(seen.approved[r].by, r);
        }
    }

    #[test]
    fn a_run_whose_lock_was_removed_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let backend = LocalFile::new(&state);
        let lock = lock_now(&backend, "apply").unwrap();
        backend.force_unlock(&lock.info().id).unwrap();
        let err = backend
            .publish_pause(&lock, &Pause::new(&lock, names(&["a"]), minute()))
            .unwrap_err();
        assert!(err.to_string().contains("nothing was published"), "{err}");
        // Taken by another run since: still nothing.
        let _other = lock_now(&backend, "apply").unwrap();
        assert!(backend
            .publish_pause(&lock, &Pause::new(&lock, names(&["a"]), minute()))
            .is_err());
        assert_eq!(read(&state).unwrap(), None);
    }
}
