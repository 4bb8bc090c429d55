//! A webhook receiver for tests: a loopback HTTP server that records every
//! request it is sent (method, path, headers, body) and answers with the
//! status the test chose — or never answers. Std only, so that the
//! library's unit tests and the `it` binary can both include it:
//!
//! ```ignore
//! #[path = "../../tests/support/webhook.rs"]
//! mod webhook;
//! ```
//!
//! Tests wait for requests with [`Receiver::wait_for`], which blocks on a
//! condition variable with a bound, never on a fixed sleep.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// With this status and an empty body.
    Status(u16),
    /// Never: the request is read and recorded, and the connection held
    /// open, unanswered, until the receiver is dropped.
    Never,
}

/// One request the receiver was sent.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, ...
    pub method: String,
    /// The request target, e.g. `/hook?token=x`.
    pub path: String,
    /// The headers, names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// When it was read.
    pub at: Instant,
}

impl Request {
    /// The value of header `name` (any case), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics when it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Everything it holds, as text (to search it for what must not be
    /// there).
    pub fn text(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        format!(
            "{} {}\n{}\n\n{}",
            self.method,
            self.path,
            headers.join("\n"),
            String::from_utf8_lossy(&self.body)
        )
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Request>>,
    arrived: Condvar,
    /// Connections left unanswered ([`Reply::Never`]), closed on drop.
    held: Mutex<Vec<TcpStream>>,
}

/// The receiver; stopped when dropped.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Receiver {
    /// Listen on 127.0.0.1:`port` and answer every request with `reply`.
    pub fn start(port: u16, reply: Reply) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot bind the webhook receiver to port {port}: {e}"));
        let addr = listener.local_addr().expect("local address");
        let reply = Arc::new(Mutex::new(reply));
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, stopping) = (reply.clone(), shared.clone(), stop.clone());
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (r, s) = (r.clone(), s.clone());
                thread::spawn(move || serve(stream, &r, &s));
            }
        });
        Receiver {
            addr,
            reply,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// Its URL with `path` (`/hook`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answer the requests from now on with `reply`.
    pub fn set_reply(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    /// Every request so far, in the order they were read.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Wait until at least `n` requests came, at most `within`; panics with
    /// what came otherwise.
    #[track_caller]
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Request> {
        let deadline = Instant::now() + within;
        let mut requests = self.shared.requests.lock().unwrap();
        while requests.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let got: Vec<String> = requests.iter().map(Request::text).collect();
                panic!(
                    "the webhook got {} request(s), not {n}, within {within:?}:\n{}",
                    requests.len(),
                    got.join("\n---\n")
                );
            }
            requests = self.shared.arrived.wait_timeout(requests, left).unwrap().0;
        }
        requests.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.held.lock().unwrap().clear();
    }
}

/// Read the requests of one connection, record them, answer them.
fn serve(stream: TcpStream, reply: &Mutex<Reply>, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        shared.requests.lock().unwrap().push(request);
        shared.arrived.notify_all();
        let status = match *reply.lock().unwrap() {
            Reply::Status(status) => status,
            Reply::Never => {
                shared.held.lock().unwrap().push(writer);
                return;
            }
        };
        let answer = format!(
            "HTTP/1.1 {status} Test\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// One request, or `None` at the end of the connection (or on garbage).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    })
}
