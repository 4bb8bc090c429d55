//! The apply driver: runs a plan's steps on tokio as the [`Walk`] allows
//! (independent steps concurrently, at most `parallelism`), makes each wave
//! of records durable before releasing the steps that wait for them, runs
//! the switches back the walk calls for, and stops cleanly on a signal.
//!
//! A step runs in a task of its own; a panic in it (a provider bug) is a
//! failed step like any other, so the revert rules, the journal and the
//! lock are kept.

use std::collections::HashMap;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{AbortHandle, JoinError, JoinSet};

use super::error::{ErrorKind, StepError};
use super::observer::{Event, Observer};
use super::steps::describe;
use super::store::ApplyStore;
use super::walk::{ApplyReport, Outcome, Walk};
use super::Engine;
use crate::plan::document::StepKind;
use crate::plan::saved::Planned;
use crate::plan::validate::Invalid;
use crate::state::backend::{Backend, Lock};
use crate::state::journal::Entry;
use crate::state::model::{RouterState, State};
use crate::state::StateError;

/// How long steps that change something may go on after a stop was asked
/// (read-only steps, gates and drains, are stopped at once).
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// An apply that could not run, or whose records could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan breaks a rule of the cut-over: nothing was run.
    #[error("the plan cannot be applied: {0}")]
    Invalid(#[from] Invalid),
    /// A record could not be written: the apply stopped there.
    #[error(transparent)]
    State(#[from] StateError),
}

/// How hard a signal asks the apply to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopRequest {
    /// Go on.
    #[default]
    None,
    /// No new step; let running ones finish (bounded by [`STOP_GRACE`]).
    Finish(&'static str),
    /// Stop running steps now (a second signal).
    Now(&'static str),
}

/// Where an apply learns that a signal asked it to stop.
pub type StopReceiver = tokio::sync::watch::Receiver<StopRequest>;

/// A receiver that never asks to stop (its sender is gone; the driver
/// stops watching a closed channel).
pub fn never_stop() -> StopReceiver {
    let (_, rx) = tokio::sync::watch::channel(StopRequest::None);
    rx
}

/// The running steps of one apply.
struct Running {
    tasks: JoinSet<Outcome>,
    /// Where each cut-over puts its record the moment its switch is made,
    /// so that a task aborted or panicking after it loses nothing.
    slots: HashMap<usize, super::walk::SwitchSlot>,
    /// The step each task runs.
    by_task: HashMap<tokio::task::Id, usize>,
    /// Each running step's task, and whether the step is read-only.
    aborts: HashMap<usize, (AbortHandle, bool)>,
    /// The batches of cut-overs started (engine::batch): their waits for
    /// a turn stop with the read-only steps.
    batches: Vec<super::batch::Stopper>,
    started: HashMap<usize, Instant>,
    /// A saved plan made with `--gates`: the checks that passed at plan
    /// time, and what to add to the error of one that fails now.
    passed_at_plan: HashMap<crate::addr::StepId, String>,
}

impl Running {
    /// Stop the read-only steps that run (health gates, drains) at once.
    fn abort_waits(&self) {
        for (handle, read_only) in self.aborts.values() {
            if *read_only {
                handle.abort();
            }
        }
        for batch in &self.batches {
            batch.stop();
        }
    }
}

impl Engine {
    /// Apply `planned` to the state in `backend`, whose `lock` the caller
    /// holds. `state` is the state the plan was made against, or a new one.
    pub async fn apply(
        &self,
        planned: &Planned,
        state: State,
        backend: &dyn Backend,
        lock: &Lock,
        observer: Arc<dyn Observer>,
        mut stop: StopReceiver,
    ) -> Result<ApplyReport, ApplyError> {
        let started = Instant::now();
        // The steps run with the real values; every record, event and
        // report shows the sensitive ones as markers (plan::sensitive).
        let doc = planned.execution.as_ref().unwrap_or(&planned.document);
        let observer: Arc<dyn Observer> = Arc::new(super::Masking {
            inner: observer,
            secrets: self.secrets.clone(),
        });
        // Refused before anything is written, let alone run.
        crate::plan::validate::validate(doc)?;
        let mut store = ApplyStore::open(backend, lock, &state, &self.secrets)?;
        let mut walk = Walk::new(doc, state)?;
        // The state's records move (`moved` blocks) before any step: the
        // steps name the new addresses.
        let renames = crate::plan::moves::entries(walk.state(), &planned.document.moved);
        if !renames.is_empty() {
            walk.add_records(renames);
            walk.persist(store.as_store())?;
        }
        let mut pauses = super::approval::Publisher::new(backend, lock);
        // A record that cannot be written stops the walk (nothing new
        // starts), but what runs is let finish and the switches the rules
        // call for are made: the error is reported, not thrown, so that
        // nothing running is dropped half-way.
        let passed_at_plan = passed_at_plan(&planned.document);
        let mut unsaved = self
            .walk(
                &mut walk,
                &mut store,
                &observer,
                &mut stop,
                &mut pauses,
                passed_at_plan,
            )
            .await;
        // No step waits for approval any more: the pause goes before the
        // lock does.
        if let Err(e) = pauses.clear() {
            unsaved.get_or_insert(e);
        }
        let revert = self.revert(&mut walk, &mut store, observer.as_ref()).await;
        unsaved = unsaved.or(revert);
        if walk.is_complete() {
            walk.add_records(router_records(planned, walk.state()));
            walk.add_records(self.secret_records(walk.state()));
            unsaved = unsaved.or(walk.persist(store.as_store()).err());
        }
        let (mut report, state) = walk.finish(started.elapsed());
        if let Err(e) = store.finish(&state) {
            unsaved.get_or_insert(e);
        }
        report.serial = state.serial;
        report.state_error = unsaved.map(|e| format!("{e:#}"));
        Ok(self.scrubbed(report))
    }

    /// Run the walk until nothing runs and nothing more may start.
    async fn walk(
        &self,
        walk: &mut Walk,
        store: &mut ApplyStore<'_>,
        observer: &Arc<dyn Observer>,
        stop: &mut StopReceiver,
        pauses: &mut super::approval::Publisher<'_>,
        passed_at_plan: HashMap<crate::addr::StepId, String>,
    ) -> Option<StateError> {
        let mut running = Running {
            tasks: JoinSet::new(),
            by_task: HashMap::new(),
            aborts: HashMap::new(),
            started: HashMap::new(),
            slots: HashMap::new(),
            batches: Vec::new(),
            passed_at_plan,
        };
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut unsaved = None;
        // A closed channel would answer `changed()` at once, every time.
        let mut stop_open = stop.has_changed().is_ok();
        loop {
            // What finished is made durable before its dependents start.
            match walk.persist(store.as_store()) {
                Ok(written) => saved(written, walk, observer),
                Err(e) => {
                    walk.stop_for_state();
                    unsaved.get_or_insert(e);
                }
            }
            if let Some(e) = self.start_ready(walk, &mut running, store, observer) {
                unsaved.get_or_insert(e);
            }
            if running.tasks.is_empty() {
                return unsaved;
            }
            let sleep_until = deadline.unwrap_or_else(far_future);
            let poll = pauses.due(&self.approvals);
            tokio::select! {
                biased;
                joined = running.tasks.join_next_with_id() => {
                    let Some(joined) = joined else { continue };
                    let mut wave = vec![self.finished(walk, &mut running, joined)];
                    while let Some(more) = running.tasks.try_join_next_with_id() {
                        wave.push(self.finished(walk, &mut running, more));
                    }
                    // A step is said finished once its records are durable:
                    // whoever acts on `cutover_done` finds it in the state.
                    match walk.persist(store.as_store()) {
                        Ok(written) => saved(written, walk, observer),
                        Err(e) => {
                            walk.stop_for_state();
                            unsaved.get_or_insert(e);
                        }
                    }
                    for event in wave.into_iter().flatten() {
                        observer.event(&event);
                    }
                    if walk.is_stopping() {
                        // Nothing new starts: a gate or a drain that runs
                        // waits for nothing now, so it stops at once.
                        running.abort_waits();
                    }
                }
                changed = stop.changed(), if stop_open => {
                    if changed.is_err() {
                        // The sender is gone: no stop will ever come.
                        stop_open = false;
                        continue;
                    }
                    let request = *stop.borrow_and_update();
                    deadline = self.stopping(walk, &running, request, observer.as_ref()).or(deadline);
                }
                // An approval step waits: publish who waits, read who
                // approved (the state backend is the driver's alone).
                () = tokio::time::sleep(poll.unwrap_or_default()), if poll.is_some() => {
                    pauses.sync(&self.approvals);
                }
                () = self.approvals.changed() => pauses.sync(&self.approvals),
                () = tokio::time::sleep_until(sleep_until) => {
                    // The grace is over: stop what still runs, once.
                    for (handle, _) in running.aborts.values() {
                        handle.abort();
                    }
                    deadline = None;
                }
            }
        }
    }

    /// Start what is ready, up to the parallelism. Before the first step of
    /// the batch that changes something live, the store is asked whether
    /// the state can still be written: once it cannot, nothing live moves
    /// (the walk stops as for a failed write, and the error is returned).
    /// The cut-overs of a backend that switches in batches, ready together,
    /// start together whatever the parallelism: they are one call to the
    /// router, and what follows each switch runs at most `parallelism` at
    /// once (engine::batch).
    fn start_ready(
        &self,
        walk: &mut Walk,
        running: &mut Running,
        store: &mut ApplyStore<'_>,
        observer: &Arc<dyn Observer>,
    ) -> Option<StateError> {
        let mut confirmed = false;
        while running.tasks.len() < self.parallelism {
            if !confirmed && walk.next_changes_live() {
                if let Err(e) = store.as_store().confirm() {
                    walk.stop_for_state();
                    return Some(e);
                }
                confirmed = true;
            }
            let start = walk.start_next()?;
            // The cut-overs ready with this one that its backend switches
            // together go in one batch (engine::batch): one call to the
            // router for all of them, each still its own step.
            if let Some((backend, provider)) = self.batching(&start.step.kind) {
                let mut starts = vec![start];
                while let Some(next) = walk.start_next_if(|step| {
                    matches!(&step.kind, StepKind::Cutover { backend: b, .. } if *b == backend)
                }) {
                    starts.push(next);
                }
                if starts.len() > 1 {
                    let switches = starts
                        .iter()
                        .filter_map(|s| match &s.step.kind {
                            StepKind::Cutover { spec, target, .. } => {
                                Some((spec.clone(), target.clone(), s.switched.clone()))
                            }
                            _ => None,
                        })
                        .collect();
                    let tickets = super::batch::tickets(provider, switches, self.parallelism);
                    running.batches.push(tickets[0].stopper());
                    for (start, ticket) in starts.into_iter().zip(tickets) {
                        self.spawn(start, Some(ticket), running, observer);
                    }
                    continue;
                }
                let start = starts.pop().expect("one start");
                self.spawn(start, None, running, observer);
                continue;
            }
            self.spawn(start, None, running, observer);
        }
        None
    }

    /// The backend of a cut-over whose provider switches in batches, and
    /// that provider.
    fn batching(
        &self,
        kind: &StepKind,
    ) -> Option<(String, Arc<dyn cutover_provider::RouterProvider>)> {
        let StepKind::Cutover { backend, .. } = kind else {
            return None;
        };
        let provider = self.providers.router(backend)?;
        provider
            .switches_in_batches()
            .then(|| (backend.clone(), provider))
    }

    /// Start one step's task.
    fn spawn(
        &self,
        start: super::walk::Start,
        batch: Option<super::batch::Ticket>,
        running: &mut Running,
        observer: &Arc<dyn Observer>,
    ) {
        let index = start.index;
        let read_only = start.step.kind.is_read_only();
        // Described as shown: no sensitive value in a progress line.
        let description = if self.secrets.is_empty() {
            describe(&start.step.kind)
        } else {
            describe(&self.secrets.step(&start.step.kind))
        };
        observer.event(&Event::StepStarted {
            id: start.step.id.clone(),
            description,
        });
        let engine = self.clone();
        let task_observer = observer.clone();
        running.slots.insert(index, start.switched.clone());
        let handle = running
            .tasks
            .spawn(async move { engine.run(start, batch, task_observer.as_ref()).await });
        running.by_task.insert(handle.id(), index);
        running.aborts.insert(index, (handle, read_only));
        running.started.insert(index, Instant::now());
    }

    /// A stop was asked: nothing new starts, read-only steps stop at once,
    /// the others within [`STOP_GRACE`] (or at once for a second signal).
    fn stopping(
        &self,
        walk: &mut Walk,
        running: &Running,
        request: StopRequest,
        observer: &dyn Observer,
    ) -> Option<tokio::time::Instant> {
        let (signal, now) = match request {
            StopRequest::None => return None,
            StopRequest::Finish(s) => (s, false),
            StopRequest::Now(s) => (s, true),
        };
        if !walk.is_stopping() || now {
            observer.event(&Event::Stopping {
                signal,
                running: walk.running(),
                at_once: now,
            });
        }
        walk.stop(signal, now);
        for (handle, read_only) in running.aborts.values() {
            if *read_only || now {
                handle.abort();
            }
        }
        for batch in &running.batches {
            batch.stop();
        }
        Some(tokio::time::Instant::now() + if now { Duration::ZERO } else { STOP_GRACE })
    }

    /// Hand a finished task's outcome to the walk (a panic or an abort is a
    /// failed or interrupted step); the event that says so, to be told once
    /// its records are durable.
    fn finished(
        &self,
        walk: &mut Walk,
        running: &mut Running,
        joined: Result<(tokio::task::Id, Outcome), JoinError>,
    ) -> Option<Event> {
        let (id, mut outcome) = match joined {
            Ok((id, outcome)) => (id, outcome),
            Err(e) => {
                let id = e.id();
                let error = join_failure(walk, running, e);
                let slot = running.by_task.get(&id).and_then(|i| running.slots.get(i));
                (id, Outcome::cut_short(error, slot))
            }
        };
        let index = running.by_task.remove(&id)?;
        running.aborts.remove(&index);
        running.slots.remove(&index);
        let elapsed = running
            .started
            .remove(&index)
            .map_or(Duration::ZERO, |t| t.elapsed());
        // A check that passed at plan time (`plan --gates`) and fails now
        // says so: the plan's result never stood in for this one.
        if let (Some(e), Some(then)) = (
            outcome.error.as_mut(),
            running.passed_at_plan.get(&walk.step(index).id),
        ) {
            // On its first line: a test's error goes on with its output.
            e.message = match e.message.split_once('\n') {
                Some((head, rest)) => format!("{head} ({then})\n{rest}"),
                None => format!("{} ({then})", e.message),
            };
        }
        let event = Event::StepFinished {
            id: walk.step(index).id.clone(),
            elapsed,
            error: outcome.error.clone(),
        };
        walk.complete(index, outcome);
        Some(event)
    }

    /// Switch back what the walk says must go back, under rule 7.
    async fn revert(
        &self,
        walk: &mut Walk,
        store: &mut ApplyStore<'_>,
        observer: &dyn Observer,
    ) -> Option<StateError> {
        let mut unsaved = None;
        // The switches back of a backend that switches in batches go in one
        // batch (as the cut-overs did: one conversation with HAProxy, not
        // one switch and map-file rewrite each); the others one by one.
        let mut batches: Vec<(String, Vec<super::walk::Revert>)> = Vec::new();
        let mut single = Vec::new();
        for revert in walk.reverts() {
            let batching = self
                .providers
                .router(&revert.backend)
                .is_some_and(|p| p.switches_in_batches());
            match batches.iter_mut().find(|(b, _)| *b == revert.backend) {
                Some((_, group)) if batching => group.push(revert),
                None if batching => batches.push((revert.backend.clone(), vec![revert])),
                _ => single.push(revert),
            }
        }
        let mut done: Vec<(super::walk::Revert, Result<Vec<Entry>, String>)> = Vec::new();
        for (_, group) in batches {
            if group.len() == 1 {
                single.extend(group);
                continue;
            }
            let outcomes = self.switch_back_batch(&group).await;
            done.extend(group.into_iter().zip(outcomes));
        }
        for revert in single {
            // In a task of its own, as every step: a provider that panics
            // while switching back is a switch back that failed.
            let engine = self.clone();
            let task_revert = revert.clone();
            let outcome = tokio::spawn(async move { engine.switch_back(&task_revert).await })
                .await
                .unwrap_or_else(|e| Err(panicked_back(&revert.backend, e)));
            done.push((revert, outcome));
        }
        for (revert, outcome) in done {
            match &outcome {
                Ok(_) => observer.event(&Event::SwitchedBack {
                    router: revert.router.clone(),
                    to: revert.to.clone(),
                }),
                Err(why) => observer.event(&Event::SwitchBackRefused {
                    router: revert.router.clone(),
                    to: revert.to.clone(),
                    why: self.secrets.mask(why),
                }),
            }
            walk.reverted(&revert, outcome.map_err(|e| self.secrets.mask(&e)));
            // Every switch back is made, whatever a write said.
            if let Err(e) = walk.persist(store.as_store()) {
                unsaved.get_or_insert(e);
            }
        }
        unsaved
    }

    /// [`Engine::switch_back`] for several routers of one batching backend:
    /// each colour checked to still be what served (rule 7), at most
    /// `parallelism` at once, then one `switch_batch` for those that are.
    async fn switch_back_batch(
        &self,
        group: &[super::walk::Revert],
    ) -> Vec<Result<Vec<Entry>, String>> {
        use futures_util::StreamExt;
        let checked: Vec<Result<(), String>> = futures_util::stream::iter(group)
            .map(|revert| self.still_what_served(revert))
            .buffered(self.parallelism.max(1))
            .collect()
            .await;
        let mut results: Vec<Option<Result<Vec<Entry>, String>>> = Vec::new();
        let mut switches = Vec::new();
        let mut positions = Vec::new();
        for (i, (revert, check)) in group.iter().zip(checked).enumerate() {
            let colour = check.and_then(|()| {
                revert
                    .spec
                    .colour(&revert.to)
                    .cloned()
                    .ok_or_else(|| format!("{} is no colour of the router", revert.to))
            });
            match colour {
                Ok(colour) => {
                    switches.push((revert.spec.clone(), colour));
                    positions.push(i);
                    results.push(None);
                }
                Err(why) => results.push(Some(Err(why))),
            }
        }
        let backend = group[0].backend.clone();
        if let Some(provider) = self
            .providers
            .router(&backend)
            .filter(|_| !switches.is_empty())
        {
            let retry = (provider.clone(), switches.clone());
            // In a task of its own: a provider that panics fails the batch.
            let task = tokio::spawn(async move {
                let pairs: Vec<(&cutover_provider::RouterSpec, &cutover_provider::Colour)> =
                    switches.iter().map(|(s, c)| (s, c)).collect();
                provider
                    .switch_batch(&pairs)
                    .await
                    .into_iter()
                    .map(|r| r.map_err(|e| e.describe()))
                    .collect::<Vec<_>>()
            })
            .await;
            let outcomes = match task {
                Ok(outcomes) => outcomes,
                Err(e) => {
                    let why = panicked_back(&backend, e);
                    positions.iter().map(|_| Err(why.clone())).collect()
                }
            };
            // A batch may refuse all for one (HAProxy's is all or nothing):
            // a switch back is owed to each router, so each that failed in
            // the batch is tried again alone.
            let (provider, switches) = retry;
            for (n, (i, outcome)) in positions.into_iter().zip(outcomes).enumerate() {
                let outcome = match outcome {
                    Ok(_) => Ok(()),
                    Err(_) => {
                        let (spec, colour) = switches[n].clone();
                        let provider = provider.clone();
                        tokio::spawn(async move {
                            provider
                                .switch(&spec, &colour)
                                .await
                                .map_err(|e| e.describe())
                        })
                        .await
                        .unwrap_or_else(|e| Err(panicked_back(&backend, e)))
                    }
                };
                results[i] = Some(outcome.map(|()| super::steps::back_records(&group[i])));
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err("the batch gave no result".to_owned())))
            .collect()
    }

    /// Records that hide, in the state, values recorded in clear before
    /// the configuration made them sensitive: their step (if any) sees no
    /// change, so nothing else would rewrite them.
    fn secret_records(&self, state: &State) -> Vec<Entry> {
        self.secrets
            .hidden_records(state)
            .into_iter()
            .map(|(name, rec)| Entry::Environment(name, Some(rec)))
            .collect()
    }

    /// The report with every sensitive value hidden: the way back names
    /// releases (as shown), errors are free text (masked).
    fn scrubbed(&self, mut report: ApplyReport) -> ApplyReport {
        if self.secrets.is_empty() {
            return report;
        }
        let s = |t: &mut String| *t = self.secrets.mask(t);
        if let Some((_, e)) = &mut report.failed {
            s(&mut e.message);
        }
        for (_, why) in &mut report.revert_failed {
            s(why);
        }
        for way in &mut report.way_back {
            match way {
                super::walk::WayBack::To {
                    colour, release, ..
                } => {
                    if let Some(r) = release {
                        *r = self.secrets.release(colour, r);
                    }
                }
                super::walk::WayBack::Broken { why, .. } => s(why),
            }
        }
        if let Some(e) = &mut report.state_error {
            s(e);
        }
        report
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}

fn saved(written: bool, walk: &Walk, observer: &Arc<dyn Observer>) {
    if written {
        observer.event(&Event::StateSaved {
            serial: walk.state().serial,
        });
    }
}

/// Why a step's task ended without an outcome.
fn join_failure(walk: &Walk, running: &Running, e: JoinError) -> StepError {
    let step = running.by_task.get(&e.id()).map(|i| walk.step(*i));
    let what = step.map_or_else(|| "a step".to_owned(), |s| s.id.to_string());
    if e.is_cancelled() {
        return StepError::new(
            ErrorKind::Interrupted,
            format!("{what}: stopped before it finished"),
        );
    }
    let provider = step.map_or("", |s| backend_of(&s.kind));
    let message = panic_message(e.into_panic());
    StepError::new(
        ErrorKind::Panicked,
        format!("{what}: the `{provider}` provider panicked (a bug in it): {message}"),
    )
}

/// Why a switch back's task ended without an answer.
fn panicked_back(backend: &str, e: JoinError) -> String {
    let why = if e.is_panic() {
        panic_message(e.into_panic())
    } else {
        "stopped".to_owned()
    };
    format!("the `{backend}` provider panicked while switching back: {why}")
}

fn backend_of(kind: &StepKind) -> &str {
    match kind {
        StepKind::Environment { backend, .. }
        | StepKind::Cutover { backend, .. }
        | StepKind::Preview { backend, .. }
        | StepKind::RemovePreview { backend, .. } => backend,
        StepKind::HealthGate { .. } => "health check",
        StepKind::Drain { .. }
        | StepKind::Settle { .. }
        | StepKind::ForgetRouter { .. }
        | StepKind::Approval { .. } => "cutover",
        StepKind::Test { .. } => "test",
        StepKind::Analysis { .. } => "analysis",
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast::<&str>()
            .map_or_else(|_| "(no message)".to_owned(), |s| (*s).to_owned()),
    }
}

/// The records of routers that needed no cut-over but whose state entry
/// was missing or stale (the plan's `records`).
fn router_records(planned: &Planned, state: &State) -> Vec<Entry> {
    planned
        .records
        .iter()
        .map(|rec| {
            let old = state.routers.get(&rec.router);
            let next = RouterState {
                backend: rec.backend.clone(),
                live: rec.live.clone(),
                previous: previous_after(old, rec.live.as_deref()),
                preview: old.and_then(|r| r.preview.clone()),
                rolled_back: false,
            };
            Entry::Router(rec.router.clone(), Some(next))
        })
        .collect()
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;

/// The previous colour of a router recorded on `live` now: the colour the
/// state had it on, when that is another one (it moved: outside cutover, or
/// by a switch whose record was lost), else the previous one recorded; never
/// `live` itself.
pub(crate) fn previous_after(old: Option<&RouterState>, live: Option<&str>) -> Option<String> {
    let old = old?;
    match old.live.as_deref() {
        Some(was) if Some(was) != live => Some(was.to_owned()),
        _ => old.previous.clone().filter(|p| Some(p.as_str()) != live),
    }
}

/// The checks of a plan made with `--gates` that passed then, each with
/// what its failure now adds: `it passed at plan time, 2026-...Z: 3/3`.
fn passed_at_plan(doc: &crate::plan::PlanDocument) -> HashMap<crate::addr::StepId, String> {
    doc.readiness
        .iter()
        .flat_map(|r| r.checks.iter().map(move |c| (r, c)))
        .filter(|(_, c)| c.passed())
        .map(|(r, c)| {
            let value = c
                .value
                .as_deref()
                .map_or(String::new(), |v| format!(": {v}"));
            (
                c.step.clone(),
                format!("it passed at plan time, {}{value}", r.checked_at),
            )
        })
        .collect()
}
