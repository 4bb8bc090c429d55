//! The engine: refresh the live world, plan against it, apply a plan.
//!
//! The engine owns every interaction with live systems (through providers)
//! and never prints; progress goes to an [`observer::Observer`]. The apply
//! walk's rules live in [`walk`] (a state machine, unit-tested), the running
//! of steps in [`steps`], the driver that ties them to tokio in [`apply`].

pub mod analysis;
pub mod apply;
pub mod approval;
mod batch;
mod drain;
pub mod error;
pub mod health;
pub mod notify;
pub mod observer;
pub mod readiness;
pub mod refresh;
pub mod status;
pub mod steps;
pub mod store;
pub mod test_hook;
pub mod walk;

#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;

use crate::plan::sensitive::Secrets;

use cutover_provider::{ErrorKind as ProviderErrorKind, ProviderError};

use crate::addr::Address;
use crate::config::model::Backend;
use crate::config::{Diagnostic, Diagnostics, Loaded};
use crate::plan::saved::{Planned, RouterRecord};
use crate::plan::PlanError;
use crate::registry::Providers;
use crate::state::model::State;

pub use apply::{ApplyError, StopReceiver, StopRequest};
use health::HealthChecker;
use observer::{Event, Observer};
pub use walk::ApplyReport;

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
    /// The plan could not be made.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A saved plan may no longer be applied.
    #[error(transparent)]
    Stale(#[from] crate::plan::saved::Stale),
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
    pub options: crate::plan::PlanOptions,
    /// The configuration's sensitive values: replaced by markers in every
    /// record, event and report of an apply.
    pub secrets: Secrets,
    /// Where approval steps wait, and the apply's driver hands them the
    /// approvals it reads from the state backend.
    pub approvals: std::sync::Arc<approval::Board>,
}

impl Engine {
    /// An engine with the built-in providers.
    pub fn new(parallelism: usize) -> Self {
        Engine::with_providers(Providers::builtin(), parallelism)
    }

    /// An engine with these providers (tests use in-memory ones).
    pub fn with_providers(providers: Providers, parallelism: usize) -> Self {
        Engine {
            providers,
            health: HealthChecker::default(),
            parallelism: parallelism.max(1),
            options: Default::default(),
            secrets: Default::default(),
            approvals: Default::default(),
        }
    }

    /// Check every backend block's settings with its provider, pointing at
    /// the attribute at fault.
    pub fn validate(&self, loaded: &Loaded) -> Diagnostics {
        let mut out = Vec::new();
        let config = &loaded.config;
        for env in config.environments.values() {
            if let Some(b) = &env.backend {
                let r = self
                    .providers
                    .environment(&b.kind)
                    .map(|p| p.validate(&b.body));
                out.extend(diagnostic(loaded, &Address::environment(&env.name), b, r));
            }
        }
        let mut claimed = Vec::new();
        for router in config.routers.values() {
            let b = &router.backend;
            let provider = self.providers.router(&b.kind);
            let r = provider.as_ref().map(|p| p.validate(&b.body));
            out.extend(diagnostic(loaded, &Address::router(&router.name), b, r));
            if let Some(p) = &provider {
                claimed.push((router, p.clone()));
            }
            if let (Some(p), Some(span)) = (&provider, &router.preview_span) {
                if router.preview.is_some() && !p.has_preview() {
                    let message = format!(
                        "router \"{}\" has `preview`, but its `{}` backend has no preview listener",
                        router.name, b.kind
                    );
                    out.push(Diagnostic::at(span, &loaded.sources, message).with_help(
                        "remove `preview`, or use a router backend that has one (haproxy, caddy, nginx)",
                    ));
                }
            }
        }
        // Two routers of one key would switch each other's traffic.
        if out.is_empty() {
            let colours = crate::plan::specs::colours(config);
            let mut owners: std::collections::HashMap<String, &str> = Default::default();
            for (router, provider) in claimed {
                let Some(spec) =
                    crate::plan::specs::router_spec_with(config, &router.name, &colours)
                else {
                    continue;
                };
                for claim in provider.claims(&spec) {
                    if let Some(other) = owners.get(&claim) {
                        let message = format!(
                            "{} and {} both switch {claim}: each would move the other's traffic",
                            Address::router(other),
                            Address::router(&router.name),
                        );
                        out.push(
                            Diagnostic::at(&router.backend.span, &loaded.sources, message)
                                .with_help("give each router its own `key` (or map)"),
                        );
                    } else {
                        owners.insert(claim, &router.name);
                    }
                }
            }
        }
        Diagnostics(out)
    }

    /// Refresh, then plan.
    pub async fn plan(
        &self,
        config: &crate::config::model::Config,
        state: Option<&State>,
    ) -> Result<Planned, EngineError> {
        // The plan is made against the state as its `moved` blocks leave it.
        let (moved, moved_state) = moved(config, state)?;
        let state = moved_state.as_ref().or(state);
        let secrets = Secrets::new(config);
        let hide_in_state = secrets.recorded_in_clear(state);
        // The plan compares, and shows, the state as it will be kept:
        // values recorded in clear before they were marked as markers.
        let shown = match state {
            Some(s) if !secrets.is_empty() => Some(secrets.state(s)),
            _ => None,
        };
        let state = shown.as_ref().or(state);
        let live = self.refresh(config, state).await?.with_moves(&moved);
        let mut document = crate::plan::plan_with(config, state, &live, &self.options)?;
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
                    && recorded.is_none_or(|s| {
                        // A router on the colour the configuration names
                        // again is no longer "rolled back".
                        s.live != rec.live || s.backend != rec.backend || s.rolled_back
                    })
            })
            .collect();
        document.summary.moved = moved.len();
        document.moved = moved;
        document.summary.outcome =
            crate::plan::document::outcome(&document.summary, records.len() + hide_in_state.len());
        let mut planned = self.planned(config, document, records);
        planned.hide_in_state = hide_in_state;
        Ok(planned)
    }

    /// The plan of `cutover rollback ROUTERS`.
    pub async fn rollback_plan(
        &self,
        config: &crate::config::model::Config,
        state: &State,
        routers: &[String],
    ) -> Result<Planned, EngineError> {
        let (moved, moved_state) = moved(config, Some(state))?;
        let state = &Secrets::new(config).state(moved_state.as_ref().unwrap_or(state));
        let live = self.refresh(config, Some(state)).await?.with_moves(&moved);
        let mut document = crate::plan::rollback::plan(config, state, &live, routers)?;
        document.summary.moved = moved.len();
        document.moved = moved;
        Ok(self.planned(config, document, vec![]))
    }

    /// A plan as people see it (scrubbed) and as the steps run it.
    fn planned(
        &self,
        config: &crate::config::model::Config,
        document: crate::plan::PlanDocument,
        records: Vec<RouterRecord>,
    ) -> Planned {
        let secrets = Secrets::new(config);
        let (document, execution) = if secrets.is_empty() {
            (document, None)
        } else {
            (secrets.document(&document), Some(document))
        };
        Planned {
            document,
            records,
            hide_in_state: Vec::new(),
            execution,
        }
    }

    /// Whether a saved plan may still be applied: it follows the rules, was
    /// made against this state, and the live world is what it saw.
    pub async fn check_saved(
        &self,
        planned: &Planned,
        config: &crate::config::model::Config,
        state: Option<&State>,
    ) -> Result<(), EngineError> {
        crate::plan::validate::validate(&planned.document)
            .map_err(crate::plan::saved::Stale::from)?;
        crate::plan::saved::check_gates(planned, config, &Secrets::new(config))?;
        let (moved, moved_state) = moved(config, state)?;
        let fresh = state;
        let state = moved_state.as_ref().or(state);
        // The live world as refreshed is as shown already.
        let live = self.refresh(config, state).await?.with_moves(&moved);
        let now = crate::plan::drift::fingerprint(&live);
        crate::plan::saved::check_fresh(planned, fresh, &now)?;
        // Against the same state, other moves are other `moved` blocks.
        if moved != planned.document.moved {
            return Err(crate::plan::saved::Stale::Moves.into());
        }
        self.check_same_changes(planned, config, state, &live)?;
        Ok(())
    }

    /// The plan the configuration makes now, against the same state and
    /// live world, must make the plan's changes: otherwise the operator is
    /// applying what the configuration (with today's variables) no longer
    /// asks for — `plan --out F --var live=blue`, then `apply F --var
    /// live=green` would switch to blue. Steps compared as shown (sensitive
    /// values as markers). A configuration that cannot be planned now (a
    /// change to a live colour allowed only at plan time) is left to the
    /// plan's own checks.
    fn check_same_changes(
        &self,
        planned: &Planned,
        config: &crate::config::model::Config,
        state: Option<&State>,
        live: &crate::plan::Live,
    ) -> Result<(), EngineError> {
        let secrets = Secrets::new(config);
        let shown = match state {
            Some(s) if !secrets.is_empty() => Some(secrets.state(s)),
            _ => None,
        };
        let Ok(fresh) = crate::plan::plan_with(
            config,
            shown.as_ref().or(state),
            live,
            &planned.document.options,
        ) else {
            return Ok(());
        };
        let fresh = secrets.document(&fresh);
        let key = |s: &crate::plan::document::Step| {
            (
                s.id.to_string(),
                serde_json::to_value(&s.kind).unwrap_or_default(),
            )
        };
        let saved: std::collections::BTreeMap<_, _> =
            planned.document.steps.iter().map(key).collect();
        let now: std::collections::BTreeMap<_, _> = fresh.steps.iter().map(key).collect();
        let mut differ = Vec::new();
        for (id, kind) in &saved {
            match now.get(id) {
                None => differ.push(format!("{id} is no longer asked for")),
                Some(k) if k != kind => differ.push(format!("{id} differs")),
                Some(_) => {}
            }
        }
        for id in now.keys().filter(|id| !saved.contains_key(*id)) {
            differ.push(format!("{id} is asked for and not in the plan"));
        }
        if differ.is_empty() {
            Ok(())
        } else {
            Err(crate::plan::saved::Stale::ConfigChanged(differ).into())
        }
    }
}

impl EngineError {
    /// The error with what a provider said masked (plan::sensitive).
    pub fn masked(self, secrets: &Secrets) -> Self {
        match self {
            EngineError::Refresh { address, source } if !secrets.is_empty() => {
                EngineError::Refresh {
                    address,
                    source: source.masked(|t| secrets.mask(t)),
                }
            }
            other => other,
        }
    }
}

/// The diagnostic for a backend block whose provider refused its settings.
fn diagnostic(
    loaded: &Loaded,
    address: &Address,
    backend: &Backend,
    result: Option<Result<(), ProviderError>>,
) -> Option<Diagnostic> {
    let (span, message) = match result {
        None => (
            &backend.span,
            format!("{address}: unknown backend `{}`", backend.kind),
        ),
        Some(Ok(())) => return None,
        Some(Err(e)) if e.kind() == ProviderErrorKind::Settings => {
            // `target_groups.green` is inside the attribute `target_groups`:
            // the nearest attribute that has a span.
            let span = e
                .field()
                .and_then(|f| nearest_span(&backend.attribute_spans, f))
                .unwrap_or(&backend.span);
            (span, format!("{address}: {}", e.describe()))
        }
        Some(Err(e)) => (&backend.span, format!("{address}: {}", e.describe())),
    };
    Some(Diagnostic::at(span, &loaded.sources, message))
}

/// The span of `field` (`instances[1].map`), else of the nearest part of
/// the source that holds it (`instances[1]`, then `instances`): a missing
/// attribute has no span of its own, nor does an element of a list an
/// expression made.
fn nearest_span<'s>(
    spans: &'s std::collections::BTreeMap<String, crate::config::model::Span>,
    field: &str,
) -> Option<&'s crate::config::model::Span> {
    let mut at = field;
    loop {
        if let Some(span) = spans.get(at) {
            return Some(span);
        }
        at = &at[..at.rfind(['.', '['])?];
    }
}

/// Passes events on with every sensitive value hidden in what cutover did
/// not build from values: errors, and what a check waits for and last saw
/// (which name real endpoints and URLs). Step descriptions are built from
/// the steps as shown.
struct Masking {
    inner: Arc<dyn Observer>,
    secrets: Secrets,
}

impl Observer for Masking {
    fn event(&self, event: &Event) {
        if self.secrets.is_empty() {
            return self.inner.event(event);
        }
        let s = |t: &String| self.secrets.mask(t);
        let scrubbed = match event {
            Event::StepFinished { id, elapsed, error } => Event::StepFinished {
                id: id.clone(),
                elapsed: *elapsed,
                error: error.as_ref().map(|e| error::StepError {
                    message: s(&e.message),
                    ..e.clone()
                }),
            },
            Event::HealthWaiting {
                subject,
                waiting_for,
                last,
                remaining,
            } => Event::HealthWaiting {
                subject: subject.clone(),
                waiting_for: s(waiting_for),
                last: s(last),
                remaining: *remaining,
            },
            Event::DrainUnreadable {
                step,
                router,
                colour,
                error,
                remaining,
            } => Event::DrainUnreadable {
                step: step.clone(),
                router: router.clone(),
                colour: colour.clone(),
                error: s(error),
                remaining: *remaining,
            },
            Event::DrainEnded {
                step,
                router,
                colour,
                end: observer::DrainEnd::Maximum { sessions, error },
            } => Event::DrainEnded {
                step: step.clone(),
                router: router.clone(),
                colour: colour.clone(),
                end: observer::DrainEnd::Maximum {
                    sessions: *sessions,
                    error: error.as_ref().map(s),
                },
            },
            Event::RouterWaiting {
                step,
                router,
                waiting_for,
                remaining,
            } => Event::RouterWaiting {
                step: step.clone(),
                router: router.clone(),
                waiting_for: s(waiting_for),
                remaining: *remaining,
            },
            // A fleet's instance without a `name` is named by its address.
            Event::InstancesSwitched {
                router,
                to,
                instances,
            } => Event::InstancesSwitched {
                router: router.clone(),
                to: to.clone(),
                instances: instances
                    .iter()
                    .map(|i| cutover_provider::InstanceSwitch {
                        name: s(&i.name),
                        offset: i.offset,
                    })
                    .collect(),
            },
            // What a measurement saw may quote the Prometheus URL.
            Event::AnalysisRound { .. } => {
                let mut event = event.clone();
                if let Event::AnalysisRound { detail, .. } = &mut event {
                    *detail = s(detail);
                }
                event
            }
            other => other.clone(),
        };
        self.inner.event(&scrubbed)
    }
}

/// The renames the configuration's `moved` blocks make in `state`, and the
/// state once they are made (`None` when there are none).
fn moved(
    config: &crate::config::model::Config,
    state: Option<&State>,
) -> Result<(Vec<crate::plan::moves::Moved>, Option<State>), EngineError> {
    let Some(state) = state.filter(|_| !config.moves.is_empty()) else {
        return Ok((Vec::new(), None));
    };
    let moved = crate::plan::moves::resolve(state, &config.moves)?;
    let renamed = (!moved.is_empty()).then(|| crate::plan::moves::renamed(state, &moved));
    Ok((moved, renamed))
}
