//! The apply journal: what apply has done since the state file was last
//! written, one line per completed step, beside the state file.
//!
//! Rewriting the whole state after every step costs steps × state size bytes
//! (quadratic in the size of the configuration, Terraform's problem at scale).
//! Instead apply appends each step's effect — the new record of one
//! environment or router — to `<state>.journal` and syncs it, and folds the
//! journal into the state file (one atomic write) when the journal has grown
//! as large as the state, and at the end. Bytes written stay proportional to
//! the final state size plus the size of what changed.
//!
//! Crash safety: the journal's first line names the lineage and serial of the
//! state file it extends. [`examine`] compares a journal with the state file:
//! its entries apply only onto exactly that state, a torn last line (a kill
//! mid-write) is not an entry, and a journal left behind by a fold that wrote
//! the state but had not yet removed it is recognised as already folded. So
//! after a kill at any moment the last written state plus every synced entry
//! is known, and [`super::open`] folds it into the state file (rule 8 of
//! DESIGN.md: the committed file is the truth) before any command uses it. A
//! journal that extends no state known here (the state file was replaced
//! since, or a line is damaged) is never folded nor deleted by cutover: it is
//! reported, with its records, for a person to decide.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::backend::{Backend, Lock, Stamp};
use super::model::{EnvironmentState, RouterState, State};
use super::StateError;

/// The journal of the state file at `state_path`.
pub fn path_for(state_path: &Path) -> PathBuf {
    let mut name = state_path.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

/// The first line: which state the entries extend.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    lineage: String,
    serial: u64,
}

/// One completed step's effect on the state; `None` removes the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// The new record of an environment.
    Environment(String, Option<EnvironmentState>),
    /// The new record of a router.
    Router(String, Option<RouterState>),
    /// The `after` analyses of a router's cut-over, just made, that have
    /// not passed yet (none: nothing pending).
    Unchecked(String, Vec<String>),
    /// One of them passed.
    Checked(String, String),
}

impl Entry {
    /// Apply the entry to `state`; whether anything changed. The serial is
    /// bumped for every change, as a write per step would have done.
    pub fn apply_to(self, state: &mut State) -> bool {
        let changed = match self {
            Entry::Environment(name, Some(e)) => {
                let same = state.environments.get(&name) == Some(&e);
                if !same {
                    state.environments.insert(name, e);
                }
                !same
            }
            Entry::Environment(name, None) => state.environments.remove(&name).is_some(),
            Entry::Router(name, Some(mut r)) => {
                // Checked here, where every change of a router's record
                // passes: the way back is never the colour it is on (a
                // `cutover rollback` to it would move nothing and leave the
                // colour it came from unreachable).
                if r.previous.is_some() && r.previous == r.live {
                    r.previous = None;
                }
                let same = state.routers.get(&name) == Some(&r);
                if !same {
                    state.routers.insert(name, r);
                }
                !same
            }
            Entry::Router(name, None) => state.routers.remove(&name).is_some(),
            Entry::Unchecked(name, names) if names.is_empty() => {
                state.unchecked.remove(&name).is_some()
            }
            Entry::Unchecked(name, names) => {
                state.unchecked.insert(name, names.clone()) != Some(names)
            }
            Entry::Checked(router, check) => {
                let Some(pending) = state.unchecked.get_mut(&router) else {
                    return false;
                };
                let before = pending.len();
                pending.retain(|c| *c != check);
                let changed = pending.len() != before;
                if pending.is_empty() {
                    state.unchecked.remove(&router);
                }
                changed
            }
        };
        if changed {
            state.serial += 1;
        }
        changed
    }
}

/// The apply walk's journal (the walk holds the state lock), in any
/// backend (state/backend.rs). It is created at the first synced entry, so
/// an apply that changes nothing writes nothing.
pub struct Journal<'a> {
    backend: &'a dyn Backend,
    lock: &'a Lock,
    /// Whether the journal of this apply exists yet.
    started: bool,
    /// Lineage and serial of the stored state the journal extends.
    base: Stamp,
    /// Entries recorded but not yet synced.
    pending: Vec<u8>,
    /// Bytes of entries since the last fold, and the stored state's size
    /// then.
    written: u64,
    state_size: u64,
}

impl<'a> Journal<'a> {
    /// Start journaling onto `state`, which the caller loaded (with any
    /// journal a crash left replayed into it): such a journal is folded into
    /// the stored state first.
    pub fn open(
        backend: &'a dyn Backend,
        lock: &'a Lock,
        state: &State,
    ) -> Result<Self, StateError> {
        // The caller folded what a crash left (state::open): the common
        // case reads no state here.
        let write = match backend.read_journal()? {
            Some(text) => {
                let stored = backend.read_state()?;
                // Never drop a journal that `state` does not already hold.
                if let Some(problem) = compare(&text, stored.as_ref()).problem() {
                    return Err(StateError::Journal {
                        journal: PathBuf::from(backend.journal_name()),
                        problem,
                    });
                }
                Some(stored.as_ref().map(Stamp::of))
            }
            None if !backend.has_state()? => Some(None),
            None => None,
        };
        if let Some(expected) = write {
            backend.write_state(lock, expected.as_ref(), state)?;
            backend.discard_journal(lock)?;
        }
        Ok(Journal {
            backend,
            lock,
            started: false,
            base: Stamp::of(state),
            pending: Vec::new(),
            written: 0,
            state_size: backend.stored_size(),
        })
    }

    /// Apply one step's effect to `state` and queue it for the next
    /// [`Journal::sync`]; whether the state changed.
    pub fn record(&mut self, entry: Entry, state: &mut State) -> bool {
        let line = serde_json::to_vec(&entry).expect("an entry always serializes");
        let changed = entry.apply_to(state);
        if changed {
            self.pending.extend_from_slice(&line);
            self.pending.push(b'\n');
        }
        changed
    }

    /// Make every recorded entry durable (one write and one sync for a wave
    /// of steps); fold the journal into the stored state once it has grown
    /// as large as the state. Whether anything was written.
    pub fn sync(&mut self, state: &State) -> Result<bool, StateError> {
        if self.pending.is_empty() {
            return Ok(false);
        }
        let fresh = !self.started;
        if fresh {
            let mut header = serde_json::to_vec(&Header {
                lineage: self.base.lineage.clone(),
                serial: self.base.serial,
            })
            .expect("a header always serializes");
            header.push(b'\n');
            header.append(&mut self.pending);
            self.pending = header;
        }
        self.backend
            .append_journal(self.lock, &self.pending, fresh)?;
        self.started = true;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        if self.written > self.state_size {
            self.fold(state)?;
        }
        Ok(true)
    }

    /// Write `state` (which holds every entry) as the stored state and drop
    /// the journal. The journal is removed after the write, and a journal
    /// whose serial no longer matches the state is recognised as folded, so
    /// a crash in between is harmless.
    fn fold(&mut self, state: &State) -> Result<(), StateError> {
        self.backend
            .write_state(self.lock, Some(&self.base), state)?;
        self.started = false;
        self.backend.discard_journal(self.lock)?;
        self.base = Stamp::of(state);
        self.written = 0;
        self.state_size = self.backend.stored_size();
        Ok(())
    }

    /// Whether the state can still be written ([`Backend::confirm`]).
    pub fn confirm(&self) -> Result<(), StateError> {
        self.backend.confirm(self.lock)
    }

    /// Sync what is left and fold it into the stored state.
    pub fn finish(mut self, state: &State) -> Result<(), StateError> {
        self.sync(state)?;
        if self.started {
            self.fold(state)?;
        }
        Ok(())
    }
}

fn write_error(path: &Path, source: io::Error) -> StateError {
    StateError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Append `bytes` to the journal of the local state file at `state_path`
/// and sync it; `fresh`: they replace any journal there is.
pub(crate) fn append_file(state_path: &Path, bytes: &[u8], fresh: bool) -> Result<(), StateError> {
    let path = path_for(state_path);
    let err = |e| write_error(&path, e);
    let mut file = if fresh {
        File::create(&path).map_err(err)?
    } else {
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(err)?
    };
    file.write_all(bytes).map_err(err)?;
    file.sync_data().map_err(err)
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A journal compared with the state file beside it.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// There is no journal.
    Absent,
    /// A journal without a single entry (killed while creating it, or its
    /// entries changed nothing): removing it loses nothing.
    Empty,
    /// It extends the state file: folding it applies its entries.
    Unfolded(Unfolded),
    /// Its entries are already in the state file: a fold wrote the state and
    /// was killed before removing the journal.
    AlreadyFolded,
    /// It cannot be folded into this state file: see [`Problem`].
    Unusable(Problem),
}

/// What folding a journal changes in the state.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfolded {
    /// The state with every entry applied.
    pub state: State,
    /// The state file's serial, which the journal extends.
    pub from_serial: u64,
    /// The serial once the entries are applied.
    pub to_serial: u64,
    /// The records the entries change, as addresses (`router.public`).
    pub records: Vec<String>,
    /// Whether the last line was torn by a crash mid-write (that step is not
    /// recorded; the live world says what it did).
    pub torn: bool,
}

/// Why a journal cannot be folded into the state file beside it.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The journal extends another state than the file holds now.
    Foreign {
        /// The lineage the journal extends.
        lineage: String,
        /// The serial the journal extends.
        serial: u64,
        /// The state file's lineage and serial (`None`: no state file).
        now: Option<(String, u64)>,
        /// The records its entries change.
        records: Vec<String>,
    },
    /// A complete line of the journal is not an entry.
    Damaged {
        /// The 1-based line.
        line: usize,
        /// The parser's error.
        reason: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Foreign {
                lineage,
                serial,
                now,
                records,
            } => {
                let now = match now {
                    Some((l, s)) if l == lineage => format!("the state file is at serial {s}"),
                    Some((l, s)) => format!("the state file has lineage {l} (serial {s})"),
                    None => "there is no state file".to_string(),
                };
                write!(
                    f,
                    "it extends the state of lineage {lineage} at serial {serial}, but {now}; \
                     it holds what an interrupted apply did to {}. Put back the state it \
                     extends (`git log -p` on the state file shows each serial; `git checkout \
                     COMMIT -- FILE`) and run `cutover plan` to fold it in; or, if the state \
                     file already holds those changes, delete the journal",
                    records.join(", ")
                )
            }
            Problem::Damaged { line, reason } => write!(
                f,
                "line {line} cannot be read ({reason}), and a killed cutover tears only the \
                 last line; compare the journal with the state file by hand, then delete it"
            ),
        }
    }
}

impl std::error::Error for Problem {}

impl Found {
    /// Why the journal cannot be folded, if it cannot.
    pub fn problem(&self) -> Option<Problem> {
        match self {
            Found::Unusable(p) => Some(p.clone()),
            _ => None,
        }
    }
}

/// A journal's lines, parsed.
struct Parsed {
    /// `None`: no complete first line (killed while creating the journal).
    header: Option<Header>,
    entries: Vec<Entry>,
    torn: bool,
}

fn parse(text: &str) -> Result<Parsed, Problem> {
    let mut lines = text.split_inclusive('\n').enumerate();
    let damaged = |i: usize, e: serde_json::Error| Problem::Damaged {
        line: i + 1,
        reason: e.to_string(),
    };
    let header = match lines.next() {
        Some((i, line)) => match line.strip_suffix('\n') {
            Some(line) => Some(serde_json::from_str(line).map_err(|e| damaged(i, e))?),
            None => None,
        },
        None => None,
    };
    let mut parsed = Parsed {
        header,
        entries: Vec::new(),
        torn: false,
    };
    for (i, line) in lines {
        // A line without its newline was torn by a crash mid-write: its step
        // is not recorded, and a rerun reads the live world again.
        let Some(line) = line.strip_suffix('\n') else {
            parsed.torn = true;
            break;
        };
        parsed
            .entries
            .push(serde_json::from_str(line).map_err(|e| damaged(i, e))?);
    }
    Ok(parsed)
}

impl Entry {
    /// The record the entry changes, as an address.
    fn address(&self) -> String {
        match self {
            Entry::Environment(name, _) => format!("environment.{name}"),
            Entry::Router(name, _) | Entry::Unchecked(name, _) | Entry::Checked(name, _) => {
                format!("router.{name}")
            }
        }
    }

    /// Whether `state` holds exactly this entry's record.
    fn held_by(&self, state: &State) -> bool {
        match self {
            Entry::Environment(name, e) => state.environments.get(name) == e.as_ref(),
            Entry::Router(name, r) => state.routers.get(name) == r.as_ref(),
            Entry::Unchecked(name, names) => {
                state.unchecked.get(name).map_or(&[][..], Vec::as_slice) == names.as_slice()
            }
            Entry::Checked(name, check) => state
                .unchecked
                .get(name)
                .is_none_or(|pending| !pending.contains(check)),
        }
    }
}

/// Compare the journal beside `state_path` with `state`, the state file as
/// it is (`None`: there is none). Read the journal before the state file
/// when another run may be writing both: a fold renames the state before it
/// removes the journal, so that order never pairs a journal with a state it
/// no longer extends.
pub fn examine(state_path: &Path, state: Option<&State>) -> io::Result<Found> {
    match fs::read_to_string(path_for(state_path)) {
        Ok(text) => Ok(compare(&text, state)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Found::Absent),
        Err(e) => Err(e),
    }
}

/// The journal `text` compared with `state`.
pub(crate) fn compare(text: &str, state: Option<&State>) -> Found {
    let parsed = match parse(text) {
        Ok(p) => p,
        Err(problem) => return Found::Unusable(problem),
    };
    let Some(header) = parsed.header.filter(|_| !parsed.entries.is_empty()) else {
        return Found::Empty;
    };
    let mut records: Vec<String> = parsed.entries.iter().map(Entry::address).collect();
    records.sort();
    records.dedup();
    let foreign = |now| {
        Found::Unusable(Problem::Foreign {
            lineage: header.lineage.clone(),
            serial: header.serial,
            now,
            records: records.clone(),
        })
    };
    let Some(state) = state else {
        return foreign(None);
    };
    let now = Some((state.lineage.clone(), state.serial));
    if header.lineage != state.lineage {
        return foreign(now);
    }
    if header.serial != state.serial {
        // The last entry of each record is what a fold wrote.
        let mut last: std::collections::BTreeMap<String, &Entry> = Default::default();
        for entry in &parsed.entries {
            last.insert(entry.address(), entry);
        }
        let folded = header.serial < state.serial && last.values().all(|e| e.held_by(state));
        return if folded {
            Found::AlreadyFolded
        } else {
            foreign(now)
        };
    }
    let mut next = state.clone();
    for entry in parsed.entries {
        entry.apply_to(&mut next);
    }
    if next.serial == state.serial {
        return Found::Empty;
    }
    Found::Unfolded(Unfolded {
        from_serial: state.serial,
        to_serial: next.serial,
        state: next,
        records,
        torn: parsed.torn,
    })
}

/// [`compare`] for the fuzz target `journal` (fuzz/): not part of the API.
#[doc(hidden)]
pub fn compare_for_fuzzing(text: &str, state: Option<&State>) -> Found {
    compare(text, state)
}

/// Remove the journal of the state at `state_path` (the caller holds its
/// lock and has folded it, or found it empty or already folded).
pub(crate) fn discard(state_path: &Path) -> Result<(), StateError> {
    let path = path_for(state_path);
    remove(&path).map_err(|e| write_error(&path, e))
}

/// Apply the journal beside `state_path`, if it extends exactly `state`.
/// Returns whether entries were applied.
pub fn replay(state_path: &Path, state: &mut State) -> bool {
    match examine(state_path, Some(state)) {
        Ok(Found::Unfolded(u)) => {
            *state = u.state;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::backend::{lock_now, LocalFile};

    fn router(live: &str) -> RouterState {
        RouterState {
            backend: "haproxy".into(),
            live: Some(live.into()),
            previous: None,
            preview: None,
            rolled_back: false,
        }
    }

    #[test]
    fn a_router_record_never_keeps_its_live_colour_as_the_way_back() {
        let mut state = super::super::new_state();
        let mut r = router("green");
        r.previous = Some("green".into());
        assert!(Entry::Router("public".into(), Some(r)).apply_to(&mut state));
        assert_eq!(state.routers["public"], router("green"));
        let mut r = router("green");
        r.previous = Some("blue".into());
        assert!(Entry::Router("public".into(), Some(r.clone())).apply_to(&mut state));
        assert_eq!(state.routers["public"], r);
    }

    #[test]
    fn replay_applies_synced_entries_and_stops_at_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.state.json");
        let state = super::super::new_state();
        let mut live = state.clone();
        let backend = LocalFile::new(&path);
        let lock = lock_now(&backend, "test").unwrap();
        let mut journal = Journal::open(&backend, &lock, &live).unwrap();
        let base = live.clone();
        journal.state_size = u64::MAX; // no fold in this test
        journal.record(Entry::Router("a".into(), Some(router("green"))), &mut live);
        journal.sync(&live).unwrap();
        journal.record(Entry::Router("b".into(), Some(router("green"))), &mut live);
        journal.sync(&live).unwrap();
        let mut text = fs::read_to_string(path_for(&path)).unwrap();
        text.truncate(text.len() - 5);
        fs::write(path_for(&path), text).unwrap();

        let mut replayed = super::super::load(&path).unwrap().unwrap();
        assert_eq!(replayed.serial, base.serial + 1);
        assert_eq!(replayed.routers.get("a"), Some(&router("green")));
        assert!(!replayed.routers.contains_key("b"));
        // A fold writes the state; the old journal no longer applies.
        Journal::open(&backend, &lock, &replayed)
            .unwrap()
            .finish(&replayed)
            .unwrap();
        assert!(!path_for(&path).exists());
        assert!(!replay(&path, &mut replayed));
    }

    #[test]
    fn a_journal_of_another_serial_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.state.json");
        let mut state = super::super::new_state();
        let backend = LocalFile::new(&path);
        let lock = lock_now(&backend, "test").unwrap();
        let mut journal = Journal::open(&backend, &lock, &state).unwrap();
        journal.state_size = u64::MAX;
        let mut live = state.clone();
        journal.record(Entry::Router("a".into(), Some(router("green"))), &mut live);
        journal.sync(&live).unwrap();
        // The fold wrote the state (serial moved on) but died before removing
        // the journal: its entries are already in the state.
        state.serial += 1;
        let mut loaded = state.clone();
        assert!(!replay(&path, &mut loaded));
        assert_eq!(loaded, state);
    }
}
