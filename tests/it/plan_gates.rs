//! `plan --gates` against real parts: HAProxy, demo-app colours started by
//! cutover, a Prometheus scraping them. The checks run read-only at plan
//! time (nothing switches, nothing deploys, the state is not written), the
//! results are in the JSON, human and markdown views, a failure is
//! `not_ready` and exit 1 with `--detailed-exitcode`, and a saved plan's
//! results never stand in for the gate apply runs.

use std::path::Path;

use serde_json::Value;

use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::prometheus_support::Prometheus;
use crate::support::{Case, ProcessReaper};

/// A demo-app colour whose faults come from `NAME.fault` in the case's
/// directory (absent: none).
fn colour(dir: &Path, name: &str, port: u16, release: &str) -> String {
    let fault = dir.join(format!("{name}.fault"));
    let flags = format!(", \"--fault-file\", \"{}\"", fault.display());
    crate::signals::colour(name, port, release, &flags, "2s")
}

/// A test that records what it saw and passes; one that would write (not
/// `at_plan`); a `before` analysis that green is scraped, an `after` one.
fn checks(prometheus: &str, green: u16) -> String {
    format!(
        r#"
  test "smoke" {{
    command = ["sh", "-c", "echo $CUTOVER_AT $CUTOVER_TARGET >> smoke.seen"]
    at_plan = true
    timeout = "10s"
  }}
  test "writes" {{
    command = ["sh", "-c", "touch wrote"]
  }}
  analysis "up" {{
    prometheus = "{prometheus}"
    query      = "up{{instance=\"127.0.0.1:{green}\"}}"
    min        = 1
    count      = 2
    interval   = "200ms"
    initial_delay = "100ms"
  }}
  analysis "live" {{
    prometheus = "{prometheus}"
    query      = "up{{instance=\"127.0.0.1:{green}\"}}"
    min        = 1
    when       = "after"
    count      = 1
    initial_delay = "100ms"
  }}
"#
    )
}

struct World {
    // First: fields drop in order, and the reaper reads the state file
    // that `case`'s directory holds (declared last, it found the directory
    // gone and every test left its two demo-apps running).
    _reaper: ProcessReaper,
    h: HaproxyGuard,
    case: Case,
    ports: (u16, u16),
}

impl World {
    /// Blue and green running release 1, blue live.
    fn start() -> World {
        let ports = (free_port(), free_port());
        let mut setup = HaproxySetup::blue_green(
            &format!("127.0.0.1:{}", ports.0),
            &format!("127.0.0.1:{}", ports.1),
            "blue",
        );
        setup.map = "# live colours\n".to_string();
        let h = HaproxyGuard::start(&setup);
        let case = Case::new();
        let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
        let w = World {
            _reaper,
            h,
            case,
            ports,
        };
        w.write("blue", "1", "", "");
        w.case.run(&["apply", "--auto-approve"]).code(0);
        w
    }

    fn write(&self, live: &str, green: &str, checks: &str, settings: &str) {
        let dir = self.case.path();
        self.case.write(
            "main.hcl",
            &format!(
                r#"{settings}{}{}
router "public" {{
  live = environment.{live}
  haproxy {{
    socket = "{}"
    map    = "{}"
  }}
{checks}
}}
"#,
                colour(dir, "blue", self.ports.0, "1"),
                colour(dir, "green", self.ports.1, green),
                self.h.socket().display(),
                self.h.map_path().display(),
            ),
        );
    }

    fn live(&self) -> Option<String> {
        self.h.map_value("public")
    }

    fn fault(&self, name: &str, fault: &str) {
        std::fs::write(self.case.path().join(format!("{name}.fault")), fault).unwrap();
    }

    fn seen(&self) -> String {
        std::fs::read_to_string(self.case.path().join("smoke.seen")).unwrap_or_default()
    }
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `(step, outcome, value)` of each check of the plan's only cut-over.
fn outcomes(doc: &Value) -> Vec<(String, String, Option<String>)> {
    let readiness = doc["readiness"].as_array().expect("readiness");
    assert_eq!(readiness.len(), 1, "{readiness:?}");
    readiness[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["step"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
                c["value"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn owned(list: &[(&str, &str, Option<&str>)]) -> Vec<(String, String, Option<String>)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.map(str::to_owned)))
        .collect()
}

#[test]
fn a_ready_colour_is_checked_read_only_and_the_saved_plan_still_gates_at_apply() {
    let w = World::start();
    let prometheus = Prometheus::start(&[format!("127.0.0.1:{}", w.ports.1)]);
    w.write("green", "1", &checks(&prometheus.url(), w.ports.1), "");
    let before = w.case.state_bytes().expect("a state");

    let plan = w
        .case
        .run(&["plan", "--gates", "--json", "--detailed-exitcode"])
        .code(2);
    let doc = json(&plan.stdout);
    assert_eq!(doc["format_version"], "1.6");
    assert_eq!(doc["summary"]["outcome"], "cutover");
    let r = &doc["readiness"][0];
    assert_eq!(
        (&r["router"], &r["target"], &r["verdict"]),
        (&"public".into(), &"green".into(), &"ready".into())
    );
    assert_eq!(
        outcomes(&doc),
        owned(&[
            ("health.green", "passed", Some("1/1")),
            ("analysis.public.up", "passed", Some("1 >= 1")),
            ("test.public.smoke", "passed", Some("exit 0")),
            ("test.public.writes", "skipped", None),
            ("analysis.public.live", "skipped", None),
        ])
    );
    let checked_at = r["checked_at"].as_str().unwrap();
    assert!(
        checked_at.ends_with('Z') && checked_at.len() == 20,
        "{checked_at}"
    );
    // Read-only: the router, the state, the processes as they were; the
    // test that may write never ran; the one that ran knew it was a plan.
    assert_eq!(w.live().as_deref(), Some("blue"));
    assert_eq!(
        w.case.state_bytes().unwrap(),
        before,
        "the plan wrote the state"
    );
    assert!(!w.case.path().join("wrote").exists());
    assert_eq!(w.seen(), "plan green\n");
    for line in [
        "Checking the readiness of 1 cut-over read-only",
        "\n  health.green: checking, at most 2s\n",
        "\n  health.green: passed (1/1, ",
        "\n  test.public.smoke: passed (exit 0, ",
        "\n  analysis.public.up: checking, at most about ",
    ] {
        assert!(
            plan.stderr.contains(line),
            "{line:?} not in:\n{}",
            plan.stderr
        );
    }

    // The reviewer's views.
    let md = w
        .case
        .run(&["plan", "--gates", "--markdown"])
        .code(0)
        .stdout;
    for part in [
        "## cutover plan: 1 cut-over",
        "Outcome: `cutover`.",
        "**Readiness, checked read-only at ",
        "- router.public → green: ready · health 1/1 in ",
        " · test smoke passed (exit 0, ",
        " · analysis up 1 &gt;= 1 (",
        "  - test writes: not marked `at_plan = true` (a test may write): runs during apply\n",
    ] {
        assert!(md.contains(part), "{part:?} missing from:\n{md}");
    }
    let human = w.case.run(&["plan", "--gates"]).code(0).stdout;
    assert!(
        human.contains("Readiness, checked read-only at ")
            && human.contains("  router.public -> green: ready · health 1/1 in ")
            && human.contains(
                "      analysis live: after the switch, under live traffic: runs during apply"
            ),
        "{human}"
    );

    // Saved while ready; green answers 500 since: apply runs the gate
    // itself, and says the plan's result no longer holds.
    w.case
        .run(&[
            "plan",
            "--gates",
            "--out",
            w.case.path().join("ready.plan").to_str().unwrap(),
        ])
        .code(0);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(w.case.path().join("ready.plan")).unwrap()).unwrap();
    let saved_at = saved["document"]["readiness"][0]["checked_at"]
        .as_str()
        .unwrap()
        .to_owned();
    w.fault("green", "error");
    let failed = w
        .case
        .run(&[
            "apply",
            "--json",
            w.case.path().join("ready.plan").to_str().unwrap(),
        ])
        .code(1);
    let lines: Vec<Value> = failed
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let gate = lines
        .iter()
        .find(|l| l["type"] == "step_finished" && l["id"] == "health.green")
        .unwrap_or_else(|| panic!("no gate: {}", failed.stdout));
    assert_eq!(gate["ok"], false);
    let message = gate["error"].as_str().unwrap();
    assert!(
        message.ends_with(&format!("(it passed at plan time, {saved_at}: 1/1)")),
        "{message}"
    );
    assert!(
        !lines.iter().any(|l| l["type"] == "step_started"
            && (l["id"] == "cutover.public" || l["id"] == "test.public.smoke")),
        "nothing after the failed gate may start: {}",
        failed.stdout
    );
    assert_eq!(w.live().as_deref(), Some("blue"));

    // Healthy again: the saved plan's apply runs every check itself, the
    // test with CUTOVER_AT=apply, and switches.
    w.fault("green", "");
    // Its failed scrapes made `up` 0: wait for Prometheus to see it again.
    let up = format!("up{{instance=\"127.0.0.1:{}\"}}", w.ports.1);
    prometheus.wait_for(&up, std::time::Duration::from_secs(30), |v| v == 1.0);
    let plan_file = w.case.path().join("again.plan");
    w.case
        .run(&["plan", "--gates", "--out", plan_file.to_str().unwrap()])
        .code(0);
    let applied = w
        .case
        .run(&["apply", "--json", plan_file.to_str().unwrap()])
        .code(0);
    let started: Vec<String> = applied
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "step_started")
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    for id in [
        "health.green",
        "test.public.smoke",
        "test.public.writes",
        "analysis.public.up",
    ] {
        let at = started.iter().position(|s| s == id);
        let cut = started.iter().position(|s| s == "cutover.public");
        assert!(
            at.is_some() && at < cut,
            "{id} before the cut-over: {started:?}"
        );
    }
    assert_eq!(w.live().as_deref(), Some("green"));
    assert!(w.case.path().join("wrote").exists());
    assert!(
        w.seen().ends_with("plan green\napply green\n"),
        "{}",
        w.seen()
    );
}

#[test]
fn a_colour_answering_500_is_not_ready_exits_1_and_moves_nothing() {
    let w = World::start();
    // No Prometheus listens there: with green's gate failed, no analysis
    // may ask it.
    w.write("green", "1", &checks("http://127.0.0.1:9", w.ports.1), "");
    w.fault("green", "error");
    let before = w.case.state_bytes().expect("a state");
    let plan = w
        .case
        .run(&["plan", "--gates", "--json", "--detailed-exitcode"])
        .code(1);
    let doc = json(&plan.stdout);
    assert_eq!(doc["summary"]["outcome"], "not_ready");
    assert_eq!(doc["readiness"][0]["verdict"], "not_ready");
    assert_eq!(
        outcomes(&doc),
        owned(&[
            ("health.green", "failed", Some("status 500")),
            ("analysis.public.up", "skipped", None),
            ("test.public.smoke", "skipped", None),
            ("test.public.writes", "skipped", None),
            ("analysis.public.live", "skipped", None),
        ])
    );
    let smoke = &doc["readiness"][0]["checks"][2];
    assert_eq!(
        smoke["reason"],
        "not run: green did not pass its health gate"
    );
    assert!(smoke.get("duration_ms").is_none(), "{smoke}");
    assert_eq!(
        w.seen(),
        "",
        "a test ran against a colour that failed its gate"
    );

    let md = w
        .case
        .run(&["plan", "--gates", "--markdown", "--detailed-exitcode"])
        .code(1)
        .stdout;
    for part in [
        "## cutover plan: 1 cut-over, NOT READY",
        "Outcome: `not_ready`.",
        "> **Not ready:** a cut-over's check failed at plan time",
        "- router.public → green: NOT READY · health failed: status 500 (",
        "  - health failed:\n\n    ```text\n    environment.green did not pass its health check within 2s",
    ] {
        assert!(md.contains(part), "{part:?} missing from:\n{md}");
    }
    // Without --gates, the plan is as before.
    let plain = w
        .case
        .run(&["plan", "--json", "--detailed-exitcode"])
        .code(2);
    assert!(json(&plain.stdout).get("readiness").is_none());
    assert_eq!(w.live().as_deref(), Some("blue"));
    assert_eq!(w.case.state_bytes().unwrap(), before);
}

#[test]
fn a_colour_the_plan_deploys_first_is_not_checked_and_plan_gates_ci_turns_it_on() {
    let w = World::start();
    // Green gets release 2 with the cut-over: nothing to check yet.
    let settings = "cutover {\n  plan_gates = \"ci\"\n}\n";
    w.write(
        "green",
        "2",
        &checks("http://127.0.0.1:9", w.ports.1),
        settings,
    );
    let plan = w
        .case
        .run_env(
            &["plan", "--json", "--detailed-exitcode"],
            &[("CI", "true")],
        )
        .code(2);
    let doc = json(&plan.stdout);
    assert_eq!(doc["readiness"][0]["verdict"], "not_deployed");
    for (step, outcome, value) in outcomes(&doc) {
        assert_eq!((outcome.as_str(), value), ("not_deployed", None), "{step}");
    }
    assert_eq!(w.seen(), "");
    // Green still runs release 1: nothing was deployed.
    let (_, body) = crate::prometheus_support::http_get(w.ports.1, "/").unwrap();
    assert!(body.trim().ends_with(" 1"), "{body}");
    let human = w.case.run_env(&["plan"], &[("CI", "true")]).code(0).stdout;
    assert!(
        human.contains("  router.public -> green: not deployed yet: checked during apply\n"),
        "{human}"
    );
    // Not in CI, or turned off: no checks.
    for (env, args) in [
        (&[("CI", "")][..], &["plan", "--json"][..]),
        (&[("CI", "false")][..], &["plan", "--json"][..]),
        (&[("CI", "true")][..], &["plan", "--json", "--no-gates"][..]),
    ] {
        let doc = json(&w.case.run_env(args, env).code(0).stdout);
        assert!(doc.get("readiness").is_none(), "{env:?} {args:?}");
    }
    w.case
        .run(&["plan", "--gates", "--no-gates"])
        .code(1)
        .stderr_has("--no-gates");
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn gone(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    matches!(state, None | Some(Some('Z')))
}

#[test]
fn sigint_during_plan_gates_stops_a_test_with_its_process_group_and_changes_nothing() {
    use std::time::Duration;
    let w = World::start();
    let hanging = r#"
  test "slow" {
    command = ["sh", "-c", "sleep 300 & echo $! > child.pid; wait"]
    at_plan = true
    timeout = "10m"
  }
"#;
    w.write("green", "1", hanging, "");
    let before = w.case.state_bytes().expect("a state");
    let plan = w.case.spawn(&["plan", "--gates"]);
    let pid_file = w.case.path().join("child.pid");
    let child = || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    };
    crate::crash::wait_until("the test's child started", Duration::from_secs(30), || {
        child().is_some()
    });
    let child = child().unwrap();
    assert!(!gone(child));
    plan.signal(nix::sys::signal::Signal::SIGINT);
    let run = plan.finish(Duration::from_secs(10));
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("plan --gates stopped by SIGINT while it checked readiness"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "", "a plan stopped half-way prints no plan");
    crate::crash::wait_until("the test's child is gone", Duration::from_secs(10), || {
        gone(child)
    });
    assert_eq!(w.live().as_deref(), Some("blue"));
    assert_eq!(w.case.state_bytes().unwrap(), before);
}
