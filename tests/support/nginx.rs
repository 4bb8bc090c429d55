//! A real nginx for tests, and the small HTTP servers it routes to.
//!
//! cutover's routers are tested against the real program (DESIGN.md, "Real
//! parts"): this harness writes a main configuration into a temporary
//! directory (every path — pid, logs, temp dirs — inside it), with a frontend
//! on a free loopback port that sends traffic to `cutover_<router>` through
//! the include file cutover owns, writes that include pointing at the first
//! colour, starts `nginx -p DIR -c DIR/nginx.conf` in the foreground with a
//! master and one worker, waits until the frontend and the marker answer, and
//! stops the master by its process id when dropped. It uses only std and
//! `tempfile` so that any test binary of the workspace can include it:
//!
//! ```ignore
//! #[path = "../../../tests/support/nginx.rs"]
//! mod nginx_support;
//! ```
#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// Several harnesses may be included in one test binary, each with its own copy.
#[allow(clippy::duplicate_mod)]
#[path = "colour.rs"]
mod colour;
#[allow(unused_imports)]
pub use colour::{http_get, ColourServer};

/// How long nginx may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The path of the `nginx` binary; panics, never skips, when it is missing.
pub fn nginx_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NGINX") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("nginx is not installed: run apt-get install -y nginx"))
}

/// A loopback port outside the ephemeral range (tests/support/ports.rs).
pub fn free_port() -> u16 {
    crate::ports_support::free_port()
}

/// A loopback address where nothing listens.
pub fn closed_address() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// What the nginx under test looks like.
#[derive(Debug, Clone)]
pub struct NginxSetup {
    /// The router's name: the upstream is `cutover_<router>`.
    pub router: String,
    /// The colour the initial include routes to, and its endpoints.
    pub live: (String, Vec<String>),
    /// Also a preview listener sending traffic to `cutover_<router>_preview`,
    /// with its own include routing to this colour and endpoints.
    pub preview: Option<(String, Vec<String>)>,
}

impl NginxSetup {
    /// Router `public`, live on `colour` at `endpoint`, no preview.
    pub fn new(colour: &str, endpoint: &str) -> Self {
        NginxSetup {
            router: "public".to_string(),
            live: (colour.to_string(), vec![endpoint.to_string()]),
            preview: None,
        }
    }

    /// Add a preview listener routing to `colour` at `endpoint`.
    pub fn with_preview(mut self, colour: &str, endpoint: &str) -> Self {
        self.preview = Some((colour.to_string(), vec![endpoint.to_string()]));
        self
    }
}

/// The include file cutover's nginx provider writes, in the same format:
/// `upstream` with the colour's servers and the marker server answering
/// `<colour> <generation>` at `location` for `Host: server_name`.
pub fn include_text(
    upstream: &str,
    servers: &[String],
    marker_port: u16,
    server_name: &str,
    location: &str,
    colour: &str,
    generation: &str,
) -> String {
    let servers: String = servers
        .iter()
        .map(|s| format!("    server {s};\n"))
        .collect();
    format!(
        "upstream {upstream} {{\n{servers}}}\n\
         server {{\n\
         \x20   listen 127.0.0.1:{marker_port};\n\
         \x20   server_name {server_name};\n\
         \x20   access_log off;\n\
         \x20   location = {location} {{\n\
         \x20       default_type text/plain;\n\
         \x20       return 200 \"{colour} {generation}\\n\";\n\
         \x20   }}\n\
         \x20   location / {{\n\
         \x20       return 404;\n\
         \x20   }}\n\
         }}\n"
    )
}

/// A running nginx, stopped by its process id when dropped.
pub struct NginxGuard {
    dir: tempfile::TempDir,
    child: Option<Child>,
    setup: NginxSetup,
    /// The frontend's loopback port (`proxy_pass http://cutover_<router>`).
    pub port: u16,
    /// The preview listener's port, when the setup has a preview.
    pub preview_port: Option<u16>,
    /// The marker servers' port (both includes).
    pub marker_port: u16,
}

impl NginxGuard {
    /// Write the configuration and includes for `setup` and start nginx.
    pub fn start(setup: &NginxSetup) -> NginxGuard {
        let dir = tempfile::Builder::new()
            .prefix("cutover-nginx")
            .tempdir()
            .expect("create a temporary directory");
        // Workers run as an unprivileged user when the tests run as root.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("make the temporary directory readable");
        let mut guard = NginxGuard {
            dir,
            child: None,
            setup: setup.clone(),
            port: 0,
            preview_port: None,
            marker_port: 0,
        };
        // Another test may take a port between our probe and nginx's bind;
        // nginx then fails to start, and we try other ports.
        let mut last_error = String::new();
        for _ in 0..5 {
            guard.port = free_port();
            guard.marker_port = free_port();
            guard.preview_port = setup.preview.as_ref().map(|_| free_port());
            guard.write_files();
            match guard.launch() {
                Ok(()) => return guard,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    fn write_files(&self) {
        let router = &self.setup.router;
        let (colour, servers) = &self.setup.live;
        std::fs::write(
            self.include_path(),
            include_text(
                &format!("cutover_{router}"),
                servers,
                self.marker_port,
                &format!("cutover-{router}"),
                &format!("/cutover/{router}"),
                colour,
                "0",
            ),
        )
        .expect("write the include");
        if let Some((colour, servers)) = &self.setup.preview {
            std::fs::write(
                self.preview_include_path(),
                include_text(
                    &format!("cutover_{router}_preview"),
                    servers,
                    self.marker_port,
                    &format!("cutover-{router}-preview"),
                    &format!("/cutover/{router}/preview"),
                    colour,
                    "0",
                ),
            )
            .expect("write the preview include");
        }
        std::fs::write(self.config_path(), self.config()).expect("write nginx.conf");
    }

    fn config(&self) -> String {
        let dir = self.dir.path().display();
        let router = &self.setup.router;
        let mut http = format!(
            "    include {include};\n\
             \x20   server {{\n\
             \x20       listen 127.0.0.1:{port};\n\
             \x20       location = /__harness {{ return 200 \"{dir}\"; }}\n\
             \x20       location / {{ proxy_pass http://cutover_{router}; }}\n\
             \x20   }}\n",
            include = self.include_path().display(),
            port = self.port,
        );
        if let Some(port) = self.preview_port {
            http.push_str(&format!(
                "    include {include};\n\
                 \x20   server {{\n\
                 \x20       listen 127.0.0.1:{port};\n\
                 \x20       location / {{ proxy_pass http://cutover_{router}_preview; }}\n\
                 \x20   }}\n",
                include = self.preview_include_path().display(),
            ));
        }
        format!(
            "daemon off;\n\
             master_process on;\n\
             worker_processes 1;\n\
             pid {dir}/nginx.pid;\n\
             error_log {dir}/error.log info;\n\
             events {{\n    worker_connections 64;\n}}\n\
             http {{\n\
             \x20   access_log {dir}/access.log;\n\
             \x20   client_body_temp_path {dir}/client_body;\n\
             \x20   proxy_temp_path {dir}/proxy;\n\
             \x20   fastcgi_temp_path {dir}/fastcgi;\n\
             \x20   uwsgi_temp_path {dir}/uwsgi;\n\
             \x20   scgi_temp_path {dir}/scgi;\n\
             {http}\
             }}\n"
        )
    }

    /// The temporary directory holding configuration, includes, pid and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The main configuration file (`-c`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// The include file cutover owns for live traffic.
    pub fn include_path(&self) -> PathBuf {
        self.dir.path().join("cutover-live.conf")
    }

    /// The include file cutover owns for the preview colour.
    pub fn preview_include_path(&self) -> PathBuf {
        self.dir.path().join("cutover-preview.conf")
    }

    /// The master's pid file.
    pub fn pid_file(&self) -> PathBuf {
        self.dir.path().join("nginx.pid")
    }

    /// The marker servers' `host:port` (the provider's `marker` setting).
    pub fn marker(&self) -> String {
        format!("127.0.0.1:{}", self.marker_port)
    }

    /// The master's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("nginx is running").id()
    }

    /// The master's worker processes now.
    pub fn workers(&self) -> Vec<u32> {
        let parent = self.pid();
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .filter(|pid: &u32| {
                        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                            .unwrap_or_default();
                        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                        let fields: Vec<&str> = rest.split_whitespace().collect();
                        fields.len() > 1 && fields[0] != "Z" && fields[1] == parent.to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        pids.sort_unstable();
        pids
    }

    /// The frontend's address.
    pub fn frontend(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The preview listener's address, when the setup has a preview.
    pub fn preview_frontend(&self) -> Option<SocketAddr> {
        self.preview_port
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// GET `path` through the frontend: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.frontend(), path)
    }

    /// GET `path` through the preview listener: (status, body).
    pub fn get_preview(&self, path: &str) -> (u16, String) {
        http_get(self.preview_frontend().expect("a preview listener"), path)
    }

    /// nginx's error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn launch(&mut self) -> Result<(), String> {
        let stderr =
            std::fs::File::create(self.dir.path().join("stderr.log")).map_err(|e| e.to_string())?;
        // Its own process group, so that stopping it also stops workers an
        // unclean exit of the master would orphan.
        let child = Command::new(nginx_binary())
            .process_group(0)
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.config_path())
            .arg("-e")
            .arg(self.dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot run nginx: {e}"))?;
        self.child = Some(child);
        let result = self.wait_ready();
        if result.is_err() {
            self.stop();
        }
        result
    }

    /// Wait until the frontend answers as this nginx (its directory at
    /// `/__harness`) and the pid file names it, or nginx exits.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let me = self.dir.path().display().to_string();
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("nginx exited with {status}: {}", self.log()));
            }
            let pid_ok = std::fs::read_to_string(self.pid_file())
                .is_ok_and(|p| p.trim() == self.pid().to_string());
            if pid_ok && self.get("/__harness") == (200, me.clone()) && !self.workers().is_empty() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!("nginx did not answer: {}", self.log()))
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGQUIT is nginx's graceful stop; SIGKILL if it lingers.
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            // The master is gone; its workers (old ones still draining a
            // reload among them) must not outlive the test.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
        }
    }
}

impl Drop for NginxGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A unique-enough word for tests (e.g. a generation).
pub fn nonce() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_nanos().to_string()
}
