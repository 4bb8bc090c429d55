//! SIGINT and SIGTERM during an apply, and a closed stdout, with real
//! signals sent by pid to a real cutover process, against a real HAProxy.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::support::{demo_app_bin, Case, ProcessReaper};

/// A blue-green HAProxy and its two colour ports.
pub fn haproxy() -> (HaproxyGuard, u16, u16) {
    let (blue, green) = (free_port(), free_port());
    let setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{blue}"),
        &format!("127.0.0.1:{green}"),
        "blue",
    );
    (HaproxyGuard::start(&setup), blue, green)
}

/// A `process` colour of demo-app; `flags` are extra arguments.
pub fn colour(name: &str, port: u16, release: &str, flags: &str, timeout: &str) -> String {
    format!(
        r#"
environment "{name}" {{
  release  = "{release}"
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["{demo}", "--port", "{port}", "--release", "{release}"{flags}]
  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
    timeout  = "{timeout}"
  }}
}}
"#,
        demo = demo_app_bin().display()
    )
}

pub fn router(h: &HaproxyGuard, live: &str) -> String {
    format!(
        r#"
router "public" {{
  live = environment.{live}
  haproxy {{
    socket = "{}"
    map    = "{}"
  }}
}}
"#,
        h.socket().display(),
        h.map_path().display()
    )
}

pub fn map_value(h: &HaproxyGuard) -> String {
    std::fs::read_to_string(h.map_path())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("public ").map(str::to_owned))
        .unwrap_or_default()
}

/// Blue live; then green, which never passes its gate, asked to go live.
fn waiting_on_green() -> (HaproxyGuard, Case, ProcessReaper) {
    let (h, blue, green) = haproxy();
    let good = |live| {
        format!(
            "{}{}{}",
            colour("blue", blue, "1", "", "5s"),
            colour("green", green, "1", "", "5s"),
            router(&h, live)
        )
    };
    let case = Case::with_main(&good("blue"));
    let reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    case.write(
        "main.hcl",
        &format!(
            "{}{}{}",
            colour("blue", blue, "1", "", "5s"),
            colour("green", green, "2", r#", "--unhealthy""#, "60s"),
            router(&h, "green")
        ),
    );
    (h, case, reaper)
}

fn stopped_during_the_gate(signal: Signal, name: &str, code: i32) {
    let (h, case, _reaper) = waiting_on_green();
    let mut apply = case.spawn(&["apply", "--auto-approve", "--json"]);
    apply.wait_for_line(r#""health_waiting""#, Duration::from_secs(20));
    apply.signal(signal);
    let run = apply.finish(Duration::from_secs(10));
    assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stopping = lines
        .iter()
        .find(|l| l["type"] == "stopping")
        .expect("a stopping event");
    assert_eq!(stopping["signal"], name);
    assert_eq!(stopping["running"], serde_json::json!(["health.green"]));
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["stopped_by"], name);
    assert_eq!(summary["done"], serde_json::json!(["environment.green"]));
    assert_eq!(summary["interrupted"], serde_json::json!(["health.green"]));
    assert_eq!(summary["not_run"], serde_json::json!(["cutover.public"]));
    assert_eq!(map_value(&h), "blue", "nothing switched");
    assert!(
        !case.path().join("cutover.state.json.lock").exists(),
        "the lock is released"
    );
    // The state recorded what was done: the next plan has only the gate
    // and the cut-over left.
    let plan = case.run(&["plan"]).code(0).stdout;
    assert!(!plan.contains("environment.green will"), "{plan}");
    assert!(
        plan.contains("router.public will cut over: blue -> green"),
        "{plan}"
    );
}

#[test]
fn sigint_during_a_gate_stops_it_records_what_was_done_and_releases_the_lock() {
    stopped_during_the_gate(Signal::SIGINT, "SIGINT", 130);
}

#[test]
fn sigterm_during_a_gate_does_the_same_with_status_143() {
    stopped_during_the_gate(Signal::SIGTERM, "SIGTERM", 143);
}

#[test]
fn a_second_sigint_stops_a_running_change_at_once() {
    let case = Case::new();
    let slow = case.path().join("slow-deploy.sh");
    std::fs::write(&slow, "#!/bin/sh\ncat >/dev/null\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let read = case.path().join("read.sh");
    std::fs::write(
        &read,
        "#!/bin/sh\ncat >/dev/null\necho '{\"exists\": false}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&read, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    case.write(
        "main.hcl",
        r#"
environment "green" {
  release  = "1"
  endpoint = "127.0.0.1:9"
  exec {
    deploy = ["./slow-deploy.sh"]
    read   = ["./read.sh"]
  }
}
"#,
    );
    let mut apply = case.spawn(&["apply", "--auto-approve", "--json"]);
    apply.wait_for_line(r#""step_started""#, Duration::from_secs(20));
    apply.signal(Signal::SIGINT);
    let stopping = apply.wait_for_line(r#""stopping""#, Duration::from_secs(10));
    assert!(
        stopping.contains(r#""running":["environment.green"]"#),
        "{stopping}"
    );
    assert!(
        apply.child.try_wait().unwrap().is_none(),
        "a change that is running is let finish after the first signal"
    );
    apply.signal(Signal::SIGINT);
    let run = apply.finish(Duration::from_secs(10));
    assert_eq!(run.code, 130, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value =
        serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["interrupted"],
        serde_json::json!(["environment.green"])
    );
    assert!(!case.path().join("cutover.state.json.lock").exists());
    // The state is valid: a plan reads it and would create green again.
    case.run(&["plan"])
        .code(0)
        .stdout_has("environment.green will be created");
}

#[test]
fn a_closed_stdout_is_no_panic() {
    let case = Case::with_main(
        r#"
environment "green" {
  release  = "1"
  endpoint = "127.0.0.1:9"
}
"#,
    );
    for args in [
        &["show"][..],
        &["validate"],
        &["graph"],
        &["completions", "bash"],
        &["--help"],
    ] {
        let mut child = std::process::Command::new(crate::support::cutover_bin())
            .arg("-C")
            .arg(case.path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before cutover writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
    }
}
