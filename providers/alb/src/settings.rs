//! The `aws_alb { ... }` block: its fields, their defaults and their checks.
//!
//! Parsed once into [`Settings`] (what the operator wrote), then resolved
//! for a router into [`Resolved`] (defaults filled in, the region taken
//! from the listener's ARN), so that the rest of the crate never deals with
//! defaults. Everything here is checked without I/O: `validate` runs it.

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_provider::{name, parse_settings, Colour, ProviderError, RouterSpec};
use serde::Deserialize;
use serde_json::Value;

use crate::arn::{self, Kind};

/// Each attempt of an AWS call when `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of one AWS call (the first and its retries) when
/// `max_attempts` is not set.
const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// The header the preview rule matches when `preview_header` is not set.
const DEFAULT_PREVIEW_HEADER: &str = "X-Cutover-Preview";

/// The body of an `aws_alb { ... }` block, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    listener_arn: String,
    rule_arn: Option<String>,
    target_groups: BTreeMap<String, String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    preview_header: Option<String>,
    preview_header_value: Option<String>,
    preview_priority: Option<u32>,
    timeout: Option<String>,
    max_attempts: Option<u32>,
}

/// Settings resolved for one router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The router's name, for messages.
    pub router: String,
    pub listener_arn: String,
    /// The listener rule switched instead of the listener's default action.
    pub rule_arn: Option<String>,
    /// Colour name -> target group ARN.
    pub target_groups: BTreeMap<String, String>,
    pub region: String,
    pub endpoint_url: Option<String>,
    /// The preview rule's `http-header` condition: header name and value.
    pub preview_header: String,
    pub preview_value: String,
    pub preview_priority: Option<u32>,
    /// Of each attempt of an AWS call.
    pub timeout: Duration,
    pub max_attempts: u32,
}

impl Resolved {
    /// The target group of `colour`, or a settings error naming it.
    pub fn target_group(&self, colour: &Colour) -> Result<&str, ProviderError> {
        name::lookup(&self.target_groups, &colour.name)
            .map(String::as_str)
            .ok_or_else(|| {
                let known: Vec<&str> = self.target_groups.keys().map(String::as_str).collect();
                field_error(
                    "target_groups",
                    &format!(
                        "router `{}` has no target group for colour `{}` (`target_groups` names {}); add `{} = \"arn:aws:elasticloadbalancing:...:targetgroup/...\"`",
                        self.router,
                        colour.name,
                        known.join(", "),
                        colour.name
                    ),
                )
            })
    }

    /// The colour whose target group is `arn`. An entry named for a block
    /// (`target_groups = { blue = each.value.blue }` in a `for_each` router)
    /// is that block's instance of the router's own key.
    pub fn colour_of(&self, arn: &str) -> Option<std::borrow::Cow<'_, str>> {
        let entry = self
            .target_groups
            .iter()
            .find(|(_, tg)| tg.as_str() == arn)
            .map(|(colour, _)| colour.as_str())?;
        match (name::key_of(entry), name::key_of(&self.router)) {
            (None, Some(key)) => Some(name::instance_name(entry, &key).into()),
            _ => Some(entry.into()),
        }
    }

    /// What cutover switches, for messages: "listener rule ARN" or
    /// "listener ARN's default action".
    pub fn switched(&self) -> String {
        match &self.rule_arn {
            Some(rule) => format!("listener rule {}", arn::short(rule)),
            None => format!(
                "the default action of listener {}",
                arn::short(&self.listener_arn)
            ),
        }
    }
}

/// Parse and check a block's body (for `validate`, and before every use).
pub(crate) fn parse(body: &Value) -> Result<Settings, ProviderError> {
    let settings: Settings = parse_settings("aws_alb", body)?;
    let listener = arn::parse(&settings.listener_arn, Kind::Listener)
        .map_err(|e| field_error("listener_arn", &format!("`listener_arn` {e}")))?;
    if let Some(rule) = &settings.rule_arn {
        let parsed = arn::parse(rule, Kind::Rule)
            .map_err(|e| field_error("rule_arn", &format!("`rule_arn` {e}")))?;
        if parsed.listener_path() != listener.listener_path() || !same_place(&parsed, &listener) {
            return Err(field_error(
                "rule_arn",
                &format!(
                    "`rule_arn` = {rule:?} is a rule of another listener than `listener_arn` ({})",
                    arn::short(&settings.listener_arn)
                ),
            ));
        }
    }
    check_target_groups(&settings, &listener)?;
    if let Some(region) = &settings.region {
        if region != listener.region {
            return Err(field_error(
                "region",
                &format!(
                    "`region` = {region:?}, but the listener is in {:?} (its ARN says so); remove `region` or make them agree",
                    listener.region
                ),
            ));
        }
    }
    if let Some(url) = &settings.endpoint_url {
        check_endpoint_url(url)?;
    }
    check_preview(&settings)?;
    if let Some(timeout) = &settings.timeout {
        parse_timeout(timeout)?;
    }
    if let Some(n) = settings.max_attempts {
        if !(1..=10).contains(&n) {
            return Err(field_error(
                "max_attempts",
                &format!("`max_attempts` must be from 1 to 10 (the first attempt and its retries), not {n}"),
            ));
        }
    }
    Ok(settings)
}

/// Parse a block's body and resolve it for `spec`.
pub(crate) fn resolve(spec: &RouterSpec) -> Result<Resolved, ProviderError> {
    let settings = parse(spec.settings())?;
    let region = arn::parse(&settings.listener_arn, Kind::Listener)
        .map(|a| a.region.to_string())
        .map_err(|e| field_error("listener_arn", &e))?;
    Ok(Resolved {
        router: spec.name().to_string(),
        listener_arn: settings.listener_arn,
        rule_arn: settings.rule_arn,
        target_groups: settings.target_groups,
        region,
        endpoint_url: settings.endpoint_url,
        preview_header: settings
            .preview_header
            .unwrap_or_else(|| DEFAULT_PREVIEW_HEADER.to_string()),
        preview_value: settings
            .preview_header_value
            .unwrap_or_else(|| name::flat(spec.name()).into_owned()),
        preview_priority: settings.preview_priority,
        timeout: settings
            .timeout
            .as_deref()
            .map_or(Ok(DEFAULT_TIMEOUT), parse_timeout)?,
        max_attempts: settings.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
    })
}

fn same_place(a: &arn::Arn<'_>, b: &arn::Arn<'_>) -> bool {
    (a.partition, a.region, a.account) == (b.partition, b.region, b.account)
}

fn check_target_groups(settings: &Settings, listener: &arn::Arn<'_>) -> Result<(), ProviderError> {
    if settings.target_groups.is_empty() {
        return Err(field_error(
            "target_groups",
            "`target_groups` names no colour; write e.g. `target_groups = { blue = \"arn:...:targetgroup/blue/...\", green = \"arn:...:targetgroup/green/...\" }`",
        ));
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (colour, tg) in &settings.target_groups {
        let field = format!("target_groups.{colour}");
        let parsed = arn::parse(tg, Kind::TargetGroup)
            .map_err(|e| field_error(&field, &format!("`{field}` {e}")))?;
        if !same_place(&parsed, listener) {
            return Err(field_error(
                &field,
                &format!(
                    "`{field}` is in {}:{}, the listener in {}:{}: a listener forwards only to target groups of its own region and account",
                    parsed.region, parsed.account, listener.region, listener.account
                ),
            ));
        }
        if let Some(other) = seen.insert(tg, colour) {
            return Err(field_error(
                &field,
                &format!("`{field}` is the target group of `{other}` too: each colour needs a target group of its own"),
            ));
        }
    }
    Ok(())
}

fn check_endpoint_url(url: &str) -> Result<(), ProviderError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or_default());
    if host.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace)) {
        return Err(field_error(
            "endpoint_url",
            &format!("`endpoint_url` = {url:?} must be an http:// or https:// URL, e.g. \"http://127.0.0.1:5000\" (moto's server) or an ELB-compatible endpoint"),
        ));
    }
    Ok(())
}

fn check_preview(settings: &Settings) -> Result<(), ProviderError> {
    if let Some(header) = &settings.preview_header {
        // RFC 9110's token characters: what a header name may hold.
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if header.is_empty() || !header.chars().all(token) || header.len() > 40 {
            return Err(field_error(
                "preview_header",
                &format!("`preview_header` = {header:?} must be an HTTP header name of at most 40 characters, e.g. \"X-Cutover-Preview\""),
            ));
        }
    }
    if let Some(value) = &settings.preview_header_value {
        if value.is_empty() || value.len() > 128 || value.chars().any(|c| c.is_control()) {
            return Err(field_error(
                "preview_header_value",
                &format!("`preview_header_value` = {value:?} must be 1 to 128 printable characters (an ALB condition value)"),
            ));
        }
    }
    if let Some(p) = settings.preview_priority {
        if !(1..=50_000).contains(&p) {
            return Err(field_error(
                "preview_priority",
                &format!("`preview_priority` must be from 1 to 50000 (a listener rule's priority), not {p}"),
            ));
        }
    }
    Ok(())
}

fn parse_timeout(text: &str) -> Result<Duration, ProviderError> {
    cutover_provider::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            field_error(
                "timeout",
                &format!("`timeout` = {text:?} is not a duration; write e.g. \"10s\" or \"500ms\""),
            )
        })
}

pub(crate) fn field_error(field: &str, message: &str) -> ProviderError {
    ProviderError::settings(
        Some(field.to_string()),
        format!("in `aws_alb` block: {message}"),
    )
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
