//! The cut-over's safety rules end to end against a real HAProxy: verify and
//! switch back, all routers of one apply or none, live-colour protection,
//! drain ordering.

use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::support::{demo_app_bin, Case, ProcessReaper};

struct World {
    h: HaproxyGuard,
    blue: u16,
    green: u16,
}

impl World {
    fn start() -> World {
        let (blue, green) = (free_port(), free_port());
        let mut setup = HaproxySetup::blue_green(
            &format!("127.0.0.1:{blue}"),
            &format!("127.0.0.1:{green}"),
            "blue",
        );
        setup.map = "public blue\nsupport blue\n".to_string();
        World {
            h: HaproxyGuard::start(&setup),
            blue,
            green,
        }
    }

    fn env(&self, name: &str, release: &str, flags: &str) -> String {
        let port = if name == "blue" {
            self.blue
        } else {
            self.green
        };
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
    path     = "/version"
    interval = "100ms"
    timeout  = "5s"
  }}
}}
"#,
            demo = demo_app_bin().display()
        )
    }

    fn router(&self, name: &str, live: &str, extra: &str, settings: &str) -> String {
        format!(
            r#"
router "{name}" {{
  live = environment.{live}
  {extra}
  haproxy {{
    socket = "{socket}"
    map    = "{map}"
    {settings}
  }}
}}
"#,
            socket = self.h.socket().display(),
            map = self.h.map_path().display()
        )
    }

    fn map_value(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.h.map_path()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")).map(str::to_string))
            .unwrap_or_default()
    }

    fn verify(&self) -> String {
        format!(
            "verify {{\n    url      = \"http://127.0.0.1:{}/healthz\"\n    interval = \"100ms\"\n    timeout  = \"1s\"\n  }}",
            self.h.port
        )
    }
}

fn state(case: &Case) -> serde_json::Value {
    serde_json::from_slice(&case.state_bytes().expect("state")).unwrap()
}

#[test]
fn failed_verify_switches_back_and_records_both_moves() {
    let w = World::start();
    let base = format!(
        "{}{}{}",
        w.env("blue", "1", ""),
        w.env("green", "1", ""),
        w.router("public", "blue", "", "")
    );
    let case = Case::with_main(&base);
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);

    // Green 2 answers /version (its health gate) but not /healthz, which the
    // verify checks through the router after the cut-over.
    let next = format!(
        "{}{}{}",
        w.env("blue", "1", ""),
        w.env("green", "2", r#", "--unhealthy""#),
        w.router("public", "green", &w.verify(), "")
    );
    case.write("main.hcl", &next);
    case.run(&["plan"])
        .code(0)
        .stdout_has("then verify through the router");
    let serial = state(&case)["serial"].as_u64().unwrap();
    let run = case.run(&["apply", "--auto-approve"]).code(1);
    assert!(
        run.stderr.contains("verify failed")
            && run.stderr.contains("switched router.public back to blue"),
        "{}",
        run.stderr
    );
    assert_eq!(w.map_value("public"), "blue");
    assert_eq!(w.h.get("/").1.trim(), "demo-app release 1");
    let st = state(&case);
    assert_eq!(st["routers"]["public"]["live"], "blue");
    // Green runs the release its verify just found wrong (this apply
    // deployed it): no way back to it is recorded.
    assert_eq!(st["routers"]["public"]["previous"], serde_json::Value::Null);
    // The environment change, the switch, and the switch back: three serials.
    assert_eq!(st["serial"].as_u64().unwrap(), serial + 3, "{st}");
}

#[test]
fn routers_of_one_apply_move_together_or_not_at_all() {
    let w = World::start();
    let envs = format!("{}{}", w.env("blue", "1", ""), w.env("green", "1", ""));
    let start = format!(
        "{envs}{}{}",
        w.router("public", "blue", "", ""),
        w.router("support", "blue", "", "")
    );
    let case = Case::with_main(&start);
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);

    // support's green backend does not exist in HAProxy: its cut-over fails,
    // and public, switched in the same apply, does not stay on green.
    let flip = format!(
        "{envs}{}{}",
        w.router("public", "green", "", ""),
        w.router("support", "green", "", "backends = { green = \"nope\" }")
    );
    case.write("main.hcl", &flip);
    let run = case
        .run(&["apply", "--auto-approve", "--parallelism", "1"])
        .code(1);
    assert!(
        run.stderr
            .starts_with("error: apply stopped at cutover.support: router.support: "),
        "{}",
        run.stderr
    );
    assert_eq!(w.map_value("public"), "blue", "{}", run.stderr);
    assert_eq!(w.map_value("support"), "blue");
    // Both go to HAProxy in one batch (docs/haproxy.md, "Many cut-overs
    // at once"), refused whole at its preflight: public never moved, so
    // nothing is switched back (a switch back after a failure of another
    // router is batch::a_verify_failing_after_a_batch_sends_every_router_back_in_one_batch).
    assert!(
        run.stderr.contains("interrupted: cutover.public")
            && !run.stderr.contains("switched router.public back"),
        "{}",
        run.stderr
    );
    assert_eq!(state(&case)["routers"]["public"]["live"], "blue");
}

#[test]
fn live_colour_is_protected_and_drain_orders_the_old_colour_after() {
    let w = World::start();
    let envs = format!("{}{}", w.env("blue", "1", ""), w.env("green", "1", ""));
    let case = Case::with_main(&format!(
        "{envs}{}",
        w.router("public", "blue", "drain = \"300ms\"", "")
    ));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);

    // blue is live and stays live: changing it in place is refused.
    let live_change = format!(
        "{}{}{}",
        w.env("blue", "2", ""),
        w.env("green", "1", ""),
        w.router("public", "blue", "drain = \"300ms\"", "")
    );
    case.write("main.hcl", &live_change);
    case.run(&["plan"])
        .code(1)
        .stderr_has("environment.blue serves live traffic")
        .stderr_has("idle colour green");
    case.run(&["plan", "--allow-live-changes"]).code(0);

    // Cutting over to green while changing blue: blue changes after the
    // cut-over and the drain.
    let drained = format!(
        "{}{}{}",
        w.env("blue", "2", ""),
        w.env("green", "1", ""),
        w.router("public", "green", "drain = \"300ms\"", "")
    );
    case.write("main.hcl", &drained);
    let plan = case.run(&["plan", "--json"]).code(0);
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(
        crate::support::step_ids(&doc),
        [
            "health.green",
            "cutover.public",
            "drain.public",
            "settle.blue",
            "environment.blue"
        ]
    );
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(w.map_value("public"), "green");
    assert_eq!(state(&case)["environments"]["blue"]["release"], "2");
}

#[test]
fn rollback_returns_to_the_previous_colour_and_the_next_plan_says_why() {
    let w = World::start();
    let envs = format!("{}{}", w.env("blue", "1", ""), w.env("green", "2", ""));
    let case = Case::with_main(&format!("{envs}{}", w.router("public", "blue", "", "")));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    case.write(
        "main.hcl",
        &format!("{envs}{}", w.router("public", "green", "", "")),
    );
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(w.map_value("public"), "green");

    case.run(&["rollback"]).code(1).stderr_has("--auto-approve");
    assert_eq!(
        w.map_value("public"),
        "green",
        "rollback without approval moved traffic"
    );
    case.run(&["rollback", "router.public", "--auto-approve"])
        .code(0)
        .stdout_has("health.blue");
    assert_eq!(w.map_value("public"), "blue");
    assert_eq!(w.h.get("/").1.trim(), "demo-app release 1");

    let plan = case.run(&["plan", "--detailed-exitcode"]).code(2);
    assert!(
        plan.stdout.contains("because of `cutover rollback`"),
        "{}",
        plan.stdout
    );
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(w.map_value("public"), "green");
    let st = state(&case);
    assert!(st["routers"]["public"].get("rolled_back").is_none(), "{st}");
    case.run(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_saved_plan_is_refused_when_the_state_or_the_live_world_moved_on() {
    let w = World::start();
    let envs = format!("{}{}", w.env("blue", "1", ""), w.env("green", "1", ""));
    let case = Case::with_main(&format!("{envs}{}", w.router("public", "blue", "", "")));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    let file = case.path().join("flip.cutover");
    let file = file.to_str().unwrap();
    case.write(
        "main.hcl",
        &format!("{envs}{}", w.router("public", "green", "", "")),
    );

    // The live world moved: someone switched the router by hand.
    case.run(&["plan", "--out", file]).code(0);
    w.h.runtime(&format!(
        "set map {} public green",
        w.h.map_path().display()
    ));
    let run = case.run(&["apply", file]).code(1);
    assert!(
        run.stderr.contains("live world has moved on")
            && run
                .stderr
                .contains("router.public: planned against blue, now green"),
        "{}",
        run.stderr
    );
    w.h.runtime(&format!("set map {} public blue", w.h.map_path().display()));

    // The state moved: another apply ran after the plan was made.
    case.run(&["plan", "--out", file]).code(0);
    let other = case.path().join("other.cutover");
    case.run(&["plan", "--out", other.to_str().unwrap()])
        .code(0);
    case.run(&["apply", other.to_str().unwrap()]).code(0);
    let run = case.run(&["apply", file]).code(1);
    assert!(
        run.stderr.contains("is stale") && run.stderr.contains("serial"),
        "{}",
        run.stderr
    );

    // A plan made against another state (another lineage) has its own message.
    let elsewhere = Case::with_main(&format!("{envs}{}", w.router("public", "green", "", "")));
    let st: serde_json::Value = serde_json::from_slice(&case.state_bytes().unwrap()).unwrap();
    let mut forked = st.clone();
    forked["lineage"] = serde_json::json!("00000000-0000-4000-8000-000000000000");
    std::fs::write(
        elsewhere.path().join("cutover.state.json"),
        serde_json::to_vec_pretty(&forked).unwrap(),
    )
    .unwrap();
    case.run(&["plan", "--out", file]).code(0);
    std::fs::copy(file, elsewhere.path().join("p.cutover")).unwrap();
    let run = elsewhere
        .run(&[
            "apply",
            elsewhere.path().join("p.cutover").to_str().unwrap(),
        ])
        .code(1);
    assert!(
        run.stderr.contains("another state (lineage"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_saved_plan_is_refused_when_the_configuration_now_asks_for_other_changes() {
    let w = World::start();
    let envs = format!("{}{}", w.env("blue", "1", ""), w.env("green", "1", ""));
    let router = w.router("public", "blue", "", "").replace(
        "environment.blue",
        "var.live == \"green\" ? environment.green : environment.blue",
    );
    let main = format!("variable \"live\" {{\n  default = \"blue\"\n}}\n{envs}{router}");
    let case = Case::with_main(&main);
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    let file = case.path().join("to-green.cutover");
    let file = file.to_str().unwrap();
    case.run(&["plan", "--out", file, "--var", "live=green"])
        .code(0)
        .stdout_has("router.public");

    // Applied with a variable that says the opposite: refused, nothing moves.
    let run = case.run(&["apply", file, "--var", "live=blue"]).code(1);
    assert!(
        run.stderr
            .contains("the configuration as loaded now asks for other changes")
            && run.stderr.contains("cutover.public is no longer asked for"),
        "{}",
        run.stderr
    );
    assert!(w
        .h
        .runtime(&format!("show map {}", w.h.map_path().display()))
        .contains("public blue"));
    // With the configuration it was made from, it applies.
    case.write(
        "main.hcl",
        &main.replace("default = \"blue\"", "default = \"green\""),
    );
    case.run(&["apply", file]).code(0);
    assert!(w
        .h
        .runtime(&format!("show map {}", w.h.map_path().display()))
        .contains("public green"));
}

/// The JSON lines of `apply --json` with their `type`s, in order.
fn event_types(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Where the first event matching `pred` is in `events`.
fn position(events: &[serde_json::Value], pred: impl Fn(&serde_json::Value) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no such event in {events:#?}"))
}

#[test]
fn a_failed_change_of_the_drained_colour_never_sends_traffic_back() {
    // The acceptance run's outage: blue (drained by the cut-over) gets a
    // release that exits at once. The cut-over to gated green stands: a
    // switch back would send users to blue, which is stopped.
    let w = World::start();
    let case = Case::with_main(&format!(
        "{}{}{}",
        w.env("blue", "1", ""),
        w.env("green", "1", ""),
        w.router("public", "blue", "", "")
    ));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    let broken = w.env("blue", "2", "").replace(
        &format!("\"{}\"", demo_app_bin().display()),
        "\"/bin/sh\", \"-c\", \"exit 3\", \"--\"",
    );
    case.write(
        "main.hcl",
        &format!(
            "{broken}{}{}",
            w.env("green", "1", ""),
            w.router("public", "green", "", "")
        ),
    );
    let plan = case.run(&["plan"]).code(0).stdout;
    assert!(
        plan.contains(
            "switches back to blue, which will run 2 (this apply changes it after the cut-over)"
        ),
        "{plan}"
    );
    let run = case.run(&["apply", "--auto-approve", "--json"]).code(1);
    let events = event_types(&run.stdout);
    let switched = position(&events, |e| e["type"] == "cutover_done");
    let blue = position(&events, |e| {
        e["type"] == "step_started" && e["id"] == "environment.blue"
    });
    assert!(switched < blue, "blue changes only after the cut-over");
    assert!(
        !events.iter().any(|e| e["type"] == "switched_back"),
        "{events:#?}"
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["failed"]["id"], "environment.blue");
    assert_eq!(summary["reverted"], serde_json::json!([]));
    assert_eq!(summary["way_back"][0]["to"], "blue");
    assert!(summary["way_back"][0]["none_until_repaired"].is_string());
    assert_eq!(w.map_value("public"), "green");
    let held =
        w.h.runtime(&format!("get map {} public", w.h.map_path().display()));
    assert!(held.contains("value=\"green\""), "{held}");
    assert_eq!(w.h.get("/").1.trim(), "demo-app release 1");
    let st = state(&case);
    assert_eq!(st["routers"]["public"]["live"], "green");
    assert_eq!(st["routers"]["public"]["previous"], "blue");

    // Blue repaired and live again; then the same failure, as people see it.
    let healthy = |live: &str| {
        format!(
            "{}{}{}",
            w.env("blue", "1", ""),
            w.env("green", "1", ""),
            w.router("public", live, "", "")
        )
    };
    case.write("main.hcl", &healthy("blue"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(w.map_value("public"), "blue");
    case.write(
        "main.hcl",
        &format!(
            "{broken}{}{}",
            w.env("green", "1", ""),
            w.router("public", "green", "", "")
        ),
    );
    let human = case.run(&["apply", "--auto-approve"]).code(1);
    let stderr = &human.stderr;
    assert!(
        stderr.contains("error: apply stopped at environment.blue:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  done: health.green, cutover.public, settle.blue\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "Way back: none for router.public until environment.blue is repaired: its change failed after the cut-over took its traffic away"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("switched router.public back"), "{stderr}");
    assert_eq!(w.map_value("public"), "green");
}

#[test]
fn a_saved_plan_edited_to_skip_its_gate_is_refused_and_nothing_moves() {
    let w = World::start();
    let case = Case::with_main(&format!(
        "{}{}{}",
        w.env("blue", "1", ""),
        w.env("green", "1", ""),
        w.router("public", "blue", "", "")
    ));
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    case.write(
        "main.hcl",
        &format!(
            "{}{}{}",
            w.env("blue", "1", ""),
            w.env("green", "1", ""),
            w.router("public", "green", "", "")
        ),
    );
    let plan_file = case.path().join("p.json");
    let plan_file = plan_file.to_str().unwrap();
    case.run(&["plan", "--out", plan_file]).code(0);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plan_file).unwrap()).unwrap();
    let before = case.state_bytes();
    let edit = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut doc = saved.clone();
        edit(&mut doc);
        std::fs::write(plan_file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        case.run(&["apply", plan_file]).code(1).stderr
    };
    let cutover = |doc: &mut serde_json::Value| -> usize {
        doc["document"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s["id"] == "cutover.public")
            .unwrap()
    };
    // The gate removed from the cut-over's dependencies.
    let err = edit(&|doc| {
        let i = cutover(doc);
        doc["document"]["steps"][i]["depends_on"] = serde_json::json!([]);
    });
    assert!(
        err.contains("cannot be applied: it breaks a rule of the cut-over: step cutover.public: it switches live traffic without depending on health.green"),
        "{err}"
    );
    // The gate step itself removed.
    let err = edit(&|doc| {
        doc["document"]["steps"]
            .as_array_mut()
            .unwrap()
            .retain(|s| s["id"] != "health.green");
    });
    assert!(
        err.contains(
            "step cutover.public: it depends on health.green, which is not a step of the plan"
        ),
        "{err}"
    );
    // The gate made to check nothing (the operator trial passed a gate
    // with no endpoints, and one pointed at the healthy colour).
    let gate = |doc: &mut serde_json::Value| -> usize {
        doc["document"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s["id"] == "health.green")
            .unwrap()
    };
    for endpoints in [
        serde_json::json!([]),
        serde_json::json!([format!("127.0.0.1:{}", w.blue)]),
    ] {
        let err = edit(&|doc| {
            let i = gate(doc);
            doc["document"]["steps"][i]["endpoints"] = endpoints.clone();
        });
        assert!(
            err.contains("cannot be applied: it breaks a rule of the cut-over: step cutover.public: its target is not the colour it names: its gate checks"),
            "{err}"
        );
    }
    // ... and a gate pointed at the healthy colour's URL instead.
    let err = edit(&|doc| {
        let i = gate(doc);
        doc["document"]["steps"][i]["health"]["url"] =
            serde_json::json!(format!("http://127.0.0.1:{}/version", w.blue));
    });
    assert!(
        err.contains("cannot be applied: its health gate of environment.green is not the configuration's check"),
        "{err}"
    );
    // A step of a kind cutover does not know.
    let err = edit(&|doc| {
        let i = cutover(doc);
        doc["document"]["steps"][i]["type"] = serde_json::json!("teleport");
    });
    assert!(err.contains("teleport"), "{err}");
    assert_eq!(w.map_value("public"), "blue", "nothing switched");
    assert_eq!(case.state_bytes(), before, "nothing recorded");
    // The plan as saved still applies.
    std::fs::write(plan_file, serde_json::to_vec_pretty(&saved).unwrap()).unwrap();
    case.run(&["apply", plan_file])
        .code(0)
        .stdout_has("Apply complete");
    assert_eq!(w.map_value("public"), "green");
}
