//! The state in PostgreSQL (`backend "pg" {}`): docs/backends.md.
//!
//! A team's runners share one state: a row of `cutover_states` keyed by
//! the state's name (several states per database, as Terraform's
//! workspaces), holding the same deterministic JSON as the local file
//! (readable with psql), and the running apply's journal beside it. The
//! tables are described in pg/sql.rs.
//!
//! - **The lock** is a session advisory lock, held on a session of its own
//!   for as long as the run holds the lock (pg/session.rs): a holder killed
//!   with SIGKILL, or cut off by the network until the keepalives give up,
//!   frees it by itself, as the server ends its session. So a lock is never
//!   stale: there is nothing to force-unlock after a crash. Its holder's
//!   details (host, pid, user, command, since) are in `cutover_locks`, so
//!   a run that finds it held names the holder (pg/locking.rs).
//! - **Every write is a compare-and-swap** in one statement: the state on
//!   its lineage and serial, and every write (state, journal, its removal)
//!   on the lock still being ours — our holder row and the advisory lock
//!   granted to our lock session. A run whose lock session died writes
//!   nothing, even when another run holds the lock by now.
//! - **The pause** of an apply waiting for approval is a row of
//!   `cutover_approvals`, changed by an approver with a compare-and-swap
//!   on its version that also requires the pause's lock to hold the state
//!   (pg/approvals.rs).
//! - **The client runs on a thread of its own** (pg/worker.rs): the
//!   [`Backend`] trait is synchronous and is called from inside tokio
//!   runtimes and from plain threads alike.
//! - **Connections**: the string from `conn_str` or `CUTOVER_PG_CONN_STR`,
//!   never shown (messages name `host:port/dbname`); opened on first use;
//!   bounded in time (connect, statements, TCP keepalives on both sides),
//!   so a server that stops mid-apply is an error within seconds
//!   (pg/conn.rs). TLS by `sslmode` (`disable`, `prefer`, `require`;
//!   `verify-ca` and `verify-full` are read as `require`) with rustls:
//!   whenever TLS is used the server's certificate is verified, with its
//!   host name, against the operating system's CAs and `ca_file` — stricter
//!   than libpq's `prefer` and `require`, which accept any certificate.

mod approvals;
mod conn;
mod locking;
mod session;
mod sql;
mod worker;

use std::any::Any;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_postgres::types::ToSql;

pub use conn::CONN_STR_ENV;

use self::conn::cause;
use self::locking::{Attempt, Forced};
use self::session::{Db, Session};
use self::sql::{LockKey, Sql};
use self::worker::Worker;
use super::approval::{ApproveError, Approved, Pause};
use super::backend::{check_expected, Backend, Held, Lock, Stamp};
use super::lock::{LockError, LockInfo};
use super::model::State;
use super::{from_bytes, to_bytes, StateError};
use crate::config::model::PgSettings;

/// The longest one call may wait for PostgreSQL (a connection and a few
/// statements, each bounded on its own).
const REQUEST_LIMIT: Duration = Duration::from_secs(45);
/// How often a run waiting for the lock tries again.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long a lock held by a session that names no holder is waited for
/// after the timeout (a run that took it a moment ago writes its row next).
const UNNAMED_GRACE: Duration = Duration::from_secs(2);

/// The backend `settings` name. Nothing is connected yet: the connection
/// string is read now, and a missing or unusable one is reported by the
/// first command that reads or locks the state (so `validate` needs no
/// credentials).
pub fn open(settings: &PgSettings, dir: &Path) -> anyhow::Result<Box<dyn Backend>> {
    let config = conn::conn_str(settings).and_then(|s| conn::parse(&s));
    let mut describe = format!("PostgreSQL state \"{}\"", settings.name);
    let place = config.as_ref().ok().map(conn::location);
    let schema = (settings.schema != "public").then(|| format!("schema {}", settings.schema));
    let details: Vec<String> = place.into_iter().chain(schema).collect();
    if !details.is_empty() {
        describe.push_str(&format!(" ({})", details.join(", ")));
    }
    let sql = Sql::new(
        &settings.schema,
        LockKey::of(&settings.schema, &settings.name),
    );
    let journal_name = format!("{}.{}.journal of {describe}", settings.schema, sql::STATES);
    let ca_file = settings.ca_file.as_ref().map(|p| dir.join(p));
    let db = Db::new(config, ca_file, sql, settings.name.clone());
    let worker = Worker::start().context("cannot start the PostgreSQL client's thread")?;
    Ok(Box::new(PgState {
        inner: Arc::new(Inner {
            describe,
            journal_name,
            db: Arc::new(db),
            size: AtomicU64::new(0),
            holding: Mutex::new(None),
            worker,
        }),
    }))
}

/// A state in PostgreSQL.
struct PgState {
    inner: Arc<Inner>,
}

struct Inner {
    describe: String,
    journal_name: String,
    db: Arc<Db>,
    /// The byte length of the stored state, as last read or written.
    size: AtomicU64,
    /// The lock this process holds, if any: a session advisory lock is
    /// re-entrant, so the process itself must refuse a second one.
    holding: Mutex<Option<LockInfo>>,
    worker: Worker,
}

impl Inner {
    /// Run `job` with the database on the client's thread.
    fn run<T, F, Fut>(&self, job: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Db>) -> Fut,
        Fut: Future<Output = Result<T, String>> + Send + 'static,
    {
        self.worker.run(REQUEST_LIMIT, job(self.db.clone()))
    }

    fn holding(&self) -> std::sync::MutexGuard<'_, Option<LockInfo>> {
        self.holding.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state_error(&self, what: &str, message: String) -> StateError {
        // A server that cannot be reached is that, whatever was asked of it.
        let message = if message.starts_with("cannot connect") {
            message
        } else {
            format!("{what}: {message}")
        };
        StateError::Backend {
            state: self.describe.clone(),
            message,
        }
    }

    fn lock_error(&self, message: String) -> LockError {
        LockError::Backend {
            state: self.describe.clone(),
            message,
        }
    }
}

/// What the database holds after a write that changed no row.
struct Refusal {
    /// Whether our lock still holds the state.
    held: bool,
    /// Whether there is a state row.
    row: bool,
    /// The state stored.
    state: Option<String>,
}

async fn refusal(db: &Db, client: &tokio_postgres::Client, id: &str) -> Result<Refusal, String> {
    let row = client
        .query_one(&db.sql.after_refusal(), &[&db.name, &id])
        .await
        .map_err(|e| cause(&e))?;
    Ok(Refusal {
        held: row.get(0),
        row: row.get(1),
        state: row.get(3),
    })
}

/// Run `statement` on the data session with the state's name as `$1` and
/// `params` after it, a write conditioned on the lock `id`: `None` when it
/// changed a row, else what is there instead.
async fn guarded(
    db: &Db,
    statement: &str,
    id: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Refusal>, String> {
    let client = db.data().await?;
    let mut all: Vec<&(dyn ToSql + Sync)> = vec![&db.name];
    all.extend_from_slice(params);
    let changed = client
        .execute(statement, &all)
        .await
        .map_err(|e| cause(&e))?;
    if changed > 0 {
        return Ok(None);
    }
    refusal(db, &client, id).await.map(Some)
}

/// The lock of this backend, as [`Lock`] holds it.
struct PgHeld {
    inner: Arc<Inner>,
    session: Session,
    id: String,
    released: bool,
}

impl Held for PgHeld {
    fn release(&mut self) -> Result<(), LockError> {
        if std::mem::replace(&mut self.released, true) {
            return Ok(());
        }
        {
            let mut holding = self.inner.holding();
            if holding.as_ref().is_some_and(|h| h.id == self.id) {
                *holding = None;
            }
        }
        let (session, id) = (self.session.clone(), self.id.clone());
        self.inner
            .run(|db| async move { locking::release(&db, &session, &id).await })
            .map_err(|m| {
                self.inner
                    .lock_error(format!("cannot release the lock: {m}"))
            })
    }

    fn lost(&self) -> Option<String> {
        self.session
            .ended()
            .map(|why| format!("its PostgreSQL session ended: {why}"))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl PgState {
    /// The id of `lock`, which must be this backend's.
    fn lock_id(&self, lock: &Lock) -> String {
        assert!(
            lock.guards(self),
            "a change of {} needs its lock",
            self.inner.describe
        );
        let held = lock.held().as_any().downcast_ref::<PgHeld>();
        held.expect("the lock of a PostgreSQL state is a PgHeld")
            .id
            .clone()
    }

    /// The write was refused because `lock` no longer holds the state.
    fn lost(&self, lock: &Lock) -> StateError {
        let why = lock
            .lost()
            .unwrap_or_else(|| "it was force-unlocked, or its PostgreSQL session ended".into());
        self.inner.state_error(
            "the lock was lost",
            format!("{why}; nothing was written, since another run may hold the lock now"),
        )
    }

    fn parse(&self, text: &str) -> Result<State, StateError> {
        from_bytes(Path::new(&self.inner.describe), text.as_bytes())
    }

    /// A compare-and-swap that changed nothing: why.
    fn refused_write(
        &self,
        lock: &Lock,
        found: Refusal,
        expected: Option<&Stamp>,
        state: &State,
    ) -> Result<(), StateError> {
        if !found.held {
            return Err(self.lost(lock));
        }
        let stored = found.state.as_deref().map(|t| self.parse(t)).transpose()?;
        if stored.as_ref() == Some(state) {
            // Written already (a write repeated after a crash).
            return Ok(());
        }
        if stored.as_ref().map(Stamp::of).as_ref() != expected {
            return check_expected(&self.inner.describe, expected, stored.as_ref(), state);
        }
        Err(self.inner.state_error(
            "cannot write the state",
            "the write changed nothing although the state is as expected; try again".into(),
        ))
    }

    /// One attempt at the lock, or the holder this process is itself.
    fn attempt(&self, info: &LockInfo) -> Result<Attempt, LockError> {
        if let Some(ours) = self.inner.holding().clone() {
            return Ok(Attempt::Busy {
                pid: 0,
                holder: Some(ours),
            });
        }
        let info = info.clone();
        self.inner
            .run(|db| async move { locking::try_lock(&db, &info).await })
            .map_err(|m| self.inner.lock_error(format!("cannot take the lock: {m}")))
    }
}

impl Backend for PgState {
    fn kind(&self) -> &'static str {
        "pg"
    }

    fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    fn journal_name(&self) -> String {
        self.inner.journal_name.clone()
    }

    fn read_state(&self) -> Result<Option<State>, StateError> {
        let text = self
            .inner
            .run(|db| async move {
                let client = db.data().await?;
                let row = client
                    .query_opt(&db.sql.read_state(), &[&db.name])
                    .await
                    .map_err(|e| cause(&e))?;
                Ok(row.map(|r| r.get::<_, String>(0)))
            })
            .map_err(|m| self.inner.state_error("cannot read the state", m))?;
        let size = text.as_ref().map_or(0, |t| t.len() as u64);
        self.inner.size.store(size, Ordering::Relaxed);
        text.map(|t| self.parse(&t)).transpose()
    }

    fn read_journal(&self) -> Result<Option<String>, StateError> {
        self.inner
            .run(|db| async move {
                let client = db.data().await?;
                let row = client
                    .query_opt(&db.sql.read_journal(), &[&db.name])
                    .await
                    .map_err(|e| cause(&e))?;
                Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
            })
            .map_err(|m| self.inner.state_error("cannot read the journal", m))
    }

    fn write_state(
        &self,
        lock: &Lock,
        expected: Option<&Stamp>,
        state: &State,
    ) -> Result<(), StateError> {
        let id = self.lock_id(lock);
        let text = String::from_utf8(to_bytes(state)).expect("JSON is UTF-8");
        let size = text.len() as u64;
        let base = match expected {
            Some(stamp) => Some((
                stamp.lineage.clone(),
                i64::try_from(stamp.serial).map_err(|_| {
                    self.inner
                        .state_error("cannot write the state", "its serial is too large".into())
                })?,
            )),
            None => None,
        };
        let refused = self
            .inner
            .run(|db| async move {
                match &base {
                    Some((lineage, serial)) => {
                        let params: [&(dyn ToSql + Sync); 4] = [&text, lineage, serial, &id];
                        guarded(&db, &db.sql.update_state(), &id, &params).await
                    }
                    None => guarded(&db, &db.sql.insert_state(), &id, &[&text, &id]).await,
                }
            })
            .map_err(|m| self.inner.state_error("cannot write the state", m))?;
        match refused {
            None => {
                self.inner.size.store(size, Ordering::Relaxed);
                Ok(())
            }
            Some(found) => self.refused_write(lock, found, expected, state),
        }
    }

    fn stored_size(&self) -> u64 {
        self.inner.size.load(Ordering::Relaxed)
    }

    fn append_journal(&self, lock: &Lock, bytes: &[u8], fresh: bool) -> Result<(), StateError> {
        let id = self.lock_id(lock);
        let what = "cannot write the journal";
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| self.inner.state_error(what, "it is not UTF-8".into()))?;
        let refused = self
            .inner
            .run(|db| async move {
                let statement = if fresh {
                    db.sql.start_journal()
                } else {
                    db.sql.append_journal()
                };
                guarded(&db, &statement, &id, &[&text, &id]).await
            })
            .map_err(|m| self.inner.state_error(what, m))?;
        match refused {
            None => Ok(()),
            Some(found) if !found.held => Err(self.lost(lock)),
            Some(found) if !found.row => Err(self
                .inner
                .state_error(what, "there is no state to journal onto".into())),
            Some(_) => Err(self.inner.state_error(
                what,
                "the journal is no longer this run's (another run replaced or removed it); \
                 nothing was appended"
                    .into(),
            )),
        }
    }

    fn discard_journal(&self, lock: &Lock) -> Result<(), StateError> {
        let id = self.lock_id(lock);
        let refused = self
            .inner
            .run(|db| async move { guarded(&db, &db.sql.discard_journal(), &id, &[&id]).await })
            .map_err(|m| self.inner.state_error("cannot remove the journal", m))?;
        match refused {
            Some(found) if !found.held => Err(self.lost(lock)),
            // No state row: no journal either.
            _ => Ok(()),
        }
    }

    fn check_writable(&self, lock: &Lock) -> Result<(), String> {
        let id = self.lock_id(lock);
        if let Some(why) = lock.lost() {
            return Err(format!("the lock was lost: {why}"));
        }
        let (held, may_write) = self.inner.run(|db| async move {
            let client = db.data().await?;
            let row = client
                .query_one(&db.sql.check_writable(), &[&db.name, &id])
                .await
                .map_err(|e| cause(&e))?;
            Ok((row.get::<_, bool>(0), row.get::<_, bool>(1)))
        })?;
        if !held {
            return Err("the lock was lost: this run no longer holds it".into());
        }
        if !may_write {
            return Err(format!(
                "this PostgreSQL user may not write {}",
                self.inner.db.sql.states
            ));
        }
        Ok(())
    }

    /// A round trip: the data session answers and this run's advisory lock
    /// is still granted to its lock session.
    fn confirm(&self, lock: &Lock) -> Result<(), StateError> {
        super::backend::confirm_by_round_trip(self, lock)
    }

    fn lock(
        &self,
        operation: &str,
        timeout: Duration,
        waiting: &mut dyn FnMut(&LockInfo),
    ) -> Result<Lock, LockError> {
        let info = LockInfo::ours(operation);
        let deadline = Instant::now() + timeout;
        let mut told = false;
        let mut frees = 0;
        loop {
            let (pid, holder) = match self.attempt(&info)? {
                Attempt::Taken(session) => {
                    *self.inner.holding() = Some(info.clone());
                    let held = PgHeld {
                        inner: self.inner.clone(),
                        session,
                        id: info.id.clone(),
                        released: false,
                    };
                    return Ok(Lock::new(self, info, Box::new(held)));
                }
                // Released just now: at once again, a few times.
                Attempt::Free if frees < 3 => {
                    frees += 1;
                    continue;
                }
                Attempt::Free => (0, None),
                Attempt::Busy { pid, holder } => (pid, holder),
            };
            let now = Instant::now();
            match &holder {
                Some(holder) if now >= deadline => {
                    return Err(LockError::Held {
                        state: self.inner.describe.clone(),
                        holder: Box::new(holder.clone()),
                        stale: false,
                    })
                }
                Some(holder) if !told => {
                    waiting(holder);
                    told = true;
                }
                None if now >= deadline + UNNAMED_GRACE => {
                    return Err(self.inner.lock_error(format!(
                        "the lock is held by PostgreSQL session {pid}, which says nothing of \
                         who holds it (not a cutover run?); pg_stat_activity tells who it is"
                    )))
                }
                _ => {}
            }
            let pause = if now >= deadline {
                Duration::from_millis(50)
            } else {
                POLL_INTERVAL.min(deadline - now)
            };
            std::thread::sleep(pause);
        }
    }

    /// A row of `cutover_approvals` (pg/approvals.rs).
    fn publish_pause(&self, lock: &Lock, pause: &Pause) -> Result<(), StateError> {
        self.publish(lock, pause)
    }

    fn read_pause(&self) -> Result<Option<Pause>, StateError> {
        self.pause()
    }

    fn approve(&self, routers: &[String], by: &str) -> Result<Approved, ApproveError> {
        self.approve_pause(routers, by)
    }

    fn clear_pause(&self, lock: &Lock) -> Result<(), StateError> {
        self.clear(lock)
    }

    fn read_lock(&self) -> Result<Option<LockInfo>, LockError> {
        self.inner
            .run(|db| async move { locking::read_holder(&db).await })
            .map_err(|m| self.inner.lock_error(format!("cannot read the lock: {m}")))
    }

    fn force_unlock(&self, id: &str) -> Result<LockInfo, LockError> {
        let given = id.to_owned();
        let forced = self
            .inner
            .run(|db| async move { locking::force_unlock(&db, &given).await })
            .map_err(|m| self.inner.lock_error(format!("cannot force-unlock: {m}")))?;
        let state = self.inner.describe.clone();
        match forced {
            Forced::Removed(holder) => Ok(holder),
            Forced::NotLocked => Err(LockError::NotLocked { state }),
            Forced::Mismatch(actual) => Err(LockError::IdMismatch {
                state,
                given: id.to_owned(),
                actual: Box::new(actual),
            }),
            Forced::NoHolder(pid) => Err(self.inner.lock_error(format!(
                "the lock is held by PostgreSQL session {pid}, which is not a cutover run that \
                 says who it is; nothing was removed"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::backend::lock_now;

    fn settings(conn_str: &str, schema: &str) -> PgSettings {
        PgSettings {
            conn_str: Some(conn_str.to_owned()),
            name: "default".into(),
            schema: schema.into(),
            ca_file: None,
            span: crate::config::model::Span {
                file: "main.hcl".into(),
                line: 1,
                column: 1,
                start: 0,
                end: 0,
            },
        }
    }

    #[test]
    fn the_state_is_named_by_its_place_never_by_its_connection_string() {
        let url = "postgres://alice:s3cret@db.example:6543/app?sslmode=require";
        let backend = open(&settings(url, "public"), Path::new(".")).unwrap();
        assert_eq!(backend.kind(), "pg");
        assert_eq!(
            backend.describe(),
            "PostgreSQL state \"default\" (db.example:6543/app)"
        );
        assert_eq!(
            backend.journal_name(),
            "public.cutover_states.journal of PostgreSQL state \"default\" (db.example:6543/app)"
        );
        let backend = open(&settings(url, "ops"), Path::new(".")).unwrap();
        assert_eq!(
            backend.describe(),
            "PostgreSQL state \"default\" (db.example:6543/app, schema ops)"
        );
    }

    #[test]
    fn an_unusable_connection_string_is_reported_at_first_use_without_its_password() {
        let bad = "host=db user=alice password=s3cret sslmode=sometimes";
        // Opening connects to nothing: `validate` works without a database.
        let backend = open(&settings(bad, "public"), Path::new(".")).unwrap();
        assert_eq!(backend.describe(), "PostgreSQL state \"default\"");
        let read = backend.read_state().unwrap_err().to_string();
        assert_eq!(
            read,
            "PostgreSQL state \"default\": cannot read the state: the connection string \
             cannot be used: invalid value for option `sslmode`"
        );
        let locked = lock_now(backend.as_ref(), "apply").unwrap_err().to_string();
        assert!(locked.contains("cannot take the lock"), "{locked}");
        for message in [read, locked, backend.read_lock().unwrap_err().to_string()] {
            assert!(!message.contains("s3cret"), "{message}");
        }
    }
}
