//! Opening the state for a command: rule 8 of DESIGN.md, "what the state
//! file says is true after any crash".
//!
//! An apply killed between two writes of the state file leaves the truth in
//! its journal (steps done since the last write: a router switched, a process
//! started) and may leave a temporary file of an interrupted write. Every
//! command that reads the state calls [`open()`] first, which folds such a
//! journal into the state file (one atomic write) and removes the leftovers,
//! under the state lock, so that the file committed to git is never behind
//! what was done.
//!
//! The lock decides what may be changed: a command that holds it
//! ([`Access::Locked`]) folds; a read-only command ([`Access::Read`]) takes it
//! only when there is something to do, only when it is free, and for no longer
//! than the fold. When another run holds it, nothing is changed: that run's
//! journal and temporary files may be in flight. The command then reads the
//! journal in memory and says so ([`Note`]). A lock whose holder is gone is
//! not taken over, because a holder in another pid namespace or on another
//! host with the same name looks gone and may still be writing: the note says
//! how to clear it (`cutover force-unlock ID`, which folds).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::backend::{Backend, Lock, Stamp};
use super::journal::{self, Found, Problem};
use super::lock::{LockError, LockInfo};
use super::{State, StateError};

/// How a command reads the state.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    /// A command that only reads the state (`plan`, `show`, `state list`,
    /// ...). A journal that cannot be folded is left alone and reported in
    /// the [`Note`].
    Read,
    /// A command that holds the state lock (`apply`, `rollback`, ...). A
    /// journal that cannot be folded is an error: the command would
    /// otherwise write a state that leaves out what the journal holds.
    Locked(&'a Lock),
}

/// What lies beside the state file and is not in it yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The state, as its backend names it.
    pub state: String,
    /// Its journal, so named.
    pub journal_name: String,
    /// The state file alone (`None`: there is none).
    pub on_disk: Option<State>,
    /// The journal, compared with the state file.
    pub journal: Found,
    /// Temporary files of interrupted writes ([`files::leftovers`]).
    pub leftovers: Vec<PathBuf>,
}

impl Pending {
    /// Whether there is nothing to fold or remove.
    pub fn is_clean(&self) -> bool {
        self.journal == Found::Absent && self.leftovers.is_empty()
    }

    /// The state as a command sees it: the file with an unfolded journal
    /// applied.
    pub fn view(&self) -> Option<State> {
        match &self.journal {
            Found::Unfolded(u) => Some(u.state.clone()),
            _ => self.on_disk.clone(),
        }
    }

    fn journal_path(&self) -> PathBuf {
        PathBuf::from(&self.journal_name)
    }
}

/// A journal folded into the state file.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    /// The state, as its backend names it.
    pub state: String,
    /// What to do now the state changed ("commit the state file").
    pub after: Option<&'static str>,
    /// The serial of the state file before the fold.
    pub from_serial: u64,
    /// Its serial now.
    pub to_serial: u64,
    /// The records the journal changed (`router.public`).
    pub records: Vec<String>,
    /// Whether its last line was torn (that step is not recorded).
    pub torn: bool,
}

/// Why something beside the state was left for later.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// The lock could not be taken, so nothing was folded or removed.
    NotLocked {
        /// Why not.
        blocked: Blocked,
        /// What was left.
        pending: Box<Pending>,
    },
    /// A journal that cannot be folded into this state file; left alone.
    JournalUnusable {
        /// The journal.
        journal: PathBuf,
        /// Why not.
        problem: Problem,
    },
}

/// Why a read-only command could not take the lock to fold.
#[derive(Debug, Clone, PartialEq)]
pub enum Blocked {
    /// Another run, alive, holds it: its journal and temporary files may be
    /// in flight.
    Held(LockInfo),
    /// Its holder ran on this host and its process is gone.
    Stale(LockInfo),
    /// Another reason (a directory this user cannot write, a lock file that
    /// cannot be read).
    Unavailable(String),
}

/// The state, opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The state (`None`: no state file yet): the file with any journal
    /// folded in, or, when it could not be folded, replayed in memory.
    pub state: Option<State>,
    /// The journal folded into the state file, if one was.
    pub folded: Option<Folded>,
    /// Leftovers removed: temporary files, and a journal that was empty or
    /// already folded.
    pub removed: Vec<PathBuf>,
    /// What was left, and why, for the operator.
    pub note: Option<Note>,
}

/// What [`open()`] would fold or remove, without changing anything and
/// without the lock. Reads the journal before the state: a fold writes the
/// state before it removes the journal, so this order never pairs the
/// journal with a state that already holds it.
pub fn inspect(backend: &dyn Backend) -> Result<Pending, StateError> {
    let text = backend.read_journal()?;
    let on_disk = backend.read_state()?;
    let journal = match &text {
        Some(text) => journal::compare(text, on_disk.as_ref()),
        None => Found::Absent,
    };
    Ok(Pending {
        state: backend.describe(),
        journal_name: backend.journal_name(),
        on_disk,
        journal,
        leftovers: backend.leftovers()?,
    })
}

/// Read the state of `backend` for a command, first folding into it what an
/// interrupted apply left, as far as `access` allows (see the module's
/// documentation).
pub fn open(backend: &dyn Backend, access: Access<'_>) -> Result<Opened, StateError> {
    if let Access::Locked(lock) = access {
        assert!(
            lock.guards(backend),
            "Access::Locked needs the lock of {}",
            backend.describe()
        );
        return fold(backend, lock, true);
    }
    let pending = inspect(backend)?;
    if pending.is_clean() {
        return Ok(Opened {
            state: pending.on_disk,
            folded: None,
            removed: Vec::new(),
            note: None,
        });
    }
    let state = pending.view();
    let note = match backend.lock(FOLD_OPERATION, Duration::ZERO, &mut |_| {}) {
        Ok(lock) => return fold(backend, &lock, false),
        Err(LockError::Held { holder, stale, .. }) => Note::NotLocked {
            blocked: if stale {
                Blocked::Stale(*holder)
            } else {
                Blocked::Held(*holder)
            },
            pending: Box::new(pending),
        },
        Err(e) => Note::NotLocked {
            blocked: Blocked::Unavailable(e.to_string()),
            pending: Box::new(pending),
        },
    };
    Ok(Opened {
        state,
        folded: None,
        removed: Vec::new(),
        note: Some(note),
    })
}

/// What a read-only command holding the lock for a moment is doing, as the
/// lock says.
const FOLD_OPERATION: &str = "fold of a leftover journal";

/// Fold and remove under `lock`; `strict`: a journal that cannot be folded is
/// an error rather than a note.
fn fold(backend: &dyn Backend, lock: &Lock, strict: bool) -> Result<Opened, StateError> {
    // Again, now that nobody else can change it.
    let pending = inspect(backend)?;
    let expected = pending.on_disk.as_ref().map(Stamp::of);
    let mut opened = Opened {
        state: pending.on_disk.clone(),
        folded: None,
        removed: Vec::new(),
        note: None,
    };
    match pending.journal {
        Found::Absent => {}
        Found::Empty | Found::AlreadyFolded => {
            backend.discard_journal(lock)?;
            opened.removed.push(pending.journal_path());
        }
        Found::Unfolded(u) => {
            // The state first, then the journal: a crash in between leaves
            // a journal that the next open finds already folded.
            backend.write_state(lock, expected.as_ref(), &u.state)?;
            backend.discard_journal(lock)?;
            opened.folded = Some(Folded {
                state: backend.describe(),
                after: backend.after_change(),
                from_serial: u.from_serial,
                to_serial: u.to_serial,
                records: u.records,
                torn: u.torn,
            });
            opened.state = Some(u.state);
        }
        Found::Unusable(problem) => {
            let journal = PathBuf::from(&pending.journal_name);
            if strict {
                return Err(StateError::Journal { journal, problem });
            }
            opened.note = Some(Note::JournalUnusable { journal, problem });
        }
    }
    opened.removed.extend(backend.remove_leftovers(lock)?);
    Ok(opened)
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Folded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "folded the journal an interrupted apply left into {}: serial {} -> {} ({})",
            self.state,
            self.from_serial,
            self.to_serial,
            self.records.join(", ")
        )?;
        if let Some(after) = self.after {
            write!(f, "; {after}")?;
        }
        if self.torn {
            f.write_str(
                ". Its last line was torn by the interruption: that step is not recorded, \
                 and the next plan reads what it did from the live world",
            )?;
        }
        Ok(())
    }
}

/// What `pending` leaves unfolded, as clauses for a [`Note`].
fn left_clauses(pending: &Pending) -> Vec<String> {
    let mut clauses = Vec::new();
    if let Found::Unfolded(u) = &pending.journal {
        clauses.push(format!(
            "its journal {} is not folded yet: the state shown includes it (serial {} -> {}: \
             {}), while the stored state alone still says serial {}",
            pending.journal_path().display(),
            u.from_serial,
            u.to_serial,
            u.records.join(", "),
            u.from_serial
        ));
    }
    if !pending.leftovers.is_empty() {
        clauses.push(format!(
            "the files an interrupted run left beside the state were left alone ({})",
            list(&pending.leftovers)
        ));
    }
    clauses
}

impl Blocked {
    /// What holds the lock on the state of `pending`, and what to do.
    fn parts(&self, pending: &Pending) -> (String, String) {
        let state = &pending.state;
        match self {
            Blocked::Held(holder) => (
                format!("{} holds the lock on {state}", holder.describe()),
                "rerun when it finishes".to_string(),
            ),
            Blocked::Stale(holder) => {
                let then = match pending.journal {
                    Found::Unfolded(_) => "which folds the journal into the state",
                    _ => "which removes them",
                };
                (
                    format!(
                        "the lock on {state} was left by {}, whose process is gone",
                        holder.describe()
                    ),
                    format!(
                        "check that nothing else is applying, then clear it with `cutover \
                         force-unlock {}`, {then}",
                        holder.id
                    ),
                )
            }
            Blocked::Unavailable(reason) => (
                format!("cannot take the lock on {state} ({reason})"),
                "run cutover where it can write beside the state file".to_string(),
            ),
        }
    }
}

impl Note {
    /// Why things were left, and what to do, without the list of what was
    /// left (for `state check`, which lists it itself).
    pub fn reason(&self) -> String {
        match self {
            Note::NotLocked { blocked, pending } => {
                let (why, advice) = blocked.parts(pending);
                format!("{why}; {advice}")
            }
            Note::JournalUnusable { problem, .. } => problem.to_string(),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::NotLocked { blocked, pending } => {
                let (why, advice) = blocked.parts(pending);
                f.write_str(&why)?;
                for clause in left_clauses(pending) {
                    write!(f, "; {clause}")?;
                }
                write!(f, "; {advice}")
            }
            Note::JournalUnusable { journal, problem } => write!(
                f,
                "the journal {} was not folded into the state file, and the state shown \
                 leaves it out: {problem}",
                journal.display()
            ),
        }
    }
}

impl Opened {
    /// What opening did and left, one message a line, for stderr.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(folded) = &self.folded {
            out.push(format!("note: {folded}"));
        }
        if !self.removed.is_empty() {
            out.push(format!(
                "note: removed what an interrupted cutover left beside the state: {}",
                list(&self.removed)
            ));
        }
        if let Some(note) = &self.note {
            out.push(format!("warning: {note}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::backend::{lock_now, LocalFile};
    use crate::state::journal::Entry;
    use crate::state::{lock, new_state, save, to_bytes, RouterState, StateLock};
    use std::fs;
    use std::path::Path;
    use std::time::Duration;

    fn open_at(path: &Path, access: Access<'_>) -> Result<Opened, StateError> {
        open(&LocalFile::new(path), access)
    }

    fn inspect_at(path: &Path) -> Result<Pending, StateError> {
        inspect(&LocalFile::new(path))
    }

    fn lock_at(path: &Path) -> Lock {
        lock_now(&LocalFile::new(path), "apply").unwrap()
    }

    fn router(live: &str, previous: Option<&str>) -> RouterState {
        RouterState {
            backend: "haproxy".into(),
            live: Some(live.into()),
            previous: previous.map(Into::into),
            preview: None,
            rolled_back: false,
        }
    }

    /// A state file at serial 4 (public on blue) in a fresh directory.
    fn setup() -> (tempfile::TempDir, PathBuf, State) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.state.json");
        let mut state = new_state();
        state.serial = 4;
        state.routers.insert("public".into(), router("blue", None));
        save(&path, &state).unwrap();
        (dir, path, state)
    }

    /// A journal on `base` (lineage, serial) holding `entries`, as the apply
    /// walk writes it.
    fn write_journal(path: &Path, base: &State, entries: &[Entry], tail: &str) {
        let mut text =
            serde_json::json!({"lineage": base.lineage, "serial": base.serial}).to_string() + "\n";
        for e in entries {
            text += &serde_json::to_string(e).unwrap();
            text.push('\n');
        }
        text += tail;
        fs::write(journal::path_for(path), text).unwrap();
    }

    fn switched() -> Entry {
        Entry::Router("public".into(), Some(router("green", Some("blue"))))
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    const TEMP: &str = ".cutover-state-cutover.state.json.kIll3d.tmp";

    #[test]
    fn a_read_folds_the_journal_into_the_file_and_removes_it() {
        let (dir, path, state) = setup();
        // A kill mid-write of the next entry tore the last line.
        write_journal(&path, &state, &[switched()], "{\"router\":[\"pub");
        fs::write(dir.path().join(TEMP), "{\"environ").unwrap();

        let opened = open_at(&path, Access::Read).unwrap();
        let st = opened.state.clone().unwrap();
        assert_eq!(st.serial, 5);
        assert_eq!(st.routers["public"], router("green", Some("blue")));
        // The file alone says so, byte for byte as a save writes it.
        assert_eq!(fs::read(&path).unwrap(), to_bytes(&st));
        assert_eq!(
            opened.folded,
            Some(Folded {
                state: path.display().to_string(),
                after: Some("commit the state file"),
                from_serial: 4,
                to_serial: 5,
                records: vec!["router.public".into()],
                torn: true,
            })
        );
        assert_eq!(opened.removed, [dir.path().join(TEMP)]);
        assert_eq!(opened.note, None);
        assert_eq!(
            names_in(dir.path()),
            ["cutover.state.json"],
            "journal, temp and lock gone"
        );
        let messages = opened.messages().join("\n");
        assert!(
            messages.contains("serial 4 -> 5 (router.public)"),
            "{messages}"
        );
        assert!(messages.contains("last line was torn"), "{messages}");

        // Nothing left: the next open reads the file and changes nothing.
        let again = open_at(&path, Access::Read).unwrap();
        assert_eq!(again.state, Some(st));
        assert_eq!(
            (again.folded, again.removed, again.note),
            (None, vec![], None)
        );
    }

    #[test]
    fn a_read_while_a_live_run_holds_the_lock_changes_nothing_and_says_so() {
        let (dir, path, state) = setup();
        write_journal(&path, &state, &[switched()], "");
        fs::write(dir.path().join(TEMP), "{").unwrap();
        let before = fs::read(&path).unwrap();
        // This process is alive: the lock is held by a live run.
        let holder = StateLock::acquire(&path, "apply", Duration::ZERO).unwrap();

        let opened = open_at(&path, Access::Read).unwrap();
        assert_eq!(
            opened.state.as_ref().unwrap().serial,
            5,
            "the journal, in memory"
        );
        assert_eq!(
            opened.state.unwrap().routers["public"].live.as_deref(),
            Some("green")
        );
        assert_eq!((opened.folded, opened.removed.len()), (None, 0));
        assert_eq!(fs::read(&path).unwrap(), before, "the file is untouched");
        assert!(journal::path_for(&path).exists());
        assert!(
            dir.path().join(TEMP).exists(),
            "maybe the holder's write in flight"
        );
        let Some(
            note @ Note::NotLocked {
                blocked: Blocked::Held(_),
                ..
            },
        ) = &opened.note
        else {
            panic!("{:?}", opened.note)
        };
        let text = note.to_string();
        let pid = std::process::id();
        assert!(
            text.starts_with(&format!("an apply (pid {pid} on host ")),
            "{text}"
        );
        assert!(
            text.contains(
                "is not folded yet: the state shown includes it (serial 4 -> 5: router.public)"
            ),
            "{text}"
        );
        assert!(text.contains(TEMP), "{text}");
        assert!(text.ends_with("rerun when it finishes"), "{text}");
        drop(holder);
        // Once it is released, the next read folds.
        assert!(open_at(&path, Access::Read).unwrap().folded.is_some());
    }

    #[test]
    fn a_read_under_a_stale_lock_changes_nothing_and_names_force_unlock() {
        let (_dir, path, state) = setup();
        write_journal(&path, &state, &[switched()], "");
        let before = fs::read(&path).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let info = LockInfo {
            id: "0b8e4c6e-0000-4000-8000-00000000dead".into(),
            pid: dead,
            host: lock::hostname(),
            user: "alice".into(),
            operation: "apply".into(),
            created: "2024-05-01T12:00:00Z".into(),
            command: vec!["cutover".into(), "apply".into()],
        };
        fs::write(lock::lock_path(&path), serde_json::to_vec(&info).unwrap()).unwrap();

        let opened = open_at(&path, Access::Read).unwrap();
        assert_eq!(opened.state.unwrap().serial, 5);
        assert_eq!(fs::read(&path).unwrap(), before);
        assert!(journal::path_for(&path).exists());
        let Some(
            note @ Note::NotLocked {
                blocked: Blocked::Stale(_),
                ..
            },
        ) = &opened.note
        else {
            panic!("{:?}", opened.note)
        };
        let text = note.to_string();
        assert!(
            text.contains(&format!("was left by an apply (pid {dead} on host ")),
            "{text}"
        );
        assert!(text.contains("whose process is gone"), "{text}");
        assert!(
            text.contains("cutover force-unlock 0b8e4c6e-0000-4000-8000-00000000dead"),
            "{text}"
        );
        assert_eq!(
            lock::read_lock(&path).unwrap(),
            Some(info),
            "never taken over"
        );
    }

    #[test]
    fn a_command_holding_the_lock_folds_and_refuses_a_journal_it_would_lose() {
        let (dir, path, state) = setup();
        write_journal(&path, &state, &[switched()], "");
        let lock = lock_at(&path);
        let opened = open_at(&path, Access::Locked(&lock)).unwrap();
        assert_eq!(opened.folded.unwrap().to_serial, 5);
        assert_eq!(crate::state::from_file(&path).unwrap(), opened.state);
        assert!(!journal::path_for(&path).exists());
        assert!(lock.guards(&LocalFile::new(&path)), "still held");

        // A journal of a state the file no longer holds (another lineage).
        let mut other = state.clone();
        other.lineage = "another-lineage".into();
        write_journal(&path, &other, &[switched()], "");
        let err = open_at(&path, Access::Locked(&lock)).unwrap_err();
        let StateError::Journal {
            problem: Problem::Foreign { .. },
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        let msg = err.to_string();
        assert!(msg.contains("lineage another-lineage at serial 4"), "{msg}");
        assert!(msg.contains("router.public"), "{msg}");
        assert!(journal::path_for(&path).exists(), "kept");
        // The apply walk's journal refuses it too.
        let local = LocalFile::new(&path);
        let Err(err) = journal::Journal::open(&local, &lock, opened.state.as_ref().unwrap()) else {
            panic!("a foreign journal was accepted")
        };
        assert!(matches!(err, StateError::Journal { .. }), "{err:?}");
        assert!(journal::path_for(&path).exists(), "kept");
        drop(lock);

        // A read-only command reads the file alone and says why.
        let read = open_at(&path, Access::Read).unwrap();
        assert_eq!(read.state.unwrap().serial, 5);
        assert!(
            matches!(read.note, Some(Note::JournalUnusable { .. })),
            "{:?}",
            read.note
        );
        assert_eq!(
            names_in(dir.path()),
            ["cutover.state.json", "cutover.state.json.journal"]
        );
    }

    #[test]
    #[should_panic(expected = "needs the lock")]
    fn locked_access_needs_this_state_s_lock() {
        let (dir, path, _) = setup();
        let other = lock_at(&dir.path().join("other.json"));
        let _ = open_at(&path, Access::Locked(&other));
    }

    #[test]
    fn a_journal_already_folded_or_empty_is_removed_and_nothing_else_changes() {
        let (dir, path, state) = setup();
        // The fold wrote serial 5 and was killed before removing the journal.
        let mut folded = state.clone();
        switched().apply_to(&mut folded);
        save(&path, &folded).unwrap();
        write_journal(&path, &state, &[switched()], "");
        let bytes = fs::read(&path).unwrap();
        assert_eq!(inspect_at(&path).unwrap().journal, Found::AlreadyFolded);
        let opened = open_at(&path, Access::Read).unwrap();
        assert_eq!(opened.state, Some(folded.clone()));
        assert_eq!(opened.folded, None);
        assert_eq!(opened.removed, [journal::path_for(&path)]);
        assert_eq!(fs::read(&path).unwrap(), bytes);

        // Killed while creating the journal: only part of the header.
        fs::write(journal::path_for(&path), "{\"lineage\":").unwrap();
        assert_eq!(inspect_at(&path).unwrap().journal, Found::Empty);
        open_at(&path, Access::Read).unwrap();
        assert_eq!(names_in(dir.path()), ["cutover.state.json"]);
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_damaged_journal_is_reported_and_kept() {
        let (_dir, path, state) = setup();
        write_journal(
            &path,
            &state,
            &[],
            "not an entry\n{\"router\":[\"a\",null]}\n",
        );
        let Found::Unusable(problem) = inspect_at(&path).unwrap().journal else {
            panic!()
        };
        assert!(
            matches!(problem, Problem::Damaged { line: 2, .. }),
            "{problem:?}"
        );
        let opened = open_at(&path, Access::Read).unwrap();
        assert_eq!(opened.state, Some(state));
        assert!(journal::path_for(&path).exists());
        let text = opened.note.unwrap().to_string();
        assert!(text.contains("line 2 cannot be read"), "{text}");
    }

    #[test]
    fn leftovers_alone_are_removed_by_a_read_and_a_missing_state_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.state.json");
        fs::write(dir.path().join(TEMP), "{").unwrap();
        fs::write(dir.path().join(".cutover-write-check"), "x").unwrap();
        let opened = open_at(&path, Access::Read).unwrap();
        assert_eq!(opened.state, None);
        assert_eq!(opened.removed.len(), 2, "{:?}", opened.removed);
        assert_eq!(names_in(dir.path()), [] as [&str; 0]);
        let text = opened.messages().join("\n");
        assert!(
            text.contains(TEMP) && text.contains(".cutover-write-check"),
            "{text}"
        );
    }
}
