//! One database, several runners: the state as psql reads it, several
//! states side by side, eight concurrent applies, a held lock that names
//! its holder.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{pg_block, postgres, process_env, rig_config, state_pid, Apply, Checkout, Demos, DB};
use crate::crash::{demo_pids, Rig, LIMIT};
use crate::postgres_support::Postgres;

#[test]
fn pg_a_state_is_applied_read_with_psql_and_kept_apart_from_another() {
    let pg = postgres();
    let rig = Rig::start();
    let config = format!(
        "{}{}",
        pg_block("default", ""),
        rig.simple("1", "1", "blue")
    );
    let a = Checkout::new(&pg, &config);
    let place = format!("PostgreSQL state \"default\" (127.0.0.1:{}/{DB})", pg.port);

    a.run(&["init"])
        .code(0)
        .stdout_has(&format!("Created state {place} (lineage "));
    a.run(&["plan"]).code(0).stdout_has("environment.blue");
    a.run(&["apply", "--auto-approve"]).code(0);
    a.run(&["plan", "--detailed-exitcode"]).code(0);
    rig.assert_routes_to("blue");

    // The state is the same JSON in psql as in `show --json`, the local
    // file's bytes; the columns are generated from it; no journal, no lock.
    let shown = a.show();
    let stored = pg.psql(
        DB,
        "select state from cutover_states where name = 'default'",
    );
    assert_eq!(stored, shown);
    let state: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        cutover::state::to_bytes(&serde_json::from_value(state.clone()).unwrap()),
        shown.as_bytes()
    );
    assert_eq!(
        pg.psql(
            DB,
            "select lineage, serial, journal is null, journal_lock is null \
             from cutover_states where name = 'default'"
        ),
        format!(
            "{}|{}|t|t",
            state["lineage"].as_str().unwrap(),
            state["serial"]
        )
    );
    assert_eq!(pg.psql(DB, "select count(*) from cutover_locks"), "0");
    assert!(state["environments"]["blue"]["private"]["pid"].is_i64());

    // A second state in the same database, from another checkout.
    let other_port = crate::haproxy_support::free_port();
    let _demos = Demos(vec![other_port]);
    let b = Checkout::new(
        &pg,
        &format!(
            "{}{}",
            pg_block("other", ""),
            process_env("solo", other_port, "7")
        ),
    );
    b.run(&["apply", "--auto-approve"]).code(0);
    let other = b.state();
    assert_eq!(other["environments"]["solo"]["release"], "7");
    assert!(other["environments"].get("blue").is_none(), "{other}");
    assert_ne!(other["lineage"], state["lineage"]);
    // The first is untouched, byte for byte.
    assert_eq!(a.show(), shown);
    assert_eq!(
        pg.psql(
            DB,
            "select string_agg(name, ',' order by name) from cutover_states"
        ),
        "default,other"
    );
    a.run(&["plan", "--detailed-exitcode"]).code(0);
    b.run(&["plan", "--detailed-exitcode"]).code(0);
}

/// How many runners apply at once.
const RUNNERS: usize = 8;

#[test]
fn pg_eight_concurrent_applies_from_eight_checkouts_are_serialised_and_lose_nothing() {
    let pg = postgres();
    let ports: Vec<u16> = (0..RUNNERS)
        .map(|_| crate::haproxy_support::free_port())
        .collect();
    let _demos = Demos(ports.clone());
    let config = |releases: &[&str]| {
        let mut text = pg_block("default", "");
        for (i, port) in ports.iter().enumerate() {
            text.push_str(&process_env(&format!("e{i}"), *port, releases[i]));
        }
        text
    };
    let mut releases = vec!["1"; RUNNERS];
    let checkouts: Vec<Checkout> = (0..RUNNERS)
        .map(|_| Checkout::new(&pg, &config(&releases)))
        .collect();
    // An empty database: the eight create the tables and the state at
    // once (the tables under a transaction lock, the state under the lock).
    let mut serial = 0;

    // Two rounds, each runner applying the same commit: every environment
    // created; then two of them changed.
    for round in 0..2 {
        if round == 1 {
            releases[2] = "2";
            releases[5] = "2";
            for c in &checkouts {
                c.write(&config(&releases));
            }
        }
        let mut applies: Vec<Apply> = checkouts
            .iter()
            .enumerate()
            .map(|(i, c)| c.spawn_apply(&format!("r{round}-{i}"), &["--lock-timeout", "2m"]))
            .collect();
        for a in &mut applies {
            let code = a.finish(Duration::from_secs(150));
            assert_eq!(code, 0, "{}: {:?}\n{}", a.tag, a.events(), a.stderr());
        }
        assert_serialised(&applies);
        let changes = if round == 0 { RUNNERS } else { 2 };
        serial = assert_one_changer(&applies, serial, changes);
        // Nothing lost: every environment recorded, with exactly one
        // demo-app each, the recorded one, at the configured release.
        let state = checkouts[RUNNERS - 1].state();
        assert_eq!(state["serial"], serial);
        for (i, port) in ports.iter().enumerate() {
            let name = format!("e{i}");
            assert_eq!(state["environments"][&name]["release"], releases[i]);
            assert_eq!(demo_pids(*port), [state_pid(&state, &name)], "{name}");
        }
        assert_clean(&pg);
    }
}

/// Each apply printed all its lines while it held the lock, so no two
/// spans of lines may overlap; and a run that waited names as the holder
/// another of the runners.
#[track_caller]
fn assert_serialised(applies: &[Apply]) {
    let mut spans: Vec<(Instant, Instant, &str)> = applies
        .iter()
        .map(|a| (a.seen[0].0, a.seen.last().unwrap().0, a.tag.as_str()))
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 > pair[0].1,
            "{} printed while {} held the lock",
            pair[1].2,
            pair[0].2
        );
    }
    let pids: Vec<u32> = applies.iter().map(Apply::pid).collect();
    let mut waited = 0;
    for a in applies {
        let err = a.stderr();
        if let Some(rest) = err.split("state lock held by an apply (pid ").nth(1) {
            let holder: u32 = rest.split(' ').next().unwrap().parse().unwrap();
            assert!(
                holder != a.pid() && pids.contains(&holder),
                "{}: {err}",
                a.tag
            );
            waited += 1;
        }
    }
    assert!(waited >= 1, "nobody waited: the applies did not overlap");
}

/// Each planned after the one before it was done: exactly one found
/// something to do, the serial moved once per change it made (from
/// `serial`), and every other one saw the serial it left. The new serial.
#[track_caller]
fn assert_one_changer(applies: &[Apply], serial: u64, changes: usize) -> u64 {
    let changers: Vec<&Apply> = applies
        .iter()
        .filter(|a| a.events()[0]["plan"]["summary"]["outcome"] != "no_changes")
        .collect();
    let tags: Vec<&str> = changers.iter().map(|a| a.tag.as_str()).collect();
    assert_eq!(
        changers.len(),
        1,
        "more than one apply changed something: {tags:?}"
    );
    let events = changers[0].events();
    let summary = events.last().unwrap();
    let done = summary["done"].as_array().unwrap();
    let changed = done
        .iter()
        .filter(|s| s.as_str().unwrap().starts_with("environment."))
        .count();
    assert_eq!(changed, changes, "{summary}");
    let serial = serial + changes as u64;
    assert_eq!(summary["serial"], serial, "{summary}");
    for a in applies {
        if !std::ptr::eq(a, changers[0]) {
            let last = a.events().last().copied().unwrap();
            assert_eq!(last["serial"], serial, "{}: {last}", a.tag);
        }
    }
    serial
}

/// No lock row, no advisory lock, no journal left.
#[track_caller]
fn assert_clean(pg: &Postgres) {
    assert_eq!(pg.psql(DB, "select count(*) from cutover_locks"), "0");
    assert_eq!(
        pg.psql(
            DB,
            "select count(*) from pg_locks where locktype = 'advisory'"
        ),
        "0"
    );
    assert_eq!(
        pg.psql(DB, "select bool_and(journal is null) from cutover_states"),
        "t"
    );
}

#[test]
fn pg_a_held_lock_names_its_holder_and_a_waiting_apply_runs_after_it() {
    let pg = postgres();
    let rig = Rig::start();
    let a = Checkout::new(&pg, &rig_config(&rig, "1", "0", "blue"));
    a.run(&["apply", "--auto-approve"]).code(0);
    // Green healthy only after 20 s (its gate waits up to 60 s): A holds the
    // lock through everything B does below, however loaded the machine
    // (8 s was not enough with the suite and three builds on two cores).
    let next = format!(
        "{}{}{}{}",
        pg_block("default", ""),
        rig.process_env("blue", "1", &[], crate::crash::FAST_HEALTH),
        rig.process_env(
            "green",
            "2",
            &["--healthy-after", "20"],
            "path = \"/healthz\"\n    interval = \"50ms\"\n    timeout  = \"60s\"",
        ),
        rig.router("green")
    );
    a.write(&next);
    let b = Checkout::new(&pg, &next);

    let mut first = a.spawn_apply("a", &[]);
    first.wait_event("step_started", Some("health.green"), LIMIT);
    let row = pg.psql(
        DB,
        "select holder ->> 'pid', holder ->> 'user', holder ->> 'host', \
         holder ->> 'created', holder ->> 'id', holder ->> 'operation' from cutover_locks",
    );
    let fields: Vec<&str> = row.split('|').collect();
    let [pid, user, host, created, id, operation] = fields[..] else {
        panic!("{row}")
    };
    assert_eq!(pid, first.pid().to_string());
    assert_eq!(operation, "apply");

    let started = Instant::now();
    let run = b
        .run(&["apply", "--auto-approve", "--lock-timeout", "0s"])
        .code(1);
    assert!(started.elapsed() < Duration::from_secs(5));
    for part in [
        "PostgreSQL state \"default\"",
        &format!("pid {pid} ({user}@{host}), running `apply`, since {created}"),
        &format!("lock id: {id}"),
        "command: ",
        "apply --json --auto-approve",
    ] {
        assert!(run.stderr.contains(part), "lacks {part:?}:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("stale"), "{}", run.stderr);
    // B changed nothing, and the holder is still A.
    rig.assert_routes_to("blue");
    assert_eq!(pg.psql(DB, "select holder ->> 'id' from cutover_locks"), id);

    // A wrong id removes nothing.
    b.run(&["force-unlock", "not-the-id"])
        .code(1)
        .stderr_has(id);

    // Another one waits, then finds A's work done.
    let mut waiting = b.spawn_apply("b2", &["--lock-timeout", "30s"]);
    waiting.wait_stderr(
        &format!("waiting up to 30s for the state lock held by an apply (pid {pid} on host {host}"),
        Duration::from_secs(10),
    );
    assert_eq!(first.finish(LIMIT), 0, "{:?}", first.events());
    assert_eq!(waiting.finish(LIMIT), 0, "{}", waiting.stderr());
    let outcome = &waiting.events()[0]["plan"]["summary"]["outcome"];
    assert_eq!(outcome, "no_changes");
    rig.assert_routes_to("green");
}
