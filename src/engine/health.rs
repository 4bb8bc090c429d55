//! Health gates: cutover's own HTTP checks that a colour must pass before a
//! router may send it traffic (DESIGN.md §3, rule 2), and the `verify {}`
//! checks run through a router after a cut-over.
//!
//! Checks speak `http://` and `https://` (rustls; `health/client.rs` says which
//! crypto provider and trust store, and why). Every failed probe is a typed
//! [`ProbeFailure`], and a failed gate a [`GateError`] that carries the kind
//! of its last failure.

mod client;
mod failure;
#[cfg(test)]
mod testing;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::addr::Address;
use crate::config::model::Health;

use super::observer::{Event, Observer};

pub use client::ClientError;
pub(crate) use failure::classify;
pub use failure::{ProbeFailure, TlsFailure, WantStatus};

/// Runs health checks. Clones share their HTTP clients: one per distinct
/// `ca_file`, built on first use, whose connections are reused.
#[derive(Debug, Clone, Default)]
pub struct HealthChecker {
    clients: Arc<client::Clients>,
}

/// Why a health gate (or a verify check) failed.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The check did not pass `successes` rounds in a row within its
    /// `timeout`.
    #[error(
        "{subject} did not pass its {check} within {timeout:?}: waited for {waiting_for}; last: {last}",
        check = if matches!(subject, Address::Router(_)) { "verify check" } else { "health check" }
    )]
    NotPassed {
        /// What was checked, as given to [`HealthChecker::gate`]: an
        /// environment (its gate) or a router (its verify).
        subject: Address,
        /// The check's `timeout`.
        timeout: Duration,
        /// What the gate waited for (`GET https://... -> 200`).
        waiting_for: String,
        /// What the last round saw, for people: its failure, or how many
        /// successes in a row it had reached.
        last: String,
        /// The most recent failed probe; `None` when every round passed but
        /// too few in a row fitted in the timeout.
        last_failure: Option<ProbeFailure>,
    },
    /// No HTTP client could be made for the check: its `ca_file` changed
    /// since the configuration was loaded.
    #[error("{subject}: cannot run its check: {source}")]
    Client {
        /// What was to be checked.
        subject: Address,
        /// Why.
        #[source]
        source: ClientError,
    },
}

impl GateError {
    /// What went wrong, without the subject: `did not pass within 1s:
    /// waited for ...; last: ...` (for a message that names it already).
    pub fn detail(&self) -> String {
        match self {
            GateError::NotPassed {
                timeout,
                waiting_for,
                last,
                ..
            } => format!("did not pass within {timeout:?}: waited for {waiting_for}; last: {last}"),
            GateError::Client { source, .. } => format!("cannot run its check: {source}"),
        }
    }

    /// A stable label for why the gate failed: the
    /// [`kind`](ProbeFailure::kind) of its last failed probe (`refused`,
    /// `unreachable`, `timeout`, `dns`, `tls`, `status`, `release`, `http`);
    /// `too_few_successes` when no probe failed; `ca_file` when the check's
    /// CA bundle could not be read.
    pub fn kind(&self) -> &'static str {
        match self {
            GateError::NotPassed {
                last_failure: Some(failure),
                ..
            } => failure.kind(),
            GateError::NotPassed { .. } => "too_few_successes",
            GateError::Client { .. } => "ca_file",
        }
    }

    /// The most recent failed probe, if any.
    pub fn last_failure(&self) -> Option<&ProbeFailure> {
        match self {
            GateError::NotPassed { last_failure, .. } => last_failure.as_ref(),
            GateError::Client { .. } => None,
        }
    }
}

/// The apply walk reports step errors as text.
impl From<GateError> for String {
    fn from(error: GateError) -> String {
        error.to_string()
    }
}

/// The URLs a check requests for an environment.
pub fn check_urls(endpoints: &[String], health: &Health) -> Vec<String> {
    match &health.url {
        Some(url) => vec![url.clone()],
        // As the plan shows it: a path without its `/` (a marker) gets one.
        None => {
            let slash = if health.path.starts_with('/') {
                ""
            } else {
                "/"
            };
            endpoints
                .iter()
                .map(|e| format!("http://{e}{slash}{}", health.path))
                .collect()
        }
    }
}

/// The URL an endpoint reports its release at, when `release_path` is set:
/// the path on the endpoint over HTTP, or the full URL given.
fn release_url(endpoint: &str, health: &Health) -> Option<String> {
    let path = health.release_path.as_ref()?;
    Some(
        if path.starts_with("http://") || path.starts_with("https://") {
            path.clone()
        } else {
            format!("http://{endpoint}{path}")
        },
    )
}

impl HealthChecker {
    /// The shared client that trusts the system's CAs alone, for other
    /// HTTP cutover sends (the webhooks of `notify` blocks): one pool of
    /// connections and one read of the trust store for the whole process.
    pub fn system_client(&self) -> Result<reqwest::Client, ClientError> {
        self.clients.get(None)
    }

    /// The kind of a failed request on such a client, as a failed probe's
    /// ([`ProbeFailure::kind`]: `refused`, `unreachable`, `timeout`, `dns`,
    /// `tls`, `http`), for senders whose messages must not name the URL.
    pub fn request_failure_kind(error: &reqwest::Error, timeout: Duration) -> &'static str {
        failure::classify("", error, timeout).kind()
    }

    /// One request; `Ok(())` when the status is the expected one.
    async fn probe(
        client: &reqwest::Client,
        url: &str,
        health: &Health,
    ) -> Result<(), ProbeFailure> {
        match client.get(url).timeout(health.request_timeout).send().await {
            Ok(resp) if resp.status().as_u16() == health.status => Ok(()),
            Ok(resp) => Err(ProbeFailure::Status {
                url: url.to_string(),
                got: resp.status().as_u16(),
                want: WantStatus::Exactly(health.status),
            }),
            Err(e) => Err(failure::classify(url, &e, health.request_timeout)),
        }
    }

    /// The release reported at `url`: the body's `release` field when it is
    /// a JSON object, otherwise the trimmed body; `None` when it reports
    /// nothing (an empty body, JSON without a `release` string).
    async fn fetch_release(
        client: &reqwest::Client,
        url: &str,
        health: &Health,
    ) -> Result<Option<String>, ProbeFailure> {
        let classify = |e: reqwest::Error| failure::classify(url, &e, health.request_timeout);
        let resp = client
            .get(url)
            .timeout(health.request_timeout)
            .send()
            .await
            .map_err(classify)?;
        if !resp.status().is_success() {
            return Err(ProbeFailure::Status {
                url: url.to_string(),
                got: resp.status().as_u16(),
                want: WantStatus::Success,
            });
        }
        let body = resp.text().await.map_err(classify)?;
        Ok(match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(m)) => m
                .get("release")
                .and_then(|r| r.as_str())
                .map(str::to_string),
            _ => Some(body.trim().to_string()).filter(|b| !b.is_empty()),
        })
    }

    /// The release an endpoint reports at `health.release_path`: the body's
    /// `release` field when it is JSON, otherwise the trimmed body. `None`
    /// when `release_path` is not set, or the endpoint does not say.
    pub async fn reported_release(&self, endpoint: &str, health: &Health) -> Option<String> {
        let url = release_url(endpoint, health)?;
        let client = self.client(health).ok()?;
        Self::fetch_release(&client, &url, health).await.ok()?
    }

    /// Whether every URL passes once (used by refresh for environments that
    /// something else deploys).
    pub async fn passes_once(&self, endpoints: &[String], health: &Health) -> bool {
        let Ok(client) = self.client(health) else {
            return false;
        };
        for url in check_urls(endpoints, health) {
            if Self::probe(&client, &url, health).await.is_err() {
                return false;
            }
        }
        true
    }

    /// The shared client that trusts the system's CAs alone, for cutover's
    /// other HTTP reads (an analysis's Prometheus queries): they reuse its
    /// kept-alive connections instead of building a client each.
    pub fn http_client(&self) -> Result<reqwest::Client, ClientError> {
        self.clients.get(None)
    }

    /// The shared client for `health`'s CA set.
    fn client(&self, health: &Health) -> Result<reqwest::Client, ClientError> {
        self.clients.get(health.ca_file.as_deref())
    }

    /// One round of a gate: every URL, then (when `release_path` is set and
    /// a release is expected) the release of every endpoint.
    async fn round(
        client: &reqwest::Client,
        urls: &[String],
        endpoints: &[String],
        health: &Health,
        expected_release: Option<&str>,
    ) -> Result<(), ProbeFailure> {
        for url in urls {
            Self::probe(client, url, health).await?;
        }
        let Some(want) = expected_release else {
            return Ok(());
        };
        for endpoint in endpoints {
            let Some(url) = release_url(endpoint, health) else {
                return Ok(());
            };
            let got = Self::fetch_release(client, &url, health).await?;
            if got.as_deref() != Some(want) {
                return Err(ProbeFailure::Release {
                    url,
                    got,
                    want: want.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Wait until every URL answers the expected status `health.successes`
    /// rounds in a row (and, when `release_path` is set, reports
    /// `expected_release`), or fail after `health.timeout`.
    pub async fn gate(
        &self,
        subject: &Address,
        endpoints: &[String],
        health: &Health,
        expected_release: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<(), GateError> {
        let check = (endpoints, health);
        self.gate_shown(subject, check, check, expected_release, observer)
            .await
    }

    /// [`HealthChecker::gate`] of `check` (endpoints and check), whose
    /// progress and errors name the URLs of `shown`: the same check with its
    /// sensitive parts as markers (plan::sensitive), URL for URL.
    pub async fn gate_shown(
        &self,
        subject: &Address,
        (endpoints, health): (&[String], &Health),
        shown: (&[String], &Health),
        expected_release: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<(), GateError> {
        let client = self.client(health).map_err(|source| GateError::Client {
            subject: subject.clone(),
            source,
        })?;
        let urls = check_urls(endpoints, health);
        let shown_urls = check_urls(shown.0, shown.1);
        // What a probe says names the real URL it asked: say the shown one.
        let show = |text: String| {
            if shown_urls == urls || shown_urls.len() != urls.len() {
                return text;
            }
            urls.iter()
                .zip(&shown_urls)
                .fold(text, |t, (real, shown)| t.replace(real.as_str(), shown))
        };
        let waiting_for = format!(
            "{} -> {}{}",
            shown_urls
                .iter()
                .map(|u| format!("GET {u}"))
                .collect::<Vec<_>>()
                .join(", "),
            health.status,
            if health.successes > 1 {
                format!(", {} times in a row", health.successes)
            } else {
                String::new()
            }
        );
        let start = Instant::now();
        let mut streak = 0;
        let mut last_failure = None;
        let mut last;
        loop {
            match Self::round(&client, &urls, endpoints, health, expected_release).await {
                Ok(()) => {
                    streak += 1;
                    if streak >= health.successes {
                        return Ok(());
                    }
                    last = format!("{streak} of {} successes", health.successes);
                }
                Err(failure) => {
                    streak = 0;
                    last = show(failure.to_string());
                    last_failure = Some(failure);
                }
            }
            let elapsed = start.elapsed();
            if elapsed + health.interval > health.timeout {
                return Err(GateError::NotPassed {
                    subject: subject.clone(),
                    timeout: health.timeout,
                    waiting_for,
                    last,
                    last_failure,
                });
            }
            observer.event(&Event::HealthWaiting {
                subject: subject.clone(),
                waiting_for: waiting_for.clone(),
                last: last.clone(),
                remaining: health.timeout.saturating_sub(elapsed),
            });
            tokio::time::sleep(health.interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{ca_file, quick_health, TestCa, TestServer};
    use super::*;
    use crate::engine::observer::Silent;

    #[tokio::test]
    async fn an_https_gate_passes_with_its_ca_file_and_checks_the_release() {
        let ca = TestCa::new("test CA");
        let server = TestServer::tls(&ca.leaf(&["127.0.0.1"]), "2.0").await;
        let (_dir, path) = ca_file(&ca);
        let health = Health {
            ca_file: Some(path),
            release_path: Some(server.url("https", "127.0.0.1", "/version")),
            ..quick_health(server.url("https", "127.0.0.1", "/healthz"))
        };
        let checker = HealthChecker::default();
        let endpoints = [format!("127.0.0.1:{}", server.port)];
        checker
            .gate(
                &Address::environment("green"),
                &endpoints,
                &health,
                Some("2.0"),
                &Silent,
            )
            .await
            .unwrap();
        let short = Health {
            timeout: Duration::from_millis(300),
            ..health
        };
        let err = checker
            .gate(
                &Address::environment("green"),
                &endpoints,
                &short,
                Some("3.0"),
                &Silent,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "release");
        assert!(
            err.to_string()
                .ends_with("/version reports release 2.0 (want 3.0)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_https_gate_without_the_ca_fails_with_kind_tls() {
        let ca = TestCa::new("test CA");
        let server = TestServer::tls(&ca.leaf(&["127.0.0.1"]), "1").await;
        let url = server.url("https", "127.0.0.1", "/healthz");
        let health = Health {
            timeout: Duration::from_millis(300),
            ..quick_health(url.clone())
        };
        let err = HealthChecker::default()
            .gate(&Address::environment("green"), &[], &health, None, &Silent)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "tls");
        assert!(matches!(
            err.last_failure(),
            Some(ProbeFailure::Tls {
                reason: TlsFailure::UnknownIssuer,
                ..
            })
        ));
        let text = String::from(err);
        assert!(
            text.starts_with(&format!(
                "environment.green did not pass its health check within 300ms: waited for GET {url} -> 200; last: {url}: TLS: unknown issuer"
            )),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_https_gate_on_a_certificate_for_another_name_fails_with_kind_tls() {
        let ca = TestCa::new("test CA");
        let server = TestServer::tls(&ca.leaf(&["localhost"]), "1").await;
        let (_dir, path) = ca_file(&ca);
        let health = Health {
            ca_file: Some(path),
            timeout: Duration::from_millis(300),
            ..quick_health(server.url("https", "127.0.0.1", "/healthz"))
        };
        let err = HealthChecker::default()
            .gate(&Address::environment("green"), &[], &health, None, &Silent)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "tls");
        assert!(
            matches!(
                err.last_failure(),
                Some(ProbeFailure::Tls {
                    reason: TlsFailure::NameMismatch { .. },
                    ..
                })
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_gate_that_never_fails_but_runs_out_of_time_says_so() {
        let server = TestServer::plain("1").await;
        let health = Health {
            successes: 1000,
            timeout: Duration::from_millis(100),
            ..quick_health(server.url("http", "127.0.0.1", "/healthz"))
        };
        let err = HealthChecker::default()
            .gate(&Address::environment("green"), &[], &health, None, &Silent)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "too_few_successes");
        assert!(err.last_failure().is_none());
        assert!(err.to_string().contains(" of 1000 successes"), "{err}");
    }

    #[tokio::test]
    async fn one_client_per_distinct_ca_file_shared_by_every_gate_and_clone() {
        let (ca, other) = (TestCa::new("one"), TestCa::new("other"));
        let server = TestServer::tls(&ca.leaf(&["127.0.0.1"]), "1").await;
        let (_dir, path) = ca_file(&ca);
        let (_other_dir, other_path) = ca_file(&other);
        let url = server.url("https", "127.0.0.1", "/healthz");
        let trusted = Health {
            ca_file: Some(path),
            ..quick_health(url.clone())
        };
        let checker = HealthChecker::default();
        assert_eq!(checker.clients.built(), 0, "nothing is built before use");
        for copy in [checker.clone(), checker.clone(), checker.clone()] {
            copy.gate(&Address::environment("green"), &[], &trusted, None, &Silent)
                .await
                .unwrap();
        }
        assert!(checker.passes_once(&[], &trusted).await);
        assert_eq!(checker.clients.built(), 1);
        let untrusted = Health {
            ca_file: Some(other_path),
            ..quick_health(url.clone())
        };
        assert!(!checker.passes_once(&[], &untrusted).await);
        assert!(!checker.passes_once(&[], &quick_health(url)).await);
        assert_eq!(checker.clients.built(), 3);
    }

    #[tokio::test]
    async fn a_ca_file_gone_since_the_config_was_loaded_fails_the_gate_at_once() {
        let ca = TestCa::new("test CA");
        let (dir, path) = ca_file(&ca);
        drop(dir);
        let health = Health {
            ca_file: Some(path.clone()),
            timeout: Duration::from_secs(30),
            ..quick_health("https://127.0.0.1:1/".into())
        };
        let started = Instant::now();
        let err = HealthChecker::default()
            .gate(&Address::environment("green"), &[], &health, None, &Silent)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(err.kind(), "ca_file");
        assert!(
            err.to_string().starts_with(&format!(
                "environment.green: cannot run its check: `ca_file` {}: cannot read it: ",
                path.display()
            )),
            "{err}"
        );
    }
}
