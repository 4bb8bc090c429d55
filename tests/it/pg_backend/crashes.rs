//! A runner that dies, a database that stops, a lock broken by hand: the
//! lock frees itself or is refused to its old holder, what was done is
//! folded from the journal, and the next apply converges.

use std::time::{Duration, Instant};

use super::{poll, postgres, rig_config, state_pid, Checkout, DB};
use crate::crash::{demo_pids, Rig, LIMIT};

#[test]
fn pg_a_sigkilled_holder_frees_the_lock_and_the_next_runner_folds_its_journal() {
    let pg = postgres();
    let rig = Rig::start();
    let a = Checkout::new(&pg, &rig_config(&rig, "1", "0", "blue"));
    a.run(&["apply", "--auto-approve"]).code(0);
    let lineage = a.state()["lineage"].clone();

    // A deploys green 2 (healthy 3s after it starts), recorded in the
    // journal, and is killed in the health gate that follows.
    let next = rig_config(&rig, "2", "3", "green");
    a.write(&next);
    let b = Checkout::new(&pg, &next);
    let mut apply = a.spawn_apply("a", &[]);
    apply.wait_event("step_finished", Some("environment.green"), LIMIT);
    apply.wait_event("step_started", Some("health.green"), LIMIT);
    let journal = pg.psql(DB, "select journal from cutover_states");
    assert!(journal.contains("\"green\""), "{journal}");
    let holder = pg.psql(DB, "select holder ->> 'pid' from cutover_locks");
    assert_eq!(holder, apply.pid().to_string());
    apply.kill();
    rig.assert_routes_to("blue");

    // The server ends the dead holder's session, and the lock with it; its
    // row stays, believed by nobody.
    poll("the advisory lock freed", Duration::from_secs(10), || {
        pg.psql(
            DB,
            "select count(*) from pg_locks where locktype = 'advisory'",
        ) == "0"
    });
    assert_eq!(pg.psql(DB, "select count(*) from cutover_locks"), "1");
    let b_lock = b.run(&["force-unlock", "whatever"]).code(1);
    assert!(b_lock.stderr.contains("is not locked"), "{}", b_lock.stderr);

    // The next runner takes the lock at once, folds the journal, converges.
    let started = Instant::now();
    let run = b
        .run(&["apply", "--auto-approve", "--lock-timeout", "0s"])
        .code(0)
        .stderr_has("folded the journal");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        run.stderr.contains("PostgreSQL state \"default\""),
        "{}",
        run.stderr
    );
    rig.assert_routes_to("green");
    let state = b.state();
    assert_eq!(state["lineage"], lineage);
    assert_eq!(state["environments"]["green"]["release"], "2");
    // The green A started is the one recorded: not orphaned, not doubled.
    assert_eq!(demo_pids(rig.green), [state_pid(&state, "green")]);
    assert_eq!(demo_pids(rig.blue), [state_pid(&state, "blue")]);
    assert_eq!(
        pg.psql(DB, "select journal is null from cutover_states"),
        "t"
    );
    assert_eq!(pg.psql(DB, "select count(*) from cutover_locks"), "0");
}

#[test]
fn pg_postgres_stopped_mid_apply_is_a_clear_error_and_the_next_apply_converges() {
    let mut pg = postgres();
    let rig = Rig::start();
    let a = Checkout::new(&pg, &rig_config(&rig, "1", "0", "blue"));
    a.run(&["apply", "--auto-approve"]).code(0);

    a.write(&rig_config(&rig, "2", "2", "green"));
    let mut apply = a.spawn_apply("a", &[]);
    apply.wait_event("step_started", Some("health.green"), LIMIT);
    pg.stop();
    let started = Instant::now();
    let code = apply.finish(LIMIT);
    assert_eq!(code, 1, "{:?}", apply.events());
    assert!(started.elapsed() < Duration::from_secs(25));
    // The apply stopped before anything live moved: the lock session's end
    // was seen before the cut-over could start, so it never started and
    // nothing was switched back. Why is in the summary (--json keeps stdout
    // to events).
    let events = apply.events();
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "summary", "{events:?}");
    assert_eq!(summary["ok"], false);
    let err = summary["state_error"].as_str().unwrap_or_default();
    let place = format!("PostgreSQL state \"default\" (127.0.0.1:{}/{DB})", pg.port);
    assert!(
        err.starts_with(&format!("{place}: checked before anything live changes: ")),
        "{summary}"
    );
    assert_eq!(
        summary["not_run"],
        serde_json::json!(["cutover.public"]),
        "{summary}"
    );
    assert_eq!(summary["reverted"], serde_json::json!([]), "{summary}");
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "step_started" && e["id"] == "cutover.public"),
        "{events:?}"
    );
    rig.assert_routes_to("blue");

    // PostgreSQL back: the next apply folds what the journal holds and
    // converges, with one demo-app per colour.
    pg.start_server();
    let run = a.run(&["apply", "--auto-approve"]).code(0);
    assert!(run.stderr.contains("folded the journal"), "{}", run.stderr);
    rig.assert_routes_to("green");
    let state = a.state();
    assert_eq!(demo_pids(rig.green), [state_pid(&state, "green")]);
    assert_eq!(demo_pids(rig.blue), [state_pid(&state, "blue")]);
}

#[test]
fn pg_force_unlock_ends_a_live_holders_session() {
    let pg = postgres();
    let rig = Rig::start();
    let a = Checkout::new(&pg, &rig_config(&rig, "1", "0", "blue"));
    a.run(&["apply", "--auto-approve"]).code(0);
    a.write(&rig_config(&rig, "2", "4", "green"));
    let mut apply = a.spawn_apply("a", &[]);
    apply.wait_event("step_started", Some("health.green"), LIMIT);
    let id = pg.psql(DB, "select holder ->> 'id' from cutover_locks");

    // It ends the holder's session (the lock goes with it) and folds the
    // journal the holder had written so far.
    a.run(&["force-unlock", &id])
        .code(0)
        .stdout_has(&format!("held by pid {}", apply.pid()))
        .stderr_has("folded the journal");
    assert_eq!(pg.psql(DB, "select count(*) from cutover_locks"), "0");
    // The holder, cut off from its lock, writes nothing more and moves
    // nothing live: it stops before its cut-over, saying so, and what it
    // did is in its journal.
    assert_eq!(apply.finish(LIMIT), 1);
    let events = apply.events();
    let summary = events.last().unwrap();
    let err = summary["state_error"].as_str().unwrap_or_default();
    assert!(
        err.contains("the lock was lost: its PostgreSQL session ended"),
        "{summary}"
    );
    // Seen before the cut-over started: it never did.
    assert_eq!(
        summary["not_run"],
        serde_json::json!(["cutover.public"]),
        "{summary}"
    );
    assert_eq!(summary["reverted"], serde_json::json!([]), "{summary}");
    rig.assert_routes_to("blue");
    a.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("green");
}
