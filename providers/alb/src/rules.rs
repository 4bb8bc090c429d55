//! A listener's rules, as `DescribeRules` gives them: the default rule
//! (the listener's default actions), the rule a router switches, and the
//! preview rules — every read cutover makes of a listener is this one call.
//!
//! Routers that share a listener (one rule each) and read at once share one
//! call ([`shared`]): a refresh of N such routers asks AWS once, not N
//! times. A read that must see a change just made (a switch's read back)
//! makes its own ([`fresh`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_elasticloadbalancingv2::types::Rule;
use aws_sdk_elasticloadbalancingv2::Client;
use cutover_provider::ProviderError;
use tokio::sync::OnceCell;

use crate::error::from_sdk;
use crate::settings::Resolved;

/// A listener has at most a few hundred rules (AWS's quota is 100 by
/// default); more pages than this is a reply that does not end.
const MAX_PAGES: usize = 100;

/// The listener's rules, read now.
pub(crate) async fn fresh(client: &Client, config: &Resolved) -> Result<Vec<Rule>, ProviderError> {
    let mut rules = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .describe_rules()
            .listener_arn(&config.listener_arn)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| from_sdk("DescribeRules", config, e))?;
        rules.extend(page.rules().iter().cloned());
        match page.next_marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => return Ok(rules),
        }
    }
    Err(ProviderError::failed(format!(
        "DescribeRules of listener {} for router `{}` gave more than {MAX_PAGES} pages",
        crate::arn::short(&config.listener_arn),
        config.router
    )))
}

type Flight = Arc<OnceCell<Option<Arc<Vec<Rule>>>>>;

/// The listener's rules, read by one call shared with the reads of the same
/// listener (through the same client settings) in flight now. A reader
/// that joins a call which failed makes its own, so that every error it
/// returns is its own.
pub(crate) async fn shared(
    client: &Client,
    config: &Resolved,
) -> Result<Arc<Vec<Rule>>, ProviderError> {
    static FLIGHTS: OnceLock<Mutex<HashMap<String, Flight>>> = OnceLock::new();
    let flights = FLIGHTS.get_or_init(Default::default);
    let key = format!(
        "{}|{}",
        config.listener_arn,
        config.endpoint_url.as_deref().unwrap_or("")
    );
    let flight: Flight = lock(flights).entry(key.clone()).or_default().clone();
    let mut own: Option<ProviderError> = None;
    let got = flight
        .get_or_init(|| async {
            match fresh(client, config).await {
                Ok(rules) => Some(Arc::new(rules)),
                Err(e) => {
                    own = Some(e);
                    None
                }
            }
        })
        .await
        .clone();
    {
        let mut flights = lock(flights);
        if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            flights.remove(&key);
        }
    }
    match (got, own) {
        (Some(rules), _) => Ok(rules),
        (None, Some(e)) => Err(e),
        (None, None) => fresh(client, config).await.map(Arc::new),
    }
}

/// The turn to create a rule on `listener`: two routers of one listener
/// creating their preview rules at once would pick the same free priority,
/// so within this process they take turns, from the read of the rules to
/// the read back.
pub(crate) fn turn(listener: &str) -> Arc<tokio::sync::Mutex<()>> {
    static TURNS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    lock(TURNS.get_or_init(Default::default))
        .entry(listener.to_string())
        .or_default()
        .clone()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
