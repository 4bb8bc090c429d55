//! The settings of an `exec { ... }` block, for an environment and for a router.
//!
//! Both kinds share the way a command and its timeout are written; which
//! commands are required differs, so each has its own type and unknown
//! attributes are refused by name.

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_provider::{parse_settings, ProviderError};
use serde::Deserialize;
use serde_json::Value;

/// How long a command may run when `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The `exec { ... }` block of an environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvironmentSettings {
    /// Makes the environment run the wanted release.
    #[serde(deserialize_with = "cutover_provider::lenient::strings")]
    pub deploy: Vec<String>,
    /// Reports what runs.
    #[serde(deserialize_with = "cutover_provider::lenient::strings")]
    pub read: Vec<String>,
    /// Removes the environment.
    pub destroy: Option<Vec<String>>,
    /// How long each command may run, e.g. `"60s"`.
    pub timeout: Option<String>,
    /// Extra environment variables for every command.
    #[serde(default, deserialize_with = "cutover_provider::lenient::string_map")]
    pub env: BTreeMap<String, String>,
}

/// The `exec { ... }` block of a router.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouterSettings {
    /// Reports the live colour.
    #[serde(deserialize_with = "cutover_provider::lenient::strings")]
    pub read: Vec<String>,
    /// Sends live traffic to a colour.
    #[serde(deserialize_with = "cutover_provider::lenient::strings")]
    pub switch: Vec<String>,
    /// Checks, changing nothing, that a switch to a colour could succeed.
    pub check: Option<Vec<String>>,
    /// How long each command may run, e.g. `"60s"`.
    pub timeout: Option<String>,
    /// Extra environment variables for every command.
    #[serde(default, deserialize_with = "cutover_provider::lenient::string_map")]
    pub env: BTreeMap<String, String>,
}

impl EnvironmentSettings {
    /// Parse and check an environment's `exec` block; returns the settings and
    /// the timeout.
    pub fn parse(body: &Value) -> Result<(Self, Duration), ProviderError> {
        let s: Self = parse_settings("exec", body)?;
        check_command("deploy", &s.deploy)?;
        check_command("read", &s.read)?;
        if let Some(destroy) = &s.destroy {
            check_command("destroy", destroy)?;
        }
        let timeout = timeout(s.timeout.as_deref())?;
        Ok((s, timeout))
    }
}

impl RouterSettings {
    /// Parse and check a router's `exec` block; returns the settings and the
    /// timeout.
    pub fn parse(body: &Value) -> Result<(Self, Duration), ProviderError> {
        let s: Self = parse_settings("exec", body)?;
        check_command("read", &s.read)?;
        check_command("switch", &s.switch)?;
        if let Some(check) = &s.check {
            check_command("check", check)?;
        }
        let timeout = timeout(s.timeout.as_deref())?;
        Ok((s, timeout))
    }
}

/// A command must name a program.
fn check_command(field: &str, command: &[String]) -> Result<(), ProviderError> {
    if command.first().is_some_and(|program| !program.is_empty()) {
        return Ok(());
    }
    Err(settings_error(
        field,
        &format!("`{field}` must name a program, e.g. {field} = [\"./{field}.sh\"]"),
    ))
}

fn timeout(text: Option<&str>) -> Result<Duration, ProviderError> {
    match text {
        None => Ok(DEFAULT_TIMEOUT),
        Some(text) => match parse_duration(text) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(settings_error(
                "timeout",
                "`timeout` must be longer than zero",
            )),
            Err(e) => Err(settings_error("timeout", &e)),
        },
    }
}

fn settings_error(field: &str, message: &str) -> ProviderError {
    ProviderError::settings(
        Some(field.to_string()),
        format!("in `exec` block: {message}"),
    )
}

/// Parse a duration such as `60s`, `500ms`, `2m` or `1m30s`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    cutover_provider::parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env_field(body: Value) -> Option<String> {
        match EnvironmentSettings::parse(&body) {
            Err(e) if e.kind() == cutover_provider::ErrorKind::Settings => {
                e.field().map(str::to_string)
            }
            other => panic!("expected a settings error, got {other:?}"),
        }
    }

    fn router_field(body: Value) -> Option<String> {
        match RouterSettings::parse(&body) {
            Err(e) if e.kind() == cutover_provider::ErrorKind::Settings => {
                e.field().map(str::to_string)
            }
            other => panic!("expected a settings error, got {other:?}"),
        }
    }

    #[test]
    fn environment_settings() {
        let (s, timeout) =
            EnvironmentSettings::parse(&json!({"deploy": ["d"], "read": ["r"]})).unwrap();
        assert_eq!(timeout, DEFAULT_TIMEOUT);
        assert!(s.destroy.is_none());
        assert_eq!(env_field(json!({"read": ["r"]})).as_deref(), Some("deploy"));
        assert_eq!(
            env_field(json!({"deploy": [], "read": ["r"]})).as_deref(),
            Some("deploy")
        );
        assert_eq!(
            env_field(json!({"deploy": ["d"], "read": ["r"], "switch": ["s"]})).as_deref(),
            Some("switch")
        );
        assert_eq!(
            env_field(json!({"deploy": ["d"], "read": ["r"], "timeout": "1 minute"})).as_deref(),
            Some("timeout")
        );
        assert_eq!(
            env_field(json!({"deploy": ["d"], "read": ["r"], "timeout": "0s"})).as_deref(),
            Some("timeout")
        );
    }

    #[test]
    fn router_settings() {
        let (_, timeout) =
            RouterSettings::parse(&json!({"read": ["r"], "switch": ["s"], "timeout": "5s"}))
                .unwrap();
        assert_eq!(timeout, Duration::from_secs(5));
        assert_eq!(
            router_field(json!({"read": ["r"]})).as_deref(),
            Some("switch")
        );
        assert_eq!(
            router_field(json!({"read": ["r"], "switch": ["s"], "check": [""]})).as_deref(),
            Some("check")
        );
        assert_eq!(
            router_field(json!({"read": ["r"], "switch": ["s"], "deploy": ["d"]})).as_deref(),
            Some("deploy")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("").is_err());
    }
}
