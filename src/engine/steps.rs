//! Running one step against the providers: what each kind of step does,
//! and the records it leaves for the state. The walk decides when; this
//! decides how.

use std::time::{Duration, Instant};

use cutover_provider::{EnvironmentSpec, InstanceSwitch};

use super::error::{provider_kind, ErrorKind, StepError};
use super::observer::{Event, Observer};
use super::walk::{Outcome, Revert, Start};
use super::Engine;
use crate::addr::{Address, StepId};
use crate::plan::document::{Action, StepKind};
use crate::state::journal::Entry;
use crate::state::model::{EnvironmentState, RouterState};

/// The way back recorded for a router switched back: the colour it left,
/// when this apply did not change it (it runs what it ran before, and was
/// switched back from only because the switches go together); none when
/// this apply deployed to it — it runs the release just found wrong, and
/// `cutover rollback` must not offer it.
fn previous_after_switch_back(revert: &Revert) -> Option<String> {
    (!revert.target_changed).then(|| revert.from.clone())
}

/// How often a cut-over asks a router that is not ready yet again.
const READY_POLL: Duration = Duration::from_millis(250);

/// A human description of a step, for progress lines.
pub fn describe(kind: &StepKind) -> String {
    match kind {
        StepKind::Environment {
            action, name, spec, ..
        } => {
            let env = Address::environment(name);
            match action {
                Action::Create => format!("creating {env} (release {})", spec.release),
                Action::Update => format!("updating {env} to release {}", spec.release),
                Action::Replace => format!("replacing {env} (release {})", spec.release),
                Action::Delete => format!("destroying {env}"),
            }
        }
        StepKind::HealthGate { environment, .. } => {
            format!(
                "health gate: waiting for {}",
                Address::environment(environment)
            )
        }
        StepKind::Cutover {
            router, from, to, ..
        } => format!(
            "cutting over {}: {} -> {to}",
            Address::router(router),
            from.as_deref().unwrap_or("(none)")
        ),
        StepKind::Preview { router, to, .. } => {
            format!(
                "pointing the preview of {} at {to}",
                Address::router(router)
            )
        }
        StepKind::RemovePreview { router, from, .. } => format!(
            "removing the preview of {} (it showed {from})",
            Address::router(router)
        ),
        StepKind::Drain {
            router,
            colour,
            duration_ms,
            until_idle,
            counts_sessions,
            backend,
            floor,
            ..
        } => {
            let (router, most) = (Address::router(router), *duration_ms as f64 / 1000.0);
            match (until_idle, counts_sessions) {
                _ if floor.is_some() => format!(
                    "letting {colour} drain for {most:.1}s after {router}'s cut-over (at least {})",
                    floor.as_ref().map_or("", |f| f.why.as_str())
                ),
                (true, true) => format!(
                    "letting {colour} drain after {router}'s cut-over, until it has no open sessions, at most {most:.1}s"
                ),
                (true, false) => format!(
                    "letting {colour} drain for {most:.1}s after {router}'s cut-over (it waits by time: {} cannot count open sessions)",
                    backend.as_deref().unwrap_or("its router")
                ),
                _ => format!("letting {colour} drain for {most:.1}s after {router}'s cut-over"),
            }
        }
        StepKind::Settle {
            environment,
            routers,
            most_ms,
            ..
        } => format!(
            "waiting until {} hold{} no streams to {environment}, at most {:.1}s",
            crate::plan::document::SettleRouter::names(routers),
            if routers.len() == 1 { "s" } else { "" },
            *most_ms as f64 / 1000.0
        ),
        StepKind::ForgetRouter { router, .. } => format!("forgetting {}", Address::router(router)),
        StepKind::Test { spec, target, .. } => format!(
            "testing {target}: {}",
            crate::config::checks::command_line(&spec.command)
        ),
        StepKind::Analysis { target, spec, .. } => {
            format!("analysing {target}: {}", spec.measures())
        }
        StepKind::Approval { router, to, .. } => format!(
            "waiting for approval to switch {} to {to}",
            Address::router(router)
        ),
    }
}

impl Engine {
    /// An analysis step: its measurements, on the health checks' client.
    async fn analysis(
        &self,
        id: &StepId,
        spec: &crate::config::checks::AnalysisSpec,
        observer: &dyn Observer,
    ) -> Outcome {
        let client = match self.health.http_client() {
            Ok(client) => client,
            Err(e) => {
                return Outcome::failed(StepError::new(ErrorKind::Failed, format!("{id}: {e}")))
            }
        };
        match super::analysis::run(id, spec, &client, observer).await {
            // An `after` analysis that passed is no longer pending.
            Ok(_) if spec.when == crate::config::checks::When::After => {
                Outcome::ok(vec![Entry::Checked(
                    id.name().to_owned(),
                    id.check().unwrap_or_default().to_owned(),
                )])
            }
            Ok(_) => Outcome::ok(vec![]),
            Err(e) => Outcome::failed(e),
        }
    }

    /// Run one step; a cut-over of a batch ([`super::batch`]) with its
    /// ticket.
    pub(super) async fn run(
        &self,
        start: Start,
        batch: Option<super::batch::Ticket>,
        observer: &dyn Observer,
    ) -> Outcome {
        match &start.step.kind {
            StepKind::Environment {
                action,
                name,
                spec,
                backend,
                ..
            } => {
                self.environment(*action, name, spec, backend, &start.private)
                    .await
            }
            StepKind::HealthGate {
                environment,
                endpoints,
                health,
                release,
            } => {
                let subject = Address::environment(environment);
                let release = release.as_deref();
                // Progress and errors name the check as shown.
                let shown = (
                    self.secrets.endpoints(environment, endpoints),
                    self.secrets.health(environment, health),
                );
                let check = (endpoints.as_slice(), health);
                match self
                    .health
                    .gate_shown(&subject, check, (&shown.0, &shown.1), release, observer)
                    .await
                {
                    Ok(()) => Outcome::ok(vec![]),
                    Err(e) => Outcome::failed(StepError::gate(ErrorKind::GateFailed, &e)),
                }
            }
            StepKind::Cutover { .. } => self.cutover(&start, batch, observer).await,
            StepKind::Preview { .. } => self.preview(&start, observer).await,
            StepKind::RemovePreview { .. } => self.remove_preview(&start).await,
            StepKind::Drain { .. } => self.drain(&start.step.kind, observer).await,
            StepKind::Settle { .. } => self.settle(&start.step.kind, observer).await,
            StepKind::ForgetRouter { router, .. } => {
                Outcome::ok(vec![Entry::Router(router.clone(), None)])
            }
            StepKind::Test { .. } => {
                match super::test_hook::run_step(&start.step, false)
                    .await
                    .unwrap_or(Ok(()))
                {
                    Ok(()) => Outcome::ok(vec![]),
                    Err((e, _)) => Outcome::failed(e),
                }
            }
            StepKind::Analysis {
                spec,
                recheck,
                router,
                ..
            } => {
                let mut outcome = self.analysis(&start.step.id, spec, observer).await;
                if let (true, Some(e)) = (*recheck, outcome.error.as_mut()) {
                    let back = start.router.as_ref().and_then(|r| r.previous.clone());
                    let way = back.map_or_else(
                        || "no previous colour is recorded to go back to".to_owned(),
                        |b| {
                            format!(
                                "`cutover rollback {}` returns it to {b}",
                                crate::addr::shell_word(&format!("router.{router}"))
                            )
                        },
                    );
                    e.message = format!(
                        "{}; router.{router} went live in an earlier apply that stopped before this check passed, and stays where it is: {way}",
                        e.message
                    );
                }
                outcome
            }
            StepKind::Approval {
                router,
                to,
                timeout,
                ..
            } => match self.approvals.wait(router, to, *timeout, observer).await {
                Ok(_) => Outcome::ok(vec![]),
                Err(e) => Outcome::failed(e),
            },
        }
    }

    /// Create, update, replace or destroy an environment. When a deploy
    /// fails, what is there is read again, so the state says what runs
    /// (nothing, when the old release was stopped and the new one died).
    async fn environment(
        &self,
        action: Action,
        name: &str,
        spec: &EnvironmentSpec,
        backend: &str,
        private: &serde_json::Value,
    ) -> Outcome {
        let what = Address::environment(name).to_string();
        let Some(provider) = self.providers.environment(backend) else {
            let e = format!("{what}: unknown backend `{backend}`");
            return Outcome::failed(StepError::new(ErrorKind::Settings, e));
        };
        if action == Action::Delete {
            return match provider.destroy(spec, private).await {
                Ok(()) => Outcome::ok(vec![Entry::Environment(name.to_owned(), None)]),
                Err(e) => Outcome::failed(StepError::provider(&what, &e)),
            };
        }
        let private = if action == Action::Replace {
            if let Err(e) = provider.destroy(spec, private).await {
                return Outcome::failed(StepError::provider(&what, &e));
            }
            serde_json::Value::Null
        } else {
            private.clone()
        };
        match provider.deploy(spec, &private).await {
            Ok(deployed) => Outcome::ok(vec![Entry::Environment(
                name.to_owned(),
                Some(EnvironmentState {
                    backend: backend.to_owned(),
                    release: spec.release.clone(),
                    endpoints: spec.endpoints.clone(),
                    settings: spec.settings.clone(),
                    identity: deployed.identity,
                    private: deployed.private,
                }),
            )]),
            Err(e) => {
                let records = match provider.read(spec, &private).await {
                    Ok(live) if !live.exists => vec![Entry::Environment(name.to_owned(), None)],
                    _ => vec![],
                };
                Outcome {
                    records,
                    switched: false,
                    error: Some(StepError::provider(&what, &e)),
                }
            }
        }
    }

    /// Switch a router: wait (bounded) until the router itself can send
    /// traffic to the target, switch, record, then verify through it.
    async fn cutover(
        &self,
        start: &Start,
        batch: Option<super::batch::Ticket>,
        observer: &dyn Observer,
    ) -> Outcome {
        let StepKind::Cutover {
            router,
            from,
            to,
            spec,
            target,
            backend,
            verify,
            ready_timeout,
            rollback,
            after_checks,
            ..
        } = &start.step.kind
        else {
            unreachable!("a cut-over step")
        };
        let what = Address::router(router).to_string();
        let provider = match self.router_provider(&what, backend) {
            Ok(provider) => provider,
            Err(failed) => return failed,
        };
        let bound = *ready_timeout;
        let slot = &start.switched;
        // In a batch: its share of the batch's switch. What follows (a wait
        // for a router not ready yet, the verify) takes a turn among the
        // batch's parallelism; a switch made is recorded first.
        let first = match &batch {
            Some(ticket) => Some(ticket.first_switch().await),
            None => None,
        };
        let mut turn = None;
        if let (Some(ticket), Some(Err(e))) = (&batch, &first) {
            if provider_kind(e) == ErrorKind::NotReady {
                match ticket.after_switch().await {
                    Some(permit) => turn = Some(permit),
                    None => {
                        // The apply stops: the router changed nothing.
                        slot.lock().unwrap_or_else(|p| p.into_inner()).attempted = false;
                        return Outcome::failed(StepError::new(
                            ErrorKind::Interrupted,
                            format!("{what}: the apply stopped while the router was not ready yet"),
                        ));
                    }
                }
            }
        }
        let switched = switch_when_ready(
            provider.as_ref(),
            (router, spec, target),
            first,
            bound,
            observer,
            slot,
        )
        .await;
        match switched {
            // A switch that failed half-way (timed out, or broke off after
            // the router took the command) may have moved traffic: it counts
            // as switched, so the rules switch it back; what it serves is
            // not known, so nothing is recorded of it.
            Err((error, maybe)) => {
                return Outcome {
                    records: vec![],
                    switched: maybe,
                    error: Some(error),
                }
            }
            Ok(instances) if !instances.is_empty() => observer.event(&Event::InstancesSwitched {
                router: router.clone(),
                to: to.clone(),
                instances,
            }),
            Ok(_) => {}
        }
        let before = start.router.as_ref();
        // A switch to the colour the router is on (a repair: the map file
        // out of step with memory) keeps the way back; when the state had
        // the router on another colour (the switch that moved it was
        // made, its record lost with a killed apply), that colour is it.
        let previous = match from {
            Some(f) if f != to => Some(f.clone()),
            _ => super::apply::previous_after(before, Some(to)),
        };
        let record = Entry::Router(
            router.clone(),
            Some(RouterState {
                backend: backend.clone(),
                live: Some(to.clone()),
                previous,
                preview: before.and_then(|r| r.preview.clone()),
                rolled_back: *rollback,
            }),
        );
        // The switch is made: its record is kept even if the verify below is
        // stopped or panics.
        start
            .switched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record = Some(record.clone());
        // With the switch, in the same sync: its `after` analyses are
        // pending until each passes (an apply stopped meanwhile leaves them
        // for the next plan).
        let pending = Entry::Unchecked(router.clone(), after_checks.clone());
        let mut outcome = Outcome {
            records: vec![record, pending],
            switched: true,
            error: None,
        };
        if let Some(verify) = verify {
            if let (Some(ticket), None) = (&batch, &turn) {
                match ticket.after_switch().await {
                    Some(permit) => turn = Some(permit),
                    None => {
                        outcome.error = Some(StepError::new(
                            ErrorKind::Interrupted,
                            format!("{what}: the apply stopped before this cut-over's verify ran"),
                        ));
                        return outcome;
                    }
                }
            }
            let _turn = turn;
            let subject = Address::router(router);
            let shown = self.secrets.verify(router, verify);
            let check: (&[String], &crate::config::model::Health) = (&[], verify);
            let verified = self
                .health
                .gate_shown(&subject, check, (&[], &shown), None, observer);
            let verified = match &batch {
                Some(ticket) => tokio::select! {
                    verified = verified => verified,
                    () = ticket.stopped() => {
                        outcome.error = Some(StepError::new(
                            ErrorKind::Interrupted,
                            format!("{what}: the apply stopped during this cut-over's verify"),
                        ));
                        return outcome;
                    }
                },
                None => verified.await,
            };
            if let Err(why) = verified {
                let mut e = StepError::gate(ErrorKind::VerifyFailed, &why);
                e.message = format!(
                    "{what}: verify failed after the cut-over to {to}: it {}",
                    why.detail()
                );
                outcome.error = Some(e);
            }
        }
        outcome
    }

    /// Point a router's preview at a colour.
    async fn preview(&self, start: &Start, observer: &dyn Observer) -> Outcome {
        let StepKind::Preview {
            router,
            to,
            spec,
            target,
            backend,
            ready_timeout,
            ..
        } = &start.step.kind
        else {
            unreachable!("a preview step")
        };
        let what = format!("{} preview", Address::router(router));
        let provider = match self.router_provider(&what, backend) {
            Ok(provider) => provider,
            Err(failed) => return failed,
        };
        // HAProxy refuses a preview its own check does not see up yet, as
        // it refuses a switch: wait for it the same way.
        let repoint = || provider.set_preview(spec, Some(target));
        if let Err(mut e) = until_ready(
            &start.step.id,
            router,
            to,
            *ready_timeout,
            observer,
            repoint,
        )
        .await
        {
            e.message = e
                .message
                .replacen(&Address::router(router).to_string(), &what, 1);
            return Outcome::failed(e);
        }
        let mut next = start.router.clone().unwrap_or(RouterState {
            backend: backend.clone(),
            live: None,
            previous: None,
            preview: None,
            rolled_back: false,
        });
        next.preview = Some(to.clone());
        Outcome::ok(vec![Entry::Router(router.clone(), Some(next))])
    }

    /// The router provider of `backend`, or the failed outcome of step
    /// `what` that names it unknown.
    fn router_provider(
        &self,
        what: &str,
        backend: &str,
    ) -> Result<std::sync::Arc<dyn cutover_provider::RouterProvider>, Outcome> {
        self.providers.router(backend).ok_or_else(|| {
            let e = format!("{what}: unknown backend `{backend}`");
            Outcome::failed(StepError::new(ErrorKind::Settings, e))
        })
    }

    /// Remove a router's preview (`preview` left its block): the provider
    /// removes it, and the state records no preview.
    async fn remove_preview(&self, start: &Start) -> Outcome {
        let StepKind::RemovePreview {
            router,
            spec,
            backend,
            ..
        } = &start.step.kind
        else {
            unreachable!("a preview removal step")
        };
        let what = format!("{} preview", Address::router(router));
        let provider = match self.router_provider(&what, backend) {
            Ok(provider) => provider,
            Err(failed) => return failed,
        };
        if let Err(e) = provider.set_preview(spec, None).await {
            return Outcome::failed(StepError::provider(&what, &e));
        }
        // A router the state does not know yet has nothing to record.
        let records = start.router.clone().map(|mut next| {
            next.preview = None;
            Entry::Router(router.clone(), Some(next))
        });
        Outcome::ok(records.into_iter().collect())
    }

    /// Switch a router back (rule 7): only when the colour it returns to
    /// still is what it was when it last served (same identity, still
    /// there); the records of the switch back, or why it did not happen.
    pub(super) async fn switch_back(&self, revert: &Revert) -> Result<Vec<Entry>, String> {
        self.still_what_served(revert).await?;
        let provider = self
            .providers
            .router(&revert.backend)
            .ok_or_else(|| format!("unknown backend `{}`", revert.backend))?;
        let colour = revert
            .spec
            .colour(&revert.to)
            .cloned()
            .ok_or_else(|| format!("{} is no colour of the router", revert.to))?;
        provider
            .switch(&revert.spec, &colour)
            .await
            .map_err(|e| e.describe())?;
        Ok(back_records(revert))
    }

    /// Whether the colour a switch back returns to is still what served.
    pub(super) async fn still_what_served(&self, revert: &Revert) -> Result<(), String> {
        let Some(rec) = revert.colour.as_ref().filter(|r| r.is_managed()) else {
            // Deployed by something else: cutover never changes it.
            return Ok(());
        };
        let provider = self
            .providers
            .environment(&rec.backend)
            .ok_or_else(|| format!("unknown backend `{}`", rec.backend))?;
        let spec = EnvironmentSpec {
            name: revert.to.clone(),
            release: rec.release.clone(),
            endpoints: rec.endpoints.clone(),
            settings: rec.settings.clone(),
            workdir: revert.spec.workdir().to_owned(),
            sensitive: Default::default(),
        };
        let env = Address::environment(&revert.to);
        let live = provider.read(&spec, &rec.private).await.map_err(|e| {
            format!(
                "{env} cannot be read to check it still serves: {}",
                e.describe()
            )
        })?;
        if !live.exists {
            return Err(format!("{env} is gone (nothing runs there any more)"));
        }
        if revert.identity.is_some() && live.identity != revert.identity {
            return Err(format!(
                "{env} is no longer what served ({} now, {} when it last served)",
                live.identity.as_deref().unwrap_or("unknown"),
                revert.identity.as_deref().unwrap_or("unknown")
            ));
        }
        Ok(())
    }
}

/// Switch `router` to `target`. `switch` makes the checks `preflight` makes
/// before it changes anything, so it is tried first (one conversation with
/// the router when it is ready, which it nearly always is); when the router
/// says it is not ready yet (its own health check has not seen `target` up),
/// `preflight`, which changes nothing, is asked until it is, within `bound`,
/// and the switch made then. (Asking `preflight` before every switch cost
/// 30% of a cut-over apply of 1,500 routers: benches/scale.)
///
/// The error says whether the switch may have moved traffic: a switch that
/// timed out or failed half-way may have; one refused, not ready, or that
/// could not reach the router has not. On success, for a router of several
/// instances, when each was confirmed switched.
async fn switch_when_ready(
    provider: &dyn cutover_provider::RouterProvider,
    (router, spec, target): (
        &str,
        &cutover_provider::RouterSpec,
        &cutover_provider::Colour,
    ),
    first: Option<Result<Vec<InstanceSwitch>, cutover_provider::ProviderError>>,
    bound: Duration,
    observer: &dyn Observer,
    slot: &super::walk::SwitchSlot,
) -> Result<Vec<InstanceSwitch>, (StepError, bool)> {
    let started = Instant::now();
    let asked = || slot.lock().unwrap_or_else(|p| p.into_inner()).attempted = true;
    let left = || bound.saturating_sub(started.elapsed());
    let maybe_moved = |e: StepError| {
        let maybe = matches!(e.kind, ErrorKind::Timeout | ErrorKind::Failed);
        (e, maybe)
    };
    asked();
    // The first attempt: this cut-over's share of its batch's, or its own.
    let first = match first {
        Some(first) => first,
        None => provider.switch_instances(spec, target).await,
    };
    match first {
        Ok(told) => return Ok(told),
        Err(e) if provider_kind(&e) != ErrorKind::NotReady => {
            let what = Address::router(router).to_string();
            return Err(maybe_moved(StepError::provider(&what, &e)));
        }
        // Not ready: it changed nothing.
        Err(_) => slot.lock().unwrap_or_else(|p| p.into_inner()).attempted = false,
    }
    let name = &target.name;
    // Asking preflight changes nothing, whatever it answers.
    let step = crate::addr::StepId::Cutover(router.to_owned());
    until_ready(&step, router, name, left(), observer, || {
        provider.preflight(spec, target)
    })
    .await
    .map_err(|e| (e, false))?;
    asked();
    let told = std::sync::Mutex::new(Vec::new());
    until_ready(&step, router, name, left(), observer, || {
        let told = &told;
        async move {
            let switched = provider.switch_instances(spec, target).await?;
            *told.lock().unwrap_or_else(|p| p.into_inner()) = switched;
            Ok(())
        }
    })
    .await
    .map_err(maybe_moved)?;
    Ok(told.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// Run `attempt` (a router's `preflight`, or a preview's repoint) until it
/// succeeds, again while the router says it is not ready yet (its own
/// health check has not seen `target` up), for at most `bound`, telling
/// the observer what it waits for; any other failure at once.
async fn until_ready<F, Fut>(
    step: &crate::addr::StepId,
    router: &str,
    target: &str,
    bound: Duration,
    observer: &dyn Observer,
    mut attempt: F,
) -> Result<(), StepError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), cutover_provider::ProviderError>>,
{
    let what = Address::router(router).to_string();
    let started = Instant::now();
    loop {
        let e = match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if provider_kind(&e) != ErrorKind::NotReady {
            return Err(StepError::provider(&what, &e));
        }
        let waited = started.elapsed();
        if waited >= bound {
            return Err(StepError::new(
                ErrorKind::NotReady,
                format!(
                    "{what}: the router still cannot send traffic to {target} after waiting {:.1}s (ready_timeout): {}",
                    waited.as_secs_f64(),
                    e.describe()
                ),
            ));
        }
        observer.event(&Event::RouterWaiting {
            step: step.clone(),
            router: router.to_owned(),
            waiting_for: e.describe(),
            remaining: bound - waited,
        });
        tokio::time::sleep(READY_POLL.min(bound - waited)).await;
    }
}

/// What the state records of a router switched back: on the colour it came
/// from, its way back as before, the checks of the switch it left moot.
pub(super) fn back_records(revert: &super::walk::Revert) -> Vec<Entry> {
    vec![
        Entry::Router(
            revert.router.clone(),
            Some(RouterState {
                backend: revert.backend.clone(),
                live: Some(revert.to.clone()),
                previous: previous_after_switch_back(revert),
                preview: revert.before.as_ref().and_then(|r| r.preview.clone()),
                rolled_back: revert.before.as_ref().is_some_and(|r| r.rolled_back),
            }),
        ),
        // Back where it was: the checks of the switch it left are moot.
        Entry::Unchecked(revert.router.clone(), Vec::new()),
    ]
}
