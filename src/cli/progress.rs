//! The views of an apply: for the terminal, a line when a step starts and
//! ends (with its elapsed time) and what a waiting gate or router waits
//! for; for machines (`--json`), one JSON object per line for each event
//! (docs/events.md); and the summary at the end, for both.

use std::collections::BTreeMap;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover_provider::InstanceSwitch;
use serde_json::{json, Value};

use super::{EXIT_ERROR, EXIT_OK};
use crate::addr::{Address, StepId};
use crate::engine::observer::{DrainEnd, Event, Observer};
use crate::engine::walk::WayBack;
use crate::engine::ApplyReport;
use crate::plan::document::{PlanDocument, StepKind};

/// How often a waiting gate or router repeats what it waits for.
const WAIT_EVERY: Duration = Duration::from_secs(5);

/// The observer for an apply of `doc`: JSON lines or human lines.
pub fn observer(json: bool, doc: &PlanDocument) -> Arc<dyn Observer> {
    if json {
        Arc::new(JsonLines::new(doc))
    } else {
        Arc::new(Lines::default())
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Whether a wait for `key` is due to be shown again.
fn due(last_wait: &Mutex<BTreeMap<String, Instant>>, key: &str) -> bool {
    let mut last_wait = last_wait.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    let due = last_wait
        .get(key)
        .is_none_or(|t| now.duration_since(*t) >= WAIT_EVERY);
    if due {
        last_wait.insert(key.to_owned(), now);
    }
    due
}

/// Prints progress lines to stdout.
#[derive(Default)]
pub struct Lines {
    last_wait: Mutex<BTreeMap<String, Instant>>,
    /// The open sessions each drain (or settle) last printed, by step and
    /// router.
    last_count: Mutex<BTreeMap<String, u64>>,
}

impl Lines {
    /// Whether a drain's (or settle's) count is worth a line: it changed
    /// since the last one printed, or that was a while ago.
    fn count_due(&self, step: &StepId, router: &str, sessions: u64) -> bool {
        let mut last = self.last_count.lock().unwrap_or_else(|p| p.into_inner());
        let key = format!("{step} {router}");
        let changed = last.insert(key.clone(), sessions) != Some(sessions);
        // `due` records the time either way, so it is asked first.
        due(&self.last_wait, &key) || changed
    }

    /// The lines of a drain's (or settle's) events.
    fn drain(&self, event: &Event) {
        match event {
            Event::DrainWaiting {
                step,
                router,
                colour,
                sessions,
                remaining,
            } if self.count_due(step, router, *sessions) => outln!(
                "{step}: {}{sessions} open session{} to {colour} ({} left at most)",
                about(step, router),
                if *sessions == 1 { "" } else { "s" },
                secs(*remaining)
            ),
            Event::DrainUnreadable {
                step,
                router,
                colour,
                error,
                remaining,
            } if due(&self.last_wait, &format!("{step} {router} unreadable")) => outln!(
                "{step}: {}cannot count the open sessions to {colour} ({error}); asking again ({} left at most)",
                about(step, router),
                secs(*remaining)
            ),
            Event::DrainEnded {
                step,
                router,
                colour,
                end,
            } => match end.warning(step, colour) {
                Some(warning) => errln!("warning: {step}: {}{warning}", about(step, router)),
                None if *end == DrainEnd::Idle => {
                    outln!("{step}: {}{colour} has no open sessions", about(step, router))
                }
                None => {}
            },
            _ => {}
        }
    }
}

/// Which router a settle's line is about (a drain names its router in its id).
fn about(step: &StepId, router: &str) -> String {
    match step {
        StepId::Settle(_) => format!("{}: ", crate::addr::Address::router(router)),
        _ => String::new(),
    }
}

impl Observer for Lines {
    fn event(&self, event: &Event) {
        match event {
            Event::StepStarted { id, description } => outln!("{id}: {description}..."),
            Event::StepFinished {
                id,
                elapsed,
                error: None,
            } => outln!("{id}: done after {}", secs(*elapsed)),
            Event::StepFinished {
                id,
                elapsed,
                error: Some(e),
            } => {
                // The whole error is in the summary at the end; here its
                // first line, so it is not printed twice in full.
                let text = e.to_string();
                let (first, more) = match text.split_once('\n') {
                    Some((first, _)) => (first, " (more below)"),
                    None => (text.as_str(), ""),
                };
                outln!("{id}: FAILED after {}: {first}{more}", secs(*elapsed));
            }
            Event::HealthWaiting {
                subject,
                waiting_for,
                last,
                remaining,
            } => {
                if due(&self.last_wait, &subject.to_string()) {
                    outln!(
                        "{}: still waiting for {waiting_for} ({} left; last: {last})",
                        waiting_step(subject),
                        secs(*remaining)
                    );
                }
            }
            Event::RouterWaiting {
                step,
                waiting_for,
                remaining,
                ..
            } => {
                if due(&self.last_wait, &step.to_string()) {
                    outln!(
                        "{step}: waiting for the router's own health check ({} left): {waiting_for}",
                        secs(*remaining)
                    );
                }
            }
            Event::DrainWaiting { .. }
            | Event::DrainUnreadable { .. }
            | Event::DrainEnded { .. } => self.drain(event),
            other => print_line(other),
        }
    }
}

/// The human line of an event that needs nothing remembered.
fn print_line(event: &Event) {
    match event {
        Event::AnalysisRound {
            id,
            round,
            count,
            passed,
            detail,
            failures,
            ..
        } => outln!(
            "{}",
            analysis_line(id, (*round, *count), detail, *passed, *failures)
        ),
        Event::InstancesSwitched {
            router,
            to,
            instances,
        } => outln!("{}", instances_line(router, to, instances)),
        Event::SwitchedBack { router, to } => {
            outln!("router.{router}: switched back to {to}");
        }
        Event::SwitchBackRefused { router, to, why } => {
            outln!("router.{router}: NOT switched back to {to}: {why}");
        }
        Event::Stopping {
            signal,
            running,
            at_once: true,
        } => outln!(
            "{signal} again: stopping {} now",
            if running.is_empty() {
                "everything".to_owned()
            } else {
                join(running)
            }
        ),
        Event::Stopping {
            signal, running, ..
        } => outln!(
            "{signal}: stopping; no new step starts{}",
            if running.is_empty() {
                String::new()
            } else {
                format!(
                    ", waiting for {} to finish (send it again to stop them at once)",
                    join(running)
                )
            }
        ),
        Event::AwaitingApproval {
            router,
            to,
            timeout,
        } => outln!(
            "{}: every check before the switch of router.{router} to {to} passed; waiting up to {} for approval: run `cutover approve {}`",
            StepId::Approval(router.clone()),
            crate::config::checks::duration(*timeout),
            crate::addr::shell_word(router)
        ),
        Event::Approved { router, by } => {
            outln!("{}: approved by {by}", StepId::Approval(router.clone()));
        }
        Event::StateSaved { .. } => {}
        Event::NotifyFailed {
            notify,
            event,
            error,
            ..
        } => errln!("warning: notify.{notify}: {event} not delivered: {error}"),
        // Lines::event's own, which remember what they printed.
        Event::StepStarted { .. }
        | Event::StepFinished { .. }
        | Event::HealthWaiting { .. }
        | Event::RouterWaiting { .. }
        | Event::DrainWaiting { .. }
        | Event::DrainUnreadable { .. }
        | Event::DrainEnded { .. } => {}
    }
}

/// The line of a fleet's switch: `cutover.public: 2 instances switched to
/// green within 0.4ms (a +0.0ms, b +0.4ms)`.
fn instances_line(router: &str, to: &str, instances: &[InstanceSwitch]) -> String {
    let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1000.0);
    let skew = instances.iter().map(|i| i.offset).max().unwrap_or_default();
    let each: Vec<String> = instances
        .iter()
        .map(|i| format!("{} +{}", i.name, ms(i.offset)))
        .collect();
    format!(
        "{}: {} instances switched to {to} within {} ({})",
        StepId::Cutover(router.to_owned()),
        instances.len(),
        ms(skew),
        each.join(", ")
    )
}

/// A fleet's instances in a `cutover_done` line: each with its offset
/// after the first, and the skew (the last offset), in microseconds.
fn instances_json(instances: &[InstanceSwitch]) -> (Value, Value) {
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let skew = instances.iter().map(|i| i.offset).max().unwrap_or_default();
    let each: Vec<Value> = instances
        .iter()
        .map(|i| json!({"name": i.name, "offset_us": us(i.offset)}))
        .collect();
    (json!(each), json!(us(skew)))
}

/// The line of one analysis measurement:
/// `analysis.public.errors: 2/3 0.004 <= 0.01 ok`.
fn analysis_line(
    id: &StepId,
    (round, count): (u32, u32),
    detail: &str,
    passed: bool,
    failures: u32,
) -> String {
    let verdict = if passed {
        "ok".to_owned()
    } else {
        format!("FAILED ({failures} failed so far)")
    };
    format!("{id}: {round}/{count} {detail} {verdict}")
}

/// Prints one JSON object per line for each event (`apply --json`,
/// `rollback --json`), for CI systems and chat bots. Every line has a `type`;
/// the types are documented in `docs/events.md`.
pub struct JsonLines {
    /// What each cut-over step switches (router, from, to), so a finished
    /// `cutover.` step can say what it did.
    cutovers: BTreeMap<StepId, (String, Option<String>, String)>,
    /// When each instance of a fleet router was switched, by cut-over step,
    /// for its `cutover_done` line.
    instances: Mutex<BTreeMap<StepId, Vec<InstanceSwitch>>>,
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
            instances: Mutex::default(),
            last_wait: Mutex::default(),
        }
    }

    /// The lines one event gives (none for a throttled wait).
    pub(super) fn lines(&self, event: &Event) -> Vec<Value> {
        match event {
            Event::StepStarted { id, description } => vec![json!({
                "type": "step_started", "id": id, "description": description,
            })],
            Event::StepFinished { id, elapsed, error } => self.finished(id, *elapsed, error),
            Event::HealthWaiting {
                subject,
                waiting_for,
                last,
                remaining,
            } => {
                if !due(&self.last_wait, &subject.to_string()) {
                    return vec![];
                }
                let mut line = json!({
                    "type": "health_waiting", "id": waiting_step(subject),
                    "waiting_for": waiting_for, "last": last,
                    "remaining_ms": millis(*remaining),
                });
                match subject {
                    Address::Router(r) => line["router"] = json!(r),
                    other => line["environment"] = json!(other_name(other)),
                }
                vec![line]
            }
            Event::RouterWaiting {
                step,
                router,
                waiting_for,
                remaining,
            } => {
                if !due(&self.last_wait, &step.to_string()) {
                    return vec![];
                }
                vec![json!({
                    "type": "router_waiting", "id": step,
                    "router": router, "waiting_for": waiting_for,
                    "remaining_ms": millis(*remaining),
                })]
            }
            Event::InstancesSwitched {
                router, instances, ..
            } => {
                // Told in the cut-over's `cutover_done` line.
                let id = StepId::Cutover(router.clone());
                self.instances
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, instances.clone());
                vec![]
            }
            other => plain_lines(other),
        }
    }

    fn finished(
        &self,
        id: &StepId,
        elapsed: Duration,
        error: &Option<crate::engine::error::StepError>,
    ) -> Vec<Value> {
        let ms = millis(elapsed);
        let message = error.as_ref().map(|e| e.message.clone());
        let kind = error.as_ref().map(|e| e.kind.as_str());
        let mut out = vec![json!({
            "type": "step_finished", "id": id, "ok": error.is_none(),
            "elapsed_ms": ms, "error": message, "error_kind": kind,
        })];
        if let Some(cause) = error.as_ref().and_then(|e| e.cause) {
            out[0]["error_cause"] = json!(cause);
        }
        if let StepId::Health(environment) = id {
            out.push(match error {
                None => json!({
                    "type": "health_passed", "id": id,
                    "environment": environment, "elapsed_ms": ms,
                }),
                Some(e) => json!({
                    "type": "health_failed", "id": id, "environment": environment,
                    "elapsed_ms": ms, "error": e.message, "error_kind": e.kind.as_str(),
                    "error_cause": e.cause,
                }),
            });
        }
        if let (None, Some((router, from, to))) = (error, self.cutovers.get(id)) {
            let mut done = json!({
                "type": "cutover_done", "id": id, "router": router,
                "from": from, "to": to, "elapsed_ms": ms,
            });
            let told = self.instances.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(instances) = told.get(id) {
                (done["instances"], done["skew_us"]) = instances_json(instances);
            }
            out.push(done);
        }
        out
    }
}

impl Observer for JsonLines {
    fn event(&self, event: &Event) {
        for line in self.lines(event) {
            print_json_line(&line);
        }
        // Warnings go to stderr in this mode too (docs/events.md).
        if let Event::DrainEnded {
            step,
            router,
            colour,
            end,
        } = event
        {
            if let Some(warning) = end.warning(step, colour) {
                errln!("warning: {step}: {}{warning}", about(step, router));
            }
        }
    }
}

/// The JSON lines of an event that needs nothing remembered.
fn plain_lines(event: &Event) -> Vec<Value> {
    match event {
        Event::DrainWaiting {
            step,
            router,
            colour,
            sessions,
            remaining,
        } => vec![json!({
            "type": "drain_waiting", "id": step,
            "router": router, "colour": colour, "sessions": sessions,
            "remaining_ms": millis(*remaining),
        })],
        Event::DrainUnreadable {
            step,
            router,
            colour,
            error,
            remaining,
        } => vec![json!({
            "type": "drain_unreadable", "id": step,
            "router": router, "colour": colour, "error": error,
            "remaining_ms": millis(*remaining),
        })],
        Event::DrainEnded {
            step,
            router,
            colour,
            end,
        } => vec![drain_ended(step, router, colour, end)],
        Event::AnalysisRound {
            id,
            round,
            count,
            value,
            passed,
            detail,
            failures,
        } => {
            let (router, analysis) = match id {
                StepId::Analysis(router, name) => (Some(router), Some(name)),
                _ => (None, None),
            };
            // JSON has no NaN or infinities: null, and `detail` says them.
            let value = value.filter(|v| v.is_finite());
            vec![json!({
                "type": "analysis_round", "id": id, "router": router,
                "analysis": analysis, "round": round, "count": count, "value": value,
                "passed": passed, "detail": detail, "failures": failures,
            })]
        }
        Event::SwitchedBack { router, to } => vec![json!({
            "type": "switched_back", "router": router, "to": to,
        })],
        Event::SwitchBackRefused { router, to, why } => vec![json!({
            "type": "switch_back_refused", "router": router, "to": to, "why": why,
        })],
        Event::Stopping {
            signal,
            running,
            at_once,
        } => vec![json!({
            "type": "stopping", "signal": signal, "running": running, "at_once": at_once,
        })],
        Event::StateSaved { serial } => vec![json!({"type": "state_saved", "serial": serial})],
        Event::AwaitingApproval {
            router,
            to,
            timeout,
        } => vec![json!({
            "type": "awaiting_approval", "id": StepId::Approval(router.clone()),
            "router": router, "routers": [router], "to": to,
            "timeout_ms": millis(*timeout),
            "approve": format!("cutover approve {}", crate::addr::shell_word(router)),
        })],
        Event::Approved { router, by } => vec![json!({
            "type": "approved", "id": StepId::Approval(router.clone()),
            "router": router, "by": by,
        })],
        Event::NotifyFailed {
            notify,
            event,
            error,
            attempts,
        } => vec![json!({
            "type": "notify_failed", "notify": notify, "event": event,
            "error": error, "attempts": attempts,
        })],
        // JsonLines::lines' own, which remember what they printed.
        Event::StepStarted { .. }
        | Event::StepFinished { .. }
        | Event::HealthWaiting { .. }
        | Event::RouterWaiting { .. }
        | Event::InstancesSwitched { .. } => vec![],
    }
}

/// The `drain_ended` line: why the drain ended, the last count, and the
/// warning when sessions may still have been open.
fn drain_ended(step: &StepId, router: &str, colour: &str, end: &DrainEnd) -> Value {
    let sessions = match end {
        DrainEnd::Idle => Some(0),
        DrainEnd::Maximum { sessions, .. } => *sessions,
        DrainEnd::ByTime => None,
    };
    let mut line = json!({
        "type": "drain_ended", "id": step,
        "router": router, "colour": colour, "ended": end.as_str(), "sessions": sessions,
    });
    if let Some(warning) = end.warning(step, colour) {
        line["warning"] = json!(warning);
    }
    line
}

/// The step a wait belongs to: an environment's gate, or the cut-over
/// whose verify it is.
fn waiting_step(subject: &Address) -> StepId {
    match subject {
        Address::Router(r) => StepId::Cutover(r.clone()),
        other => StepId::Health(other_name(other).to_owned()),
    }
}

fn other_name(address: &Address) -> &str {
    match address {
        Address::Variable(n)
        | Address::Local(n)
        | Address::Environment(n)
        | Address::Router(n)
        | Address::Output(n) => n,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn join(ids: &[StepId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Print one JSON value on one line of stdout (whole, even when several tasks
/// print at once: the lock is held for the line).
pub fn print_json_line(value: &Value) {
    outln!("{value}");
}

/// The first line of `apply --json`: the plan document, sensitive values
/// redacted as in `plan --json`.
pub fn plan_line(doc: &PlanDocument) -> Value {
    let plan: Value =
        serde_json::from_str(&crate::render::json::plan(doc)).expect("the JSON view is JSON");
    json!({"type": "plan", "plan": plan})
}

/// The summary line of an apply that had nothing to do.
pub fn nothing_to_do(serial: u64) -> Value {
    summary_line(&ApplyReport {
        serial,
        ..Default::default()
    })
}

/// The last line of `apply --json` and `rollback --json`.
pub fn summary_line(report: &ApplyReport) -> Value {
    let failed = report
        .failed
        .as_ref()
        .map(|(id, e)| {
            json!({"id": id, "error": e.message, "error_kind": e.kind.as_str(), "error_cause": e.cause})
        });
    let reverted: Vec<Value> = report
        .reverted
        .iter()
        .map(|(router, to)| json!({"router": router, "to": to}))
        .collect();
    let way_back: Vec<Value> = report.way_back.iter().map(way_back_json).collect();
    json!({
        "type": "summary",
        "ok": report.is_complete(),
        "done": report.done,
        "failed": failed,
        "interrupted": report.interrupted,
        "not_run": report.not_run,
        "stopped_by": report.stopped_by,
        "reverted": reverted,
        "way_back": way_back,
        "state_error": report.state_error,
        "serial": report.serial,
        "elapsed_ms": millis(report.elapsed),
    })
}

fn way_back_json(w: &WayBack) -> Value {
    match w {
        WayBack::To {
            router,
            colour,
            release,
        } => json!({"router": router, "to": colour, "release": release}),
        WayBack::Broken {
            router,
            colour,
            why,
        } => json!({"router": router, "to": colour, "release": null, "none_until_repaired": why}),
    }
}

/// One line per way back, e.g. `Way back: cutover rollback router.public
/// (switches back to blue, which runs 1.4.1)`.
pub fn way_back_lines(report: &ApplyReport) -> Vec<String> {
    report
        .way_back
        .iter()
        .map(|w| match w {
            WayBack::To {
                router,
                colour,
                release,
            } => format!(
                "Way back: cutover rollback {}   (switches back to {colour}{})",
                crate::addr::shell_word(&format!("router.{router}")),
                release
                    .as_ref()
                    .map(|r| format!(", which runs {r}"))
                    .unwrap_or_default()
            ),
            WayBack::Broken {
                router,
                colour,
                why,
            } => format!(
                "Way back: none for router.{router} until environment.{colour} is repaired: {why}"
            ),
        })
        .collect()
}

/// Print what an apply (or rollback: `what`) did; the exit status: 0 when
/// every step ran, 130/143 when a signal stopped it, 1 otherwise.
pub fn finished(report: &ApplyReport, json: bool, state: &str, what: &str) -> u8 {
    let code = exit_code(report);
    if json {
        print_json_line(&summary_line(report));
        if let Some((id, e)) = &report.failed {
            errln!("error: {what} stopped at {id}: {e}");
        }
        if let Some(e) = &report.state_error {
            errln!("error: {what} stopped: the state could not be written: {e}");
        }
        return code;
    }
    outln!();
    if report.is_complete() {
        let title = if what == "apply" { "Apply" } else { "Rollback" };
        outln!(
            "{title} complete after {}: {} step(s) done. State serial {}.",
            secs(report.elapsed),
            report.done.len(),
            report.serial
        );
        for line in way_back_lines(report) {
            outln!("{line}");
        }
        return code;
    }
    match (&report.failed, report.stopped_by, &report.state_error) {
        (Some((id, e)), _, _) => errln!("error: {what} stopped at {id}: {e}"),
        (None, Some(signal), _) => errln!("{what} stopped by {signal}: no new step was started."),
        (None, None, Some(e)) if report.reverted.is_empty() => errln!(
            "error: {what} stopped: the state could not be written ({e}); no new step was started, and nothing live was moved after that"
        ),
        (None, None, Some(e)) => errln!(
            "error: {what} stopped: the state could not be written ({e}) between the switches; no new step was started, and the routers it had moved were switched back (all or nothing)"
        ),
        (None, None, None) => errln!(
            "error: {what} did not run every step: their dependencies never finished (a bug: please report it)"
        ),
    }
    if let (Some(e), true) = (
        &report.state_error,
        report.failed.is_some() || report.stopped_by.is_some(),
    ) {
        errln!("error: the state could not be written either: {e}");
    }
    for (router, colour) in &report.reverted {
        errln!("  switched router.{router} back to {colour}: the routers of one apply move together or not at all");
    }
    for (router, why) in &report.revert_failed {
        errln!("  did NOT switch router.{router} back: {why}; it stays where this apply put it");
    }
    let list = |ids: &[StepId]| {
        if ids.is_empty() {
            "nothing".to_owned()
        } else {
            join(ids)
        }
    };
    errln!("  done: {}", list(&report.done));
    if !report.interrupted.is_empty() {
        errln!("  interrupted: {}", list(&report.interrupted));
    }
    errln!("  not run: {}", list(&report.not_run));
    for line in way_back_lines(report) {
        errln!("{line}");
    }
    let next = if report.failed.is_some() || report.state_error.is_some() {
        "Fix the cause and run `cutover plan` to see what is left."
    } else {
        "Run `cutover plan` to see what is left."
    };
    errln!(
        "What was done is recorded in {} (serial {}). {next}",
        state,
        report.serial
    );
    code
}

/// The exit status of an apply.
fn exit_code(report: &ApplyReport) -> u8 {
    let failed = report.failed.is_some() || report.state_error.is_some();
    match (report.is_complete(), failed, report.stopped_by) {
        (true, _, _) => EXIT_OK,
        (false, false, Some(signal)) => super::signals::exit_status(signal),
        _ => EXIT_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_events_are_json_lines_of_their_own() {
        let doc = crate::render::sample::blue_to_green();
        let lines = JsonLines::new(&doc);
        let (router, colour) = ("public".to_owned(), "blue".to_owned());
        let step = StepId::Drain(router.clone());
        let waiting = Event::DrainWaiting {
            step: step.clone(),
            router: router.clone(),
            colour: colour.clone(),
            sessions: 2,
            remaining: Duration::from_millis(19_750),
        };
        assert_eq!(
            lines.lines(&waiting),
            [
                json!({"type": "drain_waiting", "id": "drain.public", "router": "public",
                    "colour": "blue", "sessions": 2, "remaining_ms": 19_750})
            ]
        );
        // Every one is a line: the engine tells a count only as it changes.
        assert_eq!(lines.lines(&waiting).len(), 1);
        let unreadable = Event::DrainUnreadable {
            step: step.clone(),
            router: router.clone(),
            colour: colour.clone(),
            error: "socket gone".into(),
            remaining: Duration::from_secs(1),
        };
        assert_eq!(lines.lines(&unreadable)[0]["type"], "drain_unreadable");
        assert_eq!(lines.lines(&unreadable)[0]["error"], "socket gone");
        let ended = |end: DrainEnd| {
            let event = Event::DrainEnded {
                step: step.clone(),
                router: router.clone(),
                colour: colour.clone(),
                end,
            };
            lines.lines(&event).remove(0)
        };
        assert_eq!(
            ended(DrainEnd::Idle),
            json!({"type": "drain_ended", "id": "drain.public", "router": "public",
                   "colour": "blue", "ended": "idle", "sessions": 0})
        );
        let at_most = ended(DrainEnd::Maximum {
            sessions: Some(3),
            error: None,
        });
        assert_eq!(
            (&at_most["ended"], &at_most["sessions"]),
            (&json!("maximum"), &json!(3))
        );
        assert_eq!(
            at_most["warning"],
            "3 sessions were still open to blue at the drain's maximum; going on, so a change of blue may cut them"
        );
        let by_time = ended(DrainEnd::ByTime);
        assert_eq!(
            (&by_time["ended"], &by_time["sessions"]),
            (&json!("by_time"), &Value::Null)
        );
        assert!(by_time.get("warning").is_none());
    }

    fn round(passed: bool, value: Option<f64>, detail: &str) -> Event {
        Event::AnalysisRound {
            id: StepId::Analysis("public".into(), "errors".into()),
            round: 2,
            count: 3,
            value,
            passed,
            detail: detail.into(),
            failures: u32::from(!passed),
        }
    }

    #[test]
    fn an_analysis_round_is_one_human_line_and_one_json_line() {
        let id = StepId::Analysis("public".into(), "errors".into());
        assert_eq!(
            analysis_line(&id, (2, 3), "0.004 <= 0.01", true, 0),
            "analysis.public.errors: 2/3 0.004 <= 0.01 ok"
        );
        assert_eq!(
            analysis_line(&id, (3, 3), "0.031 > 0.01", false, 2),
            "analysis.public.errors: 3/3 0.031 > 0.01 FAILED (2 failed so far)"
        );
        let json = JsonLines {
            cutovers: BTreeMap::new(),
            instances: Mutex::default(),
            last_wait: Mutex::default(),
        };
        assert_eq!(
            json.lines(&round(true, Some(0.004), "0.004 <= 0.01")),
            vec![json!({
                "type": "analysis_round", "id": "analysis.public.errors",
                "router": "public", "analysis": "errors", "round": 2, "count": 3,
                "value": 0.004, "passed": true, "detail": "0.004 <= 0.01", "failures": 0,
            })]
        );
        let nan = &json.lines(&round(false, Some(f64::NAN), "NaN, not a number"))[0];
        assert_eq!((&nan["value"], &nan["failures"]), (&Value::Null, &json!(1)));
        let none = &json.lines(&round(false, None, "no data"))[0];
        assert_eq!(
            (&none["value"], &none["detail"]),
            (&Value::Null, &json!("no data"))
        );
    }

    #[test]
    fn a_fleets_cutover_done_lists_its_instances_and_skew() {
        let id = StepId::Cutover("public".into());
        let json = JsonLines {
            cutovers: BTreeMap::from([(
                id.clone(),
                ("public".into(), Some("blue".into()), "green".into()),
            )]),
            instances: Mutex::default(),
            last_wait: Mutex::default(),
        };
        let instances = vec![
            InstanceSwitch {
                name: "a".into(),
                offset: Duration::ZERO,
            },
            InstanceSwitch {
                name: "b".into(),
                offset: Duration::from_micros(1250),
            },
        ];
        let switched = Event::InstancesSwitched {
            router: "public".into(),
            to: "green".into(),
            instances: instances.clone(),
        };
        assert_eq!(json.lines(&switched), Vec::<Value>::new());
        let finished = Event::StepFinished {
            id,
            elapsed: Duration::from_millis(9),
            error: None,
        };
        let lines = json.lines(&finished);
        assert_eq!(
            lines[1],
            json!({"type": "cutover_done", "id": "cutover.public", "router": "public",
                   "from": "blue", "to": "green", "elapsed_ms": 9, "skew_us": 1250,
                   "instances": [{"name": "a", "offset_us": 0}, {"name": "b", "offset_us": 1250}]})
        );
        assert_eq!(
            instances_line("public", "green", &instances),
            "cutover.public: 2 instances switched to green within 1.2ms (a +0.0ms, b +1.2ms)"
        );
    }
}
