//! Webhook notifications: the POSTs of the `notify` blocks (docs/notify.md),
//! each carrying one progress line of the apply (the object `apply --json`
//! prints, docs/events.md) or, for Slack, one human line made from it.
//!
//! A notification never blocks or fails a cut-over. [`Notifier::send`] only
//! queues: it is called from `Observer::event`, which must never wait on the
//! network. One task per block delivers that block's queue in order, each
//! POST bounded by the block's `timeout` and tried at most [`ATTEMPTS`]
//! times; [`Notifier::finish`] waits for what is left at most
//! [`FINISH_BOUND`] and gives up on the rest. A delivery that failed for
//! good is an [`Event::NotifyFailed`] told to the observer: a warning, which
//! changes nothing else. No message names the URL (a credential: Slack's
//! carries its token) nor a header value.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::health::HealthChecker;
use super::observer::{Event, Observer};
use crate::config::model::{Notify, NotifyEvent, NotifyFormat};

/// How long a finished command waits for the notifications still queued or
/// being sent, in all, before it gives up on them.
pub const FINISH_BOUND: Duration = Duration::from_secs(10);

/// How many times one event is POSTed at most (connection errors,
/// timeouts, 429 and 5xx are tried again; other answers are final).
pub const ATTEMPTS: u32 = 3;

/// The pauses between attempts.
const BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(1)];

/// The header that names the block a POST comes from.
pub const NOTIFY_HEADER: &str = "x-cutover-notify";

/// The event a progress line is part of, if any: `cutover_done` lines;
/// `switched_back` and `switch_back_refused` (reverted); the
/// `step_finished` of a failed step (failed); `awaiting_approval`; the
/// `summary` (apply_finished).
pub fn event_of(line: &Value) -> Option<NotifyEvent> {
    match line.get("type")?.as_str()? {
        "cutover_done" => Some(NotifyEvent::CutoverDone),
        "switched_back" | "switch_back_refused" => Some(NotifyEvent::Reverted),
        // A step stopped half-way (a signal, or the stop after another's
        // failure) is no failure of its own: the summary tells of it.
        "step_finished"
            if line.get("ok") == Some(&Value::Bool(false))
                && line.get("error_kind").and_then(Value::as_str) != Some("interrupted") =>
        {
            Some(NotifyEvent::Failed)
        }
        "awaiting_approval" => Some(NotifyEvent::AwaitingApproval),
        "summary" => Some(NotifyEvent::ApplyFinished),
        _ => None,
    }
}

/// Sends the events of one command (`apply`, `rollback`) to every
/// `notify` block. Must be started inside a tokio runtime.
pub struct Notifier {
    queues: Vec<Queue>,
    what: &'static str,
    observer: Arc<dyn Observer>,
}

/// One block's queue and the task that empties it.
struct Queue {
    events: BTreeSet<NotifyEvent>,
    format: NotifyFormat,
    name: String,
    /// `None` once [`Notifier::finish`] closed it.
    tx: Mutex<Option<mpsc::UnboundedSender<Item>>>,
    /// What is queued or being sent, in order: what is left when the
    /// task is given up on.
    pending: Arc<Mutex<VecDeque<Pending>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct Item {
    event: NotifyEvent,
    body: Vec<u8>,
}

struct Pending {
    event: NotifyEvent,
    /// POSTs tried so far.
    attempts: u32,
}

/// Where and how one block posts.
struct Target {
    name: String,
    url: reqwest::Url,
    headers: HeaderMap,
    timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Notifier {
    /// Start one sender per block, posting with `client`; failures are told
    /// to `observer`. `what` (`apply`, `rollback`) names the command in
    /// messages.
    pub fn start<'a>(
        blocks: impl IntoIterator<Item = &'a Notify>,
        client: reqwest::Client,
        what: &'static str,
        observer: Arc<dyn Observer>,
    ) -> Notifier {
        let queues = blocks
            .into_iter()
            .map(|block| {
                let (tx, rx) = mpsc::unbounded_channel();
                let pending = Arc::new(Mutex::new(VecDeque::new()));
                let sender = Sender {
                    client: client.clone(),
                    target: target(block),
                    pending: pending.clone(),
                    observer: observer.clone(),
                };
                Queue {
                    events: block.events.clone(),
                    format: block.format,
                    name: block.name.clone(),
                    tx: Mutex::new(Some(tx)),
                    pending,
                    task: Mutex::new(Some(tokio::spawn(sender.run(rx)))),
                }
            })
            .collect();
        Notifier {
            queues,
            what,
            observer,
        }
    }

    /// Queue `line` (a progress line of `apply --json`) for every block
    /// that wants its event; returns at once.
    pub fn send(&self, line: &Value) {
        let Some(event) = event_of(line) else { return };
        for queue in self.queues.iter().filter(|q| q.events.contains(&event)) {
            let tx = lock(&queue.tx);
            let Some(tx) = tx.as_ref() else { continue };
            let body = body(queue.format, line, self.what);
            lock(&queue.pending).push_back(Pending { event, attempts: 0 });
            if tx.send(Item { event, body }).is_err() {
                // The sender is gone (it panicked): say so, as for a failure.
                lock(&queue.pending).pop_back();
                failed(
                    self.observer.as_ref(),
                    &queue.name,
                    event,
                    "the sender stopped".into(),
                    0,
                );
            }
        }
    }

    /// Wait for every queued notification, at most [`FINISH_BOUND`] in all,
    /// or until `cancel` ends (a signal: it gives its name); each one still
    /// unsent then is a failure told to the observer.
    pub async fn finish(&self, cancel: impl Future<Output = String>) {
        self.finish_within(FINISH_BOUND, cancel).await;
    }

    /// [`Notifier::finish`] with another bound (for tests).
    pub async fn finish_within(&self, bound: Duration, cancel: impl Future<Output = String>) {
        for queue in &self.queues {
            lock(&queue.tx).take();
        }
        let deadline = tokio::time::Instant::now() + bound;
        tokio::pin!(cancel);
        let mut given_up: Option<String> = None;
        for queue in &self.queues {
            let Some(mut task) = lock(&queue.task).take() else {
                continue;
            };
            let done = match &given_up {
                Some(_) => task.is_finished(),
                None => tokio::select! {
                    done = tokio::time::timeout_at(deadline, &mut task) => done.is_ok(),
                    signal = &mut cancel => {
                        given_up = Some(format!("given up at {signal}"));
                        false
                    }
                },
            };
            if done {
                continue;
            }
            let given_up = given_up.get_or_insert_with(|| {
                format!("given up {} after the {} finished", secs(bound), self.what)
            });
            task.abort();
            // Cancelled at its next await: after that nothing touches
            // `pending` any more.
            let _ = task.await;
            let left: Vec<Pending> = lock(&queue.pending).drain(..).collect();
            for Pending { event, attempts } in left {
                let error = match attempts {
                    0 => format!("not sent: {given_up}"),
                    n => format!("{given_up} ({}, the last unanswered)", tries(n)),
                };
                failed(self.observer.as_ref(), &queue.name, event, error, attempts);
            }
        }
    }
}

/// Tell `observer` that block `name` could not be sent `event`.
fn failed(observer: &dyn Observer, name: &str, event: NotifyEvent, error: String, attempts: u32) {
    observer.event(&Event::NotifyFailed {
        notify: name.to_owned(),
        event: event.as_str(),
        error,
        attempts,
    });
}

/// The URL, headers and timeout of `block`'s POSTs.
fn target(block: &Notify) -> Target {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let agent = concat!("cutover/", env!("CARGO_PKG_VERSION"));
    headers.insert(USER_AGENT, HeaderValue::from_static(agent));
    if let Ok(name) = HeaderValue::from_str(&block.name) {
        headers.insert(HeaderName::from_static(NOTIFY_HEADER), name);
    }
    // Checked when the configuration was loaded; the operator's own win
    // over cutover's.
    for (name, value) in &block.headers {
        if let (Ok(name), Ok(mut value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            value.set_sensitive(true);
            headers.insert(name, value);
        }
    }
    Target {
        name: block.name.clone(),
        url: block.webhook.clone(),
        headers,
        timeout: block.timeout,
    }
}

/// What is posted for `line`: the line itself, or Slack's `{"text": ...}`.
fn body(format: NotifyFormat, line: &Value, what: &str) -> Vec<u8> {
    let value = match format {
        NotifyFormat::Json => line.clone(),
        NotifyFormat::Slack => json!({ "text": slack_text(line, what) }),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// One block's sender: delivers its queue in order.
struct Sender {
    client: reqwest::Client,
    target: Target,
    pending: Arc<Mutex<VecDeque<Pending>>>,
    observer: Arc<dyn Observer>,
}

impl Sender {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Item>) {
        while let Some(item) = rx.recv().await {
            let result = self.deliver(&item.body).await;
            lock(&self.pending).pop_front();
            if let Err((error, attempts)) = result {
                let observer = self.observer.as_ref();
                failed(observer, &self.target.name, item.event, error, attempts);
            }
        }
    }

    /// POST `body`, with retries: `Err((why, attempts))` when it failed
    /// for good.
    async fn deliver(&self, body: &[u8]) -> Result<(), (String, u32)> {
        let t = &self.target;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(front) = lock(&self.pending).front_mut() {
                front.attempts = attempt;
            }
            let sent = self
                .client
                .post(t.url.clone())
                .headers(t.headers.clone())
                .timeout(t.timeout)
                .body(body.to_vec())
                .send()
                .await;
            let (retry, why) = match sent {
                Ok(reply) if reply.status().is_success() => return Ok(()),
                Ok(reply) => (
                    retried(reply.status()),
                    format!("HTTP {}", reply.status().as_u16()),
                ),
                Err(e) => (true, failure(&e.without_url(), t.timeout)),
            };
            match BACKOFF.get(attempt as usize - 1) {
                Some(pause) if retry && attempt < ATTEMPTS => tokio::time::sleep(*pause).await,
                _ if retry => return Err((format!("{why} after {}", tries(attempt)), attempt)),
                _ => return Err((format!("{why} (not retried)"), attempt)),
            }
        }
    }
}

/// Whether an answer with `status` is worth another attempt: too many
/// requests, or a server error. Any other answer would be the same again.
fn retried(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// A failed request, for people, without its URL.
fn failure(error: &reqwest::Error, timeout: Duration) -> String {
    match HealthChecker::request_failure_kind(error, timeout) {
        "timeout" => format!("no answer within {}", secs(timeout)),
        "refused" => "connection refused".into(),
        "dns" => "the host name did not resolve".into(),
        "tls" => "the TLS handshake failed".into(),
        "unreachable" => "cannot connect".into(),
        _ => "the connection broke before an answer".into(),
    }
}

fn tries(n: u32) -> String {
    if n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}

/// `10s`, `500ms`.
fn secs(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The one human line a Slack message says for a progress line of
/// `what` (`apply`, `rollback`).
pub fn slack_text(line: &Value, what: &str) -> String {
    let s = |key: &str| line.get(key).and_then(Value::as_str).unwrap_or("?");
    let text = match s("type") {
        "cutover_done" => format!(
            "router.{} cut over from {} to {}",
            s("router"),
            line.get("from").and_then(Value::as_str).unwrap_or("(none)"),
            s("to")
        ),
        "switched_back" => format!("router.{} switched back to {}", s("router"), s("to")),
        "switch_back_refused" => format!(
            "router.{} NOT switched back to {}: {}",
            s("router"),
            s("to"),
            s("why")
        ),
        "step_finished" => format!("{} FAILED: {}", s("id"), s("error")),
        "awaiting_approval" => awaiting_text(line),
        "summary" => summary_text(line, what),
        other => other.to_owned(),
    };
    // Slack reads `&`, `<` and `>` as markup.
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!("cutover {what}: {escaped}")
}

fn awaiting_text(line: &Value) -> String {
    let routers: Vec<String> = line
        .get("routers")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(Value::as_str)
                .map(|r| format!("router.{r}"))
                .collect()
        })
        .unwrap_or_default();
    let within = line
        .get("timeout_ms")
        .and_then(Value::as_u64)
        .map(|ms| format!(" (within {})", secs(Duration::from_millis(ms))))
        .unwrap_or_default();
    let approve = line
        .get("approve")
        .and_then(Value::as_str)
        .unwrap_or("cutover approve");
    format!(
        "waiting for approval to switch {}{within}: run `{approve}`",
        routers.join(", ")
    )
}

fn summary_text(line: &Value, what: &str) -> String {
    let count = |key: &str| line.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    if line.get("ok") == Some(&Value::Bool(true)) {
        let serial = line.get("serial").and_then(Value::as_u64).unwrap_or(0);
        return format!(
            "complete: {} step(s) done, state serial {serial}",
            count("done")
        );
    }
    let failed = line.get("failed").filter(|f| !f.is_null());
    let stopped_by = line.get("stopped_by").and_then(Value::as_str);
    let reverted = match count("reverted") {
        0 => String::new(),
        n => format!("; {n} router(s) switched back"),
    };
    let why = match (failed, stopped_by) {
        (Some(f), _) => format!(
            "stopped at {}: {}",
            f.get("id").and_then(Value::as_str).unwrap_or("?"),
            f.get("error").and_then(Value::as_str).unwrap_or("?")
        ),
        (None, Some(signal)) => format!("stopped by {signal}"),
        (None, None) => format!("the {what} did not finish (see its output)"),
    };
    format!("{why}{reverted}; {} step(s) done", count("done"))
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
