//! moto's server for the `aws_alb` tests: AWS has no local server, so the
//! AWS SDK is pointed at moto on a loopback port (DESIGN.md, "Real parts").
//!
//! moto comes from PyPI into a virtual environment made by
//! `scripts/moto-venv.sh` (`target/moto-venv`, or `CUTOVER_MOTO_VENV`);
//! when it is missing the tests fail with that command, never skip. Each
//! [`Moto`] is its own `moto_server` on a free loopback port, its log in
//! its own temporary directory, ready once `GET /moto-api/` answers
//! (polled, bounded), killed by its pid when dropped. The load balancers in
//! it are made, and changed by hand, with boto3 from the same environment
//! (`examples/alb/moto_alb.py`).
//!
//! ```ignore
//! #[path = "../support/moto.rs"]
//! mod moto_support;
//! ```
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to make the virtual environment when it is missing.
const INSTALL: &str = "create it with: scripts/moto-venv.sh (python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]'; Debian's python3 needs: apt-get install python3-venv)";
/// How long moto may take to answer after it started.
const START_WITHIN: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// The environment of the tests' cutover: moto's credentials, and nothing
/// of the machine's own AWS configuration read.
pub const AWS_ENV: [(&str, &str); 7] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", ""),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_PROFILE", ""),
];

/// The virtual environment with moto's server and boto3.
pub fn venv() -> PathBuf {
    let dir = std::env::var_os("CUTOVER_MOTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv"));
    if !dir.join("bin/moto_server").is_file() {
        panic!("moto's server is missing ({}): {INSTALL}", dir.display());
    }
    dir
}

/// An ALB made in moto: its listener and each colour's target group.
#[derive(Debug, Clone)]
pub struct Alb {
    pub listener: String,
    pub target_groups: BTreeMap<String, String>,
}

impl Alb {
    /// The target group of `colour`.
    #[track_caller]
    pub fn tg(&self, colour: &str) -> &str {
        &self.target_groups[colour]
    }
}

/// A moto server of a test, killed (by pid) when dropped.
pub struct Moto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The IAM user's keys [`Moto::boto`] calls with, once moto checks IAM.
    pub keys: Option<(String, String)>,
}

impl Moto {
    /// Start one; returns once it answers. Panics, never skips, when moto
    /// is not installed.
    pub fn start() -> Moto {
        Moto::start_checking_iam_after(None)
    }

    /// Start one that checks IAM permissions after its first `calls`
    /// requests (moto's `INITIAL_NO_AUTH_ACTION_COUNT`): the setup's calls,
    /// made with no user, are that many.
    pub fn start_checking_iam_after(calls: Option<u32>) -> Moto {
        let bin = venv().join("bin/moto_server");
        let dir = tempfile::Builder::new()
            .prefix("cutover-moto")
            .tempdir()
            .expect("tempdir");
        let port = crate::ports_support::free_port();
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("log file");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .envs(calls.map(|n| ("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL}", bin.display()));
        let mut moto = Moto {
            port,
            dir,
            child: Some(child),
            keys: None,
        };
        moto.wait_ready();
        moto
    }

    /// What `endpoint_url` names.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What it logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// Kill it by its pid and wait until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_WITHIN;
        let mut last = String::from("nothing yet");
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "moto_server exited ({status}) at start (port {} taken?):\n{}",
                    self.port,
                    self.log()
                );
            }
            match http_get(self.port, "/moto-api/") {
                Ok(200) => return,
                Ok(status) => last = format!("HTTP {status}"),
                Err(e) => last = e,
            }
            std::thread::sleep(POLL);
        }
        panic!(
            "moto on port {} did not answer within {START_WITHIN:?}: {last}\n--- log\n{}",
            self.port,
            self.log()
        );
    }

    /// Run `examples/alb/moto_alb.py URL ARGS...` with the venv's Python;
    /// its stdout. Panics with its stderr when it fails.
    #[track_caller]
    pub fn boto(&self, args: &[&str]) -> String {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/alb/moto_alb.py");
        let out = Command::new(venv().join("bin/python"))
            .arg(&script)
            .arg(self.url())
            .args(args)
            .envs(
                self.keys
                    .as_ref()
                    .map(|(k, s)| ("MOTO_ALB_KEYS", format!("{k} {s}"))),
            )
            .output()
            .expect("run moto_alb.py");
        assert!(
            out.status.success(),
            "moto_alb.py {args:?} failed: {}\n--- moto log\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Make an ALB (`moto_alb.py setup ARGS...`).
    #[track_caller]
    pub fn alb(&self, args: &[&str]) -> Alb {
        let mut all = vec!["setup"];
        all.extend_from_slice(args);
        let made: serde_json::Value = serde_json::from_str(&self.boto(&all)).expect("setup's JSON");
        Alb {
            listener: made["listener"].as_str().expect("listener").to_string(),
            target_groups: made["target_groups"]
                .as_object()
                .expect("target groups")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("an ARN").to_string()))
                .collect(),
        }
    }

    /// The listener's rules, as moto describes them.
    pub fn rules(&self, listener: &str) -> Vec<serde_json::Value> {
        let text = self.boto(&["rules", listener]);
        serde_json::from_str(&text).expect("rules JSON")
    }

    /// The target group the listener's default action forwards to.
    pub fn default_target(&self, listener: &str) -> Option<String> {
        self.rules(listener)
            .iter()
            .find(|r| r["IsDefault"] == true)
            .and_then(|r| {
                r["Actions"][0]["TargetGroupArn"]
                    .as_str()
                    .map(str::to_string)
            })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `GET path` on the loopback port: the status code.
fn http_get(port: u16, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {reply:?}"))
}

/// A loopback proxy in front of a moto server that answers the first
/// `throttle` requests (or every one, with `u32::MAX`) as AWS answers a
/// throttled call (HTTP 400, `Throttling`), and forwards the others: moto
/// never throttles, so the retries are tested through this. Std only; one
/// connection at a time, each closed after its reply. Its thread ends with
/// the test binary (it holds nothing but the listener).
pub struct Throttling {
    pub port: u16,
    throttled: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl Throttling {
    /// Start one in front of moto's `upstream` port.
    pub fn start(upstream: u16, throttle: u32) -> Throttling {
        use std::sync::atomic::Ordering;
        let port = crate::ports_support::free_port();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the proxy");
        let throttled = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let count = throttled.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut client) = stream else { continue };
                let Some(request) = read_request(&mut client) else {
                    continue;
                };
                if count.load(Ordering::SeqCst) < throttle {
                    count.fetch_add(1, Ordering::SeqCst);
                    let body = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>cutover-test</RequestId></ErrorResponse>";
                    let _ = write!(
                        client,
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    continue;
                }
                let Ok(mut moto) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = moto.write_all(&request);
                let mut reply = Vec::new();
                let _ = moto.read_to_end(&mut reply);
                let _ = client.write_all(&reply);
            }
        });
        Throttling { port, throttled }
    }

    /// What `endpoint_url` names.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many requests it answered as throttled.
    pub fn throttled(&self) -> u32 {
        self.throttled.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// One HTTP request (its head and a `Content-Length` body), as bytes.
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if data.len() >= end + 4 + length {
            return Some(data);
        }
    }
}
