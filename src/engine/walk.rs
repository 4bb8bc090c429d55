//! The apply walk as a state machine: which step may start now, what a
//! finished step changes, when its records are durable, and which switches
//! back the rules call for. It does no I/O of its own (the driver in
//! [`super::apply`] runs the steps and hands the walk a [`Store`]), so each
//! rule of DESIGN.md §3 is unit-tested here, step by step.
//!
//! The rules, as the walk enforces them:
//! - a step starts only when every step it depends on has finished and the
//!   records of those steps are durable ([`Walk::persist`] releases them);
//! - the switch happens last: a cut-over starts only when every step before
//!   the switches has finished, and a step after the switches (a drain, the
//!   drained colour's change) only when every switch has, so no router is
//!   switched while another may still be switched back, and nothing changes
//!   a drained colour while a switch back to it may still be needed;
//! - a cut-over starts only when its target's health gate passed in this
//!   apply (checked at the switch, whatever the plan's edges say);
//! - after the first failure, or a stop asked by a signal, nothing new
//!   starts;
//! - a switch back happens only for a cut-over this apply made, only when
//!   the failure is of a switch (its own switch or verify, or another
//!   router's: all or nothing), never for a failure after the switches, and
//!   only to a colour whose live identity is still the one recorded when it
//!   last served (the driver checks the identity each [`Revert`] names).

use std::collections::{BTreeSet, HashMap, VecDeque};

use cutover_provider::RouterSpec;
use serde_json::Value;

use super::error::{ErrorKind, StepError};
use crate::addr::StepId;
use crate::plan::document::{Action, Phase, PlanDocument, Step, StepKind};
use crate::plan::validate::{validate, Invalid};
use crate::state::journal::Entry;
use crate::state::model::{RouterState, State};
use crate::state::StateError;

/// Where the walk's records go: the journal beside the state file, or the
/// state file itself. A record is durable once [`Store::sync`] returned.
pub trait Store: Send {
    /// Apply one record to `state` and queue it for the next sync; whether
    /// the state changed.
    fn record(&mut self, entry: Entry, state: &mut State) -> bool;
    /// Make every queued record durable; whether anything was written.
    fn sync(&mut self, state: &mut State) -> Result<bool, StateError>;
    /// Whether records can still be made durable, asked before a step that
    /// changes something live starts.
    fn confirm(&mut self) -> Result<(), StateError> {
        Ok(())
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Some dependency has not finished (or is not durable yet).
    Waiting,
    /// Every dependency finished: it may start.
    Ready,
    /// Started, not finished.
    Running,
    /// Finished, and its records are durable.
    Done,
    /// Finished, records not durable yet: its dependents wait.
    Finished,
    /// Failed.
    Failed,
    /// Stopped by a signal before it finished.
    Interrupted,
}

const PHASES: [Phase; 4] = [
    Phase::BeforeSwitch,
    Phase::Switch,
    Phase::Verify,
    Phase::AfterSwitch,
];

fn slot(phase: Phase) -> usize {
    match phase {
        Phase::BeforeSwitch => 0,
        Phase::Switch => 1,
        Phase::Verify => 2,
        Phase::AfterSwitch => 3,
    }
}

/// Whether a step of `phase` is part of the switches: the cut-overs and
/// the checks that find them right or wrong under live traffic (`after`
/// analyses). A failure there, or a stop before they all finished, sends
/// every router this apply moved back (rules 4 and 7).
fn is_switching(phase: Phase) -> bool {
    matches!(phase, Phase::Switch | Phase::Verify)
}

/// Where a cut-over says how far its switch went: `attempted` once it asked
/// the router to switch, `record` the moment the router has switched (before
/// it verifies). A task stopped or panicking after that still leaves it, so
/// the state and the switches back know.
pub type SwitchSlot = std::sync::Arc<std::sync::Mutex<Switching>>;

/// How far a cut-over's switch went (see [`SwitchSlot`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Switching {
    /// The router was asked to switch: traffic may have moved.
    pub attempted: bool,
    /// The router switched: what the state records of it.
    pub record: Option<Entry>,
}

/// A step to start, with what it needs from the state.
#[derive(Debug, Clone)]
pub struct Start {
    /// The step's position in the plan.
    pub index: usize,
    /// The step.
    pub step: Step,
    /// The environment's provider-private data (environment steps).
    pub private: Value,
    /// The router's record before the step (cut-over and preview steps).
    pub router: Option<RouterState>,
    /// Where a cut-over puts its record once it has switched.
    pub switched: SwitchSlot,
}

/// What a finished step did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Its effect on the state, recorded even when it failed (a cut-over
    /// whose verify failed did switch).
    pub records: Vec<Entry>,
    /// For a cut-over: whether the router was switched (so that a failure
    /// calls for switching it back).
    pub switched: bool,
    /// `None` on success.
    pub error: Option<StepError>,
}

impl Outcome {
    /// A success with these records.
    pub fn ok(records: Vec<Entry>) -> Self {
        Outcome {
            records,
            ..Outcome::default()
        }
    }

    /// A failure that changed nothing.
    pub fn failed(error: StepError) -> Self {
        Outcome {
            error: Some(error),
            ..Outcome::default()
        }
    }

    /// A step that did not finish (stopped, or panicked): what its switch
    /// slot says it did, if anything.
    pub fn cut_short(error: StepError, slot: Option<&SwitchSlot>) -> Self {
        let went = slot
            .map(|s| std::mem::take(&mut *s.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default();
        Outcome {
            // Switched, or maybe (asked, no answer): the rules switch it
            // back; what it serves is known only when it answered.
            switched: went.attempted || went.record.is_some(),
            records: went.record.into_iter().collect(),
            error: Some(error),
        }
    }
}

/// A switch back the rules call for: `router` returns from `from` to `to`,
/// if `to` still is what it was when it last served.
#[derive(Debug, Clone, PartialEq)]
pub struct Revert {
    /// The router.
    pub router: String,
    /// The colour this apply switched it to.
    pub from: String,
    /// The colour it goes back to.
    pub to: String,
    /// The router spec of the cut-over (it names both colours).
    pub spec: RouterSpec,
    /// The router's backend kind.
    pub backend: String,
    /// The record of `to` when the apply started, to read it by (`None`:
    /// not deployed by cutover, which cannot read it then).
    pub colour: Option<crate::state::model::EnvironmentState>,
    /// The identity `to` had when the plan was made, which it must still
    /// have (else the one recorded when cutover deployed it).
    pub identity: Option<String>,
    /// The router's record before the cut-over (its preview is kept).
    pub before: Option<RouterState>,
    /// Whether this apply changed the colour it switched to (deployed a
    /// release to it) before the switch: once switched back from, that
    /// colour is no way back (it runs what was just found wrong).
    pub target_changed: bool,
}

/// The way back from a router this apply cut over, as it stands at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WayBack {
    /// `cutover rollback ROUTER` returns to `colour`, which runs `release`.
    To {
        /// The router.
        router: String,
        /// The colour.
        colour: String,
        /// Its release, when known.
        release: Option<String>,
    },
    /// There is none until `colour` is repaired.
    Broken {
        /// The router.
        router: String,
        /// The colour it would return to.
        colour: String,
        /// Why it is no way back now.
        why: String,
    },
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplyReport {
    /// Steps that finished, in the order they finished.
    pub done: Vec<StepId>,
    /// The first step that failed, and why.
    pub failed: Option<(StepId, StepError)>,
    /// Steps stopped by a signal before they finished.
    pub interrupted: Vec<StepId>,
    /// Steps that never started.
    pub not_run: Vec<StepId>,
    /// The signal that stopped the apply, if one did.
    pub stopped_by: Option<&'static str>,
    /// Routers switched back: (router, colour it is back on).
    pub reverted: Vec<(String, String)>,
    /// Routers that were not switched back, and why: they need a person.
    pub revert_failed: Vec<(String, String)>,
    /// The way back from every router this apply left on a new colour.
    pub way_back: Vec<WayBack>,
    /// Why records could not be written, when they could not: the state
    /// file may then lag behind what was done.
    pub state_error: Option<String>,
    /// Serial of the state after the apply.
    pub serial: u64,
    /// Wall time of the whole apply.
    pub elapsed: std::time::Duration,
}

impl ApplyReport {
    /// Whether every step ran and succeeded.
    pub fn is_complete(&self) -> bool {
        self.failed.is_none()
            && self.interrupted.is_empty()
            && self.not_run.is_empty()
            && self.stopped_by.is_none()
            && self.state_error.is_none()
    }
}

/// A cut-over this apply made.
#[derive(Debug, Clone)]
struct Switched {
    index: usize,
    /// Whether it is already switched back.
    reverted: bool,
}

/// The walk over one plan's steps.
#[derive(Debug)]
pub struct Walk {
    steps: Vec<Step>,
    /// Each step's position, by id.
    index: HashMap<StepId, usize>,
    status: Vec<Status>,
    /// Per step: dependencies not yet done and durable.
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    /// Ready steps by phase, in plan order.
    ready: [VecDeque<usize>; 4],
    /// Steps of each phase not yet finished.
    unfinished: [usize; 4],
    /// Finished steps whose records are not durable yet.
    undurable: Vec<usize>,
    /// Records not yet handed to the store.
    pending: Vec<Entry>,
    gates_passed: BTreeSet<String>,
    /// Per router: its steps that must pass before its switch, besides its
    /// target's gate (tests, `before` analyses, its approval).
    prechecks: HashMap<String, Vec<usize>>,
    switched: Vec<Switched>,
    finished_order: Vec<usize>,
    failure: Option<(usize, StepError)>,
    stopped_by: Option<&'static str>,
    /// A second signal: stop at once, switch nothing back.
    stopped_now: bool,
    /// A record could not be written.
    state_failed: bool,
    reverted: Vec<(String, String)>,
    revert_failed: Vec<(String, String)>,
    /// The state as the walk has made it.
    state: State,
    /// The state when the walk started.
    before: State,
}

impl Walk {
    /// A walk over `doc`, which must follow the rules (`validate()`), from
    /// `state`.
    pub fn new(doc: &PlanDocument, state: State) -> Result<Walk, Invalid> {
        validate(doc)?;
        Ok(Walk::unchecked(doc, state))
    }

    /// A walk over `doc` without validating it first (for tests of the
    /// walk's own checks, which hold even for a plan that skipped them).
    pub fn unchecked(doc: &PlanDocument, state: State) -> Walk {
        let steps = doc.steps.clone();
        let index: HashMap<StepId, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let mut waiting_on = vec![0; steps.len()];
        let mut dependents = vec![Vec::new(); steps.len()];
        let mut unfinished = [0; 4];
        let mut prechecks: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, step) in steps.iter().enumerate() {
            unfinished[slot(step.kind.phase())] += 1;
            if let Some(router) = precheck_of(&step.kind) {
                prechecks.entry(router.to_owned()).or_default().push(i);
            }
            for dep in &step.depends_on {
                // A dependency the plan lacks never finishes: the step
                // never runs, and the report says so (validate() refuses
                // such a plan before a walk is made of it).
                waiting_on[i] += 1;
                if let Some(&d) = index.get(dep) {
                    dependents[d].push(i);
                }
            }
        }
        let mut walk = Walk {
            index,
            status: vec![Status::Waiting; steps.len()],
            waiting_on,
            dependents,
            ready: Default::default(),
            unfinished,
            undurable: Vec::new(),
            pending: Vec::new(),
            gates_passed: BTreeSet::new(),
            prechecks,
            switched: Vec::new(),
            finished_order: Vec::new(),
            failure: None,
            stopped_by: None,
            stopped_now: false,
            state_failed: false,
            reverted: Vec::new(),
            revert_failed: Vec::new(),
            before: state.clone(),
            state,
            steps,
        };
        for i in 0..walk.steps.len() {
            if walk.waiting_on[i] == 0 {
                walk.make_ready(i);
            }
        }
        walk
    }

    fn make_ready(&mut self, i: usize) {
        self.status[i] = Status::Ready;
        self.ready[slot(self.steps[i].kind.phase())].push_back(i);
    }

    /// The state as the walk has made it so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Step `index` of the plan.
    pub fn step(&self, index: usize) -> &Step {
        &self.steps[index]
    }

    /// Whether every step finished and succeeded, and nothing was stopped.
    pub fn is_complete(&self) -> bool {
        !self.is_stopping() && self.status.iter().all(|s| *s == Status::Done)
    }

    /// Queue records that belong to no step (the routers a plan records
    /// without a cut-over) for the next [`Walk::persist`].
    pub fn add_records(&mut self, records: Vec<Entry>) {
        self.pending.extend(records);
    }

    /// Whether nothing new may start (a step failed, or a stop was asked).
    pub fn is_stopping(&self) -> bool {
        self.failure.is_some() || self.stopped_by.is_some() || self.state_failed
    }

    /// A step that may start now, if there is one. A cut-over whose
    /// target's gate has not passed in this apply is not started: it fails,
    /// and the walk stops.
    pub fn start_next(&mut self) -> Option<Start> {
        loop {
            let i = self.next_ready()?;
            if let Some(why) = self.unpassed_check(i) {
                self.status[i] = Status::Running;
                self.complete(i, Outcome::failed(StepError::new(ErrorKind::Invalid, why)));
                continue;
            }
            self.status[i] = Status::Running;
            return Some(self.start(i));
        }
    }

    /// [`Walk::start_next`], if the step it would start is one `wanted`
    /// accepts (the next cut-over of a batch); `None` otherwise, the step
    /// left ready.
    pub fn start_next_if(&mut self, wanted: impl Fn(&Step) -> bool) -> Option<Start> {
        let s = self.next_slot()?;
        let &i = self.ready[s].front()?;
        if !wanted(&self.steps[i]) {
            return None;
        }
        self.start_next()
    }

    /// For a cut-over: why it may not switch now, if a check it needs has
    /// not passed in this apply (its target's gate, its router's tests,
    /// `before` analyses and approval), whatever the plan's edges say.
    fn unpassed_check(&self, i: usize) -> Option<String> {
        let StepKind::Cutover { router, to, .. } = &self.steps[i].kind else {
            return None;
        };
        let refused = |check: &StepId| {
            format!(
                "refused to switch {} to {to}: {check} has not passed in this apply",
                crate::addr::Address::router(router),
            )
        };
        if !self.gates_passed.contains(to) {
            return Some(refused(&StepId::Health(to.clone())));
        }
        let checks = self.prechecks.get(router).map_or(&[][..], Vec::as_slice);
        checks
            .iter()
            .find(|j| !matches!(self.status[**j], Status::Done | Status::Finished))
            .map(|j| refused(&self.steps[*j].id))
    }

    /// The next ready step whose phase may run now.
    fn next_ready(&mut self) -> Option<usize> {
        let s = self.next_slot()?;
        self.ready[s].pop_front()
    }

    /// The phase slot of [`Walk::next_ready`], without taking the step.
    fn next_slot(&self) -> Option<usize> {
        if self.is_stopping() {
            return None;
        }
        for phase in PHASES {
            let s = slot(phase);
            // Every earlier phase must have finished.
            if self.unfinished[..s].iter().any(|n| *n > 0) {
                return None;
            }
            if !self.ready[s].is_empty() {
                return Some(s);
            }
        }
        None
    }

    /// Whether the step [`Walk::start_next`] would start changes something
    /// live (a deploy, a switch, a destroy; not a gate or a drain).
    pub fn next_changes_live(&self) -> bool {
        self.next_slot()
            .and_then(|s| self.ready[s].front())
            .is_some_and(|&i| !self.steps[i].kind.is_read_only())
    }

    fn start(&self, index: usize) -> Start {
        let step = self.steps[index].clone();
        let private = match &step.kind {
            StepKind::Environment { name, .. } => self
                .state
                .environments
                .get(name)
                .map(|e| e.private.clone())
                .unwrap_or_default(),
            _ => Value::Null,
        };
        let router = match &step.kind {
            StepKind::Cutover { router, .. }
            | StepKind::Preview { router, .. }
            | StepKind::RemovePreview { router, .. }
            | StepKind::Analysis { router, .. } => self.state.routers.get(router).cloned(),
            _ => None,
        };
        Start {
            index,
            step,
            private,
            router,
            switched: SwitchSlot::default(),
        }
    }

    /// The running steps' ids.
    pub fn running(&self) -> Vec<StepId> {
        (0..self.steps.len())
            .filter(|i| self.status[*i] == Status::Running)
            .map(|i| self.steps[i].id.clone())
            .collect()
    }

    /// Record what step `index` did. Its dependents are released only by
    /// the next [`Walk::persist`].
    pub fn complete(&mut self, index: usize, outcome: Outcome) {
        assert_eq!(
            self.status[index],
            Status::Running,
            "only a running step completes"
        );
        let step = &self.steps[index];
        self.unfinished[slot(step.kind.phase())] -= 1;
        self.pending.extend(outcome.records);
        self.finished_order.push(index);
        let is_cutover = matches!(step.kind, StepKind::Cutover { .. });
        if is_cutover && outcome.switched {
            self.switched.push(Switched {
                index,
                reverted: false,
            });
        }
        match outcome.error {
            None => {
                if let StepKind::HealthGate { environment, .. } = &step.kind {
                    self.gates_passed.insert(environment.clone());
                }
                self.status[index] = Status::Finished;
                self.undurable.push(index);
            }
            Some(e) if e.kind == ErrorKind::Interrupted => {
                self.status[index] = Status::Interrupted;
            }
            Some(e) => {
                self.status[index] = Status::Failed;
                self.failure.get_or_insert((index, e));
            }
        }
    }

    /// Ask the walk to stop for `signal`: nothing new starts; `now` (a
    /// second signal) also gives up the switches back.
    pub fn stop(&mut self, signal: &'static str, now: bool) {
        self.stopped_by.get_or_insert(signal);
        self.stopped_now |= now;
    }

    /// A record could not be written: nothing new starts, and the routers
    /// this apply moved are switched back, so that they serve what the state
    /// file on disk says.
    pub fn stop_for_state(&mut self) {
        self.state_failed = true;
    }

    /// Hand every pending record to `store`, make them durable, then release
    /// the dependents of the steps they came from.
    pub fn persist(&mut self, store: &mut dyn Store) -> Result<bool, StateError> {
        for entry in std::mem::take(&mut self.pending) {
            store.record(entry, &mut self.state);
        }
        let written = store.sync(&mut self.state)?;
        for i in std::mem::take(&mut self.undurable) {
            self.status[i] = Status::Done;
            for d in self.dependents[i].clone() {
                self.waiting_on[d] -= 1;
                if self.waiting_on[d] == 0 && self.status[d] == Status::Waiting {
                    self.make_ready(d);
                }
            }
        }
        Ok(written)
    }

    /// The switches back the rules call for now (rules 4 and 7): every
    /// cut-over this apply made and has not switched back, when the first
    /// failure is of a switch, or when a signal stopped the switches half
    /// way (all routers or none); and when the state could not be written.
    /// None after a failure of a step after the switches, none for a second
    /// signal, none when all went well.
    pub fn reverts(&self) -> Vec<Revert> {
        let switch_failed = self
            .failure
            .as_ref()
            .is_some_and(|(i, _)| is_switching(self.steps[*i].kind.phase()));
        // A stop (a signal, or a state that can no longer be written) in
        // the middle of the switches: the routers already switched go back,
        // so that all move or none (rule 4). Once every switch is made,
        // nothing live moves any more: not for a signal, and not for a state
        // write that fails — traffic stays on the colour that passed its gate.
        let stopped = self.stopped_by.is_some() || self.state_failed;
        let switches_cut_short = stopped && self.switch_phase_incomplete();
        if self.stopped_now || !(switch_failed || switches_cut_short) {
            return Vec::new();
        }
        self.switched
            .iter()
            .rev()
            .filter(|s| !s.reverted)
            .filter_map(|s| self.revert_of(s.index))
            .collect()
    }

    /// Whether some cut-over of the plan did not finish well (or did not
    /// start) while another switched.
    fn switch_phase_incomplete(&self) -> bool {
        !self.switched.is_empty()
            && self.steps.iter().zip(&self.status).any(|(s, st)| {
                is_switching(s.kind.phase()) && !matches!(st, Status::Done | Status::Finished)
            })
    }

    fn revert_of(&self, index: usize) -> Option<Revert> {
        let StepKind::Cutover {
            router,
            from: Some(from),
            to,
            spec,
            backend,
            from_identity,
            ..
        } = &self.steps[index].kind
        else {
            return None;
        };
        if from == to {
            // A repair: there is nowhere else to go back to.
            return None;
        }
        // The colour as it last served: as this apply left it when it
        // changed it before the switch (a live change another router kept
        // serving through), else as the plan saw it.
        let changed_here = self
            .index
            .get(&StepId::Environment(from.clone()))
            .is_some_and(|i| matches!(self.status[*i], Status::Done | Status::Finished));
        let (colour, identity) = if changed_here {
            let rec = self.state.environments.get(from).cloned();
            let identity = rec.as_ref().and_then(|c| c.identity.clone());
            (rec, identity)
        } else {
            let rec = self.before.environments.get(from).cloned();
            let identity = from_identity
                .clone()
                .or_else(|| rec.as_ref().and_then(|c| c.identity.clone()));
            (rec, identity)
        };
        let target_changed = self
            .index
            .get(&StepId::Environment(to.clone()))
            .is_some_and(|i| matches!(self.status[*i], Status::Done | Status::Finished));
        Some(Revert {
            identity,
            target_changed,
            router: router.clone(),
            from: to.clone(),
            to: from.clone(),
            spec: spec.clone(),
            backend: backend.clone(),
            colour,
            before: self.before.routers.get(router).cloned(),
        })
    }

    /// Record the outcome of a switch back: `Ok` with its records, or why
    /// it did not happen.
    pub fn reverted(&mut self, revert: &Revert, outcome: Result<Vec<Entry>, String>) {
        for s in &mut self.switched {
            if self.steps[s.index].id == StepId::Cutover(revert.router.clone()) {
                s.reverted = true;
            }
        }
        match outcome {
            Ok(records) => {
                self.pending.extend(records);
                self.reverted
                    .push((revert.router.clone(), revert.to.clone()));
            }
            Err(why) => self.revert_failed.push((revert.router.clone(), why)),
        }
    }

    /// The way back from every router left on a new colour.
    fn way_back(&self) -> Vec<WayBack> {
        let mut out = Vec::new();
        for s in self.switched.iter().filter(|s| !s.reverted) {
            let StepKind::Cutover {
                router,
                from: Some(from),
                to,
                from_release,
                ..
            } = &self.steps[s.index].kind
            else {
                continue;
            };
            if from == to {
                continue;
            }
            out.push(self.way_back_to(router, from, from_release.clone()));
        }
        out
    }

    /// The way back from `router` to `colour`, given what this apply did to
    /// that colour after the switch.
    fn way_back_to(&self, router: &str, colour: &str, release: Option<String>) -> WayBack {
        // By id, not a scan: this is asked for every router an apply moved.
        let change = self
            .index
            .get(&StepId::Environment(colour.to_owned()))
            .copied();
        let to = |release| WayBack::To {
            router: router.to_owned(),
            colour: colour.to_owned(),
            release,
        };
        let broken = |why: &str| WayBack::Broken {
            router: router.to_owned(),
            colour: colour.to_owned(),
            why: why.to_owned(),
        };
        let Some(i) = change else {
            return to(release);
        };
        let StepKind::Environment { action, spec, .. } = &self.steps[i].kind else {
            return to(release);
        };
        match (self.status[i], action) {
            (Status::Done | Status::Finished, Action::Delete) => {
                broken("this apply destroyed it")
            }
            (Status::Done | Status::Finished, _) => to(Some(spec.release.clone())),
            (Status::Failed | Status::Interrupted, _) => broken(
                "its change failed after the cut-over took its traffic away; repair it first (`cutover plan` shows the change)",
            ),
            _ => to(release),
        }
    }

    /// The report, and the state as the walk left it.
    pub fn finish(self, elapsed: std::time::Duration) -> (ApplyReport, State) {
        let id = |i: &usize| self.steps[*i].id.clone();
        let of = |status: &[Status]| -> Vec<StepId> {
            (0..self.steps.len())
                .filter(|i| status.contains(&self.status[*i]))
                .map(|i| self.steps[i].id.clone())
                .collect()
        };
        let done = self
            .finished_order
            .iter()
            .filter(|i| matches!(self.status[**i], Status::Done | Status::Finished))
            .map(id)
            .collect();
        let report = ApplyReport {
            done,
            failed: self.failure.as_ref().map(|(i, e)| (id(i), e.clone())),
            interrupted: of(&[Status::Interrupted]),
            not_run: of(&[Status::Waiting, Status::Ready]),
            stopped_by: self.stopped_by,
            reverted: self.reverted.clone(),
            revert_failed: self.revert_failed.clone(),
            way_back: self.way_back(),
            state_error: None,
            serial: self.state.serial,
            elapsed,
        };
        (report, self.state)
    }
}

/// The router whose switch `kind` must pass before, if it is such a check
/// (a test, a `before` analysis, an approval).
fn precheck_of(kind: &StepKind) -> Option<&str> {
    match kind {
        StepKind::Test { router, .. } | StepKind::Approval { router, .. } => Some(router),
        StepKind::Analysis { router, spec, .. }
            if spec.when == crate::config::checks::When::Before =>
        {
            Some(router)
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
