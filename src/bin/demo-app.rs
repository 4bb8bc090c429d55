//! `demo-app`: the tiny HTTP service the quickstart deploys as blue and green.
//!
//! It exists so that cutover can be tried (and tested) end to end without a
//! real application: it says which release it runs, has a health endpoint that
//! can be made to fail, and speaks enough HTTP/1.1 — keep-alive included — for
//! HAProxy, nginx and Caddy to sit in front of it. With `--tls-cert` and
//! `--tls-key` it speaks HTTPS instead (rustls), for trying `https://` health
//! checks. It counts what it answers at `/metrics` (the Prometheus text
//! format: requests by release, path and status), and `--error-rate 0.05`
//! makes it answer that share of its `/` requests with 500 (from the start,
//! or `--errors-after SECS` into its life: a release that goes bad only under
//! live traffic), so that analysis of metrics can be tried for real.
//! `--fault-file FILE` lets a chaos test change its behaviour while it runs:
//! before every request it reads the file, and `error` makes it answer 500
//! to everything (health checks too), `hang` makes it read the request and
//! never answer, `unhealthy` fails only `/healthz`; anything else (or no
//! file) is normal service.
//! `GET /stream` answers with a body that never ends on its own (a line
//! every 100 ms until the client goes away): a long-lived connection to hold
//! open through a router while it drains. It uses std otherwise.
//!
//! ```text
//! demo-app --port 9101 --release 1.4.1 [--host 127.0.0.1] [--unhealthy] [--healthy-after SECS]
//!          [--error-rate SHARE] [--errors-after SECS] [--tls-cert CERT.pem --tls-key KEY.pem]
//!          [--fault-file FILE]
//! ```
//!
//! It stops on SIGTERM (the default action is exactly right: there is no state
//! to flush).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: demo-app --port PORT --release RELEASE [--host HOST] [--unhealthy] [--healthy-after SECS] [--error-rate SHARE] [--errors-after SECS] [--tls-cert CERT.pem --tls-key KEY.pem] [--fault-file FILE] [--secret VALUE]";
/// How long a `hang` fault holds a request before giving the connection up.
const HANG_FOR: Duration = Duration::from_secs(120);
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests with a head larger than this are refused.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How often `/stream` sends a line.
const STREAM_EVERY: Duration = Duration::from_millis(100);

/// The command line.
#[derive(Debug)]
struct Options {
    host: String,
    port: u16,
    release: String,
    unhealthy: bool,
    healthy_after: Duration,
    /// `--error-rate`: the share of `/` requests answered with 500.
    error_rate: f64,
    /// `--errors-after`: how long after the start the errors begin.
    errors_after: Duration,
    /// `--tls-cert` and `--tls-key`: serve HTTPS with this certificate chain
    /// and key (PEM files).
    tls: Option<(PathBuf, PathBuf)>,
    /// `--fault-file`: read before every request, see [`Fault`].
    fault_file: Option<PathBuf>,
}

/// A fault injected at run time through `--fault-file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Normal service.
    None,
    /// Every request, health checks too, answered with 500.
    Error,
    /// The request is read and never answered.
    Hang,
    /// `/healthz` answers 503; the rest is served.
    Unhealthy,
}

impl Fault {
    /// The fault the file names now; a missing or unreadable file is none.
    fn read(file: Option<&Path>) -> Fault {
        let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) else {
            return Fault::None;
        };
        match text.trim() {
            "error" => Fault::Error,
            "hang" => Fault::Hang,
            "unhealthy" => Fault::Unhealthy,
            _ => Fault::None,
        }
    }
}

/// What every connection needs to answer.
struct App {
    release: String,
    unhealthy: bool,
    healthy_at: Instant,
    error_rate: f64,
    errors_at: Instant,
    /// `/` requests seen since the errors began: the n-th fails when the
    /// share of failures up to it would otherwise fall below the rate.
    erring: AtomicU64,
    /// Requests answered, by (path, status): `/metrics`.
    answered: Mutex<BTreeMap<(&'static str, u16), u64>>,
    fault_file: Option<PathBuf>,
}

impl App {
    fn new(options: &Options) -> App {
        let now = Instant::now();
        App {
            release: options.release.clone(),
            unhealthy: options.unhealthy,
            healthy_at: now + options.healthy_after,
            error_rate: options.error_rate,
            errors_at: now + options.errors_after,
            erring: AtomicU64::new(0),
            // The series of `/` exist from the start, at 0 (Prometheus'
            // advice for labels known in advance): the 5xx share of a
            // release that has not failed yet is 0, not "no data".
            answered: Mutex::new(BTreeMap::from([(("/", 200), 0), (("/", 500), 0)])),
            fault_file: options.fault_file.clone(),
        }
    }

    /// Whether this `/` request is one of the share that fails: exactly
    /// `rate` of them, spread evenly (request n fails when floor(n × rate)
    /// grows).
    fn fails_now(&self) -> bool {
        if self.error_rate <= 0.0 || Instant::now() < self.errors_at {
            return false;
        }
        let n = self.erring.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.error_rate).floor() > (n * self.error_rate).floor()
    }

    fn count(&self, path: &'static str, status: u16) {
        let mut answered = self.answered.lock().unwrap_or_else(|e| e.into_inner());
        *answered.entry((path, status)).or_default() += 1;
    }

    /// `/metrics` in the Prometheus text format.
    fn metrics(&self) -> String {
        let answered = self.answered.lock().unwrap_or_else(|e| e.into_inner());
        let release = self.release.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = String::from(
            "# HELP demo_app_requests_total Requests answered, by release, path and status.\n\
             # TYPE demo_app_requests_total counter\n",
        );
        for ((path, status), n) in answered.iter() {
            out.push_str(&format!(
                "demo_app_requests_total{{release=\"{release}\",path=\"{path}\",status=\"{status}\"}} {n}\n"
            ));
        }
        out
    }
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("demo-app: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let tls = match &options.tls {
        Some((cert, key)) => match tls_config(cert, key) {
            Ok(config) => Some(Arc::new(config)),
            Err(message) => {
                eprintln!("demo-app: {message}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let address = format!("{}:{}", options.host, options.port);
    let listener = match TcpListener::bind(&address) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("demo-app: cannot listen on {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "demo-app release {} listening on {address}{}",
        options.release,
        if tls.is_some() { " (TLS)" } else { "" }
    );
    let app = Arc::new(App::new(&options));
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let (app, tls) = (Arc::clone(&app), tls.clone());
                std::thread::spawn(move || {
                    let _ = connection(&app, stream, tls);
                });
            }
            Err(e) => eprintln!("demo-app: accept failed: {e}"),
        }
    }
    ExitCode::SUCCESS
}

/// Parse the arguments; `Ok(None)` means `--help`.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut args = args.peekable();
    let (mut host, mut port, mut release) = ("127.0.0.1".to_string(), None, None);
    let (mut unhealthy, mut healthy_after) = (false, Duration::ZERO);
    let (mut error_rate, mut errors_after) = (0.0, Duration::ZERO);
    let (mut tls_cert, mut tls_key) = (None, None);
    let mut fault_file = None;
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("`{name}` needs a value"));
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--host" => host = value("--host")?,
            "--port" => {
                let text = value("--port")?;
                port = Some(text.parse::<u16>().map_err(|_| {
                    format!("`--port` must be a port number (0-65535), not `{text}`")
                })?);
            }
            "--release" => release = Some(value("--release")?),
            "--unhealthy" => unhealthy = true,
            "--healthy-after" => {
                healthy_after = seconds("--healthy-after", &value("--healthy-after")?)?;
            }
            "--errors-after" => {
                errors_after = seconds("--errors-after", &value("--errors-after")?)?
            }
            "--error-rate" => {
                let text = value("--error-rate")?;
                error_rate = text
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        format!("`--error-rate` must be a share between 0 and 1, not `{text}`")
                    })?;
            }
            "--tls-cert" => tls_cert = Some(PathBuf::from(value("--tls-cert")?)),
            "--tls-key" => tls_key = Some(PathBuf::from(value("--tls-key")?)),
            "--fault-file" => fault_file = Some(PathBuf::from(value("--fault-file")?)),
            // A credential, as real services take them: accepted, never shown.
            "--secret" => drop(value("--secret")?),
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("`--tls-cert` and `--tls-key` go together".into()),
    };
    Ok(Some(Options {
        host,
        port: port.ok_or("`--port` is required")?,
        release: release.ok_or("`--release` is required")?,
        unhealthy,
        healthy_after,
        error_rate,
        errors_after,
        tls,
        fault_file,
    }))
}

/// A number of seconds for `flag`.
fn seconds(flag: &str, text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{flag}` must be a number of seconds, not `{text}`"))
}

/// The server side of TLS: the certificate chain in `cert` (leaf first),
/// its key in `key`.
fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(chain, key_der)
        })
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))
}

/// One accepted connection: the TLS handshake first when serving HTTPS,
/// then requests.
fn connection(
    app: &App,
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<()> {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let Some(config) = tls else {
        return serve(app, stream, &peer);
    };
    let mut tcp = stream;
    let mut tls = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    while tls.is_handshaking() {
        if let Err(e) = tls.complete_io(&mut tcp) {
            // A client that does not trust the certificate ends here.
            println!("{peer} TLS handshake failed: {e}");
            return Ok(());
        }
    }
    serve(app, rustls::StreamOwned::new(tls, tcp), &peer)
}

/// One request's head: what is needed to answer it and to keep the
/// connection in step.
struct Request {
    method: String,
    path: String,
    version: String,
    keep_alive: bool,
    content_length: usize,
}

/// Serve requests on one connection until the client or the request asks to
/// close, or it is idle too long.
fn serve(app: &App, stream: impl Read + Write, peer: &str) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let request = match read_request(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                respond(
                    reader.get_mut(),
                    false,
                    400,
                    "text/plain",
                    "bad request\n",
                    false,
                )?;
                println!("{peer} \"-\" 400 ({e})");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        // A body is not used, but must be consumed to find the next request.
        io::copy(
            &mut (&mut reader).take(request.content_length as u64),
            &mut io::sink(),
        )?;
        if request.method == "GET" && request.path.split('?').next() == Some("/stream") {
            app.count("/stream", 200);
            println!(
                "{peer} \"GET {} {}\" 200 streaming",
                request.path, request.version
            );
            return stream_lines(reader.get_mut());
        }
        let fault = Fault::read(app.fault_file.as_deref());
        if fault == Fault::Hang {
            println!(
                "{peer} \"{} {}\" hanging (--fault-file)",
                request.method, request.path
            );
            std::thread::sleep(HANG_FOR);
            return Ok(());
        }
        let (status, content_type, body) = match fault {
            Fault::Error => (500, "text/plain", "fault injected\n".to_string()),
            Fault::Unhealthy if request.path.split('?').next() == Some("/healthz") => {
                (503, "text/plain", "unhealthy (fault)\n".to_string())
            }
            _ => answer(app, &request.path),
        };
        let head_only = request.method == "HEAD";
        respond(
            reader.get_mut(),
            head_only,
            status,
            content_type,
            &body,
            request.keep_alive,
        )?;
        println!(
            "{peer} \"{} {} {}\" {status} {}",
            request.method,
            request.path,
            request.version,
            body.len()
        );
        if !request.keep_alive {
            return Ok(());
        }
    }
}

/// `/stream`: a chunked body of one line every [`STREAM_EVERY`], the first
/// at once, until writing fails (the client, or the router in front of it,
/// closed the connection).
fn stream_lines(writer: &mut impl Write) -> io::Result<()> {
    writer.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\
          Connection: close\r\n\r\n",
    )?;
    for n in 0u64.. {
        let line = format!("tick {n}\n");
        writer.write_all(format!("{:x}\r\n{line}\r\n", line.len()).as_bytes())?;
        writer.flush()?;
        std::thread::sleep(STREAM_EVERY);
    }
    Ok(())
}

/// The status, content type and body for `path`, counted for `/metrics`.
fn answer(app: &App, path: &str) -> (u16, &'static str, String) {
    let path = path.split('?').next().unwrap_or(path);
    let answer = answer_uncounted(app, path);
    let counted = match path {
        "/" => "/",
        "/healthz" => "/healthz",
        "/version" => "/version",
        "/metrics" => "/metrics",
        _ => "other",
    };
    app.count(counted, answer.0);
    answer
}

fn answer_uncounted(app: &App, path: &str) -> (u16, &'static str, String) {
    match path {
        "/" if app.fails_now() => (
            500,
            "text/plain",
            format!(
                "demo-app release {} failed this one (--error-rate)\n",
                app.release
            ),
        ),
        "/" => (
            200,
            "text/plain",
            format!("demo-app release {}\n", app.release),
        ),
        "/metrics" => (200, "text/plain; version=0.0.4", app.metrics()),
        "/healthz" if app.unhealthy => (503, "text/plain", "unhealthy\n".into()),
        "/healthz" if Instant::now() < app.healthy_at => (503, "text/plain", "starting\n".into()),
        "/healthz" => (200, "text/plain", "ok\n".into()),
        "/version" => (
            200,
            "application/json",
            format!(
                "{{\"release\":\"{}\"}}\n",
                app.release.replace('\\', "\\\\").replace('"', "\\\"")
            ),
        ),
        _ => (404, "text/plain", "not found\n".into()),
    }
}

/// Read one request head; `Ok(None)` when the client closed the connection
/// (or went idle) between requests.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    // Tolerate empty lines before a request (RFC 9112, 2.2).
    while line.trim().is_empty() {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("unsupported HTTP version"));
    }
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        version: version.to_string(),
        // HTTP/1.1 keeps the connection by default, HTTP/1.0 closes it.
        keep_alive: version == "HTTP/1.1",
        content_length: 0,
    };
    let mut head_bytes = line.len();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Err(bad("connection closed inside the request head"));
        }
        head_bytes += header.len();
        if head_bytes > MAX_HEAD_BYTES {
            return Err(bad("request head too large"));
        }
        let header = header.trim_end();
        if header.is_empty() {
            return Ok(Some(request));
        }
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| bad("malformed header"))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "connection" => {
                let tokens = value.to_ascii_lowercase();
                if tokens.split(',').any(|t| t.trim() == "close") {
                    request.keep_alive = false;
                } else if tokens.split(',').any(|t| t.trim() == "keep-alive") {
                    request.keep_alive = true;
                }
            }
            "content-length" => {
                request.content_length = value.parse().map_err(|_| bad("bad Content-Length"))?;
            }
            "transfer-encoding" => return Err(bad("request bodies must use Content-Length")),
            _ => {}
        }
    }
}

fn respond(
    writer: &mut impl Write,
    head_only: bool,
    status: u16,
    content_type: &str,
    body: &str,
    keep_alive: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(body);
    }
    writer.write_all(response.as_bytes())?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Options>, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        let o = args(&[
            "--port",
            "9101",
            "--release",
            "1.4.1",
            "--healthy-after",
            "2.5",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.release.as_str()),
            ("127.0.0.1", 9101, "1.4.1")
        );
        assert_eq!(o.healthy_after, Duration::from_millis(2500));
        assert!(args(&["--port", "x", "--release", "1"])
            .unwrap_err()
            .contains("--port"));
        assert!(args(&["--release", "1"]).unwrap_err().contains("--port"));
        assert!(args(&["--port", "1", "--release"])
            .unwrap_err()
            .contains("--release"));
        assert!(args(&["--colour", "blue"])
            .unwrap_err()
            .contains("--colour"));
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(o.tls.is_none());
        let tls = args(&[
            "--port",
            "1",
            "--release",
            "1",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(tls.tls, Some(("c.pem".into(), "k.pem".into())));
        assert!(
            args(&["--port", "1", "--release", "1", "--tls-cert", "c.pem"])
                .unwrap_err()
                .contains("go together")
        );
    }

    fn app(flags: &[&str]) -> App {
        let mut all = vec!["--port", "1", "--release", "2.0"];
        all.extend_from_slice(flags);
        App::new(&args(&all).unwrap().unwrap())
    }

    #[test]
    fn an_error_rate_fails_exactly_that_share_spread_evenly() {
        let a = app(&["--error-rate", "0.05"]);
        let statuses: Vec<u16> = (0..200).map(|_| answer(&a, "/").0).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 10);
        // Evenly: one in each twenty.
        for chunk in statuses.chunks(20) {
            assert_eq!(chunk.iter().filter(|s| **s == 500).count(), 1, "{chunk:?}");
        }
        // Only `/`: health checks and the rest are not made to fail.
        assert_eq!(answer(&a, "/healthz").0, 200);
        let none = app(&[]);
        assert!((0..50).all(|_| answer(&none, "/").0 == 200));
        let later = app(&["--error-rate", "1", "--errors-after", "3600"]);
        assert_eq!(answer(&later, "/").0, 200, "not yet");
        assert!(
            args(&["--port", "1", "--release", "1", "--error-rate", "1.5"])
                .unwrap_err()
                .contains("between 0 and 1")
        );
    }

    #[test]
    fn metrics_count_requests_by_release_path_and_status() {
        let a = app(&["--error-rate", "0.5"]);
        for _ in 0..4 {
            answer(&a, "/");
        }
        answer(&a, "/healthz");
        answer(&a, "/nope");
        let (status, content_type, body) = answer(&a, "/metrics");
        assert_eq!((status, content_type), (200, "text/plain; version=0.0.4"));
        for line in [
            "# TYPE demo_app_requests_total counter",
            "demo_app_requests_total{release=\"2.0\",path=\"/\",status=\"200\"} 2",
            "demo_app_requests_total{release=\"2.0\",path=\"/\",status=\"500\"} 2",
            "demo_app_requests_total{release=\"2.0\",path=\"/healthz\",status=\"200\"} 1",
            "demo_app_requests_total{release=\"2.0\",path=\"other\",status=\"404\"} 1",
        ] {
            assert!(body.lines().any(|l| l == line), "{line} in:\n{body}");
        }
    }

    /// Takes `left` writes, then fails as a closed connection does.
    struct Closing {
        written: Vec<u8>,
        left: usize,
    }

    impl Write for Closing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.left -= 1;
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stream_sends_lines_until_the_client_goes_away() {
        let mut client = Closing {
            written: Vec::new(),
            left: 3,
        };
        let e = stream_lines(&mut client).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        let text = String::from_utf8(client.written).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n7\r\ntick 0\n\r\n7\r\ntick 1\n\r\n"),
            "{text:?}"
        );
    }

    #[test]
    fn the_series_of_the_root_path_are_there_at_zero_before_any_request() {
        let (_, _, body) = answer(&app(&[]), "/metrics");
        for line in [
            "demo_app_requests_total{release=\"2.0\",path=\"/\",status=\"200\"} 0",
            "demo_app_requests_total{release=\"2.0\",path=\"/\",status=\"500\"} 0",
        ] {
            assert!(body.lines().any(|l| l == line), "{line} in:\n{body}");
        }
    }

    #[test]
    fn a_fault_file_is_read_before_every_request() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fault");
        assert_eq!(Fault::read(Some(&file)), Fault::None, "no file: no fault");
        for (text, fault) in [
            ("error\n", Fault::Error),
            ("hang", Fault::Hang),
            ("unhealthy\n", Fault::Unhealthy),
            ("", Fault::None),
            ("something else", Fault::None),
        ] {
            std::fs::write(&file, text).unwrap();
            assert_eq!(Fault::read(Some(&file)), fault, "{text:?}");
        }
        assert_eq!(Fault::read(None), Fault::None);
        let options = args(&["--port", "1", "--release", "2", "--fault-file", "/x"]).unwrap();
        assert_eq!(options.unwrap().fault_file, Some(PathBuf::from("/x")));
    }

    #[test]
    fn requests_on_one_connection() {
        let input = "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\
                     GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut reader = BufReader::new(input.as_bytes());
        let first = read_request(&mut reader).unwrap().unwrap();
        assert_eq!((first.path.as_str(), first.keep_alive), ("/healthz", true));
        let second = read_request(&mut reader).unwrap().unwrap();
        assert_eq!((second.path.as_str(), second.keep_alive), ("/", false));
        assert!(read_request(&mut reader).unwrap().is_none());
        let old = read_request(&mut BufReader::new("GET / HTTP/1.0\r\n\r\n".as_bytes()));
        assert!(!old.unwrap().unwrap().keep_alive);
    }
}
