//! The reconciler end to end against a real nginx and real processes: first
//! apply, no-op plan and byte-identical state, release + cut-over, a switch
//! made by hand (include rewritten and nginx reloaded behind cutover's back),
//! and a configuration `nginx -t` rejects, which apply refuses with nginx's
//! own message while the old colour keeps serving.

use std::time::{Duration, Instant};

use crate::nginx_support::{
    closed_address, free_port, include_text, nonce, NginxGuard, NginxSetup,
};
use crate::support::{demo_app_bin, Case, ProcessReaper};

/// Blue and green demo apps behind the router `public` on nginx `h`.
fn config(h: &NginxGuard, ports: (u16, u16), releases: (&str, &str), live: &str) -> String {
    let demo = demo_app_bin();
    let (blue, green) = ports;
    let (blue_release, green_release) = releases;
    format!(
        r#"
environment "blue" {{
  release  = "{blue_release}"
  endpoint = "127.0.0.1:{blue}"
  process {{
    command = ["{demo}", "--port", "{blue}", "--release", "{blue_release}"]
    grace   = "2s"
  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
    timeout  = "10s"
  }}
}}

environment "green" {{
  release  = "{green_release}"
  endpoint = "127.0.0.1:{green}"
  process {{
    command = ["{demo}", "--port", "{green}", "--release", "{green_release}"]
    grace   = "2s"
  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
    timeout  = "10s"
  }}
}}

router "public" {{
  live = environment.{live}
  nginx {{
    include  = "{include}"
    pid_file = "{pid_file}"
    marker   = "{marker}"
  }}
}}
"#,
        demo = demo.display(),
        include = h.include_path().display(),
        pid_file = h.pid_file().display(),
        marker = h.marker(),
    )
}

/// An nginx whose include routes to no colour yet ("none", an endpoint where
/// nothing listens): the first run.
fn fresh_nginx() -> NginxGuard {
    NginxGuard::start(&NginxSetup::new("none", &closed_address()))
}

/// The release that answers `/` through nginx.
fn release_through(h: &NginxGuard) -> String {
    let (status, body) = h.get("/");
    assert_eq!(status, 200, "through nginx: {body}");
    body.trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Wait until `/` through nginx answers `release` (after a reload by hand).
fn wait_for_release(h: &NginxGuard, release: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if h.get("/").1.trim().ends_with(release) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "nginx does not serve {release}: {:?}\n{}",
        h.get("/"),
        h.log()
    );
}

/// Wait until none of `workers` is a worker of nginx any more.
fn wait_until_gone(h: &NginxGuard, workers: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.workers().iter().any(|w| workers.contains(w)) {
        assert!(
            Instant::now() < deadline,
            "old workers {workers:?} still run: {:?}",
            h.workers()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn first_apply_then_noop_then_cutover_then_drift_by_hand() {
    let ports = (free_port(), free_port());
    let h = fresh_nginx();
    let case = Case::with_main(&config(&h, ports, ("1.0.0", "1.0.0"), "blue"));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));

    // First run: both colours, blue's gate, then the router starts on blue.
    let plan = case.run(&["plan", "--detailed-exitcode"]).code(2);
    let heads: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("# "))
        .collect();
    let at = |what: &str| heads.iter().position(|l| l.contains(what));
    assert!(
        at("environment.blue") < at("health gate"),
        "{}",
        plan.stdout
    );
    assert!(at("health gate") < at("router.public"), "{}", plan.stdout);
    assert!(plan.stdout.contains("1 cut-over"), "{}", plan.stdout);
    case.run(&["apply", "--auto-approve"])
        .code(0)
        .stdout_has("cutover.public: done");
    assert_eq!(release_through(&h), "1.0.0");

    // Nothing left to do; a no-change apply leaves the state byte-identical
    // and does not reload nginx.
    case.run(&["plan", "--detailed-exitcode"])
        .code(0)
        .stdout_has("No changes");
    let before = case.state_bytes().expect("state written");
    let workers = h.workers();
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(
        case.state_bytes().unwrap(),
        before,
        "a no-change apply rewrote the state"
    );
    assert_eq!(h.workers(), workers, "a no-change apply reloaded nginx");

    // A new release to green, then the cut-over, strictly in that order.
    case.write("main.hcl", &config(&h, ports, ("1.0.0", "2.0.0"), "green"));
    let plan = case.run(&["plan", "--json"]).code(0);
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan --json is JSON");
    let ids: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["environment.green", "health.green", "cutover.public"]);
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(release_through(&h), "2.0.0");
    assert!(
        !h.workers().iter().any(|w| workers.contains(w)),
        "old workers left"
    );
    case.run(&["plan", "--detailed-exitcode"]).code(0);

    // Someone points the include back at blue and reloads nginx by hand.
    let hand_written = include_text(
        "cutover_public",
        &[format!("127.0.0.1:{}", ports.0)],
        h.marker_port,
        "cutover-public",
        "/cutover/public",
        "blue",
        &nonce(),
    );
    std::fs::write(h.include_path(), hand_written).expect("rewrite the include by hand");
    let old_workers = h.workers();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &h.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(hup.success());
    wait_for_release(&h, "1.0.0");
    // As an operator would, wait until the old workers are gone.
    wait_until_gone(&h, &old_workers);
    let plan = case.run(&["plan", "--detailed-exitcode"]).code(2);
    assert!(
        plan.stdout
            .contains("router.public was switched outside cutover"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("blue -> green"), "{}", plan.stdout);
    // ... and apply puts it back.
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(release_through(&h), "2.0.0");
    case.run(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn config_nginx_rejects_is_refused_and_the_old_colour_keeps_serving() {
    let ports = (free_port(), free_port());
    let h = fresh_nginx();
    let case = Case::with_main(&config(&h, ports, ("1.0.0", "2.0.0"), "blue"));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(release_through(&h), "1.0.0");

    // A mistake in the main configuration: `nginx -t` fails on it.
    let main = std::fs::read_to_string(h.config_path()).expect("read nginx.conf");
    std::fs::write(h.config_path(), format!("bogus_directive on;\n{main}"))
        .expect("break nginx.conf");
    let include_before = std::fs::read(h.include_path()).expect("read the include");
    let workers = h.workers();

    case.write("main.hcl", &config(&h, ports, ("1.0.0", "2.0.0"), "green"));
    let failed = case.run(&["apply", "--auto-approve"]).code(1);
    assert!(
        failed
            .stderr
            .contains("unknown directive \"bogus_directive\""),
        "nginx's own message:\n{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("cutover.public"),
        "{}",
        failed.stderr
    );
    assert_eq!(release_through(&h), "1.0.0", "traffic moved");
    assert_eq!(
        std::fs::read(h.include_path()).unwrap(),
        include_before,
        "the include was not restored"
    );
    assert_eq!(h.workers(), workers, "nginx was reloaded");
    let state: serde_json::Value = serde_json::from_slice(&case.state_bytes().unwrap()).unwrap();
    assert_eq!(state["routers"]["public"]["live"], "blue");
    case.run(&["plan", "--detailed-exitcode"])
        .code(2)
        .stdout_has("blue -> green");

    // Once the configuration is fixed, apply converges.
    std::fs::write(h.config_path(), main).expect("fix nginx.conf");
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(release_through(&h), "2.0.0");
    case.run(&["plan", "--detailed-exitcode"]).code(0);
}
