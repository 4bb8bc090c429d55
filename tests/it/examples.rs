//! Every example under `examples/` is validated and planned (STYLE.md, after
//! just's `tests/examples.rs`), so an example cannot rot unnoticed.
//!
//! The examples are found by listing `examples/`: every directory holding an
//! `*.hcl` file is one, and a new example is covered without touching this
//! file. Each is copied to a temporary directory, its router is started from
//! the example's own configuration (as its `run.sh` does), and the human and
//! JSON plans of a first run are snapshotted. The copy's loopback ports are
//! moved to free ones, so that the test neither collides with an example
//! someone is running nor with another test; the snapshots show the
//! example's own ports again.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{cutover_bin, Case};

/// How long a router may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Every directory under `examples/` that holds an `*.hcl` file, by name.
fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("list examples/")
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|dir| dir.is_dir() && !hcl_files(dir).is_empty())
        .collect();
    found.sort();
    found
}

fn hcl_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "hcl"))
        .collect()
}

/// Copy the example's files (not what a run left behind: `.run/`, `.state/`)
/// into `to`.
fn copy_example(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("list the example") {
        let path = entry.expect("list the example").path();
        let name = path.file_name().expect("a file name");
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            std::fs::create_dir_all(to.join(name)).expect("create a directory");
            copy_example(&path, &to.join(name));
        } else {
            std::fs::copy(&path, to.join(name)).expect("copy an example file");
        }
    }
}

/// The text files of a directory tree.
fn text_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list a directory") {
        let path = entry.expect("list a directory").path();
        if path.is_dir() {
            files.extend(text_files(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            files.push((path, text));
        }
    }
    files
}

/// A loopback port outside the ephemeral range (tests/support/ports.rs).
fn free_port() -> u16 {
    crate::ports_support::free_port()
}

/// Move every port the copy names as `127.0.0.1:PORT` to a free one, in
/// every file (so that `--port 9101` moves with `127.0.0.1:9101`). Returns
/// new port -> the example's port.
fn relocate_ports(dir: &Path) -> BTreeMap<u16, u16> {
    let files = text_files(dir);
    let mut moved = BTreeMap::new();
    for (_, text) in &files {
        for (i, _) in text.match_indices("127.0.0.1:") {
            let digits: String = text[i + "127.0.0.1:".len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(port) = digits.parse::<u16>() {
                moved.entry(port).or_insert_with(free_port);
            }
        }
    }
    for (path, text) in files {
        std::fs::write(&path, replace_numbers(&text, &moved)).expect("rewrite an example file");
    }
    moved.into_iter().map(|(old, new)| (new, old)).collect()
}

/// `text` with every whole number that is a key of `ports` replaced.
fn replace_numbers(text: &str, ports: &BTreeMap<u16, u16>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        let number = &tail[..end];
        match number.parse::<u16>().ok().and_then(|n| ports.get(&n)) {
            Some(new) if !out.ends_with(|c: char| c.is_alphanumeric() || c == '.') => {
                out.push_str(&new.to_string())
            }
            _ => out.push_str(number),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The routers the example's configuration drives, by backend block.
fn router_kinds(dir: &Path) -> Vec<&'static str> {
    let text: String = hcl_files(dir)
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read an example's .hcl"))
        .collect();
    ["haproxy", "caddy", "nginx", "aws_alb"]
        .into_iter()
        .filter(|kind| {
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{kind} {{")))
        })
        .collect()
}

/// A router started from an example's own configuration, stopped by its
/// process id when dropped.
struct Router {
    child: Child,
    what: &'static str,
    log: PathBuf,
}

impl Drop for Router {
    fn drop(&mut self) {
        // nginx stops gracefully on SIGQUIT; the others on SIGTERM.
        let signal = if self.what == "nginx" {
            nix::sys::signal::Signal::SIGQUIT
        } else {
            nix::sys::signal::Signal::SIGTERM
        };
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, signal);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Workers of a master that did not stop cleanly must not outlive the test.
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

impl Router {
    /// Wait until `ready` holds, failing with the router's log if it exits
    /// or takes too long.
    fn wait_until(&mut self, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}: {}", self.what, self.log_text());
            }
            if ready() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not start: {}", self.what, self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The routers to start for `kind`: one, or for HAProxy one per
/// `haproxy*.cfg` (a fleet example's instances, `haproxy-a.cfg` with its
/// `.run/admin-a.sock` and `.run/live-a.map`), each by its name's suffix.
fn instances(kind: &'static str, dir: &Path) -> Vec<(&'static str, String)> {
    if kind != "haproxy" {
        return vec![(kind, String::new())];
    }
    let mut suffixes: Vec<String> = std::fs::read_dir(dir)
        .expect("list the example")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            let suffix = name.strip_prefix("haproxy")?.strip_suffix(".cfg")?;
            Some(suffix.to_string())
        })
        .collect();
    suffixes.sort();
    suffixes.into_iter().map(|s| (kind, s)).collect()
}

/// Start `kind` from the example's configuration in `dir` (the copy) the
/// way the example's run.sh does, with everything it writes in `dir/.run`;
/// `suffix` names one instance of a fleet (`-a`), else is empty.
fn start_router((kind, suffix): (&'static str, String), dir: &Path) -> Router {
    let run = dir.join(".run");
    std::fs::create_dir_all(&run).expect("create .run");
    let log = run.join(format!("{kind}{suffix}.log"));
    let output = std::fs::File::create(&log).expect("create the router's log");
    let mut command = match kind {
        "haproxy" => {
            std::fs::write(run.join(format!("live{suffix}.map")), "").expect("write the map");
            let mut c = Command::new("haproxy");
            c.arg("-db")
                .arg("-f")
                .arg(dir.join(format!("haproxy{suffix}.cfg")))
                .env("QUICKSTART_RUN", &run);
            c
        }
        "caddy" => {
            let mut c = Command::new("caddy");
            c.args(["run", "--config"])
                .arg(dir.join("caddy.json"))
                .env("HOME", &run)
                .env("XDG_DATA_HOME", run.join("data"))
                .env("XDG_CONFIG_HOME", run.join("config"));
            c
        }
        "nginx" => {
            // Workers run as an unprivileged user when the tests run as root.
            use std::os::unix::fs::PermissionsExt;
            for d in [dir, &run] {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
                    .expect("make the copy readable");
            }
            std::fs::copy(dir.join("initial-include.conf"), run.join("public.conf"))
                .expect("copy the initial include");
            let mut c = Command::new(nginx_binary());
            c.arg("-p")
                .arg(format!("{}/", run.display()))
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-e")
                .arg(run.join("error.log"));
            c
        }
        "aws_alb" => {
            // moto's server on the port of the example's `endpoint_url`,
            // as its run.sh starts it.
            let mut c = Command::new(crate::moto_support::venv().join("bin/moto_server"));
            c.args(["-H", "127.0.0.1", "-p", &moto_port(dir).to_string()]);
            c
        }
        other => panic!("no way to start router {other}: add it to examples.rs"),
    };
    let child = command
        .process_group(0)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("log"))
        .stderr(output)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {kind}: {e}"));
    let mut router = Router {
        child,
        what: kind,
        log,
    };
    match kind {
        "haproxy" => {
            let socket = run.join(format!("admin{suffix}.sock"));
            router.wait_until(|| std::os::unix::net::UnixStream::connect(&socket).is_ok());
        }
        "caddy" => {
            let config: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(dir.join("caddy.json")).expect("read caddy.json"),
            )
            .expect("caddy.json is JSON");
            let admin = config["admin"]["listen"].as_str().expect("admin.listen");
            let admin: SocketAddr = admin.parse().expect("a TCP admin address");
            router.wait_until(|| http_status(admin, "/config/") == 200);
        }
        "nginx" => {
            let pid_file = run.join("nginx.pid");
            let pid = router.child.id().to_string();
            router.wait_until(|| {
                std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim() == pid)
                    && marker_answers(dir)
            });
        }
        "aws_alb" => {
            let url = format!("http://127.0.0.1:{}", moto_port(dir));
            let addr: SocketAddr = ([127, 0, 0, 1], moto_port(dir)).into();
            router.wait_until(|| http_status(addr, "/moto-api/") == 200);
            // The load balancer run.sh makes: seeded, so its ARNs are the
            // example's defaults.
            let made = Command::new(crate::moto_support::venv().join("bin/python"))
                .arg(dir.join("moto_alb.py"))
                .args([url.as_str(), "setup", "--seed", "42"])
                .output()
                .expect("run moto_alb.py");
            assert!(
                made.status.success(),
                "moto_alb.py setup: {}",
                String::from_utf8_lossy(&made.stderr)
            );
        }
        _ => {}
    }
    router
}

/// The port of the `endpoint_url` an example's configuration names
/// (`http://127.0.0.1:PORT`, after the copy's ports moved).
fn moto_port(dir: &Path) -> u16 {
    let text: String = hcl_files(dir)
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read an example's .hcl"))
        .collect();
    let at = text
        .find("\"http://127.0.0.1:")
        .expect("an endpoint_url on loopback")
        + 18;
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a port")
}

fn nginx_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("nginx is not installed: run apt-get install -y nginx"))
}

/// Whether the nginx example's marker (`marker = "127.0.0.1:PORT"` in its
/// configuration) answers: the workers have loaded the include.
fn marker_answers(dir: &Path) -> bool {
    let text: String = hcl_files(dir)
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    let Some(marker) = text.lines().find_map(|l| {
        let value = l.trim().strip_prefix("marker")?.trim_start();
        value
            .strip_prefix('=')?
            .trim()
            .trim_matches('"')
            .parse()
            .ok()
    }) else {
        return false;
    };
    http_status(marker, "/") != 0
}

/// The status of `GET path` from `addr`, 0 when nothing answers.
fn http_status(addr: SocketAddr, path: &str) -> u16 {
    let attempt = || -> std::io::Result<u16> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    };
    attempt().unwrap_or(0)
}

/// `text` with every character a regex gives meaning to escaped.
fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let meta = "\\.+*?()|[]{}^$#&-~".contains(c);
            meta.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// Snapshot settings for one example: its temporary directory, moved ports,
/// pids and lineages filtered.
fn settings(dir: &Path, ports: &BTreeMap<u16, u16>) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(true);
    let canonical = dir.canonicalize().expect("canonical path");
    for path in [canonical.as_path(), dir] {
        settings.add_filter(&escape(&path.display().to_string()), "[EXAMPLE]");
    }
    for (new, old) in ports {
        settings.add_filter(&format!(r"\b{new}\b"), old.to_string());
    }
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[LINEAGE]",
    );
    settings.add_filter(r#""pid": \d+"#, r#""pid": [PID]"#);
    settings.add_filter(r"\bpid \d+", "pid [PID]");
    settings
}

#[test]
fn every_example_validates_and_plans() {
    let all = examples();
    let names: Vec<String> = all
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in [
        "caddy",
        "exec",
        "fleet",
        "haproxy-pair",
        "nginx",
        "quickstart",
        "staging",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "examples/{required} is missing: found {names:?}"
        );
    }
    for (example, name) in all.iter().zip(&names) {
        plan_example(example, name);
    }
}

/// Validate the example as shipped, then plan a copy of it against its
/// router and snapshot both views.
fn plan_example(example: &Path, name: &str) {
    let validate = Command::new(cutover_bin())
        .arg("-C")
        .arg(example)
        .arg("validate")
        .env("NO_COLOR", "1")
        .output()
        .expect("run cutover validate");
    if !cfg!(feature = "aws") && router_kinds(example).contains(&"aws_alb") {
        // A build without the AWS SDK says so, pointing at the block.
        let stderr = String::from_utf8_lossy(&validate.stderr);
        assert!(
            !validate.status.success()
                && stderr.contains("this cutover was built without the `aws_alb` backend"),
            "examples/{name} without the `aws` feature:\n{stderr}"
        );
        return;
    }
    assert!(
        validate.status.success(),
        "cutover validate fails on examples/{name}:\n{}{}",
        String::from_utf8_lossy(&validate.stdout),
        String::from_utf8_lossy(&validate.stderr)
    );

    let case = Case::new();
    copy_example(example, case.path());
    let ports = relocate_ports(case.path());
    let _routers: Vec<Router> = router_kinds(case.path())
        .into_iter()
        .flat_map(|kind| instances(kind, case.path()))
        .map(|instance| start_router(instance, case.path()))
        .collect();

    // moto's credentials (for examples/alb), nothing of the machine's.
    let env = crate::moto_support::AWS_ENV;
    let human = case.run_env(&["plan"], &env);
    assert_eq!(
        human.code, 0,
        "cutover plan fails on examples/{name}:\n{}{}",
        human.stdout, human.stderr
    );
    let json = case.run_env(&["plan", "--json"], &env);
    assert_eq!(
        json.code, 0,
        "cutover plan --json fails on examples/{name}:\n{}{}",
        json.stdout, json.stderr
    );
    let doc: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("plan --json prints JSON");
    assert_eq!(
        doc["format_version"],
        cutover::plan::document::FORMAT_VERSION,
        "{}",
        json.stdout
    );

    settings(case.path(), &ports).bind(|| {
        insta::assert_snapshot!(format!("{name}_plan"), human.stdout);
        insta::assert_snapshot!(format!("{name}_plan_json"), json.stdout);
    });
}
