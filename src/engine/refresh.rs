//! Refresh: read every router's live colour and every environment's live
//! state, concurrently; and `--refresh-only`, which records what it read in
//! the state without changing anything live.

use std::collections::BTreeMap;
use std::sync::Arc;

use cutover_provider::{
    DrainFloor, EnvironmentProvider, EnvironmentSpec, LiveEnvironment, LiveRouter, RouterProvider,
    RouterSpec,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Engine, EngineError};
use crate::addr::Address;
use crate::config::model::{Config, Health};
use crate::plan::document::Drift;
use crate::plan::sensitive::Secrets;
use crate::plan::specs::{colours, environment_spec, recorded_spec, router_spec_with};
use crate::plan::Live;
use crate::state::model::{RouterState, State};

/// One environment to read: its name, how, and what the state keeps of it.
struct EnvironmentRead {
    name: String,
    /// `None`: deployed by something else, read by its health check.
    provider: Option<Result<Arc<dyn EnvironmentProvider>, EngineError>>,
    spec: EnvironmentSpec,
    private: serde_json::Value,
    health: Health,
}

enum Read {
    Env(String, Result<LiveEnvironment, EngineError>),
    Router(
        String,
        Result<(LiveRouter, Option<DrainFloor>), EngineError>,
    ),
}

/// What `--refresh-only` found: the state as the live world is now.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// The state to record.
    pub next: State,
    /// One sentence per address that changes.
    pub changed: Vec<String>,
    /// Drift, as a plan would show it.
    pub drift: Vec<Drift>,
}

impl Refreshed {
    /// Whether there is nothing to record.
    pub fn is_empty(&self, state: &State) -> bool {
        self.changed.is_empty() && self.next == *state
    }
}

impl Engine {
    /// Read every router's live colour and every environment's live state,
    /// concurrently, at most `parallelism` at a time.
    pub async fn refresh(
        &self,
        config: &Config,
        state: Option<&State>,
    ) -> Result<Live, EngineError> {
        let (live, mut failed) = self.read_all(config, state).await;
        match failed.pop_first() {
            Some((_, e)) => Err(e),
            None => Ok(live),
        }
    }

    /// Read everything as [`Engine::refresh`] does, keeping what could be
    /// read and, by address, why the rest could not (`cutover status`
    /// shows both).
    pub async fn read_all(
        &self,
        config: &Config,
        state: Option<&State>,
    ) -> (Live, BTreeMap<String, EngineError>) {
        let permits = Arc::new(Semaphore::new(self.parallelism));
        let mut tasks: JoinSet<Read> = JoinSet::new();
        for job in self.environment_reads(config, state) {
            let permits = permits.clone();
            let checker = self.health.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let name = job.name.clone();
                Read::Env(name, read_environment(job, &checker).await)
            });
        }
        let colours = colours(config);
        for name in config.routers.keys() {
            let spec = router_spec_with(config, name, &colours).expect("router is in the config");
            let kind = &config.routers[name].backend.kind;
            let address = Address::router(name).to_string();
            let provider = self
                .providers
                .router(kind)
                .ok_or_else(|| EngineError::UnknownBackend {
                    address: address.clone(),
                    kind: kind.clone(),
                });
            let permits = permits.clone();
            let name = name.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let result = match provider {
                    Err(e) => Err(e),
                    Ok(p) => read_router(p.as_ref(), &spec)
                        .await
                        .map_err(|source| EngineError::Refresh { address, source }),
                };
                Read::Router(name, result)
            });
        }
        // What was read is as shown from here on: a sensitive release as its
        // marker (as the state keeps it), what providers said masked.
        let secrets = Secrets::new(config);
        let (mut live, failed) = collect(tasks).await;
        secrets.live(&mut live);
        live.counts_sessions = self.counting_sessions(config);
        let failed = failed
            .into_iter()
            .map(|(address, e)| (address, e.masked(&secrets)))
            .collect();
        (live, failed)
    }

    /// The routers whose backend can count open sessions (the plan says
    /// which drains wait on the count, and which routers a settle asks).
    fn counting_sessions(&self, config: &Config) -> std::collections::BTreeSet<String> {
        config
            .routers
            .values()
            .filter(|r| {
                let provider = self.providers.router(&r.backend.kind);
                provider.is_some_and(|p| p.counts_sessions())
            })
            .map(|r| r.name.clone())
            .collect()
    }

    /// The environments to read: those of the configuration, and those the
    /// state keeps that left it (so their removal can be planned).
    fn environment_reads(&self, config: &Config, state: Option<&State>) -> Vec<EnvironmentRead> {
        let provider = |name: &str, kind: &str| {
            self.providers
                .environment(kind)
                .ok_or_else(|| EngineError::UnknownBackend {
                    address: Address::environment(name).to_string(),
                    kind: kind.to_owned(),
                })
        };
        let mut jobs = Vec::new();
        for env in config.environments.values() {
            let private = state
                .and_then(|s| s.environments.get(&env.name))
                .map(|e| e.private.clone())
                .unwrap_or_default();
            jobs.push(EnvironmentRead {
                name: env.name.clone(),
                provider: env.backend.as_ref().map(|b| provider(&env.name, &b.kind)),
                spec: environment_spec(config, env),
                private,
                health: env.health.clone(),
            });
        }
        for (name, rec) in state.into_iter().flat_map(|s| &s.environments) {
            if config.environments.contains_key(name) || !rec.is_managed() {
                continue;
            }
            jobs.push(EnvironmentRead {
                name: name.clone(),
                provider: Some(provider(name, &rec.backend)),
                spec: recorded_spec(config, name, rec),
                private: rec.private.clone(),
                health: Health::default(),
            });
        }
        jobs
    }

    /// `--refresh-only`: the state as the live world is now, changing
    /// nothing live.
    pub async fn refresh_only(
        &self,
        config: &Config,
        state: &State,
    ) -> Result<Refreshed, EngineError> {
        let live = self.refresh(config, Some(state)).await?;
        let (next, changed) = refreshed_state(config, state, &live);
        let secrets = Secrets::new(config);
        Ok(Refreshed {
            next: secrets.state(&next),
            changed: changed.iter().map(|line| secrets.mask(line)).collect(),
            drift: crate::plan::drift::drift(config, state, &live),
        })
    }

    /// Record what `--refresh-only` found, on the next serial.
    pub fn record_refresh(
        &self,
        (backend, lock): (
            &dyn crate::state::backend::Backend,
            &crate::state::backend::Lock,
        ),
        state: &State,
        refreshed: &Refreshed,
    ) -> Result<u64, crate::state::StateError> {
        let mut next = refreshed.next.clone();
        next.serial = state.serial + 1;
        // A state never written (no `init`) is created by this write.
        let stored = backend.read_state()?;
        let expected = stored.as_ref().map(crate::state::backend::Stamp::of);
        backend.write_state(lock, expected.as_ref(), &next)?;
        Ok(next.serial)
    }
}

/// Read one environment: through its provider, or by its health check.
async fn read_environment(
    job: EnvironmentRead,
    checker: &super::health::HealthChecker,
) -> Result<LiveEnvironment, EngineError> {
    match job.provider {
        None => {
            let exists = checker.passes_once(&job.spec.endpoints, &job.health).await;
            let release = match job.spec.endpoints.first() {
                Some(e) if exists => checker.reported_release(e, &job.health).await,
                _ => None,
            };
            Ok(LiveEnvironment {
                exists,
                release,
                ..Default::default()
            })
        }
        Some(Err(e)) => Err(e),
        Some(Ok(p)) => {
            p.read(&job.spec, &job.private)
                .await
                .map_err(|source| EngineError::Refresh {
                    address: Address::environment(&job.name).to_string(),
                    source,
                })
        }
    }
}

/// Wait for every read: what was read, and what failed by address (the
/// first in address order is the one `refresh` reports).
/// A router as it is now, and the drain floor of the colour it serves
/// (`RouterProvider::drain_floor`, asked only when it serves one).
async fn read_router(
    provider: &dyn RouterProvider,
    spec: &RouterSpec,
) -> Result<(LiveRouter, Option<DrainFloor>), cutover_provider::ProviderError> {
    let live = provider.read(spec).await?;
    let floor = match live.live.as_deref().and_then(|c| spec.colour(c)) {
        Some(colour) => provider.drain_floor(spec, colour).await?,
        None => None,
    };
    Ok((live, floor))
}

async fn collect(mut tasks: JoinSet<Read>) -> (Live, BTreeMap<String, EngineError>) {
    let mut live = Live::default();
    let mut failed = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Read::Env(name, Ok(l))) => {
                live.environments.insert(name, l);
            }
            Ok(Read::Router(name, Ok((l, floor)))) => {
                if let Some(floor) = floor {
                    live.drain_floors.insert(name.clone(), floor);
                }
                live.routers.insert(name, l);
            }
            Ok(Read::Env(name, Err(e))) => {
                failed.insert(Address::environment(&name).to_string(), e);
            }
            Ok(Read::Router(name, Err(e))) => {
                failed.insert(Address::router(&name).to_string(), e);
            }
            Err(e) => {
                failed.insert(
                    "a live read".to_string(),
                    EngineError::Refresh {
                        address: "a live read".into(),
                        source: cutover_provider::ProviderError::failed(format!(
                            "the read panicked (a bug in its provider): {e}"
                        )),
                    },
                );
            }
        }
    }
    (live, failed)
}

/// `--refresh-only`: the state as the live world is now, changing nothing
/// live. Routers take the colour (and preview) they really serve; an
/// environment that is gone leaves the state (so the next plan creates it);
/// one that runs takes the release, identity and private data its backend
/// reports. Returns the new state and one sentence per address that changed.
pub fn refreshed_state(config: &Config, state: &State, live: &Live) -> (State, Vec<String>) {
    let mut next = state.clone();
    let mut changed = Vec::new();
    for (name, router) in &config.routers {
        let Some(observed) = live.routers.get(name) else {
            continue;
        };
        let old = state.routers.get(name);
        let entry = RouterState {
            backend: router.backend.kind.clone(),
            live: observed.live.clone(),
            previous: super::apply::previous_after(old, observed.live.as_deref()),
            preview: observed.preview.clone(),
            rolled_back: false,
        };
        if old != Some(&entry) {
            changed.push(format!(
                "{}: record that it sends traffic to {}",
                Address::router(name),
                observed.live.as_deref().unwrap_or("nothing cutover knows")
            ));
            next.routers.insert(name.clone(), entry);
        }
    }
    for (name, rec) in &state.environments {
        let Some(observed) = live.environments.get(name) else {
            continue;
        };
        if !observed.exists {
            changed.push(format!(
                "{}: forget it, it is gone",
                Address::environment(name)
            ));
            next.environments.remove(name);
            continue;
        }
        let mut entry = rec.clone();
        if let Some(release) = &observed.release {
            entry.release = release.clone();
        }
        if observed.identity.is_some() {
            entry.identity = observed.identity.clone();
        }
        if !observed.private.is_null() {
            entry.private = observed.private.clone();
        }
        if entry != *rec {
            changed.push(format!(
                "{}: record release {} as it runs now",
                Address::environment(name),
                entry.release
            ));
            next.environments.insert(name.clone(), entry);
        }
    }
    (next, changed)
}
