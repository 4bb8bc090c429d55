//! A fleet of services from one map (`for_each`), end to end against a
//! real HAProxy routing two map keys to four backends: one service cuts
//! over while the other is left alone, each checked through HAProxy's
//! runtime API, its map file and its own frontend; the way back by an
//! instance's address on the command line; and adopting `for_each` for a
//! live pair with `moved` blocks, which keeps the serving processes.

use serde_json::Value;

use crate::fleet::{at, lines};
use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::support::{demo_app_bin, Case, ProcessReaper};

/// Ports of (api blue, api green, web blue, web green).
type Ports = [u16; 4];

/// One HAProxy: map keys `svc.api` and `svc.web` (the routers' flat names),
/// backends `blue.api` ... `green.web` (the colours' flat names).
fn haproxy(p: Ports) -> HaproxyGuard {
    let at = |port: u16| format!("127.0.0.1:{port}");
    let mut setup = HaproxySetup::empty("svc.api")
        .with_backend("blue.api", &at(p[0]))
        .with_backend("green.api", &at(p[1]))
        .with_backend("blue.web", &at(p[2]))
        .with_backend("green.web", &at(p[3]));
    setup.also_keys = vec!["svc.web".into()];
    HaproxyGuard::start(&setup)
}

/// Two services from one map; `live` and the green releases by service.
fn fleet(p: Ports, h: &HaproxyGuard, live: (&str, &str), green: (&str, &str)) -> String {
    format!(
        r#"
locals {{
  services = {{
    api = {{ blue = {}, green = {}, live = "{}", release = "{}" }}
    web = {{ blue = {}, green = {}, live = "{}", release = "{}" }}
  }}
}}
environment "blue" {{
  for_each = local.services
  release  = "blue-1"
  endpoint = "127.0.0.1:${{each.value.blue}}"
  process {{
    command = ["{demo}", "--port", "${{each.value.blue}}", "--release", "blue-1"]
    grace   = "2s"
  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
    timeout  = "10s"
  }}
}}
environment "green" {{
  for_each = local.services
  release  = each.value.release
  endpoint = "127.0.0.1:${{each.value.green}}"
  process {{
    command = ["{demo}", "--port", "${{each.value.green}}", "--release", each.value.release]
    grace   = "2s"
  }}
  health {{
    path     = "/healthz"
    interval = "100ms"
    timeout  = "10s"
  }}
}}
router "svc" {{
  for_each      = local.services
  live          = each.value.live == "green" ? environment.green[each.key] : environment.blue[each.key]
  ready_timeout = "10s"
  haproxy {{
    socket = "{socket}"
    map    = "{map}"
  }}
}}
"#,
        p[0],
        p[1],
        live.0,
        green.0,
        p[2],
        p[3],
        live.1,
        green.1,
        demo = demo_app_bin().display(),
        socket = h.socket().display(),
        map = h.map_path().display(),
    )
}

/// What HAProxy serves for `key`: its runtime map, its map file's line,
/// and the release its frontend answers with.
fn on(h: &HaproxyGuard, key: &str) -> (String, String, String) {
    let runtime = h.map_value(key).unwrap_or_default();
    let file = std::fs::read_to_string(h.map_path()).expect("the map file");
    let file = file
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .unwrap_or_default()
        .to_string();
    let (status, body) = h.get_via(key, "/");
    assert_eq!(status, 200, "through HAProxy's {key} frontend: {body}");
    let release = body
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    (runtime, file, release)
}

fn serves(backend: &str, release: &str) -> (String, String, String) {
    (backend.into(), backend.into(), release.into())
}

fn ports() -> Ports {
    [free_port(), free_port(), free_port(), free_port()]
}

#[test]
fn one_service_of_a_map_cuts_over_and_the_other_is_left_alone() {
    let p = ports();
    let h = haproxy(p);
    let case = Case::with_main(&fleet(p, &h, ("blue", "blue"), ("green-1", "green-1")));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));

    let first = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let first = lines(&first.stdout);
    for service in ["api", "web"] {
        let gate = format!("health.blue[\"{service}\"]");
        let cutover = format!("cutover.svc[\"{service}\"]");
        assert!(
            at(&first, "step_finished", Some(&gate)) < at(&first, "step_started", Some(&cutover))
        );
    }
    assert_eq!(on(&h, "svc.api"), serves("blue.api", "blue-1"));
    assert_eq!(on(&h, "svc.web"), serves("blue.web", "blue-1"));
    let state = case.state();
    let envs: Vec<&String> = state["environments"].as_object().unwrap().keys().collect();
    assert_eq!(
        envs,
        [
            r#"blue["api"]"#,
            r#"blue["web"]"#,
            r#"green["api"]"#,
            r#"green["web"]"#
        ]
    );
    let web_green = state["environments"][r#"green["web"]"#]["identity"].clone();

    // api: a new green release, then its cut-over; web: untouched.
    let case_text = fleet(p, &h, ("green", "blue"), ("green-2", "green-1"));
    case.write("main.hcl", &case_text);
    case.run(&["plan", "--detailed-exitcode"])
        .code(2)
        .stdout_has(r#"# router.svc["api"] will cut over: blue["api"] -> green["api"]"#)
        .stdout_has(r#"~ router "svc" {"#)
        .stdout_has(r#"Rollback after apply: cutover rollback 'router.svc["api"]'"#);
    let second = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let second = lines(&second.stdout);
    let deploy = at(
        &second,
        "step_finished",
        Some(r#"environment.green["api"]"#),
    );
    let gate = at(&second, "step_finished", Some(r#"health.green["api"]"#));
    let switch = at(&second, "step_started", Some(r#"cutover.svc["api"]"#));
    assert!(deploy < gate && gate < switch, "{second:#?}");
    let done = &second[at(&second, "cutover_done", None)];
    assert_eq!(
        (&done["router"], &done["from"], &done["to"]),
        (
            &Value::from(r#"svc["api"]"#),
            &Value::from(r#"blue["api"]"#),
            &Value::from(r#"green["api"]"#)
        )
    );
    // Nothing of web's ran.
    let web: Vec<&Value> = second
        .iter()
        .filter(|l| l["id"].as_str().is_some_and(|id| id.contains(r#"["web"]"#)))
        .collect();
    assert!(web.is_empty(), "{web:#?}");
    assert_eq!(on(&h, "svc.api"), serves("green.api", "green-2"));
    assert_eq!(on(&h, "svc.web"), serves("blue.web", "blue-1"));
    let state = case.state();
    assert_eq!(
        state["environments"][r#"green["web"]"#]["identity"], web_green,
        "web's green was not touched"
    );
    assert_eq!(
        state["routers"][r#"svc["api"]"#]["previous"],
        r#"blue["api"]"#
    );

    // The way back, by the address as a shell leaves it unquoted.
    case.run(&["rollback", "router.svc[api]", "--auto-approve"])
        .code(0);
    assert_eq!(on(&h, "svc.api"), serves("blue.api", "blue-1"));
    assert_eq!(on(&h, "svc.web"), serves("blue.web", "blue-1"));
}

/// Blue and green as literal blocks behind router `public` (map key
/// `public`, backends `blue` and `green`): the configuration before
/// `for_each` was adopted.
fn literal_pair(p: Ports, h: &HaproxyGuard) -> String {
    crate::support::demo_environment("blue", p[0], "blue-1")
        + &crate::support::demo_environment("green", p[1], "green-1")
        + &format!(
            "router \"public\" {{\n  live = environment.green\n  haproxy {{\n    socket = \"{}\"\n    map    = \"{}\"\n  }}\n}}\n",
            h.socket().display(),
            h.map_path().display()
        )
}

/// The same pair from a map of one service, `public`, keeping HAProxy's
/// names (`key = each.key`, `backends` by block), with or without the
/// `moved` blocks that say so.
fn adopted(p: Ports, h: &HaproxyGuard, moved: bool) -> String {
    let demo = demo_app_bin();
    let colour = |name: &str, port: u16| {
        format!(
            r#"
environment "{name}" {{
  for_each = toset(["public"])
  release  = "{name}-1"
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["{demo}", "--port", "{port}", "--release", "{name}-1"]
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
    let moves = if moved {
        r#"
moved {
  from = environment.blue
  to   = environment.blue["public"]
}
moved {
  from = environment.green
  to   = environment.green["public"]
}
moved {
  from = router.public
  to   = router.svc["public"]
}
"#
    } else {
        ""
    };
    format!(
        "{}{}\nrouter \"svc\" {{\n  for_each = toset([\"public\"])\n  live     = environment.green[each.key]\n  haproxy {{\n    socket   = \"{}\"\n    map      = \"{}\"\n    key      = each.key\n    backends = {{ blue = \"blue\", green = \"green\" }}\n  }}\n}}\n{moves}",
        colour("blue", p[0]),
        colour("green", p[1]),
        h.socket().display(),
        h.map_path().display()
    )
}

#[test]
fn adopting_for_each_with_moved_blocks_keeps_the_live_colour_serving() {
    let p = ports();
    let mut setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{}", p[0]),
        &format!("127.0.0.1:{}", p[1]),
        "blue",
    );
    setup.map = "# live colours\n".into();
    let h = HaproxyGuard::start(&setup);
    let case = Case::with_main(&literal_pair(p, &h));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(h.map_value("public").as_deref(), Some("green"));
    let before = case.state();
    let green = before["environments"]["green"]["identity"].clone();
    let state_bytes = case.state_bytes();

    // Without `moved`: refused, naming the blocks to write; nothing changed.
    case.write("main.hcl", &adopted(p, &h, false));
    case.run(&["plan"])
        .code(1)
        .stderr_has(r#"moved { from = environment.green, to = environment.green["public"] }"#);
    case.run(&["apply", "--auto-approve"]).code(1);
    assert_eq!(
        case.state_bytes(),
        state_bytes,
        "a refused plan wrote the state"
    );

    // With them: the plan moves three records and runs nothing.
    case.write("main.hcl", &adopted(p, &h, true));
    case.run(&["plan", "--detailed-exitcode"])
        .code(2)
        .stdout_has(r#"environment.green has moved to environment.green["public"]"#)
        .stdout_has(r#"router.public has moved to router.svc["public"]"#)
        .stdout_has(
            "Plan: 0 to add, 0 to change, 0 to destroy, 0 cut-overs, 3 moved in the state.",
        );
    let applied = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let applied = lines(&applied.stdout);
    let plan = &applied[at(&applied, "plan", None)];
    assert_eq!(plan["plan"]["summary"]["moved"], 3);
    assert_eq!(plan["plan"]["steps"], Value::Array(vec![]));
    assert!(
        !applied.iter().any(|l| l["type"] == "step_started"),
        "a move ran a step: {applied:#?}"
    );
    let after = case.state();
    assert_eq!(after["lineage"], before["lineage"]);
    assert!(after["serial"].as_u64() > before["serial"].as_u64());
    assert_eq!(
        after["environments"][r#"green["public"]"#]["identity"],
        green
    );
    assert!(after["environments"].get("green").is_none());
    assert_eq!(
        after["routers"][r#"svc["public"]"#]["live"],
        r#"green["public"]"#
    );
    // HAProxy was not touched, and green's process still serves.
    assert_eq!(h.map_value("public").as_deref(), Some("green"));
    let (status, body) = h.get("/");
    assert_eq!(
        (status, body.trim().rsplit(' ').next()),
        (200, Some("green-1"))
    );

    // The moves are made: a new plan has nothing to do, and a cut-over
    // back to blue goes through the backend named by its block.
    case.run(&["plan", "--detailed-exitcode"]).code(0);
    case.write(
        "main.hcl",
        &adopted(p, &h, true).replace("environment.green[each.key]", "environment.blue[each.key]"),
    );
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(h.map_value("public").as_deref(), Some("blue"));
}

#[test]
fn renaming_a_service_does_not_change_the_colour_its_old_entry_still_serves() {
    let p = ports();
    let h = haproxy(p);
    let case = Case::with_main(&fleet(p, &h, ("blue", "green"), ("green-1", "green-1")));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(on(&h, "svc.web"), serves("green.web", "green-1"));
    let before = case.state();
    let web_green = before["environments"][r#"green["web"]"#]["identity"].clone();
    let state_bytes = case.state_bytes();

    // web renamed www with `moved` blocks, its HAProxy names left to their
    // defaults (map key `svc.www`, which HAProxy does not have), and its
    // green colour, live through `svc.web`, given a new release in place.
    let renamed = fleet(p, &h, ("blue", "green"), ("green-1", "green-2"))
        .replace("    web = {", "    www = {")
        + r#"
moved {
  from = environment.blue["web"]
  to   = environment.blue["www"]
}
moved {
  from = environment.green["web"]
  to   = environment.green["www"]
}
moved {
  from = router.svc["web"]
  to   = router.svc["www"]
}
"#;
    case.write("main.hcl", &renamed);
    case.run(&["plan"])
        .code(1)
        .stderr_has(r#"environment.green["www"] serves live traffic through router.svc["www"] (router.svc["www"] was router.svc["web"] (a `moved` block)"#)
        .stderr_has(r#"deploy the change to the idle colour blue["www"]"#);
    case.run(&["apply", "--auto-approve"]).code(1);
    assert_eq!(
        case.state_bytes(),
        state_bytes,
        "a refused plan wrote the state"
    );
    // The old entry still routes to the same process.
    assert_eq!(on(&h, "svc.web"), serves("green.web", "green-1"));
    assert_eq!(
        case.state()["environments"][r#"green["web"]"#]["identity"],
        web_green
    );
}
