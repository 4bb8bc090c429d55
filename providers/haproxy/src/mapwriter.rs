//! Group commit of map-file rewrites.
//!
//! Concurrent switches of routers that share one map file used to each read
//! the file, change their key and write it back: the last writer silently
//! dropped the others' keys from the file (a reload would then undo those
//! cut-overs), and every switch paid a whole-file rewrite and fsync. Here a
//! switch queues its key's values and waits for the file's writer lock; the
//! first waiter to get it writes every queued key in one atomic rewrite, so
//! no update is lost and N switches cost far fewer than N rewrites.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The queue and writer lock of one map file.
#[derive(Default)]
struct MapFile {
    /// Key -> the values HAProxy now holds for it, not yet in the file.
    pending: Mutex<BTreeMap<String, Vec<String>>>,
    /// Held while the file is read, rewritten and synced.
    io: tokio::sync::Mutex<()>,
}

fn map_file(path: &Path) -> Arc<MapFile> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, Arc<MapFile>>>> = OnceLock::new();
    let files = FILES.get_or_init(Default::default);
    let mut files = files
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    files.entry(path.to_path_buf()).or_default().clone()
}

/// Make the file at `path` say `key` -> `values`, together with whatever
/// other keys are queued for the same file. Returns once a rewrite that
/// includes this key has been synced, or with the error of the rewrite that
/// tried to.
pub(crate) async fn write_key(path: &Path, key: &str, values: Vec<String>) -> std::io::Result<()> {
    write_keys(path, vec![(key.to_string(), values)]).await
}

/// [`write_key`] for several keys at once (a batch of switches): one
/// rewrite holds them all.
pub(crate) async fn write_keys(
    path: &Path,
    keys: Vec<(String, Vec<String>)>,
) -> std::io::Result<()> {
    let file = map_file(path);
    let ours: std::collections::BTreeSet<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    file.pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(keys);
    let _io = file.io.lock().await;
    let batch = {
        let mut pending = file
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !ours.iter().any(|k| pending.contains_key(k)) {
            // A rewrite that held the lock before us wrote our keys too (a
            // failed rewrite puts its batch back, so absence means success).
            // Take nothing: what is queued now belongs to switches still
            // waiting, and taking it without writing it would lose it.
            return Ok(());
        }
        std::mem::take(&mut *pending)
    };
    let target = path.to_path_buf();
    let written = batch.clone();
    let result = tokio::task::spawn_blocking(move || {
        let old = std::fs::read_to_string(&target)?;
        let keys: Vec<(&str, &[String])> = written
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let new = crate::mapfile::with_keys_values(&old, &keys);
        if new != old {
            crate::mapfile::write_atomically(&target, &new)?;
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    if result.is_err() {
        // Hand the other keys back to their own switches, which are waiting
        // for the lock and will try (and report) themselves; newer values
        // queued meanwhile win.
        let mut pending = file
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (k, v) in batch {
            if !ours.contains(&k) {
                pending.entry(k).or_insert(v);
            }
        }
    }
    result
}
