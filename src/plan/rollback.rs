//! The plan of `cutover rollback`: every router named (or every router with
//! a recorded previous colour) switches back to that colour, after that
//! colour passes its health gate. Made by the same passes as any plan and
//! validated the same way; the apply walk runs it like any other.

use super::document::{Step, StepKind};
use super::passes::{cutover_step, Draft, Inputs, Intent};
use super::{document, drift, edges, Live, PlanDocument, PlanError, PlanOptions};
use crate::addr::Address;
use crate::config::model::Config;
use crate::state::model::State;

/// The rollback plan of `routers` (names, with or without `router.`; empty:
/// every router with a recorded previous colour).
pub fn plan(
    config: &Config,
    state: &State,
    live: &Live,
    routers: &[String],
) -> Result<PlanDocument, PlanError> {
    let wanted = wanted(state, routers)?;
    let options = PlanOptions::default();
    let inputs = Inputs {
        config,
        state,
        live,
        options: &options,
        secrets: super::sensitive::Secrets::new(config),
    };
    let mut draft = Draft::default();
    for name in &wanted {
        let to = back_to(config, state, name)?;
        // A colour that does not run is no way back: say so now rather
        // than wait out its gate.
        if live.environments.get(&to).is_some_and(|e| !e.exists) {
            return Err(PlanError::Rollback(format!(
                "{} would roll back to {to}, but {} is not running: there is no way back until it is repaired (`cutover plan` shows the change that brings it back)",
                Address::router(name),
                Address::environment(&to)
            )));
        }
        let from = live.routers.get(name).and_then(|r| r.live.clone());
        draft.intents.insert(name.clone(), Intent { from, to });
    }
    let mut kinds = Vec::new();
    let mut targets: Vec<&String> = draft.intents.values().map(|i| &i.to).collect();
    targets.sort();
    targets.dedup();
    for to in targets {
        let env = &config.environments[to];
        // The colour returns as it runs now: no release is required of it.
        kinds.push(StepKind::HealthGate {
            environment: env.name.clone(),
            endpoints: env.endpoints.clone(),
            health: env.health.clone(),
            release: None,
        });
    }
    for (router, intent) in &draft.intents {
        kinds.push(cutover_step(&inputs, router, intent, true));
    }
    draft.steps = kinds
        .into_iter()
        .map(Step::new)
        .map(|s| (s.id.clone(), s))
        .collect();
    // The same ordering passes as any plan; the way back of a rollback is
    // the colour it leaves.
    for (_, pass) in edges::steps() {
        pass(&inputs, &mut draft)?;
    }
    let doc = document(
        Some(state),
        vec![],
        draft.ordered,
        draft.rollback,
        drift::fingerprint(live),
    );
    super::validate::validate(&doc)?;
    Ok(doc)
}

/// The routers to roll back.
fn wanted(state: &State, routers: &[String]) -> Result<Vec<String>, PlanError> {
    let wanted: Vec<String> = if routers.is_empty() {
        state
            .routers
            .iter()
            .filter(|(_, r)| r.previous.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        routers
            .iter()
            .map(|r| crate::addr::name_arg(r.strip_prefix("router.").unwrap_or(r)))
            .collect()
    };
    if wanted.is_empty() {
        return Err(PlanError::Rollback(
            "no router has a previous colour recorded in the state: nothing to roll back".into(),
        ));
    }
    Ok(wanted)
}

/// The colour `router` goes back to.
fn back_to(config: &Config, state: &State, router: &str) -> Result<String, PlanError> {
    let address = Address::router(router);
    let fail = |why: String| Err(PlanError::Rollback(why));
    let Some(rec) = state.routers.get(router) else {
        return fail(format!("{address} is not in the state"));
    };
    let Some(to) = rec.previous.clone() else {
        return fail(format!(
            "{address} has no previous colour recorded: it has never cut over"
        ));
    };
    if !config.routers.contains_key(router) {
        return fail(format!("{address} is no longer in the configuration"));
    }
    if !config.environments.contains_key(&to) {
        return fail(format!(
            "{address} would roll back to {to}, but {} is no longer in the configuration",
            Address::environment(&to)
        ));
    }
    Ok(to)
}
