//! Shared reads of one map: `show map <map>`, and the map file.
//!
//! Every router read (and every switch's read-back) needs the entries of its
//! map, and a read compares them with the map file. With N routers sharing
//! one map of N keys, one `show map` and one file read per router is O(N²)
//! work for HAProxy and for cutover. Here concurrent callers for the same map
//! share one read, and a caller only ever gets the result of a read that
//! STARTED AFTER it asked: what it sees is never older than its own call,
//! exactly as if it had read for itself (a switch that asks after its
//! `set map` sees its own change).
//!
//! A router *read* (refresh) may also take a read that started at most
//! [`RECENT`] before it, provided this process has changed nothing in that
//! map or file since that read started (every `set`/`add`/`del` and file
//! rewrite here calls [`changed`] / [`file_changed`]): a refresh of N routers
//! then costs a few reads of the map, not N/parallelism. Someone else's change
//! made less than [`RECENT`] before the read may be missed, as one made just
//! after it would be; switches and their read-backs never use this.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cutover_provider::ProviderError;

use crate::reply::MapEntry;
use crate::settings::Endpoint;

/// How old a completed read a router read (refresh) may reuse.
pub(crate) const RECENT: Duration = Duration::from_millis(250);

/// A completed read.
struct Done<T> {
    /// Its number (see `Shared::started`).
    number: u64,
    /// `Shared::generation` when it started.
    generation: u64,
    /// When it started.
    at: Instant,
    value: Arc<T>,
}

/// The last completed read of one thing, and how many reads were started.
struct Shared<T> {
    /// Reads started so far; a read's number is this count when it started.
    started: u64,
    /// Changes this process made to the thing read (see [`changed`]).
    generation: u64,
    /// The newest successful read.
    last: Option<Done<T>>,
}

/// One shared read: callers queue on `io` (fairly); the one whose turn it is
/// reads, unless a read that started after it asked has completed meanwhile.
struct Coalesced<T> {
    shared: Mutex<Shared<T>>,
    io: tokio::sync::Mutex<()>,
}

impl<T> Default for Coalesced<T> {
    fn default() -> Self {
        Coalesced {
            shared: Mutex::new(Shared {
                started: 0,
                generation: 0,
                last: None,
            }),
            io: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T> Coalesced<T> {
    /// What `read` returns when run now, or the result of a read that
    /// started after this call. Failed reads are not shared: each caller then
    /// reads (and reports) for itself.
    async fn get<F, Fut>(&self, read: F) -> Result<Arc<T>, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let asked_at = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .started;
        let _io = self.io.lock().await;
        let (number, generation, at) = {
            let mut shared = self
                .shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(done) = &shared.last {
                if done.number > asked_at {
                    return Ok(done.value.clone());
                }
            }
            shared.started += 1;
            (shared.started, shared.generation, Instant::now())
        };
        let value = Arc::new(read().await?);
        let mut shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if shared.last.as_ref().is_none_or(|d| d.number < number) {
            shared.last = Some(Done {
                number,
                generation,
                at,
                value: value.clone(),
            });
        }
        Ok(value)
    }

    /// [`Coalesced::get`], or a read that started at most [`RECENT`] ago
    /// with nothing changed by this process since.
    async fn get_recent<F, Fut>(&self, read: F) -> Result<Arc<T>, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        {
            let shared = self
                .shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(done) = &shared.last {
                if done.generation == shared.generation && done.at.elapsed() <= RECENT {
                    return Ok(done.value.clone());
                }
            }
        }
        self.get(read).await
    }

    fn changed(&self) {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .generation += 1;
    }
}

/// Shared reads by what they read (runtime API and map, or file path).
type Registry<T> = OnceLock<Mutex<HashMap<String, Arc<Coalesced<T>>>>>;

fn registry<T: Send + Sync + 'static>(
    cell: &'static Registry<T>,
    key: String,
) -> Arc<Coalesced<T>> {
    let mut all = cell
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    all.entry(key).or_default().clone()
}

/// The entries of `map` for a router read (refresh): a read that started at
/// most [`RECENT`] ago with nothing changed here since, or a new `show map`.
/// `read` (which opens a connection) runs only if this caller's turn comes,
/// so waiting callers hold no connection at all.
pub(crate) async fn recent_entries<F, Fut>(
    endpoint: &Endpoint,
    map: &Path,
    read: F,
) -> Result<Arc<MapEntries>, ProviderError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Vec<MapEntry>, ProviderError>>,
{
    map_reads(endpoint, map)
        .get_recent(|| async { read().await.map(MapEntries::new) })
        .await
}

/// The entries of one `show map`, with their values by key: each of the N
/// routers sharing the read looks its key up instead of scanning all N
/// entries (which made a refresh O(N²)).
pub(crate) struct MapEntries {
    by_key: HashMap<String, Vec<String>>,
}

impl MapEntries {
    fn new(entries: Vec<MapEntry>) -> Self {
        let mut by_key: HashMap<String, Vec<String>> = HashMap::with_capacity(entries.len());
        for e in entries {
            by_key.entry(e.key).or_default().push(e.value);
        }
        MapEntries { by_key }
    }

    /// The values HAProxy holds for `key`, in the order `show map` lists them.
    pub fn values(&self, key: &str) -> &[String] {
        self.by_key.get(key).map_or(&[], Vec::as_slice)
    }
}

/// This process changed `map` in HAProxy (call after the change is made).
pub(crate) fn changed(endpoint: &Endpoint, map: &Path) {
    map_reads(endpoint, map).changed();
}

fn map_reads(endpoint: &Endpoint, map: &Path) -> Arc<Coalesced<MapEntries>> {
    static READS: Registry<MapEntries> = OnceLock::new();
    let key = match endpoint {
        Endpoint::Unix(p) => format!("unix:{}\n{}", p.display(), map.display()),
        Endpoint::Tcp(a) => format!("tcp:{a}\n{}", map.display()),
    };
    registry(&READS, key)
}

/// The map file at `path`, read after this call began, as its values by key
/// (`mapfile::index`): the one thing a router read needs of it.
pub(crate) struct MapFile {
    by_key: HashMap<String, Vec<String>>,
}

impl MapFile {
    /// The values the file holds for `key`, in file order.
    pub fn values(&self, key: &str) -> &[String] {
        self.by_key.get(key).map_or(&[], Vec::as_slice)
    }
}

/// The map file for a router read (refresh): as [`recent_entries`].
pub(crate) async fn recent_file(path: &Path) -> Result<Arc<MapFile>, ProviderError> {
    file_reads(path).get_recent(|| read_file(path)).await
}

/// This process rewrote (or tried to rewrite) the map file.
pub(crate) fn file_changed(path: &Path) {
    file_reads(path).changed();
}

async fn read_file(path: &Path) -> Result<MapFile, ProviderError> {
    let text = crate::read_map_text(path).await?;
    Ok(MapFile {
        by_key: crate::mapfile::index(&text),
    })
}

fn file_reads(path: &Path) -> Arc<Coalesced<MapFile>> {
    static READS: Registry<MapFile> = OnceLock::new();
    registry(&READS, path.display().to_string())
}
