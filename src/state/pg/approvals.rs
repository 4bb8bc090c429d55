//! The approval channel of the PostgreSQL backend: a row of
//! `cutover_approvals` per state (pg/sql.rs), written by the waiting apply
//! under its lock, and changed by an approver with a compare-and-swap on
//! the row's `version` that also requires, in the same statement, the
//! pause's lock to hold the state still (state/approval.rs).

use tokio_postgres::types::Json;

use super::conn::cause;
use super::session::Db;
use super::PgState;
use crate::state::approval::{self, ApproveError, Approved, Pause};
use crate::state::backend::{Backend, Lock};
use crate::state::StateError;

/// The pause stored for the state, and its version (0: none).
async fn read(db: &Db) -> Result<(Option<Pause>, i64), String> {
    let Some(client) = db.approvals(false).await? else {
        return Ok((None, 0));
    };
    let row = client
        .query_opt(&db.sql.read_pause(), &[&db.name])
        .await
        .map_err(|e| cause(&e))?;
    let Some(row) = row else {
        return Ok((None, 0));
    };
    let version: i64 = row.get(1);
    let value: serde_json::Value = row.try_get(0).map_err(|e| cause(&e))?;
    let pause = serde_json::from_value(value).map_err(|e| {
        format!(
            "the pause in {} cannot be read ({e}); an apply that pauses again replaces it",
            db.sql.approvals
        )
    })?;
    Ok((Some(pause), version))
}

impl PgState {
    /// [`Backend::publish_pause`].
    pub(super) fn publish(&self, lock: &Lock, pause: &Pause) -> Result<(), StateError> {
        let id = self.lock_id(lock);
        approval::check_own(self, lock, pause)?;
        let what = "cannot publish the pause for approval";
        let pause = pause.clone();
        let published = self
            .inner
            .run(|db| async move {
                let client = db.approvals(true).await?;
                let client = client.expect("created when missing");
                let changed = client
                    .execute(&db.sql.publish_pause(), &[&db.name, &id, &Json(&pause)])
                    .await
                    .map_err(|e| cause(&e))?;
                Ok(changed > 0)
            })
            .map_err(|m| self.inner.state_error(what, m))?;
        if published {
            Ok(())
        } else {
            Err(self.lost(lock))
        }
    }

    /// [`Backend::read_pause`].
    pub(super) fn pause(&self) -> Result<Option<Pause>, StateError> {
        self.inner
            .run(|db| async move { read(&db).await.map(|(pause, _)| pause) })
            .map_err(|m| {
                self.inner
                    .state_error("cannot read the pause for approval", m)
            })
    }

    /// [`Backend::approve`].
    pub(super) fn approve_pause(
        &self,
        routers: &[String],
        by: &str,
    ) -> Result<Approved, ApproveError> {
        let what = "cannot approve";
        approval::approve_with(
            &self.inner.describe,
            routers,
            by,
            || {
                let found = self.inner.run(|db| async move { read(&db).await });
                Ok(found.map_err(|m| self.inner.state_error(what, m))?)
            },
            || Ok(self.read_lock()?),
            |version, approved| {
                let pause = approved.pause.clone();
                let swapped = self.inner.run(|db| async move {
                    let client = db.data().await?;
                    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                        [&db.name, &Json(&pause), &version, &pause.lock_id];
                    let changed = client
                        .execute(&db.sql.swap_pause(), &params)
                        .await
                        .map_err(|e| cause(&e))?;
                    Ok(changed > 0)
                });
                Ok(swapped.map_err(|m| self.inner.state_error(what, m))?)
            },
        )
    }

    /// [`Backend::clear_pause`]: only this lock's pause, even once the lock
    /// is lost.
    pub(super) fn clear(&self, lock: &Lock) -> Result<(), StateError> {
        let id = self.lock_id(lock);
        self.inner
            .run(|db| async move {
                let Some(client) = db.approvals(false).await? else {
                    return Ok(());
                };
                client
                    .execute(&db.sql.clear_pause(), &[&db.name, &id])
                    .await
                    .map_err(|e| cause(&e))?;
                Ok(())
            })
            .map_err(|m| {
                self.inner
                    .state_error("cannot remove the pause for approval", m)
            })
    }
}
