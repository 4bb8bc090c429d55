//! Planning: desired state (config) + what is live + the state file -> a
//! [`document::PlanDocument`].
//!
//! Planning never touches anything live; the engine refreshes first and hands
//! the planner what it read ([`Live`]). The planner is a list of named passes
//! over one draft ([`passes::steps`] make the steps, [`edges::steps`] order
//! them), ending in [`validate::validate`], so every rule can be tested
//! without a router, pass by pass.

pub mod checks;
pub mod document;
pub mod drift;
pub mod edges;
pub mod moves;
pub mod passes;
pub mod readiness;
pub mod rollback;
pub mod saved;
pub mod sensitive;
pub mod specs;
pub mod validate;

use std::collections::{BTreeMap, BTreeSet};

use cutover_provider::{LiveEnvironment, LiveRouter};

use crate::config::model::Config;
use crate::state::model::State;
pub use document::PlanDocument;
use document::{Action, Step, StepKind, Summary, FORMAT_VERSION};
use passes::{Draft, Inputs};

/// What the refresh read from the live systems.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Each environment (of the config or the state) as its backend reads it.
    pub environments: BTreeMap<String, LiveEnvironment>,
    /// Each router of the config as the router itself reports it.
    pub routers: BTreeMap<String, LiveRouter>,
    /// The routers of the config whose backend can count a colour's open
    /// sessions (`RouterProvider::counts_sessions`), so that the plan says
    /// whether a drain with `drain_until_idle` waits on the count or by
    /// time, and which routers a settle asks. Not read from the router, but known with it; no part of the
    /// fingerprint.
    pub counts_sessions: BTreeSet<String>,
    /// For the routers whose backend has one
    /// (`RouterProvider::drain_floor`): the least time the colour each
    /// serves now must keep serving after a cut-over takes its traffic away.
    /// Read with the router; no part of the fingerprint.
    pub drain_floors: BTreeMap<String, cutover_provider::DrainFloor>,
    /// The routers of the config that a `moved` block renames in this plan:
    /// new name -> old. A router may name its entry after the router
    /// (HAProxy's map key, Caddy's route id): read under the new name, it
    /// may not show the colour it still sends traffic to under the old one.
    /// Not read; no part of the fingerprint.
    pub moved_from: BTreeMap<String, String>,
}

impl Live {
    /// This refresh, with the routers that `moved` renames.
    pub fn with_moves(mut self, moved: &[moves::Moved]) -> Self {
        self.moved_from = moved
            .iter()
            .filter_map(|m| match m.addresses()? {
                (crate::addr::Address::Router(from), crate::addr::Address::Router(to)) => {
                    Some((to, from))
                }
                _ => None,
            })
            .collect();
        self
    }
}

/// A plan that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The steps cannot be put in an order (a cycle), or a pass named a step
    /// the plan lacks (a planner bug).
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    /// The plan would change a colour that serves live traffic and keeps
    /// serving it (DESIGN.md §3, rule 3).
    #[error("{}", .0.join("\n"))]
    LiveChange(Vec<String>),
    /// The plan breaks a rule of the cut-over (a planner bug, or a request
    /// the rules cannot order, such as a colour both switched to and
    /// drained in one apply).
    #[error("the plan breaks a rule of the cut-over: {0}")]
    Invalid(#[from] validate::Invalid),
    /// `cutover rollback` was asked for something it cannot do.
    #[error("{0}")]
    Rollback(String),
    /// A `moved` block cannot be made in this state.
    #[error("{0}")]
    Moved(String),
}

/// Choices the operator makes explicitly. A plan document records them
/// (when any is made), so that `apply PLANFILE` checks the plan against a
/// fresh one made with the same choices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PlanOptions {
    /// Allow in-place changes to a colour that serves live traffic and keeps
    /// serving it (`--allow-live-changes`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_live_changes: bool,
    /// Pause before every cut-over until it is approved
    /// (`--pause-before-cutover`), as a router's `pause_before_cutover` does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pause_before_cutover: bool,
    /// How long such a pause waits (`--approval-timeout`), instead of the
    /// routers' `approval_timeout`.
    #[serde(
        rename = "approval_timeout_ms",
        skip_serializing_if = "Option::is_none",
        with = "opt_ms"
    )]
    pub approval_timeout: Option<std::time::Duration>,
}

impl PlanOptions {
    /// Whether no choice is made.
    pub fn is_default(&self) -> bool {
        *self == PlanOptions::default()
    }
}

/// An optional duration as whole milliseconds.
mod opt_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// Make the plan.
pub fn plan(
    config: &Config,
    state: Option<&State>,
    live: &Live,
) -> Result<PlanDocument, PlanError> {
    plan_with(config, state, live, &PlanOptions::default())
}

/// Make the plan, with the operator's explicit choices: every pass of
/// [`passes::steps`] then [`edges::steps`], in order, then `validate()`.
pub fn plan_with(
    config: &Config,
    state: Option<&State>,
    live: &Live,
    options: &PlanOptions,
) -> Result<PlanDocument, PlanError> {
    let empty = crate::state::empty_state();
    let inputs = Inputs {
        config,
        state: state.unwrap_or(&empty),
        live,
        options,
        secrets: sensitive::Secrets::new(config),
    };
    let mut draft = Draft::default();
    for (_, pass) in passes::steps().into_iter().chain(edges::steps()) {
        pass(&inputs, &mut draft)?;
    }
    let mut doc = document(
        state,
        drift::drift(config, inputs.state, live),
        draft.ordered,
        draft.rollback,
        drift::fingerprint(live),
    );
    doc.options = *options;
    validate::validate(&doc)?;
    Ok(doc)
}

/// A plan document of these steps, in the order given.
pub fn document(
    state: Option<&State>,
    drift: Vec<document::Drift>,
    steps: Vec<Step>,
    rollback: Vec<document::RollbackHint>,
    fingerprint: BTreeMap<String, String>,
) -> PlanDocument {
    let summary = summarize(&steps);
    PlanDocument {
        format_version: FORMAT_VERSION.to_string(),
        cutover_version: env!("CARGO_PKG_VERSION").to_string(),
        lineage: state.map(|s| s.lineage.clone()),
        serial: state.map_or(0, |s| s.serial),
        drift,
        steps,
        summary,
        rollback,
        fingerprint,
        options: PlanOptions::default(),
        readiness: Vec::new(),
        moved: Vec::new(),
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
            StepKind::RemovePreview { .. } => s.previews_removed += 1,
            StepKind::Drain { .. } | StepKind::Settle { .. } => {}
            StepKind::Test { .. } => s.tests += 1,
            StepKind::Analysis { .. } => s.analyses += 1,
            StepKind::Approval { .. } => s.approvals += 1,
        }
    }
    // The engine recomputes it once the state-only records are known.
    s.outcome = document::outcome(&s, 0);
    s
}
