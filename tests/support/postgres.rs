//! A real PostgreSQL for tests, from the operating system's packages.
//!
//! `initdb` makes a cluster in a temporary directory, `pg_ctl start` runs it
//! on a free loopback port with its Unix socket in that directory (no
//! systemd, nothing of the system's own cluster), and it is stopped by the
//! postmaster's process id (from `postmaster.pid`) when dropped, or when a
//! test stops it. PostgreSQL refuses to run as root: as root, `initdb` and
//! the server run as the user `postgres`, in a directory that user owns
//! inside one it may enter. Connections over TCP need the password
//! ([`PASSWORD`]); psql, run by the tests, comes in through the socket.
//!
//! ```ignore
//! #[path = "../support/postgres.rs"]
//! mod postgres_support;
//! ```
#![allow(dead_code)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The superuser's password, for connections over TCP.
pub const PASSWORD: &str = "pg-s3cret-Xq7";

/// A PostgreSQL cluster of a test, stopped (by pid) when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
    pid: Option<i32>,
    /// The user and group the server runs as (`None`: ours).
    owner: Option<(u32, u32)>,
}

/// The directory of `initdb`, `pg_ctl` and `postgres`; panics, never
/// skips, when PostgreSQL is not installed.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("pg_ctl"))
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let packaged = || {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|d| d.join("pg_ctl").is_file())
            .collect();
        // The newest version: directories are named by major version.
        dirs.sort_by_key(|d| {
            d.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        dirs.pop()
    };
    on_path
        .filter(|d| d.join("initdb").is_file())
        .or_else(packaged)
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed (no initdb/pg_ctl): run apt-get install -y postgresql"
            )
        })
}

/// The user `postgres` when we are root (the server will not run as root).
fn server_owner() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            panic!("no user postgres to run PostgreSQL as: run apt-get install -y postgresql")
        });
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// Whether `pid` runs and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_owned();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

impl Postgres {
    /// A new cluster, started.
    pub fn start() -> Postgres {
        let mut pg = Postgres::init();
        pg.start_server();
        pg
    }

    /// A new cluster (`initdb`), not started yet.
    pub fn init() -> Postgres {
        let bin = bin_dir();
        let owner = server_owner();
        let dir = tempfile::Builder::new()
            .prefix("cutover-pg")
            .tempdir()
            .expect("tempdir");
        let pg = Postgres {
            dir,
            bin,
            port: free_port(),
            pid: None,
            owner,
        };
        // Enterable by the server's user; what it writes is its own.
        pg.set_mode(pg.dir.path(), 0o755);
        for sub in ["data", "run"] {
            std::fs::create_dir(pg.dir.path().join(sub)).expect("mkdir");
            pg.give(&pg.dir.path().join(sub));
        }
        pg.set_mode(&pg.data_dir(), 0o700);
        let pwfile = pg.dir.path().join("run/pwfile");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).expect("write the password file");
        pg.give(&pwfile);
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data_dir())
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_file(&pwfile).expect("remove the password file");
        pg
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env("LC_ALL", "C").env_remove("PGDATA");
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn give(&self, path: &Path) {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown to postgres");
        }
    }

    fn set_mode(&self, path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Serve TLS with `cert_pem` and `key_pem` (takes effect at the next
    /// start).
    pub fn enable_tls(&self, cert_pem: &str, key_pem: &str) {
        let data = self.data_dir();
        for (name, text) in [("server.crt", cert_pem), ("server.key", key_pem)] {
            let path = data.join(name);
            std::fs::write(&path, text).expect("write a TLS file");
            self.give(&path);
            self.set_mode(&path, 0o600);
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).expect("write postgresql.conf");
    }

    /// Start the server (`pg_ctl start`, waiting until it accepts
    /// connections) on its port.
    pub fn start_server(&mut self) {
        assert!(self.pid.is_none(), "PostgreSQL runs already");
        let log = self.socket_dir().join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.socket_dir().display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed:\n{}\n{}\n--- server log\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let pidfile = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .expect("read postmaster.pid");
        let pid = pidfile
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("a pid in postmaster.pid");
        self.pid = Some(pid);
    }

    /// The postmaster's pid while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// Stop the server by its pid: a fast shutdown (SIGINT: sessions are
    /// ended, the lock sessions with them), waiting until it is gone.
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else {
            return;
        };
        let target = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(20);
        while alive(pid) {
            if Instant::now() >= deadline {
                let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // A fast shutdown ends the backends before the postmaster exits
        // (and removes postmaster.pid), so the port is free again now.
    }

    /// A connection string over TCP, with the password, as a runner's
    /// `CUTOVER_PG_CONN_STR` would be.
    pub fn conn_str(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Run `sql` with psql in database `db` (through the socket); its
    /// output, unaligned and without headers, or psql's error.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-c", sql])
            .env("LC_ALL", "C")
            .output()
            .expect("run psql");
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// [`Postgres::try_psql`], panicking on an error.
    #[track_caller]
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} failed: {e}"))
    }

    /// Create the database `db`.
    pub fn create_db(&self, db: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{db}\""));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port outside the ephemeral range (tests/support/ports.rs).
fn free_port() -> u16 {
    crate::ports_support::free_port()
}
