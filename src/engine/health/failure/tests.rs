//! Tests of [`classify`](super::classify) on real failures: a closed port,
//! servers with certificates from an unknown CA, for another name, expired,
//! a name that cannot resolve, a server that never answers, TLS to plain
//! HTTP and back. (Apart from `failure.rs`, which they would outgrow.)

use super::*;
use crate::config::model::Health;
use crate::engine::health::client::Clients;
use crate::engine::health::testing::{
    ca_file, closed_port, quick_health, SilentServer, TestCa, TestServer,
};
use crate::engine::health::HealthChecker;

/// One probe of `health` that must fail; its failure.
async fn failure_of(health: &Health) -> ProbeFailure {
    let client = Clients::default().get(health.ca_file.as_deref()).unwrap();
    let url = health.url.as_deref().unwrap();
    HealthChecker::probe(&client, url, health)
        .await
        .expect_err("the probe must fail")
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let url = format!("http://127.0.0.1:{}/healthz", closed_port());
    let failure = failure_of(&quick_health(url.clone())).await;
    assert_eq!(failure, ProbeFailure::Refused { url: url.clone() });
    assert_eq!(failure.kind(), "refused");
    assert_eq!(
        failure.to_string(),
        format!("{url}: connection refused (nothing listens there)")
    );
    let https = format!("https://127.0.0.1:{}/healthz", closed_port());
    assert_eq!(failure_of(&quick_health(https)).await.kind(), "refused");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_tls_unknown_issuer() {
    let ca = TestCa::new("unknown CA");
    let server = TestServer::tls(&ca.leaf(&["127.0.0.1", "localhost"]), "1").await;
    let url = server.url("https", "127.0.0.1", "/healthz");
    let failure = failure_of(&quick_health(url.clone())).await;
    assert_eq!(
        failure,
        ProbeFailure::Tls {
            url: url.clone(),
            reason: TlsFailure::UnknownIssuer
        }
    );
    assert_eq!(failure.kind(), "tls");
    assert!(
        failure.to_string().starts_with(&format!(
            "{url}: TLS: unknown issuer: the certificate is not signed by a trusted CA"
        )),
        "{failure}"
    );
}

#[tokio::test]
async fn the_same_server_passes_once_its_ca_is_trusted() {
    let ca = TestCa::new("test CA");
    let server = TestServer::tls(&ca.leaf(&["127.0.0.1", "localhost"]), "1").await;
    let (_dir, path) = ca_file(&ca);
    for host in ["127.0.0.1", "localhost"] {
        let health = Health {
            ca_file: Some(path.clone()),
            ..quick_health(server.url("https", host, "/healthz"))
        };
        let client = Clients::default().get(Some(&path)).unwrap();
        let url = health.url.clone().unwrap();
        HealthChecker::probe(&client, &url, &health)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_tls_name_mismatch() {
    let ca = TestCa::new("test CA");
    let server = TestServer::tls(&ca.leaf(&["localhost"]), "1").await;
    let (_dir, path) = ca_file(&ca);
    let url = server.url("https", "127.0.0.1", "/healthz");
    let failure = failure_of(&Health {
        ca_file: Some(path),
        ..quick_health(url.clone())
    })
    .await;
    let ProbeFailure::Tls { reason, .. } = &failure else {
        panic!("not a TLS failure: {failure:?}");
    };
    assert_eq!(reason.label(), "name_mismatch");
    assert!(
        matches!(reason, TlsFailure::NameMismatch { expected, .. } if expected == "127.0.0.1"),
        "{reason:?}"
    );
    assert_eq!(
        failure.to_string(),
        format!("{url}: TLS: name mismatch: the certificate is for localhost, not 127.0.0.1")
    );
}

#[tokio::test]
async fn an_expired_certificate_is_tls_expired_with_its_date() {
    let ca = TestCa::new("test CA");
    let server = TestServer::tls(&ca.expired_leaf(&["127.0.0.1"]), "1").await;
    let (_dir, path) = ca_file(&ca);
    let url = server.url("https", "127.0.0.1", "/healthz");
    let failure = failure_of(&Health {
        ca_file: Some(path),
        ..quick_health(url.clone())
    })
    .await;
    assert_eq!(
        failure,
        ProbeFailure::Tls {
            url: url.clone(),
            reason: TlsFailure::Expired {
                not_after: Some(1_609_459_200)
            }
        }
    );
    assert_eq!(
        failure.to_string(),
        format!("{url}: TLS: the certificate expired at 2021-01-01T00:00:00Z")
    );
}

#[tokio::test]
async fn a_name_that_cannot_resolve_is_dns() {
    // `.invalid` never resolves (RFC 6761): the resolver answers at once.
    let url = "https://name.invalid:8443/healthz".to_string();
    let failure = failure_of(&quick_health(url.clone())).await;
    let ProbeFailure::Dns { host, .. } = &failure else {
        panic!("not a DNS failure: {failure:?}");
    };
    assert_eq!(host, "name.invalid");
    assert_eq!(failure.kind(), "dns");
    assert!(
        failure.to_string().starts_with(&format!(
            "{url}: cannot resolve the host name name.invalid: "
        )),
        "{failure}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let server = SilentServer::start().await;
    for scheme in ["http", "https"] {
        let url = format!("{scheme}://127.0.0.1:{}/healthz", server.port);
        let health = Health {
            request_timeout: Duration::from_millis(200),
            ..quick_health(url.clone())
        };
        let failure = failure_of(&health).await;
        assert_eq!(
            failure,
            ProbeFailure::Timeout {
                url: url.clone(),
                timeout: Duration::from_millis(200)
            }
        );
        assert_eq!(
            failure.to_string(),
            format!("{url} did not answer within 200ms")
        );
    }
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_tls_not_tls() {
    let server = TestServer::plain("1").await;
    let url = server.url("https", "127.0.0.1", "/healthz");
    let failure = failure_of(&quick_health(url.clone())).await;
    assert_eq!(
        failure,
        ProbeFailure::Tls {
            url,
            reason: TlsFailure::NotTls
        }
    );
}

#[tokio::test]
async fn plain_http_to_an_https_server_is_http() {
    let ca = TestCa::new("test CA");
    let server = TestServer::tls(&ca.leaf(&["127.0.0.1"]), "1").await;
    let url = server.url("http", "127.0.0.1", "/healthz");
    let failure = failure_of(&quick_health(url)).await;
    assert_eq!(failure.kind(), "http", "{failure:?}");
}

#[tokio::test]
async fn another_status_is_status_with_got_and_want() {
    let server = TestServer::plain("1").await;
    let url = server.url("http", "127.0.0.1", "/nope");
    let failure = failure_of(&quick_health(url.clone())).await;
    assert_eq!(
        failure,
        ProbeFailure::Status {
            url: url.clone(),
            got: 404,
            want: WantStatus::Exactly(200)
        }
    );
    assert_eq!(failure.kind(), "status");
    assert_eq!(
        failure.to_string(),
        format!("{url} answered 404 (want 200)")
    );
}

/// No loopback address is unreachable, so this one chain is made by
/// hand: an OS error under a wrapper, as hyper-util reports a connect.
#[test]
fn no_route_to_host_is_unreachable() {
    #[derive(Debug, thiserror::Error)]
    #[error("tcp connect error")]
    struct Connect(#[source] io::Error);
    let os = io::Error::from_raw_os_error(nix::errno::Errno::EHOSTUNREACH as i32);
    let reason = os.to_string();
    let failure = classify_chain("http://10.0.0.1/", &Connect(os), true);
    assert_eq!(
        failure,
        ProbeFailure::Unreachable {
            url: "http://10.0.0.1/".into(),
            reason
        }
    );
    assert_eq!(failure.kind(), "unreachable");
    // The same error once connected is an HTTP failure, not a connect one.
    let reset = io::Error::from(io::ErrorKind::ConnectionReset);
    assert_eq!(
        classify_chain("http://h/", &Connect(reset), false).kind(),
        "http"
    );
}

#[test]
fn a_rustls_error_inside_an_io_error_is_found() {
    let inner = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
    let io = io::Error::new(io::ErrorKind::InvalidData, inner);
    assert_eq!(
        classify_chain("https://h/", &io, true),
        ProbeFailure::Tls {
            url: "https://h/".into(),
            reason: TlsFailure::UnknownIssuer
        }
    );
}

#[test]
fn every_kind_and_label_is_snake_case() {
    let url = String::new;
    let failures = [
        ProbeFailure::Refused { url: url() },
        ProbeFailure::Unreachable {
            url: url(),
            reason: url(),
        },
        ProbeFailure::Timeout {
            url: url(),
            timeout: Duration::ZERO,
        },
        ProbeFailure::Dns {
            url: url(),
            host: url(),
            reason: url(),
        },
        ProbeFailure::Tls {
            url: url(),
            reason: TlsFailure::NotTls,
        },
        ProbeFailure::Status {
            url: url(),
            got: 500,
            want: WantStatus::Success,
        },
        ProbeFailure::Release {
            url: url(),
            got: None,
            want: url(),
        },
        ProbeFailure::Http {
            url: url(),
            reason: url(),
        },
    ];
    let kinds: Vec<_> = failures.iter().map(ProbeFailure::kind).collect();
    assert_eq!(
        kinds,
        [
            "refused",
            "unreachable",
            "timeout",
            "dns",
            "tls",
            "status",
            "release",
            "http"
        ]
    );
}

#[test]
fn presented_names_lose_their_wrapping() {
    assert_eq!(plain_name("DnsName(\"localhost\")"), "localhost");
    assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
    assert_eq!(plain_name("DirectoryName"), "DirectoryName");
}

#[test]
fn host_of_a_url() {
    assert_eq!(host_of("https://127.0.0.1:8443/healthz"), "127.0.0.1");
    assert_eq!(host_of("https://[::1]:8443/x"), "::1");
    assert_eq!(host_of("http://user@example.test/x?y"), "example.test");
    assert_eq!(host_of("https://example.test"), "example.test");
}
