//! `cutover status`: the live world now, for a person or a dashboard —
//! every router's live colour read from the router, its previous colour
//! (the way back, from the state), each colour's release and a one-shot
//! health probe, and any drift. Everything is read concurrently (the reads
//! of [`Engine::read_all`] and the probes at once), and a router or
//! environment that cannot be read is shown with its cause rather than
//! hiding the rest. Nothing is written: not the state, not a router.

use serde::Serialize;
use tokio::task::JoinSet;

use super::Engine;
use crate::addr::Address;
use crate::config::model::Config;
use crate::plan::document::Drift;
use crate::state::model::State;

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Every router of the configuration, by name.
    pub routers: Vec<RouterStatus>,
    /// Every environment of the configuration, by name.
    pub environments: Vec<EnvironmentStatus>,
    /// Changes made outside cutover, as a plan shows them.
    pub drift: Vec<Drift>,
}

/// One router.
#[derive(Debug, Clone, Serialize)]
pub struct RouterStatus {
    /// Its name.
    pub name: String,
    /// Its kind (`haproxy`, `caddy`, ...).
    pub backend: String,
    /// The colour it sends live traffic to now, read from it.
    pub live: Option<String>,
    /// What the router says when that is no colour (a backend name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The colour the configuration names.
    pub configured: String,
    /// The way back: the previous colour the state records.
    pub previous: Option<String>,
    /// Its preview colour, read from it, if it has one.
    pub preview: Option<String>,
    /// For a router of several instances of its load balancer
    /// (`instances = [...]`): what each instance serves, read from it, in
    /// the configuration's order. Absent for a router of one instance.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<cutover_provider::LiveInstance>,
    /// Why it could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One environment (colour).
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentStatus {
    /// Its name.
    pub name: String,
    /// The release the configuration names.
    pub configured_release: String,
    /// The release it runs, as its backend (or its health check) reports.
    pub release: Option<String>,
    /// Whether it exists (a process runs; for an environment deployed by
    /// something else: its check answered).
    pub exists: bool,
    /// Whether its health check passed just now (one probe).
    pub healthy: bool,
    /// The routers that send live traffic to it now.
    pub live_on: Vec<String>,
    /// Why it could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Status {
    /// Whether something could not be read.
    pub fn has_errors(&self) -> bool {
        self.routers.iter().any(|r| r.error.is_some())
            || self.environments.iter().any(|e| e.error.is_some())
    }
}

impl Engine {
    /// Read the status of `config`'s routers and environments.
    pub async fn status(&self, config: &Config, state: Option<&State>) -> Status {
        let probes = self.probes(config);
        let (live, failed) = self.read_all(config, state).await;
        let healthy = probes.join_all().await;
        let healthy: std::collections::BTreeMap<String, bool> = healthy.into_iter().collect();
        let secrets = crate::plan::sensitive::Secrets::new(config);
        let empty = crate::state::empty_state();
        let st = state.unwrap_or(&empty);
        let error = |address: String| failed.get(&address).map(|e| super::error::said_once(e));
        let routers: Vec<RouterStatus> = config
            .routers
            .iter()
            .map(|(name, router)| {
                let observed = live.routers.get(name);
                RouterStatus {
                    name: name.clone(),
                    backend: router.backend.kind.clone(),
                    live: observed.and_then(|l| l.live.clone()),
                    raw: observed
                        .filter(|l| l.live.is_none())
                        .and_then(|l| l.raw.clone()),
                    configured: router.live.clone(),
                    previous: st.routers.get(name).and_then(|r| r.previous.clone()),
                    preview: observed.and_then(|l| l.preview.clone()),
                    instances: observed.map(|l| l.instances.clone()).unwrap_or_default(),
                    error: error(Address::router(name).to_string()),
                }
            })
            .collect();
        let environments = config
            .environments
            .values()
            .map(|env| {
                let observed = live.environments.get(&env.name);
                EnvironmentStatus {
                    name: env.name.clone(),
                    configured_release: secrets.release(&env.name, &env.release),
                    release: observed.and_then(|l| l.release.clone()),
                    exists: observed.is_some_and(|l| l.exists),
                    // Deployed by something else: the read was its check.
                    healthy: match env.backend {
                        Some(_) => healthy.get(&env.name).copied().unwrap_or(false),
                        None => observed.is_some_and(|l| l.exists),
                    },
                    // A fleet whose instances disagree sends live traffic
                    // to every colour one of them serves.
                    live_on: config
                        .routers
                        .keys()
                        .filter(|r| {
                            live.routers
                                .get(*r)
                                .is_some_and(|l| l.serving().any(|c| c == env.name))
                        })
                        .cloned()
                        .collect(),
                    error: error(Address::environment(&env.name).to_string()),
                }
            })
            .collect();
        // Drift only of what was read: an unread environment is not "gone".
        let drift = crate::plan::drift::drift(config, st, &live)
            .into_iter()
            .filter(|d| !failed.contains_key(&d.address))
            .collect();
        Status {
            routers,
            environments,
            drift,
        }
    }

    /// One health probe per environment a backend deploys (the read of one
    /// deployed by something else is its check already), started now, at
    /// most `parallelism` at a time.
    fn probes(&self, config: &Config) -> JoinSet<(String, bool)> {
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(self.parallelism));
        let mut probes = JoinSet::new();
        for env in config.environments.values().filter(|e| e.backend.is_some()) {
            let permits = permits.clone();
            let checker = self.health.clone();
            let (name, endpoints, health) =
                (env.name.clone(), env.endpoints.clone(), env.health.clone());
            probes.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let passed = checker.passes_once(&endpoints, &health).await;
                (name, passed)
            });
        }
        probes
    }
}
