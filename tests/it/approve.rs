//! `cutover approve` with the local state (issue 14, point 3): the pause is
//! published by this test through the library while it holds the lock, as
//! the waiting apply does, and approved by the real binary, a second
//! process; what the apply would see is read back through the library.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use cutover::state::approval::{self, Pause};
use cutover::state::backend::{lock_now, Backend, LocalFile, Lock};

use crate::support::{cutover_bin, Case, Run};

/// Exit status, stdout and stderr of `run`, with what changes from run to
/// run (the directory, lock ids, who and when) filtered.
macro_rules! approve_snapshot {
    ($name:expr, $case:expr, $run:expr) => {{
        let run: &Run = &$run;
        let text = format!(
            "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
            run.code, run.stdout, run.stderr
        );
        let mut settings = insta::Settings::clone_current();
        let dir = $case.path().canonicalize().unwrap().display().to_string();
        settings.add_filter(&regex::escape(&dir), "[DIR]");
        settings.add_filter(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[LOCK]",
        );
        settings.add_filter(&regex::escape(&approval::approver()), "[USER@HOST]");
        settings.add_filter(r"\bpid \d+", "pid [PID]");
        settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
        settings.add_filter(r"\(in [^)]+\)", "(in [LEFT])");
        settings.add_filter(r"host \S+,", "host [HOST],");
        settings.bind(|| insta::assert_snapshot!($name, text));
    }};
}

/// The state the binary will use for `case` (its directory, canonical).
fn state_of(case: &Case) -> LocalFile {
    LocalFile::new(
        case.path()
            .canonicalize()
            .unwrap()
            .join("cutover.state.json"),
    )
}

/// What a waiting apply does: hold the lock and publish its pause, for
/// `routers`, five minutes from now (for every backend's tests).
pub(crate) fn waiting(backend: &dyn Backend, routers: &[&str]) -> (Lock, Pause) {
    let lock = lock_now(backend, "apply").unwrap();
    let deadline = SystemTime::now() + Duration::from_secs(300);
    let pause = Pause::new(&lock, routers.iter().map(|r| r.to_string()), deadline);
    backend.publish_pause(&lock, &pause).unwrap();
    (lock, pause)
}

/// `cutover -C DIR approve ROUTER` for each router, all started at once
/// with `env`, then waited for: what each printed.
pub(crate) fn approve_at_once(dir: &Path, routers: &[&str], env: &[(&str, &str)]) -> Vec<Run> {
    let approvers: Vec<_> = routers
        .iter()
        .map(|r| {
            Command::new(cutover_bin())
                .arg("-C")
                .arg(dir)
                .args(["approve", r])
                .env("NO_COLOR", "1")
                .envs(env.iter().copied())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start cutover approve")
        })
        .collect();
    approvers
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("wait for cutover approve");
            Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .collect()
}

fn approval_file(case: &Case) -> PathBuf {
    case.path().join("cutover.state.json.approval")
}

#[test]
fn approve_with_nothing_waiting_says_so_and_exits_1() {
    let case = Case::with_main("");
    let run = case.run(&["approve"]).code(1);
    assert_eq!(run.stdout, "");
    approve_snapshot!("approve_nothing_waiting", case, run);

    // The lock held by a run that does not wait: it is named.
    let backend = state_of(&case);
    let lock = lock_now(&backend, "apply").unwrap();
    case.run(&["approve", "public"])
        .code(1)
        .stderr_has("no apply is waiting for approval")
        .stderr_has(&format!("(lock id {})", lock.info().id));
    assert!(!approval_file(&case).exists(), "nothing written");
}

#[test]
fn approve_releases_the_waiting_apply_router_by_router() {
    let case = Case::with_main("");
    let backend = state_of(&case);
    let (lock, pause) = waiting(&backend, &["public", "admin"]);

    let run = case.run(&["approve", "router.public"]).code(0);
    approve_snapshot!("approve_one_router", case, run);
    // What the apply sees at its next poll.
    let seen = approval::poll(&backend, &lock, &pause).unwrap();
    assert_eq!(seen.approved["public"].by, approval::approver());
    assert_eq!(seen.awaiting(), ["admin"]);

    // A router it does not wait for: refused, nothing changes.
    let before = std::fs::read(approval_file(&case)).unwrap();
    case.run(&["approve", "nope"])
        .code(1)
        .stderr_has("router.nope is not waiting for approval")
        .stderr_has("waits for router.admin, router.public; nothing was approved");
    assert_eq!(std::fs::read(approval_file(&case)).unwrap(), before);

    // The rest, as JSON.
    let run = case.run(&["approve", "--json"]).code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["approved_now"], serde_json::json!(["admin"]));
    assert_eq!(json["awaiting"], serde_json::json!([]));
    assert_eq!(json["pause"]["lock_id"], lock.info().id.as_str());
    assert!(approval::poll(&backend, &lock, &pause)
        .unwrap()
        .is_approved());
    // Again: nothing new, still a success.
    case.run(&["approve"])
        .code(0)
        .stdout_has("Nothing to approve: router.admin, router.public approved already.");

    // The apply stops waiting: its pause goes, and nothing can approve it.
    backend.clear_pause(&lock).unwrap();
    assert!(!approval_file(&case).exists());
    case.run(&["approve"])
        .code(1)
        .stderr_has("no apply is waiting for approval");
}

#[test]
fn a_pause_left_by_an_apply_whose_lock_is_gone_is_refused_then_removed() {
    let case = Case::with_main("");
    let backend = state_of(&case);
    let (lock, _) = waiting(&backend, &["public"]);
    let id = lock.info().id.clone();
    // Released without clearing the pause (as after a kill and a
    // force-unlock).
    lock.release().unwrap();
    let run = case.run(&["approve"]).code(1);
    approve_snapshot!("approve_stale_pause", case, run);
    assert!(run.stderr.contains(&id), "{}", run.stderr);
    let pause = backend.read_pause().unwrap().unwrap();
    assert!(pause.approved.is_empty(), "nothing approved");

    // The next command that can take the lock removes it, and says so.
    case.run(&["state", "list"])
        .stderr_has("cutover.state.json.approval");
    assert!(!approval_file(&case).exists());
}

#[test]
fn two_approvers_at_once_both_land() {
    let case = Case::with_main("");
    let backend = state_of(&case);
    let routers = ["a", "b", "c", "d"];
    let (lock, pause) = waiting(&backend, &routers);
    for run in approve_at_once(case.path(), &routers, &[]) {
        run.code(0);
    }
    let seen = approval::poll(&backend, &lock, &pause).unwrap();
    assert!(seen.is_approved(), "every approval kept: {seen:?}");
}
