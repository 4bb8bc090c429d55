//! The plan for people: what `cutover plan` prints on a terminal.
//!
//! It follows Terraform's conventions (`+ ~ - -/+`, attribute diffs, drift in
//! its own section) because the people who read it already know them, and adds
//! what a blue-green plan needs on top: the steps in the order they run, where
//! each environment stands relative to live traffic, the health gates, each
//! cut-over with its from and to colours, and the way back.

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::{hcl_value, Style};
use crate::plan::document::{
    Action, AttributeChange, Drift, PlanDocument, RollbackHint, SettleRouter, Step, StepKind,
    Traffic,
};

/// Unchanged lines shown around each change in a multi-line value.
const CONTEXT_LINES: usize = 3;

/// The whole plan, in the order of `doc.steps`, ending with a newline.
pub fn plan(doc: &PlanDocument, style: &Style) -> String {
    let p = Painter(style.color);
    let mut out = String::new();
    if !doc.drift.is_empty() {
        drift(&mut out, &p, &doc.drift);
    }
    if doc.steps.is_empty() && !doc.summary.has_changes() {
        out.push_str("No changes. The live routers and environments match the configuration.\n");
        return out;
    }
    if !doc.moved.is_empty() {
        out.push_str("The state records these under new addresses (`moved` blocks; nothing runs for them):\n");
        for line in moved_lines(doc) {
            out.push_str(&format!("  {}\n", p.paint("33", &line)));
        }
        out.push('\n');
    }
    if !doc.steps.is_empty() {
        out.push_str("cutover will perform the following actions, in this order:\n\n");
    }
    for step in &doc.steps {
        self::step(&mut out, &p, step);
        out.push('\n');
    }
    if !doc.readiness.is_empty() {
        readiness(&mut out, &p, &doc.readiness);
    }
    let summary = summary_line(doc);
    let rest = summary.strip_prefix("Plan:").unwrap_or(&summary);
    out.push_str(&format!("{}{rest}\n", p.bold("Plan:")));
    if doc.rollback.is_empty() && doc.summary.cutover > 0 {
        // Say so rather than stay silent: the operator should know before
        // applying that there is no colour to go back to.
        out.push_str(
            "Rollback after apply: none (no router keeps a previous colour to go back to)\n",
        );
    }
    rollback(&mut out, &doc.rollback);
    out
}

/// `plan --gates`: each cut-over's line, its failures and what is left to
/// apply.
fn readiness(out: &mut String, p: &Painter, readiness: &[crate::plan::document::Readiness]) {
    use super::readiness as words;
    out.push_str(&format!("{}:\n", p.bold(&words::heading(readiness))));
    for r in readiness {
        let line = words::line(r);
        let line = match r.verdict {
            crate::plan::document::Verdict::NotReady => p.paint("31", &line),
            crate::plan::document::Verdict::Ready => p.paint("32", &line),
            crate::plan::document::Verdict::NotDeployed => line,
        };
        out.push_str(&format!("  {line}\n"));
        for d in words::details(r).iter().flat_map(words::Detail::text) {
            out.push_str(&format!("      {d}\n"));
        }
    }
    out.push('\n');
}

/// The summary line, e.g. `Plan: 0 to add, 1 to change, 0 to destroy, 1 cut-over.`,
/// or `No changes.`; no colour, no newline.
pub fn summary_line(doc: &PlanDocument) -> String {
    let s = &doc.summary;
    if doc.steps.is_empty() && !s.has_changes() {
        return "No changes.".to_owned();
    }
    let mut line = format!(
        "Plan: {} to add, {} to change, {} to destroy, {} cut-over{}",
        s.add,
        s.change,
        s.destroy,
        s.cutover,
        if s.cutover == 1 { "" } else { "s" }
    );
    if s.preview > 0 {
        line.push_str(&format!(
            ", {} preview{} to repoint",
            s.preview,
            plural(s.preview)
        ));
    }
    if s.previews_removed > 0 {
        line.push_str(&format!(
            ", {} preview{} to remove",
            s.previews_removed,
            plural(s.previews_removed)
        ));
    }
    if s.moved > 0 {
        line.push_str(&format!(", {} moved in the state", s.moved));
    }
    if s.forget > 0 {
        line.push_str(&format!(
            ", {} router{} to forget",
            s.forget,
            plural(s.forget)
        ));
    }
    let checks = [
        (s.tests, "test", "tests"),
        (s.analyses, "analysis", "analyses"),
        (s.approvals, "pause for approval", "pauses for approval"),
    ];
    for (n, one, many) in checks {
        if n > 0 {
            line.push_str(&format!(", {n} {}", if n == 1 { one } else { many }));
        }
    }
    line.push('.');
    line
}

/// One line per record a `moved` block renames: `environment.green has
/// moved to environment.green["api"]`.
pub fn moved_lines(doc: &PlanDocument) -> Vec<String> {
    doc.moved
        .iter()
        .map(|m| format!("{} has moved to {}", m.from, m.to))
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// ANSI colours, or nothing at all.
struct Painter(bool);

impl Painter {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    fn symbol(&self, symbol: &str) -> String {
        match symbol {
            "+" => self.paint("32", "+"),
            "~" => self.paint("33", "~"),
            "-" => self.paint("31", "-"),
            "-/+" => format!("{}/{}", self.paint("31", "-"), self.paint("32", "+")),
            other => other.to_owned(),
        }
    }
}

fn drift(out: &mut String, p: &Painter, drift: &[Drift]) {
    out.push_str(&p.bold("Changes outside cutover since the last apply:"));
    out.push_str("\n\n");
    // The planner writes each message as a whole sentence that starts with
    // the address, so it is printed as it is.
    for d in drift {
        out.push_str(&p.bold(&format!("  # {}", d.message)));
        out.push('\n');
    }
    out.push('\n');
}

fn step(out: &mut String, p: &Painter, step: &Step) {
    match &step.kind {
        StepKind::Environment {
            action,
            name,
            traffic,
            changes,
            spec,
            ..
        } => {
            let fallback;
            let changes = if changes.is_empty() {
                fallback = spec_changes(*action, spec);
                &fallback
            } else {
                changes
            };
            environment(out, p, *action, name, *traffic, changes);
        }
        StepKind::HealthGate {
            environment,
            endpoints,
            health,
            ..
        } => {
            comment(
                out,
                p,
                &format!("health gate: environment.{environment} must pass its health check"),
            );
            health_gate(out, endpoints, health);
        }
        StepKind::Cutover {
            router,
            from,
            from_raw,
            to,
            verify,
            reason,
            instances,
            ..
        } => cutover_step(
            out,
            p,
            (router, instances),
            (from.as_deref(), from_raw.as_deref()),
            to,
            verify.as_deref(),
            reason.as_deref(),
        ),
        StepKind::Preview {
            router, from, to, ..
        } => {
            comment(
                out,
                p,
                &format!("router.{router}'s preview will show {to} (live traffic is not touched)"),
            );
            router_change(out, p, router, "preview", from.as_deref(), to);
        }
        StepKind::RemovePreview { router, from, .. } => {
            comment(
                out,
                p,
                &format!(
                    "router.{router}'s preview will be removed: it has no `preview` in the \
                     configuration, and still shows {from} (live traffic is not touched)"
                ),
            );
            out.push_str(&format!(
                "  {} router {} {{\n      {} preview = {}\n    }}\n",
                p.symbol("~"),
                label(router),
                p.symbol("-"),
                quoted(from)
            ));
        }
        StepKind::Drain {
            router,
            colour,
            duration_ms,
            until_idle,
            counts_sessions,
            backend,
            floor,
            ..
        } => {
            let most = duration(std::time::Duration::from_millis(*duration_ms));
            let text = match (until_idle, counts_sessions) {
                _ if floor.is_some() => format!(
                    "{colour} keeps serving its open connections for {most} after router.{router}'s cut-over (at least {}, which is longer than its drain)",
                    floor.as_ref().map_or("", |f| f.why.as_str())
                ),
                (true, true) => format!(
                    "{colour} keeps serving its open connections after router.{router}'s cut-over, until {colour} has no open sessions, at most {most} (drain)"
                ),
                (true, false) => format!(
                    "{colour} keeps serving its open connections for {most} after router.{router}'s cut-over (drain; it waits {most}: {} cannot count open sessions)",
                    backend.as_deref().unwrap_or("its router")
                ),
                _ => format!(
                    "{colour} keeps serving its open connections for {most} after router.{router}'s cut-over (drain)"
                ),
            };
            comment(out, p, &text);
        }
        StepKind::Settle {
            environment,
            routers,
            most_ms,
            ..
        } => {
            let most = duration(std::time::Duration::from_millis(*most_ms));
            comment(
                out,
                p,
                &format!(
                    "before {environment} changes, {} must hold no open sessions to it, at most {most} (a request still on its way there would reach the new release before its gate)",
                    SettleRouter::names(routers),
                ),
            );
        }
        StepKind::ForgetRouter { router, .. } => comment(
            out,
            p,
            &format!(
                "router.{router} will no longer be managed by cutover (it left the \
                 configuration; its live traffic is left as it is)"
            ),
        ),
        StepKind::Test { .. } | StepKind::Analysis { .. } | StepKind::Approval { .. } => {
            comment(out, p, &super::checks::checks_text(&step.id, &step.kind));
        }
    }
}

fn cutover_step(
    out: &mut String,
    p: &Painter,
    (router, instances): (&str, &[String]),
    (from, from_raw): (Option<&str>, Option<&str>),
    to: &str,
    verify: Option<&crate::config::model::Health>,
    reason: Option<&str>,
) {
    if let Some(reason) = reason {
        comment(out, p, reason);
    }
    let mut header = match (from, from_raw) {
        (Some(from), _) if from == to => format!(
            "router.{router} will be switched to {to} again, to repair what the router reported (see above)"
        ),
        (Some(from), _) => format!("router.{router} will cut over: {from} -> {to}"),
        (None, Some(raw)) => format!(
            "router.{router} sends traffic to no colour of cutover's ({raw}): cutover will send it to {to}"
        ),
        (None, None) => format!(
            "router.{router} has no live colour yet: cutover will create its entry in the router (map key, route or include) and send traffic to {to}"
        ),
    };
    if instances.len() > 1 {
        header.push_str(&format!(
            ", on its {} instances ({}), all or none",
            instances.len(),
            instances.join(", ")
        ));
    }
    comment(out, p, &header);
    router_change(out, p, router, "live", from, to);
    if let Some(v) = verify {
        out.push_str(&format!(
            "    then verify through the router: GET {} -> {}, {} success{} within {}; on failure switch back{}\n",
            v.url.as_deref().unwrap_or("?"),
            v.status,
            v.successes,
            if v.successes == 1 { "" } else { "es" },
            humantime::format_duration(v.timeout),
            from.map(|f| format!(" to {f}")).unwrap_or_default()
        ));
    }
}

/// `~ router "R" { ~ ATTRIBUTE = "FROM" -> "TO" }`.
fn router_change(
    out: &mut String,
    p: &Painter,
    router: &str,
    attribute: &str,
    from: Option<&str>,
    to: &str,
) {
    let before = from.map_or("(none)".to_owned(), quoted);
    out.push_str(&format!(
        "  {} router {} {{\n",
        p.symbol("~"),
        label(router)
    ));
    out.push_str(&format!(
        "      {} {attribute} = {before} -> {}\n",
        p.symbol("~"),
        quoted(to)
    ));
    out.push_str("    }\n");
}

fn comment(out: &mut String, p: &Painter, text: &str) {
    out.push_str(&p.bold(&format!("  # {text}")));
    out.push('\n');
}

fn quoted(s: &str) -> String {
    Value::from(s).to_string()
}

/// A block's header label, as the configuration writes it: `"green"` for
/// `green` and for its instance `green["api"]` (the comment above the
/// block names the instance, as Terraform's plans do).
fn label(name: &str) -> String {
    quoted(cutover_provider::name::block_of(name))
}

/// Create and delete steps may list no attribute changes; show the spec then.
fn spec_changes(action: Action, spec: &cutover_provider::EnvironmentSpec) -> Vec<AttributeChange> {
    let attrs = [
        ("release", Value::from(spec.release.clone())),
        ("endpoints", Value::from(spec.endpoints.clone())),
        ("settings", spec.settings.clone()),
    ];
    attrs
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(name, v)| AttributeChange {
            name: name.to_owned(),
            before: (action == Action::Delete).then(|| v.clone()),
            after: (action != Action::Delete).then_some(v),
            sensitive: false,
        })
        .collect()
}

/// Attributes an environment cannot change in place: an update keeps the same
/// endpoints and backend, so a change to one of these is why it is replaced.
fn forces_replacement(name: &str) -> bool {
    matches!(name, "endpoint" | "endpoints" | "backend")
}

fn environment(
    out: &mut String,
    p: &Painter,
    action: Action,
    name: &str,
    traffic: Traffic,
    changes: &[AttributeChange],
) {
    let verb = match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
    };
    let note = match (action, traffic) {
        (Action::Create, _) => "",
        (_, Traffic::Idle) => " (it receives no traffic now)",
        (_, Traffic::Live) => " (it serves live traffic)",
        (_, Traffic::Drained) => " (after the cut-over took its traffic away)",
    };
    comment(out, p, &format!("environment.{name} {verb}{note}"));
    let symbol = p.symbol(action.symbol());
    let lead = if action == Action::Replace { "" } else { "  " };
    out.push_str(&format!("{lead}{symbol} environment {} {{\n", label(name)));
    let width = changes.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for change in changes {
        let mut lines = String::new();
        attribute(&mut lines, p, 6, width, change);
        if action == Action::Replace && forces_replacement(&change.name) {
            let end = lines.find('\n').unwrap_or(lines.len());
            lines.insert_str(end, &p.paint("31", " # forces replacement"));
        }
        out.push_str(&lines);
    }
    out.push_str("    }\n");
}

fn attribute(out: &mut String, p: &Painter, indent: usize, width: usize, change: &AttributeChange) {
    let (before, after) = (change.before.as_ref(), change.after.as_ref());
    let symbol = match (before, after) {
        (None, Some(_)) => "+",
        (Some(_), None) => "-",
        _ => "~",
    };
    let pad = " ".repeat(indent);
    let head = format!("{pad}{} {:width$} =", p.symbol(symbol), change.name);
    if let Some((old, new)) = multi_line(before, after) {
        out.push_str(&format!("{head} <<-EOT\n"));
        text_diff(out, p, indent, old, new);
        out.push_str(&format!("{pad}  EOT\n"));
        return;
    }
    if let (Some(Value::Object(b)), Some(Value::Object(a))) = (before, after) {
        out.push_str(&format!("{head} {{\n"));
        object_diff(out, p, indent + 4, b, a);
        out.push_str(&format!("{pad}  }}\n"));
        return;
    }
    let show = |v: &Value| hcl_value(v, indent + 2);
    let value = match (before, after) {
        (Some(b), Some(a)) => format!("{} -> {}", show(b), show(a)),
        (Some(v), None) | (None, Some(v)) => show(v),
        (None, None) => "null".to_owned(),
    };
    out.push_str(&format!("{head} {value}\n"));
}

/// Both sides as text when either is a multi-line string (a missing side is
/// empty text).
fn multi_line<'a>(
    before: Option<&'a Value>,
    after: Option<&'a Value>,
) -> Option<(&'a str, &'a str)> {
    let text = |v: Option<&'a Value>| match v {
        None => Some(""),
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => None,
    };
    let (old, new) = (text(before)?, text(after)?);
    (old.contains('\n') || new.contains('\n')).then_some((old, new))
}

fn object_diff(
    out: &mut String,
    p: &Painter,
    indent: usize,
    before: &serde_json::Map<String, Value>,
    after: &serde_json::Map<String, Value>,
) {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let changed: Vec<AttributeChange> = keys
        .iter()
        .filter(|k| before.get(**k) != after.get(**k))
        .map(|k| AttributeChange {
            name: super::hcl_key(k),
            before: before.get(*k).cloned(),
            after: after.get(*k).cloned(),
            sensitive: false,
        })
        .collect();
    let width = changed.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for change in &changed {
        attribute(out, p, indent, width, change);
    }
    let hidden = keys.len() - changed.len();
    if hidden > 0 {
        out.push_str(&format!(
            "{}  # ({hidden} unchanged attribute{} hidden)\n",
            " ".repeat(indent),
            plural(hidden)
        ));
    }
}

/// A line-by-line diff of two texts under an attribute, with a few unchanged
/// lines of context around each change.
fn text_diff(out: &mut String, p: &Painter, indent: usize, old: &str, new: &str) {
    let diff = TextDiff::from_lines(old, new);
    let lines: Vec<(ChangeTag, String)> = diff
        .iter_all_changes()
        .map(|c| (c.tag(), c.value().trim_end_matches('\n').to_owned()))
        .collect();
    let near_change = |i: usize| {
        let lo = i.saturating_sub(CONTEXT_LINES);
        let hi = (i + CONTEXT_LINES).min(lines.len() - 1);
        lines[lo..=hi].iter().any(|(t, _)| *t != ChangeTag::Equal)
    };
    let pad = " ".repeat(indent + 4);
    let mut hidden = 0;
    for (i, (tag, line)) in lines.iter().enumerate() {
        if *tag == ChangeTag::Equal && !near_change(i) {
            hidden += 1;
            continue;
        }
        flush_hidden(out, indent, &mut hidden);
        let marker = match tag {
            ChangeTag::Equal => " ".to_owned(),
            ChangeTag::Delete => p.symbol("-"),
            ChangeTag::Insert => p.symbol("+"),
        };
        out.push_str(format!("{pad}{marker} {line}").trim_end());
        out.push('\n');
    }
    flush_hidden(out, indent, &mut hidden);
}

fn flush_hidden(out: &mut String, indent: usize, hidden: &mut usize) {
    if *hidden > 0 {
        out.push_str(&format!(
            "{}  # ({hidden} unchanged line{} hidden)\n",
            " ".repeat(indent + 4),
            plural(*hidden)
        ));
        *hidden = 0;
    }
}

fn health_gate(out: &mut String, endpoints: &[String], health: &crate::config::model::Health) {
    // The URLs the gate requests, as the health checker makes them.
    let targets = crate::engine::health::check_urls(endpoints, health);
    let successes = match health.successes {
        1 => "1 success".to_owned(),
        n => format!("{n} consecutive successes"),
    };
    let terms = format!(
        "every {}, {successes} needed, within {}",
        duration(health.interval),
        duration(health.timeout)
    );
    match targets.as_slice() {
        [] => out.push_str(&format!("    (no endpoints to check), {terms}\n")),
        [one] => out.push_str(&format!("    GET {one} -> {}, {terms}\n", health.status)),
        many => {
            for target in many {
                out.push_str(&format!("    GET {target} -> {}\n", health.status));
            }
            out.push_str(&format!("    {terms}\n"));
        }
    }
}

/// `1s`, `500ms`, `1m30s`, `2h`: the way durations are written in the config.
fn duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

fn rollback(out: &mut String, hints: &[RollbackHint]) {
    let entries: Vec<(String, String)> = hints
        .iter()
        .map(|h| {
            let why = h.describe(str::to_owned);
            (
                format!(
                    "cutover rollback {}",
                    crate::addr::shell_word(&format!("router.{}", h.router))
                ),
                why,
            )
        })
        .collect();
    match entries.as_slice() {
        [] => {}
        [(command, why)] => out.push_str(&format!("Rollback after apply: {command}   ({why})\n")),
        many => {
            let width = many.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
            out.push_str("Rollback after apply:\n");
            for (command, why) in many {
                out.push_str(&format!("  {command:width$}   ({why})\n"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::addr::StepId;
    use crate::plan::document::{DriftKind, Summary};
    use crate::render::sample::*;

    const PLAIN: Style = Style { color: false };

    #[test]
    fn update_gate_and_cutover() {
        insta::assert_snapshot!(plan(&blue_to_green(), &PLAIN));
    }

    #[test]
    fn first_apply_creates_and_starts_sending_traffic() {
        let mut create_blue = env_step(Action::Create, "blue", Traffic::Idle, vec![]);
        if let StepKind::Environment { spec, .. } = &mut create_blue.kind {
            *spec = env_spec("blue", "1.4.1");
        }
        let doc = doc(
            vec![
                create_blue,
                env_step(Action::Create, "green", Traffic::Idle, vec![]),
                gate("blue"),
                gate("green"),
                cutover("public", None, "green"),
            ],
            Summary {
                add: 2,
                cutover: 1,
                health_gates: 2,
                ..Summary::default()
            },
            vec![],
        );
        insta::assert_snapshot!(plan(&doc, &PLAIN));
    }

    #[test]
    fn delete_after_cutover() {
        let mut steps = blue_to_green().steps;
        steps.push(env_step(
            Action::Delete,
            "blue",
            Traffic::Drained,
            vec![
                change("endpoints", Some(json!(["127.0.0.1:9101"])), None),
                change("release", Some(json!("1.4.1")), None),
            ],
        ));
        let doc = doc(
            steps,
            Summary {
                change: 1,
                destroy: 1,
                cutover: 1,
                health_gates: 1,
                ..Summary::default()
            },
            vec![],
        );
        insta::assert_snapshot!(plan(&doc, &PLAIN));
    }

    #[test]
    fn replace_names_the_attribute_that_forces_it() {
        let mut doc = blue_to_green();
        doc.steps[0] = env_step(
            Action::Replace,
            "green",
            Traffic::Idle,
            vec![
                change(
                    "endpoints",
                    Some(json!(["127.0.0.1:9102"])),
                    Some(json!(["127.0.0.1:9103"])),
                ),
                change("release", Some(json!("1.4.1")), Some(json!("1.4.2"))),
                change(
                    "settings",
                    Some(json!({"command": ["./demo-app", "--port", "9102"], "env": {"A": "1"}})),
                    Some(
                        json!({"command": ["./demo-app", "--port", "9103"], "env": {"A": "1"}, "user": "app"}),
                    ),
                ),
                // As the planner hands it over: markers (plan::sensitive).
                AttributeChange {
                    sensitive: true,
                    ..change(
                        "api_token",
                        Some(json!(crate::plan::sensitive::marker("old-secret"))),
                        Some(json!(crate::plan::sensitive::marker("new-secret"))),
                    )
                },
            ],
        );
        doc.summary = Summary {
            add: 1,
            destroy: 1,
            cutover: 1,
            health_gates: 1,
            ..Summary::default()
        };
        let out = plan(&doc, &PLAIN);
        assert!(!out.contains("secret"), "{out}");
        // A rotated secret shows as a change of marker.
        assert!(
            out.contains(&crate::plan::sensitive::marker("new-secret")),
            "{out}"
        );
        insta::assert_snapshot!(out);
    }

    #[test]
    fn no_changes_with_drift() {
        let mut doc = doc(vec![], Summary::default(), vec![]);
        doc.drift = vec![
            Drift {
                address: "router.public".to_owned(),
                kind: DriftKind::RouterSwitched,
                message: "router.public was switched outside cutover: cutover left it on \
                          green, it now sends traffic to blue"
                    .to_owned(),
            },
            Drift {
                address: "environment.green".to_owned(),
                kind: DriftKind::EnvironmentGone,
                message: "environment.green: process 4311 is no longer running".to_owned(),
            },
        ];
        insta::assert_snapshot!(plan(&doc, &PLAIN));
        assert_eq!(summary_line(&doc), "No changes.");
    }

    #[test]
    fn multi_line_values_are_diffed_line_by_line() {
        let old = "global\n  maxconn 100\n\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  retries 3\n  option httplog\n";
        let new = old
            .replace("maxconn 100", "maxconn 200")
            .replace("option httplog", "option httplog\n  option forwardfor");
        let mut doc = blue_to_green();
        if let StepKind::Environment { changes, .. } = &mut doc.steps[0].kind {
            changes.push(change("config", Some(json!(old)), Some(json!(new))));
        }
        insta::assert_snapshot!(plan(&doc, &PLAIN));
    }

    #[test]
    fn colour_only_when_asked() {
        let plain = plan(&blue_to_green(), &PLAIN);
        assert!(!plain.contains('\x1b'), "{plain}");
        let coloured = plan(&blue_to_green(), &Style { color: true });
        assert!(coloured.contains("\x1b[33m~\x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[1m"), "{coloured}");
    }

    #[test]
    fn summary_counts_cutovers() {
        let mut doc = blue_to_green();
        assert_eq!(
            summary_line(&doc),
            "Plan: 0 to add, 1 to change, 0 to destroy, 1 cut-over."
        );
        doc.summary.cutover = 2;
        doc.summary.forget = 1;
        assert_eq!(
            summary_line(&doc),
            "Plan: 0 to add, 1 to change, 0 to destroy, 2 cut-overs, 1 router to forget."
        );
    }

    #[test]
    fn a_drain_says_whether_it_waits_on_open_sessions_or_by_time() {
        let drain = |until_idle: bool, counts_sessions: bool, backend: &str| {
            let mut steps = blue_to_green().steps;
            steps.push(Step {
                id: StepId::Drain("public".into()),
                depends_on: vec![StepId::Cutover("public".into())],
                kind: StepKind::Drain {
                    router: "public".into(),
                    colour: "blue".into(),
                    duration_ms: 30_000,
                    until_idle,
                    counts_sessions,
                    backend: until_idle.then(|| backend.to_owned()),
                    spec: None,
                    floor: None,
                },
            });
            let text = plan(&doc(steps, blue_to_green().summary, vec![]), &PLAIN);
            let line = text.lines().find(|l| l.contains("(drain"));
            line.unwrap_or_else(|| panic!("no drain in:\n{text}"))
                .to_owned()
        };
        assert_eq!(
            drain(false, false, ""),
            "  # blue keeps serving its open connections for 30s after router.public's cut-over (drain)"
        );
        assert_eq!(
            drain(true, true, "haproxy"),
            "  # blue keeps serving its open connections after router.public's cut-over, until blue has no open sessions, at most 30s (drain)"
        );
        assert_eq!(
            drain(true, false, "caddy"),
            "  # blue keeps serving its open connections for 30s after router.public's cut-over (drain; it waits 30s: caddy cannot count open sessions)"
        );
    }

    #[test]
    fn durations_read_like_the_config() {
        use std::time::Duration;
        assert_eq!(duration(Duration::from_secs(1)), "1s");
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(7200)), "2h");
        assert_eq!(duration(Duration::ZERO), "0s");
    }
}
