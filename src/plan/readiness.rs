//! Which checks `plan --gates` runs for each cut-over, and which it cannot:
//! a pure reading of the plan document (the engine runs them:
//! `engine::readiness`).
//!
//! For every cut-over to a colour (not a `cutover rollback`): the target's
//! health gate, the router's tests that are marked `at_plan = true`, and its
//! `before` analyses — each read-only. Not run, and said so: every check of
//! a colour the plan deploys first (`not_deployed`: it is not there yet);
//! a test not marked `at_plan` (tests may write); a test that goes through
//! the router's preview when the plan sets that preview first (setting it
//! is a write); an `after` analysis (it needs live traffic).

use super::document::{Action, CheckKind, CheckOutcome, CheckResult, PlanDocument, Step, StepKind};
use crate::config::checks::When;

/// One check of a cut-over: its result so far, and the step to run when it
/// is to run (`None`: its result is final already).
#[derive(Debug, Clone)]
pub struct Check<'a> {
    /// Outcome [`CheckOutcome::Skipped`] without a reason until it has run,
    /// when `run` is set.
    pub result: CheckResult,
    /// The plan's step to run read-only.
    pub run: Option<&'a Step>,
}

/// One cut-over's checks.
#[derive(Debug, Clone)]
pub struct CutoverChecks<'a> {
    /// The router.
    pub router: &'a str,
    /// The colour it switches to.
    pub target: &'a str,
    /// Its checks, in the plan's order (the gate first).
    pub checks: Vec<Check<'a>>,
}

/// Every cut-over's checks, in the plan's order.
pub fn checks(doc: &PlanDocument) -> Vec<CutoverChecks<'_>> {
    doc.steps
        .iter()
        .filter_map(|step| match &step.kind {
            StepKind::Cutover {
                router,
                to,
                rollback: false,
                ..
            } => Some(of_cutover(doc, router, to)),
            _ => None,
        })
        .collect()
}

fn of_cutover<'a>(doc: &'a PlanDocument, router: &'a str, target: &'a str) -> CutoverChecks<'a> {
    let deployed_first = doc.steps.iter().any(|s| {
        matches!(&s.kind, StepKind::Environment { name, action, .. }
            if name == target && *action != Action::Delete)
    });
    let previewed_first = doc.steps.iter().any(|s| {
        matches!(&s.kind, StepKind::Preview { router: r, to, after_cutover: false, .. }
            if r == router && to == target)
    });
    let mut checks = Vec::new();
    for step in &doc.steps {
        let (kind, name, why_not) = match &step.kind {
            StepKind::HealthGate { environment, .. } if environment == target => {
                (CheckKind::Health, "health", None)
            }
            StepKind::Test {
                router: r,
                target: t,
                name,
                spec,
                preview_url,
                ..
            } if r == router && t == target => {
                let why_not = if !spec.at_plan {
                    Some(
                        "not marked `at_plan = true` (a test may write): runs during apply"
                            .to_owned(),
                    )
                } else if preview_url.is_some() && previewed_first {
                    Some(format!(
                        "goes through router.{router}'s preview, which apply points at {target} first: runs during apply"
                    ))
                } else {
                    None
                };
                (CheckKind::Test, name.as_str(), why_not)
            }
            StepKind::Analysis {
                router: r,
                target: t,
                name,
                spec,
                recheck: false,
            } if r == router && t == target => {
                let why_not = (spec.when == When::After)
                    .then(|| "after the switch, under live traffic: runs during apply".to_owned());
                (CheckKind::Analysis, name.as_str(), why_not)
            }
            _ => continue,
        };
        let (outcome, reason, run) = if deployed_first {
            (
                CheckOutcome::NotDeployed,
                Some("not deployed yet: checked during apply".to_owned()),
                None,
            )
        } else if why_not.is_some() {
            (CheckOutcome::Skipped, why_not, None)
        } else {
            (CheckOutcome::Skipped, None, Some(step))
        };
        checks.push(Check {
            result: CheckResult {
                step: step.id.clone(),
                kind,
                name: name.to_owned(),
                outcome,
                duration_ms: None,
                value: None,
                reason,
            },
            run,
        });
    }
    CutoverChecks {
        router,
        target,
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::checks::tests::{plan_on, plan_with_blocks};
    use crate::plan::PlanOptions;

    fn outcomes(doc: &PlanDocument) -> Vec<(String, String, CheckOutcome, bool)> {
        checks(doc)
            .into_iter()
            .flat_map(|c| {
                let router = c.router.to_owned();
                c.checks.into_iter().map(move |k| {
                    (
                        router.clone(),
                        k.result.step.to_string(),
                        k.result.outcome,
                        k.run.is_some(),
                    )
                })
            })
            .collect()
    }

    const CHECKS: &str = r#"
      test "smoke" {
        command = ["true"]
        workdir = "/"
        at_plan = true
      }
      test "writes" {
        command = ["true"]
        workdir = "/"
      }
      analysis "errors" {
        prometheus = "http://127.0.0.1:9"
        query      = "up"
        max        = 1
      }
      analysis "live" {
        prometheus = "http://127.0.0.1:9"
        query      = "up"
        max        = 1
        when       = "after"
      }
    "#;

    #[test]
    fn a_cutover_to_a_running_colour_runs_its_gate_at_plan_tests_and_before_analyses() {
        let doc = plan_on(CHECKS, PlanOptions::default(), "2");
        let got = outcomes(&doc);
        let want = [
            ("health.green", CheckOutcome::Skipped, true),
            ("test.public.smoke", CheckOutcome::Skipped, true),
            ("test.public.writes", CheckOutcome::Skipped, false),
            ("analysis.public.errors", CheckOutcome::Skipped, true),
            ("analysis.public.live", CheckOutcome::Skipped, false),
        ];
        let mut got_ids: Vec<_> = got
            .iter()
            .map(|(_, id, o, run)| (id.as_str(), *o, *run))
            .collect();
        got_ids.sort();
        let mut want = want.to_vec();
        want.sort();
        assert_eq!(got_ids, want);
        assert!(got.iter().all(|(r, ..)| r == "public"));
        // What is not run says why.
        for c in checks(&doc).iter().flat_map(|c| &c.checks) {
            assert_eq!(c.run.is_none(), c.result.reason.is_some(), "{:?}", c.result);
        }
    }

    #[test]
    fn a_colour_the_plan_deploys_first_is_not_checked_at_plan_time() {
        let doc = plan_with_blocks(CHECKS, PlanOptions::default());
        let got = outcomes(&doc);
        assert!(!got.is_empty());
        for (_, id, outcome, run) in &got {
            assert_eq!(*outcome, CheckOutcome::NotDeployed, "{id}");
            assert!(!run, "{id} would run against a colour not deployed yet");
        }
    }

    #[test]
    fn a_test_through_a_preview_the_plan_sets_first_is_left_to_apply() {
        let blocks = format!(
            "preview = environment.green\npreview_url = \"http://127.0.0.1:18090/\"\n{CHECKS}"
        );
        let doc = plan_on(&blocks, PlanOptions::default(), "2");
        let all = checks(&doc);
        let smoke = all[0]
            .checks
            .iter()
            .find(|c| c.result.step.to_string() == "test.public.smoke")
            .unwrap();
        assert!(smoke.run.is_none());
        assert_eq!(
            smoke.result.reason.as_deref(),
            Some("goes through router.public's preview, which apply points at green first: runs during apply")
        );
        // Every step run at plan time is a read-only one.
        for c in all.iter().flat_map(|c| &c.checks) {
            if let Some(step) = c.run {
                assert!(step.kind.is_read_only(), "{}", step.id);
                assert!(
                    !matches!(step.kind, StepKind::Approval { .. }),
                    "{}",
                    step.id
                );
            }
        }
    }

    #[test]
    fn a_rollback_has_no_readiness() {
        let mut doc = plan_on(CHECKS, PlanOptions::default(), "2");
        for step in &mut doc.steps {
            if let StepKind::Cutover { rollback, .. } = &mut step.kind {
                *rollback = true;
            }
        }
        assert!(checks(&doc).is_empty());
    }
}
