//! Fleets: one router, several instances of its load balancer.
//!
//! Production HAProxy and nginx rarely run alone: an active pair, or several
//! edge nodes, must all send traffic to the same colour. A block with
//! `instances = [{...}, {...}]` is one router whose every instance is the
//! single-instance block it would be on its own (the block's shared
//! attributes plus the instance's own: a socket and a map, an admin
//! address, a pid file and an include). [`Fleet`] wraps a single-instance
//! provider and keeps, for the whole fleet, the contract that provider
//! keeps for one instance:
//!
//! - **read** reads every instance at once. They must agree: the router's
//!   `live` is what most say, and each instance that says otherwise is a
//!   [`RouterDriftKind::InstancesDisagree`] drift naming it (a switch
//!   repairs it, as every drift). An instance that cannot be read is an
//!   error naming it.
//! - **switch** is all or nothing for the router, as the contract asks of a
//!   switch: it reads what every instance serves, preflights every
//!   instance, and changes none unless all would serve the target; then it
//!   switches all of them at once and confirms each (the single-instance
//!   switch reads back). If one fails, every instance that moved (or may
//!   have: a timeout) is switched back to the colour it served a moment
//!   before, and the error names the instance that failed and says which
//!   went back. That colour was serving live traffic through the other
//!   instances while this switch ran, so it is still what served (rule 7);
//!   the engine's own revert rules stay as they are for the router as a
//!   whole.
//! - **preflight**, **set_preview**, **open_sessions** and **drain_floor**
//!   ask every instance at once; the sessions are summed, and the floor is
//!   the longest instance's (each instance's in-flight requests need it).
//!
//! Every method of [`RouterProvider`] is forwarded, for a block of one
//! instance as for a fleet: a method left to the trait's default here
//! would hide what the single-instance provider says.
//!
//! A block without `instances` is passed to the single-instance provider
//! unchanged, at no cost.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Colour, DrainFloor, ErrorKind, LiveInstance, LiveRouter, ProviderError, RouterDrift,
    RouterDriftKind, RouterProvider, RouterSpec,
};

mod instances;
#[cfg(test)]
mod tests;

use instances::Instance;

/// A router provider whose block can list `instances`: it names the block
/// and the attributes that belong to one instance.
pub trait FleetMember: RouterProvider {
    /// The block's name (`haproxy`), for messages.
    const KIND: &'static str;
    /// The attributes that each instance sets for itself, and that the
    /// block sets only without `instances` (`socket`, `address`, `map`).
    /// An instance without a `name` is named by the first of these it sets.
    const INSTANCE_ATTRIBUTES: &'static [&'static str];
}

/// When one instance of a fleet was confirmed switched, after the first
/// one was: the fleet's switch skew, instance by instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSwitch {
    /// The instance's name.
    pub name: String,
    /// How long after the first instance's confirmation this one's came
    /// (zero for the first).
    pub offset: Duration,
}

/// A single-instance router provider driving one instance or a fleet of
/// them (see the module's docs). The registry holds the built-in HAProxy,
/// Caddy and nginx providers in one.
#[derive(Debug, Default, Clone)]
pub struct Fleet<P>(P);

impl<P> Fleet<P> {
    /// `single`, for blocks of one instance or of several.
    pub fn new(single: P) -> Self {
        Fleet(single)
    }
}

/// A failure that may have moved traffic (timed out, or stopped half-way),
/// as the engine counts them.
fn may_have_moved(e: &ProviderError) -> bool {
    matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Failed)
}

impl<P: FleetMember> Fleet<P> {
    fn instances(&self, spec: &RouterSpec) -> Result<Option<Vec<Instance>>, ProviderError> {
        instances::of(P::KIND, P::INSTANCE_ATTRIBUTES, spec)
    }

    /// Every instance's value, or one error naming the instance that
    /// decides: a refusal before a wait (waiting helps the fleet only if it
    /// helps every instance), else the first in order; the others that
    /// failed are named in it too.
    fn all<T>(
        fleet: &[Instance],
        results: Vec<Result<T, ProviderError>>,
    ) -> Result<Vec<T>, ProviderError> {
        let mut values = Vec::with_capacity(results.len());
        let mut failures = Vec::new();
        for (instance, result) in fleet.iter().zip(results) {
            match result {
                Ok(value) => values.push(value),
                Err(e) => failures.push((instance, e)),
            }
        }
        if failures.is_empty() {
            return Ok(values);
        }
        let decides = failures
            .iter()
            .position(|(_, e)| e.kind() != ErrorKind::NotReady)
            .unwrap_or(0);
        let (instance, error) = failures.remove(decides);
        let also: Vec<String> = failures
            .iter()
            .map(|(i, e)| format!("{}: {}", i.label(), e.describe()))
            .collect();
        let mut prefix = instance.label();
        if !also.is_empty() {
            prefix = format!("{prefix} (and {})", also.join("; "));
        }
        Err(Self::named(instance, &prefix, error))
    }

    fn named(instance: &Instance, prefix: &str, error: ProviderError) -> ProviderError {
        instances::named(P::INSTANCE_ATTRIBUTES, instance.index, prefix, error)
    }

    /// Switch every instance at once, each timed from the same start; on a
    /// failure, switch back the ones that moved (see the module's docs).
    async fn switch_fleet(
        &self,
        spec: &RouterSpec,
        fleet: &[Instance],
        target: &Colour,
    ) -> Result<Vec<InstanceSwitch>, ProviderError> {
        // What each instance serves now: where it goes back if another fails.
        let reads = join_all(fleet.iter().map(|i| self.0.read(&i.spec))).await;
        let before = Self::all(fleet, before_any_switch(reads, "reading"))?;
        // Nothing moves unless every instance would serve the target now.
        let checks = join_all(fleet.iter().map(|i| self.0.preflight(&i.spec, target))).await;
        Self::all(fleet, before_any_switch(checks, "checking"))?;
        let started = Instant::now();
        let switched = join_all(fleet.iter().map(|i| async move {
            let result = self.0.switch(&i.spec, target).await;
            (result, started.elapsed())
        }))
        .await;
        if switched.iter().all(|(result, _)| result.is_ok()) {
            let first = switched.iter().map(|(_, at)| *at).min().unwrap_or_default();
            return Ok(fleet
                .iter()
                .zip(&switched)
                .map(|(i, (_, at))| InstanceSwitch {
                    name: i.name.clone(),
                    offset: at.saturating_sub(first),
                })
                .collect());
        }
        let results = switched.into_iter().map(|(result, _)| result).collect();
        Err(self
            .switch_back(spec, fleet, &before, target, results)
            .await)
    }

    /// After a failed switch of the fleet: every instance that moved goes
    /// back to what it served before; the error names the instance that
    /// failed and says where each other one is.
    async fn switch_back(
        &self,
        spec: &RouterSpec,
        fleet: &[Instance],
        before: &[LiveRouter],
        target: &Colour,
        results: Vec<Result<(), ProviderError>>,
    ) -> ProviderError {
        let mut failures = Vec::new();
        let mut moved = Vec::new();
        for ((instance, was), result) in fleet.iter().zip(before).zip(results) {
            match result {
                Ok(()) => moved.push((instance, was)),
                Err(e) => {
                    if may_have_moved(&e) {
                        moved.push((instance, was));
                    }
                    failures.push((instance, e));
                }
            }
        }
        let backs = join_all(moved.iter().map(|(instance, was)| async move {
            let colour = was.live.as_deref().and_then(|c| spec.colour(c));
            let result = match colour {
                Some(colour) => self.0.switch(&instance.spec, colour).await.map_err(|e| {
                    format!(
                        "could not be switched back to {}: {}",
                        colour.name,
                        e.describe()
                    )
                }),
                None => Err(format!(
                    "served no colour before ({}), so it was not switched back",
                    was.raw.as_deref().unwrap_or("nothing")
                )),
            };
            (instance.label(), colour.map(|c| c.name.clone()), result)
        }))
        .await;
        let mut went_back = Vec::new();
        let mut stuck = Vec::new();
        for (label, colour, result) in backs {
            match result {
                Ok(()) => went_back.push(format!("{label} to {}", colour.unwrap_or_default())),
                Err(why) => stuck.push(format!(
                    "{label} {why}: it may send traffic to {}",
                    target.name
                )),
            }
        }
        let failed: Vec<String> = failures.iter().map(|(i, _)| i.label()).collect();
        let verb = if failed.len() == 1 { "was" } else { "were" };
        let head = format!(
            "{} {verb} not switched to {}",
            failed.join(" and "),
            target.name
        );
        let told = tell_where(&head, &went_back, &stuck);
        let mut failures = failures.into_iter();
        let Some((instance, error)) = failures.next() else {
            return ProviderError::failed(told);
        };
        let others: Vec<String> = failures
            .map(|(i, e)| format!("{}: {}", i.label(), e.describe()))
            .collect();
        let told = if others.is_empty() {
            told
        } else {
            format!("{told} ({})", others.join("; "))
        };
        let error = Self::named(instance, &told, error);
        if stuck.is_empty() {
            error
        } else {
            error.into_kind(ErrorKind::Failed)
        }
    }
}

/// The results of the reads or preflights (`doing`: "reading",
/// "checking") a fleet's switch makes before it switches any instance.
/// Those change nothing, so whatever broke off (an instance killed in the
/// middle of its read: `failed`; an exchange that timed out) no traffic
/// moved, and the error must not be of a kind that may have moved it: the
/// engine would switch the router back from a switch never made, and say
/// that it could not (the instance being dead). Such an error becomes
/// [`ErrorKind::Unreachable`] (the instance could not be talked to
/// through), caused by what the instance said, saying that no instance
/// was switched.
fn before_any_switch<T>(
    results: Vec<Result<T, ProviderError>>,
    doing: &str,
) -> Vec<Result<T, ProviderError>> {
    let nothing_moved = |error: ProviderError| {
        if !may_have_moved(&error) {
            return error;
        }
        let message = format!("no instance was switched, as {doing} it before the switch failed");
        ProviderError::caused_by(ErrorKind::Unreachable, message, error)
    };
    results
        .into_iter()
        .map(|r| r.map_err(nothing_moved))
        .collect()
}

/// The head of a failed fleet switch's error: which instance failed, and
/// where the others are now.
fn tell_where(head: &str, went_back: &[String], stuck: &[String]) -> String {
    let mut text = head.to_string();
    if !went_back.is_empty() {
        text.push_str(&format!("; switched back: {}", went_back.join(", ")));
    }
    if stuck.is_empty() {
        text.push_str("; no instance was left on the new colour");
    } else {
        text.push_str(&format!("; {}", stuck.join("; ")));
    }
    text
}

/// What a fleet reads: the colour most instances serve (the first's on a
/// tie), with every instance that serves another named as drift, and every
/// instance's own drift named.
fn agree(fleet: &[Instance], lives: Vec<LiveRouter>) -> LiveRouter {
    let said = |l: &LiveRouter| (l.live.clone(), l.raw.clone());
    let count = |l: &LiveRouter| lives.iter().filter(|o| said(o) == said(l)).count();
    // The most said; `max_by_key` keeps the last of equals, so go backwards.
    let reference = lives
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, l)| count(l))
        .map_or(0, |(i, _)| i);
    let main = said(&lives[reference]);
    let mut drift = Vec::new();
    for (instance, live) in fleet.iter().zip(&lives) {
        for d in &live.drift {
            let message = format!("{}: {}", instance.label(), d.message);
            drift.push(RouterDrift::new(d.kind, message));
        }
    }
    let agreeing: Vec<String> = fleet
        .iter()
        .zip(&lives)
        .filter(|(_, l)| said(l) == main)
        .map(|(i, _)| i.label())
        .collect();
    for (instance, live) in fleet.iter().zip(&lives) {
        if said(live) != main {
            drift.push(RouterDrift::new(
                RouterDriftKind::InstancesDisagree,
                format!(
                    "{} sends traffic to {} while {} {} it to {}: a switch moves every instance \
                     to the router's colour",
                    instance.label(),
                    shown(live),
                    agreeing.join(", "),
                    if agreeing.len() == 1 { "sends" } else { "send" },
                    shown(&lives[reference])
                ),
            ));
        }
    }
    let preview = lives[0].preview.clone();
    let preview = preview.filter(|p| lives.iter().all(|l| l.preview.as_ref() == Some(p)));
    let instances = fleet
        .iter()
        .zip(&lives)
        .map(|(i, l)| LiveInstance {
            name: i.name.clone(),
            live: l.live.clone(),
            raw: l.raw.clone(),
            preview: l.preview.clone(),
        })
        .collect();
    let (live, raw) = main;
    LiveRouter {
        live,
        raw,
        preview,
        drift,
        instances,
    }
}

/// What one instance serves, for a sentence.
fn shown(live: &LiveRouter) -> String {
    match (&live.live, &live.raw) {
        (Some(colour), _) => colour.clone(),
        (None, Some(raw)) => format!("`{raw}` (no colour)"),
        (None, None) => "nothing of cutover's".to_string(),
    }
}

/// How many routers of several instances a batch switches at once.
const FLEETS_AT_ONCE: usize = 10;

#[async_trait::async_trait]
impl<P: FleetMember> RouterProvider for Fleet<P> {
    fn validate(&self, settings: &Value) -> Result<(), ProviderError> {
        let Some(split) = instances::split(P::KIND, P::INSTANCE_ATTRIBUTES, settings)? else {
            return self.0.validate(settings);
        };
        for listed in split {
            self.0.validate(&listed.settings).map_err(|e| {
                let prefix = format!("instance `{}`", listed.name);
                instances::named(P::INSTANCE_ATTRIBUTES, listed.index, &prefix, e)
            })?;
        }
        Ok(())
    }

    async fn read(&self, spec: &RouterSpec) -> Result<LiveRouter, ProviderError> {
        let Some(fleet) = self.instances(spec)? else {
            return self.0.read(spec).await;
        };
        let reads = join_all(fleet.iter().map(|i| self.0.read(&i.spec))).await;
        Ok(agree(&fleet, Self::all(&fleet, reads)?))
    }

    async fn preflight(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let Some(fleet) = self.instances(spec)? else {
            return self.0.preflight(spec, target).await;
        };
        let checks = join_all(fleet.iter().map(|i| self.0.preflight(&i.spec, target))).await;
        Self::all(&fleet, checks).map(|_| ())
    }

    async fn switch(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        self.switch_instances(spec, target).await.map(|_| ())
    }

    async fn switch_instances(
        &self,
        spec: &RouterSpec,
        target: &Colour,
    ) -> Result<Vec<InstanceSwitch>, ProviderError> {
        match self.instances(spec)? {
            None => self.0.switch_instances(spec, target).await,
            Some(fleet) => self.switch_fleet(spec, &fleet, target).await,
        }
    }

    fn switches_in_batches(&self) -> bool {
        self.0.switches_in_batches()
    }

    /// Each instance's claims.
    fn claims(&self, spec: &RouterSpec) -> Vec<String> {
        match self.instances(spec) {
            Ok(None) => self.0.claims(spec),
            Ok(Some(fleet)) => fleet.iter().flat_map(|i| self.0.claims(&i.spec)).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The routers of one instance go to the member's batch together; a
    /// router of several instances switches as a fleet, all or nothing, as
    /// when alone.
    async fn switch_batch(
        &self,
        switches: &[(&RouterSpec, &Colour)],
    ) -> Vec<Result<Vec<InstanceSwitch>, ProviderError>> {
        let mut results: Vec<Option<Result<Vec<InstanceSwitch>, ProviderError>>> =
            switches.iter().map(|_| None).collect();
        let mut single = Vec::new();
        let mut positions = Vec::new();
        let mut fleets = Vec::new();
        for (i, (spec, target)) in switches.iter().enumerate() {
            match self.instances(spec) {
                Err(e) => results[i] = Some(Err(e)),
                Ok(None) => {
                    single.push((*spec, *target));
                    positions.push(i);
                }
                Ok(Some(fleet)) => {
                    fleets.push(async move { (i, self.switch_fleet(spec, &fleet, target).await) })
                }
            }
        }
        let batch = async {
            if single.is_empty() {
                Vec::new()
            } else {
                self.0.switch_batch(&single).await
            }
        };
        // Each fleet's switch holds a connection per instance: at most
        // FLEETS_AT_ONCE of them at once (HAProxy's stats socket serves 10
        // connections by default).
        let fleets =
            futures_util::StreamExt::collect::<Vec<_>>(futures_util::StreamExt::buffer_unordered(
                futures_util::stream::iter(fleets),
                FLEETS_AT_ONCE,
            ));
        let (batch, fleets) = futures_util::future::join(batch, fleets).await;
        for (i, result) in positions.into_iter().zip(batch).chain(fleets) {
            results[i] = Some(result);
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ProviderError::failed(
                        "the backend gave no result for this switch",
                    ))
                })
            })
            .collect()
    }

    fn has_preview(&self) -> bool {
        self.0.has_preview()
    }

    fn counts_sessions(&self) -> bool {
        self.0.counts_sessions()
    }

    async fn open_sessions(
        &self,
        spec: &RouterSpec,
        colour: &Colour,
    ) -> Result<Option<u64>, ProviderError> {
        let Some(fleet) = self.instances(spec)? else {
            return self.0.open_sessions(spec, colour).await;
        };
        let counts = join_all(fleet.iter().map(|i| self.0.open_sessions(&i.spec, colour))).await;
        // The colour is idle only when it is idle on every instance.
        Ok(Self::all(&fleet, counts)?.into_iter().sum())
    }

    async fn drain_floor(
        &self,
        spec: &RouterSpec,
        colour: &Colour,
    ) -> Result<Option<DrainFloor>, ProviderError> {
        let Some(fleet) = self.instances(spec)? else {
            return self.0.drain_floor(spec, colour).await;
        };
        let floors = join_all(fleet.iter().map(|i| self.0.drain_floor(&i.spec, colour))).await;
        let floors = Self::all(&fleet, floors)?;
        let longest = fleet
            .iter()
            .zip(floors)
            .filter_map(|(i, floor)| Some((i, floor?)))
            // `max_by_key` keeps the last of equals: the first instance's.
            .rev()
            .max_by_key(|(_, floor)| floor.at_least_ms);
        Ok(longest.map(|(instance, floor)| DrainFloor {
            at_least_ms: floor.at_least_ms,
            why: format!("{} on {}", floor.why, instance.label()),
        }))
    }

    async fn set_preview(
        &self,
        spec: &RouterSpec,
        target: Option<&Colour>,
    ) -> Result<(), ProviderError> {
        let Some(fleet) = self.instances(spec)? else {
            return self.0.set_preview(spec, target).await;
        };
        // No live traffic goes through a preview: every instance is pointed
        // at once, and a failure is named; setting it again converges.
        let set = join_all(fleet.iter().map(|i| self.0.set_preview(&i.spec, target))).await;
        Self::all(&fleet, set).map(|_| ())
    }
}
