//! The apply walk: run a plan's steps in graph order, independent steps
//! concurrently (at most `parallelism`), stop at the first failure, and save
//! the state after every completed step.
//!
//! Invariant: the state is only mutated here, on the walker's own task, one
//! completed step at a time, and written atomically before the next step is
//! scheduled; so a crash at any moment leaves a state that matches what was
//! really done up to the last completed step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::observer::{Event, Observer};
use super::Engine;
use crate::plan::document::{Action, Step, StepKind};
use crate::plan::saved::Planned;
use crate::state::model::{EnvironmentState, RouterState, State};

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplyReport {
    /// Steps that finished, in the order they finished.
    pub done: Vec<String>,
    /// The step that failed, and why.
    pub failed: Option<(String, String)>,
    /// Steps that did not run because of the failure.
    pub not_run: Vec<String>,
    /// Serial of the state after the apply.
    pub serial: u64,
    /// Wall time of the whole apply.
    pub elapsed: Duration,
}

/// How a finished step changes the state.
enum Mutation {
    None,
    Environment(String, Option<EnvironmentState>),
    Router(String, Option<RouterState>),
}

/// A human description of a step, for progress lines.
pub fn describe(step: &Step) -> String {
    match &step.kind {
        StepKind::Environment {
            action, name, spec, ..
        } => match action {
            Action::Create => format!("creating environment.{name} (release {})", spec.release),
            Action::Update => format!("updating environment.{name} to release {}", spec.release),
            Action::Replace => format!("replacing environment.{name} (release {})", spec.release),
            Action::Delete => format!("destroying environment.{name}"),
        },
        StepKind::HealthGate { environment, .. } => {
            format!("health gate: waiting for environment.{environment}")
        }
        StepKind::Cutover {
            router, from, to, ..
        } => {
            format!(
                "cutting over router.{router}: {} -> {to}",
                from.as_deref().unwrap_or("(none)")
            )
        }
        StepKind::ForgetRouter { router } => format!("forgetting router.{router}"),
    }
}

impl Engine {
    /// Apply `planned` to the state at `state_path` (the caller holds the
    /// lock). `state` is the state the plan was made against, or a new one.
    pub async fn apply(
        &self,
        planned: &Planned,
        mut state: State,
        state_path: PathBuf,
        observer: Arc<dyn Observer>,
    ) -> Result<ApplyReport, crate::state::StateError> {
        let start = Instant::now();
        let steps: BTreeMap<String, Step> = planned
            .document
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.clone()))
            .collect();
        let order: Vec<String> = planned
            .document
            .steps
            .iter()
            .map(|s| s.id.clone())
            .collect();
        let mut report = ApplyReport::default();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        let mut started: BTreeSet<String> = BTreeSet::new();
        let mut tasks: JoinSet<(String, Duration, Result<Mutation, String>)> = JoinSet::new();
        let mut stopping = false;

        // A state that does not exist on disk yet is written even when the
        // plan changes nothing, so the lineage is fixed from the first apply.
        if !state_path.exists() {
            crate::state::save(&state_path, &state)?;
        }

        loop {
            if !stopping {
                for id in &order {
                    if started.contains(id) || tasks.len() >= self.parallelism {
                        continue;
                    }
                    let step = &steps[id];
                    if step.depends_on.iter().all(|d| finished.contains(d)) {
                        started.insert(id.clone());
                        observer.event(&Event::StepStarted {
                            id: id.clone(),
                            description: describe(step),
                        });
                        let engine = self.clone();
                        let step = step.clone();
                        let private = match &step.kind {
                            StepKind::Environment { name, .. } => state
                                .environments
                                .get(name)
                                .map(|e| e.private.clone())
                                .unwrap_or_default(),
                            _ => serde_json::Value::Null,
                        };
                        let previous_router = match &step.kind {
                            StepKind::Cutover { router, .. } => state.routers.get(router).cloned(),
                            _ => None,
                        };
                        let observer = observer.clone();
                        tasks.spawn(async move {
                            let t = Instant::now();
                            let r = engine
                                .run_step(&step, private, previous_router, observer.as_ref())
                                .await;
                            (step.id.clone(), t.elapsed(), r)
                        });
                    }
                }
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (id, elapsed, result) = joined.expect("apply steps do not panic");
            match result {
                Ok(mutation) => {
                    let before = state.clone();
                    match mutation {
                        Mutation::None => {}
                        Mutation::Environment(name, Some(e)) => {
                            state.environments.insert(name, e);
                        }
                        Mutation::Environment(name, None) => {
                            state.environments.remove(&name);
                        }
                        Mutation::Router(name, Some(r)) => {
                            state.routers.insert(name, r);
                        }
                        Mutation::Router(name, None) => {
                            state.routers.remove(&name);
                        }
                    }
                    if state != before {
                        state.serial += 1;
                        crate::state::save(&state_path, &state)?;
                        observer.event(&Event::StateSaved {
                            serial: state.serial,
                        });
                    }
                    observer.event(&Event::StepFinished {
                        id: id.clone(),
                        elapsed,
                        error: None,
                    });
                    finished.insert(id.clone());
                    report.done.push(id);
                }
                Err(e) => {
                    observer.event(&Event::StepFinished {
                        id: id.clone(),
                        elapsed,
                        error: Some(e.clone()),
                    });
                    if report.failed.is_none() {
                        report.failed = Some((id, e));
                    }
                    stopping = true;
                }
            }
        }

        if report.failed.is_none() {
            let before = state.clone();
            for rec in &planned.records {
                let previous = state
                    .routers
                    .get(&rec.router)
                    .and_then(|r| r.previous.clone());
                state.routers.insert(
                    rec.router.clone(),
                    RouterState {
                        backend: rec.backend.clone(),
                        live: rec.live.clone(),
                        previous,
                    },
                );
            }
            if state != before {
                state.serial += 1;
                crate::state::save(&state_path, &state)?;
                observer.event(&Event::StateSaved {
                    serial: state.serial,
                });
            }
        }
        report.not_run = order
            .into_iter()
            .filter(|id| !started.contains(id))
            .collect();
        report.serial = state.serial;
        report.elapsed = start.elapsed();
        Ok(report)
    }

    async fn run_step(
        &self,
        step: &Step,
        private: serde_json::Value,
        previous_router: Option<RouterState>,
        observer: &dyn Observer,
    ) -> Result<Mutation, String> {
        match &step.kind {
            StepKind::Environment {
                action,
                name,
                spec,
                backend,
                ..
            } => {
                let provider = self
                    .providers
                    .environment(backend)
                    .ok_or_else(|| format!("environment.{name}: unknown backend `{backend}`"))?;
                match action {
                    Action::Delete => {
                        provider
                            .destroy(spec, &private)
                            .await
                            .map_err(|e| format!("environment.{name}: {e}"))?;
                        Ok(Mutation::Environment(name.clone(), None))
                    }
                    Action::Create | Action::Update | Action::Replace => {
                        let private = if *action == Action::Replace {
                            provider
                                .destroy(spec, &private)
                                .await
                                .map_err(|e| format!("environment.{name}: {e}"))?;
                            serde_json::Value::Null
                        } else {
                            private
                        };
                        let deployed = provider
                            .deploy(spec, &private)
                            .await
                            .map_err(|e| format!("environment.{name}: {e}"))?;
                        Ok(Mutation::Environment(
                            name.clone(),
                            Some(EnvironmentState {
                                backend: backend.clone(),
                                release: spec.release.clone(),
                                endpoints: spec.endpoints.clone(),
                                settings: spec.settings.clone(),
                                identity: deployed.identity,
                                private: deployed.private,
                            }),
                        ))
                    }
                }
            }
            StepKind::HealthGate {
                environment,
                endpoints,
                health,
            } => {
                // The release the environment must report, from the step that
                // deployed it (or its config), when `release_path` is set.
                self.health
                    .gate(environment, endpoints, health, None, observer)
                    .await?;
                Ok(Mutation::None)
            }
            StepKind::Cutover {
                router,
                from,
                to,
                spec,
                target,
                backend,
                ..
            } => {
                let provider = self
                    .providers
                    .router(backend)
                    .ok_or_else(|| format!("router.{router}: unknown backend `{backend}`"))?;
                provider
                    .switch(spec, target)
                    .await
                    .map_err(|e| format!("router.{router}: {e}"))?;
                let previous = match from {
                    Some(f) if f != to => Some(f.clone()),
                    _ => previous_router.and_then(|r| r.previous),
                };
                Ok(Mutation::Router(
                    router.clone(),
                    Some(RouterState {
                        backend: backend.clone(),
                        live: Some(to.clone()),
                        previous,
                    }),
                ))
            }
            StepKind::ForgetRouter { router } => Ok(Mutation::Router(router.clone(), None)),
        }
    }
}
