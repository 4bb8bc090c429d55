//! The reconciler end to end against a real Caddy and real processes: first
//! apply (cutover creates its route beside the operator's), no-op plan and
//! byte-identical state, release + cut-over, a switch made by hand through
//! the admin API, and a Caddy restarted without `--resume`.
//!
//! A config edited concurrently with a switch (the `If-Match` guard) cannot
//! be timed through the CLI; providers/caddy/tests covers it at the provider
//! level.

use serde_json::{json, Value};

use crate::caddy_support::{free_port, static_route, CaddyGuard, CaddySetup};
use crate::support::{demo_app_bin, Case, ProcessReaper};

/// Blue and green demo apps behind the router `public` on Caddy `h`.
fn config(h: &CaddyGuard, ports: (u16, u16), releases: (&str, &str), live: &str) -> String {
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
  caddy {{
    admin = "{admin}"
  }}
}}
"#,
        demo = demo.display(),
        admin = h.admin_address(),
    )
}

/// A Caddy with only an operator's route (`/other`): cutover's route does
/// not exist yet.
fn operator_caddy() -> CaddyGuard {
    CaddyGuard::start(&CaddySetup::with_routes(vec![static_route(
        "/other", "other",
    )]))
}

/// The release that answers `/` through Caddy.
fn release_through(h: &CaddyGuard) -> String {
    let (status, body) = h.get("/");
    assert_eq!(status, 200, "through Caddy: {body}");
    body.trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Wait (bounded) until requests through Caddy reach `release`: a change
/// made by hand through the admin API is a full reload, and the old
/// configuration may still answer a moment after the API said yes.
fn wait_release_through(h: &CaddyGuard, release: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = release_through(h);
        if now == release {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "through Caddy: {now}, not {release} after 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The admin API path of the upstreams of cutover's route: its
/// `reverse_proxy` handler, directly in the route or in a subroute.
fn upstreams_path(h: &CaddyGuard) -> String {
    let (status, body) = h.admin("GET", "/id/cutover-public", None);
    assert_eq!(status, 200, "cutover's route: {body}");
    let route: Value = serde_json::from_str(&body).expect("the route is JSON");
    for (i, handler) in route["handle"]
        .as_array()
        .expect("handle")
        .iter()
        .enumerate()
    {
        if handler["handler"] == "reverse_proxy" {
            return format!("/id/cutover-public/handle/{i}/upstreams");
        }
        if let Some(routes) = handler["routes"].as_array() {
            for (j, inner) in routes.iter().enumerate() {
                for (k, h2) in inner["handle"].as_array().into_iter().flatten().enumerate() {
                    if h2["handler"] == "reverse_proxy" {
                        return format!(
                            "/id/cutover-public/handle/{i}/routes/{j}/handle/{k}/upstreams"
                        );
                    }
                }
            }
        }
    }
    panic!("no reverse_proxy in cutover's route: {route}");
}

#[test]
fn first_apply_then_noop_then_cutover_then_drift_by_hand() {
    let ports = (free_port(), free_port());
    let h = operator_caddy();
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
    assert_eq!(
        h.get("/other"),
        (200, "other".to_string()),
        "operator's route"
    );

    // Nothing left to do; a no-change apply leaves the state byte-identical.
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

    // A new release to green, then the cut-over, strictly in that order.
    case.write("main.hcl", &config(&h, ports, ("1.0.0", "2.0.0"), "green"));
    let plan = case.run(&["plan", "--json"]).code(0);
    let doc: Value = serde_json::from_str(&plan.stdout).expect("plan --json is JSON");
    let ids: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["environment.green", "health.green", "cutover.public"]);
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(release_through(&h), "2.0.0");
    case.run(&["plan", "--detailed-exitcode"]).code(0);

    // Someone points the route back at blue through the admin API.
    let blue = format!("127.0.0.1:{}", ports.0);
    let (status, body) = h.admin(
        "PATCH",
        &upstreams_path(&h),
        Some(&json!([{ "dial": blue }])),
    );
    assert_eq!(status, 200, "PATCH by hand: {body}");
    wait_release_through(&h, "1.0.0");
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
fn caddy_restarted_without_resume_is_drift() {
    let ports = (free_port(), free_port());
    let mut h = operator_caddy();
    let case = Case::with_main(&config(&h, ports, ("1.0.0", "2.0.0"), "green"));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(release_through(&h), "2.0.0");

    // Caddy starts again from its file, which has no route of cutover's.
    h.restart();
    // Caddy answers a request no route matches with an empty 200.
    assert_eq!(
        h.get("/"),
        (200, String::new()),
        "the route survived a restart"
    );
    let plan = case.run(&["plan", "--detailed-exitcode"]).code(2);
    assert!(
        plan.stdout.contains("changed outside cutover") || plan.stdout.contains("outside cutover"),
        "a lost switch is drift:\n{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("router.public"), "{}", plan.stdout);
    assert!(plan.stdout.contains("1 cut-over"), "{}", plan.stdout);

    // Apply switches it again; the operator's route is still there.
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(release_through(&h), "2.0.0");
    assert_eq!(h.get("/other"), (200, "other".to_string()));
    case.run(&["plan", "--detailed-exitcode"]).code(0);
}
