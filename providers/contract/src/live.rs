//! What providers read back from the live world: the live colour of a
//! router, the state of an environment, and what changed outside cutover.
//!
//! Drift is typed, so that the core decides by kind (an environment gone is
//! created again, one replaced is shown as such) and never by the words of a
//! message; the message is for the operator.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a provider reads of one environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveEnvironment {
    /// Whether the environment exists (a process runs, the deployment is there).
    pub exists: bool,
    /// The release it runs, when the provider can tell.
    pub release: Option<String>,
    /// A stable identity of what runs (for a process: pid and start time), so
    /// that a replacement made behind cutover's back shows as drift.
    pub identity: Option<String>,
    /// Changes noticed outside cutover.
    #[serde(default)]
    pub drift: Vec<EnvironmentDrift>,
    /// Provider-private data to keep in the state (pid, start time, ...).
    pub private: Value,
}

/// One change to an environment that cutover did not make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentDrift {
    /// What kind of change.
    pub kind: EnvironmentDriftKind,
    /// A sentence for the plan, e.g. "process 4242 is gone (its log: ...)".
    pub message: String,
}

impl EnvironmentDrift {
    /// A drift of `kind`, told by `message`.
    pub fn new(kind: EnvironmentDriftKind, message: impl Into<String>) -> Self {
        EnvironmentDrift {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for EnvironmentDrift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The kinds of [`EnvironmentDrift`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentDriftKind {
    /// What cutover deployed no longer runs, and nothing runs in its place
    /// (the process exited, the deployment was deleted).
    Gone,
    /// Something else runs where cutover's deployment ran (the pid now
    /// belongs to another process, another deployment revision).
    Replaced,
    /// Anything else changed outside cutover (an `exec` `read` reporting
    /// "replica count changed from 3 to 1").
    Changed,
}

/// What a provider reads of one router.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveRouter {
    /// The colour that receives live traffic now, if it is one of the spec's
    /// colours.
    pub live: Option<String>,
    /// What the router itself says (e.g. the HAProxy backend name), shown when
    /// it matches no colour.
    pub raw: Option<String>,
    /// The colour the router's preview listener or route sends traffic to, for
    /// routers that have one (`preview = environment.X`).
    #[serde(default)]
    pub preview: Option<String>,
    /// Changes the provider noticed outside cutover. Each is repaired by
    /// switching to the live colour again (the contract of
    /// [`RouterProvider::switch`](crate::RouterProvider::switch)).
    #[serde(default)]
    pub drift: Vec<RouterDrift>,
    /// For a router that drives several instances of its load balancer
    /// (`instances = [...]`, a [`Fleet`](crate::Fleet)): what each instance
    /// serves, in the configuration's order. Empty for a router of one
    /// instance. `live` and `raw` are then what most instances say (the
    /// first instance's on a tie), and every instance that says otherwise
    /// is a [`RouterDriftKind::InstancesDisagree`] drift.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<LiveInstance>,
}

impl LiveRouter {
    /// Every colour the router sends live traffic to now: `live`, and for a
    /// fleet whose instances disagree, each other colour an instance serves.
    /// A colour in this list serves live traffic, whatever `live` says.
    pub fn serving(&self) -> impl Iterator<Item = &str> + '_ {
        let others = self
            .instances
            .iter()
            .filter_map(|i| i.live.as_deref())
            .filter(move |c| Some(*c) != self.live.as_deref());
        self.live.as_deref().into_iter().chain(others)
    }

    /// The colour the router's preview shows, or for a fleet whose
    /// instances disagree on it, the first an instance's preview shows: a
    /// router whose configuration has no `preview` any more has it removed
    /// while this is `Some`.
    pub fn any_preview(&self) -> Option<&str> {
        self.preview
            .as_deref()
            .or_else(|| self.instances.iter().find_map(|i| i.preview.as_deref()))
    }
}

/// What one instance of a fleet serves (see [`LiveRouter::instances`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveInstance {
    /// The instance's name (its `name`, else its address as written).
    pub name: String,
    /// The colour it sends live traffic to, if it is one of the spec's.
    pub live: Option<String>,
    /// What it says itself, when that is no colour.
    pub raw: Option<String>,
    /// The colour its preview listener or route shows, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// The least time a colour must keep serving what a router still carries to
/// it once a cut-over took its traffic away, as the router itself is
/// configured ([`RouterProvider::drain_floor`](crate::RouterProvider::drain_floor)):
/// a drain before that colour's change lasts at least this long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainFloor {
    /// How long, in milliseconds.
    pub at_least_ms: u64,
    /// Why, as the plan says it: "the deregistration delay of target group
    /// targetgroup/web-blue/73e2d6bc24d8a067".
    pub why: String,
}

/// One change to a router that cutover did not make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterDrift {
    /// What kind of change.
    pub kind: RouterDriftKind,
    /// A sentence for the plan that says what differs and what it means.
    pub message: String,
}

impl RouterDrift {
    /// A drift of `kind`, told by `message`.
    pub fn new(kind: RouterDriftKind, message: impl Into<String>) -> Self {
        RouterDrift {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for RouterDrift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The kinds of [`RouterDrift`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterDriftKind {
    /// What the router would load on a reload or restart (HAProxy's map
    /// file, nginx's include file) does not say what it runs now: a reload
    /// would move the traffic. E.g. an apply killed between HAProxy's
    /// `set map` and the map file's rewrite, an include rewritten without a
    /// reload.
    PersistedDiffers,
    /// What the router would load on a reload cannot be read, so a reload
    /// would fail or load something cutover cannot see.
    PersistedUnreadable,
    /// Cutover's part of the router's configuration was edited by someone
    /// else, beyond recognition (nginx's include without cutover's marker).
    EditedOutside,
    /// The running router does not hold cutover's switch at all: it was
    /// restarted or reloaded from a configuration without it, or never given
    /// it (nginx's marker not served: the include is not loaded).
    SwitchLost,
    /// What cutover manages on the router does not exist yet (nginx's include
    /// file before the first switch); the first switch creates it.
    Absent,
    /// The router sends the live colour's traffic to endpoints that are not
    /// the environment's now (the environment moved).
    StaleEndpoints,
    /// One instance of a fleet sends traffic to another colour than the
    /// others (it was switched by hand, or a switch back failed on it).
    InstancesDisagree,
}
