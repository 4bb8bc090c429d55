//! The checks a router runs around its switch, beyond its target's health
//! gate and its `verify`: `test "NAME" {}` hooks (the operator's commands)
//! and `analysis "NAME" {}` blocks (Prometheus queries), as the
//! configuration declares them and the plan document holds them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::duration_ms;

/// A router's `test "NAME" {}` block: a command run against the colour
/// about to go live, after its health gate and before the switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSpec {
    /// `command`: the program and its arguments (no shell).
    pub command: Vec<String>,
    /// `env`: variables added to the command's environment (beside the
    /// `CUTOVER_*` ones cutover sets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `timeout` (default "5m"): how long the command may run; at the end
    /// its whole process group is killed and the test fails.
    #[serde(rename = "timeout_ms", with = "duration_ms")]
    pub timeout: Duration,
    /// `workdir`: where it runs, resolved against the configuration
    /// directory (default: the configuration directory).
    pub workdir: PathBuf,
    /// `at_plan` (default false): safe to run at plan time (read-only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub at_plan: bool,
}

/// The default of a test's `timeout`.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// When an analysis runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Before the switch, after the target's gate: a failure keeps the old
    /// colour live.
    Before,
    /// After the switch, under live traffic: a failure switches back (under
    /// the revert rules), like `verify`.
    After,
}

/// What a query that returns no data counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoData {
    /// A failed measurement (the default: no data proves nothing).
    Fail,
    /// A passing measurement.
    Pass,
}

/// A router's `analysis "NAME" {}` block: a Prometheus query measured
/// `count` times, `interval` apart, against `min` and/or `max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSpec {
    /// `prometheus`: the base URL of the Prometheus HTTP API
    /// (`http://127.0.0.1:9090`).
    pub prometheus: String,
    /// `query`: PromQL, with `{{target}}`, `{{target_release}}`,
    /// `{{previous}}` and `{{router}}` replaced (by the planner) with the
    /// colour the cut-over switches to, its release, the colour it leaves and
    /// the router's name.
    pub query: String,
    /// `min`: the smallest passing value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// `max`: the largest passing value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// `when` (default "before").
    pub when: When,
    /// `interval` (default "10s"): time between measurements.
    #[serde(rename = "interval_ms", with = "duration_ms")]
    pub interval: Duration,
    /// `count` (default 1): how many measurements.
    pub count: u32,
    /// `failure_limit` (default 0): how many failed measurements are
    /// tolerated; one more fails the analysis at once.
    pub failure_limit: u32,
    /// `initial_delay` (default "0s"): wait before the first measurement.
    #[serde(rename = "initial_delay_ms", with = "duration_ms")]
    pub initial_delay: Duration,
    /// `no_data` (default "fail").
    pub no_data: NoData,
    /// `timeout` (default "10s"): how long one query may take.
    #[serde(rename = "timeout_ms", with = "duration_ms")]
    pub timeout: Duration,
}

impl AnalysisSpec {
    /// Whether `value` is within `min` and `max`.
    pub fn passes(&self, value: f64) -> bool {
        !value.is_nan()
            && self.min.is_none_or(|min| value >= min)
            && self.max.is_none_or(|max| value <= max)
    }

    /// The bounds, for people: `≤ 0.01`, `≥ 100`, `between 1 and 2`.
    pub fn bounds(&self) -> String {
        match (self.min, self.max) {
            (Some(min), Some(max)) => format!("between {min} and {max}"),
            (Some(min), None) => format!(">= {min}"),
            (None, Some(max)) => format!("<= {max}"),
            (None, None) => "any value".to_owned(),
        }
    }

    /// What an analysis measures, for people.
    pub fn measures(&self) -> String {
        let rounds = if self.count == 1 {
            "once".to_owned()
        } else {
            format!("{} times, {} apart", self.count, duration(self.interval))
        };
        let allowed = match self.failure_limit {
            0 => String::new(),
            1 => ", 1 failure allowed".to_owned(),
            n => format!(", {n} failures allowed"),
        };
        // A query written over several lines (a heredoc) reads as one.
        let query = self.query.split_whitespace().collect::<Vec<_>>().join(" ");
        format!(
            "`{query}` must be {}, measured {rounds}{allowed}",
            self.bounds()
        )
    }

    /// The query with its placeholders replaced.
    pub fn query_for(
        query: &str,
        router: &str,
        target: &str,
        release: &str,
        previous: &str,
    ) -> String {
        query
            .replace("{{target}}", target)
            .replace("{{target_release}}", release)
            .replace("{{previous}}", previous)
            .replace("{{router}}", router)
    }
}

/// A duration as written in the configuration: `5m`, `10s`, `1.5s`.
pub fn duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A command line for people: arguments with spaces or quotes quoted.
pub fn command_line(command: &[String]) -> String {
    command
        .iter()
        .map(|a| {
            if a.is_empty()
                || a.chars()
                    .any(|c| c.is_whitespace() || "\"'\\$`".contains(c))
            {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
