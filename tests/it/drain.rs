//! `drain_until_idle` end to end (issue 14, point 5): a long-lived request
//! held through a real HAProxy to the live colour, blue, while an apply cuts
//! over to green and changes blue. The drain counts blue's open sessions
//! from HAProxy's runtime API and waits for them; the test reacts to the
//! apply's event lines as they stream (no sleeps): it closes the request
//! once the drain says it waits for it, and checks that blue changed only
//! after that, well before the drain's maximum. A request never closed ends
//! the drain at its maximum, with a warning. Caddy cannot count open
//! sessions: its drain says it waits by time, and does.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::caddy_support::{free_port, static_route, CaddyGuard, CaddySetup};
use crate::crash::{Rig, FAST_HEALTH, LIMIT};
use crate::support::{Case, ProcessReaper};

/// `GET /stream` through a router: a response the demo-app never ends,
/// read until its first line came back, so the router carries it to the
/// colour now.
pub(crate) struct Held(BufReader<TcpStream>);

impl Held {
    pub(crate) fn open(router: SocketAddr) -> Held {
        let mut stream = TcpStream::connect(router).expect("connect to the router");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /stream HTTP/1.1\r\nHost: drain\r\n\r\n")
            .unwrap();
        let mut held = Held(BufReader::new(stream));
        held.tick();
        held
    }

    /// Read up to the next line the colour streams: the request still runs.
    #[track_caller]
    fn tick(&mut self) -> String {
        loop {
            let mut line = String::new();
            let n = self.0.read_line(&mut line).expect("the held request reads");
            assert!(n > 0, "the router closed the held request");
            if line.starts_with("tick ") {
                return line;
            }
        }
    }
}

/// Blue and green demo-apps, blue at `blue`, and the router `public` on
/// `live` with `drain` and `drain_until_idle`, its backend block `backend`.
fn config(
    rig_env: impl Fn(&str, &str) -> String,
    blue: &str,
    live: &str,
    drain: &str,
    backend: &str,
) -> String {
    format!(
        "{}{}\nrouter \"public\" {{\n  live = environment.{live}\n  drain = \"{drain}\"\n  drain_until_idle = true\n{backend}}}\n",
        rig_env("blue", blue),
        rig_env("green", "1.5.0"),
    )
}

/// The rig's HAProxy router block.
fn haproxy(rig: &Rig) -> String {
    format!(
        "  haproxy {{\n    socket  = \"{}\"\n    map     = \"{}\"\n    timeout = \"1s\"\n  }}\n",
        rig.h.socket().display(),
        rig.h.map_path().display()
    )
}

/// A rig with blue 1.0.0 live and green 1.5.0 applied, the request held to
/// blue, and an apply of green live and blue 2.0.0 running (its events read
/// as they come) with a drain of at most `drain`.
fn held_through_a_cutover(rig: &Rig, drain: &str) -> (Held, crate::crash::JsonApply) {
    let held = held_before_a_cutover(rig, drain);
    (held, rig.spawn_apply_json("drain", &[]))
}

/// A rig with blue 1.0.0 live and green 1.5.0 applied, the request held to
/// blue, and the configuration of green live and blue 2.0.0 written, whose
/// plan drains blue until idle, at most `drain`.
fn held_before_a_cutover(rig: &Rig, drain: &str) -> Held {
    let env = |name: &str, release: &str| rig.process_env(name, release, &[], FAST_HEALTH);
    rig.write(&config(env, "1.0.0", "blue", drain, &haproxy(rig)));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let held = Held::open(rig.h.frontend());
    rig.write(&config(env, "2.0.0", "green", drain, &haproxy(rig)));
    rig.run(&["plan"]).code(0).stdout_has(&format!(
        "until blue has no open sessions, at most {drain} (drain)"
    ));
    held
}

/// The drain's `drain_ended` line, after checking how it ended and the last
/// count it gives.
#[track_caller]
fn drain_ended<'a>(seen: &'a [Value], ended: &str, sessions: Value) -> &'a Value {
    let line = &seen[at(seen, "drain_ended", "drain.public")];
    assert_eq!(
        (&line["ended"], &line["sessions"]),
        (&ended.into(), &sessions),
        "{line}"
    );
    line
}

/// The position of the first event of `kind` (and `id`) in `seen`.
#[track_caller]
fn at(seen: &[Value], kind: &str, id: &str) -> usize {
    seen.iter()
        .position(|e| e["type"] == kind && (id.is_empty() || e["id"] == id))
        .unwrap_or_else(|| panic!("no {kind} {id} in {seen:#?}"))
}

#[test]
fn a_drain_waits_until_the_connection_held_through_haproxy_closes() {
    let rig = Rig::start();
    let (mut held, mut apply) = held_through_a_cutover(&rig, "20s");
    let plan = apply.wait_event("plan", None, LIMIT);
    let drain = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "drain.public")
        .cloned()
        .unwrap();
    assert_eq!(
        (&drain["until_idle"], &drain["counts_sessions"]),
        (&true.into(), &true.into())
    );
    let waiting = apply.wait_event("drain_waiting", Some("drain.public"), LIMIT);
    assert_eq!(
        (&waiting["router"], &waiting["colour"], &waiting["sessions"]),
        (&"public".into(), &"blue".into(), &1.into())
    );
    assert!(
        waiting["remaining_ms"].as_u64().unwrap() <= 20_000,
        "{waiting}"
    );
    // HAProxy already sends new requests to green; the held one still runs
    // on blue, and blue has not been touched.
    rig.assert_routes_to("green");
    held.tick();
    let blue_started = |seen: &[Value]| {
        seen.iter()
            .any(|e| e["type"] == "step_started" && e["id"] == "environment.blue")
    };
    assert!(!blue_started(&apply.seen), "{:#?}", apply.seen);
    drop(held);
    assert_eq!(apply.wait_exit(LIMIT), 0, "{:#?}", apply.seen);
    let seen = &apply.seen;
    let ended = drain_ended(seen, "idle", 0.into());
    assert!(ended.get("warning").is_none(), "{ended}");
    // The order: the switch, the count, the drain's end, then blue's change.
    let order = [
        at(seen, "cutover_done", "cutover.public"),
        at(seen, "drain_waiting", "drain.public"),
        at(seen, "drain_ended", "drain.public"),
        at(seen, "step_finished", "drain.public"),
        at(seen, "step_started", "environment.blue"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{order:?} in {seen:#?}"
    );
    // Every count the drain told was the held request.
    let counts: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] == "drain_waiting")
        .map(|e| &e["sessions"])
        .collect();
    assert!(counts.iter().all(|c| **c == 1), "{counts:?}");
    let finished = &seen[at(seen, "step_finished", "drain.public")];
    let took = finished["elapsed_ms"].as_u64().unwrap();
    assert!(took < 10_000, "the drain took {took} ms of its 20 s");
    assert_eq!(rig.state()["environments"]["blue"]["release"], "2.0.0");
    assert_eq!(rig.h.get("/").1.trim(), "demo-app release 1.5.0");
}

#[test]
fn a_connection_never_closed_ends_the_drain_at_its_maximum_with_a_warning() {
    let rig = Rig::start();
    let (mut held, mut apply) = held_through_a_cutover(&rig, "2s");
    let waiting = apply.wait_event("drain_waiting", Some("drain.public"), LIMIT);
    assert_eq!(waiting["sessions"], 1, "{waiting}");
    held.tick();
    assert_eq!(apply.wait_exit(LIMIT), 0, "{:#?}", apply.seen);
    let seen = &apply.seen;
    let ended = drain_ended(seen, "maximum", 1.into());
    let warning = "1 session was still open to blue at the drain's maximum; going on, so a change of blue may cut it";
    assert_eq!(ended["warning"], warning);
    let (_, stderr) = rig.output("drain");
    assert!(
        stderr.contains(&format!("warning: drain.public: {warning}")),
        "{stderr}"
    );
    let took = seen[at(seen, "step_finished", "drain.public")]["elapsed_ms"]
        .as_u64()
        .unwrap();
    assert!(
        (2_000..8_000).contains(&took),
        "the drain took {took} ms of its 2 s"
    );
    // A success: blue's change ran after it, and the apply is complete.
    assert!(
        at(seen, "step_finished", "drain.public") < at(seen, "step_started", "environment.blue")
    );
    assert_eq!(seen[at(seen, "summary", "")]["ok"], true);
    assert_eq!(rig.state()["environments"]["blue"]["release"], "2.0.0");
}

#[test]
fn the_progress_lines_show_the_count_and_the_drains_end() {
    let rig = Rig::start();
    let held = held_before_a_cutover(&rig, "20s");
    let mut apply = rig.case.spawn(&["apply", "--auto-approve"]);
    let limit = Duration::from_secs(30);
    apply.wait_for_line(
        "drain.public: letting blue drain after router.public's cut-over, until it has no open sessions, at most 20.0s...",
        limit,
    );
    let waiting = apply.wait_for_line("open session", limit);
    let (id, left) = waiting
        .split_once(" left at most)")
        .and_then(|(head, _)| head.split_once(": 1 open session to blue ("))
        .unwrap_or_else(|| panic!("{waiting}"));
    assert_eq!(id, "drain.public", "{waiting}");
    assert!(left.ends_with('s') && left.trim_end_matches('s').parse::<f64>().unwrap() <= 20.0);
    drop(held);
    apply.wait_for_line("drain.public: blue has no open sessions", limit);
    apply.wait_for_line("drain.public: done after", limit);
    apply.wait_for_line("environment.blue: updating environment.blue", limit);
    apply.finish(limit).code(0);
}

#[test]
fn caddy_cannot_count_open_sessions_so_its_drain_waits_by_time() {
    let (blue, green) = (free_port(), free_port());
    let caddy = CaddyGuard::start(&CaddySetup::with_routes(vec![static_route(
        "/other", "other",
    )]));
    let case = Case::new();
    let _reaper = ProcessReaper(case.path().join("cutover.state.json"));
    let env = |name: &str, release: &str| {
        let port = if name == "blue" { blue } else { green };
        format!(
            "environment \"{name}\" {{\n  release  = \"{release}\"\n  endpoint = \"127.0.0.1:{port}\"\n  process {{\n    command = [\"{demo}\", \"--port\", \"{port}\", \"--release\", \"{release}\"]\n  }}\n  health {{\n    {FAST_HEALTH}\n  }}\n}}\n",
            demo = crate::support::demo_app_bin().display()
        )
    };
    let backend = format!(
        "  caddy {{\n    admin = \"{}\"\n  }}\n",
        caddy.admin_address()
    );
    case.write("main.hcl", &config(env, "1.0.0", "blue", "1s", &backend));
    case.run(&["apply", "--auto-approve"]).code(0);
    case.write("main.hcl", &config(env, "2.0.0", "green", "1s", &backend));
    case.run(&["plan"]).code(0).stdout_has(
        "blue keeps serving its open connections for 1s after router.public's cut-over (drain; it waits 1s: caddy cannot count open sessions)",
    );
    let run = case.run(&["apply", "--json", "--auto-approve"]).code(0);
    let seen: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let started = &seen[at(&seen, "step_started", "drain.public")];
    assert_eq!(
        started["description"],
        "letting blue drain for 1.0s after router.public's cut-over (it waits by time: caddy cannot count open sessions)"
    );
    assert!(
        !seen.iter().any(|e| e["type"] == "drain_waiting"),
        "{seen:#?}"
    );
    drain_ended(&seen, "by_time", Value::Null);
    let took = seen[at(&seen, "step_finished", "drain.public")]["elapsed_ms"]
        .as_u64()
        .unwrap();
    assert!(took >= 1_000, "the drain took {took} ms of its 1 s");
    assert!(
        at(&seen, "step_finished", "drain.public") < at(&seen, "step_started", "environment.blue")
    );
}

/// The chaos bench's hazard (docs/reliability.md), made deterministic:
/// green is live and its process dies; a request sent just then waits in
/// HAProxy's own connection retry (a refused connect is tried again a
/// second later, `retries` times, on the same server). The next apply
/// switches to blue and deploys a new green on the same port. Before the
/// settle, that new green, whose gate had not passed, answered the retry;
/// now the change of green waits until HAProxy holds no stream to it, and
/// the request ends as HAProxy ends it (503), never answered by 2.0.0.
#[test]
fn a_request_in_haproxys_retry_is_never_answered_by_the_colour_that_replaces_it() {
    let rig = Rig::start();
    let env = |name: &str, release: &str| rig.process_env(name, release, &[], FAST_HEALTH);
    let config = |green: &str, live: &str| {
        format!(
            "{}{}{}",
            env("blue", "1.0.0"),
            env("green", green),
            rig.router(live)
        )
    };
    rig.write(&config("1.0.0", "green"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("green");
    let green = rig.state_pid("green").expect("green's pid");
    crate::crash::kill_group(green);
    // The request, sent to green as it is gone.
    let frontend = rig.h.frontend();
    let request = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(frontend).expect("connect to HAProxy");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: retry\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
        answer
    });
    crate::crash::wait_until("HAProxy holds the request for green", LIMIT, || {
        rig.h.backend_sessions("green") >= 1
    });
    rig.write(&config("2.0.0", "blue"));
    let mut apply = rig.spawn_apply_json("retry", &[]);
    let plan = apply.wait_event("plan", None, LIMIT);
    assert_eq!(
        crate::support::step_ids(&plan["plan"]),
        [
            "health.blue",
            "cutover.public",
            "settle.green",
            "environment.green"
        ]
    );
    assert_eq!(apply.wait_exit(LIMIT), 0, "{:#?}", apply.seen);
    let answer = request.join().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "the request in HAProxy's retry was answered: {answer}"
    );
    assert!(!answer.contains("2.0.0"), "{answer}");
    // What happened, in order: the switch, the wait on HAProxy's count,
    // which saw the request, the end of that wait once HAProxy gave up on
    // it, and only then green's change.
    let seen = &apply.seen;
    let switched = at(seen, "step_finished", "cutover.public");
    let waiting = at(seen, "drain_waiting", "settle.green");
    let ended = at(seen, "drain_ended", "settle.green");
    let changed = at(seen, "step_started", "environment.green");
    assert!(
        switched < waiting && waiting < ended && ended < changed,
        "{seen:#?}"
    );
    assert!(
        seen[waiting]["sessions"].as_u64() >= Some(1),
        "{}",
        seen[waiting]
    );
    assert_eq!(
        (
            &seen[ended]["router"],
            &seen[ended]["ended"],
            &seen[ended]["sessions"]
        ),
        (&"public".into(), &"idle".into(), &0.into())
    );
    rig.assert_routes_to("blue");
}
