//! `loadgen`: a tiny, dependency-free load loop for the quickstart and the
//! tests. It sends GET requests to one URL on loopback until a duration has
//! passed or a stop file appears, and prints what it saw: requests sent,
//! failures (non-2xx and socket errors), and how many answers came from each
//! release.
//!
//! Usage: `loadgen --url http://127.0.0.1:18080/ [--duration 30s] [--stop-file F] [--threads 2]`

use std::collections::BTreeMap;
use std::io::{Read, Write};
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
}

fn usage(msg: &str) -> ! {
    eprintln!("loadgen: {msg}\nusage: loadgen --url http://HOST:PORT/PATH [--duration 30s] [--stop-file FILE] [--threads N]");
    std::process::exit(2);
}

fn main() {
    let mut url = None;
    let mut duration = Duration::from_secs(3600);
    let mut stop_file: Option<PathBuf> = None;
    let mut threads = 2usize;
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
                duration = Duration::from_secs_f64(secs);
            }
            "--stop-file" => stop_file = Some(PathBuf::from(value())),
            "--threads" => {
                threads = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--threads expects a number"))
            }
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let url = url.unwrap_or_else(|| usage("--url is required"));
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| usage("--url must start with http://"));
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    };

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (tally, stop, authority, path, stop_file) = (
                tally.clone(),
                stop.clone(),
                authority.clone(),
                path.clone(),
                stop_file.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if start.elapsed() >= duration || stop_file.as_ref().is_some_and(|f| f.exists())
                    {
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    let outcome = request(&authority, &path);
                    count(&tally, outcome);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let t = tally.lock().unwrap_or_else(|p| p.into_inner());
    let releases: Vec<String> = t
        .by_release
        .iter()
        .map(|(r, n)| format!("{r}: {n}"))
        .collect();
    println!(
        "loadgen: {} requests in {:.1}s, {} failed; answers by release: {}",
        t.sent,
        start.elapsed().as_secs_f64(),
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
    std::process::exit(if t.failed == 0 && t.sent > 0 { 0 } else { 1 });
}

/// Count one request's outcome.
fn count(tally: &Mutex<Tally>, outcome: Result<(u16, String), String>) {
    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
    t.sent += 1;
    match outcome {
        Ok((status, body)) if (200..300).contains(&status) => {
            let release = body.trim().rsplit(' ').next().unwrap_or("").to_string();
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

/// One GET on a fresh connection; returns the status and body.
fn request(authority: &str, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(authority).map_err(|e| format!("connect: {}", e.kind()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    // One segment: a request written piecemeal waits on Nagle and delayed
    // ACKs (about 40 ms per request through a proxy).
    s.set_nodelay(true).map_err(|e| e.to_string())?;
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
