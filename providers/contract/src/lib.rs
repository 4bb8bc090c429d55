//! The provider contract of cutover.
//!
//! cutover's core never talks to a router or a process manager itself: it hands
//! a provider a description of what it wants ([`EnvironmentSpec`], [`RouterSpec`])
//! and gets back what is live ([`LiveEnvironment`], [`LiveRouter`]). Providers
//! depend on this crate alone, never on the core, so a new backend is one new
//! crate that implements [`EnvironmentProvider`] or [`RouterProvider`].
//!
//! Settings of a backend block (`haproxy { ... }`, `process { ... }`) reach the
//! provider as the block's evaluated body, a JSON object; [`parse_settings`]
//! turns it into the provider's own typed settings and reports an unknown or
//! ill-typed field by name so that the core can point at it in the source.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod colours;
mod error;
mod live;

pub use colours::{Colour, Colours};
pub use error::{BoxError, ErrorKind, ProviderError};
pub use live::{
    EnvironmentDrift, EnvironmentDriftKind, LiveEnvironment, LiveRouter, RouterDrift,
    RouterDriftKind,
};

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
        ProviderError::settings(field, format!("in `{kind}` block: {inner}"))
    })
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

/// What cutover wants of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentSpec {
    /// The environment's name (its colour), e.g. `green`.
    pub name: String,
    /// The release it should run.
    pub release: String,
    /// The addresses (`host:port`) it serves on.
    pub endpoints: Vec<String>,
    /// The evaluated body of the backend block (`process {}`, `exec {}`).
    pub settings: Value,
    /// The directory relative paths in the settings are resolved against
    /// (the configuration directory).
    pub workdir: PathBuf,
}

/// The outcome of deploying an environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    /// The identity of what now runs.
    pub identity: Option<String>,
    /// Provider-private data to keep in the state.
    pub private: Value,
}

/// A backend that runs environments: `process {}`, `exec {}`.
#[async_trait::async_trait]
pub trait EnvironmentProvider: Send + Sync {
    /// Check the settings without touching anything live.
    fn validate(&self, settings: &Value) -> Result<(), ProviderError>;

    /// Read what is live. `private` is what the last deploy returned (from the
    /// state), or `Value::Null` when cutover has never deployed it.
    async fn read(
        &self,
        spec: &EnvironmentSpec,
        private: &Value,
    ) -> Result<LiveEnvironment, ProviderError>;

    /// Make the environment run `spec` (create it, or replace what runs).
    async fn deploy(
        &self,
        spec: &EnvironmentSpec,
        private: &Value,
    ) -> Result<Deployed, ProviderError>;

    /// Remove the environment. `spec` is the last one deployed.
    async fn destroy(&self, spec: &EnvironmentSpec, private: &Value) -> Result<(), ProviderError>;
}

/// What cutover wants of one router.
///
/// Its fields are private so that its colours are always a [`Colours`]
/// (sorted, shared): build it with [`RouterSpec::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterSpec {
    name: String,
    colours: Colours,
    settings: Value,
    workdir: PathBuf,
}

impl RouterSpec {
    /// The spec of router `name`: the colours it may send traffic to, the
    /// evaluated body of its backend block, and the directory relative paths
    /// in the settings are resolved against.
    pub fn new(
        name: impl Into<String>,
        colours: Colours,
        settings: Value,
        workdir: impl Into<PathBuf>,
    ) -> Self {
        RouterSpec {
            name: name.into(),
            colours,
            settings,
            workdir: workdir.into(),
        }
    }

    /// The router's name, e.g. `public`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every colour the router may send traffic to, so that a provider can
    /// translate what it reads back into a colour name. Shared by every
    /// router of a refresh: look a colour up ([`Colours::get`],
    /// [`Colours::serving_on`]), never scan it per router.
    pub fn colours(&self) -> &Colours {
        &self.colours
    }

    /// The colour named `name` (a binary search of [`RouterSpec::colours`]).
    pub fn colour(&self, name: &str) -> Option<&Colour> {
        self.colours.get(name)
    }

    /// The evaluated body of the backend block (`haproxy {}`, `exec {}`).
    pub fn settings(&self) -> &Value {
        &self.settings
    }

    /// The directory relative paths in the settings are resolved against
    /// (the configuration directory).
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }
}

/// A backend that routes live traffic: `haproxy {}`, `exec {}`, ...
#[async_trait::async_trait]
pub trait RouterProvider: Send + Sync {
    /// Check the settings without touching anything live.
    fn validate(&self, settings: &Value) -> Result<(), ProviderError>;

    /// Read the live colour from the router itself.
    async fn read(&self, spec: &RouterSpec) -> Result<LiveRouter, ProviderError>;

    /// Check, without changing anything, that the router could send traffic to
    /// `target` (its backend exists, the router sees its servers up).
    async fn preflight(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError>;

    /// Send all live traffic to `target`, make the switch survive a reload of
    /// the router, and confirm it by reading back.
    async fn switch(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError>;

    /// Point the router's preview listener or route at `target` (or remove it
    /// with `None`), never touching live traffic. Backends without a preview
    /// refuse.
    async fn set_preview(
        &self,
        spec: &RouterSpec,
        target: Option<&Colour>,
    ) -> Result<(), ProviderError> {
        let _ = (spec, target);
        Err(ProviderError::refused(
            "this router backend has no preview listener",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
