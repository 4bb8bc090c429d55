//! `validate()`: the rules of the cut-over (DESIGN.md §3) checked on a plan
//! document, whoever made it. The planner ends with it; `apply PLANFILE`
//! and the apply walk run it again before anything runs, so a saved plan
//! edited by hand (a gate removed from a cut-over's `depends_on`, a step
//! moved before the change it waits for) is refused, naming the step.
//!
//! What it checks, in one pass over the steps:
//! - every id is the one its step's kind gives, and unique;
//! - every dependency names a step of the plan, listed before it (so the
//!   listed order is one the walk can run, and the graph has no cycle);
//! - no step waits for a step of a later phase (a change before the switch
//!   cannot wait for a switch or for what runs after it);
//! - every cut-over depends on its target's health gate, and that gate on
//!   the target's change when the plan changes it;
//! - every change to a colour that cut-overs drain depends on each of them;
//!   a drain, and a preview moved to the colour its router's cut-over
//!   drains, depend on that cut-over;
//! - every cut-over depends on its router's tests, `before` analyses and
//!   approval, each of which depends on the target's gate and checks the
//!   colour the cut-over switches to; every `after` analysis depends on its
//!   router's cut-over;
//! - every change to an environment the plan settles depends on that
//!   settle, and a settle after the switches on every cut-over that drains
//!   its environment.

use std::collections::HashMap;
use std::fmt;

use super::document::*;
use crate::addr::StepId;

/// A plan that breaks a rule, naming the step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step}: {problem}")]
pub struct Invalid {
    /// The step at fault.
    pub step: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The id is not the one the step's kind gives.
    WrongId(StepId),
    /// Another step has the same id.
    Duplicate,
    /// A dependency names no step of the plan.
    MissingDependency(StepId),
    /// A dependency is listed after the step (or is the step itself).
    OutOfOrder(StepId),
    /// The step waits for a step of a later phase.
    PhaseInversion(StepId),
    /// A cut-over does not depend on its target's health gate.
    UngatedCutover(StepId),
    /// A health gate does not depend on the change of what it checks.
    GateBeforeChange(StepId),
    /// A step that must follow a cut-over does not depend on it.
    BeforeItsCutover(StepId),
    /// A cut-over's target colour, or its gate's endpoints, are not those
    /// of the colour it names as `to`.
    WrongTarget(String),
    /// A cut-over's `from` is not the colour the plan saw the router on.
    WrongFrom(String),
    /// An environment step's `traffic` is not what the routers the plan saw
    /// and its cut-overs make it.
    WrongTraffic(Traffic),
    /// A cut-over does not depend on a test, `before` analysis or approval
    /// of its router.
    UncheckedCutover(StepId),
    /// A test, analysis or approval does not wait for its target's gate.
    CheckBeforeGate(StepId),
    /// An `after` analysis does not wait for its router's cut-over.
    CheckBeforeSwitch(StepId),
    /// A test, analysis or approval of a router the plan does not cut over,
    /// or of another colour than the one it switches to.
    CheckOfNoCutover(String),
    /// An environment's change does not wait for its settle (the plan's
    /// wait until the routers hold no streams to it).
    Unsettled(StepId),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::WrongId(id) => {
                write!(f, "its id does not match what it does (it is step {id})")
            }
            Problem::Duplicate => f.write_str("two steps have this id"),
            Problem::MissingDependency(d) => {
                write!(f, "it depends on {d}, which is not a step of the plan")
            }
            Problem::OutOfOrder(d) => write!(f, "it is listed before {d}, which it depends on"),
            Problem::PhaseInversion(d) => write!(
                f,
                "it runs before the switch but depends on {d}, which runs at or after it"
            ),
            Problem::UngatedCutover(gate) => write!(
                f,
                "it switches live traffic without depending on {gate}, its target's health gate"
            ),
            Problem::GateBeforeChange(change) => {
                write!(f, "it would check the colour before {change} changes it")
            }
            Problem::BeforeItsCutover(cutover) => write!(
                f,
                "it changes the colour {cutover} takes traffic away from, without waiting for it"
            ),
            Problem::WrongTarget(why) => write!(f, "its target is not the colour it names: {why}"),
            Problem::WrongFrom(seen) => write!(
                f,
                "it says it switches from another colour than the plan saw the router on ({seen})"
            ),
            Problem::UncheckedCutover(check) => write!(
                f,
                "it switches live traffic without depending on {check}, a check of its router"
            ),
            Problem::CheckBeforeGate(gate) => {
                write!(f, "it checks its target without waiting for {gate}")
            }
            Problem::CheckBeforeSwitch(cutover) => write!(
                f,
                "it checks under live traffic without waiting for {cutover}"
            ),
            Problem::CheckOfNoCutover(why) => write!(f, "{why}"),
            Problem::Unsettled(settle) => write!(
                f,
                "it changes the colour without waiting for {settle}, which waits until no router holds streams to it"
            ),
            Problem::WrongTraffic(expected) => write!(
                f,
                "its traffic is not what the routers make it (it is {})",
                match expected {
                    Traffic::Idle => "idle",
                    Traffic::Live => "live",
                    Traffic::Drained => "drained",
                }
            ),
        }
    }
}

/// Check `doc` against the rules; the first step that breaks one.
pub fn validate(doc: &PlanDocument) -> Result<(), Invalid> {
    let mut position: HashMap<&StepId, usize> = HashMap::with_capacity(doc.steps.len());
    let invalid = |step: &Step, problem| Invalid {
        step: step.id.to_string(),
        problem,
    };
    for (at, step) in doc.steps.iter().enumerate() {
        let own = step.kind.id();
        if step.id != own {
            return Err(invalid(step, Problem::WrongId(own)));
        }
        if position.insert(&step.id, at).is_some() {
            return Err(invalid(step, Problem::Duplicate));
        }
    }
    // Which cut-over drains which colour.
    let drained_by: HashMap<&str, Vec<&StepId>> =
        doc.steps.iter().fold(HashMap::new(), |mut m, s| {
            if let StepKind::Cutover {
                from: Some(from),
                to,
                ..
            } = &s.kind
            {
                if from != to {
                    m.entry(from.as_str()).or_default().push(&s.id);
                }
            }
            m
        });
    let checks = router_checks(doc);
    for (at, step) in doc.steps.iter().enumerate() {
        check_dependencies(doc, &position, at, step).map_err(|p| invalid(step, p))?;
        check_rules(&position, &drained_by, step).map_err(|p| invalid(step, p))?;
        check_checks(doc, &position, &checks, step).map_err(|p| invalid(step, p))?;
        check_payload(doc, &position, &drained_by, step).map_err(|p| invalid(step, p))?;
    }
    Ok(())
}

/// What a step says it does agrees with the rest of the plan: a cut-over's
/// target is the colour it names and the one its gate checked, its `from`
/// the colour the plan saw; an environment's `traffic` what the routers the
/// plan saw make it. (A plan edited by hand could otherwise switch to a
/// colour no gate checked, or change a live colour before the switch.)
fn check_payload(
    doc: &PlanDocument,
    position: &HashMap<&StepId, usize>,
    drained_by: &HashMap<&str, Vec<&StepId>>,
    step: &Step,
) -> Result<(), Problem> {
    match &step.kind {
        StepKind::Cutover {
            router,
            from,
            to,
            spec,
            target,
            ..
        } => {
            if target.name != *to || spec.colour(to) != Some(target) {
                return Err(Problem::WrongTarget(format!(
                    "it switches to {} as `target`",
                    target.name
                )));
            }
            let gate = position
                .get(&StepId::Health(to.clone()))
                .map(|i| &doc.steps[*i].kind);
            if let Some(StepKind::HealthGate {
                endpoints, health, ..
            }) = gate
            {
                let mut checked = endpoints.clone();
                let mut served = target.endpoints.clone();
                checked.sort();
                served.sort();
                if health.url.is_none() && checked != served {
                    return Err(Problem::WrongTarget(format!(
                        "its gate checks {} but it sends traffic to {}",
                        checked.join(", "),
                        served.join(", ")
                    )));
                }
            }
            let seen = doc
                .fingerprint
                .get(&crate::addr::Address::router(router).to_string());
            if let (Some(from), Some(seen)) = (from, seen) {
                if from != seen {
                    return Err(Problem::WrongFrom(seen.clone()));
                }
            }
        }
        StepKind::Environment { name, traffic, .. } => {
            let expected = expected_traffic(doc, drained_by, name);
            if *traffic != expected {
                return Err(Problem::WrongTraffic(expected));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The traffic of colour `name` when its step runs, from the routers the
/// plan saw on it (its fingerprint) and the cut-overs that drain it.
fn expected_traffic(
    doc: &PlanDocument,
    drained_by: &HashMap<&str, Vec<&StepId>>,
    name: &str,
) -> Traffic {
    // The routers the plan saw on it, and those it forgets, which keep
    // sending it traffic.
    let forgotten = doc.steps.iter().filter_map(|s| match &s.kind {
        StepKind::ForgetRouter {
            router,
            live: Some(live),
        } if live == name => Some(router.as_str()),
        _ => None,
    });
    // A fleet serves every colour one of its instances serves.
    let fleets = doc.fingerprint.iter().filter_map(|(k, v)| {
        let router = k.strip_prefix(super::drift::FLEET_PREFIX)?;
        let router = router.strip_prefix("router.")?;
        super::drift::fleet_colours(v)
            .iter()
            .any(|c| c == name)
            .then_some(router)
    });
    let serving: Vec<&str> = doc
        .fingerprint
        .iter()
        .filter(|(k, v)| k.starts_with("router.") && v.as_str() == name)
        .map(|(k, _)| &k["router.".len()..])
        .chain(fleets)
        .chain(forgotten)
        .collect();
    if serving.is_empty() {
        return Traffic::Idle;
    }
    let draining = drained_by.get(name).map_or(&[][..], |v| v.as_slice());
    let drained = serving
        .iter()
        .all(|r| draining.iter().any(|c| c.name() == *r));
    if drained {
        Traffic::Drained
    } else {
        Traffic::Live
    }
}

/// Every dependency exists, is listed earlier, and is of the same or an
/// earlier phase.
fn check_dependencies(
    doc: &PlanDocument,
    position: &HashMap<&StepId, usize>,
    at: usize,
    step: &Step,
) -> Result<(), Problem> {
    let phase = step.kind.phase();
    for dep in &step.depends_on {
        let Some(&before) = position.get(dep) else {
            return Err(Problem::MissingDependency(dep.clone()));
        };
        if before >= at {
            return Err(Problem::OutOfOrder(dep.clone()));
        }
        let dep_phase = doc.steps[before].kind.phase();
        if dep_phase > phase || (dep_phase == phase && phase == Phase::Switch) {
            // Switches never wait for each other either: they run
            // together once everything before them is done.
            return Err(Problem::PhaseInversion(dep.clone()));
        }
    }
    Ok(())
}

/// The rules about gates and cut-overs.
fn check_rules(
    position: &HashMap<&StepId, usize>,
    drained_by: &HashMap<&str, Vec<&StepId>>,
    step: &Step,
) -> Result<(), Problem> {
    // A change of a colour thousands of cut-overs drain depends on each:
    // look them up, not along the list, once there are many.
    let many: Option<std::collections::HashSet<&StepId>> =
        (step.depends_on.len() > 16).then(|| step.depends_on.iter().collect());
    let depends = |id: &StepId| match &many {
        Some(set) => set.contains(id),
        None => step.depends_on.contains(id),
    };
    if let StepKind::Environment { name, .. } = &step.kind {
        let settle = StepId::Settle(name.clone());
        if position.contains_key(&settle) && !depends(&settle) {
            return Err(Problem::Unsettled(settle));
        }
    }
    match &step.kind {
        StepKind::Cutover { to, .. } => {
            let gate = StepId::Health(to.clone());
            if !depends(&gate) {
                return Err(Problem::UngatedCutover(gate));
            }
        }
        StepKind::HealthGate { environment, .. } => {
            let change = StepId::Environment(environment.clone());
            if position.contains_key(&change) && !depends(&change) {
                return Err(Problem::GateBeforeChange(change));
            }
        }
        StepKind::Environment {
            name,
            traffic: Traffic::Drained,
            ..
        } => must_follow(drained_by, name, &depends)?,
        StepKind::Settle {
            environment,
            after_cutover: true,
            ..
        } => must_follow(drained_by, environment, &depends)?,
        StepKind::Drain { router, .. }
        | StepKind::Preview {
            router,
            after_cutover: true,
            ..
        } => {
            let cutover = StepId::Cutover(router.clone());
            if !depends(&cutover) {
                return Err(Problem::BeforeItsCutover(cutover));
            }
        }
        StepKind::Environment { .. }
        | StepKind::Preview { .. }
        | StepKind::RemovePreview { .. }
        | StepKind::Settle { .. }
        | StepKind::ForgetRouter { .. }
        | StepKind::Test { .. }
        | StepKind::Analysis { .. }
        | StepKind::Approval { .. } => {}
    }
    Ok(())
}

/// Per router, its steps that a cut-over must wait for (tests, `before`
/// analyses, approval).
fn router_checks(doc: &PlanDocument) -> HashMap<&str, Vec<&StepId>> {
    let mut out: HashMap<&str, Vec<&StepId>> = HashMap::new();
    for step in &doc.steps {
        let router = match &step.kind {
            StepKind::Test { router, .. } | StepKind::Approval { router, .. } => router,
            StepKind::Analysis { router, spec, .. }
                if spec.when == crate::config::checks::When::Before =>
            {
                router
            }
            _ => continue,
        };
        out.entry(router.as_str()).or_default().push(&step.id);
    }
    out
}

/// The rules about a router's checks: a cut-over waits for every test,
/// `before` analysis and approval of its router; each of them checks the
/// colour that cut-over switches to, after its gate; an `after` analysis
/// waits for the cut-over.
fn check_checks(
    doc: &PlanDocument,
    position: &HashMap<&StepId, usize>,
    checks: &HashMap<&str, Vec<&StepId>>,
    step: &Step,
) -> Result<(), Problem> {
    let depends = |id: &StepId| step.depends_on.contains(id);
    let (router, target, after) = match &step.kind {
        StepKind::Cutover { router, .. } => {
            for check in checks.get(router.as_str()).into_iter().flatten() {
                if !depends(check) {
                    return Err(Problem::UncheckedCutover((*check).clone()));
                }
            }
            return Ok(());
        }
        StepKind::Test { router, target, .. } => (router, target, false),
        StepKind::Approval { router, to, .. } => (router, to, false),
        StepKind::Analysis {
            router,
            target,
            recheck: true,
            ..
        } => return check_recheck(doc, position, router, target),
        StepKind::Analysis {
            router,
            target,
            spec,
            ..
        } => (
            router,
            target,
            spec.when == crate::config::checks::When::After,
        ),
        _ => return Ok(()),
    };
    let cutover = StepId::Cutover(router.clone());
    let switches_to = position.get(&cutover).map(|i| &doc.steps[*i].kind);
    match switches_to {
        Some(StepKind::Cutover { to, .. }) if to == target => {}
        Some(StepKind::Cutover { to, .. }) => {
            return Err(Problem::CheckOfNoCutover(format!(
                "it checks {target}, but {cutover} switches to {to}"
            )))
        }
        _ => {
            return Err(Problem::CheckOfNoCutover(format!(
                "it checks a switch of router.{router}, which the plan does not cut over"
            )))
        }
    }
    if after {
        if !depends(&cutover) {
            return Err(Problem::CheckBeforeSwitch(cutover));
        }
    } else {
        let gate = StepId::Health(target.clone());
        if !depends(&gate) {
            return Err(Problem::CheckBeforeGate(gate));
        }
    }
    Ok(())
}

/// A recheck (an `after` analysis an earlier apply left pending) checks
/// the colour the plan saw its router on, and its router does not cut over
/// in this plan (the cut-over's own `after` analyses would then run).
fn check_recheck(
    doc: &PlanDocument,
    position: &HashMap<&StepId, usize>,
    router: &str,
    target: &str,
) -> Result<(), Problem> {
    let cutover = StepId::Cutover(router.to_owned());
    if position.contains_key(&cutover) {
        return Err(Problem::CheckOfNoCutover(format!(
            "it checks again an earlier switch of router.{router}, which this plan switches anew ({cutover})"
        )));
    }
    let seen = doc.fingerprint.get(&format!("router.{router}"));
    if seen.map(String::as_str) != Some(target) {
        return Err(Problem::CheckOfNoCutover(format!(
            "it checks {target}, but the plan saw router.{router} on {}",
            seen.map_or("nothing", String::as_str)
        )));
    }
    Ok(())
}

/// A step about `colour` depends on every cut-over that drains it.
fn must_follow(
    drained_by: &HashMap<&str, Vec<&StepId>>,
    colour: &str,
    depends: &dyn Fn(&StepId) -> bool,
) -> Result<(), Problem> {
    for cutover in drained_by.get(colour).into_iter().flatten() {
        if !depends(cutover) {
            return Err(Problem::BeforeItsCutover((*cutover).clone()));
        }
    }
    Ok(())
}
