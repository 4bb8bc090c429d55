//! Fixtures for the health-check tests: a CA made on the spot, server
//! certificates it signs, and small loopback servers (HTTPS, and one that
//! accepts connections and never answers). Every server stops when dropped.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::model::Health;

/// A certificate authority for one test.
pub(crate) struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate (with its chain) and its key.
pub(crate) struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    /// The CA certificate, as a `ca_file` holds it.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.sign(CertificateParams::new(strings(names)).unwrap())
    }

    /// A server certificate for `names` that expired in 2021.
    pub fn expired_leaf(&self, names: &[&str]) -> Leaf {
        let mut params = CertificateParams::new(strings(names)).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A `ca_file` holding `ca`'s certificate, in a directory of its own.
pub(crate) fn ca_file(ca: &TestCa) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, ca.pem()).unwrap();
    (dir, path)
}

/// A quick check: one request a round, one success, 2s in all.
pub(crate) fn quick_health(url: String) -> Health {
    Health {
        url: Some(url),
        path: "/healthz".into(),
        interval: std::time::Duration::from_millis(20),
        timeout: std::time::Duration::from_secs(2),
        request_timeout: std::time::Duration::from_millis(500),
        ..Health::default()
    }
}

/// A loopback HTTP or HTTPS server: `/healthz` answers 200, `/version` the
/// release as JSON, anything else 404.
pub(crate) struct TestServer {
    pub port: u16,
    accept: JoinHandle<()>,
}

impl TestServer {
    /// An HTTPS server presenting `leaf`.
    pub async fn tls(leaf: &Leaf, release: &str) -> TestServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
            .unwrap();
        Self::start(
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
            release,
        )
        .await
    }

    /// A plain HTTP server.
    pub async fn plain(release: &str) -> TestServer {
        Self::start(None, release).await
    }

    async fn start(tls: Option<tokio_rustls::TlsAcceptor>, release: &str) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let release = release.to_string();
        let accept = tokio::spawn(async move {
            // Dropped with this task, aborting every connection.
            let mut connections = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let (tls, release) = (tls.clone(), release.clone());
                connections.spawn(async move {
                    let _ = match tls {
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => serve(stream, &release).await,
                            Err(e) => Err(e),
                        },
                        None => serve(tcp, &release).await,
                    };
                });
            }
        });
        TestServer { port, accept }
    }

    pub fn url(&self, scheme: &str, host: &str, path: &str) -> String {
        format!("{scheme}://{host}:{}{path}", self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Answer requests on one connection until the client closes it.
async fn serve(
    stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    release: &str,
) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    loop {
        // Like any HTTP server that parses as bytes arrive, refuse at once
        // what cannot start a request line (a TLS ClientHello, 0x16).
        let first = stream.fill_buf().await?;
        if first.is_empty() {
            return Ok(());
        }
        if !first[0].is_ascii_alphabetic() {
            let refusal =
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            stream.get_mut().write_all(refusal.as_bytes()).await?;
            return stream.get_mut().shutdown().await;
        }
        let mut request_line = String::new();
        if stream.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        loop {
            let mut header = String::new();
            if stream.read_line(&mut header).await? == 0 || header.trim().is_empty() {
                break;
            }
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/");
        let (status, body) = match path {
            "/healthz" => ("200 OK", "ok\n".to_string()),
            "/version" => ("200 OK", format!("{{\"release\":\"{release}\"}}")),
            _ => ("404 Not Found", "not found\n".to_string()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.get_mut().write_all(response.as_bytes()).await?;
        stream.get_mut().flush().await?;
    }
}

/// A loopback server that accepts connections and never says a word.
pub(crate) struct SilentServer {
    pub port: u16,
    accept: JoinHandle<()>,
}

impl SilentServer {
    pub async fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        SilentServer { port, accept }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A loopback port where nothing listens (bound, then released).
pub(crate) fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}
