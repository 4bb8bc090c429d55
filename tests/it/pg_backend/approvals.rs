//! The approval channel in PostgreSQL: a pause published by a runner that
//! holds the lock (this test, through the library, as the waiting apply
//! does) is read and approved by `cutover approve` run from another
//! checkout, and the runner sees it; a pause whose lock is gone is refused;
//! concurrent approvers all land.

use cutover::config::model::{PgSettings, Span};
use cutover::state::approval;
use cutover::state::backend::{lock_now, Backend};

use super::{no_password, pg_block, postgres, Checkout, DB};
use crate::approve::{approve_at_once, waiting};
use crate::postgres_support::Postgres;

/// The runner's view of the state `default`, through the library.
fn library(pg: &Postgres) -> Box<dyn Backend> {
    let settings = PgSettings {
        conn_str: Some(pg.conn_str(DB)),
        name: "default".into(),
        schema: "public".into(),
        ca_file: None,
        span: Span::default(),
    };
    cutover::state::pg::open(&settings, std::path::Path::new(".")).unwrap()
}

#[test]
fn pg_a_pause_is_approved_by_another_process_and_concurrent_approvers_all_land() {
    let pg = postgres();
    let other = Checkout::new(&pg, &pg_block("default", ""));
    // Nothing has ever paused: no table yet, and nothing to approve.
    other
        .run(&["approve"])
        .code(1)
        .stderr_has("no apply is waiting for approval on PostgreSQL state \"default\"")
        .stderr_has("nobody holds its lock");
    assert_eq!(
        pg.psql(DB, "select to_regclass('cutover_approvals') is null"),
        "t",
        "reading creates nothing"
    );

    let backend = library(&pg);
    let (lock, pause) = waiting(backend.as_ref(), &["a", "b", "c", "d"]);
    assert_eq!(
        pg.psql(
            DB,
            "select lock_id, version, pause ->> 'holder' from cutover_approvals"
        ),
        format!("{}|1|{}", lock.info().id, lock.info().who())
    );
    let run = other.run(&["approve", "router.a"]).code(0);
    assert!(
        run.stdout
            .starts_with("Approved router.a for the apply waiting on PostgreSQL state"),
        "{}",
        run.stdout
    );
    let seen = approval::poll(backend.as_ref(), &lock, &pause).unwrap();
    assert_eq!(seen.approved["a"].by, approval::approver());
    assert_eq!(seen.awaiting(), ["b", "c", "d"]);

    // Three at once: each compare-and-swap that loses reads again.
    for run in approve_at_once(other.case.path(), &["b", "c", "d"], &other.env()) {
        no_password(run).code(0);
    }
    let seen = approval::poll(backend.as_ref(), &lock, &pause).unwrap();
    assert!(seen.is_approved(), "every approval kept: {seen:?}");
    assert_eq!(
        pg.psql(DB, "select version from cutover_approvals"),
        "5",
        "one write per approval, none lost"
    );

    // The runner stops waiting: its row goes.
    backend.clear_pause(&lock).unwrap();
    assert_eq!(pg.psql(DB, "select count(*) from cutover_approvals"), "0");
    other
        .run(&["approve"])
        .code(1)
        .stderr_has("no apply is waiting for approval")
        .stderr_has(&format!("(lock id {})", lock.info().id));
}

#[test]
fn pg_a_pause_whose_lock_was_released_or_force_unlocked_is_refused() {
    let pg = postgres();
    let other = Checkout::new(&pg, &pg_block("default", ""));
    let backend = library(&pg);

    // Released without clearing its pause.
    let (lock, _) = waiting(backend.as_ref(), &["public"]);
    let first = lock.info().id.clone();
    lock.release().unwrap();
    other
        .run(&["approve"])
        .code(1)
        .stderr_has(&format!("no longer holds its lock {first}"))
        .stderr_has("nobody holds the lock now");

    // Force-unlocked from the other checkout while it waited (its session
    // is ended), and then another run takes the lock.
    let (lock, _) = waiting(backend.as_ref(), &["public"]);
    let second = lock.info().id.clone();
    other
        .run(&["force-unlock", &second])
        .code(0)
        .stdout_has("Removed the lock");
    let next = library(&pg);
    let holder = lock_now(next.as_ref(), "apply").unwrap();
    other
        .run(&["approve", "public"])
        .code(1)
        .stderr_has(&format!("no longer holds its lock {second}"))
        .stderr_has(&format!("pid {}", std::process::id()));
    let stored = next.read_pause().unwrap().unwrap();
    assert_eq!(stored.lock_id, second);
    assert!(stored.approved.is_empty(), "nothing approved");
    // The first runner's clear still removes its own pause only.
    next.clear_pause(&holder).unwrap();
    assert!(next.read_pause().unwrap().is_some());
    backend.clear_pause(&lock).unwrap();
    assert!(next.read_pause().unwrap().is_none());
}

#[test]
fn pg_an_apply_paused_on_one_runner_is_approved_from_another() {
    let pg = postgres();
    let rig = crate::crash::Rig::start();
    let config = |green: &str, live: &str| {
        format!(
            "{}{}",
            pg_block("default", ""),
            rig.simple("1", green, live)
        )
    };
    let a = Checkout::new(&pg, &config("1", "blue"));
    a.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("blue");
    a.write(&config("2", "green"));
    let b = Checkout::new(&pg, &config("2", "green"));

    let mut apply = a.spawn_apply("paused", &["--pause-before-cutover"]);
    let waiting = apply.wait_event(
        "awaiting_approval",
        None,
        std::time::Duration::from_secs(60),
    );
    assert_eq!(waiting["router"], "public");
    // The pause is in PostgreSQL, under the lock the apply holds.
    assert_eq!(
        pg.psql(DB, "select pause -> 'routers' ->> 0 from cutover_approvals"),
        "public"
    );
    rig.assert_routes_to("blue");
    b.run(&["approve", "public"])
        .code(0)
        .stdout_has("approved now by");
    let approved = apply.wait_event("approved", None, std::time::Duration::from_secs(30));
    assert_eq!(approved["by"], approval::approver());
    assert_eq!(
        apply.finish(std::time::Duration::from_secs(60)),
        0,
        "{}",
        apply.stderr()
    );
    let kinds: Vec<&str> = apply
        .events()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    let at = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k}: {kinds:?}"))
    };
    assert!(at("approved") < at("cutover_done"), "{kinds:?}");
    rig.assert_routes_to("green");
    // The pause went with the lock: nothing waits, nothing is held.
    b.run(&["approve"])
        .code(1)
        .stderr_has("no apply is waiting for approval");
    assert_eq!(pg.psql(DB, "select count(*) from cutover_locks"), "0");
}
