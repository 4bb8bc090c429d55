//! The drain step: the colour a cut-over took traffic away from keeps
//! serving what it still has open before anything changes it — for the
//! router's `drain`, or, with `drain_until_idle`, until the router counts
//! no open session to it, at most `drain`.
//!
//! A settle waits the same way before an environment that is not live
//! changes, for every router that counts sessions and may still carry
//! streams to it (see `plan::passes::settles`).
//!
//! A drain runs after the switch, so nothing here may fail the apply or
//! send traffic back (DESIGN.md §3, rule 7): a count that cannot be read is
//! asked for again, and the drain ends at its maximum whatever the count
//! says, with a warning when sessions may still be open.

use std::time::{Duration, Instant};

use cutover_provider::{Colour, RouterProvider, RouterSpec};

use super::observer::{DrainEnd, Event, Observer};
use super::walk::Outcome;
use super::Engine;
use crate::addr::StepId;
use crate::plan::document::StepKind;

/// How often a drain asks the router for the count.
pub(super) const DRAIN_POLL: Duration = Duration::from_millis(250);

/// How often an unchanged count (or a failing read) is told again.
const RETELL: Duration = Duration::from_secs(1);

impl Engine {
    /// Run a drain step: wait by time, or until the drained colour is idle.
    pub(super) async fn drain(&self, kind: &StepKind, observer: &dyn Observer) -> Outcome {
        let StepKind::Drain {
            router,
            colour,
            duration_ms,
            until_idle,
            counts_sessions,
            backend,
            spec,
            // A floor made the plan's `duration_ms` and turned `until_idle`
            // off: the drain waits it by time.
            floor: _,
        } = kind
        else {
            unreachable!("a drain step")
        };
        let most = Duration::from_millis(*duration_ms);
        if !until_idle {
            tokio::time::sleep(most).await;
            return Outcome::ok(vec![]);
        }
        let counter = match (counts_sessions, backend, spec) {
            (true, Some(backend), Some(spec)) => self.providers.router(backend).zip(Some(spec)),
            _ => None,
        };
        let step = StepId::Drain(router.clone());
        let end = match counter {
            Some((provider, spec)) => {
                let drained = (router.as_str(), colour.as_str());
                until_idle_or(provider.as_ref(), spec, &step, drained, most, observer).await
            }
            None => {
                tokio::time::sleep(most).await;
                DrainEnd::ByTime
            }
        };
        observer.event(&Event::DrainEnded {
            step,
            router: router.clone(),
            colour: colour.clone(),
            end,
        });
        Outcome::ok(vec![])
    }

    /// Run a settle step: ask each of its routers, all at once, until it
    /// counts no open session to the environment, within the step's
    /// maximum. Like a drain it never fails: at the maximum the change goes
    /// ahead, with a warning.
    pub(super) async fn settle(&self, kind: &StepKind, observer: &dyn Observer) -> Outcome {
        let StepKind::Settle {
            environment,
            routers,
            most_ms,
            ..
        } = kind
        else {
            unreachable!("a settle step")
        };
        let step = &StepId::Settle(environment.clone());
        let most = Duration::from_millis(*most_ms);
        // Concurrently, with one deadline: a router with a stream open for
        // the whole maximum must not leave the others unread.
        let waits = routers.iter().filter_map(|r| {
            let provider = self.providers.router(&r.backend)?;
            Some(async move {
                let settled = (r.router.as_str(), environment.as_str());
                let end =
                    until_idle_or(provider.as_ref(), &r.spec, step, settled, most, observer).await;
                observer.event(&Event::DrainEnded {
                    step: step.clone(),
                    router: r.router.clone(),
                    colour: environment.clone(),
                    end,
                });
            })
        });
        futures_util::future::join_all(waits).await;
        Outcome::ok(vec![])
    }
}

/// Ask `provider` every [`DRAIN_POLL`] how many sessions the router holds
/// open to the colour (`drained`: router, colour) until none, for at most
/// `most`, telling the observer the count as it changes (as `step`'s).
pub(super) async fn until_idle_or(
    provider: &dyn RouterProvider,
    spec: &RouterSpec,
    step: &StepId,
    (router, colour): (&str, &str),
    most: Duration,
    observer: &dyn Observer,
) -> DrainEnd {
    let started = Instant::now();
    let left = || most.saturating_sub(started.elapsed());
    let target = spec.colour(colour).cloned().unwrap_or_else(|| Colour {
        name: colour.to_owned(),
        endpoints: vec![],
    });
    let mut last: Option<u64> = None;
    let mut error: Option<String> = None;
    let mut told: Option<Instant> = None;
    loop {
        // A read that outlasts the maximum is not waited for.
        let read = tokio::time::timeout(left(), provider.open_sessions(spec, &target)).await;
        let retell = told.is_none_or(|t| t.elapsed() >= RETELL);
        match read {
            Err(_) => break,
            Ok(Ok(Some(0))) => return DrainEnd::Idle,
            Ok(Ok(None)) => {
                // This router cannot tell after all: by time, for the rest.
                tokio::time::sleep(left()).await;
                return DrainEnd::ByTime;
            }
            Ok(Ok(Some(sessions))) => {
                if last != Some(sessions) || retell {
                    told = Some(Instant::now());
                    observer.event(&Event::DrainWaiting {
                        step: step.clone(),
                        router: router.to_owned(),
                        colour: colour.to_owned(),
                        sessions,
                        remaining: left(),
                    });
                }
                (last, error) = (Some(sessions), None);
            }
            Ok(Err(e)) => {
                let described = e.describe();
                if error.as_ref() != Some(&described) || retell {
                    told = Some(Instant::now());
                    observer.event(&Event::DrainUnreadable {
                        step: step.clone(),
                        router: router.to_owned(),
                        colour: colour.to_owned(),
                        error: described.clone(),
                        remaining: left(),
                    });
                }
                (last, error) = (None, Some(described));
            }
        }
        if left().is_zero() {
            break;
        }
        tokio::time::sleep(DRAIN_POLL.min(left())).await;
    }
    DrainEnd::Maximum {
        sessions: last,
        error,
    }
}

#[cfg(test)]
#[path = "drain_tests.rs"]
mod tests;
