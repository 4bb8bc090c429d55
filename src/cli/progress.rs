//! The views of apply progress: for the terminal, a line when a step starts
//! and ends (with its elapsed time) and what a waiting health gate waits for;
//! for machines (`--json`), one JSON object per line for each event.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::engine::observer::{Event, Observer};
use crate::engine::ApplyReport;
use crate::plan::document::{PlanDocument, StepKind};

/// Prints progress lines to stdout.
#[derive(Default)]
pub struct Lines {
    last_wait: Mutex<BTreeMap<String, Instant>>,
}

/// How often a waiting health gate repeats what it waits for.
const WAIT_EVERY: Duration = Duration::from_secs(5);

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Observer for Lines {
    fn event(&self, event: &Event) {
        match event {
            Event::StepStarted { id, description } => println!("{id}: {description}..."),
            Event::StepFinished {
                id,
                elapsed,
                error: None,
            } => println!("{id}: done after {}", secs(*elapsed)),
            Event::StepFinished {
                id,
                elapsed,
                error: Some(e),
            } => println!("{id}: FAILED after {}: {e}", secs(*elapsed)),
            Event::HealthWaiting {
                environment,
                waiting_for,
                last,
                remaining,
            } => {
                let mut last_wait = self.last_wait.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let due = last_wait
                    .get(environment)
                    .is_none_or(|t| now.duration_since(*t) >= WAIT_EVERY);
                if due {
                    last_wait.insert(environment.clone(), now);
                    println!(
                        "health.{environment}: still waiting for {waiting_for} ({} left; last: {last})",
                        secs(*remaining)
                    );
                }
            }
            Event::StateSaved { .. } => {}
        }
    }
}

/// Prints one JSON object per line for each event (`apply --json`,
/// `rollback --json`), for CI systems and chat bots. Every line has a `type`;
/// the types are documented in `docs/events.md`.
pub struct JsonLines {
    /// What each cut-over step switches (router, from, to), by step id, so a
    /// finished `cutover.` step can say what it did.
    cutovers: BTreeMap<String, (String, Option<String>, String)>,
    last_wait: Mutex<BTreeMap<String, Instant>>,
}

impl JsonLines {
    /// An observer for applying `doc`.
    pub fn new(doc: &PlanDocument) -> Self {
        let cutovers = doc
            .steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Cutover {
                    router, from, to, ..
                } => Some((s.id.clone(), (router.clone(), from.clone(), to.clone()))),
                _ => None,
            })
            .collect();
        JsonLines {
            cutovers,
            last_wait: Mutex::default(),
        }
    }

    /// The lines one event gives (none for a throttled health wait).
    fn lines(&self, event: &Event) -> Vec<Value> {
        match event {
            Event::StepStarted { id, description } => vec![json!({
                "type": "step_started", "id": id, "description": description,
            })],
            Event::StepFinished { id, elapsed, error } => {
                let ms = millis(*elapsed);
                let mut out = vec![json!({
                    "type": "step_finished", "id": id, "ok": error.is_none(),
                    "elapsed_ms": ms, "error": error,
                })];
                if let Some(environment) = id.strip_prefix("health.") {
                    out.push(match error {
                        None => json!({
                            "type": "health_passed", "id": id,
                            "environment": environment, "elapsed_ms": ms,
                        }),
                        Some(e) => json!({
                            "type": "health_failed", "id": id,
                            "environment": environment, "elapsed_ms": ms, "error": e,
                        }),
                    });
                }
                if let (None, Some((router, from, to))) = (error, self.cutovers.get(id)) {
                    out.push(json!({
                        "type": "cutover_done", "id": id, "router": router,
                        "from": from, "to": to, "elapsed_ms": ms,
                    }));
                }
                out
            }
            Event::HealthWaiting {
                environment,
                waiting_for,
                last,
                remaining,
            } => {
                let mut last_wait = self.last_wait.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let due = last_wait
                    .get(environment)
                    .is_none_or(|t| now.duration_since(*t) >= WAIT_EVERY);
                if !due {
                    return vec![];
                }
                last_wait.insert(environment.clone(), now);
                vec![json!({
                    "type": "health_waiting", "id": format!("health.{environment}"),
                    "environment": environment, "waiting_for": waiting_for,
                    "last": last, "remaining_ms": millis(*remaining),
                })]
            }
            Event::StateSaved { serial } => vec![json!({"type": "state_saved", "serial": serial})],
        }
    }
}

impl Observer for JsonLines {
    fn event(&self, event: &Event) {
        for line in self.lines(event) {
            print_json_line(&line);
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Print one JSON value on one line of stdout (whole, even when several tasks
/// print at once: the lock is held for the line).
pub fn print_json_line(value: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader went away) must not stop the apply.
    let _ = writeln!(out, "{value}").and_then(|()| out.flush());
}

/// The first line of `apply --json`: the plan document, sensitive values
/// redacted as in `plan --json`.
pub fn plan_line(doc: &PlanDocument) -> Value {
    let plan: Value =
        serde_json::from_str(&crate::render::json::plan(doc)).expect("the JSON view is JSON");
    json!({"type": "plan", "plan": plan})
}

/// The last line of `apply --json` and `rollback --json`.
pub fn summary_line(report: &ApplyReport) -> Value {
    let failed = report
        .failed
        .as_ref()
        .map(|(id, error)| json!({"id": id, "error": error}));
    json!({
        "type": "summary",
        "ok": report.failed.is_none(),
        "done": report.done,
        "failed": failed,
        "not_run": report.not_run,
        "serial": report.serial,
        "elapsed_ms": millis(report.elapsed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> PlanDocument {
        let text = include_str!(
            "../render/snapshots/cutover__render__json__tests__schema_is_what_the_docs_say.snap"
        );
        // The snapshot is the JSON view of DESIGN.md's blue-to-green plan,
        // after insta's front matter.
        let json = &text[text.find("\n{").expect("JSON in the snapshot")..];
        serde_json::from_str(json).expect("a plan document")
    }

    #[test]
    fn every_line_has_a_type_and_cutovers_say_what_switched() {
        let observer = JsonLines::new(&doc());
        let finished = |id: &str, error: Option<&str>| Event::StepFinished {
            id: id.to_owned(),
            elapsed: Duration::from_millis(1500),
            error: error.map(str::to_owned),
        };
        let lines = observer.lines(&finished("cutover.public", None));
        assert_eq!(lines[0]["type"], "step_finished");
        assert_eq!(lines[0]["elapsed_ms"], 1500);
        assert_eq!(
            lines[1],
            json!({"type": "cutover_done", "id": "cutover.public", "router": "public",
                   "from": "blue", "to": "green", "elapsed_ms": 1500})
        );
        let lines = observer.lines(&finished("health.green", Some("timed out")));
        assert_eq!(lines[1]["type"], "health_failed");
        assert_eq!(lines[1]["error"], "timed out");
        assert_eq!(
            observer.lines(&finished("cutover.public", Some("x"))).len(),
            1
        );
        let wait = Event::HealthWaiting {
            environment: "green".to_owned(),
            waiting_for: "GET http://127.0.0.1:9102/healthz -> 200".to_owned(),
            last: "connection refused".to_owned(),
            remaining: Duration::from_secs(3),
        };
        assert_eq!(observer.lines(&wait)[0]["remaining_ms"], 3000);
        assert!(
            observer.lines(&wait).is_empty(),
            "repeated waits are throttled"
        );
        let report = ApplyReport {
            done: vec!["health.green".to_owned()],
            failed: Some(("cutover.public".to_owned(), "refused".to_owned())),
            serial: 8,
            ..ApplyReport::default()
        };
        let summary = summary_line(&report);
        assert_eq!(summary["ok"], false);
        assert_eq!(summary["failed"]["id"], "cutover.public");
        assert_eq!(plan_line(&doc())["plan"]["summary"]["outcome"], "cutover");
    }
}
