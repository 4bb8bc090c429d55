//! `loadgen`: a tiny, dependency-free load loop for the quickstart and the
//! tests. It sends GET requests to one URL on loopback until a duration has
//! passed or a stop file appears, and prints what it saw: requests sent,
//! failures (non-2xx and socket errors), and how many answers came from each
//! release.
//!
//! Each request goes on a fresh connection (`Connection: close`), or with
//! `--keep-alive` on one persistent connection per thread (opened again
//! after an error or a close). With `--transitions`, it also prints when
//! each release first and last answered (the start of the request, in
//! microseconds since the UNIX epoch, a clock every process shares): the
//! cut-over benchmark reads from them when each instance of a fleet
//! switched. `--pause-us N` waits N microseconds after each request, so
//! that a load meant to observe does not take the machine's cores.
//!
//! Usage: `loadgen --url http://127.0.0.1:18080/ [--duration 30s] [--stop-file F] [--threads 2] [--keep-alive] [--transitions] [--pause-us N]`

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    sent: u64,
    failed: u64,
    by_release: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    /// Release -> (first, last) start of a request it answered, in
    /// microseconds since the UNIX epoch.
    seen: BTreeMap<String, (u128, u128)>,
}

/// What the command line asks for.
#[derive(Clone)]
struct Options {
    authority: String,
    path: String,
    duration: Duration,
    stop_file: Option<PathBuf>,
    threads: usize,
    keep_alive: bool,
    transitions: bool,
    pause: Duration,
}

/// Now, in microseconds since the UNIX epoch.
fn epoch_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn usage(msg: &str) -> ! {
    eprintln!("loadgen: {msg}\nusage: loadgen --url http://HOST:PORT/PATH [--duration 30s] [--stop-file FILE] [--threads N] [--keep-alive] [--transitions] [--pause-us N]");
    std::process::exit(2);
}

fn options() -> Options {
    let mut url = None;
    let mut o = Options {
        authority: String::new(),
        path: String::new(),
        duration: Duration::from_secs(3600),
        stop_file: None,
        threads: 2,
        keep_alive: false,
        transitions: false,
        pause: Duration::ZERO,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--url" => url = Some(value()),
            "--duration" => {
                let v = value();
                let secs: f64 = v.trim_end_matches('s').parse().unwrap_or_else(|_| {
                    usage(&format!("--duration {v}: expected seconds like 30s"))
                });
                o.duration = Duration::from_secs_f64(secs);
            }
            "--stop-file" => o.stop_file = Some(PathBuf::from(value())),
            "--threads" => {
                o.threads = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--threads expects a number"))
            }
            "--keep-alive" => o.keep_alive = true,
            "--transitions" => o.transitions = true,
            "--pause-us" => {
                let us = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--pause-us expects microseconds"));
                o.pause = Duration::from_micros(us);
            }
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let url = url.unwrap_or_else(|| usage("--url is required"));
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| usage("--url must start with http://"));
    (o.authority, o.path) = match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    };
    o
}

fn main() {
    let o = options();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..o.threads.max(1))
        .map(|_| {
            let (tally, stop, o) = (tally.clone(), stop.clone(), o.clone());
            std::thread::spawn(move || work(&o, start, &stop, &tally))
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let t = tally.lock().unwrap_or_else(|p| p.into_inner());
    report(&t, start.elapsed(), o.transitions);
    std::process::exit(if t.failed == 0 && t.sent > 0 { 0 } else { 1 });
}

/// One thread's loop, until the duration has passed or the stop file is there.
fn work(o: &Options, start: Instant, stop: &AtomicBool, tally: &Mutex<Tally>) {
    let mut connection: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::Relaxed) {
        if start.elapsed() >= o.duration || o.stop_file.as_ref().is_some_and(|f| f.exists()) {
            stop.store(true, Ordering::Relaxed);
            break;
        }
        let started = epoch_us();
        let outcome = if o.keep_alive {
            kept_alive(&mut connection, &o.authority, &o.path)
        } else {
            request(&o.authority, &o.path)
        };
        count(tally, outcome, started);
        if !o.pause.is_zero() {
            std::thread::sleep(o.pause);
        }
    }
}

fn report(t: &Tally, elapsed: Duration, transitions: bool) {
    let releases: Vec<String> = t
        .by_release
        .iter()
        .map(|(r, n)| format!("{r}: {n}"))
        .collect();
    println!(
        "loadgen: {} requests in {:.1}s, {} failed; answers by release: {}",
        t.sent,
        elapsed.as_secs_f64(),
        t.failed,
        if releases.is_empty() {
            "none".into()
        } else {
            releases.join(", ")
        }
    );
    for (e, n) in &t.errors {
        println!("loadgen: {n} x {e}");
    }
    if transitions {
        for (release, (first, last)) in &t.seen {
            println!("loadgen: release {release} first at {first} us, last at {last} us");
        }
    }
}

/// Count one request's outcome; `started` is when it was sent.
fn count(tally: &Mutex<Tally>, outcome: Result<(u16, String), String>, started: u128) {
    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
    t.sent += 1;
    match outcome {
        Ok((status, body)) if (200..300).contains(&status) => {
            let release = body.trim().rsplit(' ').next().unwrap_or("").to_string();
            let seen = t.seen.entry(release.clone()).or_insert((started, started));
            seen.0 = seen.0.min(started);
            seen.1 = seen.1.max(started);
            *t.by_release.entry(release).or_default() += 1;
        }
        Ok((status, _)) => {
            t.failed += 1;
            *t.errors.entry(format!("HTTP {status}")).or_default() += 1;
        }
        Err(e) => {
            t.failed += 1;
            *t.errors.entry(e).or_default() += 1;
        }
    }
}

fn connect(authority: &str) -> Result<TcpStream, String> {
    let s = TcpStream::connect(authority).map_err(|e| format!("connect: {}", e.kind()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    // One segment: a request written piecemeal waits on Nagle and delayed
    // ACKs (about 40 ms per request through a proxy).
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

/// One GET on a fresh connection; returns the status and body.
fn request(authority: &str, path: &str) -> Result<(u16, String), String> {
    let mut s = connect(authority)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes())
        .map_err(|e| format!("write: {}", e.kind()))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| format!("read: {}", e.kind()))?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "malformed response".to_string())?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// One GET on the thread's kept-alive connection (opened when there is
/// none); the connection is dropped after an error or when the server says
/// it closes it. The body is read by its `Content-Length`.
fn kept_alive(
    connection: &mut Option<BufReader<TcpStream>>,
    authority: &str,
    path: &str,
) -> Result<(u16, String), String> {
    let mut reader = match connection.take() {
        Some(reader) => reader,
        None => BufReader::new(connect(authority)?),
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    reader
        .get_mut()
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {}", e.kind()))?;
    let read = |e: std::io::Error| format!("read: {}", e.kind());
    let mut line = String::new();
    if reader.read_line(&mut line).map_err(read)? == 0 {
        return Err("read: closed".into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "malformed response".to_string())?;
    let (mut length, mut closes) = (0usize, false);
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(read)?;
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(n) = header.strip_prefix("content-length:") {
            length = n.trim().parse().map_err(|_| "malformed response")?;
        }
        closes |= header == "connection: close";
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(read)?;
    if !closes {
        *connection = Some(reader);
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
