//! The two sessions of a backend: one for the state and its journal, one
//! that only holds the advisory lock. They run on the client's thread
//! (worker.rs); both are opened on first use, so a command that never
//! touches the state (`validate`) never connects.
//!
//! The lock lives exactly as long as its session: when the holder is
//! killed, or cut off until the keepalives give up, the server ends the
//! session and the lock is free. Keeping it apart from the data session
//! means a statement of the data session that fails, or a data session
//! opened again, never touches the lock.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conn::{self, cause};
use super::sql::Sql;

/// The longest a connection (TCP, TLS, authentication) may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(15);

/// Run on every session: a statement may run 20s at most, and the server
/// probes an idle client every few seconds, so that a runner cut off by
/// the network loses its lock in seconds rather than the kernel's two hours.
const SESSION_SETTINGS: &str = "SET statement_timeout = '20s'; \
     SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
     SET tcp_keepalives_count = 3";
/// Settings of newer servers, each tried on its own: the server's own
/// bound on unacknowledged data (PostgreSQL 12), and no idle timeout
/// (PostgreSQL 14: it would end the lock session, idle for a whole apply).
const NEWER_SETTINGS: [&str; 2] = [
    "SET tcp_user_timeout = 10000",
    "SET idle_session_timeout = 0",
];

/// One open session.
#[derive(Clone)]
pub(super) struct Session {
    pub client: Arc<Client>,
    /// Why the connection ended, once it has.
    ended: Arc<Mutex<Option<String>>>,
}

impl Session {
    /// Why the session has ended, if it has.
    pub(super) fn ended(&self) -> Option<String> {
        if !self.client.is_closed() {
            return None;
        }
        let why = self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(why.unwrap_or_else(|| "its connection closed".to_owned()))
    }
}

/// The database side of a backend, shared by the jobs run on the client's
/// thread.
pub(super) struct Db {
    /// The parsed connection string, or why there is none.
    config: Result<Config, String>,
    ca_file: Option<PathBuf>,
    tls: OnceLock<Result<MakeRustlsConnect, String>>,
    /// The statements.
    pub sql: Sql,
    /// The state's name.
    pub name: String,
    data: tokio::sync::Mutex<Option<Session>>,
    lock: tokio::sync::Mutex<Option<Session>>,
    tables_ready: AtomicBool,
    approvals_ready: AtomicBool,
}

impl Db {
    /// The database of `config`, for the state `name`.
    pub(super) fn new(
        config: Result<Config, String>,
        ca_file: Option<PathBuf>,
        sql: Sql,
        name: String,
    ) -> Db {
        Db {
            config,
            ca_file,
            tls: OnceLock::new(),
            sql,
            name,
            data: tokio::sync::Mutex::new(None),
            lock: tokio::sync::Mutex::new(None),
            tables_ready: AtomicBool::new(false),
            approvals_ready: AtomicBool::new(false),
        }
    }

    /// The data session, opened (again) if it is not open, with the tables
    /// created if they are missing.
    pub(super) async fn data(&self) -> Result<Arc<Client>, String> {
        let mut slot = self.data.lock().await;
        if let Some(session) = slot.as_ref().filter(|s| s.ended().is_none()) {
            return Ok(session.client.clone());
        }
        *slot = None;
        let session = self.connect().await?;
        self.ensure_tables(&session.client).await?;
        *slot = Some(session.clone());
        Ok(session.client)
    }

    /// The lock session: the open one, or a new one when it has ended.
    pub(super) async fn lock_session(&self) -> Result<Session, String> {
        // The holder row goes into the locks table: it must exist.
        self.data().await?;
        let mut slot = self.lock.lock().await;
        if let Some(session) = slot.as_ref().filter(|s| s.ended().is_none()) {
            return Ok(session.clone());
        }
        *slot = None;
        let session = self.connect().await?;
        *slot = Some(session.clone());
        Ok(session)
    }

    fn tls(&self) -> Result<MakeRustlsConnect, String> {
        self.tls
            .get_or_init(|| conn::tls(self.ca_file.as_deref()))
            .clone()
    }

    async fn connect(&self) -> Result<Session, String> {
        let config = self.config.clone()?;
        let tls = self.tls()?;
        let (client, connection) = tokio::time::timeout(CONNECT_LIMIT, config.connect(tls))
            .await
            .map_err(|_| {
                format!(
                    "cannot connect to PostgreSQL: no answer within {}",
                    humantime::format_duration(CONNECT_LIMIT)
                )
            })?
            .map_err(|e| format!("cannot connect to PostgreSQL: {}", cause(&e)))?;
        let ended = Arc::new(Mutex::new(None));
        let record = ended.clone();
        tokio::spawn(async move {
            let why = match connection.await {
                Ok(()) => "the server closed the connection".to_owned(),
                Err(e) => cause(&e),
            };
            *record.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        });
        client
            .batch_execute(SESSION_SETTINGS)
            .await
            .map_err(|e| format!("cannot set up the PostgreSQL session: {}", cause(&e)))?;
        for setting in NEWER_SETTINGS {
            // An older server does not know it: that is all.
            let _ = client.batch_execute(setting).await;
        }
        Ok(Session {
            client: Arc::new(client),
            ended,
        })
    }

    /// The data session, once the approvals table exists: created if it is
    /// missing and `create` (an apply publishing its pause); else `None`
    /// (no apply ever paused: there is no pause to read).
    pub(super) async fn approvals(&self, create: bool) -> Result<Option<Arc<Client>>, String> {
        let client = self.data().await?;
        if self.approvals_ready.load(Ordering::Acquire) {
            return Ok(Some(client));
        }
        let sql = &self.sql;
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&sql.approvals])
            .await
            .map_err(|e| format!("cannot look up {}: {}", sql.approvals, cause(&e)))?
            .get(0);
        if !exists {
            if !create {
                return Ok(None);
            }
            client
                .batch_execute(&sql.create_approvals())
                .await
                .map_err(|e| format!("cannot create the table {}: {}", sql.approvals, cause(&e)))?;
        }
        self.approvals_ready.store(true, Ordering::Release);
        Ok(Some(client))
    }

    /// Create the schema and tables if they are missing. Looked up first,
    /// so that a user who may only read and write them never needs the
    /// right to create anything.
    async fn ensure_tables(&self, client: &Client) -> Result<(), String> {
        if self.tables_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let sql = &self.sql;
        let row = client
            .query_one(sql.tables_exist(), &[&sql.states, &sql.locks, &sql.schema])
            .await
            .map_err(|e| format!("cannot look up cutover's tables: {}", cause(&e)))?;
        let (tables, schema): (bool, bool) = (row.get(0), row.get(1));
        if !tables {
            client
                .batch_execute(&sql.create_tables(!schema))
                .await
                .map_err(|e| {
                    format!(
                        "cannot create the tables {} and {}: {}",
                        sql.states,
                        sql.locks,
                        cause(&e)
                    )
                })?;
        }
        self.tables_ready.store(true, Ordering::Release);
        Ok(())
    }
}
