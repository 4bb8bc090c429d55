//! Who may change a map's entries in HAProxy at the same time.
//!
//! A batch that replaces the whole map (`prepare map`, `add map @V`,
//! `commit map @V`, in [`crate::batch`]) re-adds every entry as it read it:
//! a `set map` of another key made meanwhile, by this process or another
//! cutover sharing the map, would be undone by the commit. So such a batch
//! holds the map *exclusively*, and every other change of its entries
//! (a switch, a preview) holds it *shared*:
//! - within the process, a read-write lock per map file;
//! - between processes, `flock(2)` on a lock file of the map's own beside
//!   it, `.<map file name>.cutover-lock` (the map file itself is replaced by
//!   each rewrite, so a lock on it would not hold; a lock on the directory
//!   would make two maps of one directory wait for each other). cutover
//!   creates that file the first time and leaves it: it holds nothing.
//!
//! Changes made outside cutover (an operator's `set map` by hand during a
//! batch) are not covered; docs/haproxy.md says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cutover_provider::ProviderError;

/// A hold on a map, released when dropped.
pub(crate) struct Held {
    _local: Local,
    _file: std::fs::File,
}

enum Local {
    Shared(#[allow(dead_code)] tokio::sync::OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] tokio::sync::OwnedRwLockWriteGuard<()>),
}

fn local(map: &Path) -> Arc<tokio::sync::RwLock<()>> {
    static MAPS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::RwLock<()>>>>> = OnceLock::new();
    let maps = MAPS.get_or_init(Default::default);
    let mut maps = maps
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    maps.entry(map.to_path_buf()).or_default().clone()
}

/// Hold `map` shared (a change of some of its keys), within `timeout`.
pub(crate) async fn shared(map: &Path, timeout: Duration) -> Result<Held, ProviderError> {
    hold(map, timeout, false).await
}

/// Hold `map` exclusively (a replacement of all its entries), within `timeout`.
pub(crate) async fn exclusive(map: &Path, timeout: Duration) -> Result<Held, ProviderError> {
    hold(map, timeout, true).await
}

async fn hold(map: &Path, timeout: Duration, exclusive: bool) -> Result<Held, ProviderError> {
    // Nothing was changed while waiting: refused, not a timeout (which
    // would say the switch may have been made).
    let waited = || {
        ProviderError::refused(format!(
            "another switch of the map {} (by this cutover or another) did not end within {:?}, \
             so nothing was switched",
            map.display(),
            timeout
        ))
    };
    let lock = local(map);
    let local = tokio::time::timeout(timeout, async {
        if exclusive {
            Local::Exclusive(lock.write_owned().await)
        } else {
            Local::Shared(lock.read_owned().await)
        }
    })
    .await
    .map_err(|_| waited())?;
    let path = lock_path(map);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            ProviderError::refused(format!(
                "cannot open the lock file {} (cutover locks it while it changes the map), so \
                 nothing was switched",
                path.display()
            ))
            .with_source(e)
        })?;
    // flock(2) without blocking a thread: tried again, with a growing
    // pause, until the timeout.
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let tried = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match tried {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                if tokio::time::Instant::now() + pause > deadline {
                    return Err(waited());
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(ProviderError::refused(format!(
                    "cannot lock {} (cutover locks it while it changes the map), so nothing was \
                     switched",
                    path.display()
                ))
                .with_source(e))
            }
        }
    }
    Ok(Held {
        _local: local,
        _file: file,
    })
}

/// The lock file of `map`: `.<name>.cutover-lock` beside it.
pub(crate) fn lock_path(map: &Path) -> PathBuf {
    let name = map
        .file_name()
        .map_or_else(|| "map".into(), |n| n.to_string_lossy().into_owned());
    map.with_file_name(format!(".{name}.cutover-lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exclusive hold waits for a shared one, in this process and in
    /// another (here: another open file description, as another process
    /// would have).
    #[tokio::test]
    async fn an_exclusive_hold_waits_for_a_shared_one() {
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("live.map");
        std::fs::write(&map, "").unwrap();
        let short = Duration::from_millis(50);
        let a = shared(&map, short).await.unwrap();
        let b = shared(&map, short).await.unwrap();
        let e = exclusive(&map, short)
            .await
            .err()
            .expect("waits for the shared holds");
        assert_eq!(e.kind(), cutover_provider::ErrorKind::Refused, "{e}");
        assert!(e.message().contains("nothing was switched"), "{e}");
        drop((a, b));
        let held = exclusive(&map, short).await.unwrap();
        // Another open file description of the lock file (another
        // process's) cannot lock it meanwhile; another map of the same
        // directory is not held.
        let other = std::fs::File::open(lock_path(&map)).unwrap();
        let neighbour = dir.path().join("other.map");
        std::fs::write(&neighbour, "").unwrap();
        drop(
            exclusive(&neighbour, short)
                .await
                .expect("another map is free"),
        );
        assert!(matches!(
            other.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().expect("free once the hold is dropped");
    }
}
