//! The backend through the library, as the commands use it: a
//! compare-and-swap on a state that moved under the writer, and every
//! write of a run that lost its lock, are refused, and nothing is written.

use std::time::Duration;

use cutover::config::model::{PgSettings, Span};
use cutover::state::backend::{lock_now, Backend, Stamp};
use cutover::state::StateError;

use super::{poll, postgres, DB};

fn settings(conn_str: String) -> PgSettings {
    PgSettings {
        conn_str: Some(conn_str),
        name: "cas".into(),
        schema: "ops".into(),
        ca_file: None,
        span: Span {
            file: "main.hcl".into(),
            line: 1,
            column: 1,
            start: 0,
            end: 0,
        },
    }
}

fn open(settings: &PgSettings) -> Box<dyn Backend> {
    cutover::state::pg::open(settings, std::path::Path::new(".")).unwrap()
}

const SELECT: &str = "select serial, state from ops.cutover_states where name = 'cas'";

#[test]
fn pg_a_serial_moved_under_the_writer_is_a_conflict_and_nothing_is_written() {
    let pg = postgres();
    let backend = open(&settings(pg.conn_str(DB)));
    assert_eq!(
        backend.describe(),
        format!(
            "PostgreSQL state \"cas\" (127.0.0.1:{}/{DB}, schema ops)",
            pg.port
        )
    );
    let lock = lock_now(&*backend, "test").unwrap();
    // The same process cannot take it twice (a session lock is re-entrant).
    assert!(lock_now(&*backend, "again").is_err());
    let state = cutover::state::new_state();
    backend.write_state(&lock, None, &state).unwrap();
    // Written again (as after a crash between a write and what follows):
    // the same content is no conflict.
    backend.write_state(&lock, None, &state).unwrap();
    assert!(pg.psql(DB, SELECT).starts_with("0|"));

    // Another writer moved the serial: the write expecting 0 is refused.
    pg.psql(
        DB,
        "update ops.cutover_states set state = replace(state, '\"serial\": 0', '\"serial\": 7')",
    );
    let moved = pg.psql(DB, SELECT);
    assert!(moved.starts_with("7|"), "{moved}");
    let mut next = state.clone();
    next.serial = 1;
    let err = backend
        .write_state(&lock, Some(&Stamp::of(&state)), &next)
        .unwrap_err();
    match &err {
        StateError::Conflict {
            expected, found, ..
        } => {
            assert_eq!(expected.as_ref().map(|s| s.serial), Some(0));
            assert_eq!(found.as_ref().map(|s| s.serial), Some(7));
        }
        other => panic!("not a conflict: {other:?}"),
    }
    assert!(err.to_string().contains("changed by another run"), "{err}");
    assert_eq!(pg.psql(DB, SELECT), moved, "nothing written");
    // Creating a state where there is one is refused too.
    assert!(matches!(
        backend.write_state(&lock, None, &next),
        Err(StateError::Conflict { .. })
    ));
    // Appending to a journal this run did not start is refused.
    let err = backend.append_journal(&lock, b"more\n", false).unwrap_err();
    assert!(err.to_string().contains("no longer this run's"), "{err}");
    assert_eq!(
        pg.psql(DB, "select journal is null from ops.cutover_states"),
        "t"
    );
    assert_eq!(pg.psql(DB, SELECT), moved, "nothing written");
}

#[test]
fn pg_a_run_whose_lock_session_ended_writes_nothing_not_even_into_the_next_runs_journal() {
    let pg = postgres();
    let settings = settings(pg.conn_str(DB));
    let backend = open(&settings);
    let lock = lock_now(&*backend, "test").unwrap();
    let state = cutover::state::new_state();
    backend.write_state(&lock, None, &state).unwrap();
    backend
        .append_journal(&lock, b"{\"lineage\":\"x\",\"serial\":0}\n", true)
        .unwrap();
    backend.check_writable(&lock).unwrap();
    let before = pg.psql(DB, SELECT);

    // The lock session ends (killed, cut off): every write is refused.
    pg.psql(
        DB,
        "select pg_terminate_backend(backend_pid) from ops.cutover_locks where name = 'cas'",
    );
    poll("the lock session ended", Duration::from_secs(5), || {
        lock.lost().is_some()
    });
    let mut after = state.clone();
    after.serial = 1;
    let lost = backend
        .write_state(&lock, Some(&Stamp::of(&state)), &after)
        .unwrap_err();
    let message = lost.to_string();
    assert!(
        matches!(&lost, StateError::Backend { .. })
            && message.contains("the lock was lost: its PostgreSQL session ended"),
        "{lost:?}"
    );
    assert!(backend.append_journal(&lock, b"more\n", false).is_err());
    assert!(backend.discard_journal(&lock).is_err());
    let refused = backend.check_writable(&lock).unwrap_err();
    assert!(refused.contains("the lock was lost"), "{refused}");
    assert_eq!(pg.psql(DB, SELECT), before, "nothing written");

    // Another runner takes the lock at once; the first still cannot write,
    // not even into the other's journal.
    let other = open(&settings);
    let theirs = lock_now(&*other, "apply").unwrap();
    other.append_journal(&theirs, b"theirs\n", true).unwrap();
    assert!(backend.append_journal(&lock, b"mine\n", false).is_err());
    assert!(backend.append_journal(&lock, b"mine\n", true).is_err());
    assert!(backend
        .write_state(&lock, Some(&Stamp::of(&state)), &after)
        .is_err());
    assert_eq!(
        pg.psql(DB, "select journal from ops.cutover_states"),
        "theirs\n"
    );
    other.check_writable(&theirs).unwrap();
    other
        .write_state(&theirs, Some(&Stamp::of(&state)), &after)
        .unwrap();
    other.discard_journal(&theirs).unwrap();
    assert!(pg.psql(DB, SELECT).starts_with("1|"));
    // The first's release touches nothing of the other's.
    drop(lock);
    assert_eq!(
        pg.psql(DB, "select holder ->> 'operation' from ops.cutover_locks"),
        "apply"
    );
    theirs.release().unwrap();
    assert_eq!(pg.psql(DB, "select count(*) from ops.cutover_locks"), "0");
    assert_eq!(
        pg.psql(
            DB,
            "select count(*) from pg_locks where locktype = 'advisory'"
        ),
        "0"
    );
}
