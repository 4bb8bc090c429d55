//! `analysis` blocks measured for real: Debian's Prometheus scraping real
//! demo-apps on loopback, driven with requests by the test, and
//! `engine::analysis::run` querying it as an apply does.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cutover::addr::StepId;
use cutover::config::checks::{AnalysisSpec, NoData, When};
use cutover::engine::analysis::{run, shown_against, Measured};
use cutover::engine::error::{ErrorKind, StepError};
use cutover::engine::health::HealthChecker;
use cutover::engine::observer::{Event, Observer};

use crate::ports_support::free_port;
use crate::prometheus_support::{http_get, Prometheus};
use crate::support::demo_app_bin;

/// A demo-app of a test, killed by its pid when dropped.
struct DemoApp {
    port: u16,
    child: Child,
}

impl DemoApp {
    fn start(release: &str, flags: &[&str]) -> DemoApp {
        let port = free_port();
        let child = Command::new(demo_app_bin())
            .args(["--port", &port.to_string(), "--release", release])
            .args(flags)
            .stdout(Stdio::null())
            .spawn()
            .expect("start demo-app");
        DemoApp { port, child }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Requests to `/` of some demo-apps, about 50 a second each, from a
/// thread that stops (and is joined) when this is dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Traffic {
    fn to(ports: &[u16]) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let (stopping, ports) = (stop.clone(), ports.to_vec());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                for port in &ports {
                    // A refused or failed request is the app's business:
                    // what it answered is what Prometheus counts.
                    let _ = http_get(*port, "/");
                }
                // Pacing, not synchronisation: a steady, modest load.
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The rounds an analysis reported, as (round, count, value, passed,
/// detail, failures).
type RoundLine = (u32, u32, Option<f64>, bool, String, u32);

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

fn id() -> StepId {
    StepId::Analysis("public".into(), "errors".into())
}

/// Run the analysis as the apply does, on the engine's shared client: its
/// result and the rounds it reported.
fn analyse(spec: &AnalysisSpec) -> (Result<Measured, StepError>, Vec<RoundLine>) {
    let client = HealthChecker::default().http_client().expect("client");
    let rounds = Rounds::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(run(&id(), spec, &client, &rounds));
    (result, rounds.0.into_inner().unwrap())
}

/// An analysis of `query` on `prometheus`: `count` rounds 200ms apart,
/// after 200ms, at most 0.01.
fn spec(prometheus: &Prometheus, query: &str, count: u32) -> AnalysisSpec {
    AnalysisSpec {
        prometheus: prometheus.url(),
        query: query.to_owned(),
        min: None,
        max: Some(0.01),
        when: When::Before,
        interval: Duration::from_millis(200),
        count,
        failure_limit: 0,
        initial_delay: Duration::from_millis(200),
        no_data: NoData::Fail,
        timeout: Duration::from_secs(5),
    }
}

/// The share of a release's `/` requests answered 5xx, over 5s (the
/// scrapes are a second apart).
fn error_share(release: &str) -> String {
    format!(
        r#"sum(rate(demo_app_requests_total{{release="{release}",path="/",status=~"5.."}}[5s])) / sum(rate(demo_app_requests_total{{release="{release}",path="/"}}[5s]))"#
    )
}

#[test]
fn an_analysis_passes_a_healthy_release_and_stops_early_on_one_that_fails_half_its_requests() {
    let good = DemoApp::start("2.0", &[]);
    let bad = DemoApp::start("2.1", &["--error-rate", "0.5"]);
    let prometheus = Prometheus::start(&[good.address(), bad.address()]);
    let _traffic = Traffic::to(&[good.port, bad.port]);
    let within = Duration::from_secs(30);
    // The healthy release's share is 0 (its 5xx series is there at 0),
    // not "no data"; the other's about a half.
    prometheus.wait_for(&error_share("2.0"), within, |v| v == 0.0);
    prometheus.wait_for(&error_share("2.1"), within, |v| v > 0.3);

    let (passed, rounds) = analyse(&spec(&prometheus, &error_share("2.0"), 3));
    let measured = passed.unwrap_or_else(|e| panic!("{e}\n--- log\n{}", prometheus.log()));
    let ok = |round| (round, 3, Some(0.0), true, "0 <= 0.01".to_owned(), 0);
    assert_eq!(rounds, vec![ok(1), ok(2), ok(3)]);
    assert_eq!((measured.values(), measured.failures), (vec![0.0; 3], 0));

    let failing = AnalysisSpec {
        failure_limit: 1,
        ..spec(&prometheus, &error_share("2.1"), 5)
    };
    let (failed, rounds) = analyse(&failing);
    let err = failed.unwrap_err();
    assert_eq!(rounds.len(), 2, "stopped at the second failure: {rounds:?}");
    let mut values = Vec::new();
    for (i, (round, count, value, passed, detail, failures)) in rounds.iter().enumerate() {
        let v = value.expect("a value");
        assert!((0.3..0.7).contains(&v), "{v}");
        assert_eq!(
            (*round, *count, *passed, *failures),
            (i as u32 + 1, 5, false, i as u32 + 1)
        );
        // Rounded for people, as long as that keeps it beside its bound.
        let shown = shown_against(&failing, v);
        assert_eq!(detail, &format!("{shown} > 0.01"));
        assert!(shown.len() <= 6, "{shown}");
        values.push(shown);
    }
    assert_eq!(
        (err.kind, err.cause),
        (ErrorKind::AnalysisFailed, Some("out_of_bounds"))
    );
    assert_eq!(
        err.message,
        format!(
            "analysis.public.errors failed: 2 of 2 measurements failed, want <= 0.01 ({}; 1 failure allowed; stopped at round 2 of 5)",
            values.join(", ")
        )
    );
}

#[test]
fn an_analysis_says_no_data_what_prometheus_refused_and_that_it_is_gone() {
    let app = DemoApp::start("2.0", &[]);
    let mut prometheus = Prometheus::start(&[app.address()]);
    prometheus.wait_for(
        "count(demo_app_requests_total)",
        Duration::from_secs(30),
        |n| n >= 2.0,
    );

    // Nothing matches: a failure, unless the block says otherwise.
    let nothing = r#"sum(rate(demo_app_requests_total{release="9.9"}[5s]))"#;
    let (failed, rounds) = analyse(&spec(&prometheus, nothing, 2));
    assert_eq!(rounds, vec![(1, 2, None, false, "no data".into(), 1)]);
    let err = failed.unwrap_err();
    assert_eq!(err.cause, Some("no_data"));
    assert!(
        err.message
            .ends_with("(no data; no failure allowed; stopped at round 1 of 2)"),
        "{}",
        err.message
    );
    let passing = AnalysisSpec {
        no_data: NoData::Pass,
        ..spec(&prometheus, nothing, 2)
    };
    let (passed, rounds) = analyse(&passing);
    assert_eq!(passed.unwrap().failures, 0);
    let pass = |round| {
        (
            round,
            2,
            None,
            true,
            "no data (passes: no_data = \"pass\")".to_owned(),
            0,
        )
    };
    assert_eq!(rounds, vec![pass(1), pass(2)]);

    // Invalid PromQL: Prometheus' own words.
    let (failed, rounds) = analyse(&spec(
        &prometheus,
        "sum(rate(demo_app_requests_total[5s]",
        1,
    ));
    let detail = &rounds[0].4;
    assert!(
        detail.starts_with(r#"Prometheus: invalid parameter "query": "#),
        "{detail}"
    );
    assert!(
        detail.contains("parse error") && detail.ends_with("(bad_data)"),
        "{detail}"
    );
    assert_eq!(failed.unwrap_err().cause, Some("query_error"));

    // Several series: the query must say how to make them one.
    let (failed, rounds) = analyse(&spec(&prometheus, "demo_app_requests_total", 1));
    let detail = &rounds[0].4;
    assert!(
        detail.contains(" series ({__name__=\"demo_app_requests_total\","),
        "{detail}"
    );
    assert!(
        detail.ends_with("; aggregate the query (sum(), max())"),
        "{detail}"
    );
    assert_eq!(failed.unwrap_err().cause, Some("several_series"));

    // Prometheus killed by its pid: each round names the refused connection.
    let url = prometheus.url();
    let gone = AnalysisSpec {
        failure_limit: 1,
        ..spec(&prometheus, "vector(0)", 3)
    };
    let (before, _) = analyse(&AnalysisSpec {
        count: 1,
        ..gone.clone()
    });
    assert!(before.is_ok(), "{before:?}");
    prometheus.stop();
    let (failed, rounds) = analyse(&gone);
    let refused = format!("{url}/api/v1/query: connection refused (nothing listens there)");
    assert_eq!(
        rounds,
        vec![
            (1, 3, None, false, refused.clone(), 1),
            (2, 3, None, false, refused.clone(), 2),
        ]
    );
    let err = failed.unwrap_err();
    assert_eq!(
        (err.kind, err.cause),
        (ErrorKind::AnalysisFailed, Some("refused"))
    );
    assert!(
        err.message.ends_with(&format!(
            "({refused} (x2); 1 failure allowed; stopped at round 2 of 3)"
        )),
        "{}",
        err.message
    );
}

/// Blue and green demo-apps behind HAProxy; with `prometheus`, the router
/// has an `after` analysis of the new release's 5xx share.
fn e2e_config(
    h: &crate::haproxy_support::HaproxyGuard,
    prometheus: Option<(&str, &str)>,
    (blue, blue_release, blue_flags): (u16, &str, &str),
    (green, green_release, green_flags): (u16, &str, &str),
    live: &str,
) -> String {
    let demo = demo_app_bin();
    let colour = |name: &str, port: u16, release: &str, flags: &str| {
        format!(
            r#"
environment "{name}" {{
  release  = "{release}"
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["{demo}", "--port", "{port}", "--release", "{release}"{flags}]
    grace   = "2s"
  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
    timeout  = "10s"
  }}
}}
"#,
            demo = demo.display()
        )
    };
    // Early rounds may see no traffic yet (0/0 = NaN): two are tolerated.
    let analysis = prometheus.map_or(String::new(), |(url, when)| {
        format!(
            r#"
  analysis "errors" {{
    prometheus    = "{url}"
    query         = <<-EOT
      sum(rate(demo_app_requests_total{{release="{{{{target_release}}}}",path="/",status=~"5.."}}[5s]))
        /
      sum(rate(demo_app_requests_total{{release="{{{{target_release}}}}",path="/"}}[5s]))
    EOT
    max           = 0.01
    when          = "{when}"
    initial_delay = "3s"
    interval      = "1s"
    count         = 5
    failure_limit = 2
  }}"#
        )
    });
    format!(
        "{}{}\nrouter \"public\" {{\n  live = environment.{live}\n  haproxy {{\n    socket = \"{}\"\n    map    = \"{}\"\n  }}{analysis}\n}}\n",
        colour("blue", blue, blue_release, blue_flags),
        colour("green", green, green_release, green_flags),
        h.socket().display(),
        h.map_path().display(),
    )
}

/// The JSON lines of `stdout` of type `kind`.
fn lines_of<'a>(lines: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

#[test]
fn an_after_analysis_under_live_traffic_keeps_a_healthy_release_and_switches_back_from_a_bad_one() {
    use crate::haproxy_support::{HaproxyGuard, HaproxySetup};
    use crate::support::{Case, ProcessReaper};

    let (blue, green) = (free_port(), free_port());
    let mut setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{blue}"),
        &format!("127.0.0.1:{green}"),
        "blue",
    );
    setup.map = "# live colours\n".to_string();
    let h = HaproxyGuard::start(&setup);
    let case = Case::with_main(&e2e_config(
        &h,
        None,
        (blue, "1.0", ""),
        (green, "1.0", ""),
        "blue",
    ));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    let prometheus =
        Prometheus::start(&[format!("127.0.0.1:{blue}"), format!("127.0.0.1:{green}")]);
    let _traffic = Traffic::to(&[h.port]);
    let url = prometheus.url();

    // Green with a healthy 2.0: the analysis passes after the switch.
    case.write(
        "main.hcl",
        &e2e_config(
            &h,
            Some((&url, "after")),
            (blue, "1.0", ""),
            (green, "2.0", ""),
            "green",
        ),
    );
    let good = case.run(&["apply", "--auto-approve"]).code(0);
    let rounds: Vec<&str> = good
        .stdout
        .lines()
        .filter(|l| l.starts_with("analysis.public.errors: ") && l.contains("/5 "))
        .collect();
    assert!(rounds.len() >= 3, "{}", good.stdout);
    assert!(rounds.last().unwrap().ends_with(" ok"), "{}", good.stdout);
    assert!(
        rounds.iter().any(|l| l.contains(" 0 <= 0.01 ok")),
        "{}",
        good.stdout
    );
    let switch = good.stdout.find("cutover.public: done").expect("switched");
    assert!(
        good.stdout.find("analysis.public.errors: 1/5").unwrap() > switch,
        "{}",
        good.stdout
    );

    // Blue with a 3.0 that fails half its requests: the router goes back to green.
    let bad = (blue, "3.0", r#", "--error-rate", "0.5""#);
    case.write(
        "main.hcl",
        &e2e_config(&h, Some((&url, "after")), bad, (green, "2.0", ""), "blue"),
    );
    let failed = case.run(&["apply", "--auto-approve", "--json"]).code(1);
    let lines: Vec<serde_json::Value> = failed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let rounds = lines_of(&lines, "analysis_round");
    assert_eq!(
        rounds.len(),
        3,
        "stopped at the third failure: {}",
        failed.stdout
    );
    for (i, round) in rounds.iter().enumerate() {
        assert_eq!(
            (
                &round["id"],
                &round["round"],
                &round["passed"],
                &round["failures"]
            ),
            (
                &"analysis.public.errors".into(),
                &(i + 1).into(),
                &false.into(),
                &(i + 1).into()
            ),
            "{round}"
        );
    }
    // Once traffic shows, the share is about a half.
    let last = rounds.last().unwrap();
    assert!(
        last["value"]
            .as_f64()
            .is_some_and(|v| (0.3..0.7).contains(&v)),
        "{last}"
    );
    let position = |kind: &str| lines.iter().position(|l| l["type"] == kind).unwrap();
    assert!(
        position("cutover_done") < position("analysis_round"),
        "{}",
        failed.stdout
    );
    let finished = lines
        .iter()
        .position(|l| l["type"] == "step_finished" && l["id"] == "analysis.public.errors")
        .expect("the analysis finished");
    assert_eq!(lines[finished]["error_kind"], "analysis_failed");
    assert!(finished > position("analysis_round"));
    let back = lines_of(&lines, "switched_back");
    assert_eq!(
        (back.len(), &back[0]["router"], &back[0]["to"]),
        (1, &"public".into(), &"green".into()),
        "{}",
        failed.stdout
    );
    let summary = lines_of(&lines, "summary")[0];
    assert_eq!(summary["failed"]["id"], "analysis.public.errors");
    let (status, body) = h.get("/");
    assert_eq!(
        (status, body.trim()),
        (200, "demo-app release 2.0"),
        "back on green"
    );
    // Blue runs the release just found wrong: no way back to it is offered.
    let router = &case.state()["routers"]["public"];
    assert_eq!(
        (&router["live"], &router["previous"]),
        (&"green".into(), &serde_json::Value::Null),
        "{router}"
    );
    case.run(&["rollback", "--auto-approve"])
        .code(1)
        .stderr_has("no router has a previous colour recorded in the state");
}

#[test]
fn a_before_analysis_stops_a_release_answering_five_percent_errors_before_its_switch() {
    let World {
        h,
        blue,
        green,
        case,
        _reaper,
        prometheus,
    } = World::start();
    let b = (blue, "1.0", "");
    // Test traffic straight to the idle green, live traffic through HAProxy.
    let _traffic = Traffic::to(&[h.port, green]);
    let bad = (green, "3.0", r#", "--error-rate", "0.05""#);
    let before = Some((prometheus.url(), "before"));
    let before = before.as_ref().map(|(u, w)| (u.as_str(), *w));
    case.write("main.hcl", &e2e_config(&h, before, b, bad, "green"));
    let failed = case.run(&["apply", "--auto-approve", "--json"]).code(1);
    let lines: Vec<serde_json::Value> = failed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let rounds = lines_of(&lines, "analysis_round");
    assert_eq!(
        rounds.len(),
        3,
        "stopped at the third failure: {}",
        failed.stdout
    );
    let last = rounds.last().unwrap();
    assert!(
        last["value"]
            .as_f64()
            .is_some_and(|v| (0.02..0.1).contains(&v)),
        "about 5%: {last}"
    );
    let at = |kind: &str, id: &str| {
        lines
            .iter()
            .position(|l| l["type"] == kind && l["id"] == id)
    };
    assert!(
        at("step_finished", "health.green") < at("step_started", "analysis.public.errors"),
        "after green's gate: {}",
        failed.stdout
    );
    assert_eq!(
        at("step_started", "cutover.public"),
        None,
        "{}",
        failed.stdout
    );
    assert!(lines_of(&lines, "switched_back").is_empty());
    let map = std::fs::read_to_string(h.map_path()).unwrap();
    assert!(map.contains("public blue"), "blue stays live: {map}");
    assert_eq!(
        case.state()["environments"]["green"]["release"],
        "3.0",
        "green stays deployed"
    );
}

#[test]
fn an_after_analysis_cut_short_by_a_kill_runs_again_at_the_next_apply() {
    let World {
        h,
        blue,
        green,
        case,
        _reaper,
        prometheus,
    } = World::start();
    let b = (blue, "1.0", "");
    let _traffic = Traffic::to(&[h.port]);
    let url = prometheus.url();
    let after = Some((url.as_str(), "after"));
    case.write(
        "main.hcl",
        &e2e_config(&h, after, b, (green, "2.0", ""), "green"),
    );

    // Killed while the after analysis measures: green is live, unchecked.
    let mut apply = case.spawn(&["apply", "--auto-approve", "--json"]);
    apply.wait_for_line("\"analysis_round\"", Duration::from_secs(60));
    apply.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = apply.finish(Duration::from_secs(10));
    // force-unlock folds what the killed apply journaled into the state.
    let lock = case.path().join("cutover.state.json.lock");
    if let Some(id) = crate::crash::lock_id(&lock) {
        case.run(&["force-unlock", &id]).code(0);
    }
    let state = case.state();
    assert_eq!(state["routers"]["public"]["live"], "green");
    assert_eq!(
        state["unchecked"]["public"],
        serde_json::json!(["errors"]),
        "{state}"
    );

    // The next plan says so and runs it again; nothing switches.
    case.run(&["plan", "--detailed-exitcode"])
        .code(2)
        .stdout_has("# analysis.public.errors: router.public went live on green in an earlier apply that stopped before this check passed: it runs now, under live traffic");
    let again = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let lines: Vec<serde_json::Value> = again
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(
        lines_of(&lines, "cutover_done").is_empty(),
        "{}",
        again.stdout
    );
    assert_eq!(
        lines_of(&lines, "analysis_round").len(),
        5,
        "{}",
        again.stdout
    );
    assert!(
        case.state().get("unchecked").is_none(),
        "cleared once it passed"
    );
    case.run(&["plan", "--detailed-exitcode"]).code(0);
}

/// Blue (1.0) live behind a real HAProxy, green (1.0) idle, both applied, and
/// a real Prometheus scraping them: where the end-to-end analyses start.
struct World {
    h: crate::haproxy_support::HaproxyGuard,
    blue: u16,
    green: u16,
    case: crate::support::Case,
    _reaper: crate::support::ProcessReaper,
    prometheus: Prometheus,
}

impl World {
    fn start() -> World {
        use crate::haproxy_support::{HaproxyGuard, HaproxySetup};
        use crate::support::{Case, ProcessReaper};

        let (blue, green) = (free_port(), free_port());
        let mut setup = HaproxySetup::blue_green(
            &format!("127.0.0.1:{blue}"),
            &format!("127.0.0.1:{green}"),
            "blue",
        );
        setup.map = "# live colours\n".to_string();
        let h = HaproxyGuard::start(&setup);
        let b = (blue, "1.0", "");
        let case = Case::with_main(&e2e_config(&h, None, b, (green, "1.0", ""), "blue"));
        let reaper = ProcessReaper(case.path().join("cutover.state.json"));
        case.run(&["apply", "--auto-approve"]).code(0);
        let prometheus =
            Prometheus::start(&[format!("127.0.0.1:{blue}"), format!("127.0.0.1:{green}")]);
        World {
            h,
            blue,
            green,
            case,
            _reaper: reaper,
            prometheus,
        }
    }
}
