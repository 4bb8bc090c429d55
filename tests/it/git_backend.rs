//! The git state backend end to end (issue 13, points 3 and 6): the real
//! cutover binary against a real bare repository, reached by path, over
//! `file://` and through a real `git daemon` on loopback, with real
//! processes and, where a router is needed, a real HAProxy (crash.rs
//! `Rig`). What is checked is read from the remote itself: `git log` of
//! the state branch (one commit per apply that changed something, each
//! saying what changed), the file at its tip (byte for byte what `cutover
//! show --json` prints), and the lock branch (gone after every command;
//! left, with its journal, by a holder that died).

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::{demo_pids, kill_group, Rig, FAST_HEALTH};
use crate::git_remote_support::{git_ok, BareRepo, GitDaemon};
use crate::support::{cutover_bin, demo_app_bin, Case};

mod approval;

const STATE_BRANCH: &str = "refs/heads/cutover-state";
const LOCK_BRANCH: &str = "refs/heads/cutover-state-lock";

/// The `cutover {}` block that puts the state on `repo`.
fn backend_block(repo: &str) -> String {
    format!("cutover {{\n  backend \"git\" {{\n    repo = \"{repo}\"\n  }}\n}}\n")
}

/// A Rig (HAProxy, demo-app ports, a checkout directory) whose state is on
/// a bare repository.
struct GitRig {
    // Field order is drop order: the demo-apps and HAProxy first, then the
    // daemon, then the repository.
    rig: Rig,
    daemon: Option<GitDaemon>,
    repo: BareRepo,
    /// `repo` as the configuration names it.
    url: String,
}

impl GitRig {
    /// The remote over `file://`.
    fn file() -> GitRig {
        let repo = BareRepo::new();
        let url = repo.file_url();
        GitRig {
            rig: Rig::start(),
            daemon: None,
            repo,
            url,
        }
    }

    /// The remote as a path relative to the checkout directory.
    fn relative_path() -> GitRig {
        let mut g = GitRig::file();
        let up = Path::new("..").join(g.repo.base().file_name().unwrap());
        assert_eq!(
            g.rig.case.path().parent(),
            g.repo.base().parent(),
            "both in the temporary directory"
        );
        g.url = up.join("state.git").display().to_string();
        g
    }

    /// The remote through a `git daemon` on loopback.
    fn daemon() -> GitRig {
        let repo = BareRepo::new();
        let daemon = GitDaemon::start(repo.base());
        let url = daemon.url("state.git");
        GitRig {
            rig: Rig::start(),
            daemon: Some(daemon),
            repo,
            url,
        }
    }

    fn write(&self, config: &str) {
        self.rig
            .write(&format!("{}{config}", backend_block(&self.url)));
    }

    /// How the state is named in messages.
    fn describe(&self) -> String {
        format!("git {} cutover-state:cutover.state.json", self.url)
    }

    /// The state at the tip of the state branch.
    fn state(&self) -> Value {
        let bytes = self
            .repo
            .show(&format!("{STATE_BRANCH}:cutover.state.json"));
        serde_json::from_slice(&bytes).expect("the state on the branch parses")
    }

    /// The subjects of the state branch, newest first.
    fn subjects(&self) -> Vec<String> {
        self.repo
            .log("cutover-state")
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    fn locked(&self) -> bool {
        self.repo.rev(LOCK_BRANCH).is_some()
    }

    /// The holder's details on the lock branch.
    fn lock_info(&self) -> Value {
        serde_json::from_slice(&self.repo.show(&format!("{LOCK_BRANCH}:lock.json")))
            .expect("lock.json parses")
    }

    /// The records the journal on the lock branch changes.
    fn journal_records(&self) -> Vec<String> {
        let text = self.repo.show(&format!("{LOCK_BRANCH}:journal"));
        String::from_utf8(text)
            .unwrap()
            .lines()
            .skip(1)
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|e| {
                let (kind, v) = e.as_object()?.iter().next()?;
                Some(format!("{kind}.{}", v[0].as_str()?))
            })
            .collect()
    }

    /// The pid the state records for environment `name`.
    fn state_pid(&self, name: &str) -> i32 {
        self.state()["environments"][name]["private"]["pid"]
            .as_i64()
            .expect("a recorded pid") as i32
    }

    /// Exactly the recorded demo-app runs for each colour: nothing orphaned.
    #[track_caller]
    fn assert_one_process_per_colour(&self) {
        for colour in ["blue", "green"] {
            assert_eq!(
                demo_pids(self.rig.port(colour)),
                [self.state_pid(colour)],
                "one {colour}, the recorded one"
            );
        }
    }

    /// Nothing of the state in the checkout: no state file, journal or lock.
    #[track_caller]
    fn assert_checkout_clean(&self) {
        let files = self.rig.files();
        assert!(
            !files.iter().any(|f| f.starts_with("cutover.state")),
            "{files:?}"
        );
    }
}

/// blue at 1 live; green at `green_rel`, healthy only `delay` seconds after
/// it starts; `live` the router's colour.
fn slow_green(rig: &Rig, green_rel: &str, delay: &str, live: &str) -> String {
    format!(
        "{}{}{}",
        rig.process_env("blue", "1", &[], FAST_HEALTH),
        rig.process_env("green", green_rel, &["--healthy-after", delay], FAST_HEALTH),
        rig.router(live)
    )
}

#[test]
fn git_state_one_commit_per_apply_that_changes_something() {
    let g = GitRig::file();
    g.write(&g.rig.simple("1", "1", "blue"));
    g.rig
        .run(&["init"])
        .code(0)
        .stdout_has(&format!("Created state {} (lineage ", g.describe()));
    assert_eq!(g.subjects(), ["cutover init: new state, serial 0"]);
    assert!(!g.locked(), "init released the lock");
    let lineage = g.state()["lineage"].clone();

    g.rig.run(&["plan"]).code(0).stdout_has("environment.green");
    assert_eq!(g.subjects().len(), 1, "a plan writes nothing");
    assert!(!g.locked());
    // Case::run checks after a successful apply that a plan finds nothing.
    g.rig.run(&["apply", "--auto-approve"]).code(0);
    g.rig.assert_routes_to("blue");
    let first = g.state();
    let serial = first["serial"].as_u64().unwrap();
    assert_eq!(
        g.subjects(),
        [
            format!(
                "cutover apply: serial 0 -> {serial} (environment.blue, environment.green, \
                 router.public)"
            ),
            "cutover init: new state, serial 0".to_string()
        ]
    );
    assert_eq!(first["lineage"], lineage);
    assert!(!g.locked());

    // No change: no commit.
    g.rig
        .run(&["apply", "--auto-approve"])
        .code(0)
        .stdout_has("No changes");
    assert_eq!(g.subjects().len(), 2);

    // Green 2 and the cut-over to it: one commit, saying so.
    g.write(&g.rig.simple("1", "2", "green"));
    g.rig.run(&["apply", "--auto-approve"]).code(0);
    g.rig.assert_routes_to("green");
    let subjects = g.subjects();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    let now = g.state()["serial"].as_u64().unwrap();
    assert_eq!(
        subjects[0],
        format!("cutover apply: serial {serial} -> {now} (environment.green, router.public)")
    );
    assert!(!g.locked());
    g.assert_checkout_clean();
    g.assert_one_process_per_colour();

    // The file at the tip is what `show --json` prints, byte for byte, and
    // the commit names who made it.
    let shown = g.rig.run(&["show", "--json"]).code(0).stdout;
    let tip = g.repo.show(&format!("{STATE_BRANCH}:cutover.state.json"));
    assert_eq!(shown, String::from_utf8(tip).unwrap());
    let body = g
        .repo
        .git(&["log", "-1", "--format=%an <%ae>%n%b", STATE_BRANCH]);
    let mut lines = body.lines();
    let author = lines.next().unwrap();
    assert!(author.contains('@'), "{body}");
    assert_eq!(
        lines.next(),
        Some(format!("lineage {}", lineage.as_str().unwrap()).as_str()),
        "{body}"
    );
    let by = lines.next().unwrap();
    assert!(
        by.starts_with("by ") && by.ends_with(" apply --auto-approve`"),
        "{body}"
    );
    assert!(lines.next().unwrap().starts_with("lock "), "{body}");
    assert!(!g.locked());
}

/// One `cutover apply --json` as a child process whose stdout lines arrive
/// with the time they were read.
struct Timed {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

fn spawn_timed(dir: &Path, args: &[&str]) -> Timed {
    let mut child = Command::new(cutover_bin())
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("apply.err")).unwrap())
        .spawn()
        .expect("start cutover");
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    Timed { child, lines }
}

/// One environment `app` run by the process backend on `port`, at
/// `var.release`.
fn app_config(url: &str, port: u16) -> String {
    format!(
        r#"{block}
variable "release" {{
  default = "r0"
}}

environment "app" {{
  release  = var.release
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["{demo}", "--port", "{port}", "--release", var.release]
    grace   = "2s"
  }}
  health {{
    {FAST_HEALTH}
  }}
}}
"#,
        block = backend_block(url),
        demo = demo_app_bin().display()
    )
}

/// What one of the concurrent applies did, from its event lines.
#[derive(Debug)]
struct Applied {
    pid: u32,
    release: String,
    /// When its plan line and its summary line were read.
    planned: Instant,
    ended: Instant,
    /// The serial it planned against, and the release it found.
    from_serial: u64,
    from_release: String,
    to_serial: u64,
}

fn applied(pid: u32, release: &str, lines: &[(Instant, String)]) -> Applied {
    let event = |kind: &str| {
        lines
            .iter()
            .find_map(|(t, l)| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["type"] == kind).then_some((*t, v))
            })
            .unwrap_or_else(|| panic!("apply {pid} printed no {kind} line: {lines:?}"))
    };
    let (planned, plan) = event("plan");
    let (ended, summary) = event("summary");
    assert_eq!(summary["ok"], true, "{summary}");
    let step = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "environment.app")
        .unwrap_or_else(|| panic!("apply {pid} planned no change of app: {plan}"));
    let change = step["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "release")
        .expect("a release change");
    assert_eq!(change["after"], release);
    Applied {
        pid,
        release: release.to_owned(),
        planned,
        ended,
        from_serial: plan["plan"]["serial"].as_u64().unwrap(),
        from_release: change["before"].as_str().unwrap().to_owned(),
        to_serial: summary["serial"].as_u64().unwrap(),
    }
}

/// Stops the demo-apps on a port (by process group) when dropped.
struct PortReaper(u16);

impl Drop for PortReaper {
    fn drop(&mut self) {
        for pid in demo_pids(self.0) {
            kill_group(pid);
        }
    }
}

// Slow by nature (10-16 s here): eight real applies, one after the other
// behind the lock, each with its deploy, gate and pushes through git daemon.
#[test]
fn eight_runners_in_eight_checkouts_are_serialised_and_nothing_is_lost() {
    let port = crate::git_remote_support::free_port();
    let _reaper = PortReaper(port);
    let repo = BareRepo::new();
    let daemon = GitDaemon::start(repo.base());
    let config = app_config(&daemon.url("state.git"), port);
    let checkouts: Vec<Case> = (0..8)
        .map(|_| {
            let case = Case::new();
            case.write("main.hcl", &config);
            case
        })
        .collect();
    checkouts[0].run(&["apply", "--auto-approve"]).code(0);
    let base = repo.log("cutover-state").len();

    // Eight runners at once, each deploying its own release.
    let mut running: Vec<(String, Timed)> = checkouts
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let release = format!("r{}", i + 1);
            let var = format!("release={release}");
            let args = [
                "apply",
                "--json",
                "--auto-approve",
                "--lock-timeout",
                "300s",
                "--var",
                &var,
            ];
            (release, spawn_timed(case.path(), &args))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut done = Vec::new();
    for (i, (release, timed)) in running.iter_mut().enumerate() {
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timed.lines.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("apply {i} is still running"),
            }
        }
        let status = timed.child.wait().unwrap();
        let err = std::fs::read_to_string(checkouts[i].path().join("apply.err")).unwrap();
        assert!(status.success(), "apply {i} ({release}): {status}\n{err}");
        done.push(applied(timed.child.id(), release, &lines));
    }

    // One at a time: each planned after the one before had ended, from the
    // state it left (its serial and its release); one serial each.
    done.sort_by_key(|a| a.planned);
    let mut serial = done[0].from_serial;
    let mut release = "r0".to_string();
    for (a, next) in done.iter().zip(done.iter().skip(1).map(Some).chain([None])) {
        assert_eq!(
            (a.from_serial, &a.from_release),
            (serial, &release),
            "{a:?}"
        );
        assert_eq!(a.to_serial, serial + 1, "one change, one serial: {a:?}");
        if let Some(next) = next {
            assert!(
                next.planned > a.ended,
                "{} planned before {} had ended: {done:?}",
                next.pid,
                a.pid
            );
        }
        serial = a.to_serial;
        release = a.release.clone();
    }

    // The remote says the same: eight commits, in that order, one serial
    // each; the last release is what runs.
    let log = repo.log("cutover-state");
    assert_eq!(log.len(), base + 8, "{log:?}");
    for (k, a) in done.iter().enumerate() {
        let (id, subject) = &log[7 - k];
        assert_eq!(
            subject,
            &format!(
                "cutover apply: serial {} -> {} (environment.app)",
                a.from_serial, a.to_serial
            )
        );
        let body = repo.git(&["log", "-1", "--format=%b", id]);
        assert!(body.contains(&format!("(pid {})", a.pid)), "{body}");
    }
    let state: Value =
        serde_json::from_slice(&repo.show(&format!("{STATE_BRANCH}:cutover.state.json"))).unwrap();
    assert_eq!(state["serial"].as_u64(), Some(serial));
    assert_eq!(state["environments"]["app"]["release"], release.as_str());
    let pid = state["environments"]["app"]["private"]["pid"]
        .as_i64()
        .unwrap() as i32;
    assert_eq!(demo_pids(port), [pid], "one app, the recorded one");
    assert!(repo.rev(LOCK_BRANCH).is_none(), "the lock is released");
    for case in &checkouts {
        case.run(&[
            "plan",
            "--detailed-exitcode",
            "--var",
            &format!("release={release}"),
        ])
        .code(0);
    }
    drop(daemon);
}

/// Remove the scratch repository a cutover killed with SIGKILL (`pid`)
/// could not remove itself.
pub(crate) fn remove_scratch_of(pid: u32) {
    let prefix = format!("cutover-git-{pid}-");
    for entry in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_dir_all(entry.path()).unwrap();
        }
    }
}

#[test]
fn a_killed_holder_leaves_a_stale_lock_that_force_unlock_folds_and_clears() {
    let g = GitRig::relative_path();
    g.write(&g.rig.simple("1", "1", "blue"));
    g.rig.run(&["apply", "--auto-approve"]).code(0);
    let before = g.state();
    let commits = g.subjects().len();

    // A: green 2 (healthy after 3s) and the cut-over; killed in the gate,
    // after green 2 was started and recorded in the journal.
    g.write(&slow_green(&g.rig, "2", "3", "green"));
    let mut a = g.rig.spawn_apply_json("a", &[]);
    a.wait_event(
        "step_finished",
        Some("environment.green"),
        Duration::from_secs(20),
    );
    a.wait_event(
        "health_waiting",
        Some("health.green"),
        Duration::from_secs(10),
    );
    let lock = g.lock_info();
    let (id, pid) = (lock["id"].as_str().unwrap().to_owned(), a.child.id());
    assert_eq!(lock["pid"], pid);
    assert_eq!(g.journal_records(), ["environment.green"]);
    a.kill_running();
    remove_scratch_of(pid);
    assert!(g.locked(), "the lock stays, with the journal");
    assert_eq!(g.lock_info()["id"], id.as_str());
    assert_eq!(
        g.subjects().len(),
        commits,
        "the journal is not on the state branch"
    );
    g.rig.assert_routes_to("blue");

    // The next apply fails, naming the holder, its age and the way out.
    let run = g
        .rig
        .run(&["apply", "--auto-approve", "--lock-timeout", "1s"])
        .code(1);
    for text in [
        format!("{} is locked by another cutover run", g.describe()),
        format!("pid {pid} ("),
        " ago)".to_string(),
        "is gone: the lock is stale".to_string(),
        format!("cutover force-unlock {id}"),
    ] {
        assert!(run.stderr.contains(&text), "{text:?} in:\n{}", run.stderr);
    }
    // A plan reads the journal in memory and says how to clear the lock.
    let plan = g.rig.run(&["plan"]).code(0);
    assert!(
        plan.stderr.contains("is not folded yet")
            && plan.stderr.contains(&format!("cutover force-unlock {id}")),
        "{}",
        plan.stderr
    );
    g.rig
        .run(&["force-unlock", "not-the-id"])
        .code(1)
        .stderr_has(&id);
    assert!(g.locked());

    // force-unlock folds what A did into the state (one commit) and removes
    // the lock.
    g.rig
        .run(&["force-unlock", &id])
        .code(0)
        .stdout_has(&format!(
            "Removed the lock on {} held by pid {pid}",
            g.describe()
        ));
    assert!(!g.locked());
    let subjects = g.subjects();
    assert_eq!(subjects.len(), commits + 1, "{subjects:?}");
    let serial = before["serial"].as_u64().unwrap();
    assert!(
        subjects[0].starts_with(&format!(
            "cutover force-unlock: fold the journal of an apply (pid {pid} on host "
        )) && subjects[0].ends_with(&format!(
            "serial {serial} -> {} (environment.green)",
            serial + 1
        )),
        "{subjects:?}"
    );
    let folded = g.state();
    assert_eq!(folded["lineage"], before["lineage"]);
    assert_eq!(folded["environments"]["green"]["release"], "2");
    g.rig
        .run(&["force-unlock", &id])
        .code(1)
        .stderr_has("is not locked");

    // The next apply converges from what A recorded.
    g.rig.run(&["apply", "--auto-approve"]).code(0);
    g.rig.assert_routes_to("green");
    assert!(!g.locked());
    assert_eq!(g.subjects().len(), commits + 2);
    g.assert_one_process_per_colour();
    g.assert_checkout_clean();
}

#[test]
fn the_remote_gone_mid_apply_is_a_clear_error_and_the_next_apply_converges() {
    let mut g = GitRig::daemon();
    g.write(&g.rig.simple("1", "1", "blue"));
    g.rig.run(&["apply", "--auto-approve"]).code(0);
    let before = g.state();

    g.write(&slow_green(&g.rig, "2", "2", "green"));
    let mut a = g.rig.spawn_apply_json("a", &[]);
    a.wait_event(
        "step_finished",
        Some("environment.green"),
        Duration::from_secs(20),
    );
    a.wait_event(
        "health_waiting",
        Some("health.green"),
        Duration::from_secs(10),
    );
    g.daemon.as_mut().unwrap().stop();
    let started = Instant::now();
    let code = a.wait_exit(Duration::from_secs(60));
    let (_, err) = g.rig.output("a");
    assert_eq!(code, 1, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded in time"
    );
    // With --json the error is in the summary line. The remote was found
    // gone before the cut-over could start: nothing live moved.
    let summary = a.seen.last().unwrap();
    let error = summary["state_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!(
            "{}: checked before anything live changes: git ls-remote failed: ",
            g.describe()
        )) && error.contains("Connection refused"),
        "{summary}"
    );
    assert_eq!(
        summary["not_run"],
        serde_json::json!(["cutover.public"]),
        "{summary}"
    );
    assert_eq!(summary["reverted"], serde_json::json!([]), "{summary}");
    let started_steps: Vec<&Value> = a
        .seen
        .iter()
        .filter(|e| e["type"] == "step_started")
        .collect();
    assert_eq!(
        started_steps.last().map(|e| e["id"].clone()),
        Some(Value::from("health.green")),
        "{:?}",
        a.seen
    );
    g.rig.assert_routes_to("blue");

    // The remote back: the lock the run could not remove is reported,
    // force-unlock folds its journal, and the next apply converges.
    g.daemon.as_mut().unwrap().restart();
    let run = g
        .rig
        .run(&["apply", "--auto-approve", "--lock-timeout", "1s"])
        .code(1);
    let id = g.lock_info()["id"].as_str().unwrap().to_owned();
    assert!(
        run.stderr.contains(&format!("cutover force-unlock {id}")),
        "{}",
        run.stderr
    );
    g.rig.run(&["force-unlock", &id]).code(0);
    assert_eq!(
        g.state()["environments"]["green"]["release"],
        "2",
        "the journal's green 2, folded"
    );
    assert_eq!(g.state()["lineage"], before["lineage"]);
    g.rig.run(&["apply", "--auto-approve"]).code(0);
    g.rig.assert_routes_to("green");
    assert!(!g.locked());
    g.assert_one_process_per_colour();
}

#[test]
fn a_state_pushed_by_someone_else_while_the_lock_is_held_is_not_overwritten() {
    let g = GitRig::file();
    g.write(&g.rig.simple("1", "1", "blue"));
    g.rig.run(&["apply", "--auto-approve"]).code(0);
    let before = g.state();
    let serial = before["serial"].as_u64().unwrap();
    let lineage = before["lineage"].as_str().unwrap().to_owned();

    g.write(&slow_green(&g.rig, "2", "2", "green"));
    let mut a = g.rig.spawn_apply_json("a", &[]);
    a.wait_event(
        "health_waiting",
        Some("health.green"),
        Duration::from_secs(20),
    );
    let id = g.lock_info()["id"].as_str().unwrap().to_owned();

    // Someone commits a state of their own (serial + 10) to the branch.
    let work = tempfile::tempdir().unwrap();
    let url = g.repo.file_url();
    git_ok(
        work.path(),
        &["clone", "--quiet", "--branch", "cutover-state", &url, "w"],
    );
    let w = work.path().join("w");
    let mut theirs = before.clone();
    theirs["serial"] = Value::from(serial + 10);
    let text = serde_json::to_string_pretty(&theirs).unwrap() + "\n";
    std::fs::write(w.join("cutover.state.json"), text).unwrap();
    git_ok(&w, &["commit", "--quiet", "-am", "by hand: serial + 10"]);
    git_ok(&w, &["push", "--quiet", "origin", "cutover-state"]);

    // A finishes its steps; its write of the state is refused.
    let code = a.wait_exit(Duration::from_secs(60));
    let (_, err) = g.rig.output("a");
    assert_eq!(code, 1, "{err}");
    let summary = a.seen.last().unwrap();
    let error = summary["state_error"].as_str().unwrap_or_default();
    let conflict = format!(
        "{} was changed by another run: expected lineage {lineage} serial {serial}, \
         found lineage {lineage} serial {}; nothing was written",
        g.describe(),
        serial + 10
    );
    assert!(error.contains(&conflict), "{summary}");
    assert_eq!(
        g.subjects()[0],
        "by hand: serial + 10",
        "nothing overwritten"
    );
    assert_eq!(g.state()["serial"].as_u64(), Some(serial + 10));
    // Nothing lost: what A did stays in its journal, on the lock.
    assert!(g.locked());
    assert_eq!(g.journal_records(), ["environment.green", "router.public"]);
    // force-unlock will not fold it onto a state it does not extend.
    g.rig
        .run(&["force-unlock", &id])
        .code(1)
        .stderr_has("the lock was not removed")
        .stderr_has(&format!(
            "extends the state of lineage {lineage} at serial {serial}"
        ));
    assert!(g.locked());

    // Put back the state the journal extends; then force-unlock folds it.
    git_ok(&w, &["revert", "--no-edit", "HEAD"]);
    git_ok(&w, &["push", "--quiet", "origin", "cutover-state"]);
    g.rig.run(&["force-unlock", &id]).code(0);
    let folded = g.state();
    assert_eq!(folded["routers"]["public"]["live"], "green");
    assert_eq!(folded["environments"]["green"]["release"], "2");
    g.rig.run(&["apply", "--auto-approve"]).code(0);
    g.rig.assert_routes_to("green");
    g.assert_one_process_per_colour();
}
