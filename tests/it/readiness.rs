//! The first cut-over to a colour HAProxy's own check has not yet seen up
//! (`server ... check`: HAProxy's defaults, `inter 2s rise 2`, as the README
//! shows): after cutover's gate passed, the switch waits for HAProxy, with
//! progress, and is refused only when the router's `ready_timeout` runs out.

use std::time::Duration;

use crate::haproxy_support::{free_port, HaproxyGuard, HaproxySetup};
use crate::signals::{colour, map_value};
use crate::support::{Case, ProcessReaper};

/// HAProxy checking green with its defaults; blue live; green not running
/// yet, so HAProxy sees it DOWN.
fn world() -> (HaproxyGuard, u16, u16) {
    let (blue, green) = (free_port(), free_port());
    let setup = HaproxySetup::blue_green(
        &format!("127.0.0.1:{blue}"),
        &format!("127.0.0.1:{green}"),
        "blue",
    )
    .with_server_options("green", "check");
    let h = HaproxyGuard::start(&setup);
    h.wait_for_server("green", "s1", "DOWN", Duration::from_secs(15));
    (h, blue, green)
}

fn router(h: &HaproxyGuard, live: &str, extra: &str) -> String {
    format!(
        r#"
router "public" {{
  live = environment.{live}
  {extra}
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

/// Blue deployed and live; green (not running) to be deployed and switched
/// to by the next apply.
fn case(h: &HaproxyGuard, blue: u16, green: u16, extra: &str) -> (Case, ProcessReaper) {
    let blue_only = format!(
        "{}{}",
        colour("blue", blue, "1", "", "5s"),
        router(h, "blue", "")
    );
    let case = Case::with_main(&blue_only);
    let reaper = ProcessReaper(case.path().join("cutover.state.json"));
    case.run(&["apply", "--auto-approve"]).code(0);
    case.write(
        "main.hcl",
        &format!(
            "{}{}{}",
            colour("blue", blue, "1", "", "5s"),
            colour("green", green, "1", "", "5s"),
            router(h, "green", extra)
        ),
    );
    (case, reaper)
}

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn the_first_cutover_waits_for_haproxys_own_check_after_the_gate() {
    let (h, blue, green) = world();
    let (case, _reaper) = case(&h, blue, green, "");
    let run = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let events = lines(&run.stdout);
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        events
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("{events:#?}"))
    };
    let gate = at(&|e| e["type"] == "health_passed" && e["environment"] == "green");
    let waiting = at(&|e| e["type"] == "router_waiting");
    let done = at(&|e| e["type"] == "cutover_done");
    assert!(gate < waiting && waiting < done, "{events:#?}");
    let waited_for = events[waiting]["waiting_for"].as_str().unwrap();
    assert!(
        waited_for.contains("green/s1 is DOWN") && waited_for.contains("rise 2"),
        "{waited_for}"
    );
    assert_eq!(map_value(&h), "green");
    assert_eq!(h.get("/").0, 200);
}

#[test]
fn a_router_still_not_ready_after_ready_timeout_refuses_and_nothing_moves() {
    let (h, blue, green) = world();
    // HAProxy needs two passing checks 2 s apart: never within 300 ms.
    let (case, _reaper) = case(&h, blue, green, r#"ready_timeout = "300ms""#);
    let run = case.run(&["apply", "--auto-approve", "--json"]).code(1);
    let summary = lines(&run.stdout).pop().unwrap();
    assert_eq!(summary["failed"]["id"], "cutover.public");
    assert_eq!(summary["failed"]["error_kind"], "not_ready");
    let error = summary["failed"]["error"].as_str().unwrap();
    assert!(
        error.contains("(ready_timeout)") && error.contains("green/s1 is DOWN"),
        "{error}"
    );
    assert_eq!(map_value(&h), "blue", "nothing switched");
    // Once HAProxy has seen green up, a rerun switches at once.
    h.wait_for_server("green", "s1", "UP", Duration::from_secs(15));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(map_value(&h), "green");
}
