//! The trait a router backend implements (`haproxy {}`, `caddy {}`,
//! `nginx {}`, `aws_alb {}`, `exec {}`).

use serde_json::Value;

use crate::{Colour, DrainFloor, InstanceSwitch, LiveRouter, ProviderError, RouterSpec};

/// A backend that routes live traffic: `haproxy {}`, `caddy {}`, `nginx {}`, `aws_alb {}`,
/// `exec {}`.
///
/// [`validate`](RouterProvider::validate), [`read`](RouterProvider::read),
/// [`preflight`](RouterProvider::preflight) and
/// [`switch`](RouterProvider::switch) are required;
/// [`set_preview`](RouterProvider::set_preview) has a default that refuses
/// (a backend without a preview listener), and
/// [`open_sessions`](RouterProvider::open_sessions) one that cannot tell (a
/// backend that cannot count a colour's open sessions), and
/// [`drain_floor`](RouterProvider::drain_floor) one that knows no bound.
///
/// A cut-over runs, for each router: `switch`, which makes `preflight`'s
/// checks first and changes nothing when they fail. When it answers
/// [`NotReady`](crate::ErrorKind::NotReady), the engine asks `preflight`
/// (read-only) again every 250 ms, within the router's `ready_timeout`, with
/// progress, and switches once it is ready. (The engine does not ask
/// `preflight` before every switch: that doubled the conversations with the
/// router and cost 30% of a cut-over apply of 1,500 routers.) A revert or
/// `cutover rollback` calls `switch` the same way, to the colour that was
/// live before.
///
/// # Concurrency
///
/// The engine runs independent cut-overs in parallel: every method may be
/// called at the same time for different routers, also for routers that
/// share one load balancer (one HAProxy map, one Caddy, one nginx master),
/// and a provider must keep them from losing each other's changes. Never
/// twice at once for the same router. How the built-in providers keep it:
///
/// - `haproxy`: each router has its own map key; `set map` changes one key
///   atomically in HAProxy, and rewrites of one map file are queued and
///   grouped in-process, every key queued written in one atomic rewrite, so
///   none is lost;
/// - `caddy`: every change is guarded by the ETag of the whole config, so
///   changes to one admin endpoint take turns in-process (read, change, read
///   back), and a `412` only means an edit made outside cutover
///   ([`Conflict`](crate::ErrorKind::Conflict));
/// - `nginx`: each router owns its include file, written atomically; a
///   reload loads every include as a whole, so another router's reload only
///   publishes complete files, and each switch confirms through its own
///   marker's generation and waits for the workers older than its own
///   reload;
/// - `aws_alb`: each router switches its own listener's default action or
///   its own rule, one API call each; the creation of preview rules on one
///   listener takes turns in-process, so that two never pick the same free
///   priority;
/// - `exec`: the operator's commands must allow it (docs/exec-protocol.md).
///
/// # Time
///
/// Every method returns within a bound its settings give: every exchange
/// with the router has a timeout (`haproxy`: `timeout` per runtime API
/// exchange, default 5s; `caddy`: `timeout` per admin request and per
/// endpoint probe, default 10s; `nginx`: `timeout` for `nginx -t`, for the
/// reload to show and the old workers to exit, and per marker read, default
/// 10s; `exec`: `timeout` per command, default 60s; `aws_alb`: `timeout` per
/// attempt of an AWS call, at most `max_attempts` attempts with backoff,
/// default 10s and 4). Local file I/O (a map file, an include) is not timed.
#[async_trait::async_trait]
pub trait RouterProvider: Send + Sync {
    /// Check a backend block's settings. **Required.**
    ///
    /// Guarantees: touches nothing live and does no I/O; a wrong setting is
    /// an [`ErrorKind::Settings`](crate::ErrorKind::Settings) error naming
    /// the attribute.
    fn validate(&self, settings: &Value) -> Result<(), ProviderError>;

    /// Read the live colour from the router itself, never from a file cutover
    /// wrote or from the state. **Required.**
    ///
    /// Guarantees:
    /// - changes nothing;
    /// - `live` is the colour the router sends new traffic to now (translated
    ///   through [`RouterSpec::colours`]), `raw` what the router says when
    ///   that is no colour, both `None` when it routes nothing of cutover's;
    /// - what the provider notices out of step (the file a reload would load
    ///   says something else, cutover's part edited by hand) is a
    ///   [`RouterDrift`](crate::RouterDrift) that a `switch` to `live`
    ///   repairs;
    /// - cheap for N routers on one load balancer: no scan of every colour,
    ///   and no per-router read of something they share that one read could
    ///   serve (HAProxy shares one `show map` between concurrent reads).
    async fn read(&self, spec: &RouterSpec) -> Result<LiveRouter, ProviderError>;

    /// Check that the router would serve `target` now, if switched.
    /// **Required.** Called by the engine, when a
    /// [`switch`](RouterProvider::switch) answered
    /// [`NotReady`](crate::ErrorKind::NotReady), until it is ready, before
    /// the switch is made again.
    ///
    /// Guarantees:
    /// - changes nothing, so it can be asked any number of times;
    /// - `Ok` when the router knows the target (its backend, its route) and
    ///   would send traffic to it: for a router with health checks of its
    ///   own, when that check sees the target up;
    /// - [`NotReady`](crate::ErrorKind::NotReady) when waiting can help: the
    ///   router's own health check has not yet seen the target up (HAProxy's
    ///   `DOWN 1/2` a moment after cutover's gate passed), with a message
    ///   saying what it waits for;
    /// - [`Refused`](crate::ErrorKind::Refused) when it will not serve the
    ///   target as things stand: no such backend, a server in maintenance,
    ///   an endpoint that accepts no connection.
    async fn preflight(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError>;

    /// Send all live traffic to `target`, make that survive a reload or
    /// restart of the router, and confirm it by reading back. **Required.**
    ///
    /// Guarantees:
    /// - safe when called alone: it makes the checks `preflight` makes before
    ///   changing anything, and returns
    ///   [`NotReady`](crate::ErrorKind::NotReady) or
    ///   [`Refused`](crate::ErrorKind::Refused) with nothing changed for the
    ///   same conditions;
    /// - idempotent: switching to the colour already live succeeds, changing
    ///   no traffic, and repairs the drift [`read`](RouterProvider::read)
    ///   reports (a stale map file, an include edited without a reload);
    /// - direction-free: the same call switches back (a revert, a rollback);
    ///   it assumes nothing about which colour was live;
    /// - confirmed: it returns `Ok` only after reading back from the router
    ///   that `target` is what it serves (HAProxy's `get map`, Caddy's route,
    ///   nginx's marker, exec's `read`);
    /// - bounded in time and safe to run concurrently (see the trait's docs);
    /// - on an error, the message says whether traffic moved.
    async fn switch(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError>;

    /// [`switch`](RouterProvider::switch), saying for a router of several
    /// instances (a [`Fleet`](crate::Fleet)) when each was confirmed
    /// switched, after the first: the cut-over's skew, which the engine
    /// reports with it. **Provided:** the default switches and tells
    /// nothing (a router of one instance); only a fleet overrides it.
    ///
    /// Guarantees: those of `switch`, which it is; for a fleet, all or
    /// nothing: when it fails, no instance is left on `target` that was
    /// not on it before, or the error says which is (its kind then
    /// [`Failed`](crate::ErrorKind::Failed)).
    async fn switch_instances(
        &self,
        spec: &RouterSpec,
        target: &Colour,
    ) -> Result<Vec<InstanceSwitch>, ProviderError> {
        self.switch(spec, target).await.map(|()| Vec::new())
    }

    /// What this router alone may change in the program it drives, each as
    /// words that name it (HAProxy: ``the key `public` of the map
    /// /etc/haproxy/live.map``): two routers that claim the same thing
    /// would switch each other's traffic, so the core refuses such a
    /// configuration before anything runs. **Provided:** claims nothing.
    ///
    /// Guarantees: touches nothing live and does no I/O; an unresolvable
    /// spec claims nothing (`validate` reports it).
    fn claims(&self, spec: &RouterSpec) -> Vec<String> {
        let _ = spec;
        Vec::new()
    }

    /// Whether [`switch_batch`](RouterProvider::switch_batch) does better
    /// than one switch after another, so that the engine hands it every
    /// cut-over of this backend that may start together. **Provided:**
    /// `false`; HAProxy says `true` (one exchange and one map-file rewrite
    /// for many keys of a map, instead of one each).
    fn switches_in_batches(&self) -> bool {
        false
    }

    /// [`switch_instances`](RouterProvider::switch_instances) for several
    /// routers of this backend at once: one result per switch, in order.
    /// **Provided:** the default switches one after another.
    ///
    /// Guarantees: for each switch, those of `switch_instances`, as if it
    /// had been called alone: a router whose target is not ready or is
    /// refused gets that error with nothing of it changed, and does not
    /// stop the others; an error that may have moved traffic is
    /// [`Failed`](crate::ErrorKind::Failed) or
    /// [`Timeout`](crate::ErrorKind::Timeout) for each router it may have
    /// moved. Traffic of a router not in the batch never moves.
    async fn switch_batch(
        &self,
        switches: &[(&RouterSpec, &Colour)],
    ) -> Vec<Result<Vec<InstanceSwitch>, ProviderError>> {
        let mut results = Vec::with_capacity(switches.len());
        for (spec, target) in switches {
            results.push(self.switch_instances(spec, target).await);
        }
        results
    }

    /// Whether this backend has a preview listener or route
    /// ([`RouterProvider::set_preview`] is implemented): a router block
    /// with `preview` on a backend without one is refused when the
    /// configuration is validated, not half-way through an apply.
    fn has_preview(&self) -> bool {
        false
    }

    /// Whether this backend can count a colour's open sessions
    /// ([`RouterProvider::open_sessions`] is implemented): the plan says
    /// whether a drain with `drain_until_idle` waits on the count or by time,
    /// before anything runs.
    fn counts_sessions(&self) -> bool {
        false
    }

    /// How many sessions the router holds open to `colour` now: requests in
    /// flight and connections it still carries to the colour's servers, so
    /// that a drain can end as soon as the colour a cut-over took traffic
    /// from is idle. **Provided:** the default answers `Ok(None)`, "this
    /// router cannot tell", and the drain then waits its whole `drain`.
    ///
    /// Guarantees, when implemented:
    /// - changes nothing, so it can be asked any number of times (the
    ///   engine asks every 250 ms while it drains);
    /// - `Some(0)` only when the router carries nothing to `colour` that a
    ///   change of the colour would cut; an idle keep-alive connection that
    ///   the router sends to the live colour at its next request need not
    ///   count;
    /// - bounded in time, like every other method (the engine also stops
    ///   waiting for it at the drain's maximum);
    /// - safe to run concurrently with every other method, for any router.
    async fn open_sessions(
        &self,
        spec: &RouterSpec,
        colour: &Colour,
    ) -> Result<Option<u64>, ProviderError> {
        let _ = (spec, colour);
        Ok(None)
    }

    /// The least time `colour` must keep serving what the router still
    /// carries to it once a cut-over takes its traffic away, as the router
    /// itself is configured: the ALB's target group deregistration delay,
    /// the time AWS gives in-flight requests to a target it deregisters.
    /// **Provided:** the default answers `Ok(None)`, "no such bound".
    ///
    /// The engine asks at refresh, for the colour each router serves; a
    /// drain before that colour's change then lasts at least this long,
    /// whatever the router's `drain` says, waits by time, and the plan says
    /// why.
    ///
    /// Guarantees, when implemented: changes nothing; bounded in time; safe
    /// to run concurrently with every other method, for any router.
    async fn drain_floor(
        &self,
        spec: &RouterSpec,
        colour: &Colour,
    ) -> Result<Option<DrainFloor>, ProviderError> {
        let _ = (spec, colour);
        Ok(None)
    }

    /// Point the router's preview listener or route at `target`, or remove
    /// it with `None`, never touching live traffic. **Provided:** the default
    /// refuses, for backends without a preview listener.
    ///
    /// Guarantees, when implemented: as [`switch`](RouterProvider::switch)
    /// (idempotent, confirmed, bounded, concurrent-safe), on the preview
    /// only; removing a preview that is not there is a success.
    async fn set_preview(
        &self,
        spec: &RouterSpec,
        target: Option<&Colour>,
    ) -> Result<(), ProviderError> {
        let _ = (spec, target);
        Err(ProviderError::refused(
            "this router backend has no preview listener",
        ))
    }
}
