//! A real Prometheus for tests, from the operating system's packages
//! (`/usr/bin/prometheus`; Debian 12 has 2.42).
//!
//! It runs with a configuration written to a temporary directory (which
//! also holds its TSDB and its log), scraping the given loopback targets
//! every second, on a free loopback port. [`Prometheus::start`] returns once
//! it is ready and has scraped every target successfully, so that a test
//! needs no sleep; [`Prometheus::wait_for`] polls a query (bounded) until
//! its value satisfies a predicate. It is killed by its process id when
//! dropped or stopped, and only its own directory is removed.
//!
//! ```ignore
//! #[path = "../support/prometheus.rs"]
//! mod prometheus_support;
//! ```
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where Debian's package puts it.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
/// How to get it when it is missing.
const INSTALL: &str =
    "install it: apt-get install prometheus (or scripts/os-packages.sh prometheus)";
/// How long it may take to start and scrape every target once.
const START_WITHIN: Duration = Duration::from_secs(60);
/// How often the waits look again.
const POLL: Duration = Duration::from_millis(100);

/// A Prometheus of a test, killed (by pid) when dropped.
pub struct Prometheus {
    dir: tempfile::TempDir,
    /// The loopback port of its HTTP API.
    pub port: u16,
    child: Option<Child>,
}

impl Prometheus {
    /// Start one scraping `targets` (`127.0.0.1:PORT`, each serving
    /// `/metrics`) every second; returns once it is ready and every target
    /// is up. Panics, never skips, when Prometheus is not installed.
    pub fn start(targets: &[String]) -> Prometheus {
        let bin = binary();
        let dir = tempfile::Builder::new()
            .prefix("cutover-prometheus")
            .tempdir()
            .expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_text(targets)).expect("write prometheus.yml");
        let port = crate::ports_support::free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PROMETHEUS}: {e}; {INSTALL}"));
        let mut prometheus = Prometheus {
            dir,
            port,
            child: Some(child),
        };
        prometheus.wait_ready(targets.len());
        prometheus
    }

    /// The base URL of its HTTP API, as an analysis's `prometheus` names it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kill it by its pid and wait until it is gone (its port is free then).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What it logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Wait until `/-/ready` answers 200 and `/api/v1/targets` has
    /// `targets` active targets, each up.
    fn wait_ready(&mut self, targets: usize) {
        let deadline = Instant::now() + START_WITHIN;
        let mut last = String::from("nothing yet");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("prometheus exited ({status}) at start:\n{}", self.log());
                }
            }
            match self.targets_up(targets) {
                Ok(()) => return,
                Err(why) => last = why,
            }
            std::thread::sleep(POLL);
        }
        panic!(
            "prometheus on port {} was not ready with every target up within {START_WITHIN:?}: {last}\n--- log\n{}",
            self.port,
            self.log()
        );
    }

    fn targets_up(&self, want: usize) -> Result<(), String> {
        let (status, _) = http_get(self.port, "/-/ready")?;
        if status != 200 {
            return Err(format!("/-/ready answered {status}"));
        }
        let (_, body) = http_get(self.port, "/api/v1/targets")?;
        let reply: Value = serde_json::from_str(&body).map_err(|e| format!("targets: {e}"))?;
        let active = reply["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let up = active.iter().filter(|t| t["health"] == "up").count();
        if active.len() == want && up == want {
            Ok(())
        } else {
            Err(format!("{up} of {want} targets up: {active:?}"))
        }
    }

    /// The API's reply to the instant query `query`.
    pub fn query(&self, query: &str) -> Result<Value, String> {
        let mut url = reqwest::Url::parse("http://x/api/v1/query").expect("a URL");
        url.query_pairs_mut().append_pair("query", query);
        let target = format!("{}?{}", url.path(), url.query().unwrap_or(""));
        let (_, body) = http_get(self.port, &target)?;
        serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))
    }

    /// The one number `query` gives now (a scalar, or a vector of one
    /// series); `None` when it gives no data or something else.
    pub fn value(&self, query: &str) -> Option<f64> {
        let reply = self.query(query).ok()?;
        let data = &reply["data"];
        let text = match data["resultType"].as_str()? {
            "scalar" => data["result"][1].as_str()?,
            "vector" if data["result"].as_array()?.len() == 1 => {
                data["result"][0]["value"][1].as_str()?
            }
            _ => return None,
        };
        text.parse().ok()
    }

    /// Wait, at most `within`, until `query` gives one number that `ok`
    /// accepts; that number. Panics with the last reply when it does not.
    #[track_caller]
    pub fn wait_for(&self, query: &str, within: Duration, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = self.value(query).filter(|v| ok(*v)) {
                return v;
            }
            if Instant::now() >= deadline {
                panic!(
                    "within {within:?}, `{query}` never gave an accepted value; last reply: {:?}",
                    self.query(query)
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The program; panics with how to install it when it is missing.
fn binary() -> PathBuf {
    let path = PathBuf::from(PROMETHEUS);
    if !Path::new(&path).is_file() {
        panic!("{PROMETHEUS} is missing: {INSTALL}");
    }
    path
}

/// A configuration scraping `targets` (none: nothing) every second.
fn config_text(targets: &[String]) -> String {
    let global =
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n";
    if targets.is_empty() {
        return global.to_owned();
    }
    let list = targets
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{global}scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: [{list}]\n"
    )
}

/// GET `target` (a path and query) from 127.0.0.1:`port`: the status and
/// body. HTTP/1.0, so that the answer is never chunked and ends with the
/// connection.
pub fn http_get(port: u16, target: &str) -> Result<(u16, String), String> {
    let attempt = || -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(format!("GET {target} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, body.to_string()))
    };
    attempt().map_err(|e| format!("GET {target} on port {port}: {e}"))
}
