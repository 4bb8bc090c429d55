//! A router's `analysis "NAME" {}` blocks, run: a Prometheus query measured
//! `count` times, `interval` apart, against its `min` and/or `max`. Before
//! the switch it is a gate; after it, a check under live traffic whose
//! failure switches back (the walk decides which; this module only
//! measures).
//!
//! Each measurement is one `GET {prometheus}/api/v1/query?query=...` (the
//! instant-query API every Prometheus-compatible server speaks), read as
//! one number: a scalar, or an instant vector of exactly one series. Each
//! emits an [`Event::AnalysisRound`]. The analysis fails as soon as more
//! measurements failed than `failure_limit` allows, without waiting for
//! the remaining rounds.
//!
//! Nothing is held between awaits but the measurements so far: the future
//! may be dropped at any point (a signal stops read-only steps at once).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::error::{ErrorKind, StepError};
use super::health::{classify, ProbeFailure, WantStatus};
use super::observer::{Event, Observer};
use crate::addr::StepId;
use crate::config::checks::{AnalysisSpec, NoData};

/// What an analysis measured, when it passed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// Every measurement, in order.
    pub rounds: Vec<Round>,
    /// How many of them failed (at most the `failure_limit`).
    pub failures: u32,
}

impl Measured {
    /// The values read, in order (a round without one is left out).
    pub fn values(&self) -> Vec<f64> {
        self.rounds.iter().filter_map(|r| r.value).collect()
    }
}

/// One measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    /// Which one, from 1.
    pub round: u32,
    /// The value read (NaN and infinities included); `None` when the query
    /// returned no data or nothing could be read.
    pub value: Option<f64>,
    /// Whether it passed.
    pub passed: bool,
    /// What it saw, for people (`0.031 > 0.01`, `no data`, an error).
    pub detail: String,
    /// Why it failed, as a stable label (`out_of_bounds`, `not_a_number`,
    /// `no_data`, or an [`Unreadable::kind`]); `None` when it passed.
    pub failure: Option<&'static str>,
}

/// What one query read.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// One number (NaN and infinities included: Prometheus writes them
    /// `NaN`, `+Inf`, `-Inf`).
    Value(f64),
    /// An empty instant vector: nothing matched.
    NoData,
    /// No number could be read.
    Unreadable(Unreadable),
}

/// Why a query gave no number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unreadable {
    /// An instant vector of several series.
    #[error(
        "{count} series ({}{}); aggregate the query (sum(), max())",
        shown.join(", "),
        if *count > shown.len() { ", ..." } else { "" }
    )]
    Series {
        /// How many.
        count: usize,
        /// The label sets of the first few, `{status="500"}`.
        shown: Vec<String>,
    },
    /// A range vector (`matrix`) or a `string`.
    #[error("the query returns a {0}, not one number (a scalar, or a vector of one series)")]
    ResultType(String),
    /// Prometheus refused the query (`"status": "error"`).
    #[error("Prometheus: {error} ({error_type})")]
    Query {
        /// Its `errorType` (`bad_data`, `timeout`, `execution`...).
        error_type: String,
        /// Its `error`.
        error: String,
    },
    /// The reply was not a Prometheus API reply.
    #[error("{url}: not a Prometheus API reply: {why}")]
    Reply {
        /// The URL asked (without its query).
        url: String,
        /// What was wrong with it.
        why: String,
    },
    /// The request failed: no connection, no answer in time, an HTTP
    /// status without a Prometheus reply.
    #[error(transparent)]
    Request(ProbeFailure),
}

impl Unreadable {
    /// A stable label: `several_series`, `result_type`, `query_error`,
    /// `bad_reply`, or the request's [`ProbeFailure::kind`] (`refused`,
    /// `unreachable`, `timeout`, `dns`, `tls`, `status`, `http`).
    pub fn kind(&self) -> &'static str {
        match self {
            Unreadable::Series { .. } => "several_series",
            Unreadable::ResultType(_) => "result_type",
            Unreadable::Query { .. } => "query_error",
            Unreadable::Reply { .. } => "bad_reply",
            Unreadable::Request(failure) => failure.kind(),
        }
    }
}

/// Run the analysis `id` of `spec`: wait `initial_delay`, then measure
/// `count` times (at least once), `interval` apart from start to start, on
/// `client` (the engine's shared one: [`super::health::HealthChecker::http_client`]).
/// Fails as soon as more measurements failed than `failure_limit`; a
/// `prometheus` that is not an http(s) URL fails at once, with kind
/// `settings`.
pub async fn run(
    id: &StepId,
    spec: &AnalysisSpec,
    client: &reqwest::Client,
    observer: &dyn Observer,
) -> Result<Measured, StepError> {
    let target = Target::new(id, spec)?;
    tokio::time::sleep(spec.initial_delay).await;
    let first = tokio::time::Instant::now();
    let count = spec.count.max(1);
    let mut measured = Measured::default();
    for round in 1..=count {
        let due = spec.interval.saturating_mul(round - 1);
        tokio::time::sleep(due.saturating_sub(first.elapsed())).await;
        let reading = target.measure(client, spec.timeout).await;
        let round = judge(spec, round, reading);
        if !round.passed {
            measured.failures += 1;
        }
        observer.event(&Event::AnalysisRound {
            id: id.clone(),
            round: round.round,
            count,
            value: round.value,
            passed: round.passed,
            detail: round.detail.clone(),
            failures: measured.failures,
        });
        measured.rounds.push(round);
        if measured.failures > spec.failure_limit {
            return Err(failed(id, spec, count, &measured));
        }
    }
    Ok(measured)
}

/// Where the query goes, and the URL that messages name.
struct Target {
    url: reqwest::Url,
    /// The API URL without its query string and without a password.
    shown: String,
}

impl Target {
    fn new(id: &StepId, spec: &AnalysisSpec) -> Result<Target, StepError> {
        let api = format!("{}/api/v1/query", spec.prometheus.trim_end_matches('/'));
        let bad = |why: String| {
            StepError::new(
                ErrorKind::Settings,
                format!("{id}: `prometheus` = {:?} {why}", spec.prometheus),
            )
        };
        let mut url = reqwest::Url::parse(&api).map_err(|e| bad(format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("is not an http:// or https:// URL".into()));
        }
        let mut shown = url.clone();
        // A password in the URL goes to the server, not into messages.
        let _ = shown.set_password(None);
        url.query_pairs_mut().append_pair("query", &spec.query);
        Ok(Target {
            url,
            shown: shown.to_string(),
        })
    }

    /// One query.
    async fn measure(&self, client: &reqwest::Client, timeout: Duration) -> Reading {
        let failed = |e: reqwest::Error| {
            Reading::Unreadable(Unreadable::Request(classify(&self.shown, &e, timeout)))
        };
        let response = match client.get(self.url.clone()).timeout(timeout).send().await {
            Ok(response) => response,
            Err(e) => return failed(e),
        };
        let status = response.status().as_u16();
        match response.text().await {
            Ok(body) => read_reply(&self.shown, status, &body),
            Err(e) => failed(e),
        }
    }
}

/// A reply of the Prometheus HTTP API.
#[derive(Deserialize)]
struct Reply {
    status: String,
    data: Option<Data>,
    error: Option<String>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
}

/// The `data` of a successful query.
#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Scalar((f64, String)),
    Vector(Vec<Sample>),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

/// One series of an instant vector.
#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// `[time, "value"]`; absent for a native histogram.
    value: Option<(f64, String)>,
}

/// What a reply with HTTP `status` and `body` from `url` says. Prometheus
/// answers a refused query with a 4xx or 5xx and its JSON, which says more
/// than the status does.
pub fn read_reply(url: &str, status: u16, body: &str) -> Reading {
    let bad = |why: String| {
        Reading::Unreadable(Unreadable::Reply {
            url: url.to_owned(),
            why,
        })
    };
    let reply: Reply = match serde_json::from_str(body) {
        Ok(reply) => reply,
        Err(_) if !(200..300).contains(&status) => {
            return Reading::Unreadable(Unreadable::Request(ProbeFailure::Status {
                url: url.to_owned(),
                got: status,
                want: WantStatus::Success,
            }))
        }
        Err(e) => return bad(e.to_string()),
    };
    match (reply.status.as_str(), reply.data) {
        ("success", Some(data)) => read_data(data).unwrap_or_else(bad),
        ("success", None) => bad("`status` is success but there is no `data`".into()),
        ("error", _) => Reading::Unreadable(Unreadable::Query {
            error_type: reply.error_type.unwrap_or_else(|| "no errorType".into()),
            error: reply.error.unwrap_or_else(|| "no error text".into()),
        }),
        (other, _) => bad(format!("`status` is {other:?}")),
    }
}

/// The number in a successful query's `data`.
fn read_data(data: Data) -> Result<Reading, String> {
    let number = |text: &str| {
        text.parse::<f64>()
            .map_err(|_| format!("the value {text:?} is not a number"))
    };
    match data {
        Data::Scalar((_, text)) => number(&text).map(Reading::Value),
        Data::Vector(samples) => match samples.as_slice() {
            [] => Ok(Reading::NoData),
            [one] => match &one.value {
                Some((_, text)) => number(text).map(Reading::Value),
                None => Err("the series has no `value` (a native histogram?)".into()),
            },
            several => Ok(Reading::Unreadable(Unreadable::Series {
                count: several.len(),
                shown: several.iter().take(3).map(|s| labels(&s.metric)).collect(),
            })),
        },
        Data::Matrix(_) => Ok(Reading::Unreadable(Unreadable::ResultType(
            "range vector (matrix)".into(),
        ))),
        Data::String(_) => Ok(Reading::Unreadable(Unreadable::ResultType("string".into()))),
    }
}

/// A label set as PromQL writes it: `{job="demo",status="500"}`.
fn labels(metric: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = metric.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(","))
}

/// A value for people, its infinities as Prometheus writes them (`NaN`,
/// `+Inf`, `0.031`, `1.5e-9`): every digit it has, so that a value shown
/// beside a bound compares as it reads.
pub fn shown(value: f64) -> String {
    match value {
        v if v.is_nan() => "NaN".into(),
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        // Display never uses an exponent: 1e300 would be 301 digits.
        v if v != 0.0 && !(1e-6..1e16).contains(&v.abs()) => format!("{v:e}"),
        v => v.to_string(),
    }
}

/// `v` for people beside the bounds of `spec`: four significant digits
/// (`0.04959`), whole numbers whole, and every digit when rounding would
/// put it on, or on the other side of, a bound (`0.0100001 > 0.01`).
pub fn shown_against(spec: &AnalysisSpec, v: f64) -> String {
    if !v.is_finite() || (v.fract() == 0.0 && v.abs() < 1e16) {
        return shown(v);
    }
    let Ok(r) = format!("{v:.3e}").parse::<f64>() else {
        return shown(v);
    };
    let misleading = [spec.min, spec.max]
        .into_iter()
        .flatten()
        .any(|b| r == b || (r < b) != (v < b));
    shown(if misleading { v } else { r })
}

/// Whether `reading` passes `spec`, and what to say of it.
fn judge(spec: &AnalysisSpec, round: u32, reading: Reading) -> Round {
    let (value, failure, detail) = match reading {
        Reading::Value(v) if v.is_nan() => (
            Some(v),
            Some("not_a_number"),
            "NaN, not a number (0/0: a ratio over no requests?)".to_owned(),
        ),
        Reading::Value(v) => {
            let (passed, detail) = compare(spec, v);
            (Some(v), (!passed).then_some("out_of_bounds"), detail)
        }
        Reading::NoData => match spec.no_data {
            NoData::Fail => (None, Some("no_data"), "no data".to_owned()),
            NoData::Pass => (
                None,
                None,
                "no data (passes: no_data = \"pass\")".to_owned(),
            ),
        },
        Reading::Unreadable(why) => (None, Some(why.kind()), why.to_string()),
    };
    Round {
        round,
        value,
        passed: failure.is_none(),
        detail,
        failure,
    }
}

/// Whether the number `v` is within the bounds, said as a comparison:
/// `0.004 <= 0.01`, `0.031 > 0.01`, `1 <= 1.5 <= 2`.
fn compare(spec: &AnalysisSpec, v: f64) -> (bool, String) {
    let v_text = shown_against(spec, v);
    let passed = spec.passes(v);
    let detail = match (spec.min, spec.max) {
        (Some(min), _) if v < min => format!("{v_text} < {}", shown(min)),
        (_, Some(max)) if v > max => format!("{v_text} > {}", shown(max)),
        (Some(min), Some(max)) => format!("{} <= {v_text} <= {}", shown(min), shown(max)),
        (Some(min), None) => format!("{v_text} >= {}", shown(min)),
        (None, Some(max)) => format!("{v_text} <= {}", shown(max)),
        (None, None) => format!("{v_text} (no bounds)"),
    };
    (passed, detail)
}

/// The error of an analysis that failed more often than allowed: its
/// name, what the failed measurements saw, the bounds and the limit.
fn failed(id: &StepId, spec: &AnalysisSpec, count: u32, measured: &Measured) -> StepError {
    // Values are said each (the same value twice is two measurements);
    // what was seen instead of a value, once per run.
    let seen: Vec<(String, bool)> = measured
        .rounds
        .iter()
        .filter(|r| !r.passed)
        .map(|r| match (r.value, r.failure) {
            (Some(v), Some("out_of_bounds")) => (shown_against(spec, v), false),
            _ => (r.detail.clone(), true),
        })
        .collect();
    let limit = match spec.failure_limit {
        0 => "no failure allowed".to_owned(),
        1 => "1 failure allowed".to_owned(),
        n => format!("{n} failures allowed"),
    };
    let taken = measured.rounds.len();
    let stopped = if (taken as u64) < u64::from(count) {
        format!("; stopped at round {taken} of {count}")
    } else {
        String::new()
    };
    let message = format!(
        "{id} failed: {} of {taken} measurements failed, want {} ({}; {limit}{stopped})",
        measured.failures,
        spec.bounds(),
        collapsed(&seen).join(", "),
    );
    StepError {
        kind: ErrorKind::AnalysisFailed,
        cause: measured.rounds.iter().rev().find_map(|r| r.failure),
        message,
    }
}

/// `texts` with runs of the same text said once, `text (x3)`, where that
/// is allowed: a Prometheus that is down says the same for every round.
fn collapsed(texts: &[(String, bool)]) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for (text, collapsible) in texts {
        match out.last_mut() {
            Some((last, n)) if *collapsible && last == text => *n += 1,
            _ => out.push((text.clone(), 1)),
        }
    }
    out.into_iter()
        .map(|(text, n)| match n {
            1 => text,
            n => format!("{text} (x{n})"),
        })
        .collect()
}

// The tests would outgrow this file.
#[cfg(test)]
mod tests;
