//! The reconciler end to end against a real HAProxy and real processes:
//! first apply, no-op plan, release + cut-over, failing health gate.

use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::support::{demo_app_bin, Case, ProcessReaper};

/// A config with blue and green demo apps behind the router `public`.
fn config(
    h: &HaproxyGuard,
    blue: u16,
    green: u16,
    blue_release: &str,
    green_release: &str,
    live: &str,
    green_flags: &str,
) -> String {
    let demo = demo_app_bin();
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
    command = ["{demo}", "--port", "{green}", "--release", "{green_release}"{green_flags}]
    grace   = "2s"
  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
    timeout  = "3s"
  }}
}}

router "public" {{
  live = environment.{live}
  haproxy {{
    socket = "{socket}"
    map    = "{map}"
  }}
}}
"#,
        demo = demo.display(),
        socket = h.socket().display(),
        map = h.map_path().display(),
    )
}

fn body_release(h: &HaproxyGuard) -> String {
    let (status, body) = h.get("/");
    assert_eq!(status, 200, "through HAProxy: {body}");
    body.trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn first_apply_then_noop_then_cutover_then_failing_gate() {
    let (blue, green) = (free_port(), free_port());
    let mut setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{blue}"),
        &format!("127.0.0.1:{green}"),
        "blue",
    );
    setup.map = "# live colours\n".to_string(); // first run: no key yet
    let h = HaproxyGuard::start(&setup);
    let case = Case::with_main(&config(&h, blue, green, "1.0.0", "1.0.0", "blue", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));

    // First apply: both colours created, then blue's gate, then the cut-over.
    let plan = case.run(&["plan", "--detailed-exitcode"]).code(2);
    let order: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("# "))
        .collect();
    assert!(
        order.iter().position(|l| l.contains("environment.blue"))
            < order.iter().position(|l| l.contains("health gate")),
        "{}",
        plan.stdout
    );
    assert!(
        order.iter().position(|l| l.contains("health gate"))
            < order.iter().position(|l| l.contains("router.public")),
        "{}",
        plan.stdout
    );
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(body_release(&h), "1.0.0");
    assert!(std::fs::read_to_string(h.map_path())
        .unwrap()
        .contains("public blue"));

    // Nothing left to do, and a no-change apply leaves the state byte-identical.
    case.run(&["plan", "--detailed-exitcode"])
        .code(0)
        .stdout_has("No changes");
    let before = case.state_bytes().expect("state written");
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(
        case.state_bytes().unwrap(),
        before,
        "a no-change apply rewrote the state"
    );

    // New release to green, then the cut-over: the change lands strictly before it.
    case.write(
        "main.hcl",
        &config(&h, blue, green, "1.0.0", "2.0.0", "green", ""),
    );
    let plan = case.run(&["plan", "--json"]).code(0);
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan --json is JSON");
    let ids: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["environment.green", "health.green", "cutover.public"]);
    assert_eq!(
        doc["steps"][2]["depends_on"],
        serde_json::json!(["environment.green", "health.green"])
    );
    case.run(&["apply", "--auto-approve"])
        .code(0)
        .stdout_has("cutover.public: done");
    assert_eq!(body_release(&h), "2.0.0");
    case.run(&["plan", "--detailed-exitcode"]).code(0);

    // Blue gets 3.0.0 that never becomes healthy: the router stays on green,
    // the environment change is recorded, the exit status is 1 ...
    case.write(
        "main.hcl",
        &config(&h, blue, green, "3.0.0", "2.0.0", "blue", ""),
    );
    let broken = config(&h, blue, green, "3.0.0", "2.0.0", "blue", "").replace(
        r#""--release", "3.0.0"]"#,
        r#""--release", "3.0.0", "--unhealthy"]"#,
    );
    case.write("main.hcl", &broken);
    let serial_before = serde_json::from_slice::<serde_json::Value>(&case.state_bytes().unwrap())
        .unwrap()["serial"]
        .as_u64()
        .unwrap();
    let failed = case.run(&["apply", "--auto-approve"]).code(1);
    let lines: Vec<&str> = failed.stderr.lines().collect();
    assert!(
        lines[0].starts_with(
            "error: apply stopped at health.blue: environment.blue did not pass its health check"
        ),
        "{}",
        failed.stderr
    );
    // Blue served before the last cut-over: its change waited for HAProxy
    // to hold no stream to it first.
    assert!(
        lines.contains(&"  done: settle.blue, environment.blue"),
        "{}",
        failed.stderr
    );
    assert!(
        lines.contains(&"  not run: cutover.public"),
        "not-run steps are named: {}",
        failed.stderr
    );
    assert_eq!(
        body_release(&h),
        "2.0.0",
        "traffic moved to an unhealthy colour"
    );
    let state: serde_json::Value = serde_json::from_slice(&case.state_bytes().unwrap()).unwrap();
    assert_eq!(state["environments"]["blue"]["release"], "3.0.0");
    assert_eq!(state["routers"]["public"]["live"], "green");
    assert!(state["serial"].as_u64().unwrap() > serial_before);

    // ... and once the colour is healthy a rerun converges.
    case.write(
        "main.hcl",
        &config(&h, blue, green, "3.0.1", "2.0.0", "blue", ""),
    );
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(body_release(&h), "3.0.1");
    case.run(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn router_switched_by_hand_is_drift() {
    let (blue, green) = (free_port(), free_port());
    let setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{blue}"),
        &format!("127.0.0.1:{green}"),
        "blue",
    );
    let h = HaproxyGuard::start(&setup);
    let case = Case::with_main(&config(&h, blue, green, "1.0.0", "1.0.0", "blue", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(
        h.runtime(&format!("set map {} public green", h.map_path().display()))
            .trim(),
        ""
    );
    let plan = case.run(&["plan", "--detailed-exitcode"]).code(2);
    assert!(
        plan.stdout
            .contains("router.public was switched outside cutover"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("green -> blue") || plan.stdout.contains("\"green\" -> \"blue\""),
        "{}",
        plan.stdout
    );

    // --refresh-only records the live world in the state and changes nothing live.
    let before = case.state_bytes().unwrap();
    case.run(&["plan", "--refresh-only", "--detailed-exitcode"])
        .code(2)
        .stdout_has("router.public: record that it sends traffic to green");
    assert_eq!(
        case.state_bytes().unwrap(),
        before,
        "plan --refresh-only wrote the state"
    );
    case.run(&["apply", "--refresh-only"])
        .code(0)
        .stdout_has("Nothing live was changed");
    let state: serde_json::Value = serde_json::from_slice(&case.state_bytes().unwrap()).unwrap();
    assert_eq!(state["routers"]["public"]["live"], "green");
    // HAProxy still routes where the hand switch put it.
    let held = h.runtime(&format!("show map {}", h.map_path().display()));
    assert!(held.contains("public green"), "{held}");
    // The drift is recorded; what is left is the cut-over back to the config's colour.
    let plan = case.run(&["plan"]).code(0);
    assert!(
        !plan.stdout.contains("switched outside cutover"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("green -> blue"), "{}", plan.stdout);
}

/// Environments deployed by something else: cutover only reads them (health,
/// and the release they report at `release_path`) and routes to them.
#[test]
fn environments_without_backend_are_read_and_routed_to() {
    let (blue, green) = (free_port(), free_port());
    let spawn = |port: u16, release: &str| {
        std::process::Command::new(demo_app_bin())
            .args(["--port", &port.to_string(), "--release", release])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start demo-app")
    };
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _b = Kill(spawn(blue, "7.0"));
    let _g = Kill(spawn(green, "8.0"));
    let setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{blue}"),
        &format!("127.0.0.1:{green}"),
        "blue",
    );
    let h = HaproxyGuard::start(&setup);
    let config = |green_release: &str, live: &str| {
        format!(
            r#"
environment "blue" {{
  release  = "7.0"
  endpoint = "127.0.0.1:{blue}"
  health {{
    path         = "/healthz"
    release_path = "/version"
    interval     = "100ms"
    timeout      = "2s"
  }}
}}
environment "green" {{
  release  = "{green_release}"
  endpoint = "127.0.0.1:{green}"
  health {{
    path         = "/healthz"
    release_path = "/version"
    interval     = "100ms"
    timeout      = "2s"
  }}
}}
router "public" {{
  live = environment.{live}
  haproxy {{
    socket = "{socket}"
    map    = "{map}"
  }}
}}
"#,
            socket = h.socket().display(),
            map = h.map_path().display()
        )
    };
    // The config expects green to run 9.0, but it reports 8.0: the gate
    // refuses the cut-over, and cutover never deploys anything itself.
    let case = Case::with_main(&config("9.0", "green"));
    let plan = case.run(&["plan"]).code(0);
    assert!(
        !plan.stdout.contains("environment \""),
        "no deploy step expected:\n{}",
        plan.stdout
    );
    let run = case.run(&["apply", "--auto-approve"]).code(1);
    assert!(
        run.stderr.contains("reports release 8.0 (want 9.0)"),
        "{}",
        run.stderr
    );
    assert_eq!(body_release(&h), "7.0");
    // With the release it really runs, the cut-over goes through.
    case.write("main.hcl", &config("8.0", "green"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(body_release(&h), "8.0");
    case.run(&["plan", "--detailed-exitcode"]).code(0);
}
