//! Shared reads of one map (`show map <map>`).
//!
//! Every router read (and every switch's read-back) needs the entries of its
//! map. With N routers sharing one map of N keys, one `show map` per router is
//! O(N²) work for HAProxy and for cutover. Here concurrent callers of
//! [`entries`] for the same runtime API and map share one `show map`, and a
//! caller only ever gets the result of a `show map` that STARTED AFTER it
//! asked: what it reads is never older than its own call, exactly as if it
//! had sent the command itself (a switch that asks after its `set map` sees
//! its own change).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cutover_provider::ProviderError;

use crate::reply::MapEntry;
use crate::runtime::Session;
use crate::settings::Endpoint;

/// The last completed read of one map, and how many reads were started.
#[derive(Default)]
struct Shared {
    /// Reads started so far; a read's number is this count when it started.
    started: u64,
    /// The newest successful read: its number and the entries.
    last: Option<(u64, Arc<Vec<MapEntry>>)>,
}

#[derive(Default)]
struct MapReads {
    shared: Mutex<Shared>,
    /// Held while one read is on the wire: callers queue here (fairly).
    io: tokio::sync::Mutex<()>,
}

fn reads_of(endpoint: &Endpoint, map: &Path) -> Arc<MapReads> {
    type Registry = Mutex<HashMap<(String, PathBuf), Arc<MapReads>>>;
    static READS: OnceLock<Registry> = OnceLock::new();
    let key = (
        match endpoint {
            Endpoint::Unix(p) => format!("unix:{}", p.display()),
            Endpoint::Tcp(a) => format!("tcp:{a}"),
        },
        map.to_path_buf(),
    );
    let mut reads = READS
        .get_or_init(Default::default)
        .lock()
        .expect("map-read registry is never poisoned");
    reads.entry(key).or_default().clone()
}

/// The entries of `map` as HAProxy holds them at some moment after this call
/// began. The caller whose turn it is sends `show map` on its own `session`
/// (so waiting callers never need a connection more than they hold: HAProxy's
/// stats socket accepts only a few at once). Failed reads are not shared:
/// each caller then reads (and reports) for itself.
pub(crate) async fn entries(
    session: &mut Session,
    endpoint: &Endpoint,
    map: &Path,
) -> Result<Arc<Vec<MapEntry>>, ProviderError> {
    let reads = reads_of(endpoint, map);
    let asked_at = reads.shared.lock().expect("never poisoned").started;
    let _io = reads.io.lock().await;
    let number = {
        let mut shared = reads.shared.lock().expect("never poisoned");
        if let Some((n, entries)) = &shared.last {
            if *n > asked_at {
                // A read that started after we asked has completed.
                return Ok(entries.clone());
            }
        }
        shared.started += 1;
        shared.started
    };
    let entries = Arc::new(crate::show_map(session, map).await?);
    let mut shared = reads.shared.lock().expect("never poisoned");
    if shared.last.as_ref().is_none_or(|(n, _)| *n < number) {
        shared.last = Some((number, entries.clone()));
    }
    Ok(entries)
}
