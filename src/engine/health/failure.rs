//! Why a health probe failed, as a type rather than a sentence: a
//! [`ProbeFailure`] has a stable [`kind`](ProbeFailure::kind) that machines
//! can match (JSON events, alerting) and a message for people.
//!
//! reqwest reports every transport failure as one `reqwest::Error`; what
//! really happened is further down its chain of sources (hyper-util's connect
//! error, an `io::Error`, the `rustls::Error` inside it, the resolver's
//! [`NameNotResolved`]). [`classify`] walks that chain.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use rustls::CertificateError;

use super::client::NameNotResolved;

/// The status a probe wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WantStatus {
    /// Exactly this status (a health check's `status`).
    Exactly(u16),
    /// Any 2xx (a release endpoint).
    Success,
}

impl fmt::Display for WantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WantStatus::Exactly(status) => write!(f, "{status}"),
            WantStatus::Success => f.write_str("2xx"),
        }
    }
}

/// Why one probe of a health or verify check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeFailure {
    /// The connection was refused: nothing listens on the port.
    #[error("{url}: connection refused (nothing listens there)")]
    Refused {
        /// The URL requested.
        url: String,
    },
    /// The address could not be connected to for another reason: no route
    /// to the host, network down, connection reset while connecting.
    #[error("{url}: unreachable: {reason}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// What the system said.
        reason: String,
    },
    /// No complete answer within the check's `request_timeout`.
    #[error("{url} did not answer within {timeout:?}")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The `request_timeout`.
        timeout: Duration,
    },
    /// The host name of the URL did not resolve.
    #[error("{url}: cannot resolve the host name {host}: {reason}")]
    Dns {
        /// The URL requested.
        url: String,
        /// The name that did not resolve.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The TLS handshake failed.
    #[error("{url}: TLS: {reason}")]
    Tls {
        /// The URL requested.
        url: String,
        /// Why.
        reason: TlsFailure,
    },
    /// The server answered with another status than the one wanted.
    #[error("{url} answered {got} (want {want})")]
    Status {
        /// The URL requested.
        url: String,
        /// The status it answered.
        got: u16,
        /// The status wanted.
        want: WantStatus,
    },
    /// The environment reports another release than the one deployed (or
    /// none: an empty body, or JSON without a `release` string).
    #[error("{url} reports release {} (want {want})", got.as_deref().unwrap_or("nothing"))]
    Release {
        /// The release URL requested.
        url: String,
        /// What it reported.
        got: Option<String>,
        /// The release deployed.
        want: String,
    },
    /// The exchange failed in HTTP after connecting: the answer was not
    /// HTTP, or the connection closed before a complete answer.
    #[error("{url}: {reason}")]
    Http {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl ProbeFailure {
    /// A stable label: `refused`, `unreachable`, `timeout`, `dns`, `tls`,
    /// `status`, `release` or `http`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeFailure::Refused { .. } => "refused",
            ProbeFailure::Unreachable { .. } => "unreachable",
            ProbeFailure::Timeout { .. } => "timeout",
            ProbeFailure::Dns { .. } => "dns",
            ProbeFailure::Tls { .. } => "tls",
            ProbeFailure::Status { .. } => "status",
            ProbeFailure::Release { .. } => "release",
            ProbeFailure::Http { .. } => "http",
        }
    }
}

/// Why a TLS handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The certificate does not chain to a trusted CA.
    UnknownIssuer,
    /// The certificate has expired (at this Unix time, when known).
    Expired {
        /// `notAfter`, in seconds since the Unix epoch.
        not_after: Option<u64>,
    },
    /// The certificate is not valid yet.
    NotYetValid,
    /// The certificate is not valid for the host of the URL.
    NameMismatch {
        /// The host asked for.
        expected: String,
        /// The names the certificate holds (may be empty when unknown).
        presented: Vec<String>,
    },
    /// The certificate has been revoked.
    Revoked,
    /// Another problem with the certificate (bad signature, not for a
    /// server, unsupported algorithm...).
    BadCertificate(String),
    /// The server did not answer in TLS: most often plain HTTP on an
    /// `https://` URL.
    NotTls,
    /// The server closed the connection during the handshake.
    HandshakeClosed,
    /// The server ended the handshake with this TLS alert (it wants a client
    /// certificate, supports none of our versions or ciphers...).
    Alert(String),
    /// Anything else rustls reported.
    Other(String),
}

impl TlsFailure {
    /// A stable label for the reason: `unknown_issuer`, `expired`,
    /// `not_yet_valid`, `name_mismatch`, `revoked`, `bad_certificate`,
    /// `not_tls`, `handshake_closed`, `alert` or `other`.
    pub fn label(&self) -> &'static str {
        match self {
            TlsFailure::UnknownIssuer => "unknown_issuer",
            TlsFailure::Expired { .. } => "expired",
            TlsFailure::NotYetValid => "not_yet_valid",
            TlsFailure::NameMismatch { .. } => "name_mismatch",
            TlsFailure::Revoked => "revoked",
            TlsFailure::BadCertificate(_) => "bad_certificate",
            TlsFailure::NotTls => "not_tls",
            TlsFailure::HandshakeClosed => "handshake_closed",
            TlsFailure::Alert(_) => "alert",
            TlsFailure::Other(_) => "other",
        }
    }

    fn from_rustls(error: &rustls::Error, host: &str) -> TlsFailure {
        use rustls::Error as E;
        match error {
            E::InvalidCertificate(cert) => Self::from_certificate(cert, host),
            E::NoCertificatesPresented => {
                TlsFailure::BadCertificate("the server presented no certificate".into())
            }
            // What arrives first from a plain HTTP server (`HTTP/1.1 400`)
            // is not a TLS record.
            E::InvalidMessage(_) => TlsFailure::NotTls,
            E::AlertReceived(alert) => TlsFailure::Alert(format!("{alert:?}")),
            other => TlsFailure::Other(other.to_string()),
        }
    }

    fn from_certificate(error: &CertificateError, host: &str) -> TlsFailure {
        use CertificateError as C;
        match error {
            C::UnknownIssuer => TlsFailure::UnknownIssuer,
            C::Expired => TlsFailure::Expired { not_after: None },
            C::ExpiredContext { not_after, .. } => TlsFailure::Expired {
                not_after: Some(not_after.as_secs()),
            },
            C::NotValidYet | C::NotValidYetContext { .. } => TlsFailure::NotYetValid,
            C::NotValidForName => TlsFailure::NameMismatch {
                expected: host.to_string(),
                presented: Vec::new(),
            },
            C::NotValidForNameContext {
                expected,
                presented,
            } => TlsFailure::NameMismatch {
                expected: expected.to_str().into_owned(),
                presented: presented.iter().map(|p| plain_name(p)).collect(),
            },
            C::Revoked => TlsFailure::Revoked,
            other => TlsFailure::BadCertificate(
                rustls::Error::InvalidCertificate(other.clone()).to_string(),
            ),
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::UnknownIssuer => f.write_str(
                "unknown issuer: the certificate is not signed by a trusted CA \
                 (trust its CA with `ca_file`, or in the system's store)",
            ),
            TlsFailure::Expired { not_after: None } => f.write_str("the certificate has expired"),
            TlsFailure::Expired {
                not_after: Some(secs),
            } => {
                let at = std::time::UNIX_EPOCH + Duration::from_secs(*secs);
                write!(
                    f,
                    "the certificate expired at {}",
                    humantime::format_rfc3339_seconds(at)
                )
            }
            TlsFailure::NotYetValid => {
                f.write_str("the certificate is not valid yet (are the clocks right?)")
            }
            TlsFailure::NameMismatch {
                expected,
                presented,
            } if presented.is_empty() => write!(
                f,
                "name mismatch: the certificate is not valid for {expected}"
            ),
            TlsFailure::NameMismatch {
                expected,
                presented,
            } => write!(
                f,
                "name mismatch: the certificate is for {}, not {expected}",
                presented.join(", ")
            ),
            TlsFailure::Revoked => f.write_str("the certificate has been revoked"),
            TlsFailure::BadCertificate(why) => write!(f, "bad certificate: {why}"),
            TlsFailure::NotTls => {
                f.write_str("the server does not speak TLS (is it plain HTTP? then use http://)")
            }
            TlsFailure::HandshakeClosed => {
                f.write_str("the server closed the connection during the handshake")
            }
            TlsFailure::Alert(alert) => write!(f, "the server refused the handshake: {alert}"),
            TlsFailure::Other(why) => f.write_str(why),
        }
    }
}

/// What a failed request to `url` was, from reqwest's error and its chain of
/// sources. `timeout` is the request timeout in force.
pub(crate) fn classify(url: &str, error: &reqwest::Error, timeout: Duration) -> ProbeFailure {
    if error.is_timeout() {
        return ProbeFailure::Timeout {
            url: url.to_string(),
            timeout,
        };
    }
    classify_chain(url, error, error.is_connect())
}

/// [`classify`] on any error: `connecting` says whether it happened before
/// a connection was made (reqwest's `is_connect`; a TLS handshake counts).
fn classify_chain(url: &str, error: &(dyn StdError + 'static), connecting: bool) -> ProbeFailure {
    let url_owned = url.to_string();
    let chain = causes(error);
    for cause in &chain {
        if let Some(dns) = cause.downcast_ref::<NameNotResolved>() {
            return ProbeFailure::Dns {
                url: url_owned,
                host: dns.host.clone(),
                reason: dns.source.to_string(),
            };
        }
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return ProbeFailure::Tls {
                url: url_owned,
                reason: TlsFailure::from_rustls(tls, host_of(url)),
            };
        }
    }
    let io_kind = chain
        .iter()
        .find_map(|c| c.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    let innermost = chain.last().map_or_else(String::new, |c| c.to_string());
    match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => ProbeFailure::Refused { url: url_owned },
        // The system's own connect timeout (a request timeout is caught
        // above): as good as unreachable, but said as what it is.
        Some(io::ErrorKind::TimedOut) => ProbeFailure::Unreachable {
            url: url_owned,
            reason: "the connection attempt timed out".into(),
        },
        // tokio-rustls: "tls handshake eof".
        Some(io::ErrorKind::UnexpectedEof) if connecting && url.starts_with("https://") => {
            ProbeFailure::Tls {
                url: url_owned,
                reason: TlsFailure::HandshakeClosed,
            }
        }
        _ if connecting => ProbeFailure::Unreachable {
            url: url_owned,
            reason: innermost,
        },
        _ => ProbeFailure::Http {
            url: url_owned,
            reason: innermost,
        },
    }
}

/// `error` and its sources, outermost first. An `io::Error` that wraps
/// another error hides it from `source()` (std returns the wrapped error's
/// own source), so the wrapped one is taken with `get_ref`: that is where
/// tokio-rustls puts the `rustls::Error`.
fn causes<'e>(error: &'e (dyn StdError + 'static)) -> Vec<&'e (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        out.push(cause);
        // A cycle of sources would be a bug elsewhere; do not loop on it.
        if out.len() == 64 {
            break;
        }
        next = match cause
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => cause.source(),
        };
    }
    out
}

/// A name as webpki presents it (`DnsName("localhost")`,
/// `IpAddress(127.0.0.1)`), without its wrapping.
fn plain_name(presented: &str) -> String {
    let unwrapped = ["DnsName(\"", "IpAddress("].iter().find_map(|prefix| {
        presented
            .strip_prefix(prefix)?
            .strip_suffix(')')
            .map(|rest| rest.trim_end_matches('"'))
    });
    unwrapped.unwrap_or(presented).to_string()
}

/// The host of a URL, for messages (`https://[::1]:8443/x` -> `::1`).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.split(':').next().unwrap_or(authority)
}

// The tests classify real failures against real servers; they would
// outgrow this file.
#[cfg(test)]
mod tests;
