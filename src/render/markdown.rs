//! The plan for pull-request comments: `cutover plan --markdown` and
//! `cutover show --markdown [PLANFILE]`.
//!
//! A reviewer must see at a glance what switches: the summary comes first
//! (every cut-over with its colours and releases, the counts, the drift, the
//! way back) and the details follow, folded in `<details>` blocks, one per
//! step in the order they run, each drawn by the human view so that the two
//! cannot disagree. A GitHub comment holds at most 65,536 characters: when the
//! details do not fit, whole steps are left out from the end (then the last
//! one shortened), and a note says how many and how to see everything. The
//! summary is never cut.

use std::collections::BTreeMap;

use super::{human, state as state_view, Style};
use crate::plan::document::{self, Outcome, PlanDocument, Step, StepKind, Summary};
use crate::state::model::State;

/// The longest comment GitHub accepts, in characters. Lengths are counted in
/// bytes here, which is never fewer than characters, so the limit holds.
pub const COMMENT_LIMIT: usize = 65_536;

/// Room kept for the note that says what was left out.
const NOTE_ROOM: usize = 512;

/// The plan as markdown, ending with a newline, at most [`COMMENT_LIMIT`]
/// bytes long.
pub fn plan(doc: &PlanDocument) -> String {
    let head = plan_summary(doc);
    let mut blocks = Vec::new();
    if !doc.drift.is_empty() {
        let lines: Vec<String> = doc
            .drift
            .iter()
            .map(|d| format!("  # {}", d.message))
            .collect();
        blocks.push(Fold {
            title: format!("Changes outside cutover ({})", doc.drift.len()),
            body: lines.join("\n"),
            lang: "text",
            is_step: false,
        });
    }
    for (n, step) in doc.steps.iter().enumerate() {
        let body = step_text(doc, step);
        let header = body.lines().next().unwrap_or_default().trim_start();
        let header = header.strip_prefix("# ").unwrap_or(header);
        blocks.push(Fold {
            title: format!("{}. {header}", n + 1),
            body,
            lang: "diff",
            is_step: true,
        });
    }
    fit(head, &blocks, "steps", "cutover show PLANFILE")
}

/// The state as markdown (`show --markdown` without a plan file): the routers
/// and environments as tables, then every resource folded.
pub fn state(state: &State) -> String {
    let mut head = format!(
        "## cutover state\n\nLineage `{}`, serial {}.\n\n",
        state.lineage, state.serial
    );
    if state.routers.is_empty() && state.environments.is_empty() {
        head.push_str("Nothing has been applied yet.\n");
        return head;
    }
    if !state.routers.is_empty() {
        head.push_str("| Router | Live | Previous |\n|---|---|---|\n");
        for (name, r) in &state.routers {
            let colour = |c: &Option<String>| c.as_deref().map_or("(none)".to_owned(), code);
            head.push_str(&format!(
                "| {} | {} | {} |\n",
                code(name),
                colour(&r.live),
                colour(&r.previous)
            ));
        }
        head.push('\n');
    }
    if !state.environments.is_empty() {
        head.push_str("| Environment | Release | Backend | Endpoints |\n|---|---|---|---|\n");
        for (name, e) in &state.environments {
            let endpoints: Vec<String> = e.endpoints.iter().map(|p| code(p)).collect();
            head.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                code(name),
                code(&e.release),
                cell(&e.backend),
                endpoints.join(", ")
            ));
        }
        head.push('\n');
    }
    let blocks: Vec<Fold> = state_view::state_list(state)
        .lines()
        .filter_map(|address| {
            let body = state_view::state_show(state, address)?;
            Some(Fold {
                title: address.to_owned(),
                body: body.trim_end().to_owned(),
                lang: "hcl",
                is_step: true,
            })
        })
        .collect();
    fit(head, &blocks, "resources", "cutover show")
}

/// One folded block of details.
struct Fold {
    title: String,
    body: String,
    lang: &'static str,
    /// Whether it counts in the note about what was left out.
    is_step: bool,
}

impl Fold {
    fn render(&self, body: &str) -> String {
        // A fence longer than any run of backticks in the body cannot be
        // closed by the body.
        let fence = "`".repeat(longest_backtick_run(body).max(2) + 1);
        format!(
            "<details><summary>{}</summary>\n\n{fence}{}\n{body}\n{fence}\n\n</details>\n",
            html(&self.title),
            self.lang
        )
    }
}

/// The head, then as many whole blocks as fit, then (if something was left
/// out) the last block shortened when it is worth it, and a note.
fn fit(head: String, blocks: &[Fold], unit: &str, command: &str) -> String {
    let rendered: Vec<String> = blocks.iter().map(|b| b.render(&b.body)).collect();
    let full = head.len() + 1 + rendered.iter().map(String::len).sum::<usize>();
    let mut out = head;
    if rendered.is_empty() {
        return out;
    }
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    if full <= COMMENT_LIMIT {
        rendered.iter().for_each(|r| out.push_str(r));
        return out;
    }
    let budget = COMMENT_LIMIT.saturating_sub(out.len() + NOTE_ROOM);
    let mut used = 0;
    let mut shown = 0;
    for r in &rendered {
        if used + r.len() > budget {
            break;
        }
        out.push_str(r);
        used += r.len();
        shown += 1;
    }
    let mut shortened = false;
    if let Some(next) = blocks.get(shown) {
        let room = budget - used;
        if let Some(text) = shorten(next, room, command) {
            out.push_str(&text);
            shortened = true;
        }
    }
    let total = blocks.iter().filter(|b| b.is_step).count();
    let skip = usize::from(shortened);
    let left_out = blocks[shown + skip..].iter().filter(|b| b.is_step).count();
    let cut_short = if shortened {
        format!(", and \"{}\" cut short", html(&blocks[shown].title))
    } else {
        String::new()
    };
    out.push_str(&format!(
        "\n> **Note:** {left_out} of {total} {unit} left out{cut_short}: the whole text \
         would exceed the {COMMENT_LIMIT} characters a GitHub comment may hold. \
         Run `{command}` to see all of it.\n"
    ));
    out
}

/// The block with as many leading lines of its body as fit in `room`, and a
/// line saying the rest was cut; `None` when too little would fit to help.
fn shorten(block: &Fold, room: usize, command: &str) -> Option<String> {
    const WORTH_IT: usize = 1024;
    let overhead = block.render("").len() + 128;
    if room < overhead + WORTH_IT {
        return None;
    }
    let mut body = String::new();
    let mut cut = 0;
    for line in block.body.lines() {
        if cut == 0 && body.len() + line.len() + 1 + overhead <= room {
            body.push_str(line);
            body.push('\n');
        } else {
            cut += 1;
        }
    }
    body.push_str(&format!("... ({cut} more lines: see `{command}`)"));
    Some(block.render(&body))
}

/// The summary: title, counts, cut-overs, drift and the way back.
fn plan_summary(doc: &PlanDocument) -> String {
    let s = &doc.summary;
    // A document saved before outcomes existed reads as `no_changes`: take the
    // counts' word for it then.
    let outcome = s.outcome.max(document::outcome(s, 0));
    let mut out = format!("## cutover plan: {}\n\n", title(outcome, s));
    if outcome == Outcome::NoChanges && doc.steps.is_empty() {
        out.push_str("No changes. The live routers and environments match the configuration.");
    } else {
        out.push_str(&counts(s));
    }
    out.push_str(&format!(" Outcome: `{}`.\n\n", outcome.as_str()));
    if outcome == Outcome::Destructive {
        out.push_str(&format!(
            "> **Warning:** this plan destroys {} environment{}; see the steps marked `-` or `-/+`.\n\n",
            s.destroy,
            plural(s.destroy)
        ));
    }
    out.push_str(&cutover_table(doc));
    out.push_str(&readiness(doc));
    if !doc.drift.is_empty() {
        out.push_str(&format!(
            "**Drift:** {} change{} made outside cutover since the last apply (listed below, apart from the plan).\n\n",
            doc.drift.len(),
            plural(doc.drift.len())
        ));
    }
    if !doc.rollback.is_empty() {
        out.push_str("**Rollback after apply:**\n\n");
        for hint in &doc.rollback {
            out.push_str(&format!(
                "- `cutover rollback {}` {}\n",
                crate::addr::shell_word(&format!("router.{}", hint.router)),
                hint.describe(code)
            ));
        }
        out.push('\n');
    } else if s.cutover > 0 {
        out.push_str(
            "**Rollback after apply:** none (no router keeps a previous colour to go back to).\n\n",
        );
    }
    out
}

fn title(outcome: Outcome, s: &Summary) -> String {
    match outcome {
        Outcome::NoChanges => "no changes".to_owned(),
        Outcome::StateOnly => "state only (nothing live changes)".to_owned(),
        Outcome::Changes => {
            let n = s.add + s.change + s.preview + s.previews_removed;
            format!("{n} change{}, no cut-over", plural(n))
        }
        Outcome::Cutover => format!("{} cut-over{}", s.cutover, plural(s.cutover)),
        Outcome::Destructive => format!("destructive ({} to destroy)", s.destroy),
        Outcome::NotReady => format!("{} cut-over{}, NOT READY", s.cutover, plural(s.cutover)),
    }
}

/// `**Plan:** 0 to add, 1 to change, 0 to destroy, 1 cut-over, 1 health gate.`
fn counts(s: &Summary) -> String {
    let mut line = format!(
        "**Plan:** {} to add, {} to change, {} to destroy, {} cut-over{}, {} health gate{}",
        s.add,
        s.change,
        s.destroy,
        s.cutover,
        plural(s.cutover),
        s.health_gates,
        plural(s.health_gates)
    );
    if s.preview > 0 {
        line.push_str(&format!(", {} preview{}", s.preview, plural(s.preview)));
    }
    if s.previews_removed > 0 {
        line.push_str(&format!(
            ", {} preview{} to remove",
            s.previews_removed,
            plural(s.previews_removed)
        ));
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

/// Each router's checks around its switch, for the cut-over table:
/// `test.smoke`, `analysis.errors`, `approval` before it; `after:
/// analysis.live` (empty when the plan has none).
fn router_checks(doc: &PlanDocument) -> BTreeMap<&str, Vec<String>> {
    let mut out: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for step in &doc.steps {
        let (router, text) = match &step.kind {
            StepKind::Test { router, name, .. } => (router, format!("test `{name}`")),
            StepKind::Analysis {
                router, name, spec, ..
            } => match spec.when {
                crate::config::checks::When::Before => (router, format!("analysis `{name}`")),
                crate::config::checks::When::After => {
                    (router, format!("after the switch: analysis `{name}`"))
                }
            },
            StepKind::Approval { router, .. } => (router, "approval".to_owned()),
            _ => continue,
        };
        out.entry(router.as_str()).or_default().push(text);
    }
    out
}

/// One row per cut-over: router, from -> to colour, and the releases on each
/// side. Rows are capped at half the comment (hundreds of routers) so that
/// the summary itself always fits.
fn cutover_table(doc: &PlanDocument) -> String {
    // A sensitive release is its marker already (plan::sensitive).
    let release = |_: Option<&str>, r: &Option<String>| match r {
        Some(r) => code(r),
        None => "?".to_owned(),
    };
    let checks = router_checks(doc);
    let mut rows = Vec::new();
    for step in &doc.steps {
        if let StepKind::Cutover {
            router,
            from,
            to,
            from_release,
            to_release,
            instances,
            ..
        } = &step.kind
        {
            let from_colour = from.as_deref().map_or("(none)".to_owned(), code);
            let from_release = match from {
                Some(f) => release(Some(f), from_release),
                None => "-".to_owned(),
            };
            // A fleet router: its instances switch together.
            let fleet = match instances.len() {
                0 | 1 => String::new(),
                n => format!(" ({n} instances)"),
            };
            let mut row = format!(
                "| {}{fleet} | {from_colour} → {} | {from_release} → {} |",
                code(router),
                code(to),
                release(Some(to), to_release)
            );
            if !checks.is_empty() {
                let mine = checks.get(router.as_str()).map_or(&[][..], Vec::as_slice);
                let mut all = vec![format!("health of {}", code(to))];
                all.extend(mine.iter().cloned());
                row.push_str(&format!(" {} |", all.join(", ")));
            }
            row.push('\n');
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = if checks.is_empty() {
        String::from("| Router | Cut-over | Releases |\n|---|---|---|\n")
    } else {
        String::from("| Router | Cut-over | Releases | Checks |\n|---|---|---|---|\n")
    };
    let mut shown = 0;
    for row in &rows {
        if out.len() + row.len() > COMMENT_LIMIT / 2 {
            break;
        }
        out.push_str(row);
        shown += 1;
    }
    if shown < rows.len() {
        out.push_str(&format!(
            "| … | {} more cut-overs | |\n",
            rows.len() - shown
        ));
    }
    out.push('\n');
    out
}

/// `plan --gates`: a bullet per cut-over, its failures and what is left to
/// apply nested under it; capped, as the cut-over table is, so that the
/// summary always fits.
fn readiness(doc: &PlanDocument) -> String {
    use super::readiness as words;
    if doc.readiness.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    if words::any_not_ready(&doc.readiness) {
        out.push_str(
            "> **Not ready:** a cut-over's check failed at plan time; apply would refuse that switch now.\n\n",
        );
    }
    out.push_str(&format!("**{}:**\n\n", words::heading(&doc.readiness)));
    let mut shown = 0;
    for r in &doc.readiness {
        let line = words::line(r).replacen(" -> ", " → ", 1);
        let mut item = format!("- {}\n", html(&line));
        for d in words::details(r) {
            item.push_str(&readiness_detail(&d));
        }
        if out.len() + item.len() > COMMENT_LIMIT / 4 {
            break;
        }
        out.push_str(&item);
        shown += 1;
    }
    if shown < doc.readiness.len() {
        out.push_str(&format!(
            "- … {} more cut-overs: see `cutover show PLANFILE`\n",
            doc.readiness.len() - shown
        ));
    }
    out.push('\n');
    out
}

/// A readiness detail under its cut-over's bullet: a failure's reason in a
/// fenced block (a fence longer than any run of backticks in it, so that a
/// test's output cannot close it), the checks left to apply as text.
fn readiness_detail(d: &super::readiness::Detail) -> String {
    use super::readiness::Detail;
    match d {
        Detail::Failed { check, lines } => {
            let body = lines.join("\n");
            let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
            let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
            format!(
                "  - {} failed:\n\n    {fence}text\n{indented}    {fence}\n\n",
                html(check)
            )
        }
        Detail::Left { checks, why } => format!("  - {}: {}\n", html(checks), html(why)),
    }
}

/// One step as the human view draws it, without colour, trailing newlines
/// trimmed.
fn step_text(doc: &PlanDocument, step: &Step) -> String {
    let one = PlanDocument {
        format_version: doc.format_version.clone(),
        cutover_version: doc.cutover_version.clone(),
        lineage: doc.lineage.clone(),
        serial: doc.serial,
        drift: vec![],
        steps: vec![step.clone()],
        summary: Summary::default(),
        rollback: vec![],
        fingerprint: BTreeMap::new(),
        options: doc.options,
        readiness: vec![],
        moved: Vec::new(),
    };
    let text = human::plan(&one, &Style { color: false });
    // The human view frames the steps with a header line and the summary
    // line, which always starts a line with `Plan:`; attribute lines are
    // indented, so the last such line is the summary.
    let start = text.find("\n\n").map_or(0, |i| i + 2);
    let end = text.rfind("\nPlan:").unwrap_or(text.len()).max(start);
    text[start..end].trim_end().to_owned()
}

fn longest_backtick_run(text: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Text inside a table cell: no line breaks, `|` escaped.
fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('|', "\\|")
}

/// A code span inside a table cell.
fn code(text: &str) -> String {
    let text = cell(text);
    // Delimiters longer than any run of backticks inside: the span cannot
    // be closed early (CommonMark code spans).
    match longest_backtick_run(&text) {
        0 => format!("`{text}`"),
        n => {
            let fence = "`".repeat(n + 1);
            format!("{fence} {text} {fence}")
        }
    }
}

/// Text inside `<summary>`.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::document::{Action, AttributeChange, Drift, DriftKind, RollbackHint, Traffic};
    use crate::render::sample::*;

    #[test]
    fn a_failed_checks_output_cannot_break_out_of_the_comment() {
        use crate::plan::document::{CheckKind, CheckOutcome, CheckResult, Readiness, Verdict};
        let mut doc = blue_to_green();
        let output = "`cmd` exited with status 3; its last output:\n  | z `` </details><h1>INJECTED</h1> `` w\n  | ```` fence";
        doc.readiness.push(Readiness {
            router: "public".into(),
            target: "green".into(),
            checked_at: "2026-12-01T19:20:54Z".into(),
            verdict: Verdict::NotReady,
            checks: vec![CheckResult {
                step: crate::addr::StepId::Test("public".into(), "smoke".into()),
                kind: CheckKind::Test,
                name: "smoke".into(),
                outcome: CheckOutcome::Failed,
                duration_ms: Some(10),
                value: Some("exit 3".into()),
                reason: Some(output.into()),
            }],
        });
        let md = plan(&doc);
        // The output sits in a fence of five backticks, longer than its
        // own runs of two and four.
        assert!(
            md.contains("  - test smoke failed:\n\n    `````text\n    `cmd` exited with status 3; its last output:\n      | z `` </details><h1>INJECTED</h1> `` w\n      | ```` fence\n    `````\n"),
            "{md}"
        );
        // A code span is delimited by more backticks than it holds.
        assert_eq!(code("a `` b"), "``` a `` b ```");
        assert_eq!(code("plain"), "`plain`");
    }

    /// Two routers cut over from blue to green, after green's new release.
    fn two_cutovers() -> PlanDocument {
        let mut doc = blue_to_green();
        doc.steps.push(cutover("internal", Some("blue"), "green"));
        doc.summary.cutover = 2;
        doc.rollback.push(RollbackHint {
            router: "internal".to_owned(),
            to: "blue".to_owned(),
            release: Some("1.4.1".to_owned()),
            changed_after_cutover: false,
        });
        doc.drift.push(Drift {
            address: "environment.blue".to_owned(),
            kind: DriftKind::ReleaseChanged,
            message: "environment.blue reports release 1.4.0, but cutover deployed 1.4.1"
                .to_owned(),
        });
        doc
    }

    #[test]
    fn two_cutovers_snapshot() {
        insta::assert_snapshot!(plan(&two_cutovers()));
    }

    #[test]
    fn summary_comes_first_and_details_are_folded() {
        let text = plan(&two_cutovers());
        assert!(text.starts_with("## cutover plan: 2 cut-overs\n"), "{text}");
        let table = text.find("| `public` | `blue` → `green` | `1.4.1` → `1.4.2` |");
        let internal = text.find("| `internal` | `blue` → `green` |");
        let details = text.find("<details>").expect("details");
        assert!(
            table.unwrap() < details && internal.unwrap() < details,
            "{text}"
        );
        assert!(
            text.find("**Plan:** 0 to add, 1 to change, 0 to destroy, 2 cut-overs, 1 health gate.")
                .unwrap()
                < details
        );
        assert!(text.find("**Drift:** 1 change").unwrap() < details);
        assert_eq!(text.matches("<details>").count(), 5, "drift + 4 steps");
        assert_eq!(text.matches("</details>").count(), 5);
        assert!(text.contains("```diff\n  # environment.green will be updated in place"));
        assert!(!text.contains('\x1b'), "{text:?}");
        // Stable order: the same document gives the same bytes.
        assert_eq!(text, plan(&two_cutovers()));
    }

    #[test]
    fn no_changes() {
        let doc = doc(vec![], Summary::default(), vec![]);
        let text = plan(&doc);
        assert!(text.starts_with("## cutover plan: no changes\n"), "{text}");
        assert!(text.contains("Outcome: `no_changes`"), "{text}");
        assert!(!text.contains("<details>"), "{text}");
    }

    #[test]
    fn a_sensitive_release_shows_as_its_marker() {
        // As the planner hands it over: markers (plan::sensitive).
        let marker = crate::plan::sensitive::marker("s3cr3t-new");
        let mut doc = blue_to_green();
        let StepKind::Environment { changes, .. } = &mut doc.steps[0].kind else {
            panic!("environment step first");
        };
        changes[0] = AttributeChange {
            sensitive: true,
            ..change(
                "release",
                Some(json!(crate::plan::sensitive::marker("s3cr3t-old"))),
                Some(json!(marker)),
            )
        };
        let StepKind::Cutover { to_release, .. } = &mut doc.steps[2].kind else {
            panic!("cut-over last");
        };
        *to_release = Some(marker.clone());
        let text = plan(&doc);
        assert!(text.contains(&format!("→ `{marker}` |")), "{text}");
    }

    #[test]
    fn a_fleet_router_shows_its_instance_count() {
        let mut doc = blue_to_green();
        let StepKind::Cutover { instances, .. } = &mut doc.steps[2].kind else {
            panic!("cut-over last");
        };
        *instances = vec!["edge-a".into(), "edge-b".into()];
        let text = plan(&doc);
        assert!(
            text.contains("| `public` (2 instances) | `blue` → `green` |"),
            "{text}"
        );
    }

    #[test]
    fn huge_plan_fits_in_a_comment_with_the_summary_intact() {
        let mut steps = Vec::new();
        for n in 0..5_000 {
            steps.push(env_step(
                Action::Create,
                &format!("env{n:04}"),
                Traffic::Idle,
                vec![change("release", None, Some(json!(format!("1.0.{n}"))))],
            ));
        }
        steps.push(cutover("public", Some("blue"), "green"));
        let summary = Summary {
            add: 5_000,
            cutover: 1,
            outcome: Outcome::Cutover,
            ..Summary::default()
        };
        let text = plan(&doc(steps, summary, vec![]));
        assert!(text.len() <= COMMENT_LIMIT, "{} bytes", text.len());
        assert!(
            text.starts_with("## cutover plan: 1 cut-over\n"),
            "{}",
            &text[..500]
        );
        assert!(text.contains("| `public` | `blue` → `green` |"));
        assert!(text.contains("**Plan:** 5000 to add, 0 to change"));
        assert!(text.contains("1. environment.env0000 will be created"));
        assert!(!text.contains("environment.env4999"));
        let note = text.lines().last().unwrap();
        assert!(note.starts_with("> **Note:** "), "{note}");
        assert!(note.contains("of 5001 steps"), "{note}");
        assert!(note.contains("`cutover show PLANFILE`"), "{note}");
        assert_eq!(
            text.matches("<details>").count(),
            text.matches("</details>").count()
        );
    }

    #[test]
    fn one_huge_step_is_shortened() {
        let big: String = (0..20_000).map(|n| format!("line {n}\n")).collect();
        let steps = vec![env_step(
            Action::Update,
            "green",
            Traffic::Idle,
            vec![change("script", Some(json!("a\nb\n")), Some(json!(big)))],
        )];
        let summary = Summary {
            change: 1,
            ..Summary::default()
        };
        let text = plan(&doc(steps, summary, vec![]));
        assert!(text.len() <= COMMENT_LIMIT, "{} bytes", text.len());
        assert!(text.contains("1. environment.green will be updated in place"));
        assert!(text.contains("more lines: see `cutover show PLANFILE`"));
        assert!(
            text.contains("0 of 1 steps left out, and \"1. environment.green"),
            "{text}"
        );
        assert_eq!(text.matches("```diff").count(), 1);
    }

    #[test]
    fn state_view() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/state/blue-green.json");
        let st = crate::state::load(&path).unwrap().unwrap();
        let text = state(&st);
        assert!(text.starts_with("## cutover state\n"), "{text}");
        assert!(text.contains("| `public` |"), "{text}");
        assert!(
            text.contains("<details><summary>router.public</summary>"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
    }
}
