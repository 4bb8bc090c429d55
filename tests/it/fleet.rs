//! One router over several instances of its load balancer (`instances =
//! [...]`), end to end against real HAProxys and Caddys: both instances cut
//! over together, an instance switched by hand is drift naming it, an
//! instance killed mid-apply fails the apply naming it with the other left
//! where it was, and an instance that refuses its switch sends the other
//! back, each checked through every instance's own API, files and traffic.

use serde_json::Value;

use crate::caddy_support::{CaddyGuard, CaddySetup};
use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup, Immutable};
use crate::support::{demo_environment, Case, ProcessReaper};

/// Blue and green demo apps, each release named after its colour, so that
/// the traffic through an instance says which colour served it.
fn colours(ports: (u16, u16)) -> String {
    colours_at(ports, "1")
}

/// As [`colours`], blue's release `blue-BLUE`.
fn colours_at(ports: (u16, u16), blue: &str) -> String {
    demo_environment("blue", ports.0, &format!("blue-{blue}"))
        + &demo_environment("green", ports.1, "green-1")
}

/// Two HAProxys routing `public` through their own map, with no key yet.
fn haproxy_pair(ports: (u16, u16)) -> (HaproxyGuard, HaproxyGuard) {
    let mut setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{}", ports.0),
        &format!("127.0.0.1:{}", ports.1),
        "blue",
    );
    setup.map = "# live colours\n".to_string();
    (HaproxyGuard::start(&setup), HaproxyGuard::start(&setup))
}

/// The router `public` on HAProxy instances `a` and `b`, with `extra` in
/// the router block (a test hook).
fn haproxy_config(
    ports: (u16, u16),
    pair: (&HaproxyGuard, &HaproxyGuard),
    live: &str,
    extra: &str,
) -> String {
    let instance = |name: &str, h: &HaproxyGuard| {
        format!(
            "{{ name = \"{name}\", socket = \"{}\", map = \"{}\" }}",
            h.socket().display(),
            h.map_path().display()
        )
    };
    format!(
        "{}\nrouter \"public\" {{\n  live = environment.{live}\n{extra}  haproxy {{\n    timeout   = \"2s\"\n    instances = [\n      {},\n      {},\n    ]\n  }}\n}}\n",
        colours(ports),
        instance("a", pair.0),
        instance("b", pair.1),
    )
}

/// What an HAProxy instance says it serves: its runtime map, its map file's
/// line for `public`, and the release its frontend answers with.
fn on(h: &HaproxyGuard) -> (String, String, String) {
    let runtime = h.map_value("public").unwrap_or_default();
    let file = std::fs::read_to_string(h.map_path()).expect("the map file");
    let file = file
        .lines()
        .find_map(|l| l.strip_prefix("public "))
        .unwrap_or_default()
        .to_string();
    let (status, body) = h.get("/");
    assert_eq!(status, 200, "through HAProxy: {body}");
    let release = body.trim().rsplit(' ').next().unwrap_or_default();
    let served = release.strip_suffix("-1").unwrap_or(release).to_string();
    (runtime, file, served)
}

fn all(colour: &str) -> (String, String, String) {
    (colour.into(), colour.into(), colour.into())
}

/// The JSON lines of an apply, each parsed.
pub(crate) fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The position of the first line of `kind` (and `id`, if given).
pub(crate) fn at(lines: &[Value], kind: &str, id: Option<&str>) -> usize {
    lines
        .iter()
        .position(|l| l["type"] == kind && id.is_none_or(|id| l["id"] == id))
        .unwrap_or_else(|| panic!("no {kind} {id:?} line in {lines:#?}"))
}

/// A `cutover_done` line names both instances, in order, with their
/// offsets after the first (one of them 0) and the skew, the last offset.
pub(crate) fn assert_both_instances(done: &Value) {
    let instances = done["instances"].as_array().expect("instances listed");
    let names: Vec<&str> = instances
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"], "{done}");
    let offsets: Vec<u64> = instances
        .iter()
        .map(|i| i["offset_us"].as_u64().unwrap())
        .collect();
    assert!(offsets.contains(&0), "{done}");
    assert_eq!(
        done["skew_us"].as_u64(),
        offsets.iter().max().copied(),
        "{done}"
    );
}

#[test]
fn a_pair_of_haproxys_cuts_over_together_and_an_instance_switched_by_hand_is_drift() {
    let ports = (free_port(), free_port());
    let (a, b) = haproxy_pair(ports);
    let case = Case::with_main(&haproxy_config(ports, (&a, &b), "blue", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));

    case.run(&["plan", "--detailed-exitcode"])
        .code(2)
        .stdout_has("router.public has no live colour yet")
        .stdout_has("on its 2 instances (a, b), all or none");
    let first = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let first = lines(&first.stdout);
    let done = &first[at(&first, "cutover_done", None)];
    assert!(
        at(&first, "step_finished", Some("health.blue"))
            < at(&first, "step_started", Some("cutover.public"))
    );
    assert_eq!(
        (&done["from"], &done["to"]),
        (&Value::Null, &Value::from("blue"))
    );
    assert_both_instances(done);
    assert_eq!((on(&a), on(&b)), (all("blue"), all("blue")));

    // The cut-over: every instance, in one step, after green's gate.
    case.write("main.hcl", &haproxy_config(ports, (&a, &b), "green", ""));
    let plan = case.run(&["plan", "--json"]).code(0);
    let doc: Value = serde_json::from_str(&plan.stdout).unwrap();
    let cutover = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "cutover")
        .unwrap();
    assert_eq!(cutover["instances"], serde_json::json!(["a", "b"]));
    let cut = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let cut = lines(&cut.stdout);
    let done_at = at(&cut, "cutover_done", None);
    assert!(
        at(&cut, "step_finished", Some("health.green"))
            < at(&cut, "step_started", Some("cutover.public"))
    );
    assert!(at(&cut, "step_finished", Some("cutover.public")) < done_at);
    assert_eq!(
        (&cut[done_at]["from"], &cut[done_at]["to"]),
        (&Value::from("blue"), &Value::from("green"))
    );
    assert_both_instances(&cut[done_at]);
    assert_eq!((on(&a), on(&b)), (all("green"), all("green")));

    // `b` switched back by hand: drift naming it, and a plan to repair it.
    let set = format!("set map {} public blue", b.map_path().display());
    assert_eq!(b.runtime(&set).trim(), "");
    let drifted = case.run(&["plan", "--detailed-exitcode"]).code(2);
    let drifted = drifted
        .stdout_has("router.public: instance `b` sends traffic to blue while instance `a` sends it to green")
        .stdout_has("router.public will be switched to green again");
    assert!(
        !drifted.stdout.contains("instance `a` sends traffic"),
        "{}",
        drifted.stdout
    );
    let json = case.run(&["plan", "--json"]).code(0);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        doc["fingerprint"]["instances.router.public"],
        r#"[["a","green"],["b","blue"]]"#
    );
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!((on(&a), on(&b)), (all("green"), all("green")));
}

#[test]
fn an_instance_killed_mid_apply_fails_it_naming_the_instance_and_moves_nothing() {
    let ports = (free_port(), free_port());
    let (a, mut b) = haproxy_pair(ports);
    let case = Case::with_main(&haproxy_config(ports, (&a, &b), "blue", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    let state = case.state_bytes().unwrap();

    // A test hook, which runs after green's gate and before the switch,
    // kills `b` by its pid and returns once it has exited (a zombie of
    // this test process, whose sockets are closed).
    let pid = b.pid();
    let hook = format!(
        "  test \"kill-b\" {{\n    command = [\"sh\", \"-c\", \"kill -9 {pid}; until grep -q '^State:.*Z' /proc/{pid}/status; do sleep 0.02; done\"]\n    timeout = \"10s\"\n  }}\n"
    );
    case.write("main.hcl", &haproxy_config(ports, (&a, &b), "green", &hook));
    let failed = case.run(&["apply", "--auto-approve", "--json"]).code(1);
    let out = lines(&failed.stdout);
    let tested = at(&out, "step_finished", Some("test.public.kill-b"));
    let switch = at(&out, "step_finished", Some("cutover.public"));
    assert!(tested < switch, "{out:#?}");
    let error = out[switch]["error"].as_str().unwrap();
    assert!(
        error.starts_with("router.public: instance `b`: HAProxy runtime API at ")
            && error.contains("is unreachable"),
        "{error}"
    );
    assert_eq!(out[switch]["error_kind"], "unreachable");
    assert!(!out.iter().any(|l| l["type"] == "cutover_done"), "{out:#?}");
    assert!(
        !out.iter().any(|l| l["type"] == "switched_back"),
        "nothing moved: {out:#?}"
    );
    assert_eq!(out.last().unwrap()["failed"]["id"], "cutover.public");
    assert!(failed.stderr.contains("instance `b`"), "{}", failed.stderr);
    // `a` never moved: its runtime map, its file and its traffic say blue.
    assert_eq!(on(&a), all("blue"));
    assert_eq!(case.state_bytes().unwrap(), state, "the state changed");
    b.kill();
}

#[test]
fn an_instance_that_refuses_its_switch_sends_the_other_back() {
    let ports = (free_port(), free_port());
    let (a, b) = haproxy_pair(ports);
    let case = Case::with_main(&haproxy_config(ports, (&a, &b), "blue", ""));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    let state = case.state_bytes().unwrap();

    // `b`'s map file cannot be replaced: its own switch refuses, after the
    // fleet's preflight passed and while `a` switches.
    let immutable = Immutable::set(&b.map_path());
    case.write("main.hcl", &haproxy_config(ports, (&a, &b), "green", ""));
    let failed = case.run(&["apply", "--auto-approve", "--json"]).code(1);
    let out = lines(&failed.stdout);
    let switch = &out[at(&out, "step_finished", Some("cutover.public"))];
    let error = switch["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "router.public: instance `b` was not switched to green; switched back: instance `a` \
             to blue; no instance was left on the new colour: "
        ) && error.contains("cannot be written, so nothing was changed"),
        "{error}"
    );
    assert_eq!(switch["error_kind"], "refused");
    assert!(!out.iter().any(|l| l["type"] == "cutover_done"), "{out:#?}");
    // Both on blue, through each one's runtime API, map file and traffic.
    assert_eq!((on(&a), on(&b)), (all("blue"), all("blue")));
    assert_eq!(case.state_bytes().unwrap(), state, "the state changed");

    drop(immutable);
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!((on(&a), on(&b)), (all("green"), all("green")));
}

/// Blue and green behind the router `public` on Caddys `a` and `b`.
fn caddy_config(ports: (u16, u16), pair: (&CaddyGuard, &CaddyGuard), live: &str) -> String {
    format!(
        "{}\nrouter \"public\" {{\n  live = environment.{live}\n  caddy {{\n    timeout   = \"2s\"\n    instances = [\n      {{ name = \"a\", admin = \"{}\" }},\n      {{ name = \"b\", admin = \"{}\" }},\n    ]\n  }}\n}}\n",
        colours(ports),
        pair.0.admin_address(),
        pair.1.admin_address(),
    )
}

/// The colour a Caddy serves, from the release its route answers with.
fn served(h: &CaddyGuard) -> String {
    let (status, body) = h.get("/");
    assert_eq!(status, 200, "through Caddy: {body}");
    let release = body.trim().rsplit(' ').next().unwrap_or_default();
    release.strip_suffix("-1").unwrap_or(release).to_string()
}

#[test]
fn a_pair_of_caddys_cuts_over_together_and_a_dead_one_is_named() {
    let ports = (free_port(), free_port());
    let (a, mut b) = (
        CaddyGuard::start(&CaddySetup::with_routes(vec![])),
        CaddyGuard::start(&CaddySetup::with_routes(vec![])),
    );
    let case = Case::with_main(&caddy_config(ports, (&a, &b), "blue"));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!((served(&a), served(&b)), ("blue".into(), "blue".into()));

    case.write("main.hcl", &caddy_config(ports, (&a, &b), "green"));
    case.run(&["plan"]).code(0).stdout_has(
        "router.public will cut over: blue -> green, on its 2 instances (a, b), all or none",
    );
    let cut = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let cut = lines(&cut.stdout);
    assert_both_instances(&cut[at(&cut, "cutover_done", None)]);
    assert_eq!((served(&a), served(&b)), ("green".into(), "green".into()));

    // `b` goes down: planning names it, and so does an apply, which moves
    // nothing on `a`.
    b.kill();
    case.write("main.hcl", &caddy_config(ports, (&a, &b), "blue"));
    case.run(&["plan"])
        .code(1)
        .stderr_has("router.public: instance `b`: Caddy admin API at");
    let state = case.state_bytes().unwrap();
    case.run(&["apply", "--auto-approve"])
        .code(1)
        .stderr_has("instance `b`");
    assert_eq!(served(&a), "green");
    assert_eq!(case.state_bytes().unwrap(), state, "the state changed");
}

#[test]
fn a_fleets_preview_and_drain_reach_every_instance() {
    let ports = (free_port(), free_port());
    let mut setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{}", ports.0),
        &format!("127.0.0.1:{}", ports.1),
        "blue",
    );
    setup.preview = true;
    let (a, b) = (HaproxyGuard::start(&setup), HaproxyGuard::start(&setup));
    let router = |blue: &str, live: &str| {
        let drain =
            "  preview = environment.green\n  drain = \"1500ms\"\n  drain_until_idle = true\n";
        haproxy_config(ports, (&a, &b), live, drain)
            .replace(&colours(ports), &colours_at(ports, blue))
    };
    let case = Case::with_main(&router("1", "blue"));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    for h in [&a, &b] {
        assert_eq!(h.map_value("public_preview").as_deref(), Some("green"));
        let preview = std::net::SocketAddr::from(([127, 0, 0, 1], h.preview_port.unwrap()));
        let (status, body) = crate::haproxy_support::http_get(preview, "/");
        assert_eq!(
            (status, body.trim().ends_with("green-1")),
            (200, true),
            "{body}"
        );
    }

    // A request held through `b` only: the drain of blue counts it (the
    // sessions of every instance, summed), so it waits to its maximum.
    let held = crate::drain::Held::open(b.frontend());
    case.write("main.hcl", &router("2", "green"));
    let run = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let out = lines(&run.stdout);
    let ended = &out[at(&out, "drain_ended", Some("drain.public"))];
    assert_eq!(
        (&ended["ended"], &ended["sessions"]),
        (&Value::from("maximum"), &Value::from(1)),
        "{ended}"
    );
    assert!(at(&out, "cutover_done", None) < at(&out, "step_started", Some("drain.public")));
    assert!(
        at(&out, "step_finished", Some("drain.public"))
            < at(&out, "step_started", Some("environment.blue"))
    );
    drop(held);

    // `preview` taken out of the router: its key leaves both maps, in
    // memory and on disk, in one step; live traffic stays on green.
    let without = router("2", "green").replace("  preview = environment.green\n", "");
    case.write("main.hcl", &without);
    let run = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let out = lines(&run.stdout);
    let ids: Vec<&str> = out
        .iter()
        .filter(|l| l["type"] == "step_finished")
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["preview.public"], "{out:#?}");
    for h in [&a, &b] {
        assert_eq!(h.map_value("public_preview"), None);
        let file = std::fs::read_to_string(h.map_path()).unwrap();
        assert!(!file.contains("public_preview"), "{file}");
        assert_eq!(on(h), all("green"));
    }
    case.run(&["plan", "--detailed-exitcode"]).code(0);
}

/// An instance without a `name` is named by its socket: when that comes
/// from a sensitive variable, plans and events show its marker, never the
/// path.
#[test]
fn an_instance_named_by_a_sensitive_socket_is_shown_as_its_marker() {
    let ports = (free_port(), free_port());
    let (a, b) = haproxy_pair(ports);
    let secret = a.socket().display().to_string();
    let text = haproxy_config(ports, (&a, &b), "blue", "")
        .replace("name = \"a\", ", "")
        .replace(&format!("\"{secret}\""), "var.socket_a");
    let text = format!(
        "variable \"socket_a\" {{\n  default   = \"{secret}\"\n  sensitive = true\n}}\n{text}"
    );
    let case = Case::with_main(&text);
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    let plan = case
        .run(&["plan"])
        .code(0)
        .stdout_has("on its 2 instances ((sensitive:");
    assert!(!plan.stdout.contains(&secret), "{}", plan.stdout);
    let applied = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    assert!(!applied.stdout.contains(&secret), "{}", applied.stdout);
    let out = lines(&applied.stdout);
    let done = &out[at(&out, "cutover_done", None)];
    assert!(
        done["instances"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("(sensitive:"),
        "{done}"
    );
    assert_eq!(on(&a), all("blue"));
}
