//! A router's `test` hooks against a real HAProxy and real processes: a
//! failing test keeps the live colour, the passing one lets the switch
//! happen; a test that runs too long is killed with its process group;
//! several tests run at once; the preview URL they get shows the target.

use std::time::Duration;

use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::support::{demo_environment, Case, ProcessReaper};
use crate::webhook_support::{Receiver, Reply};

/// Blue (release 1) and green (release `green`) behind `public`, live on
/// `live`, with these `test` blocks; green previewed.
fn config(h: &HaproxyGuard, ports: (u16, u16), green: &str, live: &str, tests: &str) -> String {
    let colour = demo_environment;
    format!(
        r#"{}{}
router "public" {{
  live        = environment.{live}
  preview     = environment.green
  preview_url = "http://127.0.0.1:{preview}/"
  haproxy {{
    socket = "{socket}"
    map    = "{map}"
  }}
{tests}
}}
"#,
        colour("blue", ports.0, "1"),
        colour("green", ports.1, green),
        preview = h.preview_port.expect("a preview frontend"),
        socket = h.socket().display(),
        map = h.map_path().display(),
    )
}

fn haproxy(ports: (u16, u16)) -> HaproxyGuard {
    let mut setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{}", ports.0),
        &format!("127.0.0.1:{}", ports.1),
        "blue",
    );
    setup.preview = true;
    setup.map = "# live colours\n".to_string();
    HaproxyGuard::start(&setup)
}

fn release_through(h: &HaproxyGuard) -> String {
    let (status, body) = h.get("/");
    assert_eq!(status, 200, "through HAProxy: {body}");
    body.trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The JSON lines of an apply's stdout.
fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `(type, id, ok)` of the step lines, in order.
fn steps(stdout: &str) -> Vec<(String, String, bool)> {
    lines(stdout)
        .iter()
        .filter(|v| matches!(v["type"].as_str(), Some("step_started" | "step_finished")))
        .map(|v| {
            (
                v["type"].as_str().unwrap().to_owned(),
                v["id"].as_str().unwrap().to_owned(),
                v["ok"].as_bool().unwrap_or(true),
            )
        })
        .collect()
}

fn position(steps: &[(String, String, bool)], kind: &str, id: &str) -> Option<usize> {
    steps.iter().position(|(t, i, _)| t == kind && i == id)
}

const SMOKE: &str = r#"
  test "smoke" {
    command = ["sh", "-c", "env | grep ^CUTOVER_ | sort > seen.env; echo checking $CUTOVER_TARGET; test -e ready || { echo not ready yet >&2; exit 4; }"]
    timeout = "20s"
  }
"#;

#[test]
fn a_failing_test_keeps_the_live_colour_and_a_passing_one_lets_it_switch() {
    let ports = (free_port(), free_port());
    let h = haproxy(ports);
    let case = Case::with_main(&config(&h, ports, "1", "blue", SMOKE));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    // Blue goes live first (green is created and previewed too): its test
    // passes.
    std::fs::write(case.path().join("ready"), "").unwrap();
    case.run(&["apply", "--auto-approve"]).code(0);
    std::fs::remove_file(case.path().join("ready")).unwrap();
    assert_eq!(release_through(&h), "1");

    // Green gets release 2 and the cut-over; its test fails.
    case.write("main.hcl", &config(&h, ports, "2", "green", SMOKE));
    case.run(&["plan"])
        .code(0)
        .stdout_has("# test.public.smoke: `sh -c")
        .stdout_has("runs against green (through the preview at http://127.0.0.1:");
    let failed = case.run(&["apply", "--auto-approve", "--json"]).code(1);
    let order = steps(&failed.stdout);
    let test_end = position(&order, "step_finished", "test.public.smoke").expect("the test ran");
    assert!(!order[test_end].2, "the test failed: {order:?}");
    assert!(
        position(&order, "step_finished", "health.green").unwrap()
            < position(&order, "step_started", "test.public.smoke").unwrap(),
        "the test runs after green's gate: {order:?}"
    );
    assert_eq!(
        position(&order, "step_started", "cutover.public"),
        None,
        "{order:?}"
    );
    let finished = lines(&failed.stdout)
        .into_iter()
        .find(|v| v["type"] == "step_finished" && v["id"] == "test.public.smoke")
        .unwrap();
    assert_eq!(finished["error_kind"], "test_failed");
    let error = finished["error"].as_str().unwrap();
    assert!(error.contains("exited with status 4"), "{error}");
    assert!(
        error.contains("  | not ready yet"),
        "the tail of its output: {error}"
    );
    assert!(error.contains("  | checking green"), "{error}");
    assert_eq!(release_through(&h), "1", "blue stays live");

    // What the test saw: its router, its target and the preview showing it.
    let seen = std::fs::read_to_string(case.path().join("seen.env")).unwrap();
    let var = |name: &str| {
        seen.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {seen}"))
            .to_owned()
    };
    assert_eq!(var("CUTOVER_ROUTER"), "public");
    assert_eq!(var("CUTOVER_TARGET"), "green");
    assert_eq!(var("CUTOVER_TEST"), "smoke");
    assert_eq!(
        var("CUTOVER_TARGET_ENDPOINTS"),
        format!("127.0.0.1:{}", ports.1)
    );
    let preview = var("CUTOVER_PREVIEW_URL");
    let port: u16 = preview
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let (status, body) =
        crate::haproxy_support::http_get(std::net::SocketAddr::from(([127, 0, 0, 1], port)), "/");
    assert_eq!(
        (status, body.trim().rsplit(' ').next()),
        (200, Some("2")),
        "the preview shows green 2"
    );

    // The test passes now: the switch happens after it.
    std::fs::write(case.path().join("ready"), "").unwrap();
    let ok = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let order = steps(&ok.stdout);
    assert!(
        position(&order, "step_finished", "test.public.smoke").unwrap()
            < position(&order, "step_started", "cutover.public").unwrap(),
        "{order:?}"
    );
    assert_eq!(release_through(&h), "2");
    case.run(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_test_past_its_timeout_is_killed_with_its_children_and_tests_run_at_once() {
    let ports = (free_port(), free_port());
    let h = haproxy(ports);
    // `a` and `b` each wait for the other's file: run one after the other,
    // the first would time out. `slow` leaves a child behind and outlives
    // its timeout once `slow-on` exists.
    let tests = r#"
  test "a" {
    command = ["sh", "-c", "touch a.here; while [ ! -e b.here ]; do sleep 0.05; done"]
    timeout = "20s"
  }
  test "b" {
    command = ["sh", "-c", "touch b.here; while [ ! -e a.here ]; do sleep 0.05; done"]
    timeout = "20s"
  }
  test "slow" {
    command = ["sh", "-c", "test -e slow-on || exit 0; sleep 300 & echo $! > child.pid; echo waiting; wait"]
    timeout = "1s"
  }
"#;
    let case = Case::with_main(&config(&h, ports, "1", "blue", tests));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    for f in ["a.here", "b.here"] {
        std::fs::remove_file(case.path().join(f)).unwrap();
    }
    std::fs::write(case.path().join("slow-on"), "").unwrap();
    case.write("main.hcl", &config(&h, ports, "2", "green", tests));
    let run = case.run(&["apply", "--auto-approve", "--json"]).code(1);
    let order = steps(&run.stdout);
    for t in ["test.public.a", "test.public.b"] {
        let end = position(&order, "step_finished", t).unwrap_or_else(|| panic!("{t}: {order:?}"));
        assert!(order[end].2, "{t} passed: both ran at once ({order:?})");
    }
    let slow = lines(&run.stdout)
        .into_iter()
        .find(|v| v["type"] == "step_finished" && v["id"] == "test.public.slow")
        .unwrap();
    assert_eq!(slow["error_kind"], "timeout");
    let error = slow["error"].as_str().unwrap();
    assert!(
        error.contains("did not finish within 1s (its process group was killed)"),
        "{error}"
    );
    assert!(error.contains("  | waiting"), "{error}");
    assert_eq!(position(&order, "step_started", "cutover.public"), None);
    assert_eq!(release_through(&h), "1", "blue stays live");
    let child: i32 = std::fs::read_to_string(case.path().join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };
    let bound = std::time::Instant::now() + Duration::from_secs(5);
    while alive() && std::time::Instant::now() < bound {
        std::thread::yield_now();
    }
    assert!(
        !alive(),
        "the test's child {child} outlived its killed test"
    );
}

#[test]
fn an_apply_paused_before_its_switch_waits_for_cutover_approve_from_another_process() {
    let ports = (free_port(), free_port());
    let h = haproxy(ports);
    // A chat webhook hears that the apply waits, then that it cut over.
    let receiver = Receiver::start(free_port(), Reply::Status(200));
    let notify = format!(
        "\nnotify \"chat\" {{\n  webhook = \"{}\"\n  events  = [\"awaiting_approval\", \"cutover_done\"]\n}}\n",
        receiver.url("/hook")
    );
    let case = Case::with_main(&config(&h, ports, "1", "blue", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    case.write("main.hcl", &(config(&h, ports, "2", "green", "") + &notify));
    case.run(&["plan", "--pause-before-cutover"])
        .code(0)
        .stdout_has("# approve.public: the apply pauses before router.public switches to green, until `cutover approve public` (at most 1h; then nothing switches)");

    // Nothing waits yet: approve refuses.
    case.run(&["approve"])
        .code(1)
        .stderr_has("no apply is waiting for approval");
    let mut apply = case.spawn(&[
        "apply",
        "--auto-approve",
        "--json",
        "--pause-before-cutover",
    ]);
    let waiting = apply.wait_for_line("\"awaiting_approval\"", Duration::from_secs(30));
    let line: serde_json::Value = serde_json::from_str(&waiting).unwrap();
    assert_eq!(line["router"], "public");
    assert_eq!(line["approve"], "cutover approve public");
    let before: Vec<String> = apply.seen.clone();
    assert!(
        before
            .iter()
            .any(|l| l.contains("\"step_finished\"") && l.contains("health.green")),
        "the gate passed before the pause: {before:?}"
    );
    assert_eq!(
        position(&steps(&before.join("\n")), "step_started", "cutover.public"),
        None,
        "no switch before the approval"
    );
    assert_eq!(release_through(&h), "1", "blue is live while it waits");
    // The webhook heard it while the apply waits: the same object.
    let heard = receiver.wait_for(1, Duration::from_secs(20));
    assert_eq!(heard[0].json(), line, "the webhook gets the --json object");

    case.run(&["approve", "public"])
        .code(0)
        .stdout_has("router.public");
    let run = apply.finish(Duration::from_secs(30)).code(0);
    let order: Vec<String> = lines(&run.stdout)
        .iter()
        .filter_map(|v| v["type"].as_str().map(str::to_owned))
        .collect();
    let at = |t: &str| {
        order
            .iter()
            .position(|x| x == t)
            .unwrap_or_else(|| panic!("no {t}: {order:?}"))
    };
    assert!(at("awaiting_approval") < at("approved"), "{order:?}");
    assert!(at("approved") < at("cutover_done"), "{order:?}");
    assert_eq!(release_through(&h), "2");
    assert!(
        !case.path().join("cutover.state.json.approval").exists(),
        "the pause is cleared with the lock"
    );
    let heard: Vec<String> = receiver
        .wait_for(2, Duration::from_secs(20))
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(heard, ["awaiting_approval", "cutover_done"]);
}

#[test]
fn a_pause_nobody_approves_switches_nothing_and_leaves_the_new_colour_deployed() {
    let ports = (free_port(), free_port());
    let h = haproxy(ports);
    let case = Case::with_main(&config(&h, ports, "1", "blue", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    case.write("main.hcl", &config(&h, ports, "2", "green", ""));
    let run = case
        .run(&[
            "apply",
            "--auto-approve",
            "--json",
            "--pause-before-cutover",
            "--approval-timeout",
            "1s",
        ])
        .code(1);
    let failed = lines(&run.stdout)
        .into_iter()
        .find(|v| v["type"] == "step_finished" && v["id"] == "approve.public")
        .unwrap();
    assert_eq!(failed["error_kind"], "not_approved");
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("nothing switched (green stays deployed"));
    assert_eq!(
        position(&steps(&run.stdout), "step_started", "cutover.public"),
        None
    );
    assert_eq!(release_through(&h), "1", "blue stays live");
    let state = case.state();
    assert_eq!(
        state["environments"]["green"]["release"], "2",
        "green stays deployed"
    );
    assert_eq!(state["routers"]["public"]["live"], "blue");
    assert!(!case.path().join("cutover.state.json.approval").exists());
    // A saved plan keeps its pause; the flag cannot be added to one.
    let saved = case.path().join("p.plan");
    let saved = saved.to_str().unwrap();
    case.run(&["plan", "--pause-before-cutover", "--out", saved])
        .code(0);
    case.run(&["apply", saved, "--pause-before-cutover"])
        .code(1)
        .stderr_has("--pause-before-cutover cannot change a saved plan");
}
