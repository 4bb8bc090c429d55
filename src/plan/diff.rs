//! The diff: which steps a plan needs, and in which order.

use std::collections::BTreeMap;

use cutover_provider::{
    Colour, Colours, EnvironmentDriftKind, EnvironmentSpec, LiveEnvironment, LiveRouter, RouterSpec,
};
use serde_json::Value;

use super::document::*;
use crate::config::model::{Config, Environment};
use crate::graph::{self, Node, StepGraph};
use crate::state::model::State;

/// What the refresh read from the live systems.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Each environment (of the config or the state) as its backend reads it.
    pub environments: BTreeMap<String, LiveEnvironment>,
    /// Each router of the config as the router itself reports it.
    pub routers: BTreeMap<String, LiveRouter>,
}

/// A plan that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The steps form a cycle (a bug in the ordering rules or the config).
    #[error(transparent)]
    Cycle(#[from] graph::CycleError),
    /// The plan would change a colour that serves live traffic and keeps
    /// serving it (DESIGN.md §3, rule 3).
    #[error("{}", .0.join("\n"))]
    LiveChange(Vec<String>),
}

/// Choices the operator makes explicitly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Allow in-place changes to a colour that serves live traffic and keeps
    /// serving it (`--allow-live-changes`).
    pub allow_live_changes: bool,
}

/// The backend kind of an environment (`none` without a backend block).
pub fn environment_backend(env: &Environment) -> String {
    env.backend
        .as_ref()
        .map_or_else(|| "none".to_string(), |b| b.kind.clone())
}

/// The spec handed to an environment's provider.
pub fn environment_spec(config: &Config, env: &Environment) -> EnvironmentSpec {
    EnvironmentSpec {
        name: env.name.clone(),
        release: env.release.clone(),
        endpoints: env.endpoints.clone(),
        settings: env.backend.as_ref().map_or(Value::Null, |b| b.body.clone()),
        workdir: config.dir.clone(),
    }
}

/// Every colour a router may send traffic to, once, to be shared by every
/// router's spec (see [`router_spec_with`]).
pub fn colours(config: &Config) -> Colours {
    config
        .environments
        .values()
        .map(|e| Colour {
            name: e.name.clone(),
            endpoints: e.endpoints.clone(),
        })
        .collect()
}

/// The spec handed to a router's provider.
pub fn router_spec(config: &Config, name: &str) -> Option<RouterSpec> {
    router_spec_with(config, name, &colours(config))
}

/// The spec handed to a router's provider, sharing `colours` (from
/// [`colours`]): use this when making specs for many routers, so that each
/// costs O(1) rather than a copy of every environment.
pub fn router_spec_with(config: &Config, name: &str, colours: &Colours) -> Option<RouterSpec> {
    let router = config.routers.get(name)?;
    Some(RouterSpec::new(
        router.name.clone(),
        colours.clone(),
        router.backend.body.clone(),
        config.dir.clone(),
    ))
}

/// The spec a cut-over or preview step carries: only the colours that step
/// can involve (`involved`, the router's `live` and `preview`, and any colour
/// its backend block names in a `backends` map), so that a plan of N routers
/// over N colours stays O(N) in size instead of carrying every colour in
/// every step. Refresh still gives providers every colour.
pub fn step_spec(config: &Config, name: &str, involved: &[Option<&str>]) -> Option<RouterSpec> {
    let router = config.routers.get(name)?;
    let mut wanted: std::collections::BTreeSet<&str> = involved.iter().flatten().copied().collect();
    wanted.insert(router.live.as_str());
    if let Some(p) = &router.preview {
        wanted.insert(p.as_str());
    }
    if let Some(backends) = router
        .backend
        .body
        .get("backends")
        .and_then(Value::as_object)
    {
        wanted.extend(backends.keys().map(String::as_str));
    }
    // Look each wanted colour up (the set is small) rather than scanning every
    // environment: a plan makes one spec per step, so a scan is quadratic.
    let colours: Colours = wanted
        .iter()
        .filter_map(|name| config.environments.get(*name))
        .map(|e| Colour {
            name: e.name.clone(),
            endpoints: e.endpoints.clone(),
        })
        .collect();
    router_spec_with(config, name, &colours)
}

/// Make the plan.
pub fn plan(
    config: &Config,
    state: Option<&State>,
    live: &Live,
) -> Result<PlanDocument, PlanError> {
    plan_with(config, state, live, &PlanOptions::default())
}

/// Make the plan, with the operator's explicit choices.
pub fn plan_with(
    config: &Config,
    state: Option<&State>,
    live: &Live,
    options: &PlanOptions,
) -> Result<PlanDocument, PlanError> {
    let empty = State {
        version: crate::state::model::STATE_VERSION,
        lineage: String::new(),
        serial: 0,
        environments: BTreeMap::new(),
        routers: BTreeMap::new(),
    };
    let st = state.unwrap_or(&empty);
    let scrubber = super::sensitive::Scrubber::new(&config.secrets);
    let mut steps: BTreeMap<String, Step> = BTreeMap::new();
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();

    // Which router sends traffic where, now and after this plan.
    let live_of = |router: &str| live.routers.get(router).and_then(|r| r.live.clone());
    let mut cutovers: BTreeMap<String, (Option<String>, String)> = BTreeMap::new();
    for (name, router) in &config.routers {
        let now = live_of(name);
        // A router on the right colour that reports drift of its own (a map
        // file out of step with memory, an include edited without a reload)
        // is switched to that colour again, which repairs it.
        let repair = live.routers.get(name).is_some_and(|r| !r.drift.is_empty());
        if now.as_deref() != Some(router.live.as_str()) || repair {
            cutovers.insert(name.clone(), (now, router.live.clone()));
        }
    }

    let drift = drift(config, st, live);

    // Environments of the config.
    for (name, env) in &config.environments {
        let backend = environment_backend(env);
        let observed = live.environments.get(name).cloned().unwrap_or_default();
        let recorded = st.environments.get(name);
        if backend == "none" {
            continue;
        }
        let spec = environment_spec(config, env);
        // The state holds scrubbed values (plan::sensitive): compare in that
        // form, so a secret is never "changed" just because it is hidden.
        let desired_release = scrubber.text(&env.release);
        let desired_settings = scrubber.value(&spec.settings);
        let mut changes = Vec::new();
        let action = match recorded {
            _ if !observed.exists => {
                changes = create_changes(env);
                Some(Action::Create)
            }
            None => {
                // Running, but cutover never deployed it: adopt by redeploying
                // only when the release differs from what it reports.
                match &observed.release {
                    Some(r) if *r == desired_release => None,
                    _ => {
                        changes.push(change(
                            "release",
                            observed.release.clone().map(Value::String),
                            Some(Value::String(env.release.clone())),
                            env.sensitive_release,
                        ));
                        Some(Action::Update)
                    }
                }
            }
            Some(rec) => {
                let release_before = observed
                    .release
                    .clone()
                    .unwrap_or_else(|| rec.release.clone());
                if release_before != desired_release {
                    changes.push(change(
                        "release",
                        Some(Value::String(release_before)),
                        Some(Value::String(env.release.clone())),
                        env.sensitive_release,
                    ));
                }
                if rec.endpoints != env.endpoints {
                    changes.push(change(
                        "endpoints",
                        Some(serde_json::json!(rec.endpoints)),
                        Some(serde_json::json!(env.endpoints)),
                        false,
                    ));
                }
                if rec.backend != backend {
                    changes.push(change(
                        "backend",
                        Some(Value::String(rec.backend.clone())),
                        Some(Value::String(backend.clone())),
                        false,
                    ));
                }
                settings_changes(&backend, &rec.settings, &desired_settings, &mut changes);
                if changes.is_empty() {
                    None
                } else if rec.endpoints != env.endpoints || rec.backend != backend {
                    Some(Action::Replace)
                } else {
                    Some(Action::Update)
                }
            }
        };
        if let Some(action) = action {
            let (traffic, drained_by) = traffic(name, &cutovers, live);
            let id = format!("environment.{name}");
            nodes.insert(
                id.clone(),
                Node::Environment {
                    name: name.clone(),
                    drained_by,
                },
            );
            steps.insert(
                id.clone(),
                Step {
                    id,
                    depends_on: vec![],
                    kind: StepKind::Environment {
                        action,
                        name: name.clone(),
                        traffic,
                        changes,
                        spec,
                        backend,
                    },
                },
            );
        }
    }

    if !options.allow_live_changes {
        refuse_live_changes(config, &steps, live)?;
    }

    // Environments that left the config.
    for (name, rec) in &st.environments {
        if config.environments.contains_key(name) || rec.backend == "none" {
            continue;
        }
        let (traffic, drained_by) = traffic(name, &cutovers, live);
        let spec = EnvironmentSpec {
            name: name.clone(),
            release: rec.release.clone(),
            endpoints: rec.endpoints.clone(),
            settings: rec.settings.clone(),
            workdir: config.dir.clone(),
        };
        let id = format!("environment.{name}");
        nodes.insert(
            id.clone(),
            Node::Environment {
                name: name.clone(),
                drained_by,
            },
        );
        let changes = vec![change(
            "release",
            Some(Value::String(rec.release.clone())),
            None,
            false,
        )];
        steps.insert(
            id.clone(),
            Step {
                id,
                depends_on: vec![],
                kind: StepKind::Environment {
                    action: Action::Delete,
                    name: name.clone(),
                    traffic,
                    changes,
                    spec,
                    backend: rec.backend.clone(),
                },
            },
        );
    }

    // Health gates: before every cut-over, and after every change to a colour
    // that stays live.
    let mut gated: Vec<String> = cutovers.values().map(|(_, to)| to.clone()).collect();
    for step in steps.values() {
        if let StepKind::Environment {
            name,
            traffic: Traffic::Live,
            action,
            ..
        } = &step.kind
        {
            if *action != Action::Delete {
                gated.push(name.clone());
            }
        }
    }
    gated.sort();
    gated.dedup();
    for name in gated {
        let Some(env) = config.environments.get(&name) else {
            continue;
        };
        let id = format!("health.{name}");
        nodes.insert(
            id.clone(),
            Node::HealthGate {
                environment: name.clone(),
            },
        );
        steps.insert(
            id.clone(),
            Step {
                id,
                depends_on: vec![],
                kind: StepKind::HealthGate {
                    environment: name.clone(),
                    endpoints: env.endpoints.clone(),
                    health: env.health.clone(),
                    release: Some(env.release.clone()),
                },
            },
        );
    }

    // Cut-overs.
    let mut rollback = Vec::new();
    for (router, (from, to)) in &cutovers {
        let cfg = &config.routers[router];
        let spec = step_spec(config, router, &[from.as_deref(), Some(to.as_str())])
            .expect("router is in the config");
        let target = spec.colour(to).cloned().unwrap_or(Colour {
            name: to.clone(),
            endpoints: vec![],
        });
        let from_release = from.as_ref().and_then(|f| release_of(config, st, live, f));
        let to_release = config.environments.get(to).map(|e| e.release.clone());
        if let Some(f) = from.as_ref().filter(|f| *f != to) {
            rollback.push(RollbackHint {
                router: router.clone(),
                to: f.clone(),
                release: from_release.clone(),
            });
        }
        let id = format!("cutover.{router}");
        nodes.insert(
            id.clone(),
            Node::Cutover {
                router: router.clone(),
                to: to.clone(),
            },
        );
        steps.insert(
            id.clone(),
            Step {
                id,
                depends_on: vec![],
                kind: StepKind::Cutover {
                    router: router.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    from_release,
                    to_release,
                    spec,
                    target,
                    backend: cfg.backend.kind.clone(),
                    verify: cfg.verify.clone(),
                    reason: st
                        .routers
                        .get(router)
                        .filter(|r| r.rolled_back && r.live == *from)
                        .map(|r| {
                            format!(
                                "router.{router} is on {} because of `cutover rollback`; the configuration still says {to}, so applying cuts over to {to} again (to stay on {}, change `live` in the configuration)",
                                r.live.as_deref().unwrap_or("nothing"),
                                r.live.as_deref().unwrap_or("it")
                            )
                        }),
                },
            },
        );
        // Drain: the colour this cut-over takes traffic away from keeps
        // serving its open connections for `drain` before it changes.
        let drains_a_change = from.as_ref().is_some_and(|f| {
            matches!(
                steps.get(&format!("environment.{f}")).map(|s| &s.kind),
                Some(StepKind::Environment {
                    traffic: Traffic::Drained,
                    ..
                })
            )
        });
        if drains_a_change && !cfg.drain.is_zero() {
            let id = format!("drain.{router}");
            nodes.insert(
                id.clone(),
                Node::Drain {
                    router: router.clone(),
                },
            );
            steps.insert(
                id.clone(),
                Step {
                    id,
                    depends_on: vec![],
                    kind: StepKind::Drain {
                        router: router.clone(),
                        colour: from.clone().unwrap_or_default(),
                        duration_ms: cfg.drain.as_millis() as u64,
                    },
                },
            );
        }
    }

    // Previews: the idle colour's own listener, after its change, before the
    // router's cut-over; never live traffic.
    for (router, cfg) in &config.routers {
        let Some(to) = &cfg.preview else { continue };
        let now = live.routers.get(router).and_then(|r| r.preview.clone());
        let changed = steps.contains_key(&format!("environment.{to}"));
        if now.as_deref() == Some(to.as_str()) && !changed {
            continue;
        }
        if now.as_deref() == Some(to.as_str()) {
            // The listener already points at `to`; the redeploy shows through it.
            continue;
        }
        let spec = step_spec(config, router, &[now.as_deref(), Some(to.as_str())])
            .expect("router is in the config");
        let Some(target) = spec.colour(to).cloned() else {
            continue;
        };
        let id = format!("preview.{router}");
        nodes.insert(
            id.clone(),
            Node::Preview {
                router: router.clone(),
                to: to.clone(),
                after_cutover: cutovers
                    .get(router)
                    .is_some_and(|(from, _)| from.as_deref() == Some(to.as_str())),
            },
        );
        steps.insert(
            id.clone(),
            Step {
                id,
                depends_on: vec![],
                kind: StepKind::Preview {
                    router: router.clone(),
                    from: now,
                    to: to.clone(),
                    spec,
                    target,
                    backend: cfg.backend.kind.clone(),
                },
            },
        );
    }

    // Routers that left the config.
    for name in st.routers.keys() {
        if !config.routers.contains_key(name) {
            let id = format!("forget.router.{name}");
            nodes.insert(
                id.clone(),
                Node::Forget {
                    router: name.clone(),
                },
            );
            steps.insert(
                id.clone(),
                Step {
                    id,
                    depends_on: vec![],
                    kind: StepKind::ForgetRouter {
                        router: name.clone(),
                    },
                },
            );
        }
    }

    // Order: the graph passes, then a stable topological order.
    let mut g = StepGraph::new(steps.keys().map(String::as_str));
    graph::add_reference_edges(&mut g, config);
    graph::add_cutover_edges(&mut g, &nodes);
    let order = g.order()?;
    let mut ordered = Vec::with_capacity(order.len());
    for id in order {
        let mut step = steps.remove(&id).expect("graph only holds plan steps");
        step.depends_on = g.dependencies(&id);
        ordered.push(step);
    }

    let summary = summarize(&ordered);
    Ok(PlanDocument {
        format_version: FORMAT_VERSION.to_string(),
        cutover_version: env!("CARGO_PKG_VERSION").to_string(),
        lineage: state.map(|s| s.lineage.clone()),
        serial: state.map_or(0, |s| s.serial),
        drift,
        steps: ordered,
        summary,
        rollback,
        fingerprint: fingerprint(live),
    })
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
    let mut out = vec![change(
        "release",
        None,
        Some(Value::String(env.release.clone())),
        env.sensitive_release,
    )];
    out.push(change(
        "endpoints",
        None,
        Some(serde_json::json!(env.endpoints)),
        false,
    ));
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
            out.push(change(
                &format!("{kind}.{k}"),
                b.get(k).cloned(),
                a.get(k).cloned(),
                false,
            ));
        }
    }
}

/// Rule 3: an in-place change to a colour that is live and stays live is
/// refused, with the reason and the safe alternative.
fn refuse_live_changes(
    config: &Config,
    steps: &BTreeMap<String, Step>,
    live: &Live,
) -> Result<(), PlanError> {
    let mut refused = Vec::new();
    for step in steps.values() {
        let StepKind::Environment {
            action,
            name,
            traffic: Traffic::Live,
            ..
        } = &step.kind
        else {
            continue;
        };
        let routers: Vec<String> = live
            .routers
            .iter()
            .filter(|(_, r)| r.live.as_deref() == Some(name.as_str()))
            .map(|(n, _)| format!("router.{n}"))
            .collect();
        let idle: Vec<&String> = config
            .environments
            .keys()
            .filter(|e| {
                *e != name
                    && !live
                        .routers
                        .values()
                        .any(|r| r.live.as_deref() == Some(e.as_str()))
            })
            .collect();
        let verb = match action {
            Action::Create => continue,
            Action::Update => "updated in place",
            Action::Replace => "replaced",
            Action::Delete => "destroyed",
        };
        let alternative = match idle.first() {
            Some(other) => format!(
                "deploy the change to the idle colour {other} and cut over to it (`live = environment.{other}`)"
            ),
            None => "add an idle colour, deploy the change there and cut over to it".to_string(),
        };
        refused.push(format!(
            "environment.{name} serves live traffic through {} and would be {verb} while it does: \
             that would change what users get without a health-gated cut-over. Instead, {alternative}; \
             or pass --allow-live-changes to change it anyway.",
            routers.join(", ")
        ));
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(PlanError::LiveChange(refused))
    }
}

/// Whether an environment serves traffic when its step runs, and which
/// cut-overs of this plan take traffic away from it.
fn traffic(
    name: &str,
    cutovers: &BTreeMap<String, (Option<String>, String)>,
    live: &Live,
) -> (Traffic, Vec<String>) {
    let serving: Vec<&String> = live
        .routers
        .iter()
        .filter(|(_, r)| r.live.as_deref() == Some(name))
        .map(|(n, _)| n)
        .collect();
    if serving.is_empty() {
        return (Traffic::Idle, vec![]);
    }
    let drained_by: Vec<String> = serving
        .iter()
        // A router switched to the colour it already serves (a repair) does
        // not take traffic away from it.
        .filter(|r| cutovers.get(r.as_str()).is_some_and(|(_, to)| to != name))
        .map(|r| r.to_string())
        .collect();
    if drained_by.len() == serving.len() {
        (Traffic::Drained, drained_by)
    } else {
        (Traffic::Live, drained_by)
    }
}

fn release_of(config: &Config, st: &State, live: &Live, env: &str) -> Option<String> {
    live.environments
        .get(env)
        .and_then(|l| l.release.clone())
        .or_else(|| st.environments.get(env).map(|e| e.release.clone()))
        .or_else(|| config.environments.get(env).map(|e| e.release.clone()))
}

/// Everything changed outside cutover: routers first, then environments,
/// each in name order.
pub fn drift(config: &Config, st: &State, live: &Live) -> Vec<Drift> {
    let mut out = Vec::new();
    router_drift(config, st, live, &mut out);
    for name in config.environments.keys() {
        let observed = live.environments.get(name).cloned().unwrap_or_default();
        environment_drift(name, &observed, st.environments.get(name), &mut out);
    }
    out
}

fn router_drift(config: &Config, st: &State, live: &Live, drift: &mut Vec<Drift>) {
    for (name, observed) in &live.routers {
        // What the provider itself noticed (an include edited without a
        // reload, ...), whatever the state says.
        for noticed in &observed.drift {
            drift.push(Drift {
                address: format!("router.{name}"),
                kind: DriftKind::RouterChanged,
                message: format!("router.{name}: {}", noticed.message),
            });
        }
    }
    for (name, rec) in &st.routers {
        let Some(observed) = live.routers.get(name) else {
            continue;
        };
        if !config.routers.contains_key(name) || rec.live == observed.live {
            continue;
        }
        if observed.live.is_none() && observed.raw.is_none() {
            drift.push(Drift {
                address: format!("router.{name}"),
                kind: DriftKind::RouterChanged,
                message: format!(
                    "router.{name} no longer holds cutover's switch (cutover left it on {}): the router lost it, e.g. it was restarted or reloaded from a config file without it",
                    rec.live.as_deref().unwrap_or("nothing")
                ),
            });
            continue;
        }
        let now = observed
            .live
            .clone()
            .or_else(|| {
                observed
                    .raw
                    .clone()
                    .map(|r| format!("{r} (not a known colour)"))
            })
            .unwrap_or_else(|| "nothing".into());
        let was = rec.live.clone().unwrap_or_else(|| "nothing".into());
        drift.push(Drift {
            address: format!("router.{name}"),
            kind: DriftKind::RouterSwitched,
            message: format!("router.{name} was switched outside cutover: cutover left it on {was}, it now sends traffic to {now}"),
        });
    }
}

fn environment_drift(
    name: &str,
    observed: &LiveEnvironment,
    recorded: Option<&crate::state::model::EnvironmentState>,
    drift: &mut Vec<Drift>,
) {
    let Some(rec) = recorded else { return };
    let address = format!("environment.{name}");
    for noticed in &observed.drift {
        let kind = match noticed.kind {
            EnvironmentDriftKind::Gone => DriftKind::EnvironmentGone,
            EnvironmentDriftKind::Replaced => DriftKind::EnvironmentReplaced,
            // Something else changed: replaced if something still runs.
            EnvironmentDriftKind::Changed if observed.exists => DriftKind::EnvironmentReplaced,
            EnvironmentDriftKind::Changed => DriftKind::EnvironmentGone,
        };
        drift.push(Drift {
            address: address.clone(),
            kind,
            message: format!("{address}: {}", noticed.message),
        });
    }
    if observed.exists {
        if let Some(r) = &observed.release {
            if r != &rec.release {
                drift.push(Drift {
                    address: address.clone(),
                    kind: DriftKind::ReleaseChanged,
                    message: format!(
                        "{address} runs release {r}, but cutover deployed {}",
                        rec.release
                    ),
                });
            }
        }
    }
}

fn summarize(steps: &[Step]) -> Summary {
    let mut s = Summary::default();
    for step in steps {
        match &step.kind {
            StepKind::Environment { action, .. } => match action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
            },
            StepKind::HealthGate { .. } => s.health_gates += 1,
            StepKind::Cutover { .. } => s.cutover += 1,
            StepKind::ForgetRouter { .. } => s.forget += 1,
            StepKind::Preview { .. } => s.preview += 1,
            StepKind::Drain { .. } => {}
        }
    }
    // The engine recomputes it once the state-only records are known.
    s.outcome = crate::plan::document::outcome(&s, 0);
    s
}

/// The live values a plan saw, so a saved plan can tell when they moved.
pub fn fingerprint(live: &Live) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, r) in &live.routers {
        out.insert(
            format!("router.{name}"),
            r.live
                .clone()
                .or_else(|| r.raw.clone())
                .unwrap_or_else(|| "(none)".into()),
        );
    }
    for (name, e) in &live.environments {
        let value = if e.exists {
            format!(
                "release={} identity={}",
                e.release.as_deref().unwrap_or("?"),
                e.identity.as_deref().unwrap_or("?")
            )
        } else {
            "absent".to_string()
        };
        out.insert(format!("environment.{name}"), value);
    }
    out
}

/// `--refresh-only`: the state as the live world is now, changing nothing
/// live. Routers take the colour (and preview) they really serve; an
/// environment that is gone leaves the state (so the next plan creates it);
/// one that runs takes the release, identity and private data its backend
/// reports. Returns the new state and one sentence per address that changed.
pub fn refreshed_state(config: &Config, state: &State, live: &Live) -> (State, Vec<String>) {
    let mut next = state.clone();
    let mut changed = Vec::new();
    for (name, router) in &config.routers {
        let Some(observed) = live.routers.get(name) else {
            continue;
        };
        let old = state.routers.get(name);
        let entry = crate::state::model::RouterState {
            backend: router.backend.kind.clone(),
            live: observed.live.clone(),
            previous: old.and_then(|r| r.previous.clone()),
            preview: observed.preview.clone(),
            rolled_back: false,
        };
        if old != Some(&entry) {
            changed.push(format!(
                "router.{name}: record that it sends traffic to {}",
                observed.live.as_deref().unwrap_or("nothing cutover knows")
            ));
            next.routers.insert(name.clone(), entry);
        }
    }
    for (name, rec) in &state.environments {
        let Some(observed) = live.environments.get(name) else {
            continue;
        };
        if !observed.exists {
            changed.push(format!("environment.{name}: forget it, it is gone"));
            next.environments.remove(name);
            continue;
        }
        let mut entry = rec.clone();
        if let Some(release) = &observed.release {
            entry.release = release.clone();
        }
        if observed.identity.is_some() {
            entry.identity = observed.identity.clone();
        }
        if !observed.private.is_null() {
            entry.private = observed.private.clone();
        }
        if entry != *rec {
            changed.push(format!(
                "environment.{name}: record release {} as it runs now",
                entry.release
            ));
            next.environments.insert(name.clone(), entry);
        }
    }
    (next, changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_provider::EnvironmentDrift;

    /// The drift's kind decides, never the words of its message.
    #[test]
    fn environment_drift_goes_by_kind() {
        let recorded = crate::state::model::EnvironmentState {
            backend: "exec".into(),
            release: "1".into(),
            endpoints: vec![],
            settings: Value::Null,
            identity: None,
            private: Value::Null,
        };
        let cases = [
            (
                EnvironmentDriftKind::Replaced,
                false,
                DriftKind::EnvironmentReplaced,
            ),
            (
                EnvironmentDriftKind::Gone,
                false,
                DriftKind::EnvironmentGone,
            ),
            (
                EnvironmentDriftKind::Changed,
                true,
                DriftKind::EnvironmentReplaced,
            ),
            (
                EnvironmentDriftKind::Changed,
                false,
                DriftKind::EnvironmentGone,
            ),
        ];
        for (kind, exists, expected) in cases {
            let observed = LiveEnvironment {
                exists,
                drift: vec![EnvironmentDrift::new(kind, "revision 7 took over")],
                ..Default::default()
            };
            let mut drift = Vec::new();
            environment_drift("blue", &observed, Some(&recorded), &mut drift);
            assert_eq!(drift.len(), 1, "{kind:?}");
            assert_eq!(drift[0].kind, expected, "{kind:?} exists={exists}");
            assert_eq!(drift[0].message, "environment.blue: revision 7 took over");
        }
    }
}
