//! The words for `plan --gates`' readiness, shared by the human view and the
//! markdown comment so that the two say the same: one line per cut-over
//! (`router.public -> green: ready · health 3/3 in 0.4s · test smoke passed
//! (exit 0, 12s) · analysis errors 0.000 <= 0.01 (6.1s)`), then what failed
//! and why, and what is left to apply.

use crate::engine::readiness::took;
use crate::plan::document::{CheckKind, CheckOutcome, CheckResult, Readiness, Verdict};

/// How many lines of a failed check's reason are shown.
const REASON_LINES: usize = 6;

/// The heading of the readiness section.
pub fn heading(readiness: &[Readiness]) -> String {
    let at = readiness
        .first()
        .map(|r| r.checked_at.as_str())
        .unwrap_or_default();
    format!("Readiness, checked read-only at {at} (apply runs every check again)")
}

/// The verdict, as a label.
pub fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Ready => "ready",
        Verdict::NotReady => "NOT READY",
        Verdict::NotDeployed => "not deployed yet: checked during apply",
    }
}

/// What one check found, in a few words; `None` for one that did not run.
fn found(c: &CheckResult) -> Option<String> {
    let took = c.duration_ms.map(took).unwrap_or_default();
    let value = c.value.as_deref().unwrap_or("no value");
    let text = match (c.kind, c.outcome) {
        (_, CheckOutcome::NotDeployed | CheckOutcome::Skipped) => return None,
        (CheckKind::Health, CheckOutcome::Passed) => format!("health {value} in {took}"),
        (CheckKind::Health, CheckOutcome::Failed) => format!("health failed: {value} ({took})"),
        (CheckKind::Test, CheckOutcome::Passed) => {
            format!("test {} passed ({value}, {took})", c.name)
        }
        (CheckKind::Test, CheckOutcome::Failed) => {
            format!("test {} FAILED ({value}, {took})", c.name)
        }
        (CheckKind::Analysis, CheckOutcome::Passed) => {
            format!("analysis {} {value} ({took})", c.name)
        }
        (CheckKind::Analysis, CheckOutcome::Failed) => {
            format!("analysis {} FAILED: {value} ({took})", c.name)
        }
    };
    Some(text)
}

/// The check's name as a reviewer reads it: `health`, `test smoke`.
fn named(c: &CheckResult) -> String {
    match c.kind {
        CheckKind::Health => "health".to_owned(),
        CheckKind::Test => format!("test {}", c.name),
        CheckKind::Analysis => format!("analysis {}", c.name),
    }
}

/// One cut-over's line: `router.public -> green: ready · health 3/3 in 0.4s · ...`.
pub fn line(r: &Readiness) -> String {
    let mut parts = vec![format!(
        "router.{} -> {}: {}",
        r.router,
        r.target,
        verdict(r.verdict)
    )];
    parts.extend(r.checks.iter().filter_map(found));
    parts.join(" · ")
}

/// What follows a cut-over's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// A check that failed: its name, and why — the reason's first line,
    /// then its last lines (a test's output ends with what went wrong).
    Failed {
        /// `health`, `test smoke`.
        check: String,
        /// The lines to show.
        lines: Vec<String>,
    },
    /// Checks left to apply, and why.
    Left {
        /// `test writes, analysis live`.
        checks: String,
        /// Why they did not run.
        why: String,
    },
}

impl Detail {
    /// As plain text lines: `health: ...`, then the rest indented.
    pub fn text(&self) -> Vec<String> {
        match self {
            Detail::Failed { check, lines } => {
                let mut out = vec![format!(
                    "{check}: {}",
                    lines.first().map_or("", String::as_str)
                )];
                out.extend(lines.iter().skip(1).map(|l| format!("  {l}")));
                out
            }
            Detail::Left { checks, why } => vec![format!("{checks}: {why}")],
        }
    }
}

/// What follows the line: each failure's reason (its first line and its
/// last few), then the checks left to apply, grouped by why.
pub fn details(r: &Readiness) -> Vec<Detail> {
    let mut out = Vec::new();
    for c in r
        .checks
        .iter()
        .filter(|c| c.outcome == CheckOutcome::Failed)
    {
        let reason = c.reason.as_deref().unwrap_or("no reason given");
        out.push(Detail::Failed {
            check: named(c),
            lines: head_and_tail(reason),
        });
    }
    if r.verdict == Verdict::NotDeployed {
        return out;
    }
    let mut left: Vec<(&str, Vec<String>)> = Vec::new();
    for c in &r.checks {
        if c.outcome != CheckOutcome::Skipped {
            continue;
        }
        let why = c.reason.as_deref().unwrap_or("runs during apply");
        match left.iter_mut().find(|(w, _)| *w == why) {
            Some((_, names)) => names.push(named(c)),
            None => left.push((why, vec![named(c)])),
        }
    }
    for (why, names) in left {
        out.push(Detail::Left {
            checks: names.join(", "),
            why: why.to_owned(),
        });
    }
    out
}

/// A reason's first line and its last [`REASON_LINES`] - 1, with a line
/// saying how many were left out between.
fn head_and_tail(reason: &str) -> Vec<String> {
    let lines: Vec<&str> = reason.lines().collect();
    let keep = REASON_LINES - 1;
    if lines.len() <= REASON_LINES {
        return lines.into_iter().map(str::to_owned).collect();
    }
    let mut out = vec![lines[0].to_owned()];
    out.push(format!("... ({} lines left out)", lines.len() - 1 - keep));
    out.extend(lines[lines.len() - keep..].iter().map(|l| (*l).to_owned()));
    out
}

/// Whether any cut-over is not ready.
pub fn any_not_ready(readiness: &[Readiness]) -> bool {
    readiness.iter().any(|r| r.verdict == Verdict::NotReady)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::StepId;

    fn check(kind: CheckKind, name: &str, outcome: CheckOutcome, value: &str) -> CheckResult {
        let step = match kind {
            CheckKind::Health => StepId::Health("green".into()),
            CheckKind::Test => StepId::Test("public".into(), name.into()),
            CheckKind::Analysis => StepId::Analysis("public".into(), name.into()),
        };
        let ran = matches!(outcome, CheckOutcome::Passed | CheckOutcome::Failed);
        CheckResult {
            step,
            kind,
            name: name.into(),
            outcome,
            duration_ms: ran.then_some(400),
            value: ran.then(|| value.to_owned()),
            reason: (!matches!(outcome, CheckOutcome::Passed)).then(|| format!("why {name}")),
        }
    }

    #[test]
    fn a_ready_cutover_reads_as_one_line_and_says_what_apply_still_runs() {
        let checks = vec![
            check(CheckKind::Health, "health", CheckOutcome::Passed, "3/3"),
            check(CheckKind::Test, "smoke", CheckOutcome::Passed, "exit 0"),
            check(CheckKind::Test, "writes", CheckOutcome::Skipped, ""),
            check(
                CheckKind::Analysis,
                "errors",
                CheckOutcome::Passed,
                "0.000 <= 0.01",
            ),
            check(CheckKind::Analysis, "live", CheckOutcome::Skipped, ""),
        ];
        let r = Readiness {
            router: "public".into(),
            target: "green".into(),
            checked_at: "2026-12-01T19:20:54Z".into(),
            verdict: Readiness::verdict_of(&checks),
            checks,
        };
        assert_eq!(
            line(&r),
            "router.public -> green: ready · health 3/3 in 0.4s · test smoke passed (exit 0, 0.4s) · analysis errors 0.000 <= 0.01 (0.4s)"
        );
        let text: Vec<String> = details(&r).iter().flat_map(Detail::text).collect();
        assert_eq!(
            text,
            vec!["test writes: why writes", "analysis live: why live"]
        );
    }

    #[test]
    fn a_failed_check_makes_it_not_ready_and_its_reason_is_cut_short() {
        let mut failed = check(CheckKind::Test, "smoke", CheckOutcome::Failed, "exit 3");
        failed.reason = Some(
            (1..=20)
                .map(|n| format!("line {n}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let checks = vec![
            check(CheckKind::Health, "health", CheckOutcome::Passed, "1/1"),
            failed,
        ];
        let r = Readiness {
            router: "public".into(),
            target: "green".into(),
            checked_at: "t".into(),
            verdict: Readiness::verdict_of(&checks),
            checks,
        };
        assert_eq!(r.verdict, Verdict::NotReady);
        assert!(line(&r).contains("NOT READY"), "{}", line(&r));
        assert!(
            line(&r).contains("test smoke FAILED (exit 3, 0.4s)"),
            "{}",
            line(&r)
        );
        // The first line, then the last ones: a test's output ends with
        // what went wrong.
        let d: Vec<String> = details(&r).iter().flat_map(Detail::text).collect();
        assert_eq!(
            d,
            [
                "test smoke: line 1",
                "  ... (14 lines left out)",
                "  line 16",
                "  line 17",
                "  line 18",
                "  line 19",
                "  line 20"
            ]
        );
    }
}
