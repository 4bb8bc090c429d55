//! The diff: which steps a plan needs, and in which order.

use std::collections::BTreeMap;

use cutover_provider::{Colour, EnvironmentSpec, LiveEnvironment, LiveRouter, RouterSpec};
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

/// Every colour a router may send traffic to.
pub fn colours(config: &Config) -> Vec<Colour> {
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
    let router = config.routers.get(name)?;
    Some(RouterSpec {
        name: router.name.clone(),
        colours: colours(config),
        settings: router.backend.body.clone(),
        workdir: config.dir.clone(),
    })
}

/// Make the plan.
pub fn plan(
    config: &Config,
    state: Option<&State>,
    live: &Live,
) -> Result<PlanDocument, PlanError> {
    let empty = State {
        version: crate::state::model::STATE_VERSION,
        lineage: String::new(),
        serial: 0,
        environments: BTreeMap::new(),
        routers: BTreeMap::new(),
    };
    let st = state.unwrap_or(&empty);
    let mut steps: BTreeMap<String, Step> = BTreeMap::new();
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut drift = Vec::new();

    // Which router sends traffic where, now and after this plan.
    let live_of = |router: &str| live.routers.get(router).and_then(|r| r.live.clone());
    let mut cutovers: BTreeMap<String, (Option<String>, String)> = BTreeMap::new();
    for (name, router) in &config.routers {
        let now = live_of(name);
        if now.as_deref() != Some(router.live.as_str()) {
            cutovers.insert(name.clone(), (now, router.live.clone()));
        }
    }

    router_drift(config, st, live, &mut drift);

    // Environments of the config.
    for (name, env) in &config.environments {
        let backend = environment_backend(env);
        let observed = live.environments.get(name).cloned().unwrap_or_default();
        let recorded = st.environments.get(name);
        environment_drift(name, &observed, recorded, &mut drift);
        if backend == "none" {
            continue;
        }
        let spec = environment_spec(config, env);
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
                    Some(r) if r == &env.release => None,
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
                if release_before != env.release {
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
                settings_changes(&backend, &rec.settings, &spec.settings, &mut changes);
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
                },
            },
        );
    }

    // Cut-overs.
    let mut rollback = Vec::new();
    for (router, (from, to)) in &cutovers {
        let cfg = &config.routers[router];
        let spec = router_spec(config, router).expect("router is in the config");
        let target = spec
            .colours
            .iter()
            .find(|c| &c.name == to)
            .cloned()
            .unwrap_or(Colour {
                name: to.clone(),
                endpoints: vec![],
            });
        let from_release = from.as_ref().and_then(|f| release_of(config, st, live, f));
        let to_release = config.environments.get(to).map(|e| e.release.clone());
        if let Some(f) = from {
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
        .filter(|r| cutovers.contains_key(r.as_str()))
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

fn router_drift(config: &Config, st: &State, live: &Live, drift: &mut Vec<Drift>) {
    for (name, rec) in &st.routers {
        let Some(observed) = live.routers.get(name) else {
            continue;
        };
        if !config.routers.contains_key(name) || rec.live == observed.live {
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
    for message in &observed.drift {
        let kind = if observed.exists || message.contains("replaced") {
            DriftKind::EnvironmentReplaced
        } else {
            DriftKind::EnvironmentGone
        };
        drift.push(Drift {
            address: address.clone(),
            kind,
            message: format!("{address}: {message}"),
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
        }
    }
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
