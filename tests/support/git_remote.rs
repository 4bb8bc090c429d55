//! Git remotes for tests: bare repositories in temporary directories,
//! reached by path or `file://`, or served by a real `git daemon` on a
//! loopback port (DESIGN.md, "Real parts"), started by the test and stopped
//! by its process id. Only std and `tempfile`, like the other harnesses.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `git ARGS` run in `dir` with a predictable environment; panics, never
/// skips, when git is missing.
pub fn git_in(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@localhost")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@localhost")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("git is not installed ({e}): run apt-get install -y git"))
}

/// [`git_in`], which must succeed; its stdout.
#[track_caller]
pub fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git_in(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare repository `state.git` in a temporary directory of its own (the
/// daemon's base path).
pub struct BareRepo {
    dir: tempfile::TempDir,
}

impl BareRepo {
    /// A new, empty bare repository.
    pub fn new() -> BareRepo {
        let dir = tempfile::Builder::new()
            .prefix("cutover-remote")
            .tempdir()
            .expect("tempdir");
        git_ok(dir.path(), &["init", "--quiet", "--bare", "state.git"]);
        BareRepo { dir }
    }

    /// The directory the repository is in.
    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    /// The repository.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("state.git")
    }

    /// Its `file://` URL.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// `git ARGS` in the repository, which must succeed; its stdout.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        git_ok(&self.path(), args)
    }

    /// The commit `name` points at, if it exists.
    pub fn rev(&self, name: &str) -> Option<String> {
        let out = git_in(&self.path(), &["rev-parse", "--verify", "--quiet", name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The commits of `branch`, newest first: (id, subject).
    pub fn log(&self, branch: &str) -> Vec<(String, String)> {
        if self.rev(&format!("refs/heads/{branch}")).is_none() {
            return Vec::new();
        }
        self.git(&["log", "--format=%H %s", &format!("refs/heads/{branch}")])
            .lines()
            .map(|l| {
                let (id, subject) = l.split_once(' ').unwrap_or((l, ""));
                (id.to_owned(), subject.to_owned())
            })
            .collect()
    }

    /// The file `spec` (`REV:PATH`) as bytes.
    pub fn show(&self, spec: &str) -> Vec<u8> {
        let out = git_in(&self.path(), &["show", spec]);
        assert!(
            out.status.success(),
            "git show {spec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

/// The `git-daemon` program (git's exec path holds it); panics, never
/// skips, when it is missing.
pub fn git_daemon_binary() -> PathBuf {
    let exec_path = git_ok(Path::new("/"), &["--exec-path"]);
    let path = Path::new(exec_path.trim()).join("git-daemon");
    assert!(
        path.is_file(),
        "git daemon is not installed ({} is missing): run apt-get install -y git \
         (or git-daemon-run, where git-daemon is packaged apart)",
        path.display()
    );
    path
}

/// A loopback port outside the ephemeral range (tests/support/ports.rs).
pub fn free_port() -> u16 {
    crate::ports_support::free_port()
}

/// A real `git daemon` serving the repositories under a base directory on
/// a loopback port, fetch and push (`--enable=receive-pack`), stopped by
/// its pid when dropped.
pub struct GitDaemon {
    base: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl GitDaemon {
    /// Serve `base` on a free loopback port.
    pub fn start(base: &Path) -> GitDaemon {
        let mut daemon = GitDaemon {
            base: base.to_owned(),
            port: free_port(),
            child: None,
        };
        daemon.restart();
        daemon
    }

    /// The URL of `repo` (`state.git`) through the daemon.
    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }

    /// The daemon's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Start it (again) on its port, and wait until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the daemon runs already");
        let child = Command::new(git_daemon_binary())
            .arg("--export-all")
            .arg("--enable=receive-pack")
            .arg("--reuseaddr")
            .arg("--informative-errors")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!("--base-path={}", self.base.display()))
            .arg(&self.base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "git daemon exited ({status}) before it listened on {}",
                    self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "git daemon does not listen on 127.0.0.1:{}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop it (SIGKILL to its pid) and wait until the port refuses.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "127.0.0.1:{} still accepts after the daemon stopped",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
