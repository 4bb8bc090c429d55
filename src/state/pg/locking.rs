//! The lock, on the database side: a session advisory lock taken on the
//! lock session, and a row naming its holder.
//!
//! `pg_try_advisory_lock` decides who holds the lock; the row only says
//! who that is, and is believed only while `pg_locks` shows the session it
//! names holding the lock. So a holder that died leaves at most a row that
//! nobody believes, and the next run that takes the lock overwrites it.
//! The row is written by the session that holds the lock, so its
//! `backend_pid` is that session's.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Json;
use tokio_postgres::Client;

use super::conn::cause;
use super::session::{Db, Session};
use crate::state::lock::LockInfo;

/// How long `force-unlock` waits for the holder's session to end.
const TERMINATE_WAIT: Duration = Duration::from_secs(5);

/// One attempt to take the lock.
pub(super) enum Attempt {
    /// Ours, held by this session.
    Taken(Session),
    /// Another session holds it: its backend pid, and its holder row if it
    /// has written one yet.
    Busy { pid: i32, holder: Option<LockInfo> },
    /// Nobody holds it any more (released between the attempt and the
    /// look at who held it): try again.
    Free,
}

/// Try to take the lock for `info`, without waiting.
pub(super) async fn try_lock(db: &Db, info: &LockInfo) -> Result<Attempt, String> {
    let session = db.lock_session().await?;
    let client = &session.client;
    let taken: bool = client
        .query_one(&db.sql.try_lock(), &[])
        .await
        .map_err(|e| format!("cannot take the advisory lock: {}", cause(&e)))?
        .get(0);
    if !taken {
        return Ok(match holder(db, client).await? {
            Some((pid, holder)) => Attempt::Busy { pid, holder },
            None => Attempt::Free,
        });
    }
    let recorded = client
        .execute(&db.sql.record_holder(), &[&db.name, &info.id, &Json(info)])
        .await;
    if let Err(e) = recorded {
        // Nobody could tell who holds it: give it back.
        let _ = client.query_one(&db.sql.unlock(), &[]).await;
        return Err(format!("cannot record the lock's holder: {}", cause(&e)));
    }
    Ok(Attempt::Taken(session))
}

/// Who holds the lock: `None` when nobody does; else the session's pid
/// and the holder it recorded (`None`: none yet).
pub(super) async fn holder(
    db: &Db,
    client: &Client,
) -> Result<Option<(i32, Option<LockInfo>)>, String> {
    let rows = client
        .query(&db.sql.holder(), &[&db.name])
        .await
        .map_err(|e| format!("cannot read who holds the lock: {}", cause(&e)))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let pid: i32 = row.get(0);
    let holder = row
        .get::<_, Option<serde_json::Value>>(1)
        .map(|value| {
            serde_json::from_value::<LockInfo>(value).map_err(|e| {
                format!(
                    "the holder row of the lock in {} cannot be read ({e})",
                    db.sql.locks
                )
            })
        })
        .transpose()?;
    Ok(Some((pid, holder)))
}

/// Who holds the lock, as [`holder`], on the data session.
pub(super) async fn read_holder(db: &Db) -> Result<Option<LockInfo>, String> {
    let client = db.data().await?;
    Ok(holder(db, &client).await?.and_then(|(_, h)| h))
}

/// Release the lock `id` held by `session`: its row, then the advisory
/// lock. A session that has ended holds nothing any more.
pub(super) async fn release(db: &Db, session: &Session, id: &str) -> Result<(), String> {
    if session.ended().is_some() {
        return Ok(());
    }
    let client = &session.client;
    client
        .execute(&db.sql.forget_holder(), &[&db.name, &id])
        .await
        .map_err(|e| cause(&e))?;
    client
        .query_one(&db.sql.unlock(), &[])
        .await
        .map_err(|e| cause(&e))?;
    Ok(())
}

/// What `force-unlock` found.
pub(super) enum Forced {
    /// The holder's session was ended and its row removed.
    Removed(LockInfo),
    /// Nobody holds the lock (a leftover row was removed).
    NotLocked,
    /// Another lock than the one named holds it.
    Mismatch(LockInfo),
    /// A session holds it without saying who it is.
    NoHolder(i32),
}

/// End the session holding the lock if its id is `id`.
pub(super) async fn force_unlock(db: &Db, id: &str) -> Result<Forced, String> {
    let client = db.data().await?;
    let (pid, found) = match holder(db, &client).await? {
        None => {
            client
                .execute(&db.sql.forget_leftover(), &[&db.name])
                .await
                .map_err(|e| format!("cannot remove the leftover holder row: {}", cause(&e)))?;
            return Ok(Forced::NotLocked);
        }
        Some((pid, None)) => return Ok(Forced::NoHolder(pid)),
        Some((_, Some(other))) if other.id != id => return Ok(Forced::Mismatch(other)),
        Some((pid, Some(found))) => (pid, found),
    };
    client
        .query_one("SELECT pg_catalog.pg_terminate_backend($1)", &[&pid])
        .await
        .map_err(|e| {
            let advice = if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                "; run force-unlock as the holder's database user, a superuser, or a member \
                 of pg_signal_backend"
            } else {
                ""
            };
            format!(
                "PostgreSQL refused to end the holder's session (backend pid {pid}): {}{advice}",
                cause(&e)
            )
        })?;
    let deadline = Instant::now() + TERMINATE_WAIT;
    while let Some((still, _)) = holder(db, &client).await? {
        if still != pid {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the holder's session (backend pid {pid}) did not end within {}s",
                TERMINATE_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .execute(&db.sql.forget_holder(), &[&db.name, &id])
        .await
        .map_err(|e| format!("cannot remove the holder row: {}", cause(&e)))?;
    Ok(Forced::Removed(found))
}
