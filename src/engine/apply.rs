//! The apply walk: run a plan's steps in graph order, independent steps
//! concurrently (at most `parallelism`), stop at the first failure, and save
//! the state after every completed step.
//!
//! Invariant: the state is only mutated here, on the walker's own task, one
//! completed step at a time, and written atomically before the next step is
//! scheduled; so a crash at any moment leaves a state that matches what was
//! really done up to the last completed step.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
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
    /// Routers switched back because a later cut-over of the same apply (or
    /// their own verify) failed: (router, colour it is back on).
    pub reverted: Vec<(String, String)>,
    /// Routers that could not be switched back, and why: they need a person.
    pub revert_failed: Vec<(String, String)>,
}

/// The outcome of one step: the state changes it made, even when it failed
/// (a failed verify records both the switch and the switch back).
type StepResult = Result<Vec<Mutation>, (String, Vec<Mutation>)>;

/// Apply `mutations` to `state`; whether anything changed.
fn mutate(state: &mut State, mutations: Vec<Mutation>) -> bool {
    let before = state.clone();
    for m in mutations {
        match m {
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
    }
    *state != before
}

/// A mutation as a journal entry (`None` for no change).
fn journal_entry(m: Mutation) -> Option<crate::state::journal::Entry> {
    use crate::state::journal::Entry;
    match m {
        Mutation::None => None,
        Mutation::Environment(name, e) => Some(Entry::Environment(name, e)),
        Mutation::Router(name, r) => Some(Entry::Router(name, r)),
    }
}

/// How a finished step changes the state.
enum Mutation {
    None,
    Environment(String, Option<EnvironmentState>),
    Router(String, Option<RouterState>),
}

/// Passes events on with every sensitive value scrubbed.
struct Scrubbing {
    inner: Arc<dyn Observer>,
    scrubber: crate::plan::sensitive::Scrubber,
}

impl Observer for Scrubbing {
    fn event(&self, event: &Event) {
        if self.scrubber.is_empty() {
            return self.inner.event(event);
        }
        let s = |t: &String| self.scrubber.text(t);
        let scrubbed = match event {
            Event::StepStarted { id, description } => Event::StepStarted {
                id: id.clone(),
                description: s(description),
            },
            Event::StepFinished { id, elapsed, error } => Event::StepFinished {
                id: id.clone(),
                elapsed: *elapsed,
                error: error.as_ref().map(s),
            },
            Event::HealthWaiting {
                environment,
                waiting_for,
                last,
                remaining,
            } => Event::HealthWaiting {
                environment: environment.clone(),
                waiting_for: s(waiting_for),
                last: s(last),
                remaining: *remaining,
            },
            other => other.clone(),
        };
        self.inner.event(&scrubbed)
    }
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
        StepKind::Preview { router, to, .. } => {
            format!("pointing the preview of router.{router} at {to}")
        }
        StepKind::Drain {
            router,
            colour,
            duration_ms,
        } => format!(
            "letting {colour} drain for {:.1}s after router.{router}'s cut-over",
            *duration_ms as f64 / 1000.0
        ),
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
        // The steps run with the real values; everything recorded or shown
        // is scrubbed (plan::sensitive).
        let doc = planned.execution.as_ref().unwrap_or(&planned.document);
        let observer: Arc<dyn Observer> = Arc::new(Scrubbing {
            inner: observer,
            scrubber: self.scrubber.clone(),
        });
        let steps: BTreeMap<String, Step> = doc
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.clone()))
            .collect();
        let order: Vec<String> = doc.steps.iter().map(|s| s.id.clone()).collect();
        let mut report = ApplyReport::default();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        let mut started: BTreeSet<String> = BTreeSet::new();
        let mut tasks: JoinSet<(String, Duration, StepResult)> = JoinSet::new();
        let mut stopping = false;
        // Ready-queue scheduling: a finished step releases its dependents, so
        // the walk costs O(steps + edges) instead of scanning every step after
        // every completion (quadratic at thousands of steps).
        let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
        let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut ready: VecDeque<String> = VecDeque::new();
        for id in &order {
            let deps = &steps[id].depends_on;
            waiting.insert(id, deps.len());
            for d in deps {
                dependents.entry(d.as_str()).or_default().push(id.as_str());
            }
            if deps.is_empty() {
                ready.push_back(id.clone());
            }
        }
        // Completed steps that the wave being handled has not taken yet.
        let mut wave = VecDeque::new();

        // A state that does not exist on disk yet is written even when the
        // plan changes nothing, so the lineage is fixed from the first apply.
        if !state_path.exists() {
            self.save(&state_path, &mut state)?;
        }
        // Without sensitive values to scrub, steps are journaled and synced
        // once per wave of completed steps (state/journal.rs): bytes written
        // grow with the state, not with steps x state.
        let mut journal = if self.scrubber.is_empty() {
            Some(crate::state::journal::Journal::open(&state_path, &state)?)
        } else {
            None
        };

        loop {
            if !stopping {
                while tasks.len() < self.parallelism {
                    let Some(id) = ready.pop_front() else {
                        break;
                    };
                    let id = &id;
                    let step = &steps[id];
                    {
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
                            StepKind::Cutover { router, .. } | StepKind::Preview { router, .. } => {
                                state.routers.get(router).cloned()
                            }
                            _ => None,
                        };
                        let observer = observer.clone();
                        tasks.spawn(async move {
                            let t = Instant::now();
                            let r = engine
                                .execute(&step, private, previous_router, observer.as_ref())
                                .await;
                            (step.id.clone(), t.elapsed(), r)
                        });
                    }
                }
            }
            if wave.is_empty() {
                let Some(first) = tasks.join_next().await else {
                    break;
                };
                wave.push_back(first);
                while let Some(more) = tasks.try_join_next() {
                    wave.push_back(more);
                }
            }
            let joined = wave.pop_front().expect("a wave is never empty here");
            let (id, elapsed, result) = joined.expect("apply steps do not panic");
            let (mutations, error) = match result {
                Ok(m) => (m, None),
                Err((e, m)) => (m, Some(e)),
            };
            // Record what the step did, even a failed one, before anything
            // else; each move on its own serial (a verify that failed records
            // the switch and the switch back).
            for m in mutations {
                if let Some(journal) = journal.as_mut() {
                    if let Some(entry) = journal_entry(m) {
                        journal.record(entry, &mut state);
                    }
                    continue;
                }
                if mutate(&mut state, vec![m]) {
                    self.commit(&state_path, &mut state, observer.as_ref())?;
                }
            }
            match error {
                None => {
                    observer.event(&Event::StepFinished {
                        id: id.clone(),
                        elapsed,
                        error: None,
                    });
                    finished.insert(id.clone());
                    for d in dependents.get(id.as_str()).into_iter().flatten() {
                        let n = waiting.get_mut(d).expect("every dependent is a step");
                        *n -= 1;
                        if *n == 0 {
                            ready.push_back(d.to_string());
                        }
                    }
                    report.done.push(id);
                }
                Some(e) => {
                    observer.event(&Event::StepFinished {
                        id: id.clone(),
                        elapsed,
                        error: Some(e.clone()),
                    });
                    if report.failed.is_none() {
                        report.failed = Some((id, self.scrubber.text(&e)));
                    }
                    stopping = true;
                }
            }
            // The wave is handled: make its records durable before any
            // dependent step is started.
            if wave.is_empty() {
                if let Some(journal) = journal.as_mut() {
                    if journal.sync(&state)? {
                        observer.event(&Event::StateSaved {
                            serial: state.serial,
                        });
                    }
                }
            }
        }

        if let Some(journal) = journal.take() {
            journal.finish(&state)?;
        }

        if report.failed.is_some() {
            // Rule 4: when several routers cut over in one apply, all end on
            // the new colour or all that moved are switched back.
            self.revert_cutovers(
                &steps,
                &mut report,
                &mut state,
                &state_path,
                observer.as_ref(),
            )
            .await?;
        }
        if report.failed.is_none() {
            let before = state.clone();
            for rec in &planned.records {
                let old = state.routers.get(&rec.router);
                let previous = old.and_then(|r| r.previous.clone());
                let preview = old.and_then(|r| r.preview.clone());
                state.routers.insert(
                    rec.router.clone(),
                    RouterState {
                        backend: rec.backend.clone(),
                        live: rec.live.clone(),
                        previous,
                        preview,
                        rolled_back: false,
                    },
                );
            }
            if state != before {
                self.commit(&state_path, &mut state, observer.as_ref())?;
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

    /// Record a change: bump the serial, save, and say so.
    fn commit(
        &self,
        path: &std::path::Path,
        state: &mut State,
        observer: &dyn Observer,
    ) -> Result<(), crate::state::StateError> {
        state.serial += 1;
        self.save(path, state)?;
        observer.event(&Event::StateSaved {
            serial: state.serial,
        });
        Ok(())
    }

    /// Save the state, scrubbed of every sensitive value first.
    fn save(
        &self,
        path: &std::path::Path,
        state: &mut State,
    ) -> Result<(), crate::state::StateError> {
        if !self.scrubber.is_empty() {
            *state = self.scrubber.scrub(state);
        }
        crate::state::save(path, state)
    }

    /// Run one step, with what only some kinds need: a cut-over's verify
    /// (and switch back), a drain's wait.
    async fn execute(
        &self,
        step: &Step,
        private: serde_json::Value,
        previous_router: Option<RouterState>,
        observer: &dyn Observer,
    ) -> StepResult {
        match &step.kind {
            StepKind::Drain { duration_ms, .. } => {
                tokio::time::sleep(Duration::from_millis(*duration_ms)).await;
                Ok(vec![])
            }
            StepKind::Cutover {
                router,
                from,
                to,
                spec,
                backend,
                verify: Some(verify),
                ..
            } => {
                let switched = self
                    .run_step(step, private, previous_router.clone(), observer)
                    .await
                    .map_err(|e| (e, vec![]))?;
                let check = self
                    .health
                    .gate(&format!("router.{router}"), &[], verify, None, observer)
                    .await;
                let Err(why) = check else {
                    return Ok(vec![switched]);
                };
                let why =
                    format!("router.{router}: verify failed after the cut-over to {to}: {why}");
                let Some(from) = from else {
                    return Err((
                        format!("{why}; there is no previous colour to switch back to"),
                        vec![switched],
                    ));
                };
                match self.switch_back(router, from, to, spec, backend, previous_router.as_ref()).await {
                    Ok(back) => Err((format!("{why}; switched back to {from}"), vec![switched, back])),
                    Err(e) => Err((
                        format!("{why}; switching back to {from} ALSO failed: {e}; check router.{router} by hand"),
                        vec![switched],
                    )),
                }
            }
            _ => self
                .run_step(step, private, previous_router, observer)
                .await
                .map(|m| vec![m])
                .map_err(|e| (e, vec![])),
        }
    }

    /// Switch `router` back from `to` to `from`; the state change that records it.
    async fn switch_back(
        &self,
        router: &str,
        from: &str,
        to: &str,
        spec: &cutover_provider::RouterSpec,
        backend: &str,
        before: Option<&RouterState>,
    ) -> Result<Mutation, String> {
        let provider = self
            .providers
            .router(backend)
            .ok_or_else(|| format!("unknown backend `{backend}`"))?;
        let colour = spec
            .colour(from)
            .cloned()
            .ok_or_else(|| format!("{from} is no colour of router.{router}"))?;
        provider
            .switch(spec, &colour)
            .await
            .map_err(|e| e.describe())?;
        Ok(Mutation::Router(
            router.to_string(),
            Some(RouterState {
                backend: backend.to_string(),
                live: Some(from.to_string()),
                previous: Some(to.to_string()),
                preview: before.and_then(|r| r.preview.clone()),
                rolled_back: false,
            }),
        ))
    }

    /// Switch back every router this apply cut over, after a failure.
    async fn revert_cutovers(
        &self,
        steps: &BTreeMap<String, Step>,
        report: &mut ApplyReport,
        state: &mut State,
        state_path: &std::path::Path,
        observer: &dyn Observer,
    ) -> Result<(), crate::state::StateError> {
        for id in report.done.clone() {
            let Some(StepKind::Cutover {
                router,
                from: Some(from),
                to,
                spec,
                backend,
                ..
            }) = steps.get(&id).map(|s| &s.kind)
            else {
                continue;
            };
            let before = state.routers.get(router).cloned();
            match self
                .switch_back(router, from, to, spec, backend, before.as_ref())
                .await
            {
                Ok(m) => {
                    if mutate(state, vec![m]) {
                        self.commit(state_path, state, observer)?;
                    }
                    report.reverted.push((router.clone(), from.clone()));
                }
                Err(e) => report
                    .revert_failed
                    .push((router.clone(), self.scrubber.text(&e))),
            }
        }
        Ok(())
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
                            .map_err(|e| format!("environment.{name}: {}", e.describe()))?;
                        Ok(Mutation::Environment(name.clone(), None))
                    }
                    Action::Create | Action::Update | Action::Replace => {
                        let private = if *action == Action::Replace {
                            provider
                                .destroy(spec, &private)
                                .await
                                .map_err(|e| format!("environment.{name}: {}", e.describe()))?;
                            serde_json::Value::Null
                        } else {
                            private
                        };
                        let deployed = provider
                            .deploy(spec, &private)
                            .await
                            .map_err(|e| format!("environment.{name}: {}", e.describe()))?;
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
                release,
            } => {
                self.health
                    .gate(environment, endpoints, health, release.as_deref(), observer)
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
                    .map_err(|e| format!("router.{router}: {}", e.describe()))?;
                let preview = previous_router.as_ref().and_then(|r| r.preview.clone());
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
                        preview,
                        rolled_back: false,
                    }),
                ))
            }
            StepKind::Preview {
                router,
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
                    .set_preview(spec, Some(target))
                    .await
                    .map_err(|e| format!("router.{router} preview: {}", e.describe()))?;
                let mut next = previous_router.unwrap_or(RouterState {
                    backend: backend.clone(),
                    live: None,
                    previous: None,
                    preview: None,
                    rolled_back: false,
                });
                next.preview = Some(to.clone());
                Ok(Mutation::Router(router.clone(), Some(next)))
            }
            StepKind::ForgetRouter { router } => Ok(Mutation::Router(router.clone(), None)),
            StepKind::Drain { .. } => Ok(Mutation::None),
        }
    }
}
