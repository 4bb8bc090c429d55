//! Crash safety (issue 5, point 6): cutover is killed with SIGKILL right
//! after every event line of an apply that deploys a colour, waits for its
//! health gate and cuts over (kill points are events the apply prints, never
//! fixed delays, and each test asserts that its kill landed in the window it
//! aims at). After every kill the state file still parses, keeps its lineage,
//! its serial never goes backwards, what the dead run left is folded into it,
//! and a fresh `plan` + `apply` converges: exactly one demo-app per colour
//! (the one the state records, and the one listening on the port) and the
//! router on a healthy colour. `fold.rs` pins the window after the switch.
//!
//! The [`Rig`] (a real HAProxy, two loopback ports, a case directory, and
//! probes of the processes and the router) is shared with `locks.rs`,
//! `faults.rs` and `fold.rs`.

use std::io::BufRead as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::support::{cutover_bin, demo_app_bin, Case, ProcessReaper, Run};

/// A fast health check: every 50ms, one success, give up after 5s.
pub(crate) const FAST_HEALTH: &str = r#"path = "/healthz"
    interval = "50ms"
    timeout  = "5s""#;

/// A real HAProxy with backends blue and green on two loopback ports, and a
/// configuration directory whose state records demo-apps on those ports.
pub(crate) struct Rig {
    // Field order is drop order: stop the demo-apps, then HAProxy, then
    // remove the directory.
    _reaper: ProcessReaper,
    pub h: HaproxyGuard,
    pub case: Case,
    pub blue: u16,
    pub green: u16,
}

impl Rig {
    /// HAProxy sending `public` to blue (`other blue` is a second key that
    /// nothing must touch).
    pub fn start() -> Rig {
        let (blue, green) = (free_port(), free_port());
        let setup = HaproxySetup::blue_green(
            &format!("127.0.0.1:{blue}"),
            &format!("127.0.0.1:{green}"),
            "blue",
        );
        let case = Case::new();
        Rig {
            _reaper: ProcessReaper(case.path().join("cutover.state.json")),
            h: HaproxyGuard::start(&setup),
            case,
            blue,
            green,
        }
    }

    pub fn port(&self, colour: &str) -> u16 {
        if colour == "blue" {
            self.blue
        } else {
            self.green
        }
    }

    /// An environment run by the `process` backend (demo-app on its port).
    pub fn process_env(&self, name: &str, release: &str, flags: &[&str], health: &str) -> String {
        let port = self.port(name);
        let flags: String = flags.iter().map(|f| format!(", \"{f}\"")).collect();
        format!(
            r#"
environment "{name}" {{
  release  = "{release}"
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["{demo}", "--port", "{port}", "--release", "{release}"{flags}]
    grace   = "2s"
  }}
  health {{
    {health}
  }}
}}
"#,
            demo = demo_app_bin().display()
        )
    }

    /// The HAProxy router `public`.
    pub fn router(&self, live: &str) -> String {
        format!(
            r#"
router "public" {{
  live = environment.{live}
  haproxy {{
    socket  = "{socket}"
    map     = "{map}"
    timeout = "1s"
  }}
}}
"#,
            socket = self.h.socket().display(),
            map = self.h.map_path().display()
        )
    }

    /// Blue and green demo-apps with fast health checks, `live` live.
    pub fn simple(&self, blue_rel: &str, green_rel: &str, live: &str) -> String {
        format!(
            "{}{}{}",
            self.process_env("blue", blue_rel, &[], FAST_HEALTH),
            self.process_env("green", green_rel, &[], FAST_HEALTH),
            self.router(live)
        )
    }

    pub fn write(&self, config: &str) {
        self.case.write("main.hcl", config);
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.case.run(args)
    }

    pub fn state_path(&self) -> PathBuf {
        self.case.path().join("cutover.state.json")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.case.path().join("cutover.state.json.lock")
    }

    /// The state file as JSON (panics when it is missing or does not parse).
    pub fn state(&self) -> serde_json::Value {
        let bytes = self.case.state_bytes().expect("the state file exists");
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "the state file does not parse: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        })
    }

    /// `cutover apply --auto-approve ARGS...` as a child process (stdout and
    /// stderr into files of the case directory, read by [`Rig::output`]).
    pub fn spawn_apply(&self, tag: &str, extra: &[&str]) -> Child {
        let out = std::fs::File::create(self.case.path().join(format!("{tag}.out"))).unwrap();
        let err = std::fs::File::create(self.case.path().join(format!("{tag}.err"))).unwrap();
        Command::new(cutover_bin())
            .arg("-C")
            .arg(self.case.path())
            .args(["apply", "--auto-approve"])
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start cutover apply")
    }

    /// `cutover apply --json --auto-approve ARGS...` as a child process whose
    /// event lines (docs/events.md) the test reads as they are printed;
    /// stderr goes to `TAG.err` in the case directory.
    pub fn spawn_apply_json(&self, tag: &str, extra: &[&str]) -> JsonApply {
        let err = std::fs::File::create(self.case.path().join(format!("{tag}.err"))).unwrap();
        let mut child = Command::new(cutover_bin())
            .arg("-C")
            .arg(self.case.path())
            .args(["apply", "--json", "--auto-approve"])
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("start cutover apply --json");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        // A line is handed over the moment it is printed (Rust's stdout is
        // line-buffered, and apply flushes every event), so a kill sent on
        // receipt lands right after it.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if send.send(event).is_err() {
                    break;
                }
            }
        });
        JsonApply {
            child,
            lines,
            seen: Vec::new(),
            stderr: self.case.path().join(format!("{tag}.err")),
        }
    }

    /// The journal beside the state, as its lines parsed (empty when none).
    pub fn journal(&self) -> Vec<Value> {
        let path = self.case.path().join("cutover.state.json.journal");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The colour the journal's last entry for router `name` records, if any.
    pub fn journal_router_live(&self, name: &str) -> Option<String> {
        self.journal()
            .iter()
            .rev()
            .filter_map(|entry| {
                let [n, record] = entry.get("router")?.as_array()?.as_slice() else {
                    return None;
                };
                (n == name).then(|| record["live"].as_str().unwrap_or("").to_string())
            })
            .next()
    }

    /// The names of the files in the case directory, sorted, without the
    /// `.out`/`.err` files of spawned applies.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.case.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".out") && !n.ends_with(".err"))
            .collect();
        names.sort();
        names
    }

    /// Wait (at most `within`) until the spawned apply `tag` has printed
    /// `text` on stdout (`ext` "out") or stderr ("err"), while it runs.
    #[track_caller]
    pub fn wait_for_output(
        &self,
        child: &mut Child,
        tag: &str,
        ext: &str,
        text: &str,
        within: Duration,
    ) {
        let path = self.case.path().join(format!("{tag}.{ext}"));
        let deadline = Instant::now() + within;
        loop {
            if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(text)) {
                return;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let (out, err) = self.output(tag);
                panic!("{tag} ended ({status}) before printing {text:?}:\n{out}\n{err}");
            }
            assert!(
                Instant::now() < deadline,
                "{tag} did not print {text:?} within {within:?}"
            );
            // Polling a file the child appends to, bounded by the deadline.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What a spawned apply printed: (stdout, stderr).
    pub fn output(&self, tag: &str) -> (String, String) {
        let read = |ext: &str| {
            std::fs::read_to_string(self.case.path().join(format!("{tag}.{ext}")))
                .unwrap_or_default()
        };
        (read("out"), read("err"))
    }

    /// The map file's value for `key`.
    pub fn map_file(&self, key: &str) -> String {
        map_value(&std::fs::read_to_string(self.h.map_path()).unwrap(), key)
    }

    /// HAProxy's in-memory map's value for `key` (what routes traffic now).
    pub fn map_runtime(&self, key: &str) -> String {
        let reply = self
            .h
            .runtime(&format!("show map {}", self.h.map_path().display()));
        // Lines: `0x55d0c8a0 public green`.
        reply
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (_, k, v) = (f.next()?, f.next()?, f.next()?);
                (k == key).then(|| v.to_string())
            })
            .next()
            .unwrap_or_default()
    }

    /// Assert that HAProxy routes `public` to `colour`, in memory and in the
    /// file, and that the other key was left alone.
    #[track_caller]
    pub fn assert_routes_to(&self, colour: &str) {
        assert_eq!(
            self.map_runtime("public"),
            colour,
            "HAProxy's map in memory"
        );
        assert_eq!(self.map_file("public"), colour, "the map file");
        assert_eq!(self.map_file("other"), "blue", "another router's key");
    }

    /// The pid the state records for environment `name`.
    pub fn state_pid(&self, name: &str) -> Option<i32> {
        self.state()["environments"][name]["private"]["pid"]
            .as_i64()
            .map(|p| p as i32)
    }

    /// Stop every demo-app of this rig (our binary, our ports) by process
    /// group. For cleanup after a test found a bug.
    pub fn kill_strays(&self, keep: &[i32]) -> Vec<i32> {
        let mut killed = Vec::new();
        for port in [self.blue, self.green] {
            for pid in demo_pids(port) {
                if !keep.contains(&pid) {
                    kill_group(pid);
                    killed.push(pid);
                }
            }
        }
        killed
    }
}

/// A running `cutover apply --json` ([`Rig::spawn_apply_json`]).
pub(crate) struct JsonApply {
    pub child: Child,
    lines: mpsc::Receiver<Value>,
    /// Every event line received so far, in order.
    pub seen: Vec<Value>,
    stderr: PathBuf,
}

impl JsonApply {
    /// Wait for the next event line for which `pred` holds and return it;
    /// panic (with what was seen and stderr) after `limit`, or when the
    /// apply ends first.
    #[track_caller]
    pub fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if pred(&event) {
                        return event;
                    }
                }
                Err(e) => panic!(
                    "{} before {what} (limit {limit:?})\nevents: {:?}\nstderr: {}",
                    if e == mpsc::RecvTimeoutError::Timeout {
                        "timed out"
                    } else {
                        "the apply ended"
                    },
                    self.seen,
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                ),
            }
        }
    }

    /// Wait for the event of `type` (and `id`, when given).
    #[track_caller]
    pub fn wait_event(&mut self, kind: &str, id: Option<&str>, limit: Duration) -> Value {
        let what = format!("event {kind} {}", id.unwrap_or(""));
        self.wait_for(&what, limit, |e| {
            e["type"] == kind && id.is_none_or(|id| e["id"] == id)
        })
    }

    /// SIGKILL the apply; whether the signal is what ended it (`false`: it
    /// had already finished). Every event it printed is in `seen` after.
    pub fn kill(&mut self) -> bool {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the killed apply");
        while let Ok(event) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(event);
        }
        status.signal() == Some(nix::sys::signal::Signal::SIGKILL as i32)
    }

    /// SIGKILL the apply and assert that the signal is what ended it: it was
    /// still running, so the kill hit the window it was aimed at.
    #[track_caller]
    pub fn kill_running(&mut self) {
        assert!(
            self.kill(),
            "the apply had ended before the kill\nevents: {:?}",
            self.seen
        );
    }

    /// Wait for the apply to end by itself; its exit status.
    #[track_caller]
    pub fn wait_exit(&mut self, limit: Duration) -> i32 {
        self.wait_for("the end of the apply", limit, |e| e["type"] == "summary");
        let status = self.child.wait().expect("wait for the apply");
        status.code().unwrap_or(-1)
    }
}

impl Drop for JsonApply {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Rig {
    /// Stop every demo-app of this rig, also those the state file does not
    /// record (a test that found a bug may leave some); the reaper then
    /// finds its pids gone.
    fn drop(&mut self) {
        self.kill_strays(&[]);
    }
}

/// The value of `key` in a map file's text.
pub(crate) fn map_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(key)).then(|| f.next().unwrap_or_default().to_string())
        })
        .unwrap_or_default()
}

/// SIGKILL the process group `pid` leads (the process backend starts every
/// process with setsid), and wait briefly until it is gone.
pub(crate) fn kill_group(pid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && is_alive(pid) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` runs and is not a zombie.
pub(crate) fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Live (non-zombie) processes of this test build's demo-app whose command
/// line says `--port PORT`.
pub(crate) fn demo_pids(port: u16) -> Vec<i32> {
    let bin = demo_app_bin();
    let port = port.to_string();
    let mut pids = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_ours = args
            .first()
            .is_some_and(|a| Path::new(std::str::from_utf8(a).unwrap_or("")) == bin)
            && args
                .windows(2)
                .any(|w| w[0] == b"--port" && w[1] == port.as_bytes());
        if is_ours && is_alive(pid) {
            pids.push(pid);
        }
    }
    pids.sort();
    pids
}

/// The pid among `candidates` holding the listening socket of 127.0.0.1:PORT
/// (from /proc/net/tcp and the candidates' file descriptors).
pub(crate) fn listener_pid(port: u16, candidates: &[i32]) -> Option<i32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let wanted = format!("0100007F:{port:04X}");
    let inode = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 9 && f[1] == wanted && f[3] == "0A").then(|| f[9].to_string())
    })?;
    let socket = format!("socket:[{inode}]");
    candidates.iter().copied().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path())
                        .map(|t| t.to_string_lossy() == socket)
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false)
    })
}

/// GET `path` from 127.0.0.1:PORT directly: (status, body).
pub(crate) fn get(port: u16, path: &str) -> (u16, String) {
    crate::haproxy_support::http_get(std::net::SocketAddr::from(([127, 0, 0, 1], port)), path)
}

/// The lock id in a lock file, if there is one.
pub(crate) fn lock_id(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let lock: serde_json::Value = serde_json::from_str(&text).ok()?;
    lock["id"].as_str().map(str::to_string)
}

/// Everything that must hold after a converged apply: the state, the
/// processes, the listeners and the router agree with the configuration.
/// Returns a description of what is wrong instead of panicking, so that the
/// crash test can report every kill point that fails.
fn converged(rig: &Rig, releases: &[String; 2], live: &str) -> Result<(), String> {
    let state = rig.state();
    for (i, colour) in ["blue", "green"].into_iter().enumerate() {
        let port = rig.port(colour);
        let recorded = state["environments"][colour]["private"]["pid"]
            .as_i64()
            .map(|p| p as i32)
            .ok_or(format!("no pid for {colour} in the state"))?;
        let pids = demo_pids(port);
        if pids != [recorded] {
            return Err(format!(
                "{colour} (port {port}): demo-app processes {pids:?}, the state records {recorded}"
            ));
        }
        if listener_pid(port, &pids) != Some(recorded) {
            return Err(format!(
                "{colour}: port {port} is not held by pid {recorded}"
            ));
        }
        let release = state["environments"][colour]["release"]
            .as_str()
            .unwrap_or("");
        if release != releases[i] {
            return Err(format!(
                "{colour}: state release {release}, wanted {}",
                releases[i]
            ));
        }
        let (status, body) = get(port, "/version");
        if status != 200 || !body.contains(&format!("\"{}\"", releases[i])) {
            return Err(format!("{colour} answers {status} {body}"));
        }
    }
    let (runtime, file) = (rig.map_runtime("public"), rig.map_file("public"));
    if runtime != live || file != live {
        return Err(format!(
            "router: in memory {runtime:?}, map file {file:?}, wanted {live}"
        ));
    }
    if state["routers"]["public"]["live"] != live {
        return Err(format!("state router: {}", state["routers"]["public"]));
    }
    let (status, body) = rig.h.get("/");
    let want = &releases[if live == "blue" { 0 } else { 1 }];
    if status != 200 || body.trim() != format!("demo-app release {want}") {
        return Err(format!("through HAProxy: {status} {body}"));
    }
    Ok(())
}

/// What one kill point found.
struct Finding {
    run: usize,
    aim: String,
    what: String,
}

/// An event line, named for reports: `step_started environment.green`.
fn event_name(event: &Value) -> String {
    let kind = event["type"].as_str().unwrap_or("(not an event)");
    match event["id"].as_str() {
        Some(id) => format!("{kind} {id}"),
        None => kind.to_string(),
    }
}

/// How long any one wait of these tests may take.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// Kill points are events, not times: each run of the apply is SIGKILLed
/// the moment it prints its k-th event line (docs/events.md: the plan, each
/// step's start and end, each state write, the cut-over), for every line
/// but the summary, in two rounds (the target flips every run). Each kill
/// must find the apply still running (killed by the signal, not finished),
/// and a kill aimed at a running step (right after its `step_started`) must
/// land before that step's next line; otherwise that point is tried again,
/// up to three times. The report says after which line each kill landed. After every kill: the state file
/// parses, keeps its lineage, its serial never goes back; `force-unlock`
/// clears the dead run's lock and folds its journal, leaving no journal and
/// no temporary file, and a state file that names the router's new colour
/// once the cut-over was recorded; then `plan` + `apply` converge.
// Slow by nature (about 25 s here): some forty real applies, each killed at
// one more event, each followed by force-unlock, plan and a converging
// apply.
#[test]
fn sigkill_after_every_event_of_an_apply_then_apply_converges() {
    const ROUNDS: usize = 2;
    const ATTEMPTS: usize = 3;
    let test_start = Instant::now();
    let rig = Rig::start();
    let mut releases = ["b0".to_string(), "g0".to_string()];
    rig.write(&rig.simple(&releases[0], &releases[1], "blue"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let first = rig.state();
    let lineage = first["lineage"].as_str().unwrap().to_string();
    let mut last_serial = first["serial"].as_u64().unwrap();
    converged(&rig, &releases, "blue").unwrap();

    // The next target: a new release on the idle colour, and a cut-over to it.
    let mut live = "blue";
    let next_target = |run: usize, releases: &mut [String; 2], live: &mut &'static str| {
        let target = if *live == "blue" { "green" } else { "blue" };
        releases[if target == "blue" { 0 } else { 1 }] = format!("r{run}");
        *live = target;
    };

    // One uninterrupted apply of that kind, to learn its event lines.
    next_target(0, &mut releases, &mut live);
    rig.write(&rig.simple(&releases[0], &releases[1], live));
    let mut full = rig.spawn_apply_json("full", &[]);
    assert_eq!(full.wait_exit(LIMIT), 0);
    let events: Vec<String> = full.seen.iter().map(event_name).collect();
    converged(&rig, &releases, live).unwrap();
    last_serial = last_serial.max(rig.state()["serial"].as_u64().unwrap());
    let aims = events.len() - 1;
    eprintln!("one apply prints {} event lines: {events:?}", events.len());

    let mut findings: Vec<Finding> = Vec::new();
    let mut landed: Vec<String> = Vec::new();
    let mut run = 0;
    for _round in 0..ROUNDS {
        for k in 1..=aims {
            let mut hit = false;
            for _attempt in 0..ATTEMPTS {
                run += 1;
                next_target(run, &mut releases, &mut live);
                rig.write(&rig.simple(&releases[0], &releases[1], live));
                let mut apply = rig.spawn_apply_json(&format!("run{run}"), &[]);
                let mut count = 0;
                apply.wait_for(&format!("event line {k}"), LIMIT, |_| {
                    count += 1;
                    count == k
                });
                let aim = format!("after line {k} ({})", event_name(&apply.seen[k - 1]));
                let killed = apply.kill();
                let printed = apply.seen.len();
                // After a `step_started` the step runs (a deploy, a health
                // check, a switch): the kill must land in it, before its
                // `step_finished`. Other lines may be followed at once by
                // the next one (the plan and the first step's start).
                hit = killed && (printed == k || apply.seen[k - 1]["type"] != "step_started");
                if hit {
                    landed.push(format!(
                        "{aim}: killed {}",
                        if printed == k {
                            "before the next line".to_string()
                        } else {
                            format!(
                                "after line {printed} ({})",
                                event_name(&apply.seen[printed - 1])
                            )
                        }
                    ));
                }
                let earlier = findings_report(&findings);
                let mut found: Vec<String> = Vec::new();
                let mut fail = |what: String| found.push(what);
                check_after_kill(
                    &rig,
                    &apply.seen,
                    live,
                    &lineage,
                    &mut last_serial,
                    &mut fail,
                );
                converge_after_kill(&rig, &releases, live, hit, &mut fail, run, &earlier);
                findings.extend(found.into_iter().map(|what| Finding {
                    run,
                    aim: aim.clone(),
                    what,
                }));
                assert!(
                    test_start.elapsed() < Duration::from_secs(240),
                    "the crash test takes too long (run {run})"
                );
                if hit {
                    break;
                }
            }
            if !hit {
                findings.push(Finding {
                    run,
                    aim: format!("after line {k} ({})", events[k - 1]),
                    what: format!("the kill never landed in its window ({ATTEMPTS} tries)"),
                });
            }
        }
    }
    eprintln!(
        "{run} runs, {} kills while running, in {:?}:\n  {}\nfiles left in the directory: {:?}",
        landed.len(),
        test_start.elapsed(),
        landed.join("\n  "),
        rig.files()
    );
    assert!(
        findings.is_empty(),
        "{} kill points broke a promise:\n{}",
        findings.len(),
        findings_report(&findings)
    );
}

fn findings_report(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("run {} (kill {}): {}", f.run, f.aim, f.what))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What must hold right after a kill, before anything converges: the state
/// file, and what `force-unlock` (which folds the dead run's journal) leaves.
fn check_after_kill(
    rig: &Rig,
    seen: &[Value],
    live: &str,
    lineage: &str,
    last_serial: &mut u64,
    fail: &mut dyn FnMut(String),
) {
    match rig.case.state_bytes() {
        None => fail("the state file is gone after the kill".into()),
        Some(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(st) => {
                if st["lineage"] != lineage {
                    fail(format!("lineage changed: {}", st["lineage"]));
                }
                let serial = st["serial"].as_u64().unwrap_or(0);
                if serial < *last_serial {
                    fail(format!("serial went back: {last_serial} -> {serial}"));
                }
                *last_serial = (*last_serial).max(serial);
            }
            Err(e) => fail(format!("state does not parse after the kill: {e}")),
        },
    }
    let list = rig.run(&["state", "list"]);
    if list.code != 0 {
        fail(format!("state list exits {}: {}", list.code, list.stderr));
    }
    // A killed apply leaves its lock: that is expected; force-unlock clears
    // it and folds what the dead run left.
    if let Some(id) = lock_id(&rig.lock_path()) {
        let r = rig.run(&["force-unlock", &id]);
        if r.code != 0 {
            fail(format!("force-unlock {id} exits {}: {}", r.code, r.stderr));
            let _ = std::fs::remove_file(rig.lock_path());
        }
    }
    let left: Vec<String> = rig
        .files()
        .into_iter()
        .filter(|n| n.ends_with(".journal") || n.starts_with(".cutover-"))
        .collect();
    if !left.is_empty() {
        fail(format!(
            "left beside the state after force-unlock: {left:?}"
        ));
    }
    // Once the cut-over's record was synced (a state write after it), the
    // state file alone names the new colour.
    let switched = seen.iter().position(|e| e["type"] == "cutover_done");
    let recorded = switched.is_some_and(|i| seen[i..].iter().any(|e| e["type"] == "state_saved"));
    if recorded && rig.state()["routers"]["public"]["live"] != live {
        fail(format!(
            "the cut-over to {live} was recorded, but the state file says {}",
            rig.state()["routers"]["public"]
        ));
    }
}

/// A fresh `plan` and `apply` converge after the kill; when they do not,
/// clean up so that the next kill point starts from a sound world.
fn converge_after_kill(
    rig: &Rig,
    releases: &[String; 2],
    live: &str,
    killed: bool,
    fail: &mut dyn FnMut(String),
    run: usize,
    report: &str,
) {
    let plan = rig.run(&["plan"]);
    if plan.code != 0 {
        fail(format!(
            "plan after the kill exits {}: {}",
            plan.code, plan.stderr
        ));
    }
    let apply = rig.run(&["apply", "--auto-approve"]);
    let mut ok = apply.code == 0;
    if !ok {
        let strays: Vec<String> = [rig.blue, rig.green]
            .iter()
            .map(|p| format!("port {p}: {:?}", demo_pids(*p)))
            .collect();
        fail(format!(
            "apply after the kill (killed: {killed}) exits {}: {}\n  demo-apps: {}; state pids: blue {:?}, green {:?}",
            apply.code,
            apply.stderr.trim(),
            strays.join(", "),
            rig.state_pid("blue"),
            rig.state_pid("green"),
        ));
    } else {
        let again = rig.run(&["plan", "--detailed-exitcode"]);
        if again.code != 0 {
            ok = false;
            fail(format!(
                "plan after the converging apply exits {}: {}",
                again.code, again.stdout
            ));
        } else if let Err(e) = converged(rig, releases, live) {
            ok = false;
            fail(format!("after apply: {e}"));
        }
    }
    if ok {
        return;
    }
    // Stop the demo-apps the state does not record, apply again.
    let keep: Vec<i32> = ["blue", "green"]
        .iter()
        .filter_map(|c| rig.state_pid(c))
        .collect();
    let killed = rig.kill_strays(&keep);
    let retry = rig.run(&["apply", "--auto-approve"]);
    assert_eq!(
        retry.code, 0,
        "run {run}: apply does not converge even after stopping strays {killed:?}: {}",
        retry.stderr
    );
    let mut note = format!("killed unrecorded demo-apps {killed:?}");
    if let Err(e) = converged(rig, releases, live) {
        // The map file and HAProxy's memory disagree and apply does not see
        // it: write the file as HAProxy routes now, as an operator would.
        let runtime = rig.map_runtime("public");
        let text = std::fs::read_to_string(rig.h.map_path()).unwrap();
        let fixed: String = text
            .lines()
            .map(|l| {
                if l.split_whitespace().next() == Some("public") {
                    format!("public {runtime}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(rig.h.map_path(), fixed).unwrap();
        note += &format!("; still not converged ({e}); rewrote the map file by hand");
        if let Err(e) = converged(rig, releases, live) {
            panic!("run {run}: not converged after cleanup: {e}\nfindings so far:\n{report}");
        }
    }
    fail(format!("(test cleanup: {note})"));
}

/// Poll `ready` (every 5 ms) until it holds; panic naming `what` after
/// `limit`.
#[track_caller]
pub(crate) fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The narrowest crash window of the process backend, made deterministic:
/// cutover is killed while the new demo-app is inside its 300ms start-up
/// check (started and listening, not yet in the state).
#[test]
fn a_process_started_by_a_killed_apply_is_not_orphaned() {
    let rig = Rig::start();
    rig.write(&rig.simple("1", "1", "blue"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    // Green's endpoint as a name: the backend's start-up check then waits
    // its whole 300 ms (an IP endpoint ends it once green 2 accepts), the
    // window this kill needs.
    let by_name = rig.simple("1", "2", "green").replace(
        &format!("endpoint = \"127.0.0.1:{}\"", rig.green),
        &format!("endpoint = \"localhost:{}\"", rig.green),
    );
    assert!(by_name.contains("localhost"), "{by_name}");
    rig.write(&by_name);
    let mut apply = rig.spawn_apply_json("a", &[]);
    apply.wait_event("step_started", Some("environment.green"), LIMIT);
    wait_until("green 2 answers", LIMIT, || {
        get(rig.green, "/version").1.contains("\"2\"")
    });
    apply.kill_running();
    // The window: green 2 runs and listens, its step never finished, and
    // neither the state file nor the journal records it.
    assert!(
        !apply
            .seen
            .iter()
            .any(|e| e["type"] == "step_finished" && e["id"] == "environment.green"),
        "killed after green's deploy finished: {:?}",
        apply.seen
    );
    let started = demo_pids(rig.green);
    let [unrecorded] = started[..] else {
        panic!("one green demo-app after the kill, not {started:?}")
    };
    assert_eq!(listener_pid(rig.green, &started), Some(unrecorded));
    assert_ne!(
        rig.state_pid("green"),
        Some(unrecorded),
        "the state file records it"
    );
    let journal = rig.journal();
    assert!(
        !journal
            .iter()
            .any(|e| e.pointer("/environment/1/private/pid") == Some(&unrecorded.into())),
        "the journal records it: {journal:?}"
    );

    let id = lock_id(&rig.lock_path()).expect("the killed apply's lock");
    rig.run(&["force-unlock", &id]).code(0);
    let run = rig.run(&["apply", "--auto-approve"]);
    assert_eq!(run.code, 0, "the next apply must converge:\n{}", run.stderr);
    rig.run(&["plan", "--detailed-exitcode"]).code(0);
    converged(&rig, &["1".to_string(), "2".to_string()], "green").unwrap();
    assert!(
        !started.iter().any(|p| is_alive(*p)),
        "the unrecorded green was stopped"
    );
}

/// The HAProxy router's crash window, made deterministic: a kill between
/// `set map` (HAProxy routes to green) and the map file write leaves the file
/// saying blue. The next plan must see that (a reload of HAProxy would send
/// traffic back to blue) and apply must write the file.
#[test]
fn a_map_file_left_stale_by_a_kill_mid_switch_is_repaired() {
    let rig = Rig::start();
    rig.write(&rig.simple("1", "1", "green"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("green");
    // What the kill leaves: memory says green, the file still blue.
    let text = std::fs::read_to_string(rig.h.map_path()).unwrap();
    std::fs::write(
        rig.h.map_path(),
        text.replace("public green", "public blue"),
    )
    .unwrap();
    let plan = rig.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code, 2,
        "plan must show that the map file disagrees with HAProxy:\n{}",
        plan.stdout
    );
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("green");
}

/// Found by the chaos bench (seed 41, step 173): an apply SIGKILLed after
/// HAProxy's `set map` and before the state's write leaves HAProxy on
/// green, the map file and the state on blue (green previous). The
/// converging apply repairs the file with a switch from green to green; the
/// state must then name blue, where the traffic came from, as the way back,
/// and `cutover rollback` must take it there (it recorded green, the colour
/// it was on, and went nowhere).
#[test]
fn a_switch_whose_record_a_kill_lost_keeps_the_way_back() {
    let rig = Rig::start();
    rig.write(&rig.simple("1", "1", "green"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.write(&rig.simple("1", "1", "blue"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let public = &rig.state()["routers"]["public"];
    assert_eq!(
        (&public["live"], &public["previous"]),
        (&Value::from("blue"), &Value::from("green"))
    );
    // What the kill leaves: HAProxy switched, nothing written.
    let map = rig.h.map_path();
    let reply = rig
        .h
        .runtime(&format!("set map {} public green", map.display()));
    assert_eq!(reply.trim(), "", "set map: {reply}");
    assert_eq!(rig.map_file("public"), "blue");

    rig.write(&rig.simple("1", "1", "green"));
    let run = rig.run(&["apply", "--auto-approve", "--json"]).code(0);
    let done: Vec<(String, String)> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "cutover_done")
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        done,
        [("green".to_owned(), "green".to_owned())],
        "{}",
        run.stdout
    );
    rig.assert_routes_to("green");
    let public = &rig.state()["routers"]["public"];
    assert_eq!(
        (&public["live"], &public["previous"]),
        (&Value::from("green"), &Value::from("blue"))
    );

    rig.run(&["rollback", "--auto-approve"]).code(0);
    rig.assert_routes_to("blue");
}
