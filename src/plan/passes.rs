//! The planner's passes that decide which steps a plan has (after OpenTofu's
//! `graph_builder_plan.go`: a list of named passes over one draft, each a
//! function that can be tested alone). The passes that order the steps are
//! in [`super::edges`]; [`super::plan_with`] runs both lists and ends with
//! [`super::validate::validate`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::document::*;
use super::specs::{environment_spec, recorded_spec, step_spec};
use super::{Live, PlanError, PlanOptions};
use crate::addr::{Address, StepId};
use crate::config::model::{Config, Environment};
use crate::graph::StepGraph;
use crate::state::model::State;

/// What every pass reads.
#[derive(Clone)]
pub struct Inputs<'a> {
    /// The desired state.
    pub config: &'a Config,
    /// The state before the plan (an empty one when there is none).
    pub state: &'a State,
    /// What the refresh read.
    pub live: &'a Live,
    /// The operator's explicit choices.
    pub options: &'a PlanOptions,
    /// The configuration's sensitive values: the state and the live world
    /// hold them as markers, so the configuration is compared as shown.
    pub secrets: super::sensitive::Secrets,
}

/// A router that must switch: from the colour it serves now to the one the
/// configuration names (the same colour, when the router reports drift that
/// a switch repairs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The colour live now, if the router serves one cutover knows.
    pub from: Option<String>,
    /// The colour it switches to.
    pub to: String,
}

impl Intent {
    /// The colour this switch takes traffic away from, if any.
    pub fn drains(&self) -> Option<&str> {
        self.from.as_deref().filter(|f| *f != self.to)
    }
}

/// What the passes build.
#[derive(Debug, Default)]
pub struct Draft {
    /// The routers that switch, by name.
    pub intents: BTreeMap<String, Intent>,
    /// The steps, by id.
    pub steps: BTreeMap<StepId, Step>,
    /// The steps' graph, once every step is known.
    pub graph: StepGraph,
    /// The steps in the order they run, each with its dependencies.
    pub ordered: Vec<Step>,
    /// The way back after the plan.
    pub rollback: Vec<RollbackHint>,
}

impl Draft {
    /// Add a step; a second step with the same id is a planner bug.
    pub(super) fn add(&mut self, kind: StepKind) -> Result<(), PlanError> {
        let step = Step::new(kind);
        match self.steps.insert(step.id.clone(), step) {
            None => Ok(()),
            Some(old) => Err(PlanError::Graph(crate::graph::GraphError::DuplicateStep(
                old.id,
            ))),
        }
    }

    /// The environment step of `name`, if the plan changes it.
    pub fn environment(&self, name: &str) -> Option<&Step> {
        self.steps.get(&StepId::Environment(name.to_owned()))
    }
}

/// A planner pass.
pub type Pass = fn(&Inputs<'_>, &mut Draft) -> Result<(), PlanError>;

/// The passes that make the steps, in the order they run.
pub fn steps() -> [(&'static str, Pass); 11] {
    [
        ("cut-over intents", intents),
        ("environment changes", environment_changes),
        ("environment removals", environment_removals),
        ("live-colour protection", refuse_live_changes),
        ("health gates", health_gates),
        ("cut-overs", cutovers),
        // Before the checks: a test goes through the preview this plan
        // points at its target first (`CUTOVER_PREVIEW_URL`).
        ("previews", previews),
        ("tests, analyses and approvals", super::checks::checks),
        ("drains", drains),
        // After the drains: a drain that counts already waits for its router.
        ("settles", settles),
        ("forgotten routers", forgotten_routers),
    ]
}

/// Which routers switch: every router not on the colour the configuration
/// names, and every router on it that reports drift of its own (a map file
/// out of step with memory, an include edited without a reload), which a
/// switch to the same colour repairs.
pub fn intents(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    for (name, router) in &i.config.routers {
        let observed = i.live.routers.get(name);
        let now = observed.and_then(|r| r.live.clone());
        let repair = observed.is_some_and(|r| !r.drift.is_empty());
        if now.as_deref() != Some(router.live.as_str()) || repair {
            let intent = Intent {
                from: now,
                to: router.live.clone(),
            };
            d.intents.insert(name.clone(), intent);
        }
    }
    Ok(())
}

impl Inputs<'_> {
    /// The routers sending traffic to `colour` now: those of the
    /// configuration, as they say (a fleet whose instances disagree serves
    /// every colour one of them serves), and those leaving it, as the state
    /// last recorded them (cutover stops managing them, not their traffic).
    pub fn serving(&self, colour: &str) -> Vec<&String> {
        let live = self
            .live
            .routers
            .iter()
            .filter(|(_, r)| r.serving().any(|c| c == colour))
            .map(|(n, _)| n);
        let forgotten = self
            .state
            .routers
            .iter()
            .filter(|(n, r)| {
                !self.config.routers.contains_key(*n) && r.live.as_deref() == Some(colour)
            })
            .map(|(n, _)| n);
        let renamed = self
            .live
            .moved_from
            .keys()
            .filter(|n| self.still_under_old_name(n, colour));
        live.chain(forgotten).chain(renamed).collect()
    }

    /// Whether `router`, renamed by a `moved` block in this plan, may still
    /// send traffic to `colour` under its old name: the state recorded it
    /// live there, and the read under the new name does not show it (the
    /// router names its entry after the router, and the entry of the old
    /// name is not cutover's to see any more).
    pub fn still_under_old_name(&self, router: &str, colour: &str) -> bool {
        self.live.moved_from.contains_key(router)
            && self.config.routers.contains_key(router)
            && self
                .state
                .routers
                .get(router)
                .is_some_and(|r| r.live.as_deref() == Some(colour))
            && !self
                .live
                .routers
                .get(router)
                .is_some_and(|r| r.serving().any(|c| c == colour))
    }
}

/// Whether an environment serves traffic when its step runs: idle, live
/// (some router keeps sending it traffic), or drained (every router that
/// sends it traffic now, `serving`, switches away from it in this plan).
pub fn traffic(name: &str, intents: &BTreeMap<String, Intent>, serving: &[&String]) -> Traffic {
    let mut serving = serving.iter().copied().peekable();
    if serving.peek().is_none() {
        return Traffic::Idle;
    }
    // A router switched to the colour it already serves (a repair) does
    // not take traffic away from it.
    let drained = |r: &String| intents.get(r).is_some_and(|i| i.drains() == Some(name));
    if serving.all(drained) {
        Traffic::Drained
    } else {
        Traffic::Live
    }
}

/// A change to an environment of the configuration that has a backend.
pub fn environment_changes(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    for (name, env) in &i.config.environments {
        let Some(backend) = &env.backend else {
            // Deployed by something else: cutover only reads and routes.
            continue;
        };
        let Some((action, changes)) = environment_action(i, name, env) else {
            continue;
        };
        d.add(StepKind::Environment {
            action,
            name: name.clone(),
            traffic: traffic(name, &d.intents, &i.serving(name)),
            changes,
            spec: environment_spec(i.config, env),
            backend: backend.kind.clone(),
        })?;
    }
    Ok(())
}

/// What happens to one environment, and the attributes that change.
fn environment_action(
    i: &Inputs<'_>,
    name: &str,
    env: &Environment,
) -> Option<(Action, Vec<AttributeChange>)> {
    let observed = i.live.environments.get(name).cloned().unwrap_or_default();
    // The state and the live world hold sensitive values as markers
    // (plan::sensitive): compare in that form, so a secret is never
    // "changed" just because it is hidden.
    let desired_release = i.secrets.release(name, &env.release);
    let release_change = |before: Option<String>| {
        change(
            "release",
            before.map(Value::String),
            Some(Value::String(env.release.clone())),
            false,
        )
    };
    if !observed.exists {
        return Some((Action::Create, create_changes(env)));
    }
    let Some(rec) = i.state.environments.get(name) else {
        // Running, but cutover never deployed it: adopt by redeploying only
        // when the release differs from what it reports.
        return match &observed.release {
            Some(r) if *r == desired_release => None,
            _ => Some((Action::Update, vec![release_change(observed.release)])),
        };
    };
    let backend = env.backend.as_ref().map_or("", |b| b.kind.as_str());
    let mut changes = Vec::new();
    // A value recorded in clear before it was made sensitive compares (and
    // shows) as its marker too.
    let release_before = observed.release.unwrap_or_else(|| rec.release.clone());
    let release_before = i.secrets.release(name, &release_before);
    if release_before != desired_release {
        changes.push(release_change(Some(release_before)));
    }
    let endpoints = i.secrets.shown_endpoints(name, &env.endpoints);
    let recorded = i.secrets.shown_endpoints(name, &rec.endpoints);
    let moved = *recorded != *endpoints || rec.backend != backend;
    if *recorded != *endpoints {
        let (before, after) = (&rec.endpoints, &env.endpoints);
        changes.push(change(
            "endpoints",
            Some(serde_json::json!(before)),
            Some(serde_json::json!(after)),
            false,
        ));
    }
    if rec.backend != backend {
        changes.push(change(
            "backend",
            Some(Value::String(rec.backend.clone())),
            Some(Value::String(backend.to_owned())),
            false,
        ));
    }
    let null = Value::Null;
    let settings = env.backend.as_ref().map_or(&null, |b| &b.body);
    settings_changes(
        backend,
        &i.secrets.shown_settings(name, &rec.settings),
        &i.secrets.shown_settings(name, settings),
        &mut changes,
    );
    match (changes.is_empty(), moved) {
        (true, _) => None,
        (false, true) => Some((Action::Replace, changes)),
        (false, false) => Some((Action::Update, changes)),
    }
}

fn change(
    name: &str,
    before: Option<Value>,
    after: Option<Value>,
    sensitive: bool,
) -> AttributeChange {
    AttributeChange {
        name: name.to_string(),
        before,
        after,
        sensitive,
    }
}

fn create_changes(env: &Environment) -> Vec<AttributeChange> {
    let mut out = vec![
        change(
            "release",
            None,
            Some(Value::String(env.release.clone())),
            false,
        ),
        change(
            "endpoints",
            None,
            Some(serde_json::json!(env.endpoints)),
            false,
        ),
    ];
    if let Some(b) = &env.backend {
        out.push(change(
            "backend",
            None,
            Some(Value::String(b.kind.clone())),
            false,
        ));
    }
    out
}

/// One change per top-level setting that differs, e.g. `process.command`.
fn settings_changes(kind: &str, before: &Value, after: &Value, out: &mut Vec<AttributeChange>) {
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        if b.get(k) != a.get(k) {
            let name = format!("{kind}.{k}");
            out.push(change(&name, b.get(k).cloned(), a.get(k).cloned(), false));
        }
    }
}

/// The instance of the configuration a colour that left it most likely
/// became: one of a block of its own name, given `for_each` or `count`
/// since (`green` -> `green["web"]`).
fn instance_of_its_name<'c>(config: &'c Config, name: &str) -> Option<&'c String> {
    cutover_provider::name::instances_in(&config.environments, name)
        .next()
        .map(|(e, _)| e)
}

/// Rule 3: an in-place change to a colour that is live and stays live is
/// refused, with the reason and the safe alternative, unless the operator
/// passed `--allow-live-changes`. So is the replacement of a live colour by
/// an instance of its own block (`for_each` adopted without a `moved`
/// block): the colour serving now would be destroyed once a new one took
/// its traffic, where a `moved` block keeps it.
pub fn refuse_live_changes(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    if i.options.allow_live_changes {
        return Ok(());
    }
    let serving = |env: &str| i.serving(env);
    let mut refused = Vec::new();
    for step in d.steps.values() {
        let StepKind::Environment {
            action,
            name,
            traffic,
            ..
        } = &step.kind
        else {
            continue;
        };
        let replaced = *action == Action::Delete
            && *traffic == Traffic::Drained
            && instance_of_its_name(i.config, name).is_some();
        if *traffic != Traffic::Live && !replaced {
            continue;
        }
        let verb = match action {
            Action::Create => continue,
            Action::Update => "updated in place",
            Action::Replace => "replaced",
            Action::Delete if replaced => "destroyed once a new colour took its traffic",
            Action::Delete => "destroyed",
        };
        let serving_it = serving(name);
        let routers: Vec<String> = serving_it
            .iter()
            .map(|n| Address::router(n).to_string())
            .collect();
        // An idle colour of the same instance key first (the other colour
        // of the same service, in a fleet).
        let idle_colours = || {
            i.config
                .environments
                .keys()
                .filter(|e| *e != name && serving(e).is_empty())
        };
        let key = cutover_provider::name::key_of(name);
        let idle = idle_colours()
            .find(|e| cutover_provider::name::key_of(e) == key)
            .or_else(|| idle_colours().next());
        let alternative = match idle {
            Some(other) => format!(
                "deploy the change to the idle colour {other} and cut over to it (`live = environment.{other}`)"
            ),
            None => "add an idle colour, deploy the change there and cut over to it".to_string(),
        };
        // A colour that left the configuration while a block of its name
        // makes instances was most likely given `for_each`.
        let renamed = (*action == Action::Delete)
            .then(|| instance_of_its_name(i.config, name))
            .flatten();
        let alternative = match renamed {
            Some(new) => format!(
                "if {} stands for it now, say so with `moved {{ from = {}, to = {} }}` (the state then records it under its new address, and nothing is destroyed); otherwise, {alternative}",
                Address::environment(new),
                Address::environment(name),
                Address::environment(new)
            ),
            None => alternative,
        };
        let renamed: Vec<String> = serving_it
            .iter()
            .filter(|r| i.still_under_old_name(r, name))
            .map(|r| {
                format!(
                    "{} was {} (a `moved` block), and the router shows no entry of the new name: \
                     its entry of the old name (HAProxy's map key, Caddy's route, nginx's include \
                     are named after the router) may still send traffic here, and cutover no longer reads it, \
                     so this colour counts as live until the router shows it under the new name; \
                     keep the old names in the router block (HAProxy: `key`, `backends`), or, once \
                     nothing uses the old entry, pass --allow-live-changes",
                    Address::router(r),
                    Address::router(&i.live.moved_from[r.as_str()]),
                )
            })
            .collect();
        let renamed = if renamed.is_empty() {
            String::new()
        } else {
            format!(" ({})", renamed.join("; "))
        };
        refused.push(format!(
            "{} serves live traffic through {}{renamed} and would be {verb} while it does: \
             that would change what users get without a health-gated cut-over. Instead, {alternative}; \
             or pass --allow-live-changes to change it anyway.",
            Address::environment(name),
            routers.join(", ")
        ));
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(PlanError::LiveChange(refused))
    }
}

/// Environments that left the configuration are destroyed (those cutover
/// deployed; one without a backend was never cutover's to destroy).
pub fn environment_removals(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    for (name, rec) in &i.state.environments {
        if i.config.environments.contains_key(name) || !rec.is_managed() {
            continue;
        }
        let release = Some(Value::String(rec.release.clone()));
        d.add(StepKind::Environment {
            action: Action::Delete,
            name: name.clone(),
            traffic: traffic(name, &d.intents, &i.serving(name)),
            changes: vec![change("release", release, None, false)],
            spec: recorded_spec(i.config, name, rec),
            backend: rec.backend.clone(),
        })?;
    }
    Ok(())
}

/// Health gates: one for every colour a router switches to, and one after
/// every change to a colour that stays live (with `--allow-live-changes`).
pub fn health_gates(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let mut gated: Vec<&str> = d.intents.values().map(|i| i.to.as_str()).collect();
    for step in d.steps.values() {
        if let StepKind::Environment {
            name,
            traffic: Traffic::Live,
            action,
            ..
        } = &step.kind
        {
            if *action != Action::Delete {
                gated.push(name);
            }
        }
    }
    gated.sort_unstable();
    gated.dedup();
    let gates: Vec<StepKind> = gated
        .into_iter()
        .filter_map(|name| i.config.environments.get(name))
        .map(|env| StepKind::HealthGate {
            environment: env.name.clone(),
            endpoints: env.endpoints.clone(),
            health: env.health.clone(),
            release: Some(env.release.clone()),
        })
        .collect();
    for gate in gates {
        d.add(gate)?;
    }
    Ok(())
}

/// One cut-over per router that switches.
pub fn cutovers(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let mut made = Vec::with_capacity(d.intents.len());
    for (router, intent) in &d.intents {
        made.push(cutover_step(i, router, intent, false));
    }
    for step in made {
        d.add(step)?;
    }
    Ok(())
}

/// The cut-over of `router` as `intent` says (`rollback`: made by `cutover
/// rollback`, which marks the router in the state).
pub fn cutover_step(i: &Inputs<'_>, router: &str, intent: &Intent, rollback: bool) -> StepKind {
    let cfg = &i.config.routers[router];
    let (from, to) = (&intent.from, &intent.to);
    let spec = step_spec(i.config, router, &[from.as_deref(), Some(to.as_str())])
        .expect("the router of an intent is in the configuration");
    let target = spec
        .colour(to)
        .cloned()
        .unwrap_or(cutover_provider::Colour {
            name: to.clone(),
            endpoints: vec![],
        });
    let reason = i
        .state
        .routers
        .get(router)
        .filter(|r| r.rolled_back && r.live == *from && !rollback)
        .map(|r| {
            let on = r.live.as_deref().unwrap_or("nothing");
            format!(
                "router.{router} is on {on} because of `cutover rollback`; the configuration still says {to}, so applying cuts over to {to} again (to stay on {on}, change `live` in the configuration)"
            )
        });
    StepKind::Cutover {
        router: router.to_owned(),
        from: from.clone(),
        to: to.clone(),
        from_release: from.as_deref().and_then(|f| release_now(i, f)),
        from_identity: from
            .as_deref()
            .and_then(|f| i.live.environments.get(f))
            .and_then(|l| l.identity.clone()),
        from_raw: i
            .live
            .routers
            .get(router)
            .filter(|_| from.is_none())
            .and_then(|r| r.raw.clone()),
        // The release the target runs after this apply: as configured, or,
        // for a rollback (which deploys nothing), as it runs now.
        to_release: if rollback {
            release_now(i, to)
        } else {
            i.config.environments.get(to).map(|e| e.release.clone())
        },
        spec,
        target,
        backend: cfg.backend.kind.clone(),
        verify: cfg.verify.clone().map(Box::new),
        reason,
        ready_timeout: cfg.ready_timeout,
        rollback,
        after_checks: Vec::new(),
        instances: i.live.routers.get(router).map_or_else(Vec::new, |r| {
            r.instances.iter().map(|inst| inst.name.clone()).collect()
        }),
    }
}

/// The release `env` serves now: as it reports it, else as recorded, else
/// as configured.
pub fn release_now(i: &Inputs<'_>, env: &str) -> Option<String> {
    let configured = || i.config.environments.get(env).map(|e| e.release.clone());
    i.live
        .environments
        .get(env)
        .and_then(|l| l.release.clone())
        .or_else(|| i.state.environments.get(env).map(|e| e.release.clone()))
        .or_else(configured)
}

/// Drain: the colour a cut-over takes traffic away from keeps serving its
/// open connections for the router's `drain` before it changes; with
/// `drain_until_idle`, until the router counts none open, at most `drain`
/// (by time when the router's backend cannot count them).
pub fn drains(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let mut made = Vec::new();
    for (router, intent) in &d.intents {
        let cfg = &i.config.routers[router];
        let Some(from) = intent.drains() else {
            continue;
        };
        let drained_change = d.environment(from).is_some_and(|s| {
            matches!(
                s.kind,
                StepKind::Environment {
                    traffic: Traffic::Drained,
                    ..
                }
            )
        });
        let drain_ms = u64::try_from(cfg.drain.as_millis()).unwrap_or(u64::MAX);
        // The router's own bound for the colour it serves now (`from`): a
        // floor longer than `drain` is what the drain waits, by time.
        let floor = i
            .live
            .drain_floors
            .get(router)
            .filter(|f| f.at_least_ms > drain_ms)
            .filter(|_| i.live.routers.get(router).and_then(|r| r.live.as_deref()) == Some(from));
        if !drained_change || (drain_ms == 0 && floor.is_none()) {
            continue;
        }
        let until_idle = cfg.drain_until_idle && floor.is_none();
        let counts_sessions = until_idle && i.live.counts_sessions.contains(router);
        let spec = counts_sessions
            .then(|| step_spec(i.config, router, &[Some(from)]))
            .flatten();
        made.push(StepKind::Drain {
            router: router.clone(),
            colour: from.to_owned(),
            duration_ms: floor.map_or(drain_ms, |f| f.at_least_ms),
            until_idle,
            counts_sessions,
            backend: until_idle.then(|| cfg.backend.kind.clone()),
            spec,
            floor: floor.cloned(),
        });
    }
    for step in made {
        d.add(step)?;
    }
    Ok(())
}

/// The least a settle waits for streams to end (a router's own `drain`,
/// when longer, is its maximum instead): longer than HAProxy's connection
/// retry (one second), so a request waiting in it to a colour whose process
/// died ends before the colour's new process can answer it.
pub const SETTLE_MOST: std::time::Duration = std::time::Duration::from_secs(5);

/// Settles: before an environment that is not live is changed, every router
/// that counts sessions and may still carry streams to it (it sends the
/// colour traffic now or did at its last switch, or shows it on its
/// preview) is asked until it holds none, at most [`SETTLE_MOST`] or its
/// `drain`. A router whose counting drain of this colour, at least as long,
/// is in the plan already waits in that drain.
pub fn settles(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let counting = &i.live.counts_sessions;
    let changes = d
        .steps
        .values()
        .any(|s| matches!(s.kind, StepKind::Environment { .. }));
    if counting.is_empty() || !changes {
        return Ok(());
    }
    // Which counting routers have (or had) streams to each colour: one pass
    // over the routers, not one per environment.
    let mut related: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for router in counting
        .iter()
        .filter(|r| i.config.routers.contains_key(*r))
    {
        let observed = i.live.routers.get(router);
        let recorded = i.state.routers.get(router);
        let mut colours: Vec<&str> = [
            observed.and_then(|r| r.preview.as_deref()),
            recorded.and_then(|r| r.live.as_deref()),
            recorded.and_then(|r| r.previous.as_deref()),
            recorded.and_then(|r| r.preview.as_deref()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(r) = observed {
            // What it (or any instance of a fleet) serves or previews now.
            colours.extend(r.serving());
            colours.extend(r.instances.iter().filter_map(|i| i.preview.as_deref()));
        }
        colours.sort_unstable();
        colours.dedup();
        for colour in colours {
            related.entry(colour).or_default().push(router);
        }
    }
    // A shorter drain can end while a stream is still in the router's
    // retry: the settle asks that router too.
    let settle_ms = u64::try_from(SETTLE_MOST.as_millis()).unwrap_or(u64::MAX);
    let mut made = Vec::new();
    for step in d.steps.values() {
        let StepKind::Environment { name, traffic, .. } = &step.kind else {
            continue;
        };
        if *traffic == Traffic::Live {
            continue;
        }
        let Some(routers) = related.get(name.as_str()) else {
            continue;
        };
        let drained_by = |router: &str| {
            d.steps
                .get(&StepId::Drain(router.to_owned()))
                .is_some_and(|s| {
                    matches!(
                        &s.kind,
                        StepKind::Drain { colour, counts_sessions: true, duration_ms, .. }
                            if colour == name && *duration_ms >= settle_ms
                    )
                })
        };
        let mut most = SETTLE_MOST;
        let mut waits = Vec::new();
        for router in routers.iter().filter(|r| !drained_by(r)) {
            let cfg = &i.config.routers[router.as_str()];
            most = most.max(cfg.drain);
            let spec = step_spec(i.config, router, &[Some(name)]).expect("router is in the config");
            waits.push(SettleRouter {
                router: (*router).clone(),
                backend: cfg.backend.kind.clone(),
                spec,
            });
        }
        if waits.is_empty() {
            continue;
        }
        made.push(StepKind::Settle {
            environment: name.clone(),
            routers: waits,
            most_ms: u64::try_from(most.as_millis()).unwrap_or(u64::MAX),
            after_cutover: *traffic == Traffic::Drained,
        });
    }
    for step in made {
        d.add(step)?;
    }
    Ok(())
}

/// Previews: the router's preview listener or route is pointed at the
/// colour the configuration names, after that colour's change; before the
/// router's cut-over, or after it when the preview moves to the colour the
/// cut-over drains. A router without `preview` whose preview still shows a
/// colour (on any of its instances) has it removed. Never live traffic.
pub fn previews(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    let mut made = Vec::new();
    for (router, cfg) in &i.config.routers {
        let observed = i.live.routers.get(router);
        let Some(to) = &cfg.preview else {
            if let Some(from) = observed.and_then(|r| r.any_preview()) {
                let spec =
                    step_spec(i.config, router, &[Some(from)]).expect("router is in the config");
                made.push(StepKind::RemovePreview {
                    router: router.clone(),
                    from: from.to_owned(),
                    spec,
                    backend: cfg.backend.kind.clone(),
                });
            }
            continue;
        };
        let now = observed.and_then(|r| r.preview.clone());
        if now.as_deref() == Some(to.as_str()) {
            // Already there; a redeploy of `to` shows through it.
            continue;
        }
        let spec = step_spec(i.config, router, &[now.as_deref(), Some(to.as_str())])
            .expect("router is in the config");
        let Some(target) = spec.colour(to).cloned() else {
            continue;
        };
        let after_cutover = d
            .intents
            .get(router)
            .is_some_and(|intent| intent.drains() == Some(to.as_str()));
        made.push(StepKind::Preview {
            router: router.clone(),
            from: now,
            to: to.clone(),
            spec,
            target,
            backend: cfg.backend.kind.clone(),
            after_cutover,
            ready_timeout: cfg.ready_timeout,
        });
    }
    for step in made {
        d.add(step)?;
    }
    Ok(())
}

/// Routers that left the configuration leave the state (their traffic is
/// left as it is).
pub fn forgotten_routers(i: &Inputs<'_>, d: &mut Draft) -> Result<(), PlanError> {
    for name in i.state.routers.keys() {
        if !i.config.routers.contains_key(name) {
            d.add(StepKind::ForgetRouter {
                router: name.clone(),
                live: i.state.routers[name].live.clone(),
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "passes_tests.rs"]
mod tests;
