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
    for kind in made {
        d.add(kind)?;
    }
    Ok(())
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
