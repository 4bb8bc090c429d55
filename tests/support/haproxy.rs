//! A real HAProxy for tests, and the small HTTP servers it routes to.
//!
//! cutover's routers are tested against the real program (DESIGN.md, "Real
//! parts"): this harness writes a blue-green HAProxy configuration into a
//! temporary directory, starts `haproxy -db` on a free loopback port, waits for
//! its runtime API, makes sure the listening port is really its own, and kills
//! it by process id when dropped. It uses only std and `tempfile` so that any
//! test binary of the workspace can include it:
//!
//! ```ignore
//! #[path = "../../../tests/support/haproxy.rs"]
//! mod haproxy_support;
//! ```
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

// Several harnesses may be included in one test binary, each with its own copy.
#[allow(clippy::duplicate_mod)]
#[path = "colour.rs"]
mod colour;
#[allow(unused_imports)]
pub use colour::{http_get, ColourServer};

/// How long HAProxy may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The path of the `haproxy` binary; panics, never skips, when it is missing.
pub fn haproxy_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HAPROXY") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("haproxy"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("haproxy is not installed: run apt-get install -y haproxy"))
}

/// A loopback port outside the ephemeral range (tests/support/ports.rs).
pub fn free_port() -> u16 {
    crate::ports_support::free_port()
}

/// A loopback address where nothing listens (for a server HAProxy sees DOWN).
pub fn closed_address() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// One HAProxy backend with one server.
#[derive(Debug, Clone)]
pub struct BackendDef {
    /// The backend's name, e.g. `green`.
    pub name: String,
    /// The server's `host:port` (loopback).
    pub server: String,
    /// Whether HAProxy health-checks the server (`check inter 200ms fall 1 rise 1`).
    pub check: bool,
    /// The server line's options as written, instead of the above (e.g.
    /// `check` for HAProxy's defaults, inter 2s rise 2 fall 3, or `disabled`).
    pub options: Option<String>,
}

/// What the HAProxy under test looks like.
#[derive(Debug, Clone)]
pub struct HaproxySetup {
    /// The map key the frontend looks up (the router's name in cutover).
    pub key: String,
    /// The backend used when the key is absent from the map.
    pub default_backend: String,
    /// The map file's initial text.
    pub map: String,
    /// The backends, each with one server.
    pub backends: Vec<BackendDef>,
    /// Also serve the runtime API on a TCP loopback port (see
    /// [`HaproxyGuard::api_address`]).
    pub tcp_api: bool,
    /// Also serve a preview frontend on a loopback port, routed by the map
    /// key `<key>_preview` (see [`HaproxyGuard::preview_port`]).
    pub preview: bool,
    /// More map keys, each routed by a frontend of its own on a loopback
    /// port (see [`HaproxyGuard::get_via`]): several routers on one map.
    pub also_keys: Vec<String>,
}

impl HaproxySetup {
    /// Backends `blue` and `green` with servers at `blue` and `green` (no
    /// checks), and a map sending `public` to `live`.
    pub fn blue_green(blue: &str, green: &str, live: &str) -> Self {
        HaproxySetup {
            key: "public".to_string(),
            default_backend: "blue".to_string(),
            map: format!("# managed by cutover's tests\nother blue\npublic {live}\n"),
            backends: vec![
                BackendDef {
                    name: "blue".to_string(),
                    server: blue.to_string(),
                    check: false,
                    options: None,
                },
                BackendDef {
                    name: "green".to_string(),
                    server: green.to_string(),
                    check: false,
                    options: None,
                },
            ],
            tcp_api: false,
            preview: false,
            also_keys: Vec::new(),
        }
    }

    /// No backends and no map line yet, the map key `key` (add backends
    /// with [`HaproxySetup::with_backend`]).
    pub fn empty(key: &str) -> Self {
        HaproxySetup {
            key: key.to_string(),
            default_backend: "no_live".to_string(),
            map: "# managed by cutover's tests\n".to_string(),
            backends: vec![BackendDef {
                name: "no_live".to_string(),
                server: closed_address(),
                check: false,
                options: None,
            }],
            tcp_api: false,
            preview: false,
            also_keys: Vec::new(),
        }
    }

    /// A backend `name` with one server at `server`, checked by HAProxy.
    pub fn with_backend(mut self, name: &str, server: &str) -> Self {
        self.backends.push(BackendDef {
            name: name.to_string(),
            server: server.to_string(),
            check: true,
            options: None,
        });
        self
    }

    /// Health-check the server of backend `name`.
    pub fn with_check(mut self, name: &str) -> Self {
        for backend in self.backends.iter_mut().filter(|b| b.name == name) {
            backend.check = true;
        }
        self
    }

    /// Write `options` on the server line of backend `name` (e.g. `check`:
    /// HAProxy's default check, every 2s, up after 2 passes).
    pub fn with_server_options(mut self, name: &str, options: &str) -> Self {
        for backend in self.backends.iter_mut().filter(|b| b.name == name) {
            backend.options = Some(options.to_string());
        }
        self
    }

    fn config(
        &self,
        dir: &Path,
        port: u16,
        api_port: Option<u16>,
        preview_port: Option<u16>,
        also_ports: &[u16],
    ) -> String {
        let mut cfg = format!(
            "global\n\
             \x20   noreuseport\n\
             \x20   stats socket {sock} mode 600 level admin\n\
             \x20   stats timeout 30s\n\
             defaults\n\
             \x20   mode http\n\
             \x20   timeout connect 2s\n\
             \x20   timeout client 10s\n\
             \x20   timeout server 10s\n\
             frontend fe\n\
             \x20   bind 127.0.0.1:{port}\n\
             \x20   http-request return status 200 content-type text/plain string probe if {{ path {probe} }}\n\
             \x20   use_backend %[str({key}),map({map},{default})]\n",
            sock = dir.join("admin.sock").display(),
            map = dir.join("live.map").display(),
            key = self.key,
            default = self.default_backend,
            probe = OWNERSHIP_PROBE,
        );
        if let Some(api_port) = api_port {
            // `global` comes first: insert the TCP socket right after it.
            cfg = cfg.replacen(
                "global\n",
                &format!("global\n    stats socket ipv4@127.0.0.1:{api_port} level admin\n"),
                1,
            );
        }
        for (i, (key, port)) in self.also_keys.iter().zip(also_ports).enumerate() {
            cfg.push_str(&format!(
                "frontend fe_also{i}\n    bind 127.0.0.1:{port}\n    use_backend %[str({key}),map({map},{default})]\n",
                map = dir.join("live.map").display(),
                default = self.default_backend,
            ));
        }
        if let Some(preview_port) = preview_port {
            cfg.push_str(&format!(
                "frontend fe_preview\n    bind 127.0.0.1:{preview_port}\n    use_backend %[str({key}_preview),map({map},{default})]\n",
                key = self.key,
                map = dir.join("live.map").display(),
                default = self.default_backend,
            ));
        }
        for b in &self.backends {
            let check = match &b.options {
                Some(options) => format!(" {options}"),
                None if b.check => " check inter 200ms fall 1 rise 1".to_string(),
                None => String::new(),
            };
            cfg.push_str(&format!(
                "backend {}\n    server s1 {}{check}\n",
                b.name, b.server
            ));
        }
        cfg
    }
}

/// The path the harness's ownership probe asks for, which the frontend
/// answers itself.
const OWNERSHIP_PROBE: &str = "/.cutover-harness-probe";

/// A running HAProxy, killed by its process id when dropped.
pub struct HaproxyGuard {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The frontend's loopback port.
    pub port: u16,
    /// The TCP runtime API's port, when the setup asked for one.
    pub api_port: Option<u16>,
    /// The preview frontend's port, when the setup asked for one.
    pub preview_port: Option<u16>,
    /// The frontend of each of the setup's `also_keys`: (key, port).
    pub also: Vec<(String, u16)>,
}

impl HaproxyGuard {
    /// Write the configuration and map for `setup` and start HAProxy.
    pub fn start(setup: &HaproxySetup) -> HaproxyGuard {
        let mut dir = tempfile::Builder::new()
            .prefix("cutover-haproxy")
            .tempdir()
            .expect("create a temporary directory");
        std::fs::write(dir.path().join("live.map"), &setup.map).expect("write the map file");
        // Another test may take the port between our probe and HAProxy's bind;
        // with `noreuseport` HAProxy then fails to start, and we try another.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let api_port = setup.tcp_api.then(free_port);
            let preview_port = setup.preview.then(free_port);
            let also_ports: Vec<u16> = setup.also_keys.iter().map(|_| free_port()).collect();
            std::fs::write(
                dir.path().join("haproxy.cfg"),
                setup.config(dir.path(), port, api_port, preview_port, &also_ports),
            )
            .expect("write haproxy.cfg");
            let mut guard = HaproxyGuard {
                dir,
                child: None,
                port,
                api_port,
                preview_port,
                also: setup.also_keys.iter().cloned().zip(also_ports).collect(),
            };
            match guard.launch() {
                Ok(()) => return guard,
                Err(e) => {
                    last_error = e;
                    dir = guard.take_dir();
                }
            }
        }
        panic!("HAProxy did not start: {last_error}");
    }

    /// The temporary directory holding the configuration, map and socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The runtime API's unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    /// The map file, as HAProxy's configuration names it.
    pub fn map_path(&self) -> PathBuf {
        self.dir.path().join("live.map")
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("haproxy.cfg")
    }

    /// The TCP runtime API's `host:port`, when the setup asked for one.
    pub fn api_address(&self) -> Option<String> {
        self.api_port.map(|p| format!("127.0.0.1:{p}"))
    }

    /// The frontend's address.
    pub fn frontend(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process id of the running HAProxy.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("HAProxy is running").id()
    }

    /// GET `path` through the frontend: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.frontend(), path)
    }

    /// GET `path` through the frontend of map key `key` (the setup's `key`
    /// or one of its `also_keys`).
    pub fn get_via(&self, key: &str, path: &str) -> (u16, String) {
        let port = self
            .also
            .iter()
            .find(|(k, _)| k == key)
            .map_or(self.port, |(_, p)| *p);
        http_get(SocketAddr::from(([127, 0, 0, 1], port)), path)
    }

    /// Send one command to the runtime API and return its reply.
    pub fn runtime(&self, command: &str) -> String {
        runtime_command(&self.socket(), command).expect("runtime API answers")
    }

    /// The sessions HAProxy counts on `backend` now (its `BACKEND` row's
    /// `scur`).
    pub fn backend_sessions(&self, backend: &str) -> u64 {
        let stat = self.runtime(&format!("show stat {backend} 2 -1"));
        csv_field(&stat, "BACKEND", "scur")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no session count in {stat}"))
    }

    /// Kill HAProxy by its process id and reap it, as a crash of this
    /// instance would leave it: its runtime API refuses connections.
    pub fn kill(&mut self) {
        self.stop();
    }

    /// The value HAProxy holds for `key` in its map (`get map`), if any.
    pub fn map_value(&self, key: &str) -> Option<String> {
        let reply = self.runtime(&format!("get map {} {key}", self.map_path().display()));
        let value = reply.split("value=\"").nth(1)?;
        Some(value.split('"').next()?.to_string())
    }

    /// Stop HAProxy and start it again from the same configuration and the
    /// map file as it is on disk now: what a reload does to runtime changes.
    pub fn restart(&mut self) {
        self.stop();
        self.launch()
            .unwrap_or_else(|e| panic!("HAProxy did not restart: {e}"));
    }

    /// Wait until HAProxy reports `backend`/`server` with a status starting
    /// with `status` (`UP`, `DOWN`, ...); panics after `timeout`.
    pub fn wait_for_server(&self, backend: &str, server: &str, status: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = server_status(&self.runtime(&format!("show stat {backend} 4 -1")), server)
                .unwrap_or_default();
            if last.starts_with(status) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("{backend}/{server} is {last:?}, not {status} after {timeout:?}");
    }

    fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.path().join("haproxy.log"))
            .map_err(|e| e.to_string())?;
        let child = Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run haproxy: {e}"))?;
        self.child = Some(child);
        let result = self.wait_ready().and_then(|()| self.check_owns_port());
        if result.is_err() {
            self.stop();
        }
        result
    }

    /// Wait until the runtime API answers, or HAProxy exits.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("haproxy exited with {status}: {}", self.log()));
            }
            if runtime_command(&self.socket(), "show info").is_ok_and(|r| r.contains("Pid:")) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!("the runtime API did not answer: {}", self.log()))
    }

    /// Make sure requests to the frontend port reach this HAProxy and not a
    /// leftover one sharing the port: every request sent must be counted by
    /// this process's frontend.
    fn check_owns_port(&self) -> Result<(), String> {
        let before = self.frontend_requests()?;
        const PROBES: u64 = 4;
        for _ in 0..PROBES {
            // Answered by HAProxy itself: no backend needs to be up (one
            // that is not would cost HAProxy's connect retries, ~3 s each).
            http_get(self.frontend(), OWNERSHIP_PROBE);
        }
        let after = self.frontend_requests()?;
        if after - before == PROBES {
            Ok(())
        } else {
            Err(format!(
                "port {} is shared: this HAProxy saw {} of {PROBES} requests",
                self.port,
                after - before
            ))
        }
    }

    fn frontend_requests(&self) -> Result<u64, String> {
        let reply =
            runtime_command(&self.socket(), "show stat fe 1 -1").map_err(|e| e.to_string())?;
        csv_field(&reply, "FRONTEND", "req_tot")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no request count in {reply:?}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        self.stop();
        let placeholder = tempfile::tempdir().expect("create a temporary directory");
        std::mem::replace(&mut self.dir, placeholder)
    }
}

impl Drop for HaproxyGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `chattr` as root (it stops root too): a map file that cannot be replaced.
pub struct Immutable(std::path::PathBuf);

impl Immutable {
    /// Make `path` immutable until dropped.
    pub fn set(path: &std::path::Path) -> Immutable {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .expect("chattr (e2fsprogs) must be installed: apt-get install -y e2fsprogs");
        assert!(
            status.success(),
            "chattr +i {} failed (run the tests as root)",
            path.display()
        );
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// Send one command to a runtime API unix socket (non-interactive mode) and
/// return the reply.
pub fn runtime_command(socket: &Path, command: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// The `status` of `server` in a `show stat` CSV reply.
fn server_status(reply: &str, server: &str) -> Option<String> {
    csv_field(reply, server, "status")
}

/// The field `column` of the row whose `svname` is `row` in a `show stat` reply.
fn csv_field(reply: &str, row: &str, column: &str) -> Option<String> {
    let mut lines = reply.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let sv = header.iter().position(|c| *c == "svname")?;
    let col = header.iter().position(|c| *c == column)?;
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.get(sv) == Some(&row))
        .and_then(|f| f.get(col).map(|s| s.to_string()))
}
