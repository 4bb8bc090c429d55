//! The PostgreSQL state backend (issue 13, point 2) against a real
//! PostgreSQL started by each test (tests/support/postgres.rs), driving the
//! real cutover binary from separate checkout directories, each standing
//! for a runner: the state read with psql is what `show --json` prints;
//! eight concurrent applies are serialised and lose nothing; a SIGKILLed
//! holder frees the lock by itself and its journal is folded by the next
//! run; PostgreSQL stopped mid-apply is a clear error and the next apply
//! converges; a compare-and-swap conflict and a lost lock are refused; a
//! held lock names its holder; TLS is verified.
//!
//! The connection string, password included, is given as runners give it
//! (`CUTOVER_PG_CONN_STR`), and no output may ever contain the password.

use std::io::BufRead as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::{demo_pids, kill_group, Rig, FAST_HEALTH};
use crate::postgres_support::{Postgres, PASSWORD};
use crate::support::{cutover_bin, demo_app_bin, Case, Run};

mod approvals;
mod connections;
mod crashes;
mod library;
mod runners;

const DB: &str = "cutover";

/// The `cutover {}` block storing the state `name` in PostgreSQL.
fn pg_block(name: &str, extra: &str) -> String {
    format!("cutover {{\n  backend \"pg\" {{\n    name = \"{name}\"\n{extra}  }}\n}}\n")
}

/// A started PostgreSQL with the database [`DB`].
fn postgres() -> Postgres {
    let pg = Postgres::start();
    pg.create_db(DB);
    pg
}

/// A runner's checkout: a configuration directory, and the connection
/// string in its environment.
struct Checkout {
    case: Case,
    conn: String,
}

impl Checkout {
    fn new(pg: &Postgres, config: &str) -> Checkout {
        Checkout::with_conn(pg.conn_str(DB), config)
    }

    fn with_conn(conn: String, config: &str) -> Checkout {
        let case = Case::new();
        case.write("main.hcl", config);
        Checkout { case, conn }
    }

    fn write(&self, config: &str) {
        self.case.write("main.hcl", config);
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("CUTOVER_PG_CONN_STR", self.conn.as_str())]
    }

    /// Run cutover here (after a successful apply, `plan` must find
    /// nothing left: `Case::run_env`), checking that the password is
    /// nowhere in what it printed.
    fn run(&self, args: &[&str]) -> Run {
        no_password(self.case.run_env(args, &self.env()))
    }

    fn run_unchecked(&self, args: &[&str]) -> Run {
        no_password(self.case.run_unchecked(args, &self.env()))
    }

    /// The state as `show --json` prints it.
    fn show(&self) -> String {
        self.run(&["show", "--json"]).code(0).stdout
    }

    fn state(&self) -> Value {
        serde_json::from_str(&self.show()).expect("show --json is JSON")
    }

    /// `apply --json --auto-approve EXTRA...` in the background.
    fn spawn_apply(&self, tag: &str, extra: &[&str]) -> Apply {
        let stderr = self.case.path().join(format!("{tag}.err"));
        let mut child = Command::new(cutover_bin())
            .arg("-C")
            .arg(self.case.path())
            .args(["apply", "--json", "--auto-approve"])
            .args(extra)
            .env("NO_COLOR", "1")
            .env("CUTOVER_PG_CONN_STR", &self.conn)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start cutover apply");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if send.send((Instant::now(), event)).is_err() {
                    break;
                }
            }
        });
        Apply {
            tag: tag.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }
}

#[track_caller]
fn no_password(run: Run) -> Run {
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "the password was printed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// A `cutover apply --json` running in the background: its event lines,
/// each with the moment it was read.
struct Apply {
    tag: String,
    child: Child,
    lines: mpsc::Receiver<(Instant, Value)>,
    seen: Vec<(Instant, Value)>,
    stderr: PathBuf,
}

impl Apply {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn events(&self) -> Vec<&Value> {
        self.seen.iter().map(|(_, e)| e).collect()
    }

    /// Wait for the event of `kind` (and `id`); panic after `limit`.
    #[track_caller]
    fn wait_event(&mut self, kind: &str, id: Option<&str>, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, event)) => {
                    self.seen.push((at, event.clone()));
                    if event["type"] == kind && id.is_none_or(|id| event["id"] == id) {
                        return event;
                    }
                }
                Err(_) => panic!(
                    "{}: no {kind} {id:?} within {limit:?}\nevents: {:?}\nstderr: {}",
                    self.tag,
                    self.events(),
                    self.stderr()
                ),
            }
        }
    }

    /// Wait (at most `limit`) until stderr holds `text`, while it runs.
    #[track_caller]
    fn wait_stderr(&mut self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let err = self.stderr();
            if err.contains(text) {
                return err;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} ended ({status}) before printing {text:?}:\n{err}",
                    self.tag
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {text:?} on stderr",
                self.tag
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for the apply to exit: its status; every line it printed is in
    /// `seen` then.
    #[track_caller]
    fn finish(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader ends with the pipe, which the exit closed.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
                    self.seen.push(line);
                }
                let err = self.stderr();
                assert!(!err.contains(PASSWORD), "the password was printed:\n{err}");
                return status.code().unwrap_or(-1);
            }
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            assert!(
                Instant::now() < deadline,
                "{} still runs after {limit:?}\nevents: {:?}",
                self.tag,
                self.events()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL it, asserting that the signal is what ended it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the killed apply");
        assert_eq!(
            status.signal(),
            Some(nix::sys::signal::Signal::SIGKILL as i32),
            "{} had ended before the kill",
            self.tag
        );
    }
}

impl Drop for Apply {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `ready` every 50ms until it holds; panic naming `what` after
/// `limit`.
#[track_caller]
fn poll(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops, when dropped, every demo-app of this test build on `ports`.
struct Demos(Vec<u16>);

impl Drop for Demos {
    fn drop(&mut self) {
        for port in &self.0 {
            for pid in demo_pids(*port) {
                kill_group(pid);
            }
        }
    }
}

/// A demo-app environment run by the `process` backend on `port`.
fn process_env(name: &str, port: u16, release: &str) -> String {
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
    {FAST_HEALTH}
  }}
}}
"#,
        demo = demo_app_bin().display()
    )
}

/// The rig's blue at release 1, green at `green` (healthy `delay` seconds
/// after it starts), `live` live, in the state `default`.
fn rig_config(rig: &Rig, green: &str, delay: &str, live: &str) -> String {
    format!(
        "{}{}{}{}",
        pg_block("default", ""),
        rig.process_env("blue", "1", &[], FAST_HEALTH),
        rig.process_env("green", green, &["--healthy-after", delay], FAST_HEALTH),
        rig.router(live)
    )
}

/// The pid the state records for environment `name`.
fn state_pid(state: &Value, name: &str) -> i32 {
    state["environments"][name]["private"]["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid for {name} in {state}")) as i32
}
