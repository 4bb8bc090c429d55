//! The approval channel on a git remote: a pause published by a runner
//! holding the lock (this test, through the library, as the waiting apply
//! does) is approved by `cutover approve` from another checkout, through a
//! real `git daemon`, and the runner sees it; approvers never touch the
//! lock branch; concurrent approvers all land, one commit each; a pause
//! whose lock was force-unlocked is refused.

use cutover::config::model::{GitSettings, Span};
use cutover::state::approval::{self, Pause};
use cutover::state::backend::{lock_now, Backend};

use super::{backend_block, LOCK_BRANCH};
use crate::approve::{approve_at_once, waiting};
use crate::git_remote_support::{BareRepo, GitDaemon};
use crate::support::Case;

const APPROVAL_BRANCH: &str = "refs/heads/cutover-state-approval";

/// The runner's view of the state on `url`, through the library.
fn library(url: &str) -> Box<dyn Backend> {
    let settings = GitSettings {
        repo: url.to_owned(),
        branch: "cutover-state".into(),
        path: "cutover.state.json".into(),
        span: Span::default(),
    };
    cutover::state::git::open(&settings, std::path::Path::new(".")).unwrap()
}

#[test]
fn git_a_pause_is_approved_through_the_daemon_by_other_processes_and_all_land() {
    let repo = BareRepo::new();
    let daemon = GitDaemon::start(repo.base());
    let url = daemon.url("state.git");
    let other = Case::with_main(&backend_block(&url));
    other
        .run(&["approve"])
        .code(1)
        .stderr_has("no apply is waiting for approval on git ")
        .stderr_has("nobody holds its lock");

    let backend = library(&url);
    let (lock, pause) = waiting(backend.as_ref(), &["a", "b", "c"]);
    let lock_tip = repo.rev(LOCK_BRANCH).expect("the lock branch");
    let stored: Pause =
        serde_json::from_slice(&repo.show(&format!("{APPROVAL_BRANCH}:approval.json"))).unwrap();
    assert_eq!(stored, pause);

    other
        .run(&["approve", "a"])
        .code(0)
        .stdout_has("approved now by");
    let seen = approval::poll(backend.as_ref(), &lock, &pause).unwrap();
    assert_eq!(seen.approved["a"].by, approval::approver());
    assert_eq!(seen.awaiting(), ["b", "c"]);

    // Two at once: the push that loses its lease reads again.
    for run in approve_at_once(other.path(), &["router.b", "router.c"], &[]) {
        run.code(0);
    }
    let seen = approval::poll(backend.as_ref(), &lock, &pause).unwrap();
    assert!(seen.is_approved(), "every approval kept: {seen:?}");
    // One commit per approval on top of the pause; the lock branch is the
    // apply's alone.
    let mut subjects: Vec<String> = repo
        .log("cutover-state-approval")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(
        subjects.pop().as_deref(),
        Some("cutover apply: waiting for approval of router.a, router.b, router.c")
    );
    subjects.sort();
    let by = approval::approver();
    assert_eq!(
        subjects,
        ["a", "b", "c"].map(|r| format!("cutover approve: router.{r} by {by}"))
    );
    assert_eq!(repo.rev(LOCK_BRANCH), Some(lock_tip), "untouched");
    backend.check_writable(&lock).unwrap();

    backend.clear_pause(&lock).unwrap();
    assert_eq!(repo.rev(APPROVAL_BRANCH), None, "removed");
    lock.release().unwrap();
    assert_eq!(repo.rev(LOCK_BRANCH), None);
}

#[test]
fn git_a_pause_whose_lock_was_force_unlocked_is_refused() {
    let repo = BareRepo::new();
    let url = repo.file_url();
    let other = Case::with_main(&backend_block(&url));
    let backend = library(&url);
    let (lock, _) = waiting(backend.as_ref(), &["public"]);
    let id = lock.info().id.clone();
    other.run(&["force-unlock", &id]).code(0);
    other
        .run(&["approve"])
        .code(1)
        .stderr_has(&format!("no longer holds its lock {id}"))
        .stderr_has("nothing was approved");
    let stored = backend.read_pause().unwrap().expect("left as it was");
    assert!(stored.approved.is_empty());
    // Another run holds the lock now: its clear leaves the old pause alone.
    let next = library(&url);
    let theirs = lock_now(next.as_ref(), "apply").unwrap();
    other
        .run(&["approve", "public"])
        .code(1)
        .stderr_has("the lock is held by an apply");
    next.clear_pause(&theirs).unwrap();
    assert!(repo.rev(APPROVAL_BRANCH).is_some());
    backend.clear_pause(&lock).unwrap();
    assert_eq!(repo.rev(APPROVAL_BRANCH), None);
}
