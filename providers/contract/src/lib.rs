//! The provider contract of cutover: what every backend must guarantee, and
//! the types it exchanges with the core.
//!
//! cutover's core never talks to a router or a process manager itself: it
//! hands a provider what it wants ([`EnvironmentSpec`], [`RouterSpec`]) and
//! gets back what is live ([`LiveEnvironment`], [`LiveRouter`]) or a
//! [`ProviderError`] whose [`ErrorKind`] says what the engine may do next.
//! Providers depend on this crate alone, never on the core, so a new backend
//! is one crate that implements [`RouterProvider`] or [`EnvironmentProvider`]
//! plus one line in the core's registry (docs/providers.md).
//!
//! The engine relies on these guarantees; each trait method's docs say which
//! it must keep. In short, for a router:
//!
//! - [`RouterProvider::read`] and [`RouterProvider::preflight`] change
//!   nothing;
//! - `preflight` says ready, [`NotReady`](ErrorKind::NotReady) (the router's
//!   own health check has not yet seen the target up: the engine asks again)
//!   or [`Refused`](ErrorKind::Refused) (waiting will not help);
//! - [`RouterProvider::switch`] is safe alone (checks as `preflight` does),
//!   idempotent (to the live colour: success, and drift repaired), free of
//!   direction (it is also the switch back), confirmed by reading back,
//!   bounded in time (every exchange has a timeout), and safe to run
//!   concurrently for routers that share one load balancer;
//! - [`RouterProvider::open_sessions`], where a backend can count them
//!   ([`RouterProvider::counts_sessions`]), says how many sessions a colour
//!   still has open, changing nothing (a drain waits for it to reach 0).
//!
//! A router of several instances of one load balancer (`instances = [...]`
//! in the block) is a [`Fleet`] of the single-instance provider, which
//! keeps that contract for the whole fleet: one switch, all or nothing.
//!
//! For an environment: [`EnvironmentProvider::read`] changes nothing,
//! [`EnvironmentProvider::deploy`] converges when run again,
//! [`EnvironmentProvider::destroy`] of what is already gone succeeds, all
//! bounded in time.
//!
//! Settings of a backend block (`haproxy { ... }`, `process { ... }`) reach
//! the provider as the block's evaluated body, a JSON object;
//! [`parse_settings`] turns it into the provider's own typed settings and
//! reports an unknown or ill-typed field by name, so that the core can point
//! at it in the source.
#![deny(missing_docs)]

use serde::de::DeserializeOwned;
use serde_json::Value;

pub mod atomic;
mod colours;
mod environment;
mod error;
mod fleet;
pub mod lenient;
mod live;
pub mod name;
mod router;
mod spec;

pub use colours::{Colour, Colours};
pub use environment::EnvironmentProvider;
pub use error::{BoxError, ErrorKind, ProviderError};
pub use fleet::{Fleet, FleetMember, InstanceSwitch};
pub use live::{
    DrainFloor, EnvironmentDrift, EnvironmentDriftKind, LiveEnvironment, LiveInstance, LiveRouter,
    RouterDrift, RouterDriftKind,
};
pub use router::RouterProvider;
pub use spec::{Deployed, EnvironmentSpec, RouterSpec, Sensitive};

/// Deserialize a backend block's evaluated body into a provider's settings.
///
/// The settings type should use `#[serde(deny_unknown_fields)]`; the error
/// then names the unknown or ill-typed field so the core can point at it.
pub fn parse_settings<T: DeserializeOwned>(kind: &str, body: &Value) -> Result<T, ProviderError> {
    serde_path_to_error::deserialize(body.clone()).map_err(|e| {
        // The path names the attribute at fault for a wrong type
        // (`timeout`, `backends.green`); for an unknown or missing field
        // serde names it between backticks in the message instead.
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        let named = inner.split('`').nth(1).map(str::to_string);
        let top = path.is_empty() || path == ".";
        let field = if inner.starts_with("missing field") {
            // The path is the object that lacks the field.
            named.map(|f| if top { f } else { format!("{path}.{f}") })
        } else if top {
            named
        } else {
            Some(path.clone())
        };
        let hint = did_you_mean(&inner).map_or(String::new(), |h| format!("; {h}"));
        ProviderError::settings(field, format!("in `{kind}` block: {inner}{hint}"))
    })
}

/// "did you mean `socket`?" for serde's "unknown field `sockett`, expected
/// one of `socket`, ..." (or "expected `socket`"), when one is near.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected")?.1;
    let nearest = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|name| {
            // A swap of two letters is one edit (`kye`), as is a letter too
            // many (`sockett`).
            let edits = strsim::damerau_levenshtein(unknown, name);
            let close = strsim::jaro_winkler(unknown, name) > 0.8 || edits <= 1;
            (close, std::cmp::Reverse(edits), name)
        })
        .filter(|(close, _, _)| *close)
        .max()?;
    Some(format!("did you mean `{}`?", nearest.2))
}

/// Parse a duration as every block of cutover writes them: one or more
/// number-unit pairs, the units being `ms`, `s`, `m` and `h` (`"500ms"`,
/// `"1.5s"`, `"1m30s"`). One parser for the config layer and every provider,
/// so a duration means the same everywhere. The error completes a sentence
/// that starts with the attribute's name.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let invalid = || format!("is not a valid duration: \"{text}\"");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("has no unit: \"{text}\"")),
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

#[cfg(test)]
mod did_you_mean_tests {
    #[test]
    fn a_near_field_is_suggested_and_a_far_one_is_not() {
        let m = "unknown field `sockett`, expected one of `socket`, `address`, `map`";
        assert_eq!(
            super::did_you_mean(m).as_deref(),
            Some("did you mean `socket`?")
        );
        let m = "unknown field `kye`, expected `key`";
        assert_eq!(
            super::did_you_mean(m).as_deref(),
            Some("did you mean `key`?")
        );
        let m = "unknown field `zzz`, expected one of `socket`, `address`";
        assert_eq!(super::did_you_mean(m), None);
        assert_eq!(super::did_you_mean("missing field `map`"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        socket: String,
    }

    #[test]
    fn parse_settings_names_unknown_field() {
        let err =
            parse_settings::<Demo>("haproxy", &serde_json::json!({"socket": "s", "sockt": 1}))
                .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Settings);
        assert_eq!(err.field(), Some("sockt"));
        assert!(err.message().contains("haproxy"), "{err}");
    }

    #[test]
    fn durations_are_parsed_alike_everywhere() {
        use std::time::Duration;
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "10", "10 s", "1d", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parse_settings_names_ill_typed_field() {
        let err =
            parse_settings::<Demo>("haproxy", &serde_json::json!({"socket": 2019})).unwrap_err();
        assert_eq!(
            (err.kind(), err.field()),
            (ErrorKind::Settings, Some("socket"))
        );
    }

    #[test]
    fn parse_settings_names_missing_field() {
        let err = parse_settings::<Demo>("haproxy", &serde_json::json!({})).unwrap_err();
        assert_eq!(
            (err.kind(), err.field()),
            (ErrorKind::Settings, Some("socket"))
        );
    }
}
