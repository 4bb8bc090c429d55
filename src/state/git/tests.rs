//! The git backend against a real bare repository (a local path: git's
//! own transport, a `git-upload-pack`/`git-receive-pack` per command). The
//! end-to-end cases, over `git daemon` too, are tests/it/git_backend.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::*;
use crate::config::model::Span;
use crate::state::backend::lock_now;
use crate::state::journal::Entry;
use crate::state::model::RouterState;

/// A bare repository in a temporary directory.
struct Remote {
    dir: tempfile::TempDir,
}

impl Remote {
    fn new() -> Remote {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("git")
            .args(["init", "--quiet", "--bare"])
            .arg(dir.path().join("state.git"))
            .output()
            .unwrap_or_else(|e| panic!("git is needed ({e}): apt-get install git"));
        assert!(out.status.success(), "{out:?}");
        Remote { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("state.git")
    }

    fn backend(&self) -> Box<dyn Backend> {
        let settings = GitSettings {
            repo: "state.git".into(),
            branch: "cutover-state".into(),
            path: "deploy/cutover.state.json".into(),
            span: Span::default(),
        };
        open(&settings, self.dir.path()).unwrap()
    }

    /// `git ARGS` in the bare repository; its stdout.
    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(self.path())
            .args(args)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn has_ref(&self, name: &str) -> bool {
        !self.git(&["for-each-ref", name]).is_empty()
    }

    /// The subjects of the state branch's commits, newest first.
    fn log(&self) -> Vec<String> {
        self.git(&["log", "--format=%s", "refs/heads/cutover-state"])
            .lines()
            .map(String::from)
            .collect()
    }
}

fn router(live: &str) -> RouterState {
    RouterState {
        backend: "haproxy".into(),
        live: Some(live.into()),
        previous: None,
        preview: None,
        rolled_back: false,
    }
}

/// A journal on `base` holding `entries`, as the apply walk writes it.
fn journal_text(base: &State, entries: &[Entry]) -> Vec<u8> {
    let mut text =
        serde_json::json!({"lineage": base.lineage, "serial": base.serial}).to_string() + "\n";
    for e in entries {
        text += &serde_json::to_string(e).unwrap();
        text.push('\n');
    }
    text.into_bytes()
}

#[test]
fn the_state_round_trips_through_the_branch_one_commit_per_change() {
    let remote = Remote::new();
    let backend = remote.backend();
    assert_eq!(backend.read_state().unwrap(), None);
    assert_eq!(backend.read_lock().unwrap(), None);
    let lock = lock_now(backend.as_ref(), "init").unwrap();
    assert!(remote.has_ref("refs/heads/cutover-state-lock"));
    let mut state = crate::state::new_state();
    backend.write_state(&lock, None, &state).unwrap();
    // The same bytes again: no new commit.
    backend.write_state(&lock, None, &state).unwrap();
    let mut next = state.clone();
    next.serial = 1;
    next.routers.insert("public".into(), router("blue"));
    backend
        .write_state(&lock, Some(&Stamp::of(&state)), &next)
        .unwrap();
    lock.release().unwrap();
    assert!(!remote.has_ref("refs/heads/cutover-state-lock"));
    state = next;

    let again = remote.backend();
    assert_eq!(again.read_state().unwrap(), Some(state.clone()));
    assert_eq!(
        remote
            .git(&["show", "refs/heads/cutover-state:deploy/cutover.state.json"])
            .into_bytes(),
        crate::state::to_bytes(&state)
    );
    // Folded mid-apply only past a floor: one state commit per apply.
    assert_eq!(again.stored_size(), FOLD_FLOOR);
    assert_eq!(
        remote.log(),
        [
            "cutover init: serial 0 -> 1 (router.public)",
            "cutover init: new state, serial 0"
        ]
    );
    let author = remote.git(&[
        "log",
        "-1",
        "--format=%an <%ae>",
        "refs/heads/cutover-state",
    ]);
    assert_eq!(
        author.trim(),
        format!(
            "{0} <{0}@{1}>",
            LockInfo::ours("x").user,
            crate::state::lock::hostname()
        )
    );
    assert_eq!(
        again.describe(),
        "git state.git cutover-state:deploy/cutover.state.json"
    );
}

#[test]
fn the_lock_is_taken_once_and_names_its_holder() {
    let remote = Remote::new();
    let a = remote.backend();
    let b = remote.backend();
    let held = lock_now(a.as_ref(), "apply").unwrap();
    let mut told = Vec::new();
    let err = b
        .lock("apply", Duration::from_millis(600), &mut |h| {
            told.push(h.id.clone())
        })
        .unwrap_err();
    let LockError::Held {
        holder,
        stale,
        state,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(holder.id, held.info().id);
    assert_eq!(told, [held.info().id.clone()], "told once");
    assert!(!stale, "this process runs");
    assert_eq!(state, &b.describe());
    assert_eq!(b.read_lock().unwrap().as_ref(), Some(held.info()));
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("cutover force-unlock {}", holder.id)),
        "{msg}"
    );
    assert!(msg.contains(" ago)"), "the age: {msg}");
    drop(held);
    let second = lock_now(b.as_ref(), "apply").unwrap();
    assert_eq!(a.read_lock().unwrap().as_ref(), Some(second.info()));
}

#[test]
fn a_write_that_finds_another_state_is_refused_as_a_conflict() {
    let remote = Remote::new();
    let backend = remote.backend();
    let lock = lock_now(backend.as_ref(), "apply").unwrap();
    let state = crate::state::new_state();
    backend.write_state(&lock, None, &state).unwrap();
    // Someone writes serial 7 by hand (through another backend object,
    // as a person's push would).
    let mut theirs = state.clone();
    theirs.serial = 7;
    let tip = remote.git(&["rev-parse", "refs/heads/cutover-state"]);
    let bytes = crate::state::to_bytes(&theirs);
    let scratch = Git::init(super::remote::Remote::new(
        &remote.path().to_string_lossy(),
        Path::new("/"),
    ))
    .unwrap();
    scratch.fetch("refs/heads/cutover-state", "refs/x").unwrap();
    let blob = scratch.blob(&bytes).unwrap();
    let tree = scratch
        .tree_with(Some(tip.trim()), "deploy/cutover.state.json", &blob)
        .unwrap();
    let who = plumbing::Who {
        name: "mallory".into(),
        email: "m@x".into(),
    };
    let commit = scratch
        .commit(&tree, Some(tip.trim()), "by hand", &who)
        .unwrap();
    let update = Update {
        refname: "refs/heads/cutover-state",
        new: Some(&commit),
        expect: Some(tip.trim()),
    };
    assert_eq!(scratch.push(&[update], false).unwrap(), Pushed::Done);

    let mut ours = state.clone();
    ours.serial = 1;
    let err = backend
        .write_state(&lock, Some(&Stamp::of(&state)), &ours)
        .unwrap_err();
    let StateError::Conflict {
        expected, found, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(expected.as_ref().map(|s| s.serial), Some(0));
    assert_eq!(found.as_ref().map(|s| s.serial), Some(7));
    assert_eq!(remote.log()[0], "by hand", "nothing overwritten");
    // A stale lease is refused by the remote too: the commit we read is no
    // longer the tip.
    let stale = Update {
        refname: "refs/heads/cutover-state",
        new: Some(tip.trim()),
        expect: Some(tip.trim()),
    };
    assert!(matches!(
        scratch.push(&[stale], false).unwrap(),
        Pushed::Rejected(_)
    ));
    assert!(scratch.dir().exists());
}

#[test]
fn the_journal_lives_on_the_lock_and_force_unlock_folds_it() {
    let remote = Remote::new();
    let backend = remote.backend();
    let lock = lock_now(backend.as_ref(), "apply").unwrap();
    let mut state = crate::state::new_state();
    state.routers.insert("public".into(), router("blue"));
    backend.write_state(&lock, None, &state).unwrap();
    let entry = Entry::Router("public".into(), Some(router("green")));
    let text = journal_text(&state, &[entry]);
    let (head, rest) = text.split_at(20);
    backend.append_journal(&lock, head, true).unwrap();
    backend.append_journal(&lock, rest, false).unwrap();
    let other = remote.backend();
    assert_eq!(
        other.read_journal().unwrap().map(String::into_bytes),
        Some(text.clone())
    );
    let id = lock.info().id.clone();
    // The run ends (or dies) with its journal not folded: the lock stays.
    let kept = lock.release().unwrap_err().to_string();
    assert!(kept.contains("the lock stays"), "{kept}");
    assert!(remote.has_ref("refs/heads/cutover-state-lock"));
    assert_eq!(remote.log().len(), 1, "the journal made no state commit");

    let err = other.force_unlock("not-the-id").unwrap_err();
    assert!(matches!(err, LockError::IdMismatch { .. }), "{err:?}");
    let holder = other.force_unlock(&id).unwrap();
    assert_eq!(holder.id, id);
    assert!(!remote.has_ref("refs/heads/cutover-state-lock"));
    let folded = other.read_state().unwrap().unwrap();
    assert_eq!(folded.serial, 1);
    assert_eq!(folded.routers["public"].live.as_deref(), Some("green"));
    let log = remote.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[0].starts_with("cutover force-unlock: fold the journal of an apply (pid ")
            && log[0].ends_with("serial 0 -> 1 (router.public)"),
        "{log:?}"
    );
    let err = other.force_unlock(&id).unwrap_err();
    assert!(matches!(err, LockError::NotLocked { .. }), "{err:?}");
}

#[test]
fn a_journal_that_cannot_be_folded_keeps_the_lock() {
    let remote = Remote::new();
    let backend = remote.backend();
    let lock = lock_now(backend.as_ref(), "apply").unwrap();
    let state = crate::state::new_state();
    backend.write_state(&lock, None, &state).unwrap();
    let mut elsewhere = state.clone();
    elsewhere.lineage = "another-lineage".into();
    let entry = Entry::Router("public".into(), Some(router("green")));
    backend
        .append_journal(&lock, &journal_text(&elsewhere, &[entry]), true)
        .unwrap();
    let id = lock.info().id.clone();
    drop(lock);
    let err = remote.backend().force_unlock(&id).unwrap_err().to_string();
    assert!(err.contains("the lock was not removed"), "{err}");
    assert!(err.contains("lineage another-lineage"), "{err}");
    assert!(
        err.contains("state.git cutover-state-lock:journal"),
        "{err}"
    );
    assert!(remote.has_ref("refs/heads/cutover-state-lock"));
    assert_eq!(remote.log().len(), 1);
}

#[test]
fn an_unreachable_remote_is_a_clear_error_and_bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = GitSettings {
        repo: "missing.git".into(),
        branch: "cutover-state".into(),
        path: "cutover.state.json".into(),
        span: Span::default(),
    };
    let backend = open(&settings, dir.path()).unwrap();
    let err = backend.read_state().unwrap_err().to_string();
    assert!(
        err.starts_with("git missing.git cutover-state:cutover.state.json: git ls-remote failed: "),
        "{err}"
    );
    let err = lock_now(backend.as_ref(), "apply").unwrap_err().to_string();
    assert!(err.contains("git push failed"), "{err}");

    let bad = |settings: GitSettings| match open(&settings, dir.path()) {
        Ok(_) => panic!("accepted {settings:?}"),
        Err(e) => e.to_string(),
    };
    let err = bad(GitSettings {
        branch: "a b".into(),
        ..settings.clone()
    });
    assert!(err.contains("is not a branch name git accepts"), "{err}");
    let err = bad(GitSettings {
        path: "../x".into(),
        ..settings.clone()
    });
    assert!(err.contains("`path = \"../x\"`"), "{err}");
    let err = bad(GitSettings {
        repo: " ".into(),
        ..settings
    });
    assert!(err.contains("`repo` is empty"), "{err}");
}
