//! A real Caddy for tests, and the small HTTP servers it routes to.
//!
//! cutover's routers are tested against the real program (DESIGN.md, "Real
//! parts"): this harness writes a JSON config into a temporary directory (admin
//! API and one HTTP server on free loopback ports, automatic HTTPS off, no
//! config persisted, HOME and XDG dirs inside the temporary directory), runs
//! `caddy run --config caddy.json`, waits for the admin API, makes sure the
//! listening ports are really this process's (Caddy binds with SO_REUSEPORT,
//! so a leftover Caddy could share them), and kills it by process id when
//! dropped. It uses only std, `tempfile` and `serde_json` so that any test
//! binary of the workspace can include it:
//!
//! ```ignore
//! #[path = "../../../tests/support/caddy.rs"]
//! mod caddy_support;
//! ```
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// Several harnesses may be included in one test binary, each with its own copy.
#[allow(clippy::duplicate_mod)]
#[path = "colour.rs"]
mod colour;
#[allow(unused_imports)]
pub use colour::ColourServer;

/// How long Caddy may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The path of the `caddy` binary; panics, never skips, when it is missing.
pub fn caddy_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CADDY") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("caddy"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("caddy is not installed: run apt-get install -y caddy"))
}

/// A loopback port outside the ephemeral range (tests/support/ports.rs).
pub fn free_port() -> u16 {
    crate::ports_support::free_port()
}

/// A loopback address where nothing listens (an endpoint that is down).
pub fn closed_address() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A route sending everything it matches to `dials` through `reverse_proxy`,
/// with `@id` = `id`.
pub fn proxy_route(id: &str, dials: &[String]) -> Value {
    let upstreams: Vec<Value> = dials.iter().map(|d| json!({ "dial": d })).collect();
    json!({"@id": id, "handle": [{"handler": "reverse_proxy", "upstreams": upstreams}]})
}

/// An operator's route answering `body` on `path`, as a static response.
pub fn static_route(path: &str, body: &str) -> Value {
    json!({
        "match": [{"path": [path]}],
        "handle": [{"handler": "static_response", "body": body}],
    })
}

/// What the Caddy under test looks like.
#[derive(Debug, Clone)]
pub struct CaddySetup {
    /// The name of the HTTP server under `apps.http.servers`.
    pub server: String,
    /// Its routes, in order.
    pub routes: Vec<Value>,
    /// Serve the admin API on a unix socket (`admin.sock` in the directory)
    /// instead of a TCP loopback port.
    pub unix_admin: bool,
}

impl CaddySetup {
    /// Server `srv0` with the given routes and a TCP admin API.
    pub fn with_routes(routes: Vec<Value>) -> Self {
        CaddySetup {
            server: "srv0".to_string(),
            routes,
            unix_admin: false,
        }
    }

    /// The managed route `cutover-public` sending traffic to `live`, after an
    /// operator route answering `other` on `/other`.
    pub fn live_route(live: &str) -> Self {
        Self::with_routes(vec![
            static_route("/other", "other"),
            proxy_route("cutover-public", &[live.to_string()]),
        ])
    }

    fn config(&self, dir: &Path, port: u16, admin_port: u16) -> Value {
        let listen = if self.unix_admin {
            format!("unix/{}", dir.join("admin.sock").display())
        } else {
            format!("127.0.0.1:{admin_port}")
        };
        let mut servers = serde_json::Map::new();
        servers.insert(
            self.server.clone(),
            json!({
                "listen": [format!("127.0.0.1:{port}")],
                "automatic_https": {"disable": true},
                "routes": self.routes,
            }),
        );
        json!({
            "admin": {"listen": listen, "config": {"persist": false}},
            "logging": {"logs": {"default": {"level": "WARN"}}},
            "storage": {"module": "file_system", "root": dir.join("data")},
            "apps": {"http": {"servers": servers}},
        })
    }
}

/// A running Caddy, killed by its process id when dropped.
pub struct CaddyGuard {
    dir: tempfile::TempDir,
    child: Option<Child>,
    unix_admin: bool,
    /// The HTTP server's loopback port.
    pub port: u16,
    /// The admin API's loopback port (unused with a unix admin socket).
    pub admin_port: u16,
}

impl CaddyGuard {
    /// Write the config for `setup` and start Caddy.
    pub fn start(setup: &CaddySetup) -> CaddyGuard {
        let mut dir = tempfile::Builder::new()
            .prefix("cutover-caddy")
            .tempdir()
            .expect("create a temporary directory");
        // Another test may take a port between our probe and Caddy's bind;
        // then Caddy fails to start or shares it, and we try other ports.
        let mut last_error = String::new();
        for _ in 0..5 {
            let (port, admin_port) = (free_port(), free_port());
            let config = setup.config(dir.path(), port, admin_port);
            std::fs::write(
                dir.path().join("caddy.json"),
                serde_json::to_string_pretty(&config).expect("config is JSON"),
            )
            .expect("write caddy.json");
            let mut guard = CaddyGuard {
                dir,
                child: None,
                unix_admin: setup.unix_admin,
                port,
                admin_port,
            };
            match guard.launch() {
                Ok(()) => return guard,
                Err(e) => {
                    last_error = e;
                    dir = guard.take_dir();
                }
            }
        }
        panic!("Caddy did not start: {last_error}");
    }

    /// The temporary directory holding the config, the socket and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config file Caddy was started from.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("caddy.json")
    }

    /// The admin endpoint as cutover's `admin` setting writes it.
    pub fn admin_address(&self) -> String {
        if self.unix_admin {
            format!("unix/{}", self.dir.path().join("admin.sock").display())
        } else {
            format!("127.0.0.1:{}", self.admin_port)
        }
    }

    /// The HTTP server's address.
    pub fn listener(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process id of the running Caddy.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("Caddy is running").id()
    }

    /// GET `path` through Caddy's HTTP server: (status, body). Every admin
    /// change is a full reload of Caddy, which resets a connection accepted
    /// just then (measured with and without cutover: docs/benchmarks.md):
    /// a reset, and only a reset, is asked again, for at most 5 s. What is
    /// answered is returned as it is.
    pub fn get(&self, path: &str) -> (u16, String) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let answer = http_get(self.listener(), &self.listener().to_string(), path);
            let reset = answer.0 == 0 && answer.1.contains("reset");
            if !reset || std::time::Instant::now() >= deadline {
                return answer;
            }
            eprintln!(
                "GET {path} again after Caddy's reload reset it: {}",
                answer.1
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// GET `path` through Caddy's HTTP server with `Host: host`.
    pub fn get_host(&self, host: &str, path: &str) -> (u16, String) {
        http_get(self.listener(), host, path)
    }

    /// One request to the admin API: (status, body).
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        let body = body.map(Value::to_string);
        self.admin_request(method, path, body.as_deref())
            .unwrap_or_else(|e| panic!("admin API {method} {path}: {e}"))
    }

    /// The running config, `GET /config/`. Right after a change, Caddy
    /// may reset the admin connection while its reload settles: the read is
    /// asked again, for at most 5 s.
    pub fn config(&self) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let (status, body) = loop {
            match self.admin_request("GET", "/config/", None) {
                Ok(answer) => break answer,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("GET /config/ again after: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("admin API GET /config/: {e}"),
            }
        };
        assert_eq!(status, 200, "GET /config/: {body}");
        serde_json::from_str(&body).expect("the config is JSON")
    }

    /// The routes of the server `server`, as Caddy runs them.
    pub fn routes(&self, server: &str) -> Value {
        self.config()["apps"]["http"]["servers"][server]["routes"].clone()
    }

    /// Kill Caddy by its process id and reap it, as a crash would leave it.
    pub fn kill(&mut self) {
        self.stop();
    }

    /// Stop Caddy and start it again from the same config file, without
    /// `--resume`: what a restart by a service manager does to changes made
    /// through the admin API.
    pub fn restart(&mut self) {
        self.stop();
        self.launch()
            .unwrap_or_else(|e| panic!("Caddy did not restart: {e}"));
    }

    fn launch(&mut self) -> Result<(), String> {
        let log =
            std::fs::File::create(self.dir.path().join("caddy.log")).map_err(|e| e.to_string())?;
        let dir = self.dir.path();
        let child = Command::new(caddy_binary())
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .current_dir(dir)
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run caddy: {e}"))?;
        self.child = Some(child);
        let result = self.wait_ready().and_then(|()| self.check_owns_ports());
        if result.is_err() {
            self.stop();
        }
        result
    }

    /// Wait until the admin API answers and the HTTP server listens, or Caddy exits.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("caddy exited with {status}: {}", self.log()));
            }
            let admin_ok = self
                .admin_request("GET", "/config/", None)
                .is_ok_and(|(status, _)| status == 200);
            if admin_ok && !listening_inodes(self.port).is_empty() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!("the admin API did not answer: {}", self.log()))
    }

    /// Every socket listening on our ports must be one of this process's file
    /// descriptors: Caddy binds with SO_REUSEPORT, so a leftover Caddy on the
    /// same port would silently take part of the traffic.
    fn check_owns_ports(&self) -> Result<(), String> {
        let mut ports = vec![self.port];
        if !self.unix_admin {
            ports.push(self.admin_port);
        }
        let own = socket_inodes(self.pid());
        for port in ports {
            let listening = listening_inodes(port);
            if listening.is_empty() || !listening.iter().all(|inode| own.contains(inode)) {
                return Err(format!(
                    "port {port} is not (only) Caddy {}'s: listening sockets {listening:?}",
                    self.pid()
                ));
            }
        }
        Ok(())
    }

    fn admin_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        // HTTP/1.0 so that Caddy answers without chunks (and drops the ETag
        // trailer, which the harness does not need). Caddy accepts only an
        // empty Host on a unix socket, and its listen address on TCP.
        let (host, body) = (
            if self.unix_admin {
                String::new()
            } else {
                format!("127.0.0.1:{}", self.admin_port)
            },
            body.unwrap_or(""),
        );
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let response = if self.unix_admin {
            let mut stream = UnixStream::connect(self.dir.path().join("admin.sock"))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            exchange(&mut stream, &request)?
        } else {
            let addr = SocketAddr::from(([127, 0, 0, 1], self.admin_port));
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            exchange(&mut stream, &request)?
        };
        Ok(parse_response(&response))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default()
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

impl Drop for CaddyGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn exchange(stream: &mut (impl Read + Write), request: &str) -> std::io::Result<Vec<u8>> {
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response)
}

fn parse_response(response: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The inodes of the IPv4 sockets listening on `port` (any address).
fn listening_inodes(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let listening = fields.get(3)? == &"0A";
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| fields.get(9).map(|s| s.to_string()))
                .flatten()
        })
        .collect()
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> HashSet<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            link.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect()
}

/// GET `path` from `addr` with `Host: host` over HTTP/1.1: (status, body). A
/// connection or protocol failure is status 0 with the error as body.
pub fn http_get(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let attempt = || -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        Ok(parse_response(&exchange(&mut stream, &request)?))
    };
    attempt().unwrap_or_else(|e| (0, e.to_string()))
}
