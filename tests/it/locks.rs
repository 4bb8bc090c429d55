//! The state lock with two real cutover processes (issue 5, point 5): a second
//! apply fails naming the holder, or waits with `--lock-timeout` and then
//! proceeds; a lock left by a SIGKILLed apply is reported as stale, with its
//! id, and `force-unlock ID` clears it.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::crash::{lock_id, Rig, FAST_HEALTH};

/// blue live; green at `green_rel`, healthy only `delay` seconds after it
/// starts, and `live` the router's colour.
fn config(rig: &Rig, green_rel: &str, delay: &str, live: &str) -> String {
    format!(
        "{}{}{}",
        rig.process_env("blue", "1", &[], FAST_HEALTH),
        rig.process_env("green", green_rel, &["--healthy-after", delay], FAST_HEALTH),
        rig.router(live)
    )
}

/// Wait until the lock file exists and names `pid` (panics after 10s).
fn wait_for_lock(rig: &Rig, child: &mut Child) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(rig.lock_path()) {
            if let Ok(lock) = serde_json::from_str::<serde_json::Value>(&text) {
                assert_eq!(lock["pid"], child.id(), "the lock names the apply: {lock}");
                return lock;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("apply A ended ({status}) before it was seen holding the lock");
        }
        assert!(Instant::now() < deadline, "apply A never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} still running after {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_apply_fails_naming_the_holder_or_waits_for_it() {
    let rig = Rig::start();
    rig.write(&config(&rig, "1", "0", "blue"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let serial0 = rig.state()["serial"].as_u64().unwrap();

    // A: green 2, healthy only after 3s, then the cut-over: it holds the lock
    // for about 3s.
    rig.write(&config(&rig, "2", "3", "green"));
    let mut a = rig.spawn_apply("a", &[]);
    let lock = wait_for_lock(&rig, &mut a);
    assert_eq!(lock["operation"], "apply");

    // B without waiting: fails at once, naming A.
    let t = Instant::now();
    let b = rig.run(&["apply", "--auto-approve", "--lock-timeout", "0s"]);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "B did not fail at once"
    );
    let b = b.code(1);
    assert!(
        b.stderr.contains(&format!("pid {}", a.id()))
            && b.stderr.contains("`apply`")
            && b.stderr.contains(lock["id"].as_str().unwrap())
            && !b.stderr.contains("stale"),
        "B must name the live holder:\n{}",
        b.stderr
    );
    // B changed nothing: still A's lock, blue still live.
    assert_eq!(lock_id(&rig.lock_path()).as_deref(), lock["id"].as_str());
    rig.assert_routes_to("blue");

    // B2 waits up to 10s, and then applies its own change (green 3) on top of
    // what A did: it plans after it took the lock, not before.
    let mut b2 = {
        // The same directory; the release comes from the config B2 reads
        // once it holds the lock, so rewrite the config only after A read it.
        rig.spawn_apply("b2", &["--lock-timeout", "15s"])
    };
    rig.wait_for_output(
        &mut b2,
        "b2",
        "err",
        "waiting up to 15s for the state lock held by an apply (pid",
        Duration::from_secs(10),
    );
    assert!(b2.try_wait().unwrap().is_none(), "B2 must wait for A");
    let code_a = wait_exit(&mut a, Duration::from_secs(20));
    let code_b2 = wait_exit(&mut b2, Duration::from_secs(25));
    let (a_out, a_err) = rig.output("a");
    let (b2_out, b2_err) = rig.output("b2");
    assert_eq!(code_a, 0, "A:\n{a_out}\n{a_err}");
    assert_eq!(code_b2, 0, "B2:\n{b2_out}\n{b2_err}");
    assert!(!rig.lock_path().exists(), "both released the lock");

    // A made 2 changes (green, cut-over). B2 read the same config after A
    // was done: nothing left to do, so nothing more in the state.
    let st = rig.state();
    assert_eq!(st["serial"].as_u64().unwrap(), serial0 + 2, "{st}");
    assert!(
        b2_out.contains("No changes") || b2_out.contains("no changes"),
        "B2 planned after A finished, so it finds nothing to do:\n{b2_out}"
    );
    rig.assert_routes_to("green");
    rig.run(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_waiting_apply_plans_only_after_it_holds_the_lock() {
    let rig = Rig::start();
    rig.write(&config(&rig, "1", "0", "blue"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let serial0 = rig.state()["serial"].as_u64().unwrap();

    // A: green 2 (healthy after 2s) and the cut-over to green.
    rig.write(&config(&rig, "2", "2", "green"));
    let mut a = rig.spawn_apply("a", &[]);
    wait_for_lock(&rig, &mut a);
    // A read its configuration before it took the lock.
    // B2 (started while A runs) wants blue, idle once A is done, at release 3.
    let b2_config = format!(
        "{}{}{}",
        rig.process_env("blue", "3", &[], FAST_HEALTH),
        rig.process_env("green", "2", &["--healthy-after", "2"], FAST_HEALTH),
        rig.router("green")
    );
    rig.write(&b2_config);
    let mut b2 = rig.spawn_apply("b2", &["--lock-timeout", "15s"]);
    rig.wait_for_output(
        &mut b2,
        "b2",
        "err",
        "waiting up to 15s for the state lock held by an apply (pid",
        Duration::from_secs(10),
    );
    assert!(b2.try_wait().unwrap().is_none(), "B2 must wait for A");
    let code_a = wait_exit(&mut a, Duration::from_secs(20));
    let code_b2 = wait_exit(&mut b2, Duration::from_secs(25));
    let (a_out, a_err) = rig.output("a");
    let (b2_out, b2_err) = rig.output("b2");
    assert_eq!(code_a, 0, "A:\n{a_out}\n{a_err}");
    assert_eq!(code_b2, 0, "B2:\n{b2_out}\n{b2_err}");
    // B2 planned from the world A left (green live, blue idle): it only
    // updated blue, and cut nothing over.
    assert!(
        b2_out.contains("environment.blue") && !b2_out.contains("cutting over"),
        "B2:\n{b2_out}"
    );
    let st = rig.state();
    assert_eq!(st["environments"]["blue"]["release"], "3");
    assert_eq!(st["routers"]["public"]["live"], "green");
    assert_eq!(st["serial"].as_u64().unwrap(), serial0 + 3, "{st}");
    rig.assert_routes_to("green");
    rig.run(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_lock_left_by_a_killed_apply_is_stale_and_force_unlock_clears_it() {
    let rig = Rig::start();
    rig.write(&config(&rig, "1", "0", "blue"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let lineage = rig.state()["lineage"].clone();

    rig.write(&config(&rig, "2", "3", "green"));
    let mut a = rig.spawn_apply("a", &[]);
    let lock = wait_for_lock(&rig, &mut a);
    let id = lock["id"].as_str().unwrap().to_string();
    // Kill A during its health gate: green 2 has started (answers /healthz
    // with 503 for 3s) and been recorded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::crash::get(rig.green, "/version").1.contains("\"1\"")
        || crate::crash::get(rig.green, "/version").0 != 200
    {
        assert!(Instant::now() < deadline, "green 2 never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    rig.wait_for_output(
        &mut a,
        "a",
        "out",
        "health.green: health gate: waiting",
        Duration::from_secs(10),
    );
    assert!(a.try_wait().unwrap().is_none(), "A is still in its gate");
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap(); // reaped: its pid is gone from /proc
    assert_eq!(
        lock_id(&rig.lock_path()),
        Some(id.clone()),
        "the lock stays"
    );
    rig.assert_routes_to("blue");

    // The next apply fails, saying the holder is gone and naming the lock id.
    let run = rig
        .run(&["apply", "--auto-approve", "--lock-timeout", "1s"])
        .code(1);
    assert!(
        run.stderr.contains("stale")
            && run.stderr.contains(&format!("force-unlock {id}"))
            && run.stderr.contains(&format!("pid {}", lock["pid"])),
        "{}",
        run.stderr
    );
    // plan does not need the lock (it changes nothing).
    rig.run(&["plan"]).code(0);
    // A wrong id removes nothing.
    rig.run(&["force-unlock", "not-the-id"])
        .code(1)
        .stderr_has(&id);
    assert!(rig.lock_path().exists());
    rig.run(&["force-unlock", &id]).code(0);
    assert!(!rig.lock_path().exists());
    rig.run(&["force-unlock", &id])
        .code(1)
        .stderr_has("not locked");

    // The next apply converges from what A recorded.
    let st = rig.state();
    assert_eq!(st["lineage"], lineage);
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.run(&["plan", "--detailed-exitcode"]).code(0);
    rig.assert_routes_to("green");
    let pid = rig.state_pid("green").unwrap();
    assert_eq!(
        crate::crash::demo_pids(rig.green),
        [pid],
        "one green, the recorded one"
    );
}
