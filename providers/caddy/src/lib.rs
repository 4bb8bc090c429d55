//! cutover's Caddy router: the `caddy { ... }` block.
//!
//! Caddy is driven through its admin API. cutover manages one route per
//! router, found by its `@id` (`cutover-<router>` unless `route_id` says
//! otherwise): a route whose `reverse_proxy` handler's upstreams are the live
//! colour's endpoints. Switching replaces those upstreams (or creates the
//! route on the first run) in ONE admin request guarded by `If-Match` with the
//! ETag of the config cutover read just before, so that an edit made by
//! someone else in between is detected and nothing is overwritten. An
//! optional second route, matched by `preview_host`, sends the preview colour
//! its traffic the same way.
//!
//! Caddy accepts upstreams that do not answer, so cutover connects to each of
//! the target's endpoints itself before it changes anything.
#![deny(missing_docs)]

mod admin;
mod route;
mod settings;

/// The reading of Caddy's config JSON, for the fuzz target `caddy_config`
/// (fuzz/): not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use serde_json::Value;

    /// What the provider does with a config `GET /config/` sent: find the
    /// managed route `id`, plan the change that points it at `dials` (with
    /// and without a host matcher), its removal, and read a route's dials.
    pub fn config(config: &Value, id: &str, dials: &[String]) {
        let _ = crate::route::find(config, id);
        for hosts in [&[][..], &["preview.example".to_string()][..]] {
            let _ = crate::route::change_to(config, "srv0", id, hosts, dials);
        }
        let _ = crate::route::removal(config, id).map(|c| c.path);
        let _ = crate::route::dials_of(config, id);
    }
}

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cutover_provider::{
    Colour, FleetMember, LiveRouter, ProviderError, RouterProvider, RouterSpec,
};
use hyper::{Method, StatusCode};
use serde_json::Value;
use tokio::net::TcpStream;

use crate::admin::AdminApi;
use crate::route::Change;
use crate::settings::{ManagedRoute, Resolved};

/// The Caddy router provider, driving Caddy through its admin API.
#[derive(Debug, Default, Clone)]
pub struct Caddy;

/// A fleet of Caddys: each instance has its own admin endpoint; the server,
/// route ids, hosts and timeout are the router's.
impl FleetMember for Caddy {
    const KIND: &'static str = "caddy";
    const INSTANCE_ATTRIBUTES: &'static [&'static str] = &["admin"];
}

/// Caddy's running config as cutover read it, with the ETag that guards a
/// change made from it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    config: Value,
    etag: String,
}

impl Snapshot {
    /// The ETag Caddy sent with the config, e.g. `"/config/ 79eac0a4"`.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The whole config as read.
    pub fn config(&self) -> &Value {
        &self.config
    }
}

#[async_trait::async_trait]
impl RouterProvider for Caddy {
    fn validate(&self, settings: &Value) -> Result<(), ProviderError> {
        settings::parse(settings).map(|_| ())
    }

    async fn read(&self, spec: &RouterSpec) -> Result<LiveRouter, ProviderError> {
        let config = settings::resolve(spec)?;
        let snapshot = snapshot(&api(&config)).await?;
        let live =
            route::find(&snapshot.config, &config.live.id).map_err(ProviderError::refused)?;
        let preview =
            route::find(&snapshot.config, &config.preview_id).map_err(ProviderError::refused)?;
        Ok(LiveRouter {
            live: live.as_ref().and_then(|r| colour_of(spec, &r.dials)),
            raw: live.map(|r| r.dials.join(", ")),
            preview: preview.and_then(|r| colour_of(spec, &r.dials)),
            drift: Vec::new(),
            ..Default::default()
        })
    }

    async fn preflight(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let config = settings::resolve(spec)?;
        probe_endpoints(spec, target, config.timeout).await?;
        let snapshot = snapshot(&api(&config)).await?;
        planned_change(&snapshot, &config, &config.live, Some(target))?;
        Ok(())
    }

    async fn switch(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let config = settings::resolve(spec)?;
        probe_endpoints(spec, target, config.timeout).await?;
        let _turn = changes_to(&config).lock_owned().await;
        // Read as late as possible: the ETag guards only what happens after.
        let snapshot = snapshot(&api(&config)).await?;
        apply(spec, &config, &snapshot, &config.live, Some(target)).await
    }

    fn has_preview(&self) -> bool {
        true
    }

    async fn set_preview(
        &self,
        spec: &RouterSpec,
        target: Option<&Colour>,
    ) -> Result<(), ProviderError> {
        let config = settings::resolve(spec)?;
        let route = match target {
            Some(target) => {
                probe_endpoints(spec, target, config.timeout).await?;
                preview_route(&config)?
            }
            // Removing needs only the route's `@id`, which `read` reports a
            // preview route by also without `preview_host` (taken out of the
            // block with `preview`).
            None => ManagedRoute {
                id: config.preview_id.clone(),
                hosts: Vec::new(),
            },
        };
        let _turn = changes_to(&config).lock_owned().await;
        let snapshot = snapshot(&api(&config)).await?;
        apply(spec, &config, &snapshot, &route, target).await
    }
}

impl Caddy {
    /// Read Caddy's running config and its ETag: the first half of a switch.
    pub async fn snapshot(&self, spec: &RouterSpec) -> Result<Snapshot, ProviderError> {
        let config = settings::resolve(spec)?;
        snapshot(&api(&config)).await
    }

    /// The second half of a switch: point the live route at `target` as seen
    /// in `snapshot`, in one change guarded by the snapshot's ETag, and read
    /// it back. Unlike [`RouterProvider::switch`] it does not probe the
    /// target's endpoints. If the config changed since the snapshot, Caddy
    /// refuses the change and this fails with nothing changed.
    pub async fn switch_from(
        &self,
        spec: &RouterSpec,
        target: &Colour,
        snapshot: &Snapshot,
    ) -> Result<(), ProviderError> {
        let config = settings::resolve(spec)?;
        let _turn = changes_to(&config).lock_owned().await;
        apply(spec, &config, snapshot, &config.live, Some(target)).await
    }
}

fn api(config: &Resolved) -> AdminApi {
    AdminApi::new(config.admin.clone(), config.timeout)
}

/// The turn to change the Caddy behind `config`'s admin API. Every change
/// is guarded by the ETag of the whole config, so two routers of one Caddy
/// changed at once would take each other for a concurrent edit (412): within
/// this process they take turns, from the read of the config to the read
/// back, and a 412 then only ever means an edit made outside cutover. The
/// wait is bounded by the turns before it, each bounded by `timeout`.
fn changes_to(config: &Resolved) -> Arc<tokio::sync::Mutex<()>> {
    static TURNS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut turns = TURNS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    turns.entry(config.admin.to_string()).or_default().clone()
}

fn preview_route(config: &Resolved) -> Result<ManagedRoute, ProviderError> {
    config.preview.clone().ok_or_else(|| {
        ProviderError::settings(
            Some("preview_host".to_string()),
            "in `caddy` block: set `preview_host` (the Host the preview route matches) to give the preview colour a route",
        )
    })
}

/// `GET /config/` with its ETag.
async fn snapshot(api: &AdminApi) -> Result<Snapshot, ProviderError> {
    let reply = api.request(Method::GET, "/config/", None, None).await?;
    if reply.status != StatusCode::OK {
        return Err(ProviderError::refused(format!(
            "the {} refused GET /config/ (HTTP {}): {}",
            api.describe(),
            reply.status,
            reply.error_text()
        )));
    }
    let config: Value = serde_json::from_slice(&reply.body).map_err(|e| {
        ProviderError::failed(format!(
            "the {} sent a config that is not JSON",
            api.describe()
        ))
        .with_source(e)
    })?;
    let etag = reply.etag.ok_or_else(|| {
        ProviderError::refused(format!(
            "the {} sent its config without an ETag (Caddy 2.6 or later sends one); cutover needs it to detect concurrent changes",
            api.describe()
        ))
    })?;
    Ok(Snapshot { config, etag })
}

/// The change that points `route` at `target` (or removes it), from `snapshot`.
fn planned_change(
    snapshot: &Snapshot,
    config: &Resolved,
    route: &ManagedRoute,
    target: Option<&Colour>,
) -> Result<Option<Change>, ProviderError> {
    match target {
        Some(target) => route::change_to(
            &snapshot.config,
            &config.server,
            &route.id,
            &route.hosts,
            &target.endpoints,
        )
        .map_err(ProviderError::refused),
        None => Ok(route::removal(&snapshot.config, &route.id)),
    }
}

/// Make one guarded change from `snapshot` and confirm it by reading back.
async fn apply(
    spec: &RouterSpec,
    config: &Resolved,
    snapshot: &Snapshot,
    route: &ManagedRoute,
    target: Option<&Colour>,
) -> Result<(), ProviderError> {
    if let Some(target) = target {
        check_endpoints(spec, target)?;
    }
    let api = api(config);
    if let Some(change) = planned_change(snapshot, config, route, target)? {
        let reply = api
            .request(
                change.method.clone(),
                &change.path,
                change.body.as_ref(),
                Some(&snapshot.etag),
            )
            .await?;
        if reply.status == StatusCode::PRECONDITION_FAILED {
            let now = describe_route(&api, &route.id).await;
            return Err(ProviderError::conflict(format!(
                "Caddy's config changed while cutover was switching router `{}` (ETag mismatch); nothing was changed; run plan again (route `@id: {}` {now})",
                spec.name(), route.id
            )));
        }
        if !reply.status.is_success() {
            return Err(ProviderError::refused(format!(
                "Caddy refused {} {} for router `{}` (HTTP {}): {}; Caddy keeps its previous config",
                change.method,
                change.path,
                spec.name(),
                reply.status.as_u16(),
                reply.error_text()
            )));
        }
    }
    confirm(&api, spec, &route.id, target).await
}

/// Read the route back and check it sends traffic to `target` (or is gone).
async fn confirm(
    api: &AdminApi,
    spec: &RouterSpec,
    id: &str,
    target: Option<&Colour>,
) -> Result<(), ProviderError> {
    let dials = route_dials(api, id).await?;
    match (target, dials) {
        (None, None) => Ok(()),
        (Some(target), Some(dials)) if dials == target.endpoints => Ok(()),
        (target, dials) => Err(ProviderError::failed(format!(
            "after the change, Caddy's route `@id: {id}` of router `{}` {}, not {}",
            spec.name(),
            match dials {
                Some(d) => format!("sends traffic to [{}]", d.join(", ")),
                None => "does not exist".to_string(),
            },
            match target {
                Some(t) => format!("`{}` [{}]", t.name, t.endpoints.join(", ")),
                None => "removed".to_string(),
            }
        ))),
    }
}

/// The upstream dials of the route `id` as Caddy runs it; `None` when absent.
async fn route_dials(api: &AdminApi, id: &str) -> Result<Option<Vec<String>>, ProviderError> {
    let reply = api
        .request(Method::GET, &format!("/id/{id}"), None, None)
        .await?;
    match reply.status {
        StatusCode::NOT_FOUND => Ok(None),
        StatusCode::OK => {
            let route: Value = serde_json::from_slice(&reply.body).map_err(|e| {
                ProviderError::failed(format!("Caddy sent route `@id: {id}` as invalid JSON"))
                    .with_source(e)
            })?;
            route::dials_of(&route, id)
                .map(Some)
                .map_err(ProviderError::refused)
        }
        status => Err(ProviderError::refused(format!(
            "the {} refused GET /id/{id} (HTTP {status}): {}",
            api.describe(),
            reply.error_text()
        ))),
    }
}

/// What the route `id` does now, for a message.
async fn describe_route(api: &AdminApi, id: &str) -> String {
    match route_dials(api, id).await {
        Ok(Some(dials)) => format!("now sends traffic to [{}]", dials.join(", ")),
        Ok(None) => "does not exist now".to_string(),
        Err(e) => format!("could not be read again: {e}"),
    }
}

/// The colour whose endpoints are exactly `dials` (in any order): among the
/// colours serving on the first dial (an index lookup, not a scan of every
/// colour, which would make a refresh of N routers O(N²)), the first by name.
fn colour_of(spec: &RouterSpec, dials: &[String]) -> Option<String> {
    let mut seen: Vec<&String> = dials.iter().collect();
    seen.sort();
    seen.dedup();
    let first = seen.first()?;
    spec.colours()
        .serving_on(first)
        .find(|c| {
            let mut endpoints: Vec<&String> = c.endpoints.iter().collect();
            endpoints.sort();
            endpoints.dedup();
            !endpoints.is_empty() && endpoints == seen
        })
        .map(|c| c.name.clone())
}

fn check_endpoints(spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
    if target.endpoints.is_empty() {
        return Err(ProviderError::refused(format!(
            "colour `{}` has no endpoints for router `{}` to send traffic to",
            target.name,
            spec.name()
        )));
    }
    Ok(())
}

/// Connect to every endpoint of `target`: Caddy itself accepts upstreams that
/// are down and would answer 502.
async fn probe_endpoints(
    spec: &RouterSpec,
    target: &Colour,
    timeout: Duration,
) -> Result<(), ProviderError> {
    check_endpoints(spec, target)?;
    for endpoint in &target.endpoints {
        let error = match tokio::time::timeout(timeout, TcpStream::connect(endpoint.as_str())).await
        {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        return Err(ProviderError::refused(format!(
            "endpoint {endpoint} of colour `{}` does not answer ({error}); Caddy would accept it and answer 502, so router `{}` was not switched and nothing was changed",
            target.name, spec.name()
        )));
    }
    Ok(())
}
