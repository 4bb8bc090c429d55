//! The analysis runner's tests: the reply parser on replies of a real
//! Prometheus, the bounds, and the rounds against a loopback server of
//! canned replies (the tests against a real Prometheus are in
//! tests/it/analysis.rs).

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
    assert_eq!(judged(&min, 1234567.0).1, "1234567 >= 100");
}

#[test]
fn a_value_is_rounded_for_people_unless_that_would_misplace_it_by_a_bound() {
    let max = spec(URL, "q");
    let at = |v: f64| shown_against(&max, v);
    assert_eq!(at(0.4959349593495935), "0.4959");
    assert_eq!(at(0.004_012_345), "0.004012");
    assert_eq!(at(0.0100001), "0.0100001", "not 0.01 > 0.01");
    assert_eq!(at(0.009_999_9), "0.0099999", "not 0.01 <= 0.01");
    assert_eq!(at(0.01), "0.01");
    assert_eq!(at(3.0), "3");
    assert_eq!(at(2.5e-9), "2.5e-9");
    assert_eq!(at(f64::NAN), "NaN");
}

/// The target and `Authorization` header of each request.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A loopback server answering each request with the next canned reply
/// (the last one again when they run out), and remembering the target
/// and `Authorization` of each; `None` holds the connection and never
/// answers.
struct Canned {
    port: u16,
    queries: Seen,
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
                let mut authorization = None;
                // Up to the empty line that ends the head.
                let mut header = String::new();
                while let Ok(3..) = tcp.read_line(&mut header).await {
                    if let Some(value) = header.strip_prefix("authorization: ") {
                        authorization = Some(value.trim().to_owned());
                    }
                    header.clear();
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push((target, authorization));
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
            .map(|(target, _)| {
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
        ..spec(
            &format!("http://reader:s3cret@127.0.0.1:{}/", server.port),
            SHARE,
        )
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
    // The URL's user and password go as basic authentication.
    let auth = server.queries.lock().unwrap()[0].1.clone();
    assert_eq!(auth.as_deref(), Some("Basic cmVhZGVyOnMzY3JldA=="));
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
