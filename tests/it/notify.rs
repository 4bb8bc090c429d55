//! `notify` blocks end to end: a real HAProxy cut over by `cutover apply`
//! and `rollback`, and a real webhook receiver on loopback
//! (tests/support/webhook.rs) recording what it is sent. What is posted is
//! compared with the `--json` lines of the same run; a receiver that fails
//! or never answers costs a warning, never the cut-over.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::haproxy_support::{closed_address, free_port, ColourServer, HaproxyGuard, HaproxySetup};
use crate::support::{Case, Run};
use crate::webhook_support::{Receiver, Reply, Request};

/// How long a test waits for a request that must come.
const WITHIN: Duration = Duration::from_secs(20);

/// The secret parts: a token in the webhook's path and in a header.
const HOOK_TOKEN: &str = "T000-hook-s3cr3t";
const HEADER_TOKEN: &str = "hdr-s3cr3t-value";

/// Blue and green servers (deployed by something else: no backend block)
/// behind HAProxy, blue live.
struct World {
    h: HaproxyGuard,
    blue: ColourServer,
    green: ColourServer,
}

impl World {
    fn start() -> World {
        let blue = ColourServer::start_on("blue", &format!("127.0.0.1:{}", free_port()));
        let green = ColourServer::start_on("green", &format!("127.0.0.1:{}", free_port()));
        let setup = HaproxySetup::blue_green(&blue.address(), &green.address(), "blue");
        World {
            h: HaproxyGuard::start(&setup),
            blue,
            green,
        }
    }

    /// The configuration with `live`, green at `green` (its server's
    /// address unless given), and `notify` blocks.
    fn config(&self, live: &str, green: Option<&str>, notify: &str) -> String {
        let colour = |name: &str, endpoint: &str| {
            format!(
                r#"
environment "{name}" {{
  release  = "1"
  endpoint = "{endpoint}"
  health {{
    path     = "/healthz"
    interval = "50ms"
    timeout  = "2s"
  }}
}}
"#
            )
        };
        let green = green.map_or_else(|| self.green.address(), str::to_owned);
        format!(
            r#"
variable "hook" {{
  sensitive = true
}}
variable "token" {{
  sensitive = true
}}
{blue}{green}
router "public" {{
  live = environment.{live}
  haproxy {{
    socket = "{socket}"
    map    = "{map}"
  }}
}}
{notify}"#,
            blue = colour("blue", &self.blue.address()),
            green = colour("green", &green),
            socket = self.h.socket().display(),
            map = self.h.map_path().display(),
        )
    }

    fn live(&self) -> String {
        std::fs::read_to_string(self.h.map_path())
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("public ").map(str::to_owned))
            .unwrap_or_default()
    }
}

/// The sensitive variables: the receiver's URL with a secret in its path,
/// and a header token.
fn secrets(receiver: &Receiver) -> [(String, String); 2] {
    [
        (
            "CUTOVER_VAR_hook".into(),
            receiver.url(&format!("/ops/{HOOK_TOKEN}")),
        ),
        ("CUTOVER_VAR_token".into(), HEADER_TOKEN.into()),
    ]
}

fn run(case: &Case, args: &[&str], env: &[(String, String)]) -> Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    case.run_env(args, &env)
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn of_type<'a>(lines: &'a [Value], types: &[&str]) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| types.contains(&l["type"].as_str().unwrap_or_default()))
        .collect()
}

/// The bodies of the requests to paths starting with `prefix`, in order.
fn bodies(requests: &[Request], prefix: &str) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.path.starts_with(prefix))
        .map(Request::json)
        .collect()
}

/// Neither secret, nor the receiver's address, is anywhere in `run`'s
/// output.
#[track_caller]
fn shows_no_secret(run: &Run, receiver: &Receiver) {
    let port = receiver.addr.port().to_string();
    for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        for secret in [HOOK_TOKEN, HEADER_TOKEN, port.as_str()] {
            assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
        }
    }
}

#[test]
fn apply_and_rollback_post_the_objects_of_their_json_lines_in_order() {
    let world = World::start();
    let receiver = Receiver::start(free_port(), Reply::Status(200));
    let notify = format!(
        r#"
notify "ops" {{
  webhook = var.hook
  headers = {{ Authorization = "Bearer ${{var.token}}" }}
}}
notify "ci" {{
  webhook = "{ci}"
  events  = ["apply_finished"]
}}
notify "chat" {{
  webhook = "{chat}"
  events  = ["cutover_done", "apply_finished"]
  format  = "slack"
}}
"#,
        ci = receiver.url("/ci"),
        chat = receiver.url("/chat"),
    );
    let env = secrets(&receiver);
    let case = Case::with_main(&world.config("green", None, &notify));
    let applied = run(&case, &["apply", "--auto-approve", "--json"], &env).code(0);
    assert_eq!(world.live(), "green");
    shows_no_secret(&applied, &receiver);
    let lines = json_lines(&applied.stdout);
    let done = of_type(&lines, &["cutover_done", "summary"]);
    assert_eq!(done.len(), 2, "{}", applied.stdout);
    // ops: every event; ci: the summary; chat: two Slack lines.
    let requests = receiver.wait_for(5, WITHIN);
    assert_eq!(
        bodies(&requests, "/ops/"),
        done.iter().map(|v| (*v).clone()).collect::<Vec<_>>()
    );
    assert_eq!(bodies(&requests, "/ci"), [done[1].clone()]);
    assert_eq!(
        bodies(&requests, "/chat"),
        [
            serde_json::json!({"text": "cutover apply: router.public cut over from blue to green"}),
            serde_json::json!({"text": "cutover apply: complete: 2 step(s) done, state serial 1"}),
        ]
    );
    for r in &requests {
        let block = r.path.trim_start_matches('/').split('/').next().unwrap();
        assert_eq!(r.header("x-cutover-notify"), Some(block), "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let ops: Vec<&Request> = requests
        .iter()
        .filter(|r| r.path.starts_with("/ops/"))
        .collect();
    assert_eq!(
        ops[0].header("authorization"),
        Some(format!("Bearer {HEADER_TOKEN}").as_str())
    );
    let state = String::from_utf8(case.state_bytes().unwrap()).unwrap();
    assert!(
        !state.contains(HOOK_TOKEN) && !state.contains(HEADER_TOKEN),
        "{state}"
    );

    // A rollback sends its own events, the same way.
    let rolled = run(&case, &["rollback", "--auto-approve", "--json"], &env).code(0);
    assert_eq!(world.live(), "blue");
    shows_no_secret(&rolled, &receiver);
    let lines = json_lines(&rolled.stdout);
    let done = of_type(&lines, &["cutover_done", "summary"]);
    assert_eq!(done[0]["to"], "blue", "{}", rolled.stdout);
    let requests = receiver.wait_for(10, WITHIN);
    let ops = bodies(&requests, "/ops/");
    assert_eq!(
        ops[2..],
        done.iter().map(|v| (*v).clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        bodies(&requests, "/chat")[2],
        serde_json::json!({"text": "cutover rollback: router.public cut over from green to blue"})
    );
}

#[test]
fn a_failing_webhook_is_tried_three_times_and_costs_only_a_warning() {
    let world = World::start();
    let receiver = Receiver::start(free_port(), Reply::Status(500));
    let notify = r#"
notify "ops" {
  webhook = var.hook
  events  = ["cutover_done"]
  headers = { Authorization = var.token }
}
"#;
    let env = secrets(&receiver);
    let case = Case::with_main(&world.config("green", None, notify));
    let applied = run(&case, &["apply", "--auto-approve"], &env).code(0);
    assert_eq!(world.live(), "green");
    shows_no_secret(&applied, &receiver);
    assert_eq!(
        applied.stderr,
        "warning: notify.ops: cutover_done not delivered: HTTP 500 after 3 attempts\n"
    );
    assert!(
        applied.stdout.contains("Apply complete"),
        "{}",
        applied.stdout
    );
    assert_eq!(receiver.wait_for(3, WITHIN).len(), 3);

    // With --json, the warning is a line, before the summary.
    case.write("main.hcl", &world.config("blue", None, notify));
    let applied = run(&case, &["apply", "--auto-approve", "--json"], &env).code(0);
    shows_no_secret(&applied, &receiver);
    let lines = json_lines(&applied.stdout);
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    let at = |t: &str| {
        types
            .iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("no {t}: {types:?}"))
    };
    assert!(at("cutover_done") < at("notify_failed"), "{types:?}");
    assert_eq!(types.last(), Some(&"summary"), "{types:?}");
    assert_eq!(
        lines[at("notify_failed")],
        serde_json::json!({"type": "notify_failed", "notify": "ops", "event": "cutover_done",
                           "error": "HTTP 500 after 3 attempts", "attempts": 3})
    );
    assert_eq!(applied.stderr, "");
    assert_eq!(receiver.wait_for(6, WITHIN).len(), 6);
}

#[test]
fn a_webhook_that_never_answers_does_not_hold_up_the_cutover() {
    let world = World::start();
    let receiver = Receiver::start(free_port(), Reply::Never);
    let notify = r#"
notify "ops" {
  webhook = var.hook
}
"#;
    let env = secrets(&receiver);
    let case = Case::with_main(&world.config("green", None, notify));
    let started = Instant::now();
    let applied = run(&case, &["apply", "--auto-approve", "--json"], &env).code(0);
    let took = started.elapsed();
    assert_eq!(world.live(), "green");
    shows_no_secret(&applied, &receiver);
    let lines = json_lines(&applied.stdout);
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    // The cut-over and the whole walk ran without waiting for the webhook,
    // whose first POST (5 s timeout) was still unanswered: the walk took
    // less than that POST's timeout, and the failures came after it.
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert!(summary["elapsed_ms"].as_u64().unwrap() < 5000, "{summary}");
    let failed: Vec<&Value> = of_type(&lines, &["notify_failed"]);
    let position = |t: &str| types.iter().position(|x| *x == t).unwrap();
    assert!(
        position("cutover_done") < position("notify_failed"),
        "{types:?}"
    );
    assert_eq!(failed.len(), 2, "{}", applied.stdout);
    assert_eq!(failed[0]["event"], "cutover_done");
    let first = failed[0]["error"].as_str().unwrap();
    assert!(
        first.starts_with("given up 10s after the apply finished ("),
        "{first}"
    );
    assert_eq!(
        *failed[1],
        serde_json::json!({"type": "notify_failed", "notify": "ops", "event": "apply_finished",
                           "error": "not sent: given up 10s after the apply finished", "attempts": 0})
    );
    // Given up at the bound: 10 s after the walk, not after every retry
    // (2 x 5 s + 1.5 s of backoff per event).
    assert!(took < Duration::from_secs(18), "the apply took {took:?}");
    assert!(receiver.wait_for(1, WITHIN)[0].json()["type"] == "cutover_done");
}

#[test]
fn a_failed_step_is_posted_and_only_the_events_asked_for() {
    let world = World::start();
    let receiver = Receiver::start(free_port(), Reply::Status(204));
    let notify = format!(
        r#"
notify "ops" {{
  webhook = "{}"
  events  = ["failed", "reverted"]
}}
"#,
        receiver.url("/ops")
    );
    // Nothing listens where green is said to be: its gate fails.
    let down = closed_address();
    let case = Case::with_main(&world.config("green", Some(&down), &notify));
    let env = secrets(&receiver);
    let failed = run(&case, &["apply", "--auto-approve", "--json"], &env).code(1);
    assert_eq!(world.live(), "blue");
    let lines = json_lines(&failed.stdout);
    let step: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "step_finished" && l["ok"] == false)
        .collect();
    assert_eq!(step.len(), 1, "{}\n{}", failed.stdout, failed.stderr);
    assert_eq!(step[0]["id"], "health.green");
    let requests = receiver.wait_for(1, WITHIN);
    assert_eq!(bodies(&requests, "/ops"), [step[0].clone()]);
    // Nothing else was asked for: the summary is not posted.
    assert_eq!(receiver.requests().len(), 1);
}

#[test]
fn a_signal_while_the_notifications_are_awaited_ends_the_wait() {
    let world = World::start();
    let receiver = Receiver::start(free_port(), Reply::Never);
    // A POST that would take the whole bound.
    let notify = "notify \"ops\" {\n  webhook = var.hook\n  timeout = \"10s\"\n}\n";
    let case = Case::with_main(&world.config("green", None, notify));
    let vars = case.path().join("secrets.json");
    let values: serde_json::Map<String, Value> = secrets(&receiver)
        .into_iter()
        .map(|(k, v)| {
            (
                k.trim_start_matches("CUTOVER_VAR_").to_owned(),
                Value::String(v),
            )
        })
        .collect();
    std::fs::write(&vars, Value::Object(values).to_string()).unwrap();
    let vars = vars.display().to_string();
    let mut apply = case.spawn(&["apply", "--auto-approve", "--var-file", &vars]);
    // The human view says how the apply ended before it waits.
    apply.wait_for_line("Apply complete", WITHIN);
    receiver.wait_for(1, WITHIN);
    let signalled = Instant::now();
    apply.signal(nix::sys::signal::Signal::SIGINT);
    let run = apply.finish(WITHIN);
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the wait went on {took:?} after SIGINT"
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(world.live(), "green");
    shows_no_secret(&run, &receiver);
    assert_eq!(
        run.stderr,
        "warning: notify.ops: cutover_done not delivered: given up at SIGINT (1 attempt, the last unanswered)\n\
         warning: notify.ops: apply_finished not delivered: not sent: given up at SIGINT\n"
    );
}
