//! The state file: what cutover remembers between runs, and how it is kept safe.
//!
//! The state is meant to be committed to version control, so its bytes matter:
//! [`to_bytes`] is deterministic (sorted keys, two-space indent, final newline),
//! [`save`] leaves the file untouched when nothing changed, and replaces it
//! atomically otherwise ([`files::write_atomically`]), so that a crash at any
//! moment leaves either the old or the new state. A state that `git merge`
//! left with conflict markers is refused with a clear message instead of a
//! JSON syntax error. Concurrent runs are kept apart by [`lock`]. Commands
//! read the state through [`open()`], which first folds into the file what an
//! interrupted apply left in its [`journal`], so the file is the truth.

pub mod approval;
pub mod backend;
pub mod check;
pub mod files;
pub mod git;
pub mod journal;
pub mod lock;
pub mod model;
mod open;
pub mod pg;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use lock::{force_unlock, read_lock, LockError, LockInfo, StateLock};
pub use model::{EnvironmentState, RouterState, State, STATE_VERSION};
pub use open::{inspect, open, Access, Blocked, Folded, Note, Opened, Pending};

/// A state in a sentence: "the state /x/cutover.state.json" for a file; a
/// shared backend names itself (`PostgreSQL state "prod" (...)`, `git ...`).
pub fn named(state: &str) -> String {
    if state.starts_with(['/', '.']) {
        format!("the state {state}")
    } else {
        state.to_owned()
    }
}

/// The state file's name when the configuration does not choose one.
pub const DEFAULT_STATE_FILE: &str = "cutover.state.json";

/// Why a state file could not be read or written.
#[derive(Debug, Error)]
pub enum StateError {
    /// The file exists but could not be read.
    #[error("failed to read state file {}", path.display())]
    Read {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file contains git merge conflict markers.
    #[error(
        "state file {} contains git merge conflict markers (first at line {line}): it was \
         merged by git with conflicting changes and must be resolved by hand before cutover \
         can use it; keep the side with the higher serial (normally the one that was applied \
         last), remove the markers, then run `cutover plan` to check",
        path.display()
    )]
    ConflictMarkers {
        /// The state file.
        path: PathBuf,
        /// The 1-based line of the first `<<<<<<<` marker.
        line: usize,
    },
    /// The file is not JSON at all.
    #[error(
        "state file {} is not valid JSON (line {}, column {}): {source}",
        path.display(), source.line(), source.column()
    )]
    NotJson {
        /// The state file.
        path: PathBuf,
        /// The parser's error, which carries the line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The file was written by a cutover that uses another state format.
    #[error(
        "state file {} has format version {found}, but this cutover reads version {}: {}",
        path.display(), STATE_VERSION, version_advice(*found)
    )]
    UnsupportedVersion {
        /// The state file.
        path: PathBuf,
        /// The version found in the file (`None`: missing or not a number).
        found: VersionFound,
    },
    /// The file is JSON of the right version but not a cutover state.
    #[error(
        "state file {} is not a valid cutover state (line {}, column {}): {source}",
        path.display(), source.line(), source.column()
    )]
    Invalid {
        /// The state file.
        path: PathBuf,
        /// The deserializer's error, which carries the line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A journal beside the state that cannot be folded into it; a command
    /// that changes the state refuses to go on rather than lose it.
    #[error("the journal {} cannot be folded into the state file: {problem}", journal.display())]
    Journal {
        /// The journal file.
        journal: PathBuf,
        /// Why not.
        problem: journal::Problem,
    },
    /// A compare-and-swap write found another state than the one it was
    /// to replace: another run wrote the state since this one read it.
    #[error(
        "{} was changed by another run: expected {}, found {}; nothing was \
         written. Run `cutover plan` again: it reads the state as it is now",
        named(state),
        expected.as_ref().map_or("no state".to_string(), |s| s.to_string()),
        found.as_ref().map_or("no state".to_string(), |s| s.to_string())
    )]
    Conflict {
        /// The state, as its backend names it.
        state: String,
        /// What the write expected to replace (`None`: no state).
        expected: Option<backend::Stamp>,
        /// What the backend holds (`None`: no state).
        found: Option<backend::Stamp>,
    },
    /// A shared backend could not be reached or refused an operation.
    #[error("{state}: {message}")]
    Backend {
        /// The state, as its backend names it.
        state: String,
        /// What failed, and why.
        message: String,
    },
    /// The new state could not be written.
    #[error("failed to write state file {}", path.display())]
    Write {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The `version` found in a state file, for [`StateError::UnsupportedVersion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionFound {
    /// A number.
    Number(u64),
    /// No `version` field, or not a whole number.
    Missing,
}

impl std::fmt::Display for VersionFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionFound::Number(n) => write!(f, "{n}"),
            VersionFound::Missing => f.write_str("(missing)"),
        }
    }
}

fn version_advice(found: VersionFound) -> &'static str {
    match found {
        VersionFound::Number(n) if n > u64::from(STATE_VERSION) => {
            "it was written by a newer cutover; upgrade cutover to use it"
        }
        _ => "this is not a state file this cutover knows how to read",
    }
}

/// A new, empty state with a fresh lineage and serial 0.
pub fn new_state() -> State {
    State {
        version: STATE_VERSION,
        lineage: uuid::Uuid::new_v4().to_string(),
        serial: 0,
        environments: Default::default(),
        routers: Default::default(),
        unchecked: Default::default(),
    }
}

/// Create the state file at `path`: a new state, fresh lineage, serial 0.
pub fn create(path: &Path) -> Result<State, StateError> {
    let state = new_state();
    save(path, &state)?;
    Ok(state)
}

/// The state a plan is made against when there is no state file yet: no
/// lineage, serial 0, nothing recorded.
pub fn empty_state() -> State {
    State {
        version: STATE_VERSION,
        lineage: String::new(),
        serial: 0,
        environments: Default::default(),
        routers: Default::default(),
        unchecked: Default::default(),
    }
}

/// The state's bytes as they are written to disk: sorted keys, two-space
/// indent, final newline. Equal states always give equal bytes.
pub fn to_bytes(state: &State) -> Vec<u8> {
    // Going through `Value` and sorting makes the order independent of how the
    // provider-private `Value`s were built (and of serde_json's
    // `preserve_order` feature, should a dependency ever turn it on).
    let mut value = serde_json::to_value(state).expect("a State always serializes");
    value.sort_all_objects();
    let mut bytes = serde_json::to_vec_pretty(&value).expect("a Value always serializes");
    bytes.push(b'\n');
    bytes
}

/// Parses a state from its bytes; `path` only names the file in errors.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<State, StateError> {
    if let Some(line) = conflict_marker_line(bytes) {
        return Err(StateError::ConflictMarkers {
            path: path.to_owned(),
            line,
        });
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|source| StateError::NotJson {
            path: path.to_owned(),
            source,
        })?;
    let found = match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(n) => VersionFound::Number(n),
        None => VersionFound::Missing,
    };
    if found != VersionFound::Number(u64::from(STATE_VERSION)) {
        return Err(StateError::UnsupportedVersion {
            path: path.to_owned(),
            found,
        });
    }
    // Parse the bytes again rather than the `Value`, so errors keep their line
    // and column.
    serde_json::from_slice(bytes).map_err(|source| StateError::Invalid {
        path: path.to_owned(),
        source,
    })
}

fn conflict_marker_line(bytes: &[u8]) -> Option<usize> {
    bytes
        .split(|&b| b == b'\n')
        .position(|line| line.starts_with(b"<<<<<<<"))
        .map(|index| index + 1)
}

/// Reads the state file with any journal beside it replayed in memory (the
/// file is not changed); `Ok(None)` when it does not exist (no apply yet).
/// Commands use [`open()`], which folds the journal into the file.
pub fn load(path: &Path) -> Result<Option<State>, StateError> {
    let Some(mut state) = from_file(path)? else {
        return Ok(None);
    };
    // Steps an apply completed after its last full write (see `journal`).
    journal::replay(path, &mut state);
    Ok(Some(state))
}

/// Reads the state file alone, without its journal; `Ok(None)` when it does
/// not exist.
pub(crate) fn from_file(path: &Path) -> Result<Option<State>, StateError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    from_bytes(path, &bytes).map(Some)
}

/// Writes the state file atomically; does nothing when the file already holds
/// exactly these bytes, so a no-change apply leaves it untouched (mtime
/// included).
pub fn save(path: &Path, state: &State) -> Result<(), StateError> {
    save_if(path, state, |_| Ok(()))
}

/// [`save`], after `check` accepted the bytes the file holds now (`None`:
/// no file): one read of the file serves both.
pub(crate) fn save_if(
    path: &Path,
    state: &State,
    check: impl FnOnce(Option<&[u8]>) -> Result<(), StateError>,
) -> Result<(), StateError> {
    let bytes = to_bytes(state);
    let write_error = |source| StateError::Write {
        path: path.to_owned(),
        source,
    };
    let existing = match fs::read(path) {
        Ok(existing) => Some(existing),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        // Unreadable now means the rename below would most likely fail too,
        // and overwriting a file we cannot read is not ours to decide.
        Err(source) => return Err(write_error(source)),
    };
    if existing.as_deref() == Some(bytes.as_slice()) {
        return Ok(());
    }
    check(existing.as_deref())?;
    // A new state gets the usual 0644 rather than a temporary file's 0600:
    // it holds no secrets and is meant to be committed.
    files::write_atomically(path, &bytes, &files::state_temp_prefix(path), 0o644)
        .map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/state");

    /// Found by the `state` fuzz target: a huge number in provider-private
    /// data must survive a load and save byte for byte (serde_json's
    /// `float_roundtrip`).
    #[test]
    fn huge_numbers_round_trip() {
        let input = br#"{"version":1,"lineage":"x","serial":0,"environments":{"g":{"backend":"p","release":"r","endpoints":[],"private":4311888888988888888888888888888888888888888888888888888}}}"#;
        let state = from_bytes(Path::new("s.json"), input).unwrap();
        let once = to_bytes(&state);
        let again = to_bytes(&from_bytes(Path::new("s.json"), &once).unwrap());
        assert_eq!(once, again);
    }

    #[test]
    fn fixtures_round_trip_byte_for_byte() {
        let mut seen = 0;
        for entry in fs::read_dir(FIXTURES).unwrap() {
            let path = entry.unwrap().path();
            let original = fs::read(&path).unwrap();
            let state = load(&path).unwrap().unwrap();
            let again = to_bytes(&state);
            assert_eq!(
                String::from_utf8_lossy(&again),
                String::from_utf8_lossy(&original),
                "{} does not round-trip",
                path.display()
            );
            seen += 1;
        }
        assert!(seen >= 3, "expected the state fixtures in {FIXTURES}");
    }

    #[test]
    fn new_state_has_fresh_lineage() {
        let (a, b) = (new_state(), new_state());
        assert_eq!((a.version, a.serial), (STATE_VERSION, 0));
        assert_ne!(a.lineage, b.lineage);
        assert!(uuid::Uuid::parse_str(&a.lineage).is_ok());
        let bytes = String::from_utf8(to_bytes(&a)).unwrap();
        assert!(bytes.starts_with("{\n  \"environments\": {},\n"), "{bytes}");
        assert!(bytes.ends_with("}\n"));
    }

    #[test]
    fn save_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.state.json");
        let mut state = new_state();
        save(&path, &state).unwrap();
        assert_eq!(fs::read(&path).unwrap(), to_bytes(&state));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        let first_inode = fs::metadata(&path).unwrap().ino();

        state.serial += 1;
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap().unwrap(), state);
        // A new inode: the file was renamed into place, never rewritten in
        // place, so a reader (or a crash) sees the old or the new state.
        assert_ne!(fs::metadata(&path).unwrap().ino(), first_inode);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["cutover.state.json"]);
    }

    #[test]
    fn save_skips_identical_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.state.json");
        let fixture = Path::new(FIXTURES).join("blue-green.json");
        fs::copy(&fixture, &path).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let before = fs::metadata(&path).unwrap();

        let state = load(&path).unwrap().unwrap();
        save(&path, &state).unwrap();
        let after = fs::metadata(&path).unwrap();
        assert_eq!(after.modified().unwrap(), old);
        assert_eq!(after.ino(), before.ino());
    }

    #[test]
    fn save_keeps_the_mode_of_the_file_it_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        save(&path, &new_state()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn missing_file_is_no_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(&dir.path().join("nope.json")).unwrap(), None);
    }

    fn load_err(content: &str) -> (StateError, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.state.json");
        fs::write(&path, content).unwrap();
        let err = load(&path).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        (err, msg)
    }

    #[test]
    fn garbage_names_line_and_column() {
        let (err, msg) = load_err("{\n  \"version\": 1,\n  oops\n}\n");
        assert!(matches!(err, StateError::NotJson { .. }), "{err:?}");
        assert!(msg.contains("not valid JSON (line 3, column 3)"), "{msg}");
    }

    #[test]
    fn conflict_markers_say_git_merged_it() {
        let (err, msg) = load_err(
            "{\n<<<<<<< HEAD\n  \"serial\": 3,\n=======\n  \"serial\": 4,\n>>>>>>> main\n}\n",
        );
        assert!(matches!(err, StateError::ConflictMarkers { line: 2, .. }));
        assert!(msg.contains("merged by git"), "{msg}");
        assert!(msg.contains("must be resolved"), "{msg}");
    }

    #[test]
    fn other_versions_are_refused() {
        let (err, msg) = load_err(r#"{"version": 2, "lineage": "x", "serial": 1}"#);
        assert!(matches!(
            err,
            StateError::UnsupportedVersion {
                found: VersionFound::Number(2),
                ..
            }
        ));
        assert!(msg.contains("newer cutover"), "{msg}");
        let (err, _) = load_err(r#"{"lineage": "x"}"#);
        assert!(matches!(
            err,
            StateError::UnsupportedVersion {
                found: VersionFound::Missing,
                ..
            }
        ));
    }

    #[test]
    fn wrong_shape_is_invalid_with_position() {
        let (err, msg) = load_err("{\"version\": 1, \"lineage\": \"x\", \"serial\": \"seven\"}");
        assert!(matches!(err, StateError::Invalid { .. }), "{err:?}");
        assert!(msg.contains("not a valid cutover state (line 1"), "{msg}");
    }
}
