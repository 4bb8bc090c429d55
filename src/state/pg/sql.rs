//! The SQL of the PostgreSQL backend, with the schema and the lock's key
//! written in once, when the backend is opened.
//!
//! Three tables, in the configured schema:
//!
//! - `cutover_states`: one row per state `name`. `state` is the state's
//!   deterministic JSON as text, byte for byte what the local file would
//!   hold (`select state from cutover_states where name = 'default'` prints
//!   it); `lineage` and `serial` are generated from it, so the
//!   compare-and-swap can never compare against anything but the stored
//!   JSON. `journal` is the running apply's journal (NULL: none), and
//!   `journal_lock` the id of the lock whose holder wrote it.
//! - `cutover_locks`: who holds the lock of a state: the holder's details
//!   (the `LockInfo` as JSON) and the backend pid of the session holding
//!   the advisory lock. A row is believed only while `pg_locks` shows that
//!   pid holding the advisory lock: a row left by a holder that died is a
//!   leftover, ignored and overwritten.
//! - `cutover_approvals`: the pause of an apply waiting for approval, one
//!   row per state `name` (state/approval.rs): the id of the waiting apply's
//!   lock, the pause as JSON, and a `version` that every change bumps, on
//!   which an approver's compare-and-swap is made. Created when an apply
//!   first pauses, not with the other two.
//!
//! Every statement that changes a state is conditioned, in the same
//! statement, on [`Sql::held`]: our row in `cutover_locks` and the
//! advisory lock granted to its session. So a run whose lock session has
//! ended (killed, cut off, force-unlocked) writes nothing, even if its data
//! session still works and another run holds the lock by now.

use sha2::{Digest, Sha256};

/// The table of states.
pub(super) const STATES: &str = "cutover_states";
/// The table of lock holders.
pub(super) const LOCKS: &str = "cutover_locks";
/// The table of the pauses of applies waiting for approval.
pub(super) const APPROVALS: &str = "cutover_approvals";

/// The advisory lock of one state: a 64-bit key, derived from the schema
/// and the state's name so that every cutover, on any host, computes the
/// same one, and two states never share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LockKey(pub i64);

impl LockKey {
    /// The lock of state `name` in `schema`.
    pub(super) fn of(schema: &str, name: &str) -> LockKey {
        LockKey::hash(&["cutover state lock", schema, name])
    }

    /// The transaction lock under which the tables of `schema` are
    /// created (several runners may be the first at once).
    pub(super) fn setup(schema: &str) -> LockKey {
        LockKey::hash(&["cutover tables", schema])
    }

    fn hash(parts: &[&str]) -> LockKey {
        let mut hasher = Sha256::new();
        for part in parts {
            // NUL-separated: ("a", "bc") and ("ab", "c") differ.
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        let digest = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        LockKey(i64::from_be_bytes(first))
    }

    /// How `pg_locks` shows the key: its high half as `classid`, its low
    /// half as `objid`, and `objsubid` 1 (the one-bigint form).
    fn halves(self) -> (u32, u32) {
        let bits = self.0 as u64;
        ((bits >> 32) as u32, bits as u32)
    }
}

/// The statements, for one schema and one state's lock key. Parameter `$1`
/// is always the state's name.
#[derive(Debug, Clone)]
pub(super) struct Sql {
    /// `"schema".cutover_states`.
    pub states: String,
    /// `"schema".cutover_locks`.
    pub locks: String,
    /// `"schema".cutover_approvals`.
    pub approvals: String,
    /// The schema, unquoted.
    pub schema: String,
    pub key: LockKey,
    setup_key: LockKey,
}

impl Sql {
    /// The statements for `schema` (letters, digits, `_`, `-`, `.`: the
    /// configuration checks it, so it can be quoted as is) and `key`.
    pub(super) fn new(schema: &str, key: LockKey) -> Sql {
        debug_assert!(!schema.contains('"'), "checked by the configuration");
        Sql {
            states: format!("\"{schema}\".{STATES}"),
            locks: format!("\"{schema}\".{LOCKS}"),
            approvals: format!("\"{schema}\".{APPROVALS}"),
            schema: schema.to_owned(),
            key,
            setup_key: LockKey::setup(schema),
        }
    }

    /// Whether both tables exist: `$1`, `$2` are [`Sql::states`] and
    /// [`Sql::locks`].
    pub(super) fn tables_exist(&self) -> &'static str {
        "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL, \
         EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $3)"
    }

    /// Create what is missing, in one transaction (a simple query of
    /// several statements is one), under a transaction lock so that
    /// runners creating them at once wait for each other rather than fail.
    pub(super) fn create_tables(&self, with_schema: bool) -> String {
        let schema = if with_schema {
            format!("CREATE SCHEMA IF NOT EXISTS \"{}\";\n", self.schema)
        } else {
            String::new()
        };
        format!(
            "SELECT pg_catalog.pg_advisory_xact_lock({setup});
{schema}CREATE TABLE IF NOT EXISTS {states} (
    name         text PRIMARY KEY,
    lineage      text GENERATED ALWAYS AS (state::json ->> 'lineage') STORED,
    serial       bigint GENERATED ALWAYS AS ((state::json ->> 'serial')::bigint) STORED,
    state        text NOT NULL,
    journal      text,
    journal_lock text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {locks} (
    name        text PRIMARY KEY,
    lock_id     text NOT NULL,
    holder      jsonb NOT NULL,
    backend_pid integer NOT NULL,
    locked_at   timestamptz NOT NULL DEFAULT now()
);",
            setup = self.setup_key.0,
            states = self.states,
            locks = self.locks,
        )
    }

    /// Create the approvals table if it is missing (the schema exists: the
    /// other tables are in it), under the same transaction lock as
    /// [`Sql::create_tables`]. Apart from them, so that a cutover that never
    /// pauses for approval needs no right to create it.
    pub(super) fn create_approvals(&self) -> String {
        format!(
            "SELECT pg_catalog.pg_advisory_xact_lock({setup});
CREATE TABLE IF NOT EXISTS {approvals} (
    name       text PRIMARY KEY,
    lock_id    text NOT NULL,
    pause      jsonb NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);",
            setup = self.setup_key.0,
            approvals = self.approvals,
        )
    }

    /// Publish the pause `$3` (JSON) of the lock `$2`, replacing any pause,
    /// while that lock holds the state.
    pub(super) fn publish_pause(&self) -> String {
        format!(
            "INSERT INTO {approvals} AS a (name, lock_id, pause) \
             SELECT $1::text, $2::text, $3::jsonb WHERE {held} \
             ON CONFLICT (name) DO UPDATE SET lock_id = EXCLUDED.lock_id, \
             pause = EXCLUDED.pause, version = a.version + 1, updated_at = now()",
            approvals = self.approvals,
            held = self.held(2),
        )
    }

    /// The pause and its version.
    pub(super) fn read_pause(&self) -> String {
        format!(
            "SELECT pause, version FROM {} WHERE name = $1",
            self.approvals
        )
    }

    /// Replace the pause with `$2` if its version is still `$3` and the
    /// lock `$4`, whose pause it is, still holds the state.
    pub(super) fn swap_pause(&self) -> String {
        format!(
            "UPDATE {approvals} SET pause = $2::jsonb, version = version + 1, \
             updated_at = now() WHERE name = $1 AND version = $3 AND lock_id = $4 AND {held}",
            approvals = self.approvals,
            held = self.held(4),
        )
    }

    /// Remove the pause of the lock `$2`.
    pub(super) fn clear_pause(&self) -> String {
        format!(
            "DELETE FROM {} WHERE name = $1 AND lock_id = $2",
            self.approvals
        )
    }

    /// The condition "`pg_locks` row `k` is our state's advisory lock,
    /// granted".
    fn granted(&self, k: &str) -> String {
        let (classid, objid) = self.key.halves();
        format!(
            "{k}.locktype = 'advisory' AND {k}.granted AND {k}.objsubid = 1 \
             AND {k}.classid = {classid}::bigint::oid AND {k}.objid = {objid}::bigint::oid \
             AND {k}.database = (SELECT oid FROM pg_catalog.pg_database \
                                 WHERE datname = pg_catalog.current_database())"
        )
    }

    /// The condition "the lock whose id is parameter `$id` holds the state
    /// `$1` now": its row, and the advisory lock granted to the session the
    /// row names.
    pub(super) fn held(&self, id: usize) -> String {
        format!(
            "EXISTS (SELECT 1 FROM {locks} l JOIN pg_catalog.pg_locks k ON k.pid = l.backend_pid \
             WHERE l.name = $1 AND l.lock_id = ${id} AND {granted})",
            locks = self.locks,
            granted = self.granted("k"),
        )
    }

    /// `$2`: the lock id. One row: whether it holds the state, and whether
    /// this user may write the states table.
    pub(super) fn check_writable(&self) -> String {
        format!(
            "SELECT {held}, has_table_privilege('{states}', 'UPDATE') \
             AND has_table_privilege('{states}', 'INSERT')",
            held = self.held(2),
            states = self.states.replace('\'', "''"),
        )
    }

    /// The stored state's text.
    pub(super) fn read_state(&self) -> String {
        format!("SELECT state FROM {} WHERE name = $1", self.states)
    }

    /// The journal's text (NULL: none; no row: no state).
    pub(super) fn read_journal(&self) -> String {
        format!("SELECT journal FROM {} WHERE name = $1", self.states)
    }

    /// Replace the state whose lineage is `$3` and serial `$4` with `$2`,
    /// under the lock `$5`.
    pub(super) fn update_state(&self) -> String {
        format!(
            "UPDATE {states} SET state = $2, updated_at = now() \
             WHERE name = $1 AND lineage = $3 AND serial = $4 AND {held}",
            states = self.states,
            held = self.held(5),
        )
    }

    /// Store `$2` as the first state of `$1`, under the lock `$3`; nothing
    /// when there is one.
    pub(super) fn insert_state(&self) -> String {
        format!(
            "INSERT INTO {states} (name, state) SELECT $1::text, $2::text WHERE {held} \
             ON CONFLICT (name) DO NOTHING",
            states = self.states,
            held = self.held(3),
        )
    }

    /// Replace the journal with `$2`, written under the lock `$3`.
    pub(super) fn start_journal(&self) -> String {
        format!(
            "UPDATE {states} SET journal = $2, journal_lock = $3, updated_at = now() \
             WHERE name = $1 AND {held}",
            states = self.states,
            held = self.held(3),
        )
    }

    /// Append `$2` to the journal that the lock `$3` started.
    pub(super) fn append_journal(&self) -> String {
        format!(
            "UPDATE {states} SET journal = journal || $2, updated_at = now() \
             WHERE name = $1 AND journal IS NOT NULL AND journal_lock = $3 AND {held}",
            states = self.states,
            held = self.held(3),
        )
    }

    /// Remove the journal, under the lock `$2`.
    pub(super) fn discard_journal(&self) -> String {
        format!(
            "UPDATE {states} SET journal = NULL, journal_lock = NULL, updated_at = now() \
             WHERE name = $1 AND {held}",
            states = self.states,
            held = self.held(2),
        )
    }

    /// `$2`: a lock id. One row: whether it holds the state, whether there
    /// is a state row at all, and who wrote its journal.
    pub(super) fn after_refusal(&self) -> String {
        format!(
            "SELECT {held}, s.name IS NOT NULL, s.journal_lock, s.state \
             FROM (SELECT 1) one LEFT JOIN {states} s ON s.name = $1",
            held = self.held(2),
            states = self.states,
        )
    }

    /// Take the advisory lock without waiting (on the lock session).
    pub(super) fn try_lock(&self) -> String {
        format!("SELECT pg_catalog.pg_try_advisory_lock({})", self.key.0)
    }

    /// Release it (on the lock session).
    pub(super) fn unlock(&self) -> String {
        format!("SELECT pg_catalog.pg_advisory_unlock({})", self.key.0)
    }

    /// Record the holder `$3` (JSON) of lock `$2`, in the session that holds
    /// the advisory lock (its pid is the row's `backend_pid`).
    pub(super) fn record_holder(&self) -> String {
        format!(
            "INSERT INTO {locks} (name, lock_id, holder, backend_pid, locked_at) \
             VALUES ($1, $2, $3, pg_catalog.pg_backend_pid(), now()) \
             ON CONFLICT (name) DO UPDATE SET lock_id = EXCLUDED.lock_id, \
             holder = EXCLUDED.holder, backend_pid = EXCLUDED.backend_pid, \
             locked_at = EXCLUDED.locked_at",
            locks = self.locks,
        )
    }

    /// Remove the holder row of lock `$2`.
    pub(super) fn forget_holder(&self) -> String {
        format!(
            "DELETE FROM {} WHERE name = $1 AND lock_id = $2",
            self.locks
        )
    }

    /// Remove a holder row whose session no longer holds the lock.
    pub(super) fn forget_leftover(&self) -> String {
        format!(
            "DELETE FROM {locks} l WHERE l.name = $1 AND NOT EXISTS \
             (SELECT 1 FROM pg_catalog.pg_locks k WHERE k.pid = l.backend_pid AND {granted})",
            locks = self.locks,
            granted = self.granted("k"),
        )
    }

    /// Who holds the advisory lock: no row when nobody does; else the
    /// session's pid, and the holder row it wrote (NULL: not yet, or none).
    pub(super) fn holder(&self) -> String {
        format!(
            "SELECT k.pid, l.holder FROM pg_catalog.pg_locks k \
             LEFT JOIN {locks} l ON l.name = $1 AND l.backend_pid = k.pid \
             WHERE {granted}",
            locks = self.locks,
            granted = self.granted("k"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_is_stable_and_differs_by_state_and_schema() {
        // Every cutover, of any version, must compute the same key for the
        // same state: a change here lets an old and a new cutover apply at
        // once.
        assert_eq!(
            LockKey::of("public", "default"),
            LockKey::of("public", "default")
        );
        assert_eq!(LockKey::of("public", "default").0, -378_550_016_943_172_882);
        assert_ne!(
            LockKey::of("public", "default"),
            LockKey::of("public", "prod")
        );
        assert_ne!(
            LockKey::of("public", "default"),
            LockKey::of("ops", "default")
        );
        assert_ne!(LockKey::of("ab", "c"), LockKey::of("a", "bc"));
        assert_ne!(LockKey::of("public", "default"), LockKey::setup("public"));
    }

    #[test]
    fn pg_locks_shows_the_key_as_two_halves() {
        assert_eq!(LockKey(-1).halves(), (u32::MAX, u32::MAX));
        assert_eq!(LockKey(0x0000_0001_0000_0002).halves(), (1, 2));
        assert_eq!(LockKey(i64::MIN).halves(), (0x8000_0000, 0));
    }

    #[test]
    fn names_are_quoted_and_the_key_written_in() {
        let key = LockKey(0x0000_0001_0000_0002);
        let sql = Sql::new("ops-1", key);
        assert_eq!(sql.states, "\"ops-1\".cutover_states");
        assert!(sql.try_lock().ends_with("(4294967298)"));
        let held = sql.held(3);
        assert!(held.contains("l.lock_id = $3"), "{held}");
        assert!(held.contains("classid = 1::bigint::oid"), "{held}");
        assert!(held.contains("objid = 2::bigint::oid"), "{held}");
    }
}
