//! The state file's model.
//!
//! The state holds only what cannot be read live: the lineage and serial, what
//! cutover created, each router's previous colour (the way back), and
//! provider-private data such as process ids. The live colour of a router is
//! always read from the router itself; the `live` recorded here is what cutover
//! last set, used to notice a switch made behind its back.
//!
//! Invariant: the serialized form is deterministic. Maps are `BTreeMap`s (sorted
//! keys), nothing time-dependent is stored unless it changed, so a no-change
//! apply leaves the file byte-identical.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The state format version this build writes.
pub const STATE_VERSION: u32 = 1;

/// The whole state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Format version, [`STATE_VERSION`].
    pub version: u32,
    /// Fixed when the state is created; a plan made against another lineage is
    /// refused.
    pub lineage: String,
    /// Bumped on every change.
    pub serial: u64,
    /// Environments cutover deployed or has seen, by name.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentState>,
    /// Routers cutover manages, by name.
    #[serde(default)]
    pub routers: BTreeMap<String, RouterState>,
    /// Per router: the `after` analyses of its last cut-over that have not
    /// passed yet (an apply stopped while they measured). The next plan
    /// runs them again; absent when none is pending.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unchecked: BTreeMap<String, Vec<String>>,
}

/// What cutover knows of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentState {
    /// The backend kind (`process`, `exec`), or `none`.
    pub backend: String,
    /// The release last deployed (or seen, for environments without backend).
    pub release: String,
    /// The endpoints last deployed.
    pub endpoints: Vec<String>,
    /// The backend settings last deployed.
    #[serde(default)]
    pub settings: Value,
    /// Identity of what runs (pid and start time, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Provider-private data.
    #[serde(default)]
    pub private: Value,
}

/// The `backend` recorded for an environment that something else deploys.
pub const UNMANAGED_BACKEND: &str = "none";

impl EnvironmentState {
    /// Whether cutover deployed this environment (it has a backend), so
    /// that cutover also destroys it when it leaves the configuration.
    pub fn is_managed(&self) -> bool {
        self.backend != UNMANAGED_BACKEND
    }
}

/// What cutover knows of one router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterState {
    /// The backend kind (`haproxy`, `exec`).
    pub backend: String,
    /// The colour cutover last switched it to.
    pub live: Option<String>,
    /// The colour before that: where `cutover rollback` returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The colour cutover last pointed the router's preview at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// Set by `cutover rollback`: the router is on `live` although the
    /// configuration may name another colour; the next plan says so. Cleared
    /// by the next cut-over.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rolled_back: bool,
}
