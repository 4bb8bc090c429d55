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
    let v_text = shown(v);
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
            (Some(v), Some("out_of_bounds")) => (shown(v), false),
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::checks::When;

    /// Replies of Prometheus 2.42 (Debian's), as it gave them.
    const SCALAR: &str =
        r#"{"status":"success","data":{"resultType":"scalar","result":[1796142959.556,"1.5"]}}"#;
    const VECTOR_1: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1796142955.425,"0.25"]}]}}"#;
    const VECTOR_0: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    const VECTOR_3: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"x"},"value":[1796142955.453,"1"]},{"metric":{"a":"y"},"value":[1796142955.453,"2"]},{"metric":{"a":"z"},"value":[1796142955.453,"3"]}]}}"#;
    const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"127.0.0.1:29990","job":"self"},"values":[[1796142953.573,"1"],[1796142954.577,"1"]]}]}}"#;
    const STRING: &str =
        r#"{"status":"success","data":{"resultType":"string","result":[1796142955.591,"hello"]}}"#;
    const ERROR: &str = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:11: parse error: unclosed left parenthesis"}"#;
    const NAN: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1796142955.534,"NaN"]}]}}"#;
    const INF: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1796142955.569,"+Inf"]}]}}"#;
    const MINUS_INF: &str =
        r#"{"status":"success","data":{"resultType":"scalar","result":[1796142955.687,"-Inf"]}}"#;

    const URL: &str = "http://127.0.0.1:9090/api/v1/query";

    fn unreadable(status: u16, body: &str) -> Unreadable {
        match read_reply(URL, status, body) {
            Reading::Unreadable(why) => why,
            other => panic!("{body} read as {other:?}"),
        }
    }

    #[test]
    fn replies_of_a_real_prometheus_read_as_one_number_or_say_why_not() {
        assert_eq!(read_reply(URL, 200, SCALAR), Reading::Value(1.5));
        assert_eq!(read_reply(URL, 200, VECTOR_1), Reading::Value(0.25));
        assert_eq!(read_reply(URL, 200, VECTOR_0), Reading::NoData);
        assert_eq!(read_reply(URL, 200, INF), Reading::Value(f64::INFINITY));
        assert_eq!(
            read_reply(URL, 200, MINUS_INF),
            Reading::Value(f64::NEG_INFINITY)
        );
        assert!(matches!(read_reply(URL, 200, NAN), Reading::Value(v) if v.is_nan()));
        let three = unreadable(200, VECTOR_3);
        assert_eq!(
            (three.kind(), three.to_string().as_str()),
            (
                "several_series",
                r#"3 series ({a="x"}, {a="y"}, {a="z"}); aggregate the query (sum(), max())"#
            )
        );
        let matrix = unreadable(200, MATRIX);
        assert_eq!(matrix.kind(), "result_type");
        assert_eq!(
            matrix.to_string(),
            "the query returns a range vector (matrix), not one number (a scalar, or a vector of one series)"
        );
        assert!(unreadable(200, STRING)
            .to_string()
            .contains("returns a string,"));
        // Prometheus answers a refused query with 400 and says why.
        let error = unreadable(400, ERROR);
        assert_eq!(error.kind(), "query_error");
        assert_eq!(
            error.to_string(),
            r#"Prometheus: invalid parameter "query": 1:11: parse error: unclosed left parenthesis (bad_data)"#
        );
        // Not the API: a wrong path, or something else on the port.
        let not_found = unreadable(404, "404 page not found\n");
        assert_eq!(not_found.kind(), "status");
        assert_eq!(
            not_found.to_string(),
            format!("{URL} answered 404 (want 2xx)")
        );
        let garbage = unreadable(200, "<html>hello</html>");
        assert_eq!(garbage.kind(), "bad_reply");
        assert!(garbage
            .to_string()
            .starts_with(&format!("{URL}: not a Prometheus API reply: ")));
        let odd = unreadable(
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"lots"]}}"#,
        );
        assert!(
            odd.to_string()
                .ends_with(r#"the value "lots" is not a number"#),
            "{odd}"
        );
    }

    fn spec(url: &str, query: &str) -> AnalysisSpec {
        AnalysisSpec {
            prometheus: url.to_owned(),
            query: query.to_owned(),
            min: None,
            max: Some(0.01),
            when: When::Before,
            interval: Duration::from_millis(40),
            count: 3,
            failure_limit: 0,
            initial_delay: Duration::ZERO,
            no_data: NoData::Fail,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_value_is_compared_with_its_bounds_as_it_reads() {
        let max = spec(URL, "q");
        let judged = |s: &AnalysisSpec, v: f64| {
            let r = judge(s, 1, Reading::Value(v));
            (r.passed, r.detail, r.failure)
        };
        assert_eq!(judged(&max, 0.004), (true, "0.004 <= 0.01".into(), None));
        assert_eq!(
            judged(&max, 0.031),
            (false, "0.031 > 0.01".into(), Some("out_of_bounds"))
        );
        assert_eq!(judged(&max, 0.01), (true, "0.01 <= 0.01".into(), None));
        assert!(judged(&max, f64::NEG_INFINITY).0, "infinities compare");
        assert_eq!(
            judged(&max, f64::INFINITY),
            (false, "+Inf > 0.01".into(), Some("out_of_bounds"))
        );
        let (passed, detail, failure) = judged(&max, f64::NAN);
        assert!(
            !passed && detail.starts_with("NaN, not a number"),
            "{detail}"
        );
        assert_eq!(failure, Some("not_a_number"));
        let both = AnalysisSpec {
            min: Some(1.0),
            max: Some(2.0),
            ..max.clone()
        };
        assert_eq!(judged(&both, 1.5).1, "1 <= 1.5 <= 2");
        assert_eq!(judged(&both, 0.5).1, "0.5 < 1");
        assert_eq!(judged(&both, 2.5).1, "2.5 > 2");
        let min = AnalysisSpec {
            min: Some(100.0),
            max: None,
            ..max.clone()
        };
        assert_eq!(
            judged(&min, f64::INFINITY),
            (true, "+Inf >= 100".into(), None)
        );
        assert_eq!(judged(&min, 1e-9).1, "1e-9 < 100");
    }

    /// A loopback server answering each request with the next canned reply
    /// (the last one again when they run out), and remembering the query of
    /// each; `None` holds the connection and never answers.
    struct Canned {
        port: u16,
        queries: Arc<Mutex<Vec<String>>>,
        accept: tokio::task::JoinHandle<()>,
    }

    impl Canned {
        async fn start(replies: Vec<Option<(u16, String)>>) -> Canned {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let queries = Arc::new(Mutex::new(Vec::new()));
            let seen = queries.clone();
            let accept = tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((tcp, _)) = listener.accept().await {
                    let mut tcp = BufReader::new(tcp);
                    let mut line = String::new();
                    tcp.read_line(&mut line).await.unwrap();
                    // Up to the empty line that ends the head.
                    while let Ok(3..) = tcp.read_line(&mut String::new()).await {}
                    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(target);
                        seen.len()
                    };
                    let Some((status, body)) = &replies[(n - 1).min(replies.len() - 1)] else {
                        held.push(tcp);
                        continue;
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    tcp.get_mut().write_all(reply.as_bytes()).await.unwrap();
                }
            });
            Canned {
                port,
                queries,
                accept,
            }
        }

        fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        /// The path and decoded `query` of each request so far.
        fn seen(&self) -> Vec<(String, String)> {
            let seen = self.queries.lock().unwrap().clone();
            seen.iter()
                .map(|target| {
                    let url = reqwest::Url::parse(&format!("http://x{target}")).unwrap();
                    let query = url.query_pairs().find(|(k, _)| k == "query").unwrap();
                    (url.path().to_owned(), query.1.into_owned())
                })
                .collect()
        }
    }

    impl Drop for Canned {
        fn drop(&mut self) {
            self.accept.abort();
        }
    }

    /// A round event as (round, count, value, passed, detail, failures).
    type RoundLine = (u32, u32, Option<f64>, bool, String, u32);

    /// Every round event.
    #[derive(Default)]
    struct Rounds(Mutex<Vec<RoundLine>>);

    impl Observer for Rounds {
        fn event(&self, event: &Event) {
            if let Event::AnalysisRound {
                round,
                count,
                value,
                passed,
                detail,
                failures,
                ..
            } = event
            {
                let line = (*round, *count, *value, *passed, detail.clone(), *failures);
                self.0.lock().unwrap().push(line);
            }
        }
    }

    impl Rounds {
        fn taken(&self) -> Vec<RoundLine> {
            self.0.lock().unwrap().clone()
        }
    }

    fn id() -> StepId {
        StepId::Analysis("public".into(), "errors".into())
    }

    fn client() -> reqwest::Client {
        crate::engine::health::HealthChecker::default()
            .http_client()
            .unwrap()
    }

    /// A reply of one series of `value`.
    fn vector(value: &str) -> Option<(u16, String)> {
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1796142955.425,"{value}"]}}]}}}}"#
        );
        Some((200, body))
    }

    fn reply(status: u16, body: &str) -> Option<(u16, String)> {
        Some((status, body.to_owned()))
    }

    const SHARE: &str = r#"sum(rate(demo_app_requests_total{release="2.0",status=~"5.."}[30s])) / sum(rate(demo_app_requests_total{release="2.0"}[30s]))"#;

    #[tokio::test]
    async fn count_measurements_interval_apart_each_an_event_after_the_initial_delay() {
        let server = Canned::start(vec![
            vector("0.004"),
            reply(200, VECTOR_0),
            reply(200, SCALAR),
        ])
        .await;
        let spec = AnalysisSpec {
            initial_delay: Duration::from_millis(100),
            no_data: NoData::Pass,
            max: Some(2.0),
            ..spec(&format!("{}/", server.url()), SHARE)
        };
        let rounds = Rounds::default();
        let started = Instant::now();
        let measured = run(&id(), &spec, &client(), &rounds).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100 + 2 * 40));
        assert_eq!(
            rounds.taken(),
            vec![
                (1, 3, Some(0.004), true, "0.004 <= 2".into(), 0),
                (
                    2,
                    3,
                    None,
                    true,
                    "no data (passes: no_data = \"pass\")".into(),
                    0
                ),
                (3, 3, Some(1.5), true, "1.5 <= 2".into(), 0),
            ]
        );
        assert_eq!(
            (measured.values(), measured.failures),
            (vec![0.004, 1.5], 0)
        );
        // The query goes whole, URL-encoded, to the API's path (a trailing
        // `/` on `prometheus` or not).
        let want = ("/api/v1/query".to_owned(), SHARE.to_owned());
        assert_eq!(server.seen(), vec![want.clone(), want.clone(), want]);
    }

    #[tokio::test]
    async fn the_analysis_fails_at_the_first_failure_beyond_the_limit() {
        let server = Canned::start(vec![
            vector("0.004"),
            vector("0.052"),
            vector("0.002"),
            vector("0.048"),
            vector("0"),
        ])
        .await;
        let spec = AnalysisSpec {
            count: 5,
            failure_limit: 1,
            ..spec(&server.url(), SHARE)
        };
        let rounds = Rounds::default();
        let err = run(&id(), &spec, &client(), &rounds).await.unwrap_err();
        assert_eq!(
            rounds.taken(),
            vec![
                (1, 5, Some(0.004), true, "0.004 <= 0.01".into(), 0),
                (2, 5, Some(0.052), false, "0.052 > 0.01".into(), 1),
                (3, 5, Some(0.002), true, "0.002 <= 0.01".into(), 1),
                (4, 5, Some(0.048), false, "0.048 > 0.01".into(), 2),
            ]
        );
        assert_eq!(server.seen().len(), 4, "round 5 is not measured");
        assert_eq!(
            (err.kind, err.cause),
            (ErrorKind::AnalysisFailed, Some("out_of_bounds"))
        );
        assert_eq!(
            err.message,
            "analysis.public.errors failed: 2 of 4 measurements failed, want <= 0.01 (0.052, 0.048; 1 failure allowed; stopped at round 4 of 5)"
        );
    }

    #[tokio::test]
    async fn no_data_fails_by_default_and_a_refused_query_says_what_prometheus_said() {
        let server = Canned::start(vec![reply(200, VECTOR_0), reply(400, ERROR)]).await;
        let spec = AnalysisSpec {
            failure_limit: 1,
            count: 2,
            ..spec(&server.url(), "sum(rate((")
        };
        let rounds = Rounds::default();
        let err = run(&id(), &spec, &client(), &rounds).await.unwrap_err();
        let error = r#"Prometheus: invalid parameter "query": 1:11: parse error: unclosed left parenthesis (bad_data)"#;
        assert_eq!(
            rounds.taken(),
            vec![
                (1, 2, None, false, "no data".into(), 1),
                (2, 2, None, false, error.into(), 2),
            ]
        );
        assert_eq!(err.cause, Some("query_error"));
        assert_eq!(
            err.message,
            format!("analysis.public.errors failed: 2 of 2 measurements failed, want <= 0.01 (no data, {error}; 1 failure allowed)")
        );
    }

    #[tokio::test]
    async fn a_prometheus_that_does_not_answer_fails_each_measurement_after_its_timeout() {
        let server = Canned::start(vec![None]).await;
        let spec = AnalysisSpec {
            timeout: Duration::from_millis(200),
            count: 2,
            failure_limit: 5,
            ..spec(&server.url(), "up")
        };
        let rounds = Rounds::default();
        let measured = run(&id(), &spec, &client(), &rounds).await.unwrap();
        let detail = format!("{}/api/v1/query did not answer within 200ms", server.url());
        assert_eq!(
            rounds.taken(),
            vec![
                (1, 2, None, false, detail.clone(), 1),
                (2, 2, None, false, detail, 2),
            ]
        );
        assert_eq!(measured.failures, 2, "within the limit of 5");
    }

    #[tokio::test]
    async fn a_refused_connection_is_named_without_the_password_of_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let spec = AnalysisSpec {
            count: 3,
            ..spec(&format!("http://reader:s3cret@127.0.0.1:{port}/prom"), "up")
        };
        let rounds = Rounds::default();
        let err = run(&id(), &spec, &client(), &rounds).await.unwrap_err();
        let detail = format!(
            "http://reader@127.0.0.1:{port}/prom/api/v1/query: connection refused (nothing listens there)"
        );
        assert_eq!(rounds.taken(), vec![(1, 3, None, false, detail.clone(), 1)]);
        assert_eq!(
            (err.kind, err.cause),
            (ErrorKind::AnalysisFailed, Some("refused"))
        );
        assert!(
            err.message.contains(&format!(
                "({detail}; no failure allowed; stopped at round 1 of 3)"
            )),
            "{}",
            err.message
        );
        assert!(!err.message.contains("s3cret"));
    }

    #[tokio::test]
    async fn a_prometheus_that_is_not_an_http_url_fails_before_any_measurement() {
        let rounds = Rounds::default();
        for url in ["127.0.0.1:9090", "ftp://127.0.0.1:9090"] {
            let err = run(&id(), &spec(url, "up"), &client(), &rounds)
                .await
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Settings, "{url}");
            assert!(
                err.message.starts_with(&format!(
                    "analysis.public.errors: `prometheus` = {url:?} is not"
                )),
                "{}",
                err.message
            );
        }
        assert!(rounds.taken().is_empty());
    }

    #[test]
    fn the_same_failure_is_said_once_with_its_count() {
        let texts = ["a", "a", "b", "a", "a", "a"].map(|t| (t.to_owned(), true));
        assert_eq!(collapsed(&texts), vec!["a (x2)", "b", "a (x3)"]);
        let values = [("0.5", false), ("0.5", false), ("x", true)].map(|(t, c)| (t.to_owned(), c));
        assert_eq!(collapsed(&values), vec!["0.5", "0.5", "x"]);
    }
}
