//! The notifier against a real loopback receiver (tests/support/webhook.rs):
//! what is posted, in which order, what is tried again, and that a
//! receiver that never answers is given up on within the bound.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use super::*;
use crate::config::model::Span;

#[path = "../../tests/support/webhook.rs"]
mod webhook;
use webhook::{Receiver, Reply};

/// Records the events it is told.
#[derive(Default)]
struct Seen(Mutex<Vec<Event>>);

impl Observer for Seen {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Seen {
    /// `notify EVENT ATTEMPTS ERROR` for every failure told.
    fn failures(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::NotifyFailed {
                    notify,
                    event,
                    error,
                    attempts,
                } => Some(format!("{notify} {event} {attempts} {error}")),
                _ => None,
            })
            .collect()
    }
}

fn block(name: &str, url: &str, events: &[NotifyEvent]) -> Notify {
    Notify {
        name: name.into(),
        webhook: reqwest::Url::parse(url).unwrap(),
        events: events.iter().copied().collect(),
        headers: BTreeMap::from([("Authorization".into(), "Bearer s3cret-token".into())]),
        format: NotifyFormat::Json,
        timeout: Duration::from_secs(2),
        span: Span::default(),
    }
}

fn client() -> reqwest::Client {
    HealthChecker::default().system_client().unwrap()
}

fn cutover_done() -> Value {
    json!({"type": "cutover_done", "id": "cutover.public", "router": "public",
           "from": "blue", "to": "green", "elapsed_ms": 9})
}

fn summary(ok: bool) -> Value {
    json!({"type": "summary", "ok": ok, "done": ["health.green", "cutover.public"],
           "failed": null, "reverted": [], "serial": 4, "stopped_by": null})
}

#[test]
fn lines_map_to_the_events_of_the_docs() {
    let cases = [
        (
            json!({"type": "cutover_done"}),
            Some(NotifyEvent::CutoverDone),
        ),
        (
            json!({"type": "switched_back"}),
            Some(NotifyEvent::Reverted),
        ),
        (
            json!({"type": "switch_back_refused"}),
            Some(NotifyEvent::Reverted),
        ),
        (
            json!({"type": "step_finished", "ok": false}),
            Some(NotifyEvent::Failed),
        ),
        (json!({"type": "step_finished", "ok": true}), None),
        (
            json!({"type": "step_finished", "ok": false, "error_kind": "interrupted"}),
            None,
        ),
        (
            json!({"type": "step_finished", "ok": false, "error_kind": "test_failed"}),
            Some(NotifyEvent::Failed),
        ),
        (
            json!({"type": "awaiting_approval"}),
            Some(NotifyEvent::AwaitingApproval),
        ),
        (
            json!({"type": "summary", "ok": false}),
            Some(NotifyEvent::ApplyFinished),
        ),
        (json!({"type": "health_failed"}), None),
        (json!({"type": "state_saved"}), None),
        (json!({"type": "notify_failed"}), None),
        (json!({"no": "type"}), None),
    ];
    for (line, want) in cases {
        assert_eq!(event_of(&line), want, "{line}");
    }
}

#[test]
fn slack_lines_say_what_happened_in_one_line() {
    let failed = json!({"type": "step_finished", "ok": false, "id": "health.green",
                        "error": "environment.green did not pass <its> check"});
    let awaiting = json!({"type": "awaiting_approval", "routers": ["public", "admin"],
                          "timeout_ms": 600000, "approve": "cutover approve"});
    let stopped = json!({"type": "summary", "ok": false, "done": ["environment.green"],
                         "failed": {"id": "health.green", "error": "not healthy"},
                         "reverted": [{"router": "public", "to": "blue"}]});
    let cases = [
        (cutover_done(), "cutover apply: router.public cut over from blue to green"),
        (
            json!({"type": "switched_back", "router": "public", "to": "blue"}),
            "cutover apply: router.public switched back to blue",
        ),
        (
            failed,
            "cutover apply: health.green FAILED: environment.green did not pass &lt;its&gt; check",
        ),
        (
            awaiting,
            "cutover apply: waiting for approval to switch router.public, router.admin (within 10m): run `cutover approve`",
        ),
        (
            summary(true),
            "cutover apply: complete: 2 step(s) done, state serial 4",
        ),
        (
            stopped,
            "cutover apply: stopped at health.green: not healthy; 1 router(s) switched back; 1 step(s) done",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(slack_text(&line, "apply"), want);
    }
    let body: Value =
        serde_json::from_slice(&body(NotifyFormat::Slack, &cutover_done(), "rollback")).unwrap();
    assert_eq!(
        body,
        json!({"text": "cutover rollback: router.public cut over from blue to green"})
    );
}

#[test]
fn only_429_and_server_errors_are_tried_again() {
    for (status, want) in [
        (429, true),
        (500, true),
        (503, true),
        (400, false),
        (404, false),
        (301, false),
    ] {
        assert_eq!(
            retried(StatusCode::from_u16(status).unwrap()),
            want,
            "{status}"
        );
    }
}

#[tokio::test]
async fn events_are_posted_in_order_with_the_block_name_and_its_headers() {
    let receiver = Receiver::start(0, Reply::Status(200));
    let seen = Arc::new(Seen::default());
    let all = NotifyEvent::ALL;
    let only_finished = [NotifyEvent::ApplyFinished];
    let blocks = [
        block("ops", &receiver.url("/ops"), &all),
        block("ci", &receiver.url("/ci"), &only_finished),
    ];
    let notifier = Notifier::start(&blocks, client(), "apply", seen.clone());
    let lines = [
        json!({"type": "step_started", "id": "cutover.public"}),
        cutover_done(),
        json!({"type": "state_saved", "serial": 4}),
        summary(true),
    ];
    for line in &lines {
        notifier.send(line);
    }
    notifier.finish(std::future::pending()).await;
    let requests = receiver.requests();
    let got: Vec<(String, String, Value)> = requests
        .iter()
        .map(|r| {
            let name = r.header("x-cutover-notify").unwrap_or_default().to_owned();
            (r.path.clone(), name, r.json())
        })
        .collect();
    let ops: Vec<_> = got.iter().filter(|g| g.0 == "/ops").cloned().collect();
    let ci: Vec<_> = got.iter().filter(|g| g.0 == "/ci").cloned().collect();
    assert_eq!(
        ops,
        [
            ("/ops".into(), "ops".into(), lines[1].clone()),
            ("/ops".into(), "ops".into(), lines[3].clone())
        ]
    );
    assert_eq!(ci, [("/ci".into(), "ci".into(), lines[3].clone())]);
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("authorization"), Some("Bearer s3cret-token"));
    }
    assert_eq!(seen.failures(), Vec::<String>::new());
}

#[tokio::test]
async fn a_server_error_is_tried_three_times_and_a_client_error_once() {
    let failing = Receiver::start(0, Reply::Status(500));
    let refusing = Receiver::start(0, Reply::Status(404));
    let seen = Arc::new(Seen::default());
    let all = NotifyEvent::ALL;
    let blocks = [
        block("failing", &failing.url("/"), &all),
        block("refusing", &refusing.url("/"), &all),
    ];
    let notifier = Notifier::start(&blocks, client(), "apply", seen.clone());
    notifier.send(&cutover_done());
    notifier.finish(std::future::pending()).await;
    assert_eq!(failing.requests().len(), 3);
    assert_eq!(refusing.requests().len(), 1);
    let mut failures = seen.failures();
    failures.sort();
    assert_eq!(
        failures,
        [
            "failing cutover_done 3 HTTP 500 after 3 attempts",
            "refusing cutover_done 1 HTTP 404 (not retried)"
        ]
    );
    // The backoff between the attempts: 0.5 s, then 1 s.
    let at: Vec<Instant> = failing.requests().iter().map(|r| r.at).collect();
    assert!(at[1] - at[0] >= Duration::from_millis(500), "{at:?}");
    assert!(at[2] - at[1] >= Duration::from_secs(1), "{at:?}");
}

// Multi-threaded: the test blocks its thread on the receiver while the
// sender's task runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_is_given_up_on_within_the_bound() {
    let silent = Receiver::start(0, Reply::Never);
    let seen = Arc::new(Seen::default());
    let blocks = [block("silent", &silent.url("/"), &NotifyEvent::ALL)];
    let notifier = Notifier::start(&blocks, client(), "apply", seen.clone());
    let sending = Instant::now();
    notifier.send(&cutover_done());
    notifier.send(&summary(true));
    assert!(
        sending.elapsed() < Duration::from_millis(100),
        "send waited on the network: {:?}",
        sending.elapsed()
    );
    // The first POST is under way (and never answered) before the end.
    silent.wait_for(1, Duration::from_secs(5));
    let finishing = Instant::now();
    notifier
        .finish_within(Duration::from_millis(300), std::future::pending())
        .await;
    let took = finishing.elapsed();
    assert!(took < Duration::from_secs(1), "finish took {took:?}");
    assert_eq!(
        seen.failures(),
        [
            "silent cutover_done 1 given up 300ms after the apply finished (1 attempt, the last unanswered)",
            "silent apply_finished 0 not sent: given up 300ms after the apply finished",
        ]
    );
}

#[tokio::test]
async fn a_refused_connection_is_tried_again_and_said_without_the_url() {
    // A port nothing listens on: bound, then freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let seen = Arc::new(Seen::default());
    let url = format!("http://127.0.0.1:{port}/secret-path-token");
    let blocks = [block("down", &url, &NotifyEvent::ALL)];
    let notifier = Notifier::start(&blocks, client(), "rollback", seen.clone());
    notifier.send(&summary(false));
    notifier.finish(std::future::pending()).await;
    assert_eq!(
        seen.failures(),
        ["down apply_finished 3 connection refused after 3 attempts"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_during_the_wait_gives_up_at_once() {
    let silent = Receiver::start(0, Reply::Never);
    let seen = Arc::new(Seen::default());
    let blocks = [
        block("silent", &silent.url("/"), &NotifyEvent::ALL),
        block("also", &silent.url("/also"), &NotifyEvent::ALL),
    ];
    let notifier = Notifier::start(&blocks, client(), "rollback", seen.clone());
    notifier.send(&cutover_done());
    silent.wait_for(2, Duration::from_secs(5));
    let finishing = Instant::now();
    notifier
        .finish_within(Duration::from_secs(60), async { "SIGINT".to_owned() })
        .await;
    assert!(
        finishing.elapsed() < Duration::from_secs(2),
        "{:?}",
        finishing.elapsed()
    );
    assert_eq!(
        seen.failures(),
        [
            "silent cutover_done 1 given up at SIGINT (1 attempt, the last unanswered)",
            "also cutover_done 1 given up at SIGINT (1 attempt, the last unanswered)",
        ]
    );
}
