//! The engine: refresh the live world, plan against it, apply a plan.
//!
//! The engine owns every interaction with live systems (through providers)
//! and never prints; progress goes to an [`observer::Observer`].

pub mod apply;
pub mod health;
pub mod observer;
pub mod registry;

use std::sync::Arc;

use cutover_provider::{EnvironmentSpec, ErrorKind, LiveEnvironment, LiveRouter, ProviderError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::model::Config;
use crate::config::{Diagnostic, Diagnostics, Loaded};
use crate::plan::diff::{colours, environment_backend, environment_spec, router_spec_with};
use crate::plan::saved::{Planned, RouterRecord};
use crate::plan::{Live, PlanError};
use crate::state::model::State;

pub use apply::ApplyReport;
use health::HealthChecker;
use registry::Providers;

/// A failure of refresh or planning.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A live system could not be read. The provider's error is the source,
    /// not part of this message, so that a chain printer (`{:#}`) says its
    /// message and its cause once each.
    #[error("cannot read {address}")]
    Refresh {
        /// What was being read, e.g. `router.public`.
        address: String,
        /// The provider's error.
        source: ProviderError,
    },
    /// The state names a backend this build does not know.
    #[error("{address} uses the `{kind}` backend, which this build of cutover does not have")]
    UnknownBackend {
        /// The resource.
        address: String,
        /// The backend kind.
        kind: String,
    },
    /// The plan could not be ordered.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Refresh, plan, apply.
#[derive(Clone)]
pub struct Engine {
    /// The providers, by backend kind.
    pub providers: Providers,
    /// The shared health checker.
    pub health: HealthChecker,
    /// How many live reads or steps may run at once.
    pub parallelism: usize,
    /// The operator's explicit planning choices.
    pub options: crate::plan::diff::PlanOptions,
    /// Scrubs sensitive values from the state and from progress events.
    pub scrubber: crate::plan::sensitive::Scrubber,
}

impl Engine {
    /// An engine with the built-in providers.
    pub fn new(parallelism: usize) -> Self {
        Engine {
            providers: Providers::builtin(),
            health: HealthChecker::default(),
            parallelism: parallelism.max(1),
            options: Default::default(),
            scrubber: Default::default(),
        }
    }

    /// Check every backend block's settings with its provider, pointing at
    /// the attribute at fault.
    pub fn validate(&self, loaded: &Loaded) -> Diagnostics {
        let mut out = Vec::new();
        let config = &loaded.config;
        let mut check = |address: String,
                         backend: &crate::config::model::Backend,
                         result: Option<Result<(), ProviderError>>| {
            let err = match result {
                None => Diagnostic::at(
                    &backend.span,
                    &loaded.sources,
                    format!("{address}: unknown backend `{}`", backend.kind),
                ),
                Some(Ok(())) => return,
                Some(Err(e)) if e.kind() == ErrorKind::Settings => {
                    let span = e
                        .field()
                        .and_then(|f| backend.attribute_spans.get(f))
                        .unwrap_or(&backend.span);
                    Diagnostic::at(
                        span,
                        &loaded.sources,
                        format!("{address}: {}", e.describe()),
                    )
                }
                Some(Err(e)) => Diagnostic::at(
                    &backend.span,
                    &loaded.sources,
                    format!("{address}: {}", e.describe()),
                ),
            };
            out.push(err);
        };
        for env in config.environments.values() {
            if let Some(b) = &env.backend {
                let r = self
                    .providers
                    .environment(&b.kind)
                    .map(|p| p.validate(&b.body));
                check(format!("environment.{}", env.name), b, r);
            }
        }
        for router in config.routers.values() {
            let b = &router.backend;
            let r = self.providers.router(&b.kind).map(|p| p.validate(&b.body));
            check(format!("router.{}", router.name), b, r);
        }
        Diagnostics(out)
    }

    /// Read every router's live colour and every environment's live state,
    /// concurrently, at most `parallelism` at a time.
    pub async fn refresh(
        &self,
        config: &Config,
        state: Option<&State>,
    ) -> Result<Live, EngineError> {
        enum Read {
            Env(String, Result<LiveEnvironment, EngineError>),
            Router(String, Result<LiveRouter, EngineError>),
        }
        let permits = Arc::new(Semaphore::new(self.parallelism));
        let mut tasks: JoinSet<Read> = JoinSet::new();

        let mut env_jobs: Vec<(
            String,
            String,
            EnvironmentSpec,
            serde_json::Value,
            Option<crate::config::model::Health>,
        )> = Vec::new();
        for env in config.environments.values() {
            let private = state
                .and_then(|s| s.environments.get(&env.name))
                .map(|e| e.private.clone())
                .unwrap_or_default();
            env_jobs.push((
                env.name.clone(),
                environment_backend(env),
                environment_spec(config, env),
                private,
                Some(env.health.clone()),
            ));
        }
        if let Some(st) = state {
            for (name, rec) in &st.environments {
                if config.environments.contains_key(name) || rec.backend == "none" {
                    continue;
                }
                let spec = EnvironmentSpec {
                    name: name.clone(),
                    release: rec.release.clone(),
                    endpoints: rec.endpoints.clone(),
                    settings: rec.settings.clone(),
                    workdir: config.dir.clone(),
                };
                env_jobs.push((
                    name.clone(),
                    rec.backend.clone(),
                    spec,
                    rec.private.clone(),
                    None,
                ));
            }
        }
        for (name, kind, spec, private, health) in env_jobs {
            let permits = permits.clone();
            let checker = self.health.clone();
            let provider =
                if kind == "none" {
                    None
                } else {
                    Some(self.providers.environment(&kind).ok_or_else(|| {
                        EngineError::UnknownBackend {
                            address: format!("environment.{name}"),
                            kind: kind.clone(),
                        }
                    }))
                };
            tasks.spawn(async move {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed");
                let result = match provider {
                    None => {
                        let health = health.unwrap_or_default();
                        let exists = checker.passes_once(&spec.endpoints, &health).await;
                        let release = match spec.endpoints.first() {
                            Some(e) if exists => checker.reported_release(e, &health).await,
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
                        p.read(&spec, &private)
                            .await
                            .map_err(|source| EngineError::Refresh {
                                address: format!("environment.{name}"),
                                source,
                            })
                    }
                };
                Read::Env(name, result)
            });
        }
        let colours = colours(config);
        for name in config.routers.keys() {
            let spec = router_spec_with(config, name, &colours).expect("router is in the config");
            let kind = config.routers[name].backend.kind.clone();
            let provider =
                self.providers
                    .router(&kind)
                    .ok_or_else(|| EngineError::UnknownBackend {
                        address: format!("router.{name}"),
                        kind,
                    });
            let permits = permits.clone();
            let name = name.clone();
            tasks.spawn(async move {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed");
                let result = match provider {
                    Err(e) => Err(e),
                    Ok(p) => p.read(&spec).await.map_err(|source| EngineError::Refresh {
                        address: format!("router.{name}"),
                        source,
                    }),
                };
                Read::Router(name, result)
            });
        }

        let mut live = Live::default();
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("refresh tasks do not panic") {
                Read::Env(name, Ok(l)) => {
                    live.environments.insert(name, l);
                }
                Read::Router(name, Ok(l)) => {
                    live.routers.insert(name, l);
                }
                Read::Env(_, Err(e)) | Read::Router(_, Err(e)) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(live),
        }
    }

    /// Refresh, then plan.
    pub async fn plan(
        &self,
        config: &Config,
        state: Option<&State>,
    ) -> Result<Planned, EngineError> {
        let live = self.refresh(config, state).await?;
        let mut document = crate::plan::diff::plan_with(config, state, &live, &self.options)?;
        let records: Vec<RouterRecord> = config
            .routers
            .values()
            .map(|r| RouterRecord {
                router: r.name.clone(),
                backend: r.backend.kind.clone(),
                live: Some(r.live.clone()),
            })
            .filter(|rec| {
                // Only routers that need no cut-over but whose state entry is
                // missing or stale; the cut-over step records the others.
                let live_now = live.routers.get(&rec.router).and_then(|l| l.live.clone());
                let recorded = state.and_then(|s| s.routers.get(&rec.router));
                live_now == rec.live
                    && recorded.is_none_or(|s| s.live != rec.live || s.backend != rec.backend)
            })
            .collect();
        document.summary.outcome = crate::plan::document::outcome(&document.summary, records.len());
        // People see, and files keep, only the scrubbed document; the steps
        // run with the real values.
        let scrubber = crate::plan::sensitive::Scrubber::new(&config.secrets);
        let (document, execution) = if scrubber.is_empty() {
            (document, None)
        } else {
            (scrubber.scrub(&document), Some(document))
        };
        Ok(Planned {
            document,
            records,
            execution,
        })
    }
}
