//! The typed desired state that the config layer produces.
//!
//! Everything above the config layer (graph, plan, engine) works on these
//! types only: every expression has been evaluated, every reference resolved,
//! and every value keeps the span of the source it came from so that later
//! layers can still point at the file, line and column.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A place in a configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// The file, as given to the loader (relative to the config directory).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte range in the file.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
}

pub use super::marks::Marks;
pub use crate::addr::Address;

/// The whole desired state of one configuration directory.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The configuration directory; relative paths resolve against it.
    pub dir: PathBuf,
    /// Settings from the `cutover {}` block.
    pub settings: Settings,
    /// Variables, with their final values.
    pub variables: BTreeMap<String, Variable>,
    /// Evaluated locals.
    pub locals: BTreeMap<String, Value>,
    /// Environments by name.
    pub environments: BTreeMap<String, Environment>,
    /// Routers by name.
    pub routers: BTreeMap<String, Router>,
    /// Outputs by name.
    pub outputs: BTreeMap<String, Output>,
    /// `notify` blocks by name.
    pub notify: BTreeMap<String, Notify>,
    /// Every reference between blocks: `from` refers to `to`. Used by the graph
    /// for ordering; cycles have already been reported by the config layer.
    pub references: Vec<(Address, Address)>,
    /// `moved {}` blocks, in the order written: what the state records
    /// under `from` is now `to`'s (config::moved).
    pub moves: Vec<Move>,
}

/// A `moved { from = ..., to = ... }` block: an environment or router that
/// the state records under `from` is the configuration's `to` now (a block
/// renamed, or given `for_each`), so that it is neither destroyed nor made
/// again.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    /// The old address: `environment.green`.
    pub from: Address,
    /// The new one: `environment.green["api"]`.
    pub to: Address,
    /// Where the block is.
    pub span: Span,
}

/// The `cutover {}` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where the state file lives (relative to the config dir). Default
    /// `cutover.state.json`.
    pub state_path: PathBuf,
    /// Default `--parallelism` (10).
    pub parallelism: usize,
    /// A shared backend for the state (`backend "pg" {}`, `backend "git"
    /// {}`); `None`: the local file at `state_path`.
    pub backend: Option<BackendSettings>,
    /// `lineage = "..."`: the state this configuration manages; a state of
    /// another lineage is refused.
    pub lineage: Option<String>,
    /// `plan_gates`: whether `cutover plan` runs each cut-over's checks
    /// read-only (`plan --gates`) without the flag.
    pub plan_gates: PlanGates,
}

/// The `cutover {}` block's `plan_gates`: `false` (the default), `true`, or
/// `"ci"` (when the environment variable `CI` is set and not `false` or
/// `0`, as CI services set it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlanGates {
    /// Only with `plan --gates`.
    #[default]
    Off,
    /// Always (`plan --no-gates` turns it off).
    On,
    /// In CI.
    InCi,
}

impl PlanGates {
    /// Whether a plan runs the checks, given the value of `CI`.
    pub fn applies(self, ci: Option<&str>) -> bool {
        match self {
            PlanGates::Off => false,
            PlanGates::On => true,
            PlanGates::InCi => ci.is_some_and(|v| {
                let v = v.trim();
                !v.is_empty() && !v.eq_ignore_ascii_case("false") && v != "0"
            }),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            state_path: PathBuf::from("cutover.state.json"),
            parallelism: 10,
            backend: None,
            lineage: None,
            plan_gates: PlanGates::Off,
        }
    }
}

/// The `backend "KIND" {}` block of the `cutover {}` block.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendSettings {
    /// The state in PostgreSQL.
    Pg(PgSettings),
    /// The state on a branch of a git remote.
    Git(GitSettings),
}

/// `backend "pg" {}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PgSettings {
    /// The connection string (`postgres://user:pass@host:port/db?sslmode=...`
    /// or `host=... dbname=...`); `None`: from `CUTOVER_PG_CONN_STR`. Never
    /// shown: it may hold a password.
    pub conn_str: Option<String>,
    /// Which state in the database (several per database): `default`.
    pub name: String,
    /// The schema of cutover's tables: `public`.
    pub schema: String,
    /// A CA bundle for `sslmode=verify-full` (PEM), beside the system's.
    pub ca_file: Option<PathBuf>,
    /// Where the block is, for errors.
    pub span: Span,
}

/// `backend "git" {}`.
#[derive(Debug, Clone, PartialEq)]
pub struct GitSettings {
    /// The remote, as `git push` takes it (a URL or a path).
    pub repo: String,
    /// The branch holding the state: `cutover-state`.
    pub branch: String,
    /// The state file's path in that branch: `cutover.state.json`.
    pub path: String,
    /// Where the block is, for errors.
    pub span: Span,
}

pub use super::types::{ObjectAttr, VarType};

/// A `variable` block with its final value.
#[derive(Debug, Clone)]
pub struct Variable {
    /// The variable's name.
    pub name: String,
    /// `description`
    pub description: Option<String>,
    /// `type`
    pub var_type: VarType,
    /// `sensitive = true`: the value never appears in output or state.
    pub sensitive: bool,
    /// `nullable` (default true): whether the value may be null.
    pub nullable: bool,
    /// The final value (from `--var`, `--var-file`, `CUTOVER_VAR_name` or the
    /// default, in that order of precedence).
    pub value: Value,
    /// Where the block is.
    pub span: Span,
}

/// An HTTP health check, run by cutover itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `path` (default `/`), requested on every endpoint; ignored when `url` is set.
    pub path: String,
    /// `url`: a full URL to request instead of `http://ENDPOINT/PATH`.
    pub url: Option<String>,
    /// `status` (default 200): the expected HTTP status.
    pub status: u16,
    /// `interval` (default "1s"): time between attempts.
    #[serde(with = "duration_ms")]
    pub interval: Duration,
    /// `timeout` (default "30s"): overall time the gate may take.
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    /// `request_timeout` (default "2s"): time one request may take.
    #[serde(with = "duration_ms")]
    pub request_timeout: Duration,
    /// `successes` (default 1): consecutive passing rounds needed.
    pub successes: u32,
    /// `release_url` / `release_path`: where the environment reports the release
    /// it runs (body text, or a JSON object with a `release` field). Optional.
    pub release_path: Option<String>,
    /// `ca_file`: a PEM bundle of CA certificates trusted for `https://` checks
    /// in addition to the system's, resolved against the configuration
    /// directory (and checked to hold certificates) when the config is loaded.
    /// Left out of the plan document when unset, so plans without it read as
    /// they did before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            path: "/".into(),
            url: None,
            status: 200,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(2),
            successes: 1,
            release_path: None,
            ca_file: None,
        }
    }
}

/// Serialize durations as whole milliseconds.
pub mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Serialize as milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    /// Deserialize from milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// A backend block (`process {}`, `exec {}`, `haproxy {}`): its kind, its
/// evaluated body, and the spans of its attributes for diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// The block type: `process`, `exec`, `haproxy`, ...
    pub kind: String,
    /// The evaluated body as a JSON object (nested blocks become objects).
    pub body: Value,
    /// The span of the block's type name.
    pub span: Span,
    /// The span of each attribute, by name.
    pub attribute_spans: BTreeMap<String, Span>,
    /// Which parts of the body are sensitive.
    pub marks: Marks,
}

/// An `environment` block: one colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// The name (the colour), e.g. `green`.
    pub name: String,
    /// `release`
    pub release: String,
    /// `endpoint = "host:port"` or `endpoints = [...]`, normalised to a list.
    pub endpoints: Vec<String>,
    /// The `health {}` block, or the defaults.
    pub health: Health,
    /// The backend block, if any; `None` means deployed by something else.
    pub backend: Option<Backend>,
    /// Which parts of its release, endpoints and health check are sensitive
    /// (the backend's body has its own).
    pub marks: EnvironmentMarks,
    /// Where the block is.
    pub span: Span,
}

/// Which parts of an environment are sensitive (config::marks): each is
/// shown and stored as a marker, and the rest as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvironmentMarks {
    /// Of `release`.
    pub release: Marks,
    /// Of `endpoints`, as a list.
    pub endpoints: Marks,
    /// Of the `health {}` block, by attribute (`path`, `url`, `release_path`).
    pub health: Marks,
}

impl EnvironmentMarks {
    /// Whether nothing is sensitive.
    pub fn is_clear(&self) -> bool {
        self.release.is_clear() && self.endpoints.is_clear() && self.health.is_clear()
    }
}

/// The default of a router's `ready_timeout`: long enough for HAProxy's
/// default check (`inter 2s`, `rise 2`) to see a colour up many times over.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A `router` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Router {
    /// The name, e.g. `public`.
    pub name: String,
    /// `live = environment.X`: the name of the environment that should get
    /// live traffic.
    pub live: String,
    /// The span of the `live` attribute's value.
    pub live_span: Span,
    /// `preview = environment.Y`: the environment the router's preview
    /// listener or route sends traffic to, for trying a release before the
    /// cut-over. Never touches live traffic.
    pub preview: Option<String>,
    /// The span of the `preview` attribute's value.
    pub preview_span: Option<Span>,
    /// `verify {}`: a check through the router after the cut-over (same
    /// arguments as `health`, with `url` required); on failure the router is
    /// switched back.
    pub verify: Option<Health>,
    /// `drain`: how long the colour a cut-over takes traffic away from keeps
    /// serving its open connections before anything changes it.
    pub drain: Duration,
    /// `drain_until_idle = true`: the drain ends as soon as the drained
    /// colour has no open sessions (on a router that can count them), with
    /// `drain` as its maximum.
    pub drain_until_idle: bool,
    /// `ready_timeout` (default "30s"): how long a cut-over waits, after the
    /// target passed cutover's health gate, for the router's own health
    /// check to see the target up before it gives up.
    pub ready_timeout: Duration,
    /// `preview_url`: where the router's preview answers (given to its
    /// tests as `CUTOVER_PREVIEW_URL` when the preview shows their target).
    pub preview_url: Option<String>,
    /// `test "NAME" {}` blocks, by name: run against the colour about to go
    /// live, after its gate, before the switch.
    pub tests: BTreeMap<String, super::checks::TestSpec>,
    /// `analysis "NAME" {}` blocks, by name.
    pub analyses: BTreeMap<String, super::checks::AnalysisSpec>,
    /// `pause_before_cutover` (default false): the apply waits, once every
    /// check before the switch passed, until `cutover approve`.
    pub pause_before_cutover: bool,
    /// `approval_timeout` (default "1h"): how long it waits.
    pub approval_timeout: Duration,
    /// The backend block (exactly one is required).
    pub backend: Backend,
    /// Which parts of `verify` are sensitive, by attribute.
    pub verify_marks: Marks,
    /// Where the block is.
    pub span: Span,
}

/// An `output` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The name.
    pub name: String,
    /// The evaluated value.
    pub value: Value,
    /// `description`
    pub description: Option<String>,
    /// `sensitive = true`, or computed from a sensitive value.
    pub sensitive: bool,
    /// Which parts of the value are sensitive (all of it with
    /// `sensitive = true`).
    pub marks: Marks,
    /// Where the block is.
    pub span: Span,
}

/// The events a `notify` block can be sent (docs/notify.md), each a group of
/// the progress lines of `apply --json` (docs/events.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotifyEvent {
    /// `cutover_done`: a router switched to its new colour.
    CutoverDone,
    /// `reverted`: a router this apply cut over was switched back, or
    /// could not be.
    Reverted,
    /// `failed`: a step failed.
    Failed,
    /// `awaiting_approval`: the apply waits for `cutover approve`.
    AwaitingApproval,
    /// `apply_finished`: the apply (or rollback) is over: its summary.
    ApplyFinished,
}

impl NotifyEvent {
    /// Every event, in the order the docs list them.
    pub const ALL: [NotifyEvent; 5] = [
        NotifyEvent::CutoverDone,
        NotifyEvent::Reverted,
        NotifyEvent::Failed,
        NotifyEvent::AwaitingApproval,
        NotifyEvent::ApplyFinished,
    ];

    /// The name written in `events = [...]`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::CutoverDone => "cutover_done",
            NotifyEvent::Reverted => "reverted",
            NotifyEvent::Failed => "failed",
            NotifyEvent::AwaitingApproval => "awaiting_approval",
            NotifyEvent::ApplyFinished => "apply_finished",
        }
    }

    /// The event named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<NotifyEvent> {
        NotifyEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// What a `notify` block posts: `format = "json"` or `"slack"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyFormat {
    /// The event object itself, as `apply --json` prints it.
    #[default]
    Json,
    /// `{"text": "..."}`, the shape of a Slack incoming webhook.
    Slack,
}

/// The default of a `notify` block's `timeout`, per POST.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// A `notify "NAME" {}` block: a webhook for an apply's events.
///
/// Its `Debug` form leaves out the URL and the header values: a webhook URL
/// is a credential (Slack's is), and headers carry tokens.
#[derive(Clone, PartialEq)]
pub struct Notify {
    /// The label.
    pub name: String,
    /// `webhook`: an `http://` or `https://` URL, never shown.
    pub webhook: reqwest::Url,
    /// `events`: which events it is sent (default: all).
    pub events: std::collections::BTreeSet<NotifyEvent>,
    /// `headers`: sent with every POST; their values are never shown.
    pub headers: BTreeMap<String, String>,
    /// `format`.
    pub format: NotifyFormat,
    /// `timeout`: how long one POST may take.
    pub timeout: Duration,
    /// Where the block is.
    pub span: Span,
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notify")
            .field("name", &self.name)
            .field("webhook", &"(not shown)")
            .field("events", &self.events)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("format", &self.format)
            .field("timeout", &self.timeout)
            .field("span", &self.span)
            .finish()
    }
}
