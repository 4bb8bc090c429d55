//! Cut-overs in batches, end to end against a real HAProxy: 80 routers of
//! one map (`for_each`), switched in one batch (a new version of the whole
//! map, committed at once), which keeps the map's other entries as they
//! were, and whose one refused router fails only its own step, the others
//! going back.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::fleet::lines;
use crate::haproxy_support::{free_port, http_get, BackendDef, HaproxyGuard, HaproxySetup};
use crate::support::{demo_app_bin, Case};

/// How many routers: above the 64 from which HAProxy's batch commits a new
/// version of the map (providers/haproxy/src/batch.rs).
const ROUTERS: usize = 80;

/// A demo-app the test runs (both colours' environments of every service
/// point at one of two), killed by its pid when dropped.
struct DemoApp(Child, u16);

impl DemoApp {
    /// Started on a free port, once it accepts there: another test may take
    /// the port between our probe and the app's bind, and then the app
    /// exits and another port is tried.
    fn start(release: &str) -> DemoApp {
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(demo_app_bin())
                .args(["--port", &port.to_string(), "--release", release])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start demo-app");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return DemoApp(child, port);
                }
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                // Polling for the app to listen (a readiness wait, bounded).
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("demo-app did not start on any of 5 free ports");
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The map's entries that are not cutover's: a comment, a key of another
/// service, and a key listed twice (HAProxy keeps both entries).
const FOREIGN: &str = "# managed by cutover's tests\nother blue\ndup blue\ndup green\n";

fn haproxy(blue: u16, green: u16) -> HaproxyGuard {
    haproxy_with(blue, green, 0)
}

/// With `extra` more foreign entries, `fI blue`.
fn haproxy_with(blue: u16, green: u16, extra: usize) -> HaproxyGuard {
    let mut setup = HaproxySetup::empty("r.s0");
    setup.map = FOREIGN.to_string();
    for i in 0..extra {
        setup.map.push_str(&format!("f{i} blue\n"));
    }
    for (name, port) in [("blue", blue), ("green", green)] {
        setup.backends.push(BackendDef {
            name: name.to_string(),
            server: format!("127.0.0.1:{port}"),
            check: false,
            options: None,
        });
    }
    HaproxyGuard::start(&setup)
}

/// 80 services' blue and green (no backend block: the test runs them) and
/// routers `r["s0"]` ... on one map; `live` for all; `blue_of_s5` names the
/// HAProxy backend of s5's blue.
fn config(h: &HaproxyGuard, blue: u16, green: u16, live: &str, blue_of_s5: &str) -> String {
    let colour = |name: &str, port: u16| {
        format!(
            r#"
environment "{name}" {{
  for_each = local.services
  release  = "{name}-1"
  endpoint = "127.0.0.1:{port}"
  health {{
    path     = "/healthz"
    interval = "100ms"
    timeout  = "10s"
  }}
}}
"#
        )
    };
    format!(
        r#"
locals {{
  services = toset([for i in range({ROUTERS}) : "s${{i}}"])
}}
{}{}
router "r" {{
  for_each = local.services
  live     = environment.{live}[each.key]
  haproxy {{
    socket   = "{socket}"
    map      = "{map}"
    backends = {{ blue = each.key == "s5" ? "{blue_of_s5}" : "blue", green = "green" }}
  }}
}}
"#,
        colour("blue", blue),
        colour("green", green),
        socket = h.socket().display(),
        map = h.map_path().display(),
    )
}

/// HAProxy's id of the entry of `key` (`show map`'s first column): a new
/// version of the map, committed, makes every entry anew; `set map`
/// changes an entry in place.
fn entry_id(h: &HaproxyGuard, key: &str) -> String {
    h.runtime(&format!("show map {}", h.map_path().display()))
        .lines()
        .find_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?;
            (f.next() == Some(key)).then(|| id.to_string())
        })
        .unwrap_or_else(|| panic!("no entry {key}"))
}

/// HAProxy's map entries, `key value`, in its order.
fn runtime_map(h: &HaproxyGuard) -> Vec<String> {
    h.runtime(&format!("show map {}", h.map_path().display()))
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, entry)| entry.to_string()))
        .collect()
}

/// What the map should hold: the foreign entries, then each router's key
/// on `backend` (s5 on `s5`).
fn expected(backend: &str, s5: &str) -> Vec<String> {
    let mut want: Vec<String> = FOREIGN
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    for i in 0..ROUTERS {
        want.push(format!("r.s{i} {}", if i == 5 { s5 } else { backend }));
    }
    want
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The positions of the lines of `kind` whose id starts with `prefix`.
fn positions(events: &[Value], kind: &str, prefix: &str) -> Vec<usize> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e["type"] == kind && e["id"].as_str().is_some_and(|id| id.starts_with(prefix))
        })
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn eighty_routers_of_one_map_switch_in_one_batch_and_the_maps_other_entries_stay() {
    let (blue, green) = (DemoApp::start("blue-1"), DemoApp::start("green-1"));
    let (blue_port, green_port) = (blue.1, green.1);
    let h = haproxy(blue_port, green_port);
    let case = Case::with_main(&config(&h, blue_port, green_port, "blue", "blue"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(sorted(runtime_map(&h)), sorted(expected("blue", "blue")));

    let other = entry_id(&h, "other");
    case.write(
        "main.hcl",
        &config(&h, blue_port, green_port, "green", "blue"),
    );
    // Requests through the frontend (key `r.s0`) all along the batch's
    // commit: each is answered, by blue or by green.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, frontend) = (stop.clone(), h.frontend());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                answers.push(http_get(frontend, "/"));
            }
            answers
        })
    };
    let run = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    stop.store(true, Ordering::Relaxed);
    let answers = traffic.join().unwrap();
    let failed: Vec<&(u16, String)> = answers
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        answers.len()
    );
    let releases: Vec<bool> = answers
        .iter()
        .map(|(_, body)| body.contains("green-1"))
        .collect();
    // Blue, then green from the commit on: never back.
    assert!(releases.windows(2).all(|w| w[0] <= w[1]), "{answers:?}");
    assert_eq!(releases.last(), Some(&true), "{answers:?}");
    let events = lines(&run.stdout);
    let gates = positions(&events, "step_finished", "health.green[");
    let started = positions(&events, "step_started", "cutover.r[");
    let finished = positions(&events, "step_finished", "cutover.r[");
    assert_eq!(
        (gates.len(), started.len(), finished.len()),
        (ROUTERS, ROUTERS, ROUTERS)
    );
    // Every gate before any switch; every cut-over started before the
    // first finished: they ran as one batch (the default parallelism is 10).
    assert!(gates.iter().max() < started.iter().min(), "{events:#?}");
    assert!(started.iter().max() < finished.iter().min(), "{events:#?}");
    assert!(
        finished.iter().all(|&i| events[i]["ok"] == true),
        "{events:#?}"
    );
    let done = positions(&events, "cutover_done", "");
    assert_eq!(done.len(), ROUTERS);

    // HAProxy holds every entry it held, in its order, the switched keys
    // on green; the file says the same, its comment kept.
    let now = runtime_map(&h);
    assert_eq!(now[..3], ["other blue", "dup blue", "dup green"]);
    // 80 switches: a new version of the whole map (every entry made anew).
    assert_ne!(entry_id(&h, "other"), other, "a new version was committed");
    assert_eq!(sorted(now), sorted(expected("green", "green")));
    let file = std::fs::read_to_string(h.map_path()).unwrap();
    assert!(file.starts_with("# managed by cutover's tests\n"), "{file}");
    let file_entries: Vec<String> = file
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(sorted(file_entries), sorted(expected("green", "green")));
    assert_eq!(h.map_value("r.s42").as_deref(), Some("green"));
    // Traffic through the frontend, which routes by `r.s0`, reaches green.
    let (status, body) = h.get("/");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("green-1"), "{body}");
    case.run(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_router_refused_in_a_batch_keeps_the_whole_batch_where_it_was() {
    let (blue, green) = (DemoApp::start("blue-1"), DemoApp::start("green-1"));
    let (blue_port, green_port) = (blue.1, green.1);
    let h = haproxy(blue_port, green_port);
    let case = Case::with_main(&config(&h, blue_port, green_port, "green", "blue"));
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(sorted(runtime_map(&h)), sorted(expected("green", "green")));
    let file_before = std::fs::read_to_string(h.map_path()).unwrap();

    // Back to blue, but s5's blue is a backend HAProxy does not have.
    case.write(
        "main.hcl",
        &config(&h, blue_port, green_port, "blue", "nosuch"),
    );
    let run = case.run_unchecked(&["apply", "--auto-approve", "--json"], &[]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    let events = lines(&run.stdout);
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "step_finished" && e["ok"] == false)
        .collect();
    assert_eq!(failed.len(), ROUTERS, "{failed:#?}");
    // s5 is the apply's failure; the others were held back (interrupted).
    assert!(
        failed.iter().all(|e| e["error_kind"]
            == if e["id"] == r#"cutover.r["s5"]"# {
                "refused"
            } else {
                "interrupted"
            }),
        "{failed:#?}"
    );
    assert!(
        run.stderr
            .starts_with(r#"error: apply stopped at cutover.r["s5"]: "#),
        "{}",
        run.stderr
    );
    let s5 = failed
        .iter()
        .find(|e| e["id"] == r#"cutover.r["s5"]"#)
        .unwrap();
    assert!(
        s5["error"]
            .as_str()
            .unwrap()
            .contains("no backend `nosuch`"),
        "{s5:#?}"
    );
    // The preflight refused s5 before anything was sent that changes the
    // map: s5's refusal fails the apply, which would send every router
    // back, so none of the other 79 moved.
    assert!(
        failed
            .iter()
            .filter(|e| e["id"] != r#"cutover.r["s5"]"#)
            .all(|e| e["error"]
                .as_str()
                .unwrap()
                .contains(r#"nothing was switched: `r["s5"]` of the same batch was refused"#)),
        "{failed:#?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["type"] != "cutover_done" && e["type"] != "switched_back"),
        "{events:#?}"
    );
    assert_eq!(sorted(runtime_map(&h)), sorted(expected("green", "green")));
    assert_eq!(std::fs::read_to_string(h.map_path()).unwrap(), file_before);
}

#[test]
fn two_routers_of_one_key_are_refused_before_anything_moves() {
    let (blue, green) = (DemoApp::start("blue-1"), DemoApp::start("green-1"));
    let (blue_port, green_port) = (blue.1, green.1);
    let h = haproxy(blue_port, green_port);
    let case = Case::with_main(&config(&h, blue_port, green_port, "blue", "blue"));
    case.run(&["apply", "--auto-approve"]).code(0);
    // s1 is given s2's key: the two would overwrite each other. The
    // configuration is refused (engine validate, from the routers'
    // claims); the batch would refuse both too (batch.rs).
    let shared = config(&h, blue_port, green_port, "green", "blue").replace(
        "    backends",
        "    key      = each.key == \"s1\" ? \"r.s2\" : \"r.${each.key}\"\n    backends",
    );
    case.write("main.hcl", &shared);
    case.run_unchecked(&["apply", "--auto-approve"], &[])
        .code(1)
        .stderr_has(r#"router.r["s1"] and router.r["s2"] both switch the key `r.s2`"#);
    assert_eq!(sorted(runtime_map(&h)), sorted(expected("blue", "blue")));
}

/// The backend each router's key holds in HAProxy, and in the map file.
fn held(h: &HaproxyGuard) -> (Vec<String>, Vec<String>) {
    let runtime = runtime_map(h);
    let file = std::fs::read_to_string(h.map_path()).unwrap();
    let of = |entries: Vec<String>| -> Vec<String> {
        (0..ROUTERS)
            .map(|i| {
                let key = format!("r.s{i} ");
                entries
                    .iter()
                    .find_map(|e| e.strip_prefix(&key).map(str::to_string))
                    .unwrap_or_default()
            })
            .collect()
    };
    let file = file
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
    (of(runtime), of(file.collect()))
}

#[test]
fn a_kill_during_a_batch_leaves_the_map_whole_and_the_next_apply_converges() {
    let (blue, green) = (DemoApp::start("blue-1"), DemoApp::start("green-1"));
    let (blue_port, green_port) = (blue.1, green.1);
    let h = haproxy(blue_port, green_port);
    let case = Case::with_main(&config(&h, blue_port, green_port, "blue", "blue"));
    case.run(&["apply", "--auto-approve"]).code(0);

    case.write(
        "main.hcl",
        &config(&h, blue_port, green_port, "green", "blue"),
    );
    let mut apply = case.spawn(&["apply", "--auto-approve", "--json"]);
    // The batch's steps start together: kill as they do.
    apply.wait_for_line(r#""id":"cutover.r[\"s0\"]""#, Duration::from_secs(60));
    apply.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = apply.finish(Duration::from_secs(10));

    // One commit: HAProxy sends every key to blue, or every key to green,
    // never some of each.
    let (runtime, _) = held(&h);
    let first = runtime[0].clone();
    assert!(first == "blue" || first == "green", "{runtime:?}");
    assert!(runtime.iter().all(|b| *b == first), "{runtime:?}");
    let lock = case.path().join("cutover.state.json.lock");
    if let Some(id) = crate::crash::lock_id(&lock) {
        case.run(&["force-unlock", &id]).code(0);
    }
    case.run(&["apply", "--auto-approve"]).code(0);
    let (runtime, file) = held(&h);
    assert!(runtime.iter().all(|b| b == "green"), "{runtime:?}");
    assert!(file.iter().all(|b| b == "green"), "{file:?}");
    case.run(&["plan", "--detailed-exitcode"]).code(0);

    // Killed once the first cut-over of the batch is recorded: the commit
    // and the map file's rewrite came before it, for every router; the
    // state may lack the others' records, which the next apply adds.
    case.write(
        "main.hcl",
        &config(&h, blue_port, green_port, "blue", "blue"),
    );
    let mut apply = case.spawn(&["apply", "--auto-approve", "--json"]);
    apply.wait_for_line(r#""type":"cutover_done""#, Duration::from_secs(60));
    apply.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = apply.finish(Duration::from_secs(10));
    let (runtime, file) = held(&h);
    assert!(runtime.iter().all(|b| b == "blue"), "{runtime:?}");
    assert!(file.iter().all(|b| b == "blue"), "{file:?}");
    if let Some(id) = crate::crash::lock_id(&lock) {
        case.run(&["force-unlock", &id]).code(0);
    }
    let again = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    assert!(
        !again.stdout.contains(r#""type":"cutover_done""#) || {
            // What a kill left unrecorded is recorded, not switched again.
            lines(&again.stdout)
                .iter()
                .filter(|e| e["type"] == "cutover_done")
                .all(|e| e["from"] == e["to"])
        },
        "{}",
        again.stdout
    );
    case.run(&["plan", "--detailed-exitcode"]).code(0);
    let state = case.state();
    for i in 0..ROUTERS {
        let router = &state["routers"][format!(r#"r["s{i}"]"#)];
        assert_eq!(router["live"], format!(r#"blue["s{i}"]"#), "{router}");
    }
}

#[test]
fn a_whole_map_batch_waits_for_another_cutover_holding_the_map() {
    let (blue, green) = (DemoApp::start("blue-1"), DemoApp::start("green-1"));
    let (blue_port, green_port) = (blue.1, green.1);
    let h = haproxy(blue_port, green_port);
    let with_timeout = |live: &str| {
        config(&h, blue_port, green_port, live, "blue")
            .replace("    backends", "    timeout  = \"1s\"\n    backends")
    };
    let case = Case::with_main(&with_timeout("blue"));
    case.run(&["apply", "--auto-approve"]).code(0);

    // Another cutover process switching a router of the same map holds the
    // map's lock file shared (providers/haproxy/src/maplock.rs): the batch,
    // which re-adds every entry, may not commit meanwhile.
    let lock = h.map_path().with_file_name(".live.map.cutover-lock");
    assert!(lock.exists(), "the first apply made the lock file");
    let directory = std::fs::File::open(&lock).unwrap();
    directory.lock_shared().unwrap();
    case.write("main.hcl", &with_timeout("green"));
    let run = case.run_unchecked(&["apply", "--auto-approve", "--json"], &[]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    let events = lines(&run.stdout);
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "step_finished" && e["ok"] == false)
        .collect();
    assert_eq!(failed.len(), ROUTERS, "{failed:#?}");
    // Said once, on one router; the others held back (interrupted).
    let said = |e: &&&Value, text: &str| e["error"].as_str().unwrap().contains(text);
    let refused: Vec<&&Value> = failed
        .iter()
        .filter(|e| {
            e["error_kind"] == "refused"
                && said(e, "did not end within 1s, so nothing was switched")
        })
        .collect();
    assert_eq!(refused.len(), 1, "{failed:#?}");
    let on = refused[0]["id"]
        .as_str()
        .unwrap()
        .trim_start_matches("cutover.")
        .to_string();
    assert!(
        failed
            .iter()
            .filter(|e| e["error_kind"] == "interrupted")
            .all(|e| said(
                &e,
                &format!("nothing was switched: the batch failed (its error is on `{on}`)")
            )),
        "{failed:#?}"
    );
    assert_eq!(
        failed
            .iter()
            .filter(|e| e["error_kind"] == "interrupted")
            .count(),
        ROUTERS - 1
    );
    // Nothing moved, so nothing went back.
    assert!(
        events.iter().all(|e| e["type"] != "switched_back"),
        "{events:#?}"
    );
    assert_eq!(sorted(runtime_map(&h)), sorted(expected("blue", "blue")));

    directory.unlock().unwrap();
    case.run(&["apply", "--auto-approve"]).code(0);
    assert_eq!(sorted(runtime_map(&h)), sorted(expected("green", "green")));
}

#[test]
fn a_batch_replaces_a_map_of_twenty_thousand_entries() {
    // A map far larger than HAProxy's buffer: the new version's payloads
    // and the `show map` read-backs are many buffers long (an exchange
    // written whole before reading stalled from about 15,000 entries).
    const EXTRA: usize = 20_000;
    let (blue, green) = (DemoApp::start("blue-1"), DemoApp::start("green-1"));
    let (blue_port, green_port) = (blue.1, green.1);
    let h = haproxy_with(blue_port, green_port, EXTRA);
    let case = Case::with_main(&config(&h, blue_port, green_port, "blue", "blue"));
    case.run(&["apply", "--auto-approve"]).code(0);
    case.write(
        "main.hcl",
        &config(&h, blue_port, green_port, "green", "blue"),
    );
    case.run(&["apply", "--auto-approve"]).code(0);
    let mut want = expected("green", "green");
    want.extend((0..EXTRA).map(|i| format!("f{i} blue")));
    assert_eq!(sorted(runtime_map(&h)), sorted(want));
    let (runtime, file) = held(&h);
    assert!(
        runtime.iter().chain(&file).all(|b| b == "green"),
        "{runtime:?} {file:?}"
    );
}

#[test]
fn a_verify_failing_after_a_batch_sends_every_router_back_in_one_batch() {
    let (blue, green) = (DemoApp::start("blue-1"), DemoApp::start("green-1"));
    let (blue_port, green_port) = (blue.1, green.1);
    let h = haproxy(blue_port, green_port);
    let case = Case::with_main(&config(&h, blue_port, green_port, "blue", "blue"));
    case.run(&["apply", "--auto-approve"]).code(0);
    // After the switch each router verifies green; s5's verify asks a port
    // where nothing listens, and fails after 1 s.
    let closed = crate::haproxy_support::closed_address();
    let verifying = config(&h, blue_port, green_port, "green", "blue").replace(
        "  haproxy {",
        &format!(
            "  verify {{\n    url      = each.key == \"s5\" ? \"http://{closed}/\" : \"http://127.0.0.1:{green_port}/healthz\"\n    interval = \"100ms\"\n    timeout  = \"1s\"\n  }}\n  haproxy {{"
        ),
    );
    case.write("main.hcl", &verifying);
    let run = case.run_unchecked(&["apply", "--auto-approve", "--json"], &[]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    let events = lines(&run.stdout);
    let verify_failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "step_finished" && e["error_kind"] == "verify_failed")
        .collect();
    assert_eq!(verify_failed.len(), 1, "{verify_failed:#?}");
    assert_eq!(verify_failed[0]["id"], r#"cutover.r["s5"]"#);
    let back: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["type"] == "switched_back")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(back.len(), ROUTERS, "{events:#?}");
    let last_finish = positions(&events, "step_finished", "cutover.")
        .into_iter()
        .max();
    assert!(last_finish < back.iter().min().copied(), "{events:#?}");
    let (runtime, file) = held(&h);
    assert!(
        runtime.iter().chain(&file).all(|b| b == "blue"),
        "{runtime:?} {file:?}"
    );
    let state = case.state();
    for i in 0..ROUTERS {
        assert_eq!(
            state["routers"][format!(r#"r["s{i}"]"#)]["live"],
            format!(r#"blue["s{i}"]"#)
        );
    }
}

#[test]
fn a_few_routers_of_one_map_switch_in_one_exchange_of_set_map() {
    // Below 64 switches the batch sets each key in place, pipelined.
    let (blue, green) = (DemoApp::start("blue-1"), DemoApp::start("green-1"));
    let (blue_port, green_port) = (blue.1, green.1);
    let h = haproxy(blue_port, green_port);
    let few = |live: &str| {
        config(&h, blue_port, green_port, live, "blue")
            .replace(&format!("range({ROUTERS})"), "range(3)")
    };
    let case = Case::with_main(&few("blue"));
    case.run(&["apply", "--auto-approve"]).code(0);
    let other = entry_id(&h, "other");
    let s1 = entry_id(&h, "r.s1");
    case.write("main.hcl", &few("green"));
    let run = case.run(&["apply", "--auto-approve", "--json"]).code(0);
    let events = lines(&run.stdout);
    let started = positions(&events, "step_started", "cutover.r[");
    let finished = positions(&events, "step_finished", "cutover.r[");
    assert_eq!((started.len(), finished.len()), (3, 3));
    assert!(started.iter().max() < finished.iter().min(), "{events:#?}");
    assert_eq!(
        (entry_id(&h, "other"), entry_id(&h, "r.s1")),
        (other, s1),
        "set in place"
    );
    let now = runtime_map(&h);
    assert_eq!(now[..3], ["other blue", "dup blue", "dup green"]);
    assert_eq!(
        sorted(now[3..].to_vec()),
        ["r.s0 green", "r.s1 green", "r.s2 green"]
    );
    let file = std::fs::read_to_string(h.map_path()).unwrap();
    for i in 0..3 {
        assert!(file.contains(&format!("r.s{i} green\n")), "{file}");
    }
}
