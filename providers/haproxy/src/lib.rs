//! cutover's HAProxy router: the `haproxy { ... }` block.
//!
//! HAProxy can switch backends without a reload when the frontend picks its
//! backend from a map (`use_backend %[str(public),map(/etc/haproxy/live.map)]`):
//! the runtime API's `set map` changes the entry at once, for new requests, and
//! drops no connection. This provider reads and switches that entry, checks
//! through HAProxy's own health view that the target backend can serve before
//! switching (HAProxy accepts a `set map` to a backend that does not exist),
//! and writes the change into the map file so that a reload keeps it.
//!
//! HAProxy's health view lags cutover's health gate by up to `rise` checks:
//! a server whose check can still bring it up is *not ready* (the engine
//! waits), one in maintenance or draining is *refused* (docs/haproxy.md,
//! "Readiness").
#![deny(missing_docs)]

mod batch;
mod mapfile;
mod maplock;
mod mapreader;
mod mapwriter;
mod reply;
mod runtime;
mod settings;

/// The runtime-API reply parsers, for the fuzz target `haproxy_reply`
/// (fuzz/): not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// Every parser of a runtime-API reply on `reply`, and the splitting of
    /// a pipelined answer into `count` replies; what they find is described
    /// as messages do.
    pub fn runtime_reply(reply: &str, backend: &str, count: usize) {
        let _ = crate::reply::parse_show_map(reply);
        let _ = crate::reply::parse_get_map(reply);
        let _ = crate::reply::parse_show_backend(reply);
        if let Some(servers) = crate::reply::parse_show_stat(reply, backend) {
            for server in &servers {
                let _ = server.readiness();
                let _ = server.describe(backend);
            }
        }
        let _ = crate::reply::parse_backend_sessions(reply, backend);
        let _ = crate::reply::parse_map_list(reply);
        let _ = crate::runtime::split_replies(reply.as_bytes(), count);
    }

    /// The map-file readers and writer on a map file's `text`.
    pub fn map_file(text: &str, key: &str, values: &[String]) {
        let index = crate::mapfile::index(text);
        let written = crate::mapfile::with_keys_values(text, &[(key, values)]);
        let again = crate::mapfile::index(&written);
        // What was written for `key` reads back as those values (unless the
        // key itself cannot be a map key: empty, or with a space or `#`).
        if !key.is_empty() && !key.contains(|c: char| c.is_whitespace() || c == '#') {
            let want: Vec<String> = values.to_vec();
            assert_eq!(
                again.get(key).cloned().unwrap_or_default(),
                want,
                "{text:?}"
            );
        }
        drop(index);
    }
}

use std::path::Path;

use cutover_provider::{
    Colour, FleetMember, LiveRouter, ProviderError, RouterDrift, RouterDriftKind, RouterProvider,
    RouterSpec,
};
use serde_json::Value;

use crate::reply::{GetMap, MapEntry, Readiness, ServerStatus};
use crate::runtime::Session;
use crate::settings::Resolved;

/// The HAProxy router provider, driving HAProxy through its runtime API.
#[derive(Debug, Default, Clone)]
pub struct Haproxy;

/// A fleet of HAProxys (an active pair, edge nodes): each instance has its
/// own runtime API and map file; the key, backends, preview key and timeout
/// are the router's.
impl FleetMember for Haproxy {
    const KIND: &'static str = "haproxy";
    const INSTANCE_ATTRIBUTES: &'static [&'static str] = &["socket", "address", "map"];
}

#[async_trait::async_trait]
impl RouterProvider for Haproxy {
    fn validate(&self, settings: &Value) -> Result<(), ProviderError> {
        settings::parse(settings).map(|_| ())
    }

    async fn read(&self, spec: &RouterSpec) -> Result<LiveRouter, ProviderError> {
        let config = settings::resolve(spec)?;
        // One `show map` shared by the routers read at the same time
        // (mapreader), not one per router: N routers on one map of N keys
        // would otherwise cost O(N²).
        let entries = mapreader::recent_entries(&config.endpoint, &config.map, || async {
            let mut session = Session::open(&config.endpoint, config.timeout).await?;
            let entries = show_map(&mut session, &config.map).await;
            session.close().await;
            entries
        })
        .await?;
        let held = entries.values(&config.key);
        let raw = held.first().cloned();
        let preview = entries.values(&config.preview_key).first().cloned();
        // The file must say what HAProxy holds, or a reload would move the
        // traffic (e.g. an apply killed between `set map` and the rewrite).
        let mut drift = Vec::new();
        // The file is read once for the routers read at the same time, too.
        match mapreader::recent_file(&config.map).await {
            Ok(file) => {
                let on_disk = file.values(&config.key);
                if !held.is_empty() && on_disk != held {
                    drift.push(RouterDrift::new(RouterDriftKind::PersistedDiffers, format!(
                        "the map file {} says `{} {}` but HAProxy holds `{} {}`: a reload of HAProxy would move the traffic; switching again rewrites the file",
                        config.map.display(),
                        config.key,
                        if on_disk.is_empty() { "(nothing)".to_string() } else { on_disk.join(", ") },
                        config.key,
                        held.join(", ")
                    )));
                }
            }
            Err(e) => drift.push(RouterDrift::new(
                RouterDriftKind::PersistedUnreadable,
                format!("{}: a reload of HAProxy would fail", e.describe()),
            )),
        }
        Ok(LiveRouter {
            live: raw.as_deref().and_then(|b| config.colour_of(spec, b)),
            raw,
            preview: preview.as_deref().and_then(|b| config.colour_of(spec, b)),
            drift,
            ..Default::default()
        })
    }

    async fn preflight(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let config = settings::resolve(spec)?;
        let mut session = Session::open(&config.endpoint, config.timeout).await?;
        check(&mut session, &config, &target.name, &config.key).await?;
        session.close().await;
        Ok(())
    }

    async fn switch(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let config = settings::resolve(spec)?;
        // A batch replacing the whole map must not fall between this
        // switch's `set map` and its read-back (maplock).
        let _held = maplock::shared(&config.map, config.timeout).await?;
        let mut session = Session::open(&config.endpoint, config.timeout).await?;
        let before = check(&mut session, &config, &target.name, &config.key).await?;
        // Open the file before touching HAProxy, so that a file cutover cannot
        // read stops the switch while nothing has changed yet.
        check_map_file(&config.map).await?;
        let backend = config.backend_for(&target.name);
        let backend = backend.as_ref();
        let held = set_and_confirm(&mut session, &config, &config.key, before, backend).await?;
        session.close().await;
        persist(&config, &config.key, &held, backend).await
    }

    /// The router's key of its map, on its runtime API.
    fn claims(&self, spec: &RouterSpec) -> Vec<String> {
        match settings::resolve(spec) {
            Ok(config) => vec![format!(
                "the key `{}` of the map {} on the {}",
                config.key,
                config.map.display(),
                config.endpoint
            )],
            Err(_) => Vec::new(),
        }
    }

    /// The switches of one map go in one conversation and one map-file
    /// rewrite; 64 or more replace the map's version at once (batch.rs).
    fn switches_in_batches(&self) -> bool {
        true
    }

    async fn switch_batch(
        &self,
        switches: &[(&RouterSpec, &Colour)],
    ) -> Vec<Result<Vec<cutover_provider::InstanceSwitch>, ProviderError>> {
        batch::switch_batch(switches).await
    }

    /// The colour's backend's current sessions, from `show stat`.
    fn counts_sessions(&self) -> bool {
        true
    }

    /// The `scur` of the backend the colour's map value names (its
    /// `BACKEND` row: streams on its servers and those queued for one), read
    /// with `show stat <backend> 2 -1`. An idle keep-alive connection holds
    /// no stream, so it does not count: its next request is routed again,
    /// to the live colour.
    async fn open_sessions(
        &self,
        spec: &RouterSpec,
        colour: &Colour,
    ) -> Result<Option<u64>, ProviderError> {
        let config = settings::resolve(spec)?;
        let backend = config.backend_for(&colour.name);
        let backend = backend.as_ref();
        let stat = format!("show stat {backend} 2 -1");
        let mut session = Session::open(&config.endpoint, config.timeout).await?;
        let reply = single(session.exchange(&[&stat]).await?);
        session.close().await;
        match reply::parse_backend_sessions(&reply, backend) {
            Some(sessions) => Ok(Some(sessions)),
            None => Err(ProviderError::refused(format!(
                "HAProxy's reply to `{stat}` (colour `{}`) gives no session count: {}",
                colour.name,
                reply.trim_end()
            ))),
        }
    }

    /// The preview is a second key of the same map (`preview_key`, default
    /// `<key>_preview`), which a second frontend of the operator's looks up.
    fn has_preview(&self) -> bool {
        true
    }

    async fn set_preview(
        &self,
        spec: &RouterSpec,
        target: Option<&Colour>,
    ) -> Result<(), ProviderError> {
        let config = settings::resolve(spec)?;
        let _held = maplock::shared(&config.map, config.timeout).await?;
        let mut session = Session::open(&config.endpoint, config.timeout).await?;
        check_map_file(&config.map).await?;
        let key = config.preview_key.clone();
        match target {
            Some(target) => {
                let before = check(&mut session, &config, &target.name, &key).await?;
                let backend = config.backend_for(&target.name);
                let backend = backend.as_ref();
                let held = set_and_confirm(&mut session, &config, &key, before, backend).await?;
                session.close().await;
                persist(&config, &key, &held, backend).await
            }
            None => {
                let del = format!("del map {} {key}", config.map.display());
                let replies = session.exchange(&[&del]).await;
                mapreader::changed(&config.endpoint, &config.map);
                let replies = replies?;
                session.close().await;
                let reply = replies.first().map(|r| r.trim()).unwrap_or_default();
                if !reply.is_empty() && !reply.contains("not found") {
                    return Err(ProviderError::refused(format!(
                        "HAProxy refused `{del}`: {reply}"
                    )));
                }
                persist(&config, &key, &[], "(no preview)").await
            }
        }
    }
}

/// The preflight check, in one exchange: the backend of `colour` exists,
/// HAProxy sees one of its servers up, and the map is loaded. Returns whether
/// the map holds `key` (so a switch knows `set` from `add`). `get map` rather
/// than `show map`: a switch costs the same whatever the size of the map.
async fn check(
    session: &mut Session,
    config: &Resolved,
    colour: &str,
    key: &str,
) -> Result<bool, ProviderError> {
    let backend = config.backend_for(colour);
    let backend = backend.as_ref();
    let stat = format!("show stat {backend} 4 -1");
    let get = format!("get map {} {key}", config.map.display());
    let replies = session.exchange(&["show backend", &stat, &get]).await?;
    check_backend(&replies[0], &stat, &replies[1], backend, colour)?;
    match reply::parse_get_map(&replies[2]) {
        Some(GetMap::Found(_)) => Ok(true),
        Some(GetMap::NotFound) => Ok(false),
        None if replies[2].starts_with("Unknown map identifier") => {
            // Names the maps HAProxy has loaded.
            map_entries(session, &config.map, &replies[2])
                .await
                .map(|_| false)
        }
        None => Err(ProviderError::refused(format!(
            "HAProxy refused `{get}`: {}",
            replies[2].trim_end()
        ))),
    }
}

/// `show map <map>` (mapreader shares it between concurrent callers).
pub(crate) async fn show_map(
    session: &mut Session,
    map: &Path,
) -> Result<Vec<MapEntry>, ProviderError> {
    let show_map = format!("show map {}", map.display());
    let reply = single(session.exchange(&[&show_map]).await?);
    map_entries(session, map, &reply).await
}

/// The entries of the map from the reply to `show map <map>`.
async fn map_entries(
    session: &mut Session,
    map: &Path,
    reply: &str,
) -> Result<Vec<MapEntry>, ProviderError> {
    if let Some(entries) = reply::parse_show_map(reply) {
        return Ok(entries);
    }
    let map = map.display();
    if reply.starts_with("Unknown map identifier") {
        let loaded = reply::parse_map_list(&single(session.exchange(&["show map"]).await?));
        let loaded = if loaded.is_empty() {
            "none".to_string()
        } else {
            loaded.join(", ")
        };
        return Err(ProviderError::refused(format!(
            "HAProxy has not loaded the map {map} (maps it has loaded: {loaded}); `map` must name \
             the file exactly as HAProxy's configuration does"
        )));
    }
    Err(ProviderError::refused(format!(
        "HAProxy refused `show map {map}`: {}",
        reply.trim_end()
    )))
}

/// Check the replies to `show backend` and `show stat <backend> 4 -1`.
fn check_backend(
    show_backend: &str,
    stat: &str,
    stat_reply: &str,
    backend: &str,
    colour: &str,
) -> Result<(), ProviderError> {
    let backends = reply::parse_show_backend(show_backend);
    if !backends.iter().any(|b| b == backend) {
        return Err(ProviderError::refused(format!(
            "HAProxy has no backend `{backend}` for colour `{colour}` (its backends: {}); name \
             the right one with `backends = {{ {colour} = \"...\" }}` or add it to HAProxy's configuration",
            backends.join(", ")
        )));
    }
    let servers = reply::parse_show_stat(stat_reply, backend).ok_or_else(|| {
        ProviderError::refused(format!(
            "HAProxy refused `{stat}`: {}",
            stat_reply.trim_end()
        ))
    })?;
    if servers.is_empty() {
        return Err(ProviderError::refused(format!(
            "backend `{backend}` (colour `{colour}`) has no servers in HAProxy"
        )));
    }
    readiness(&servers, backend, colour)
}

/// Whether HAProxy would serve `backend` now: a server of it takes traffic
/// (ready); none does but HAProxy's own check can bring one up (not ready:
/// cutover's gate may have passed a moment before HAProxy's next check, and
/// `rise` passes are needed); or none can come up without an operator
/// (refused). docs/haproxy.md, "Readiness", says which status is which.
fn readiness(servers: &[ServerStatus], backend: &str, colour: &str) -> Result<(), ProviderError> {
    let states: Vec<Readiness> = servers.iter().map(ServerStatus::readiness).collect();
    if states.contains(&Readiness::Serves) {
        return Ok(());
    }
    let seen: Vec<String> = servers.iter().map(|s| s.describe(backend)).collect();
    let seen = seen.join(", ");
    if states.contains(&Readiness::Rising) {
        return Err(ProviderError::not_ready(format!(
            "HAProxy's own check has not yet seen backend `{backend}` (colour `{colour}`) up: {seen}"
        )));
    }
    Err(ProviderError::refused(format!(
        "HAProxy sees no server of backend `{backend}` (colour `{colour}`) up, and none that its \
         own check could bring up: {seen}; it would answer 503 (a server in MAINT or DRAIN \
         stays so until an operator sets it ready, e.g. `set server {backend}/<server> state ready`)"
    )))
}

/// Point the router's key at `backend` in HAProxy's memory and read it back,
/// in one exchange. `set map` changes every entry of the key, so what HAProxy
/// now holds for it is `backend`, which `get map` confirms; returns it.
async fn set_and_confirm(
    session: &mut Session,
    config: &Resolved,
    key: &str,
    exists: bool,
    backend: &str,
) -> Result<Vec<String>, ProviderError> {
    let map = config.map.display();
    let verb = if exists { "set" } else { "add" };
    let set = format!("{verb} map {map} {key} {backend}");
    let get = format!("get map {map} {key}");
    let replies = session.exchange(&[&set, &get]).await;
    // Reads that started before this may no longer be reused by a refresh.
    mapreader::changed(&config.endpoint, &config.map);
    let replies = replies?;
    // Success is an empty reply; anything else is HAProxy's error.
    if !replies[0].trim().is_empty() {
        return Err(ProviderError::refused(format!(
            "HAProxy refused `{set}`: {}",
            replies[0].trim_end()
        )));
    }
    if reply::parse_get_map(&replies[1]) == Some(GetMap::Found(backend.to_string())) {
        return Ok(vec![backend.to_string()]);
    }
    Err(ProviderError::failed(format!(
        "after `{set}` HAProxy's map does not send `{key}` to `{backend}` (`{get}` says: {})",
        replies[1].trim_end()
    )))
}

/// The map file's text (mapreader shares one read between concurrent callers).
pub(crate) async fn read_map_text(map: &Path) -> Result<String, ProviderError> {
    let path = map.to_path_buf();
    let read = tokio::task::spawn_blocking(move || std::fs::read_to_string(path)).await;
    map_file_result(map, read)
}

/// That the map file can be read, as text, and replaced, as its rewrite will
/// do: a switch checks this before touching HAProxy, so that a file the
/// rewrite would refuse (unreadable, a directory, not UTF-8, immutable, on a
/// read-only mount) stops the switch while nothing has changed — HAProxy
/// switched with a file left behind would undo the switch at its next
/// reload. One open for reading and appending and one read per switch, in
/// one blocking task, not shared and not indexed (reading through `mapreader` per
/// switch made N switches O(N²) in work around the read, not just in bytes).
async fn check_map_file(map: &Path) -> Result<(), ProviderError> {
    use std::io::Read;
    // Cannot be replaced or cannot be read: told apart for the message.
    enum Check {
        Open(std::io::Error),
        Read(std::io::Error),
    }
    let path = map.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(Check::Open)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(Check::Read)?;
        Ok(())
    })
    .await;
    match checked {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Check::Open(e))) => Err(ProviderError::refused(format!(
            "the map file {} cannot be written, so nothing was changed (cutover rewrites the file so \
             that a reload of HAProxy keeps the switch)",
            map.display()
        ))
        .with_source(e)),
        Ok(Err(Check::Read(e))) => map_file_result(map, Ok(Err::<(), _>(e))),
        Err(e) => Err(ProviderError::failed(format!(
            "checking the map file {} failed",
            map.display()
        ))
        .with_source(e)),
    }
}

fn map_file_result<T>(
    map: &Path,
    result: Result<std::io::Result<T>, tokio::task::JoinError>,
) -> Result<T, ProviderError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ProviderError::failed(format!(
            "cannot read the map file {}, so nothing was changed (cutover rewrites the file so \
             that a reload of HAProxy keeps the switch)",
            map.display()
        ))
        .with_source(e)),
        Err(e) => Err(ProviderError::failed(format!(
            "reading the map file {} failed",
            map.display()
        ))
        .with_source(e)),
    }
}

/// Write what HAProxy now holds for the key into the map file.
async fn persist(
    config: &Resolved,
    key: &str,
    held: &[String],
    backend: &str,
) -> Result<(), ProviderError> {
    // Rewrites of one map file are queued and grouped (mapwriter), so that
    // concurrent switches neither lose each other's keys nor each pay a
    // whole-file rewrite.
    let written = mapwriter::write_key(&config.map, key, held.to_vec()).await;
    mapreader::file_changed(&config.map);
    let error = match written {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    Err(ProviderError::failed(format!(
        "HAProxy now sends `{key}` to `{backend}`, but writing the map file {path} failed (a \
         reload of HAProxy would undo the switch until the file says `{key} {backend}`)",
        path = config.map.display(),
    ))
    .with_source(error))
}

/// The one reply of a one-command exchange.
fn single(replies: Vec<String>) -> String {
    replies.into_iter().next().unwrap_or_default()
}
