//! The planner's passes for a router's checks around its switch, beyond its
//! target's gate: its `test` hooks and `before` analyses (after the gate,
//! before the switch), its approval (after those, before the switch), and
//! its `after` analyses (once every switch is made, under live traffic).
//!
//! A router that switches to the colour it already serves (a repair of
//! drift) runs none of them: no colour goes live.

use super::document::*;
use super::passes::{release_now, Draft, Inputs, Intent};
use super::PlanError;
use crate::addr::StepId;
use crate::config::checks::{AnalysisSpec, When};
use crate::config::model::Router;

/// Whether `intent` puts a colour live (not a repair).
fn goes_live(intent: &Intent) -> bool {
    intent.from.as_deref() != Some(intent.to.as_str())
}

/// Whether the router's approval is asked for: its `pause_before_cutover`,
/// or `--pause-before-cutover`.
fn pauses(i: &Inputs<'_>, cfg: &Router) -> bool {
    cfg.pause_before_cutover || i.options.pause_before_cutover
}

/// The tests, analyses and approval of every router that switches to
/// another colour.
pub fn checks(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let mut made = Vec::new();
    for (router, intent) in d.intents.iter().filter(|(_, it)| goes_live(it)) {
        let cfg = &i.config.routers[router];
        let to = &intent.to;
        let endpoints = i
            .config
            .environments
            .get(to)
            .map(|e| e.endpoints.clone())
            .unwrap_or_default();
        let preview_url = cfg
            .preview_url
            .clone()
            .filter(|_| previews_target_before_switch(i, d, router, to));
        for (name, spec) in &cfg.tests {
            made.push(StepKind::Test {
                router: router.clone(),
                name: name.clone(),
                target: to.clone(),
                endpoints: endpoints.clone(),
                preview_url: preview_url.clone(),
                spec: spec.clone(),
            });
        }
        let release = release_after(i, to);
        let previous = intent.from.clone().unwrap_or_default();
        for (name, spec) in &cfg.analyses {
            let query = AnalysisSpec::query_for(&spec.query, router, to, &release, &previous);
            made.push(StepKind::Analysis {
                router: router.clone(),
                name: name.clone(),
                target: to.clone(),
                spec: AnalysisSpec {
                    query,
                    ..spec.clone()
                },
                recheck: false,
            });
        }
        if pauses(i, cfg) {
            made.push(StepKind::Approval {
                router: router.clone(),
                from: intent.from.clone(),
                to: to.clone(),
                timeout: i.options.approval_timeout.unwrap_or(cfg.approval_timeout),
            });
        }
    }
    made.extend(rechecks(i, d));
    for kind in made {
        if let StepKind::Analysis {
            router,
            name,
            spec,
            recheck: false,
            ..
        } = &kind
        {
            if spec.when == When::After {
                let cutover = d.steps.get_mut(&StepId::Cutover(router.clone()));
                if let Some(StepKind::Cutover { after_checks, .. }) = cutover.map(|s| &mut s.kind) {
                    after_checks.push(name.clone());
                }
            }
        }
        d.add(kind)?;
    }
    Ok(())
}

/// The `after` analyses an earlier apply left unchecked (stopped while they
/// measured) for a router still on the colour it switched to, and not
/// switching again now: they run again, under live traffic.
fn rechecks(i: &Inputs<'_>, d: &Draft) -> Vec<StepKind> {
    let mut made = Vec::new();
    for (router, pending) in &i.state.unchecked {
        let (Some(cfg), None) = (i.config.routers.get(router), d.intents.get(router)) else {
            continue;
        };
        let live = i.live.routers.get(router).and_then(|r| r.live.clone());
        let recorded = i.state.routers.get(router).and_then(|r| r.live.clone());
        let (Some(live), true) = (live.clone(), live == recorded) else {
            continue;
        };
        let release = release_after(i, &live);
        let previous = i
            .state
            .routers
            .get(router)
            .and_then(|r| r.previous.clone())
            .unwrap_or_default();
        for name in pending {
            let Some(spec) = cfg.analyses.get(name).filter(|s| s.when == When::After) else {
                continue;
            };
            let query = AnalysisSpec::query_for(&spec.query, router, &live, &release, &previous);
            made.push(StepKind::Analysis {
                router: router.clone(),
                name: name.clone(),
                target: live.clone(),
                spec: AnalysisSpec {
                    query,
                    ..spec.clone()
                },
                recheck: true,
            });
        }
    }
    made
}

/// The release `colour` runs once this plan's changes before the switch
/// are made: as configured when the plan changes it, else as it runs now.
fn release_after(i: &Inputs<'_>, colour: &str) -> String {
    i.config
        .environments
        .get(colour)
        .map(|e| e.release.clone())
        .or_else(|| release_now(i, colour))
        .unwrap_or_default()
}

/// Whether the router's preview shows `to` while the checks before the
/// switch run: it does now and no step moves it, or a step before the
/// switch points it there.
fn previews_target_before_switch(i: &Inputs<'_>, d: &Draft, router: &str, to: &str) -> bool {
    match d
        .steps
        .get(&StepId::Preview(router.to_owned()))
        .map(|s| &s.kind)
    {
        Some(StepKind::Preview {
            to: shown,
            after_cutover,
            ..
        }) => !after_cutover && shown == to,
        Some(_) => false,
        None => i
            .live
            .routers
            .get(router)
            .is_some_and(|r| r.preview.as_deref() == Some(to)),
    }
}

/// A router's check steps, by kind: tests and `before` analyses, its
/// approval, its `after` analyses.
#[derive(Default)]
struct RouterChecks {
    before: Vec<StepId>,
    approval: Option<StepId>,
    after: Vec<StepId>,
}

/// Every router's check steps, in one scan of the plan.
fn all_checks(d: &Draft) -> std::collections::HashMap<String, RouterChecks> {
    let mut out: std::collections::HashMap<String, RouterChecks> = Default::default();
    for step in d.steps.values() {
        let (router, slot) = match &step.kind {
            StepKind::Test { router, .. } => (router, 0),
            StepKind::Analysis { router, spec, .. } if spec.when == When::Before => (router, 0),
            StepKind::Analysis { router, .. } => (router, 2),
            StepKind::Approval { router, .. } => (router, 1),
            _ => continue,
        };
        let checks = out.entry(router.clone()).or_default();
        match slot {
            0 => checks.before.push(step.id.clone()),
            1 => checks.approval = Some(step.id.clone()),
            _ => checks.after.push(step.id.clone()),
        }
    }
    out
}

/// Each test and `before` analysis after its target's gate (and after the
/// preview that shows the target, when there is one), and before the
/// switch; the approval after all of them; each `after` analysis after the
/// switch, and before the drain of the colour it left.
pub fn check_edges(_: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let intents: Vec<(String, String)> = d
        .intents
        .iter()
        .filter(|(_, it)| goes_live(it))
        .map(|(r, it)| (r.clone(), it.to.clone()))
        .collect();
    let mut all = all_checks(d);
    for (router, to) in intents {
        let Some(checks) = all.remove(&router) else {
            continue;
        };
        let gate = StepId::Health(to.clone());
        let cutover = StepId::Cutover(router.clone());
        let preview = StepId::Preview(router.clone());
        let preview_first = d
            .steps
            .get(&preview)
            .is_some_and(|s| s.kind.phase() == Phase::BeforeSwitch);
        for check in &checks.before {
            d.graph.add_edge(&gate, check)?;
            d.graph.add_edge(check, &cutover)?;
            if preview_first {
                d.graph.add_edge(&preview, check)?;
            }
        }
        if let Some(approval) = &checks.approval {
            d.graph.add_edge(&gate, approval)?;
            for check in &checks.before {
                d.graph.add_edge(check, approval)?;
            }
            if preview_first {
                d.graph.add_edge(&preview, approval)?;
            }
            d.graph.add_edge(approval, &cutover)?;
        }
        let drain = StepId::Drain(router.clone());
        for check in &checks.after {
            d.graph.add_edge(&cutover, check)?;
            if d.graph.contains(&drain) {
                d.graph.add_edge(check, &drain)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use cutover_provider::{LiveEnvironment, LiveRouter};

    use super::*;
    use crate::engine::testing::{colour, config};
    use crate::plan::validate::{validate, Problem};
    use crate::plan::{plan_with, Live, PlanOptions};

    /// Blue live on `public`, both running release 1; the configuration
    /// names green live with release 2 and gives `public` these blocks.
    pub(crate) fn plan_with_blocks(blocks: &str, options: PlanOptions) -> PlanDocument {
        plan_on(blocks, options, "1")
    }

    /// As [`plan_with_blocks`], green running `green_release` (at "2", the
    /// configuration's, the plan deploys nothing first).
    pub(crate) fn plan_on(blocks: &str, options: PlanOptions, green_release: &str) -> PlanDocument {
        let hcl = format!(
            r#"{}{}
router "public" {{
  live = environment.green
  exec {{
    read   = ["read"]
    switch = ["switch"]
  }}
  {blocks}
}}
"#,
            colour("blue", "1", 1),
            colour("green", "2", 2)
        );
        let config = config(&hcl);
        let mut live = Live::default();
        for c in ["blue", "green"] {
            let env = LiveEnvironment {
                exists: true,
                release: Some(if c == "green" { green_release } else { "1" }.into()),
                ..Default::default()
            };
            live.environments.insert(c.into(), env);
        }
        let r = LiveRouter {
            live: Some("blue".into()),
            ..Default::default()
        };
        live.routers.insert("public".into(), r);
        plan_with(&config, None, &live, &options).unwrap()
    }

    const BLOCKS: &str = r#"
  test "smoke" {
    command = ["smoke.sh", "--fast"]
    workdir = "/"
  }
  analysis "errors" {
    prometheus = "http://127.0.0.1:9090"
    query      = "sum(rate(errors{release=\"{{target_release}}\",colour=\"{{target}}\"}[1m]))"
    max        = 0.01
  }
  analysis "latency" {
    prometheus = "http://127.0.0.1:9090"
    query      = "p99{router=\"{{router}}\",from=\"{{previous}}\"}"
    max        = 0.5
    when       = "after"
    count      = 3
    interval   = "1s"
    failure_limit = 1
  }
  pause_before_cutover = true
  approval_timeout     = "10m"
"#;

    #[test]
    fn a_test_goes_through_the_preview_this_plan_points_at_its_target_first() {
        let blocks = r#"
  preview     = environment.green
  preview_url = "http://127.0.0.1:18090/"
  test "smoke" {
    command = ["true"]
    workdir = "/"
  }
"#;
        let doc = plan_with_blocks(blocks, PlanOptions::default());
        let test = doc
            .steps
            .iter()
            .find(|s| s.id.to_string() == "test.public.smoke")
            .unwrap();
        let StepKind::Test { preview_url, .. } = &test.kind else {
            unreachable!()
        };
        assert_eq!(preview_url.as_deref(), Some("http://127.0.0.1:18090/"));
        assert!(
            deps(&doc, "test.public.smoke").contains(&"preview.public".to_owned()),
            "{:?}",
            deps(&doc, "test.public.smoke")
        );
    }

    fn order(doc: &PlanDocument) -> Vec<String> {
        doc.steps.iter().map(|s| s.id.to_string()).collect()
    }

    fn deps(doc: &PlanDocument, id: &str) -> Vec<String> {
        let step = doc.steps.iter().find(|s| s.id.to_string() == id).unwrap();
        step.depends_on.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn checks_run_after_the_gate_the_approval_after_them_and_after_analyses_after_the_switch() {
        let doc = plan_with_blocks(BLOCKS, PlanOptions::default());
        assert_eq!(
            order(&doc),
            [
                "environment.green",
                "health.green",
                "analysis.public.errors",
                "test.public.smoke",
                "approve.public",
                "cutover.public",
                "analysis.public.latency",
            ]
        );
        assert_eq!(deps(&doc, "test.public.smoke"), ["health.green"]);
        assert_eq!(deps(&doc, "analysis.public.errors"), ["health.green"]);
        assert_eq!(
            deps(&doc, "approve.public"),
            [
                "analysis.public.errors",
                "health.green",
                "test.public.smoke"
            ]
        );
        assert_eq!(
            deps(&doc, "cutover.public"),
            [
                "analysis.public.errors",
                "approve.public",
                "environment.green",
                "health.green",
                "test.public.smoke"
            ]
        );
        assert_eq!(deps(&doc, "analysis.public.latency"), ["cutover.public"]);
        let phase = |id: &str| {
            let s = doc.steps.iter().find(|s| s.id.to_string() == id).unwrap();
            s.kind.phase()
        };
        assert_eq!(phase("analysis.public.latency"), Phase::Verify);
        assert_eq!(phase("approve.public"), Phase::BeforeSwitch);
        assert_eq!(
            (
                doc.summary.tests,
                doc.summary.analyses,
                doc.summary.approvals
            ),
            (1, 2, 1)
        );
    }

    #[test]
    fn queries_name_the_target_its_release_the_previous_colour_and_the_router() {
        let doc = plan_with_blocks(BLOCKS, PlanOptions::default());
        let query = |id: &str| match &doc
            .steps
            .iter()
            .find(|s| s.id.to_string() == id)
            .unwrap()
            .kind
        {
            StepKind::Analysis { spec, .. } => spec.query.clone(),
            _ => unreachable!(),
        };
        assert_eq!(
            query("analysis.public.errors"),
            r#"sum(rate(errors{release="2",colour="green"}[1m]))"#
        );
        assert_eq!(
            query("analysis.public.latency"),
            r#"p99{router="public",from="blue"}"#
        );
    }

    #[test]
    fn the_flag_pauses_every_cutover_and_its_timeout_wins() {
        let options = PlanOptions {
            pause_before_cutover: true,
            approval_timeout: Some(std::time::Duration::from_secs(90)),
            ..PlanOptions::default()
        };
        let doc = plan_with_blocks("", options);
        let approval = doc
            .steps
            .iter()
            .find(|s| s.id == StepId::Approval("public".into()));
        let Some(StepKind::Approval {
            timeout, from, to, ..
        }) = approval.map(|s| &s.kind)
        else {
            panic!("no approval in {:?}", order(&doc));
        };
        assert_eq!(
            (*timeout, from.as_deref(), to.as_str()),
            (std::time::Duration::from_secs(90), Some("blue"), "green")
        );
        assert_eq!(doc.options, options, "the plan records the choice");
        assert!(plan_with_blocks("", PlanOptions::default())
            .steps
            .iter()
            .all(|s| !matches!(s.kind, StepKind::Approval { .. })));
    }

    #[test]
    fn validate_refuses_a_switch_that_skips_a_check_and_a_check_that_skips_its_gate() {
        let doc = plan_with_blocks(BLOCKS, PlanOptions::default());
        let at = |id: &str| {
            doc.steps
                .iter()
                .position(|s| s.id.to_string() == id)
                .unwrap()
        };
        let check = |edit: &dyn Fn(&mut PlanDocument)| {
            let mut d = doc.clone();
            edit(&mut d);
            validate(&d).unwrap_err()
        };
        validate(&doc).unwrap();
        let cut = at("cutover.public");
        let test = StepId::Test("public".into(), "smoke".into());
        let err = check(&|d| d.steps[cut].depends_on.retain(|x| *x != test));
        assert_eq!(err.problem, Problem::UncheckedCutover(test.clone()));
        assert_eq!(
            err.to_string(),
            "step cutover.public: it switches live traffic without depending on test.public.smoke, a check of its router"
        );
        let approval = StepId::Approval("public".into());
        let err = check(&|d| d.steps[cut].depends_on.retain(|x| *x != approval));
        assert_eq!(err.problem, Problem::UncheckedCutover(approval.clone()));
        let err = check(&|d| d.steps[at("test.public.smoke")].depends_on.clear());
        assert_eq!(
            err.problem,
            Problem::CheckBeforeGate(StepId::Health("green".into()))
        );
        let err = check(&|d| d.steps[at("analysis.public.latency")].depends_on.clear());
        assert_eq!(
            err.problem,
            Problem::CheckBeforeSwitch(StepId::Cutover("public".into()))
        );
        let err = check(&|d| {
            if let StepKind::Test { target, .. } = &mut d.steps[at("test.public.smoke")].kind {
                *target = "blue".into();
            }
        });
        assert_eq!(
            err.problem,
            Problem::CheckOfNoCutover(
                "it checks blue, but cutover.public switches to green".into()
            )
        );
        // A test step with no cut-over of its router.
        let err = check(&|d| {
            d.steps
                .retain(|s| !matches!(s.kind, StepKind::Cutover { .. } | StepKind::Analysis { .. }))
        });
        assert!(matches!(err.problem, Problem::CheckOfNoCutover(_)), "{err}");
    }

    #[test]
    fn a_repair_of_the_live_colour_runs_no_checks() {
        let router = format!(
            "router \"public\" {{\n  live = environment.blue\n  exec {{\n    read = [\"r\"]\n    switch = [\"s\"]\n  }}\n{BLOCKS}\n}}\n"
        );
        let hcl = colour("blue", "1", 1) + &router;
        let config = config(&hcl);
        let mut live = Live::default();
        let r = LiveRouter {
            live: Some("blue".into()),
            drift: vec![cutover_provider::RouterDrift::new(
                cutover_provider::RouterDriftKind::PersistedDiffers,
                "the map file says green",
            )],
            ..Default::default()
        };
        live.routers.insert("public".into(), r);
        let env = LiveEnvironment {
            exists: true,
            release: Some("1".into()),
            ..Default::default()
        };
        live.environments.insert("blue".into(), env);
        let doc = plan_with(&config, None, &live, &PlanOptions::default()).unwrap();
        assert_eq!(order(&doc), ["health.blue", "cutover.public"]);
    }

    #[test]
    fn after_analyses_left_pending_by_a_stopped_apply_run_again_and_only_then() {
        let blocks = BLOCKS.replace("pause_before_cutover = true", "");
        let switched = plan_with_blocks(&blocks, PlanOptions::default());
        let cut = switched
            .steps
            .iter()
            .find(|s| s.id == StepId::Cutover("public".into()))
            .unwrap();
        let StepKind::Cutover { after_checks, .. } = &cut.kind else {
            unreachable!()
        };
        assert_eq!(
            after_checks,
            &["latency".to_owned()],
            "recorded with the switch"
        );

        // The apply stopped while `latency` measured: green is live, the
        // state says so, and the check is pending.
        let hcl = format!(
            "{}{}\nrouter \"public\" {{\n  live = environment.green\n  exec {{\n    read = [\"r\"]\n    switch = [\"s\"]\n  }}\n{blocks}\n}}\n",
            colour("blue", "1", 1),
            colour("green", "2", 2)
        );
        let config = config(&hcl);
        let mut live = Live::default();
        for (c, release) in [("blue", "1"), ("green", "2")] {
            let env = LiveEnvironment {
                exists: true,
                release: Some(release.into()),
                ..Default::default()
            };
            live.environments.insert(c.into(), env);
        }
        let on = |colour: &str| LiveRouter {
            live: Some(colour.into()),
            ..Default::default()
        };
        live.routers.insert("public".into(), on("green"));
        let mut state = crate::state::new_state();
        let record = crate::state::model::RouterState {
            backend: "exec".into(),
            live: Some("green".into()),
            previous: Some("blue".into()),
            preview: None,
            rolled_back: false,
        };
        state.routers.insert("public".into(), record);
        state
            .unchecked
            .insert("public".into(), vec!["latency".into()]);
        let doc = plan_with(&config, Some(&state), &live, &PlanOptions::default()).unwrap();
        assert_eq!(order(&doc), ["analysis.public.latency"]);
        assert!(matches!(
            doc.steps[0].kind,
            StepKind::Analysis { recheck: true, .. }
        ));
        assert_eq!(doc.steps[0].kind.phase(), Phase::Verify);
        assert!(doc.summary.has_changes(), "apply has work to do");
        // Someone switched the router by hand since: nothing to check again.
        live.routers.insert("public".into(), on("blue"));
        let doc = plan_with(&config, Some(&state), &live, &PlanOptions::default()).unwrap();
        assert!(
            doc.steps
                .iter()
                .all(|s| !matches!(s.kind, StepKind::Analysis { recheck: true, .. })),
            "{:?}",
            order(&doc)
        );
    }
}
