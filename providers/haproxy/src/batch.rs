//! Many switches at once ([`RouterProvider::switch_batch`]).
//!
//! HAProxy 2.6's `set map <map> <key> <value>` compares the key with every
//! entry of the map (`pat_ref_set`) and finds each entry's pattern by
//! walking the map's whole tree (`pattern_find_smp`): a switch costs HAProxy
//! O(N) in a map of N keys, and N switches O(N²) (docs/scale.md measured
//! it). A batch of the switches of one map costs one conversation:
//! - one preflight for all of them: one `show backend`, one `show stat` per
//!   target backend, one `show map` (which also says which keys exist);
//! - then, for a few switches, their `set map`s and read-backs pipelined in
//!   one exchange; for [`WHOLE_MAP_FROM`] or more, a new version of the map
//!   (`prepare map`, the whole map in `add map @V` payloads, `commit map
//!   @V`), which replaces every entry at once in O(N), atomically: new
//!   requests see either the old map or the new one;
//! - one read-back `show map`, and one rewrite of the map file.
//!
//! The whole-map replacement re-adds the entries it read: it holds the map
//! exclusively ([`crate::maplock`]), so that no switch by cutover, in this
//! process or another, falls between its read and its commit.
//!
//! [`RouterProvider::switch_batch`]: cutover_provider::RouterProvider::switch_batch

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use cutover_provider::{Colour, InstanceSwitch, ProviderError, RouterSpec};
use futures_util::future::join_all;

use crate::reply::{self, MapEntry};
use crate::runtime::Session;
use crate::settings::{self, Endpoint, Resolved};

/// How many switches of one map make a batch replace the map's version
/// rather than `set map` each key: the replacement costs HAProxy about as
/// much as a few dozen `set map`s of the same map (measured on 2.6 with
/// 5,000 keys: 14 ms against 0.06–0.37 ms each).
pub(crate) const WHOLE_MAP_FROM: usize = 64;

/// The most bytes of entries in one `add map` payload: the command and its
/// payload must fit HAProxy's buffer (`tune.bufsize`, 16 KiB by default),
/// or HAProxy closes the connection.
const PAYLOAD_BYTES: usize = 4096;

type Switched = Result<Vec<InstanceSwitch>, ProviderError>;

/// One switch of the batch.
struct Item {
    /// Its position in the batch.
    index: usize,
    /// The router's name, for messages.
    router: String,
    config: Resolved,
    colour: String,
    backend: String,
}

/// Switch each router of `switches` (one result each, in order), one
/// conversation per map.
pub(crate) async fn switch_batch(switches: &[(&RouterSpec, &Colour)]) -> Vec<Switched> {
    let mut results: Vec<Option<Switched>> = switches.iter().map(|_| None).collect();
    let mut groups: Vec<Vec<Item>> = Vec::new();
    let mut by_map: HashMap<(Endpoint, PathBuf), usize> = HashMap::new();
    for (index, (spec, target)) in switches.iter().enumerate() {
        match settings::resolve(spec) {
            Err(e) => results[index] = Some(Err(e)),
            Ok(config) => {
                let backend = config.backend_for(&target.name).into_owned();
                let map = (config.endpoint.clone(), config.map.clone());
                let at = *by_map.entry(map).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[at].push(Item {
                    index,
                    router: spec.name().to_string(),
                    config,
                    colour: target.name.clone(),
                    backend,
                });
            }
        }
    }
    for (index, result) in join_all(groups.into_iter().map(switch_map))
        .await
        .into_iter()
        .flatten()
    {
        results[index] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ProviderError::failed("the batch gave no result"))))
        .collect()
}

/// An error met before anything was sent that changes the map: whatever its
/// kind, nothing was switched (a timeout or a broken exchange would
/// otherwise read as "maybe switched", and send every router back).
fn untouched(e: ProviderError) -> ProviderError {
    match e.kind() {
        cutover_provider::ErrorKind::Timeout | cutover_provider::ErrorKind::Failed => {
            ProviderError::refused(format!("{}; nothing was switched", e.message()))
                .with_source(e.describe())
        }
        _ => e,
    }
}

/// The switches of one map: each item's result.
async fn switch_map(items: Vec<Item>) -> Vec<(usize, Switched)> {
    let mut results: Vec<Option<Switched>> = items.iter().map(|_| None).collect();
    if let Err(e) = switch_map_into(&items, &mut results).await {
        // An error that may have moved traffic is each router's; one that
        // moved nothing is said once, on the first, the others held back.
        let maybe_moved = matches!(
            e.kind(),
            cutover_provider::ErrorKind::Failed | cutover_provider::ErrorKind::Timeout
        );
        let mut first = None;
        for (item, result) in items.iter().zip(results.iter_mut()) {
            if result.is_some() {
                continue;
            }
            *result = Some(Err(match &first {
                Some(on) if !maybe_moved => ProviderError::withheld(format!(
                    "nothing was switched: the batch failed (its error is on `{on}`)"
                )),
                _ => {
                    first.get_or_insert(item.router.clone());
                    e.copied()
                }
            }));
        }
    }
    items
        .iter()
        .zip(results)
        .map(|(item, result)| {
            let result =
                result.unwrap_or_else(|| Err(ProviderError::failed("the batch gave no result")));
            (item.index, result)
        })
        .collect()
}

/// Fill `results` (by item); an error returned strikes every item left
/// without a result.
async fn switch_map_into(
    items: &[Item],
    results: &mut [Option<Switched>],
) -> Result<(), ProviderError> {
    let first = &items[0].config;
    let (endpoint, map) = (&first.endpoint, &first.map);
    let timeout = items
        .iter()
        .map(|i| i.config.timeout)
        .max()
        .unwrap_or(first.timeout);
    let whole = items.len() >= WHOLE_MAP_FROM;
    let _held = if whole {
        crate::maplock::exclusive(map, timeout).await?
    } else {
        crate::maplock::shared(map, timeout).await?
    };
    let mut session = Session::open(endpoint, timeout).await.map_err(untouched)?;
    let shown = map.display().to_string();

    // The preflight of every switch, and the map, in one exchange.
    let mut backends: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for item in items {
        if seen.insert(item.backend.as_str()) {
            backends.push(&item.backend);
        }
    }
    let stats: Vec<String> = backends
        .iter()
        .map(|b| format!("show stat {b} 4 -1"))
        .collect();
    let show_map = format!("show map {shown}");
    let mut commands: Vec<&str> = vec!["show backend"];
    commands.extend(stats.iter().map(String::as_str));
    commands.push(&show_map);
    let replies = session.exchange(&commands).await.map_err(untouched)?;
    let checked: HashMap<&str, Result<(), ProviderError>> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let colour = items
                .iter()
                .find(|it| it.backend == *b)
                .map_or("", |it| &it.colour);
            let check = super::check_backend(&replies[0], &stats[i], &replies[1 + i], b, colour);
            (*b, check)
        })
        .collect();
    let entries = super::map_entries(&mut session, map, &replies[replies.len() - 1])
        .await
        .map_err(untouched)?;
    let mut ready = Vec::new();
    let mut refused: Option<&Item> = None;
    for (i, item) in items.iter().enumerate() {
        match &checked[item.backend.as_str()] {
            Ok(()) => ready.push(i),
            // Checked once per backend: the routers sharing it say the same.
            Err(e) => {
                if e.kind() != cutover_provider::ErrorKind::NotReady {
                    refused.get_or_insert(item);
                }
                results[i] = Some(Err(e.copied()));
            }
        }
    }
    // Two routers of one key would overwrite each other: both refused.
    let mut by_key: HashMap<&str, &Item> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(other) = by_key.insert(&item.config.key, item) {
            let e = ProviderError::refused(format!(
                "routers `{}` and `{}` both switch the key `{}` of the map {shown}: each router \
                 needs a key of its own (`key = ...`)",
                other.router, item.router, item.config.key
            ));
            refused.get_or_insert(item);
            for j in [
                i,
                items
                    .iter()
                    .position(|it| std::ptr::eq(it, other))
                    .unwrap_or(i),
            ] {
                results[j] = Some(Err(e.copied()));
            }
        }
    }
    ready.retain(|&i| results[i].is_none());
    // All or nothing: a router refused fails the apply, which would send
    // every router this batch moved back; so none moves.
    if let Some(refused) = refused {
        for &i in &ready {
            results[i] = Some(Err(ProviderError::withheld(format!(
                "nothing was switched: `{}` of the same batch was refused (its error says why)",
                refused.router
            ))));
        }
        ready.clear();
    }
    if ready.is_empty() {
        session.close().await;
        return Ok(());
    }
    // The file must be rewritable before HAProxy changes (as for one switch).
    super::check_map_file(map).await.map_err(untouched)?;

    let confirmed = if whole {
        replace_map(&mut session, items, &ready, &entries, &shown, endpoint, map).await?
    } else {
        set_each(
            &mut session,
            items,
            &ready,
            &entries,
            &shown,
            endpoint,
            map,
            results,
        )
        .await?
    };
    session.close().await;

    // One rewrite of the file for every key HAProxy now holds.
    let keys: Vec<(String, Vec<String>)> = confirmed
        .iter()
        .map(|&i| (items[i].config.key.clone(), vec![items[i].backend.clone()]))
        .collect();
    let written = crate::mapwriter::write_keys(map, keys).await;
    crate::mapreader::file_changed(map);
    for &i in &confirmed {
        let item = &items[i];
        results[i] = Some(match &written {
            Ok(()) => Ok(Vec::new()),
            Err(e) => Err(ProviderError::failed(format!(
                "HAProxy now sends `{key}` to `{backend}`, but writing the map file {shown} failed \
                 (a reload of HAProxy would undo the switch until the file says `{key} {backend}`)",
                key = item.config.key,
                backend = item.backend,
            ))
            .with_source(e.to_string())),
        });
    }
    Ok(())
}

/// A few switches: `set map` (or `add map`) and `get map` for each, in one
/// exchange. Returns the items HAProxy confirmed; the others' results are
/// set.
#[allow(clippy::too_many_arguments)]
async fn set_each(
    session: &mut Session,
    items: &[Item],
    ready: &[usize],
    entries: &[MapEntry],
    shown: &str,
    endpoint: &Endpoint,
    map: &std::path::Path,
    results: &mut [Option<Switched>],
) -> Result<Vec<usize>, ProviderError> {
    let existing: HashSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let mut commands = Vec::with_capacity(ready.len() * 2);
    for &i in ready {
        let (key, backend) = (&items[i].config.key, &items[i].backend);
        let verb = if existing.contains(key.as_str()) {
            "set"
        } else {
            "add"
        };
        commands.push(format!("{verb} map {shown} {key} {backend}"));
        commands.push(format!("get map {shown} {key}"));
    }
    let refs: Vec<&str> = commands.iter().map(String::as_str).collect();
    let replies = session.exchange(&refs).await;
    crate::mapreader::changed(endpoint, map);
    let replies = replies?;
    let mut confirmed = Vec::new();
    for (n, &i) in ready.iter().enumerate() {
        let (set, get) = (&commands[2 * n], &commands[2 * n + 1]);
        let (set_reply, get_reply) = (&replies[2 * n], &replies[2 * n + 1]);
        let (key, backend) = (&items[i].config.key, &items[i].backend);
        if !set_reply.trim().is_empty() {
            results[i] = Some(Err(ProviderError::refused(format!(
                "HAProxy refused `{set}`: {}",
                set_reply.trim_end()
            ))));
        } else if reply::parse_get_map(get_reply) == Some(reply::GetMap::Found(backend.clone())) {
            confirmed.push(i);
        } else {
            results[i] = Some(Err(ProviderError::failed(format!(
                "after `{set}` HAProxy's map does not send `{key}` to `{backend}` (`{get}` says: {})",
                get_reply.trim_end()
            ))));
        }
    }
    Ok(confirmed)
}

/// Many switches: a new version of the whole map, committed at once.
/// Returns the items HAProxy confirmed (all of them, or an error for all).
async fn replace_map(
    session: &mut Session,
    items: &[Item],
    ready: &[usize],
    entries: &[MapEntry],
    shown: &str,
    endpoint: &Endpoint,
    map: &std::path::Path,
) -> Result<Vec<usize>, ProviderError> {
    let nothing_moved = |what: String| {
        ProviderError::refused(format!(
            "{what}; nothing was switched (the new version of the map {shown} was not committed)"
        ))
    };
    let target: HashMap<&str, &str> = ready
        .iter()
        .map(|&i| (items[i].config.key.as_str(), items[i].backend.as_str()))
        .collect();
    let prepare = format!("prepare map {shown}");
    let reply = super::single(session.exchange(&[&prepare]).await?);
    let Some(version) = reply
        .trim()
        .strip_prefix("New version created:")
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
    else {
        return Err(nothing_moved(format!(
            "HAProxy refused `{prepare}`: {}",
            reply.trim_end()
        )));
    };
    // Every entry as HAProxy holds it, in its order, the switched keys'
    // values replaced (all their entries, as `set map` does); keys new to
    // the map at the end.
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| match target.get(e.key.as_str()) {
            Some(backend) => format!("{} {backend}", e.key),
            None => format!("{} {}", e.key, e.value),
        })
        .collect();
    let existing: HashSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let mut added = HashSet::new();
    for &i in ready {
        let key = items[i].config.key.as_str();
        if !existing.contains(key) && added.insert(key) {
            lines.push(format!("{key} {}", target[key]));
        }
    }
    let mut adds = Vec::new();
    let mut chunk = String::new();
    for line in &lines {
        if !chunk.is_empty() && chunk.len() + line.len() + 1 > PAYLOAD_BYTES {
            adds.push(format!("add map @{version} {shown} <<\n{chunk}"));
            chunk.clear();
        }
        chunk.push_str(line);
        chunk.push('\n');
    }
    if !chunk.is_empty() {
        adds.push(format!("add map @{version} {shown} <<\n{chunk}"));
    }
    let clear = format!("clear map @{version} {shown}");
    if !adds.is_empty() {
        // The payload ends at an empty line: the `\n` the exchange adds.
        let refs: Vec<&str> = adds.iter().map(String::as_str).collect();
        let replies = match session.exchange(&refs).await {
            Ok(replies) => replies,
            Err(e) => {
                return Err(nothing_moved(format!(
                    "adding the entries to version {version} failed"
                ))
                .with_source(e.describe()))
            }
        };
        // HAProxy prompts `+ ` for each line of a payload.
        if let Some(refused) = replies
            .iter()
            .map(|r| r.trim_start_matches("+ ").trim())
            .find(|r| !r.is_empty())
        {
            let _ = session.exchange(&[&clear]).await;
            return Err(nothing_moved(format!(
                "HAProxy refused `add map @{version} {shown}`: {refused}"
            )));
        }
    }
    // The map as read, still: an entry changed since (outside cutover)
    // would be undone by the commit.
    let show_map = format!("show map {shown}");
    let again = super::single(session.exchange(&[&show_map]).await?);
    if reply::parse_show_map(&again).as_deref() != Some(entries) {
        let _ = session.exchange(&[&clear]).await;
        return Err(nothing_moved(format!(
            "HAProxy's map {shown} changed while the batch wrote its new version (a change made \
             outside cutover?)"
        )));
    }
    let commit = format!("commit map @{version} {shown}");
    let replies = session.exchange(&[&commit, &show_map]).await;
    crate::mapreader::changed(endpoint, map);
    let replies = replies?;
    if !replies[0].trim().is_empty() {
        let _ = session.exchange(&[&clear]).await;
        return Err(nothing_moved(format!(
            "HAProxy refused `{commit}`: {}",
            replies[0].trim_end()
        )));
    }
    // Read back: the map is what was written, entry by entry.
    let now = reply::parse_show_map(&replies[1]).ok_or_else(|| {
        ProviderError::failed(format!(
            "after `{commit}` HAProxy's reply to `{show_map}` is not a map: {}",
            replies[1].trim_end()
        ))
    })?;
    let now: Vec<String> = now
        .iter()
        .map(|e| format!("{} {}", e.key, e.value))
        .collect();
    if now != lines {
        let at = now.iter().zip(&lines).position(|(a, b)| a != b);
        return Err(ProviderError::failed(format!(
            "after `{commit}` HAProxy's map {shown} is not what was written: {}",
            match at {
                Some(i) => format!("entry {} is `{}`, not `{}`", i + 1, now[i], lines[i]),
                None => format!("{} entries, not {}", now.len(), lines.len()),
            }
        )));
    }
    Ok(ready.to_vec())
}
