//! Health gates: cutover's own HTTP checks that a colour must pass before a
//! router may send it traffic (DESIGN.md §3, rule 2).

use std::time::{Duration, Instant};

use crate::config::model::Health;

use super::observer::{Event, Observer};

/// Runs health checks over one shared HTTP client (connections are reused).
#[derive(Debug, Clone)]
pub struct HealthChecker {
    client: reqwest::Client,
}

impl Default for HealthChecker {
    fn default() -> Self {
        HealthChecker {
            client: reqwest::Client::builder()
                .no_proxy()
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .expect("a plain HTTP client always builds"),
        }
    }
}

/// The URLs a check requests for an environment.
pub fn check_urls(endpoints: &[String], health: &Health) -> Vec<String> {
    match &health.url {
        Some(url) => vec![url.clone()],
        None => endpoints
            .iter()
            .map(|e| format!("http://{e}{}", health.path))
            .collect(),
    }
}

impl HealthChecker {
    /// One request; `Ok(())` when the status is the expected one, otherwise
    /// what was seen.
    async fn probe(&self, url: &str, health: &Health) -> Result<(), String> {
        match self
            .client
            .get(url)
            .timeout(health.request_timeout)
            .send()
            .await
        {
            Ok(resp) if resp.status().as_u16() == health.status => Ok(()),
            Ok(resp) => Err(format!("{url} answered {}", resp.status().as_u16())),
            Err(e) if e.is_timeout() => Err(format!(
                "{url} did not answer within {:?}",
                health.request_timeout
            )),
            Err(e) if e.is_connect() => Err(format!("{url}: connection refused or unreachable")),
            Err(e) => Err(format!("{url}: {e}")),
        }
    }

    /// The release an endpoint reports at `health.release_path`: the body's
    /// `release` field when it is JSON, otherwise the trimmed body.
    pub async fn reported_release(&self, endpoint: &str, health: &Health) -> Option<String> {
        let path = health.release_path.as_ref()?;
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.clone()
        } else {
            format!("http://{endpoint}{path}")
        };
        let resp = self
            .client
            .get(&url)
            .timeout(health.request_timeout)
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let body = resp.text().await.ok()?;
        match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(m)) => m
                .get("release")
                .and_then(|r| r.as_str())
                .map(str::to_string),
            _ => Some(body.trim().to_string()),
        }
    }

    /// Whether every URL passes once (used by refresh for environments that
    /// something else deploys).
    pub async fn passes_once(&self, endpoints: &[String], health: &Health) -> bool {
        for url in check_urls(endpoints, health) {
            if self.probe(&url, health).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Wait until every URL answers the expected status `health.successes`
    /// rounds in a row (and, when `release_path` is set, reports
    /// `expected_release`), or fail after `health.timeout`.
    pub async fn gate(
        &self,
        environment: &str,
        endpoints: &[String],
        health: &Health,
        expected_release: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<(), String> {
        let urls = check_urls(endpoints, health);
        let waiting_for = format!(
            "{} -> {}{}",
            urls.iter()
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
        let mut last;
        loop {
            let mut failure = None;
            for url in &urls {
                if let Err(e) = self.probe(url, health).await {
                    failure = Some(e);
                    break;
                }
            }
            if failure.is_none() && health.release_path.is_some() {
                if let Some(want) = expected_release {
                    for e in endpoints {
                        let got = self.reported_release(e, health).await;
                        if got.as_deref() != Some(want) {
                            failure = Some(format!(
                                "{e} reports release {} (want {want})",
                                got.as_deref().unwrap_or("nothing")
                            ));
                            break;
                        }
                    }
                }
            }
            match failure {
                None => {
                    streak += 1;
                    if streak >= health.successes {
                        return Ok(());
                    }
                    last = format!("{streak} of {} successes", health.successes);
                }
                Some(e) => {
                    streak = 0;
                    last = e;
                }
            }
            let elapsed = start.elapsed();
            if elapsed + health.interval > health.timeout {
                return Err(format!(
                    "environment.{environment} did not pass its health check within {:?}: waited for {waiting_for}; last: {last}",
                    health.timeout
                ));
            }
            observer.event(&Event::HealthWaiting {
                environment: environment.to_string(),
                waiting_for: waiting_for.clone(),
                last: last.clone(),
                remaining: health.timeout.saturating_sub(elapsed),
            });
            tokio::time::sleep(health.interval).await;
        }
    }
}
