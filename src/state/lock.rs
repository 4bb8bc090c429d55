//! The state lock: one cutover run at a time changes a state.
//!
//! Two applies on the same state would both switch routers and both write the
//! state, each from a plan that ignores the other. The lock is a file next to
//! the state, `<state>.lock` (not committed), created with `O_EXCL` so that
//! exactly one run can hold it. It records who holds it, so that the run that
//! has to wait, or fail, can name the holder; and when the holder's process is
//! gone from this host, the error says the lock is stale and how to remove it
//! (`cutover force-unlock ID`). A lock is never broken automatically: the
//! holder might be on another host, or its process id reused.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How often a waiting run looks at the lock again.
const POLL_INTERVAL: Duration = Duration::from_millis(150);

/// Who holds a lock: the content of the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The lock's id, given to `cutover force-unlock`.
    pub id: String,
    /// The holder's process id.
    pub pid: u32,
    /// The holder's host name.
    pub host: String,
    /// The holder's user name.
    pub user: String,
    /// What the holder is doing (`apply`, `rollback`, ...).
    pub operation: String,
    /// When the lock was taken, RFC 3339 in UTC.
    pub created: String,
    /// The holder's command line.
    pub command: Vec<String>,
}

impl LockInfo {
    /// A new lock's details, for this process doing `operation`.
    pub fn ours(operation: &str) -> LockInfo {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            pid: std::process::id(),
            host: hostname(),
            user: username(),
            operation: operation.to_owned(),
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            command: recorded_command(
                std::env::args_os().map(|a| a.to_string_lossy().into_owned()),
            ),
        }
    }

    /// How long ago the lock was taken, if its time can be read.
    pub fn age(&self) -> Option<Duration> {
        let created = humantime::parse_rfc3339(&self.created).ok()?;
        SystemTime::now().duration_since(created).ok()
    }

    /// Whether the holder is known to be gone: it ran on this host and its
    /// process no longer exists. A holder on another host is never stale by
    /// this test.
    pub fn is_stale(&self) -> bool {
        // A killed holder not yet reaped by its parent is a zombie: gone too.
        let alive = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|stat| {
                let state = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .next()?
                    .to_string();
                Some(state != "Z" && state != "X")
            })
            .unwrap_or(false);
        self.host == hostname() && !alive
    }
}

/// Why a lock could not be taken, read or removed.
#[derive(Debug, Error)]
pub enum LockError {
    /// Another run holds the lock and did not release it in time.
    #[error("{}", held_message(state, holder, *stale))]
    Held {
        /// The state, as its backend names it.
        state: String,
        /// Who holds the lock.
        holder: Box<LockInfo>,
        /// Whether the holder's process is gone (same host, pid not running).
        stale: bool,
    },
    /// The lock file exists but does not say who holds it.
    #[error(
        "the lock file {} exists but cannot be understood ({source}); if no cutover run is \
         using this state, delete the file",
        path.display()
    )]
    Unreadable {
        /// The lock file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// `force-unlock` was given an id that is not the lock's.
    #[error(
        "the lock on {state} has id {}, not {given}; nothing was removed (it is held by {})",
        actual.id, holder_line(actual)
    )]
    IdMismatch {
        /// The state, as its backend names it.
        state: String,
        /// The id given.
        given: String,
        /// The lock as it is.
        actual: Box<LockInfo>,
    },
    /// `force-unlock` found no lock.
    #[error("{} is not locked", super::named(state))]
    NotLocked {
        /// The state, as its backend names it.
        state: String,
    },
    /// A shared backend could not take, read or remove the lock.
    #[error("{state}: {message}")]
    Backend {
        /// The state, as its backend names it.
        state: String,
        /// What failed, and why.
        message: String,
    },
    /// The lock file could not be created, read or removed.
    #[error("failed to {action} lock file {}", path.display())]
    Io {
        /// What was being done: `create`, `read`, `remove`.
        action: &'static str,
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl LockInfo {
    /// The holder in a few words: `alice@build-01 pid 4242`.
    pub fn who(&self) -> String {
        format!("{}@{} pid {}", self.user, self.host, self.pid)
    }

    /// The holder in one phrase: "an apply (pid 4242 on host build-01, since
    /// 2024-05-01T12:34:56Z)".
    pub fn describe(&self) -> String {
        let article = match self.operation.chars().next() {
            Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
            _ => "a",
        };
        format!(
            "{article} {} (pid {} on host {}, since {})",
            self.operation, self.pid, self.host, self.created
        )
    }
}

fn holder_line(info: &LockInfo) -> String {
    // The age too: a lock taken hours ago by a runner on another host
    // (where staleness cannot be checked) is most likely left over.
    let age = info.age().map_or(String::new(), |age| {
        let age = Duration::from_secs(age.as_secs());
        format!(" ({} ago)", humantime::format_duration(age))
    });
    format!(
        "pid {} ({}@{}), running `{}`, since {}{age}",
        info.pid, info.user, info.host, info.operation, info.created
    )
}

fn held_message(state: &str, holder: &LockInfo, stale: bool) -> String {
    let mut msg = format!(
        "{} is locked by another cutover run\n  \
         held by: {}\n  command: {}\n  lock id: {}\n",
        super::named(state),
        holder_line(holder),
        holder.command.join(" "),
        holder.id
    );
    if stale {
        msg.push_str(&format!(
            "The holder process ({} on this host) is gone: the lock is stale. Check that \
             nothing else is applying, then remove it with:\n  cutover force-unlock {}",
            holder.pid, holder.id
        ));
    } else {
        msg.push_str(&format!(
            "Wait for that run to finish and try again (--lock-timeout waits longer), or, \
             if it is gone, remove the lock with:\n  cutover force-unlock {}",
            holder.id
        ));
    }
    msg
}

/// The command line as the lock file records it: without the value of any
/// `--var` (a sensitive variable's value would be in clear in the lock file
/// and in the message of every run that finds it held).
pub fn recorded_command(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let hide = |assignment: &str| match assignment.split_once('=') {
        Some((name, _)) => format!("{name}=..."),
        None => assignment.to_owned(),
    };
    let mut out = Vec::new();
    let mut value_next = false;
    for arg in args {
        if value_next {
            out.push(hide(&arg));
            value_next = false;
        } else if arg == "--var" {
            out.push(arg);
            value_next = true;
        } else if let Some(assignment) = arg.strip_prefix("--var=") {
            out.push(format!("--var={}", hide(assignment)));
        } else {
            out.push(arg);
        }
    }
    out
}

/// The lock file of a state: `<state path>.lock`.
pub fn lock_path(state_path: &Path) -> PathBuf {
    let mut name = OsString::from(state_path.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
    info: LockInfo,
}

impl StateLock {
    /// Takes the lock of the state at `state_path` for `operation`, waiting up
    /// to `timeout` while another run holds it.
    pub fn acquire(
        state_path: &Path,
        operation: &str,
        timeout: Duration,
    ) -> Result<StateLock, LockError> {
        Self::acquire_telling(state_path, operation, timeout, &mut |_| {})
    }

    /// [`StateLock::acquire`], calling `waiting` once, with the holder, when
    /// it starts to wait (so a person knows why nothing happens).
    pub fn acquire_telling(
        state_path: &Path,
        operation: &str,
        timeout: Duration,
        waiting: &mut dyn FnMut(&LockInfo),
    ) -> Result<StateLock, LockError> {
        let path = lock_path(state_path);
        let info = LockInfo::ours(operation);
        let deadline = Instant::now() + timeout;
        let mut told = false;
        loop {
            if take(&path, &info)? {
                return Ok(StateLock { path, info });
            }
            let now = Instant::now();
            if now >= deadline {
                return Self::after_deadline(state_path, path, info);
            }
            if !told {
                if let Some(holder) = read_settled(&path)? {
                    waiting(&holder);
                    told = true;
                }
            }
            std::thread::sleep(POLL_INTERVAL.min(deadline - now));
        }
    }

    /// The timeout is over: report the holder, unless the lock was released
    /// just now, in which case a few last attempts may still take it.
    fn after_deadline(
        state_path: &Path,
        path: PathBuf,
        info: LockInfo,
    ) -> Result<StateLock, LockError> {
        for _ in 0..3 {
            if let Some(holder) = read_settled(&path)? {
                return Err(LockError::Held {
                    state: state_path.display().to_string(),
                    stale: holder.is_stale(),
                    holder: Box::new(holder),
                });
            }
            if take(&path, &info)? {
                return Ok(StateLock { path, info });
            }
        }
        Err(LockError::Io {
            action: "create",
            path,
            source: io::Error::other("the lock was taken and released repeatedly; try again"),
        })
    }

    /// Whether this is the lock of the state at `state_path`.
    pub fn guards(&self, state_path: &Path) -> bool {
        !self.info.id.is_empty() && self.path == lock_path(state_path)
    }

    /// Who holds this lock (us).
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The lock's id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Releases the lock now, reporting failure (dropping ignores it).
    pub fn release(mut self) -> Result<(), LockError> {
        let result = self.remove_if_ours();
        // Already released: make Drop a no-op.
        self.info.id.clear();
        result
    }

    fn remove_if_ours(&self) -> Result<(), LockError> {
        if self.info.id.is_empty() {
            return Ok(());
        }
        // Someone may have force-unlocked us and another run taken the lock
        // since: only remove a lock that is still ours.
        match read_lock_file(&self.path) {
            Ok(Some(current)) if current.id == self.info.id => {
                fs::remove_file(&self.path).map_err(|source| LockError::Io {
                    action: "remove",
                    path: self.path.clone(),
                    source,
                })
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.remove_if_ours();
    }
}

/// Creates the lock file, failing with `AlreadyExists` when it is there.
fn try_create(path: &Path, info: &LockInfo) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let mut bytes = serde_json::to_vec_pretty(info).expect("a LockInfo always serializes");
    bytes.push(b'\n');
    let written = file.write_all(&bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        // A half-written lock would block everyone; take it back.
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// Tries to create the lock file: `Ok(false)` when another run holds it.
fn take(path: &Path, info: &LockInfo) -> Result<bool, LockError> {
    match try_create(path, info) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(LockError::Io {
            action: "create",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads the lock file, allowing a run that is creating it a moment to finish
/// writing it (between `O_EXCL` create and write the file is empty).
fn read_settled(path: &Path) -> Result<Option<LockInfo>, LockError> {
    match read_lock_file(path) {
        Err(LockError::Unreadable { .. }) => {
            std::thread::sleep(Duration::from_millis(50));
            read_lock_file(path)
        }
        other => other,
    }
}

fn read_lock_file(path: &Path) -> Result<Option<LockInfo>, LockError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LockError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| LockError::Unreadable {
            path: path.to_owned(),
            source,
        })
}

/// [`read_lock`], allowing a run that is creating the lock file a moment
/// to finish writing it.
pub(crate) fn read_lock_settled(state_path: &Path) -> Result<Option<LockInfo>, LockError> {
    read_settled(&lock_path(state_path))
}

/// Who holds the lock of the state at `state_path`, if anyone.
pub fn read_lock(state_path: &Path) -> Result<Option<LockInfo>, LockError> {
    read_lock_file(&lock_path(state_path))
}

/// Removes the lock of the state at `state_path` if its id is `id`, and returns
/// who held it.
pub fn force_unlock(state_path: &Path, id: &str) -> Result<LockInfo, LockError> {
    let path = lock_path(state_path);
    let Some(actual) = read_lock_file(&path)? else {
        return Err(LockError::NotLocked {
            state: state_path.display().to_string(),
        });
    };
    if actual.id != id {
        return Err(LockError::IdMismatch {
            state: state_path.display().to_string(),
            given: id.to_owned(),
            actual: Box::new(actual),
        });
    }
    fs::remove_file(&path).map_err(|source| LockError::Io {
        action: "remove",
        path,
        source,
    })?;
    Ok(actual)
}

pub(crate) fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

pub(crate) fn username() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|s| !s.is_empty()))
        // No login variables (a service, a container, `env -i`): the
        // account of the process itself.
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_command_holds_no_var_value() {
        let args = [
            "cutover",
            "apply",
            "--var",
            "token=s3cret",
            "--var=port=9102",
            "--auto-approve",
        ];
        assert_eq!(
            recorded_command(args.map(String::from)),
            [
                "cutover",
                "apply",
                "--var",
                "token=...",
                "--var=port=...",
                "--auto-approve"
            ]
        );
    }

    fn state_in(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("cutover.state.json")
    }

    #[test]
    fn lock_file_says_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        let lock = StateLock::acquire(&state, "apply", Duration::ZERO).unwrap();
        assert!(dir.path().join("cutover.state.json.lock").exists());
        let info = read_lock(&state).unwrap().unwrap();
        assert_eq!(&info, lock.info());
        assert_eq!(info.pid, std::process::id());
        assert_eq!(info.operation, "apply");
        assert_eq!(info.host, hostname());
        // RFC 3339 in UTC, to the second: `2024-05-01T12:34:56Z`.
        let created = humantime::parse_rfc3339(&info.created).unwrap();
        assert!(created <= SystemTime::now());
        assert_eq!(
            info.created.len(),
            "2024-05-01T12:34:56Z".len(),
            "{}",
            info.created
        );
        assert!(info.created.ends_with('Z'), "{}", info.created);
        assert!(lock.guards(&state));
        assert!(!lock.guards(&dir.path().join("other.json")));
        assert!(!info.is_stale());
    }

    #[test]
    fn second_acquire_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        let first = StateLock::acquire(&state, "apply", Duration::ZERO).unwrap();
        let started = Instant::now();
        let err = StateLock::acquire(&state, "rollback", Duration::from_millis(400)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(400));
        let LockError::Held { holder, stale, .. } = &err else {
            panic!("expected Held, got {err:?}");
        };
        assert_eq!(holder.id, first.id());
        assert!(!stale);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains(&format!("@{}", hostname())), "{msg}");
        assert!(msg.contains("running `apply`"), "{msg}");
        assert!(
            msg.contains(&format!("cutover force-unlock {}", first.id())),
            "{msg}"
        );
        assert!(!msg.contains("stale"), "{msg}");
    }

    #[test]
    fn waiting_run_gets_the_lock_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        let first = StateLock::acquire(&state, "apply", Duration::ZERO).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let second = StateLock::acquire(&state, "apply", Duration::from_secs(5)).unwrap();
        releaser.join().unwrap();
        assert_eq!(read_lock(&state).unwrap().unwrap().id, second.id());
    }

    #[test]
    fn stale_lock_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let info = LockInfo {
            id: "0b8e4c6e-0000-4000-8000-000000000001".into(),
            pid: dead_pid,
            host: hostname(),
            user: "alice".into(),
            operation: "apply".into(),
            created: "2024-05-01T12:00:00Z".into(),
            command: vec!["cutover".into(), "apply".into()],
        };
        try_create(&lock_path(&state), &info).unwrap();
        assert!(info.is_stale());
        let err = StateLock::acquire(&state, "apply", Duration::ZERO).unwrap_err();
        assert!(
            matches!(err, LockError::Held { stale: true, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("is gone: the lock is stale"), "{msg}");
        assert!(msg.contains("alice@"), "{msg}");
        assert!(msg.contains("since 2024-05-01T12:00:00Z"), "{msg}");
        assert!(msg.contains("cutover force-unlock 0b8e4c6e-0000-4000-8000-000000000001"));

        // The same pid on another host says nothing about that host.
        let elsewhere = LockInfo {
            host: "some-other-host".into(),
            ..info
        };
        assert!(!elsewhere.is_stale());
    }

    #[test]
    fn force_unlock_needs_the_right_id() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        let lock = StateLock::acquire(&state, "apply", Duration::ZERO).unwrap();
        let id = lock.id().to_owned();
        // Keep the file: pretend the holder vanished without running Drop.
        std::mem::forget(lock);

        let err = force_unlock(&state, "not-the-id").unwrap_err();
        assert!(matches!(err, LockError::IdMismatch { .. }), "{err:?}");
        assert!(err.to_string().contains(&id), "{err}");
        assert!(read_lock(&state).unwrap().is_some());

        let removed = force_unlock(&state, &id).unwrap();
        assert_eq!(removed.id, id);
        assert!(read_lock(&state).unwrap().is_none());
        let err = force_unlock(&state, &id).unwrap_err();
        assert!(matches!(err, LockError::NotLocked { .. }), "{err:?}");
    }

    #[test]
    fn drop_releases_only_our_own_lock() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        drop(StateLock::acquire(&state, "apply", Duration::ZERO).unwrap());
        assert!(read_lock(&state).unwrap().is_none());

        // Force-unlocked while running, and another run took the lock since:
        // our drop must leave the other run's lock alone.
        let first = StateLock::acquire(&state, "apply", Duration::ZERO).unwrap();
        force_unlock(&state, first.id()).unwrap();
        let second = StateLock::acquire(&state, "apply", Duration::ZERO).unwrap();
        drop(first);
        assert_eq!(read_lock(&state).unwrap().unwrap().id, second.id());
        second.release().unwrap();
        assert!(read_lock(&state).unwrap().is_none());
    }

    #[test]
    fn garbage_lock_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        fs::write(lock_path(&state), "{ not json").unwrap();
        let err = StateLock::acquire(&state, "apply", Duration::ZERO).unwrap_err();
        assert!(matches!(err, LockError::Unreadable { .. }), "{err:?}");
        assert!(err.to_string().contains("delete the file"), "{err}");
    }
}
