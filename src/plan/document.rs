//! The plan document: the single source of truth for every view of a plan.
//!
//! The planner produces a [`PlanDocument`]; the human, JSON (and later
//! markdown) views only read it, and `apply PLANFILE` executes exactly the
//! steps it lists. Steps are stored in the order they will run (a topological
//! order of the execution graph); `depends_on` keeps the graph itself so that
//! independent steps may still run concurrently.
//!
//! Invariant: every field needed to *execute* a step (the environment spec,
//! the router spec and target colour, the health check) is inside the step, so
//! a saved plan never has to consult the configuration again.

use std::collections::BTreeMap;

use cutover_provider::{Colour, EnvironmentSpec, RouterSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::addr::StepId;
use crate::config::checks::{AnalysisSpec, TestSpec, When};
use crate::config::model::{duration_ms, Health};

/// Version of the plan document's schema: the major part is bumped on
/// incompatible changes, the minor part when fields are added.
pub const FORMAT_VERSION: &str = "1.6";

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanDocument {
    /// Schema version, [`FORMAT_VERSION`].
    pub format_version: String,
    /// The cutover version that made the plan.
    pub cutover_version: String,
    /// The lineage of the state the plan was made against (`None`: no state yet).
    pub lineage: Option<String>,
    /// The serial of that state (0 when there is none).
    pub serial: u64,
    /// Changes found outside cutover, shown apart from intended changes.
    pub drift: Vec<Drift>,
    /// The steps, in the order they will run.
    pub steps: Vec<Step>,
    /// Counts for the summary line.
    pub summary: Summary,
    /// How to go back after applying: one entry per router that cuts over.
    pub rollback: Vec<RollbackHint>,
    /// Live values the plan saw, by address (`router.public` -> `green`,
    /// `environment.green` -> release and identity), so that a saved plan can
    /// tell when the live world has moved on.
    pub fingerprint: BTreeMap<String, String>,
    /// The operator's explicit choices the plan was made with, when any.
    #[serde(default, skip_serializing_if = "super::PlanOptions::is_default")]
    pub options: super::PlanOptions,
    /// `plan --gates`: each cut-over's checks, run read-only at plan time
    /// (empty without `--gates`). Never a step: apply runs every check
    /// again, and compares a saved plan's steps, not these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readiness: Vec<Readiness>,
    /// The records the configuration's `moved` blocks rename in the state
    /// (apply makes them before any step; the steps name the new addresses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<super::moves::Moved>,
}

/// One cut-over's readiness, as `plan --gates` found it: the target's
/// health gate, its tests marked `at_plan`, its `before` analyses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    /// The router that cuts over.
    pub router: String,
    /// The colour it switches to.
    pub target: String,
    /// When the checks ran (RFC 3339, UTC, to the second).
    pub checked_at: String,
    /// What they say, together.
    pub verdict: Verdict,
    /// Each check, in the plan's order (the gate first).
    pub checks: Vec<CheckResult>,
}

/// A cut-over's readiness, together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check that could run passed.
    Ready,
    /// A check failed: the cut-over would be refused now.
    NotReady,
    /// The plan deploys the target first: its checks run during apply.
    NotDeployed,
}

/// The kind of a check of readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// The target's health gate.
    Health,
    /// A `test` hook.
    Test,
    /// An `analysis` (Prometheus query).
    Analysis,
}

/// What became of one check at plan time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// It ran and passed.
    Passed,
    /// It ran and failed.
    Failed,
    /// The plan deploys the target first: checked during apply.
    NotDeployed,
    /// Not run at plan time (`reason` says why): checked during apply.
    Skipped,
}

/// One check of a cut-over's readiness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The plan's step for it: `health.green`, `test.public.smoke`,
    /// `analysis.public.errors`.
    pub step: StepId,
    /// Its kind.
    pub kind: CheckKind,
    /// Its name as the reviewer knows it: `health`, the test's or the
    /// analysis' name.
    pub name: String,
    /// What became of it.
    pub outcome: CheckOutcome,
    /// How long it ran, in milliseconds (absent when it did not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The last value it saw: `3/3` (health rounds in a row), `exit 0`,
    /// `0.000 <= 0.01` (an analysis' last measurement against its bounds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why it failed, or why it did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl CheckResult {
    /// Whether it ran and passed.
    pub fn passed(&self) -> bool {
        self.outcome == CheckOutcome::Passed
    }
}

impl Readiness {
    /// The verdict its checks give: `NotDeployed` when they all wait for
    /// the deploy, `NotReady` when one failed, `Ready` otherwise.
    pub fn verdict_of(checks: &[CheckResult]) -> Verdict {
        if checks.iter().any(|c| c.outcome == CheckOutcome::Failed) {
            Verdict::NotReady
        } else if !checks.is_empty()
            && checks
                .iter()
                .all(|c| c.outcome == CheckOutcome::NotDeployed)
        {
            Verdict::NotDeployed
        } else {
            Verdict::Ready
        }
    }
}

/// What happens to an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `+` it does not exist and will be created.
    Create,
    /// `~` it will be redeployed in place (same endpoints).
    Update,
    /// `-/+` it will be destroyed and created again.
    Replace,
    /// `-` it is no longer in the configuration and will be destroyed.
    Delete,
}

impl Action {
    /// Terraform's symbol for the action.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// One attribute that changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    /// Attribute name, e.g. `release`.
    pub name: String,
    /// Value before (`None`: not set).
    pub before: Option<Value>,
    /// Value after (`None`: removed).
    pub after: Option<Value>,
    /// Whether the value must be shown as `(sensitive)`.
    pub sensitive: bool,
}

/// Where a step stands relative to live traffic, for the plan's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Traffic {
    /// No router sends it traffic now.
    Idle,
    /// A router sends it traffic now and will keep doing so.
    Live,
    /// A cut-over in this plan has just taken traffic away from it.
    Drained,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique id: `environment.green`, `health.green`, `cutover.public`,
    /// `forget.router.old`; always the one its kind gives
    /// ([`StepKind::id`]), which `plan::validate` checks.
    pub id: StepId,
    /// Ids of the steps that must finish first.
    pub depends_on: Vec<StepId>,
    /// What the step does.
    #[serde(flatten)]
    pub kind: StepKind,
}

/// The kinds of step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepKind {
    /// Create, update, replace or delete an environment.
    Environment {
        /// What happens.
        action: Action,
        /// The environment's name.
        name: String,
        /// Whether it serves live traffic when the step runs.
        traffic: Traffic,
        /// The attributes that change.
        changes: Vec<AttributeChange>,
        /// What to deploy (for delete: the last deployed spec).
        spec: EnvironmentSpec,
        /// The backend kind (`process`, `exec`).
        backend: String,
    },
    /// Wait until an environment passes its health check.
    HealthGate {
        /// The environment's name.
        environment: String,
        /// The endpoints to check.
        endpoints: Vec<String>,
        /// The check.
        health: Health,
        /// The release the environment must report at `health.release_path`
        /// (checked only when `release_path` is set).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        release: Option<String>,
    },
    /// Switch a router's live traffic to another colour.
    Cutover {
        /// The router's name.
        router: String,
        /// The colour live now (`None`: the router sends no traffic anywhere
        /// cutover knows of).
        from: Option<String>,
        /// The colour it switches to.
        to: String,
        /// The release of the `from` colour, when known.
        from_release: Option<String>,
        /// The identity of what ran as the `from` colour when the plan was
        /// made (a process's pid and start time): a switch back goes to it
        /// only while it still is what served (DESIGN.md §3, rule 7).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_identity: Option<String>,
        /// Without `from`: what the router says it sends traffic to, when
        /// it says anything (a forward to no colour's target group, a
        /// weighted forward, a backend that is no colour's), so that the
        /// plan does not call it a router with nothing yet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_raw: Option<String>,
        /// The release of the `to` colour after this apply.
        to_release: Option<String>,
        /// The router spec the switch is made with.
        spec: RouterSpec,
        /// The target colour.
        target: Colour,
        /// The backend kind (`haproxy`, `exec`).
        backend: String,
        /// The router's `verify {}` check, run through the router after the
        /// switch; on failure the router is switched back. Boxed: most
        /// cut-overs have none, and inline it made this variant (so every
        /// step) 200 bytes larger than the next largest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verify: Option<Box<Health>>,
        /// Why the router is not where the configuration says, when cutover
        /// itself put it there (a `cutover rollback`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// How long the switch may wait, after the gate passed, for the
        /// router's own health check to see the target up (the router's
        /// `ready_timeout`).
        #[serde(
            rename = "ready_timeout_ms",
            with = "duration_ms",
            default = "default_ready_timeout"
        )]
        ready_timeout: std::time::Duration,
        /// Whether this cut-over is a `cutover rollback`: the router's state
        /// is then marked as rolled back, so the next plan says why it is
        /// not where the configuration puts it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rollback: bool,
        /// The router's `after` analyses in this plan: recorded in the state
        /// as not passed yet with the switch, and cleared as each passes, so
        /// that an apply stopped while they measure leaves them for the next.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        after_checks: Vec<String>,
        /// For a router of several instances of its load balancer
        /// (`instances = [...]`): their names, in the configuration's order,
        /// as the refresh read them. Empty for a router of one instance.
        /// They switch together or not at all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        instances: Vec<String>,
    },
    /// Wait while the colour a cut-over took traffic away from finishes its
    /// open connections, before anything changes it.
    Drain {
        /// The router whose cut-over drained the colour.
        router: String,
        /// The drained colour.
        colour: String,
        /// How long to wait, in milliseconds: with `until_idle`, the most.
        duration_ms: u64,
        /// `drain_until_idle`: end as soon as the router counts no open
        /// session to the colour (when it can count them).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        until_idle: bool,
        /// With `until_idle`: whether the router's backend can count open
        /// sessions; when it cannot, the drain waits its whole duration.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        counts_sessions: bool,
        /// With `until_idle`: the router's backend kind (`haproxy`, `caddy`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backend: Option<String>,
        /// With `until_idle` on a backend that counts: the router spec the
        /// count is read with (the colour is one of its colours).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spec: Option<RouterSpec>,
        /// When the router's own drain floor (`RouterProvider::drain_floor`,
        /// the ALB's deregistration delay) is longer than its `drain`: that
        /// floor, which `duration_ms` then is, waited by time whatever
        /// `until_idle` says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        floor: Option<cutover_provider::DrainFloor>,
    },
    /// Wait, before an environment's change, until no router that can count
    /// its sessions holds a stream to it: a request the router still carries
    /// to the colour (one in flight, or waiting in the router's own
    /// connection retry after the colour's process died) would otherwise be
    /// answered by the new release, which no gate has passed yet. At
    /// `most_ms` the change goes ahead anyway, with a warning.
    Settle {
        /// The environment about to change.
        environment: String,
        /// The routers that may hold streams to it: each counting router
        /// that sends it traffic now, or did when cutover last switched it,
        /// or shows it on its preview. Never empty.
        routers: Vec<SettleRouter>,
        /// The most it waits, in milliseconds.
        most_ms: u64,
        /// Whether the environment is one a cut-over of this plan drains:
        /// the wait then runs after the switches.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        after_cutover: bool,
    },
    /// Point a router's preview listener or route at a colour, so the release
    /// can be tried before the cut-over. Never touches live traffic.
    Preview {
        /// The router's name.
        router: String,
        /// The colour the preview shows now (`None`: no preview yet).
        from: Option<String>,
        /// The colour it will show.
        to: String,
        /// The router spec.
        spec: RouterSpec,
        /// The target colour.
        target: Colour,
        /// The backend kind.
        backend: String,
        /// Whether `to` is the colour a cut-over of this plan drains: the
        /// preview then moves to it only after the cut-over.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        after_cutover: bool,
        /// How long the repoint may wait for the router's own health check
        /// to see `to` up (the router's `ready_timeout`).
        #[serde(
            rename = "ready_timeout_ms",
            with = "duration_ms",
            default = "default_ready_timeout"
        )]
        ready_timeout: std::time::Duration,
    },
    /// Remove a router's preview listener or route: the router has no
    /// `preview` any more, and its preview still shows a colour. Never
    /// touches live traffic.
    RemovePreview {
        /// The router's name.
        router: String,
        /// The colour the preview shows now.
        from: String,
        /// The router spec.
        spec: RouterSpec,
        /// The backend kind.
        backend: String,
    },
    /// Run a router's `test "NAME"` hook against the colour about to go
    /// live, after its gate and before the switch; a failure keeps the old
    /// colour live.
    Test {
        /// The router's name.
        router: String,
        /// The test's name.
        name: String,
        /// The colour about to go live.
        target: String,
        /// Its endpoints (`CUTOVER_TARGET_ENDPOINTS`).
        endpoints: Vec<String>,
        /// Where the router's preview answers, when it shows `target` while
        /// the test runs (`CUTOVER_PREVIEW_URL`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preview_url: Option<String>,
        /// The command and its settings.
        spec: TestSpec,
    },
    /// Measure a router's `analysis "NAME"` query: before the switch (a
    /// failure keeps the old colour live) or after every switch, under live
    /// traffic (a failure switches back, like a failed verify).
    Analysis {
        /// The router's name.
        router: String,
        /// The analysis' name.
        name: String,
        /// The colour the router switches to.
        target: String,
        /// The query, its bounds and rounds.
        spec: AnalysisSpec,
        /// An `after` analysis of a switch an earlier apply made, which
        /// stopped before it passed (the state's `unchecked`): it runs
        /// again, with no switch in this plan.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        recheck: bool,
    },
    /// Wait, once the checks before the router's switch passed, until
    /// someone approves it (`cutover approve`); at the timeout nothing
    /// switches.
    Approval {
        /// The router's name.
        router: String,
        /// The colour live now.
        from: Option<String>,
        /// The colour it switches to once approved.
        to: String,
        /// How long the apply waits.
        #[serde(rename = "timeout_ms", with = "duration_ms")]
        timeout: std::time::Duration,
    },
    /// Stop tracking a router that left the configuration (traffic is left as is).
    ForgetRouter {
        /// The router's name.
        router: String,
        /// The colour the state last recorded it sending traffic to: it
        /// still does (cutover stops managing it, not its traffic), so that
        /// colour is not idle.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        live: Option<String>,
    },
}

/// One router a [`StepKind::Settle`] reads the count of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettleRouter {
    /// The router's name.
    pub router: String,
    /// Its backend kind (`haproxy`).
    pub backend: String,
    /// The router spec the count is read with (the environment is one of
    /// its colours).
    pub spec: RouterSpec,
}

impl SettleRouter {
    /// The routers a settle waits for, as a list for people
    /// (`router.a, router.b`).
    pub fn names(routers: &[SettleRouter]) -> String {
        let names: Vec<String> = routers
            .iter()
            .map(|r| crate::addr::Address::router(&r.router).to_string())
            .collect();
        names.join(", ")
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn default_ready_timeout() -> std::time::Duration {
    crate::config::model::DEFAULT_READY_TIMEOUT
}

/// Where a step runs relative to the switches of its plan. The apply walk
/// starts a switch only when every step before the switches has finished,
/// and a step after the switches only when every switch has (so the switch
/// happens last, and nothing runs after a switch while another router may
/// still be switched back); plans list their steps in this order too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Changes to idle colours, health gates, previews of idle colours.
    BeforeSwitch,
    /// Cut-overs.
    Switch,
    /// Checks under live traffic once every switch is made (`after`
    /// analyses): a failure switches back, as a failed verify does.
    Verify,
    /// Drains, changes to colours a cut-over just drained, previews moved
    /// to them.
    AfterSwitch,
}

impl StepKind {
    /// The id a step of this kind has.
    pub fn id(&self) -> StepId {
        match self {
            StepKind::Environment { name, .. } => StepId::Environment(name.clone()),
            StepKind::HealthGate { environment, .. } => StepId::Health(environment.clone()),
            StepKind::Cutover { router, .. } => StepId::Cutover(router.clone()),
            StepKind::Drain { router, .. } => StepId::Drain(router.clone()),
            StepKind::Settle { environment, .. } => StepId::Settle(environment.clone()),
            StepKind::Preview { router, .. } | StepKind::RemovePreview { router, .. } => {
                StepId::Preview(router.clone())
            }
            StepKind::ForgetRouter { router, .. } => StepId::ForgetRouter(router.clone()),
            StepKind::Test { router, name, .. } => StepId::Test(router.clone(), name.clone()),
            StepKind::Analysis { router, name, .. } => {
                StepId::Analysis(router.clone(), name.clone())
            }
            StepKind::Approval { router, .. } => StepId::Approval(router.clone()),
        }
    }

    /// Where the step runs relative to the switches.
    pub fn phase(&self) -> Phase {
        match self {
            StepKind::Environment { traffic, .. } if *traffic == Traffic::Drained => {
                Phase::AfterSwitch
            }
            StepKind::Environment { .. }
            | StepKind::HealthGate { .. }
            | StepKind::ForgetRouter { .. } => Phase::BeforeSwitch,
            StepKind::Preview { after_cutover, .. } if *after_cutover => Phase::AfterSwitch,
            StepKind::Preview { .. } | StepKind::RemovePreview { .. } => Phase::BeforeSwitch,
            StepKind::Cutover { .. } => Phase::Switch,
            StepKind::Drain { .. } => Phase::AfterSwitch,
            StepKind::Settle { after_cutover, .. } if *after_cutover => Phase::AfterSwitch,
            StepKind::Settle { .. } => Phase::BeforeSwitch,
            StepKind::Test { .. } | StepKind::Approval { .. } => Phase::BeforeSwitch,
            StepKind::Analysis { spec, .. } => match spec.when {
                When::Before => Phase::BeforeSwitch,
                When::After => Phase::Verify,
            },
        }
    }

    /// Whether the step only reads or waits, so that stopping it half-way
    /// changes nothing cutover tracks (a health gate, a drain's wait, an
    /// analysis, an approval; a test, whose process group is killed).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            StepKind::HealthGate { .. }
                | StepKind::Drain { .. }
                | StepKind::Settle { .. }
                | StepKind::Test { .. }
                | StepKind::Analysis { .. }
                | StepKind::Approval { .. }
        )
    }
}

impl Step {
    /// A step of this kind, depending on nothing yet.
    pub fn new(kind: StepKind) -> Self {
        Step {
            id: kind.id(),
            depends_on: Vec::new(),
            kind,
        }
    }
}

/// Something that changed outside cutover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// The address, e.g. `router.public`.
    pub address: String,
    /// The class of drift.
    pub kind: DriftKind,
    /// A sentence for people.
    pub message: String,
}

/// Classes of drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// A router was switched behind cutover's back.
    RouterSwitched,
    /// An environment cutover deployed is gone (its process died).
    EnvironmentGone,
    /// What runs was replaced (another process, another deployment).
    EnvironmentReplaced,
    /// The release an environment reports differs from what cutover deployed.
    ReleaseChanged,
    /// The router reports something changed behind cutover's back (an
    /// include edited without a reload, a route lost on a restart).
    RouterChanged,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Environments created.
    pub add: usize,
    /// Environments updated in place.
    pub change: usize,
    /// Environments destroyed (a replace counts in `add` and `destroy`).
    pub destroy: usize,
    /// Router cut-overs.
    pub cutover: usize,
    /// Health gates.
    pub health_gates: usize,
    /// Routers forgotten.
    pub forget: usize,
    /// Preview listeners repointed.
    #[serde(default)]
    pub preview: usize,
    /// Preview listeners removed (`preview` left the router's block).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub previews_removed: usize,
    /// Test hooks run before switches.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tests: usize,
    /// Analyses, before or after switches.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub analyses: usize,
    /// Pauses for approval.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub approvals: usize,
    /// Records renamed in the state by `moved` blocks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub moved: usize,
    /// What kind of plan this is, for CI labels (computed by [`outcome`]).
    #[serde(default)]
    pub outcome: Outcome,
}

/// The kind of a plan as a whole, so that CI can label a pull request without
/// reading text. The order of the variants is their severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing to do.
    #[default]
    NoChanges,
    /// Only the state changes (router colours recorded, routers forgotten):
    /// nothing live is touched.
    StateOnly,
    /// Environments change (or a preview route moves), but no router cuts
    /// over.
    Changes,
    /// At least one router cuts over, and nothing is destroyed.
    Cutover,
    /// Something is destroyed or replaced (wins over `Cutover`).
    Destructive,
    /// `plan --gates`: a cut-over's check failed at plan time (wins over
    /// every other: CI blocks the merge on it).
    NotReady,
}

impl Outcome {
    /// The label as written in JSON, e.g. `cutover`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NoChanges => "no_changes",
            Outcome::StateOnly => "state_only",
            Outcome::Changes => "changes",
            Outcome::Cutover => "cutover",
            Outcome::Destructive => "destructive",
            Outcome::NotReady => "not_ready",
        }
    }
}

/// The outcome of a plan with these counts and `records_len` state-only
/// router records (the engine's `Planned::records`). A replace counts in
/// `destroy`, so it is destructive too.
pub fn outcome(summary: &Summary, records_len: usize) -> Outcome {
    if summary.destroy > 0 {
        Outcome::Destructive
    } else if summary.cutover > 0 {
        Outcome::Cutover
    } else if summary.add
        + summary.change
        + summary.preview
        + summary.previews_removed
        + summary.analyses
        > 0
    {
        // A preview route is repointed on a live router, but no live
        // traffic moves: a change, not a cut-over. (Analyses without a
        // cut-over check again a switch an earlier apply left unchecked.)
        Outcome::Changes
    } else if summary.forget + summary.moved > 0 || records_len > 0 {
        Outcome::StateOnly
    } else {
        Outcome::NoChanges
    }
}

impl Summary {
    /// Whether the plan changes anything.
    pub fn has_changes(&self) -> bool {
        // Analyses without a cut-over: the checks an earlier apply left
        // pending (they clear the state's `unchecked` as they pass).
        self.add
            + self.change
            + self.destroy
            + self.cutover
            + self.forget
            + self.preview
            + self.previews_removed
            + self.analyses
            + self.moved
            > 0
    }
}

/// The way back for one router, as it will be after the plan is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackHint {
    /// The router.
    pub router: String,
    /// The colour a rollback returns to.
    pub to: String,
    /// The release that colour runs after the apply, when known.
    pub release: Option<String>,
    /// Whether this plan changes that colour after the cut-over took its
    /// traffic away, so `release` is the release it will run then, not the
    /// one it serves now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed_after_cutover: bool,
}

impl RollbackHint {
    /// What the rollback does, for people: `switches back to blue, which
    /// keeps running 1.4.1`, or, when this plan changes blue after the
    /// cut-over, `switches back to blue, which will run 1.4.2 (this apply
    /// changes it after the cut-over)`.
    pub fn describe(&self, code: impl Fn(&str) -> String) -> String {
        let to = code(&self.to);
        match (&self.release, self.changed_after_cutover) {
            (Some(r), false) => format!("switches back to {to}, which keeps running {}", code(r)),
            (Some(r), true) => format!(
                "switches back to {to}, which will run {} (this apply changes it after the cut-over)",
                code(r)
            ),
            (None, _) => format!("switches back to {to}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(add: usize, change: usize, destroy: usize, cutover: usize) -> Summary {
        Summary {
            add,
            change,
            destroy,
            cutover,
            health_gates: cutover,
            ..Summary::default()
        }
    }

    #[test]
    fn outcome_no_changes() {
        assert_eq!(outcome(&Summary::default(), 0), Outcome::NoChanges);
        assert_eq!(Summary::default().outcome, Outcome::NoChanges);
    }

    #[test]
    fn outcome_state_only() {
        assert_eq!(outcome(&Summary::default(), 1), Outcome::StateOnly);
        let forget = Summary {
            forget: 1,
            ..Summary::default()
        };
        assert_eq!(outcome(&forget, 0), Outcome::StateOnly);
    }

    #[test]
    fn outcome_changes() {
        assert_eq!(outcome(&summary(1, 0, 0, 0), 0), Outcome::Changes);
        assert_eq!(outcome(&summary(0, 2, 0, 0), 3), Outcome::Changes);
        let preview = Summary {
            preview: 1,
            ..Summary::default()
        };
        assert_eq!(outcome(&preview, 0), Outcome::Changes);
    }

    #[test]
    fn outcome_cutover() {
        assert_eq!(outcome(&summary(0, 1, 0, 1), 0), Outcome::Cutover);
        assert_eq!(outcome(&summary(0, 0, 0, 1), 1), Outcome::Cutover);
    }

    #[test]
    fn outcome_destructive_wins_over_cutover() {
        assert_eq!(outcome(&summary(0, 0, 1, 0), 0), Outcome::Destructive);
        // A replace counts in add and destroy.
        assert_eq!(outcome(&summary(1, 0, 1, 1), 0), Outcome::Destructive);
    }

    #[test]
    fn outcome_is_snake_case_in_json_and_defaults_when_missing() {
        let json = serde_json::to_value(summary(0, 1, 0, 1)).unwrap();
        assert_eq!(json["outcome"], "no_changes");
        let mut s = summary(0, 1, 0, 1);
        s.outcome = outcome(&s, 0);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["outcome"], Outcome::Cutover.as_str());
        let old: Summary = serde_json::from_str(
            r#"{"add":0,"change":0,"destroy":0,"cutover":0,"health_gates":0,"forget":0}"#,
        )
        .unwrap();
        assert_eq!(old.outcome, Outcome::NoChanges);
    }
}
