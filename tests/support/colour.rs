//! Small HTTP pieces every real-router harness needs: a colour backend
//! (a loopback server answering with its colour's name) and a plain GET.
//! Included by tests/support/{haproxy,caddy,nginx}.rs with `#[path]`, so
//! each harness stays one file that any test binary can include.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A tiny HTTP server on a loopback port that answers every request with
/// 200 and a body naming its colour; stopped when dropped.
pub struct ColourServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ColourServer {
    /// Start a server answering `colour` on 127.0.0.1:<free port>.
    pub fn start(colour: &str) -> ColourServer {
        Self::start_on(colour, "127.0.0.1:0")
    }

    /// Start a server answering `colour` on `address` (e.g. one a router
    /// was configured with while nothing listened there); panics, with the
    /// address, if it cannot be bound.
    pub fn start_on(colour: &str, address: &str) -> ColourServer {
        let listener = TcpListener::bind(address)
            .unwrap_or_else(|e| panic!("cannot bind the {colour} server to {address}: {e}"));
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let body = colour.to_string();
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let body = body.clone();
                    thread::spawn(move || answer(stream, &body));
                }
            }
        });
        ColourServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Its address as `host:port`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for ColourServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(mut stream: TcpStream, body: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    // Health checks connect and close without a request: just go away then.
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

/// GET `path` from `addr` over HTTP/1.1: (status, body). A connection or
/// protocol failure is status 0 with the error as body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get_host(addr, &addr.to_string(), path)
}

/// GET `path` from `addr` with `Host: host`: (status, body).
pub fn http_get_host(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let attempt = || -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )?;
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
    attempt().unwrap_or_else(|e| (0, e.to_string()))
}
