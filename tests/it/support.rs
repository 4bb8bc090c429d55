//! A small builder for CLI cases: a configuration directory in, arguments,
//! and the exit status, stdout and stderr out (after just's `tests/test.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `cutover` binary under test.
pub fn cutover_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cutover"))
}

/// The demo app the examples run.
pub fn demo_app_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_demo-app"))
}

/// The environment `name`: the demo app on `127.0.0.1:PORT` running
/// `release`, started by cutover's `process` backend, with a quick health
/// check (every 100 ms, within 10 s).
pub fn demo_environment(name: &str, port: u16, release: &str) -> String {
    format!(
        r#"
environment "{name}" {{
  release  = "{release}"
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["{demo}", "--port", "{port}", "--release", "{release}"]
    grace   = "2s"
  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
    timeout  = "10s"
  }}
}}
"#,
        demo = demo_app_bin().display()
    )
}

/// A configuration directory and the commands run in it.
pub struct Case {
    pub dir: tempfile::TempDir,
}

/// What one run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Fail with everything printed unless the exit status is `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Fail unless stdout contains `text`.
    #[track_caller]
    pub fn stdout_has(self, text: &str) -> Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Fail unless stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(self, text: &str) -> Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

impl Case {
    /// An empty configuration directory.
    pub fn new() -> Case {
        Case {
            dir: tempfile::Builder::new()
                .prefix("cutover-case")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// A directory holding one `main.hcl`.
    pub fn with_main(text: &str) -> Case {
        let case = Case::new();
        case.write("main.hcl", text);
        case
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file into the directory.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).expect("write config file");
    }

    /// Run `cutover -C DIR ARGS...` with colour off.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Run with extra environment variables. After every successful
    /// `apply` (a plan or a saved plan, not `--refresh-only`), checks what
    /// every apply must leave: every cut-over started after its target's
    /// gate finished (read from the progress lines, human or JSON), the
    /// state file round-trips byte for byte, and `plan --detailed-exitcode`
    /// finds nothing left to do.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let run = self.run_unchecked(args, env);
        if run.code == 0 && args.first() == Some(&"apply") && !args.contains(&"--refresh-only") {
            self.check_after_apply(&run, env);
        }
        run
    }

    /// What every successful apply must leave (see [`Case::run_env`]).
    #[track_caller]
    fn check_after_apply(&self, run: &Run, env: &[(&str, &str)]) {
        let order = crate::support::events(&run.stdout);
        for (i, line) in order.iter().enumerate() {
            let Event::Started { id, to: Some(to) } = line else {
                continue;
            };
            let gate = format!("health.{to}");
            let passed = order[..i]
                .iter()
                .any(|e| matches!(e, Event::Finished { id: g } if *g == gate));
            assert!(
                passed,
                "{id} started before {gate} finished:\n{}",
                run.stdout
            );
        }
        if let Some(bytes) = self.state_bytes() {
            let path = self.dir.path().join("cutover.state.json");
            let state = cutover::state::from_bytes(&path, &bytes).expect("a valid state");
            assert_eq!(
                String::from_utf8_lossy(&cutover::state::to_bytes(&state)),
                String::from_utf8_lossy(&bytes),
                "the state does not round-trip byte for byte"
            );
        }
        let plan = self.run_unchecked(&["plan", "--detailed-exitcode"], env);
        assert_eq!(
            plan.code, 0,
            "after a successful apply, a plan still finds changes:\n{}\n{}",
            plan.stdout, plan.stderr
        );
    }

    /// Run, with none of the checks of [`Case::run_env`] (for an apply that
    /// is meant to leave something to do).
    pub fn run_unchecked(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(cutover_bin());
        cmd.arg("-C")
            .arg(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().expect("run cutover");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// The state file's bytes, if it exists.
    pub fn state_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.dir.path().join("cutover.state.json")).ok()
    }

    /// The state file, parsed (it must exist).
    #[track_caller]
    pub fn state(&self) -> serde_json::Value {
        serde_json::from_slice(&self.state_bytes().expect("a state file")).expect("state JSON")
    }
}

/// Stops, by process id, the processes the `process` backend started for a
/// case (their pids are in the state file), when dropped.
pub struct ProcessReaper(pub PathBuf);

impl Drop for ProcessReaper {
    fn drop(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.0) else {
            return;
        };
        let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) else {
            return;
        };
        if let Some(envs) = state.get("environments").and_then(|e| e.as_object()) {
            for env in envs.values() {
                if let Some(pid) = env.pointer("/private/pid").and_then(|p| p.as_i64()) {
                    // Signal the process group the backend created (setsid).
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
            }
        }
    }
}

/// A cutover process running in the background, its stdout read line by
/// line (so a test can wait for an event before it acts), stopped by pid
/// when dropped.
pub struct Background {
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Case {
    /// Start `cutover -C DIR ARGS...` in the background.
    pub fn spawn(&self, args: &[&str]) -> Background {
        use std::io::BufRead;
        let mut child = Command::new(cutover_bin())
            .arg("-C")
            .arg(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start cutover");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Background {
            child,
            lines,
            seen: Vec::new(),
        }
    }
}

impl Background {
    /// Wait (at most `within`) for a line of stdout containing `text`.
    #[track_caller]
    pub fn wait_for_line(&mut self, text: &str, within: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} within {within:?}; stdout so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Send `signal` to the process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .expect("signal cutover");
    }

    /// Wait (at most `within`) for the process to exit; its status, the rest
    /// of its stdout, and its stderr.
    #[track_caller]
    pub fn finish(mut self, within: std::time::Duration) -> Run {
        use std::io::Read;
        let mut child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("a placeholder child"),
        );
        let pid = child.id();
        let (tx, exited) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait().expect("wait for cutover");
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            let _ = tx.send((status, stderr));
        });
        let Ok((status, stderr)) = exited.recv_timeout(within) else {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = waiter.join();
            panic!(
                "cutover did not exit within {within:?}; stdout so far:\n{}",
                self.seen.join("\n")
            );
        };
        // The reader thread ends with the pipe, which the exit closed (a
        // child that kept it open would be a bug: bounded, not waited for).
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(10)) {
            self.seen.push(line);
        }
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.seen.join("\n"),
            stderr,
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A step's start or end, as the progress lines of an apply show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step started; for a cut-over, the colour it switches to.
    Started { id: String, to: Option<String> },
    /// A step finished successfully.
    Finished { id: String },
}

/// The ids of a JSON plan's steps, in its order.
pub fn step_ids(plan: &serde_json::Value) -> Vec<&str> {
    plan["steps"]
        .as_array()
        .expect("a plan's steps")
        .iter()
        .map(|s| s["id"].as_str().expect("a step id"))
        .collect()
}

/// The steps' starts and ends in an apply's stdout, in order: JSON lines
/// (`--json`) or the human lines (`ID: description...`, `ID: done after`).
pub fn events(stdout: &str) -> Vec<Event> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            match v["type"].as_str() {
                Some("step_started") => {
                    let to = v["description"]
                        .as_str()
                        .and_then(|d| d.rsplit_once(" -> "))
                        .map(|(_, to)| to.to_owned());
                    let to = to.filter(|_| id.starts_with("cutover."));
                    out.push(Event::Started { id, to });
                }
                Some("step_finished") if v["ok"] == true => out.push(Event::Finished { id }),
                _ => {}
            }
            continue;
        }
        let Some((id, rest)) = line.split_once(": ") else {
            continue;
        };
        if id.contains(' ') {
            continue;
        }
        if rest.starts_with("done after ") {
            out.push(Event::Finished { id: id.to_owned() });
        } else if let Some(what) = rest.strip_suffix("...") {
            let to = what
                .rsplit_once(" -> ")
                .map(|(_, to)| to.to_owned())
                .filter(|_| id.starts_with("cutover."));
            out.push(Event::Started {
                id: id.to_owned(),
                to,
            });
        }
    }
    out
}

#[test]
fn the_progress_lines_are_read_in_order_and_a_cutover_before_its_gate_is_caught() {
    let human = "\
environment.green: updating environment.green to release 2...
environment.green: done after 0.4s
health.green: health gate: waiting for environment.green...
health.green: still waiting for GET http://127.0.0.1:1/ -> 200 (2.0s left; last: refused)
health.green: done after 0.4s
cutover.public: cutting over router.public: blue -> green...
cutover.public: done after 0.0s
";
    let json = r#"{"type":"step_started","id":"cutover.public","description":"cutting over router.public: blue -> green"}
{"type":"step_finished","id":"health.green","ok":true}"#;
    let started = |id: &str, to: Option<&str>| Event::Started {
        id: id.into(),
        to: to.map(Into::into),
    };
    let finished = |id: &str| Event::Finished { id: id.into() };
    assert_eq!(
        events(human),
        [
            started("environment.green", None),
            finished("environment.green"),
            started("health.green", None),
            finished("health.green"),
            started("cutover.public", Some("green")),
            finished("cutover.public"),
        ]
    );
    assert_eq!(
        events(json),
        [
            started("cutover.public", Some("green")),
            finished("health.green")
        ]
    );
    let case = Case::new();
    let run = Run {
        code: 0,
        stdout: json.into(),
        stderr: String::new(),
    };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        case.check_after_apply(&run, &[])
    }));
    let message = caught.expect_err("a cut-over before its gate must be caught");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("cutover.public started before health.green finished"),
        "{message}"
    );
}
