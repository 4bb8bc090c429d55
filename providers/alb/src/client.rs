//! The Elastic Load Balancing client of a router: the AWS SDK for Rust,
//! configured from the block's settings, made once per process for each
//! distinct (region, endpoint, timeout, attempts) and shared by every router
//! that has them, so that credentials are resolved once and connections
//! are reused.
//!
//! - Credentials: the SDK's standard chain (`aws-config`): environment
//!   variables, the shared config and credentials files (profiles, SSO,
//!   `credential_process`), web identity, ECS and EC2 instance roles.
//!   Nothing of them is in the block.
//! - HTTPS: rustls with `ring` and the operating system's trust store, as
//!   the rest of cutover (no aws-lc-rs build).
//! - Retries: the SDK's standard mode (throttling and transient errors,
//!   exponential backoff with jitter, 200 ms up to 5 s), at most
//!   `max_attempts` attempts per call.
//! - Time: each attempt within `timeout` (the connect too), the whole call
//!   within `timeout` x attempts plus the backoffs between them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_elasticloadbalancingv2::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use tokio::sync::OnceCell;

use crate::settings::Resolved;

/// The first backoff between attempts; it doubles, with jitter.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

type Key = (String, Option<String>, Duration, u32);

/// The client for `config`, made on first use.
pub(crate) async fn client(config: &Resolved) -> Client {
    static CLIENTS: OnceLock<Mutex<HashMap<Key, Arc<OnceCell<Client>>>>> = OnceLock::new();
    let key: Key = (
        config.region.clone(),
        config.endpoint_url.clone(),
        config.timeout,
        config.max_attempts,
    );
    let cell = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key)
        .or_default()
        .clone();
    cell.get_or_init(|| make(config)).await.clone()
}

/// The most one call may take: every attempt at its timeout, and the
/// longest backoff between each two.
pub(crate) fn call_bound(config: &Resolved) -> Duration {
    config.timeout * config.max_attempts + MAX_BACKOFF * config.max_attempts.saturating_sub(1)
}

async fn make(config: &Resolved) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let retry = RetryConfig::standard()
        .with_max_attempts(config.max_attempts)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.timeout)
        .operation_attempt_timeout(config.timeout)
        .operation_timeout(call_bound(config))
        .build();
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .http_client(http)
        .retry_config(retry)
        .timeout_config(timeouts)
        .load()
        .await;
    let mut elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(&shared);
    if let Some(url) = &config.endpoint_url {
        // Only the load balancer's calls go there: credentials (STS, SSO)
        // keep their own endpoints.
        elb = elb.endpoint_url(url);
    }
    Client::from_conf(elb.build())
}
