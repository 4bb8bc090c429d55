//! The planner's passes that order the steps (after OpenTofu's graph
//! transformers): the graph of the steps the [`super::passes`] made, the
//! edges of each ordering rule, the order, and the way back. An edge to a
//! step that a rule requires but the plan lacks is an error
//! ([`crate::graph::GraphError::MissingStep`]); an edge a rule only implies
//! when a step exists is added only when it does.

use std::collections::BTreeMap;

use super::document::*;
use super::passes::{release_now, Draft, Inputs, Pass};
use super::PlanError;
use crate::addr::{Address, StepId};
use crate::graph::StepGraph;

/// The passes that order the steps, in the order they run.
pub fn steps() -> [(&'static str, Pass); 9] {
    [
        ("graph", graph),
        ("reference edges", reference_edges),
        ("gate edges", gate_edges),
        ("cut-over edges", cutover_edges),
        ("preview edges", preview_edges),
        ("settle edges", settle_edges),
        ("check edges", super::checks::check_edges),
        ("order", order),
        ("rollback hints", rollback_hints),
    ]
}

/// The graph of every step made so far, no edges yet.
pub fn graph(_: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    d.graph = StepGraph::new(d.steps.keys().cloned())?;
    Ok(())
}

/// Add `before -> after` when both steps are in the plan.
fn edge_if_both(d: &mut Draft, before: &StepId, after: &StepId) -> Result<(), PlanError> {
    if d.graph.contains(before) && d.graph.contains(after) {
        d.graph.add_edge(before, after)?;
    }
    Ok(())
}

/// An environment whose configuration refers to another environment is
/// changed after it.
pub fn reference_edges(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    for (from, to) in &i.config.references {
        if let (Address::Environment(a), Address::Environment(b)) = (from, to) {
            let before = StepId::Environment(b.clone());
            edge_if_both(d, &before, &StepId::Environment(a.clone()))?;
        }
    }
    Ok(())
}

/// A health gate checks an environment after that environment's change.
pub fn gate_edges(_: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let gates: Vec<String> = d
        .steps
        .values()
        .filter_map(|s| match &s.kind {
            StepKind::HealthGate { environment, .. } => Some(environment.clone()),
            _ => None,
        })
        .collect();
    for env in gates {
        edge_if_both(d, &StepId::Environment(env.clone()), &StepId::Health(env))?;
    }
    Ok(())
}

/// Rules 1 and 2 of the cut-over: the change to the colour a router
/// switches to, then its health gate (required: a cut-over without its
/// target's gate is a planner bug), then the cut-over; then the drain and
/// the change of the colour the cut-over took traffic away from.
pub fn cutover_edges(_: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let intents: Vec<(String, super::passes::Intent)> = d
        .intents
        .iter()
        .map(|(r, i)| (r.clone(), i.clone()))
        .collect();
    for (router, intent) in intents {
        let cutover = StepId::Cutover(router.clone());
        d.graph
            .add_edge(&StepId::Health(intent.to.clone()), &cutover)?;
        edge_if_both(d, &StepId::Environment(intent.to.clone()), &cutover)?;
        let Some(from) = intent.drains() else {
            continue;
        };
        let drain = StepId::Drain(router.clone());
        edge_if_both(d, &cutover, &drain)?;
        // A colour another router keeps serving is changed (with
        // --allow-live-changes) before the switches, like any live change.
        let drained = StepId::Environment(from.to_owned());
        let is_drained = d.steps.get(&drained).is_some_and(|s| {
            matches!(
                s.kind,
                StepKind::Environment {
                    traffic: Traffic::Drained,
                    ..
                }
            )
        });
        if is_drained {
            d.graph.add_edge(&cutover, &drained)?;
            edge_if_both(d, &drain, &drained)?;
        }
    }
    Ok(())
}

/// A settle waits before its environment's change (which it exists for:
/// required); after the switches and drains that take traffic from the
/// environment, and after a preview stops showing it, so that the streams
/// it waits for are the last ones.
pub fn settle_edges(_: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let settles: Vec<String> = d
        .steps
        .values()
        .filter_map(|s| match &s.kind {
            StepKind::Settle { environment, .. } => Some(environment.clone()),
            _ => None,
        })
        .collect();
    // By colour, once: a plan of thousands of settles and cut-overs must
    // not compare every pair.
    let mut leaving: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (router, intent) in &d.intents {
        if let Some(from) = intent.drains() {
            leaving
                .entry(from.to_owned())
                .or_default()
                .push(router.clone());
        }
    }
    // Previews that stop showing the colour (removed, or moved away from it
    // before the switches, when a settle before them can wait for them).
    let mut unshown: BTreeMap<String, Vec<(String, Phase)>> = BTreeMap::new();
    for s in d.steps.values() {
        let (router, from) = match &s.kind {
            StepKind::RemovePreview { router, from, .. } => (router, from),
            StepKind::Preview {
                router,
                from: Some(from),
                ..
            } => (router, from),
            _ => continue,
        };
        let entry = (router.clone(), s.kind.phase());
        unshown.entry(from.clone()).or_default().push(entry);
    }
    for env in settles {
        let settle = StepId::Settle(env.clone());
        d.graph
            .add_edge(&settle, &StepId::Environment(env.clone()))?;
        for router in leaving.get(&env).into_iter().flatten() {
            edge_if_both(d, &StepId::Cutover(router.clone()), &settle)?;
            edge_if_both(d, &StepId::Drain(router.clone()), &settle)?;
        }
        let phase = d.steps[&settle].kind.phase();
        for (router, _) in unshown
            .get(&env)
            .into_iter()
            .flatten()
            .filter(|(_, p)| *p <= phase)
        {
            edge_if_both(d, &StepId::Preview(router.clone()), &settle)?;
        }
    }
    Ok(())
}

/// A preview is pointed at a colour after that colour's change; before the
/// router's cut-over, or after it when it shows the colour just drained. A
/// preview removed stops showing its colour before that colour changes (or
/// is destroyed).
pub fn preview_edges(_: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let removed: Vec<(String, String)> = d
        .steps
        .values()
        .filter_map(|s| match &s.kind {
            StepKind::RemovePreview { router, from, .. } => Some((router.clone(), from.clone())),
            _ => None,
        })
        .collect();
    for (router, from) in removed {
        edge_if_both(d, &StepId::Preview(router), &StepId::Environment(from))?;
    }
    let previews: Vec<(String, String, bool)> = d
        .steps
        .values()
        .filter_map(|s| match &s.kind {
            StepKind::Preview {
                router,
                to,
                after_cutover,
                ..
            } => Some((router.clone(), to.clone(), *after_cutover)),
            _ => None,
        })
        .collect();
    for (router, to, after_cutover) in previews {
        let preview = StepId::Preview(router.clone());
        let cutover = StepId::Cutover(router);
        edge_if_both(d, &StepId::Environment(to), &preview)?;
        if after_cutover {
            d.graph.add_edge(&cutover, &preview)?;
        } else {
            edge_if_both(d, &preview, &cutover)?;
        }
    }
    Ok(())
}

/// The order the steps run in: topological, every step before the
/// switches first, then the switches, then what runs after them (the order
/// the apply walk keeps), ties by id.
pub fn order(_: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let steps = &d.steps;
    let order = d.graph.order_by(|id| steps[id].kind.phase())?;
    let mut ordered = Vec::with_capacity(order.len());
    for id in order {
        let mut step = d
            .steps
            .remove(&id)
            .expect("the graph holds the plan's steps");
        step.depends_on = d.graph.dependencies(&id);
        ordered.push(step);
    }
    d.ordered = ordered;
    Ok(())
}

/// The way back after the plan: for every router that switches away from a
/// colour, that colour as it will be after the apply (a colour this plan
/// changes after the cut-over runs its new release then; one it destroys
/// is no way back).
pub fn rollback_hints(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let changed_after: std::collections::BTreeMap<&str, (Action, &str)> = d
        .ordered
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Environment {
                action, name, spec, ..
            } if s.kind.phase() == Phase::AfterSwitch => {
                Some((name.as_str(), (*action, spec.release.as_str())))
            }
            _ => None,
        })
        .collect();
    for (router, intent) in &d.intents {
        let Some(from) = intent.drains() else {
            continue;
        };
        let (release, changed_after_cutover) = match changed_after.get(from) {
            Some((Action::Delete, _)) => continue,
            Some((_, release)) => (Some((*release).to_owned()), true),
            None => (release_now(i, from), false),
        };
        d.rollback.push(RollbackHint {
            router: router.clone(),
            to: from.to_owned(),
            release,
            changed_after_cutover,
        });
    }
    Ok(())
}
