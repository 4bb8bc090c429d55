//! The files cutover writes beside the state, and how every file of the core
//! is replaced.
//!
//! [`write_atomically`] is the one way the core replaces a file with new bytes
//! (the state, the fold of a journal, saved plans, `fmt`): a temporary file in
//! the same directory, fsync, rename, fsync of the directory, so that a crash
//! at any moment leaves either the old or the new file. A crash can still
//! leave the temporary file itself. The state's temporary files, and the probe
//! of [`check_writable`], are therefore named after the state file
//! (`.cutover-state-<state file name>.XXXXXX.tmp`), so that [`leftovers`] can
//! find exactly the ones a killed run of *this* state left, and nothing else.
//! They are only ever removed under the state lock ([`remove_leftovers`] takes
//! it as proof): every writer of the state holds that lock, so no leftover
//! found under it can be another run's write in flight. The one file beside
//! the state written without that lock, the approval file (an approver
//! writes it while the waiting apply holds the lock), has temporary files of
//! its own name (`.cutover-approval-<state file name>.XXXXXX.tmp`); its
//! writers and the removal of leftovers are kept apart by a `flock` on the
//! lock file instead (state/approval/local.rs).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::lock::StateLock;

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replace `path` with `bytes` atomically (cutover_provider::atomic, the
/// one helper every file cutover replaces goes through): a temporary file
/// named `<temp_prefix>XXXXXX.tmp` in the same directory, fsynced, renamed
/// over `path`, then the directory fsynced. The file keeps the permissions
/// of the one it replaces; a new file gets `new_mode`. A symlink in the
/// state's place is replaced, not followed, so leftovers stay beside it.
pub fn write_atomically(
    path: &Path,
    bytes: &[u8],
    temp_prefix: &str,
    new_mode: u32,
) -> io::Result<()> {
    let how = cutover_provider::atomic::Replace {
        temp_prefix,
        new_mode,
        follow_symlink: false,
    };
    cutover_provider::atomic::replace(path, bytes, &how)
}

/// Every temporary name ends so.
const TEMP_SUFFIX: &str = ".tmp";
/// Random characters in a temporary name (tempfile's alphanumerics).
const RAND_LEN: usize = 6;
/// The prefix of the state's temporary files, before the state file's name.
const STATE_TEMP: &str = ".cutover-state-";
/// The prefix of the approval file's temporary files, before the state
/// file's name (state/approval/local.rs).
const APPROVAL_TEMP: &str = ".cutover-approval-";
/// The write probe's name before cutover named it after the state file.
const OLD_PROBE: &str = ".cutover-write-check";

/// The prefix of the temporary files of the state at `state_path`.
pub(crate) fn state_temp_prefix(state_path: &Path) -> String {
    format!("{STATE_TEMP}{}.", file_name(state_path))
}

/// The prefix of the temporary files of the approval file of the state at
/// `state_path` (`<state>.approval`).
pub(crate) fn approval_temp_prefix(state_path: &Path) -> String {
    format!("{APPROVAL_TEMP}{}.", file_name(state_path))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Whether `name` is `<prefix>` followed by exactly the random part and the
/// suffix, as [`write_atomically`] names its temporary files.
fn is_temp_name(name: &str, prefix: &str, suffix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .is_some_and(|random| {
            random.len() == RAND_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Whether `name`, in the directory of the state file `state_name`, is a
/// temporary file that cutover made for that state: its own temporary files
/// and probes (named after the state), those of its approval file
/// (`.cutover-approval-<state>.XXXXXX.tmp`), and the two names an earlier cutover
/// used for every state of a directory (`.cutover-state-XXXXXX.tmp`, the
/// probe `.cutover-write-check` and its `.cutover-write-checkXXXXXX`
/// fallback), which no cutover makes any more.
fn is_leftover(name: &str, state_name: &str) -> bool {
    let ours = format!("{STATE_TEMP}{state_name}.");
    let approval = format!("{APPROVAL_TEMP}{state_name}.");
    is_temp_name(name, &ours, TEMP_SUFFIX)
        || is_temp_name(name, &approval, TEMP_SUFFIX)
        || is_temp_name(name, STATE_TEMP, TEMP_SUFFIX)
        || name == OLD_PROBE
        || is_temp_name(name, OLD_PROBE, "")
}

/// The leftover temporary files beside the state at `state_path`, sorted:
/// regular files whose names cutover gives its temporary files for this
/// state (never a symlink, a directory, or any other name).
pub fn leftovers(state_path: &Path) -> io::Result<Vec<PathBuf>> {
    let state_name = file_name(state_path);
    let entries = match fs::read_dir(dir_of(state_path)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_leftover(name, &state_name) && entry.file_type()?.is_file() {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Remove the leftovers of [`leftovers`]; `lock` (the state's lock, held by
/// the caller) is the proof that none of them is a write in flight. Returns
/// what was removed.
pub fn remove_leftovers(state_path: &Path, lock: &StateLock) -> io::Result<Vec<PathBuf>> {
    assert!(
        lock.guards(state_path),
        "remove_leftovers needs the lock of {}",
        state_path.display()
    );
    let mut removed = Vec::new();
    for path in leftovers(state_path)? {
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Refuse to start an apply whose state could not be recorded: a state file
/// that cannot be written would lose what the apply did, so this is checked
/// (by the caller, under the state lock) before anything live changes. The
/// probe is a temporary file of the state, created exclusively (never through
/// a symlink or into someone else's file), synced and removed as the atomic
/// write will; one left by a run killed at that moment is a leftover that the
/// next command holding the lock removes.
pub fn check_writable(state_path: &Path) -> io::Result<()> {
    let mut probe = tempfile::Builder::new()
        .prefix(&state_temp_prefix(state_path))
        .suffix(TEMP_SUFFIX)
        .rand_bytes(RAND_LEN)
        .tempfile_in(dir_of(state_path))?;
    probe.write_all(b"x")?;
    probe.as_file().sync_all()?;
    // The file itself must be replaceable too: an immutable file or a
    // read-only bind mount of just the file refuses an open for writing
    // (opening to append changes nothing).
    if state_path.exists() {
        fs::OpenOptions::new().append(true).open(state_path)?;
    }
    probe.close()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    /// The names in `dir`, sorted (for the tests of the files beside the
    /// state).
    pub(crate) fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_atomically_renames_into_place_and_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.out");
        write_atomically(&path, b"one", ".cutover-plan-", 0o600).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let inode = fs::metadata(&path).unwrap().ino();
        write_atomically(&path, b"two", ".cutover-plan-", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        assert_ne!(
            fs::metadata(&path).unwrap().ino(),
            inode,
            "renamed, not rewritten"
        );
        assert_eq!(names_in(dir.path()), ["plan.out"]);
    }

    #[test]
    fn the_state_s_temporary_files_are_named_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("prod.json");
        let mut tmp = tempfile::Builder::new()
            .prefix(&state_temp_prefix(&state))
            .suffix(TEMP_SUFFIX)
            .rand_bytes(RAND_LEN)
            .tempfile_in(dir.path())
            .unwrap();
        tmp.write_all(b"{").unwrap();
        let name = tmp.path().file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with(".cutover-state-prod.json."), "{name}");
        assert_eq!(leftovers(&state).unwrap(), [tmp.path().to_owned()]);
        // Another state of the same directory does not see it.
        assert_eq!(
            leftovers(&dir.path().join("prod")).unwrap(),
            [] as [PathBuf; 0]
        );
        assert_eq!(
            leftovers(&dir.path().join("staging.json")).unwrap(),
            [] as [PathBuf; 0]
        );
    }

    #[test]
    fn only_cutover_s_own_leftovers_are_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("cutover.state.json");
        let ours = [
            ".cutover-state-cutover.state.json.aB3xYz.tmp",
            ".cutover-state-Q1w2E3.tmp",
            ".cutover-write-check",
            ".cutover-write-checkZ9y8X7",
        ];
        let others = [
            "cutover.state.json",
            "cutover.state.json.journal",
            ".cutover-state-staging.json.aB3xYz.tmp",
            ".cutover-state-notes.txt",
            ".cutover-state-toolong1.tmp",
            ".cutover-write-check-mine",
            "keep.tmp",
            ".cutover-plan-aB3xYz.tmp",
        ];
        for name in ours.iter().chain(&others) {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        // A directory and a symlink with our names are not files we made.
        fs::create_dir(dir.path().join(".cutover-state-DIRxx1.tmp")).unwrap();
        let target = dir.path().join("precious");
        fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(".cutover-state-LNKxx1.tmp")).unwrap();

        let mut want: Vec<PathBuf> = ours.iter().map(|n| dir.path().join(n)).collect();
        want.sort();
        assert_eq!(leftovers(&state).unwrap(), want);
        let lock = StateLock::acquire(&state, "test", Duration::ZERO).unwrap();
        assert_eq!(remove_leftovers(&state, &lock).unwrap(), want);
        drop(lock);
        let mut left: Vec<&str> = others.to_vec();
        left.extend([
            ".cutover-state-DIRxx1.tmp",
            ".cutover-state-LNKxx1.tmp",
            "precious",
        ]);
        left.sort();
        assert_eq!(names_in(dir.path()), left);
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
    }

    #[test]
    #[should_panic(expected = "needs the lock")]
    fn removing_leftovers_needs_this_state_s_lock() {
        let dir = tempfile::tempdir().unwrap();
        let other =
            StateLock::acquire(&dir.path().join("other.json"), "test", Duration::ZERO).unwrap();
        let _ = remove_leftovers(&dir.path().join("cutover.state.json"), &other);
    }

    #[test]
    fn the_write_check_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("cutover.state.json");
        check_writable(&state).unwrap();
        assert_eq!(names_in(dir.path()), [] as [&str; 0]);
        fs::write(&state, "{}").unwrap();
        check_writable(&state).unwrap();
        assert_eq!(names_in(dir.path()), ["cutover.state.json"]);
        assert_eq!(fs::read_to_string(&state).unwrap(), "{}");
    }

    #[test]
    fn a_state_that_cannot_be_opened_for_writing_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the state file should be: it cannot be opened
        // for writing, whoever runs the test (root included).
        let state = dir.path().join("cutover.state.json");
        fs::create_dir(&state).unwrap();
        assert!(check_writable(&state).is_err());
        assert_eq!(names_in(dir.path()), ["cutover.state.json"]);
    }
}
