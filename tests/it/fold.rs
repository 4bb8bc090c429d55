//! Rule 8 of DESIGN.md, end to end: what the state file says is true after
//! any crash. An apply is SIGKILLed in the window where the truth is only in
//! its journal (HAProxy already switched to green, the state file still at
//! the old serial naming blue), and the next command that reads the state
//! folds the journal into the file, under the lock, or says why it cannot:
//! another live run holds the lock (nothing changes, the journal is read in
//! memory), or the lock's holder is gone (nothing changes until
//! `force-unlock ID`, which folds). Leftover temporary files of an
//! interrupted write are removed, and nothing else is.
//!
//! The window is made wide, not hoped for: the cut-over is followed by a
//! 60 s `drain` of blue (blue's release changes too), and the kill is sent
//! on the `step_started` event of `drain.public`, which the apply prints only
//! after the cut-over's journal entry is synced.

use std::path::PathBuf;

use crate::crash::{listener_pid, lock_id, JsonApply, Rig, FAST_HEALTH, LIMIT};

/// blue at `blue`, green at `green`, the router on `live` with a `drain`.
fn config(rig: &Rig, blue: &str, green: &str, live: &str, drain: &str) -> String {
    format!(
        "{}{}{}",
        rig.process_env("blue", blue, &[], FAST_HEALTH),
        rig.process_env("green", green, &[], FAST_HEALTH),
        rig.router(live).replace(
            "  haproxy {",
            &format!("  drain = \"{drain}\"\n  haproxy {{")
        )
    )
}

/// What the kill left.
struct Killed {
    /// The serial of the state file, before and after the apply's journal.
    serials: (u64, u64),
    /// The dead apply's lock id.
    lock_id: String,
    /// The state file's bytes right after the kill.
    bytes: Vec<u8>,
}

/// blue 1 and green 1 applied, blue live; then an apply of blue 2, green 2,
/// green live, running in its drain of blue (`drain`) after the cut-over.
fn apply_until_the_drain(rig: &Rig, drain: &str) -> (JsonApply, u64) {
    rig.write(&config(rig, "1", "1", "blue", drain));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let serial = rig.state()["serial"].as_u64().unwrap();
    rig.write(&config(rig, "2", "2", "green", drain));
    let mut apply = rig.spawn_apply_json("a", &[]);
    let done = apply.wait_event("cutover_done", Some("cutover.public"), LIMIT);
    assert_eq!(
        (&done["from"], &done["to"]),
        (&"blue".into(), &"green".into())
    );
    apply.wait_event("step_started", Some("drain.public"), LIMIT);
    (apply, serial)
}

/// The window itself: the router switched, the journal naming it, the state
/// file alone still at the old serial naming blue.
#[track_caller]
fn assert_in_the_window(rig: &Rig, serial: u64) {
    rig.assert_routes_to("green");
    assert_eq!(rig.journal_router_live("public").as_deref(), Some("green"));
    let st = rig.state();
    assert_eq!(st["serial"], serial, "the state file alone: {st}");
    assert_eq!(st["routers"]["public"]["live"], "blue", "{st}");
}

/// SIGKILL the apply in its drain, after the switch, and check that the
/// kill hit that window.
fn kill_just_after_the_switch(rig: &Rig) -> Killed {
    let (mut apply, serial) = apply_until_the_drain(rig, "60s");
    apply.kill_running();
    assert_in_the_window(rig, serial);
    // green's deploy and the cut-over: two records, two serials.
    Killed {
        serials: (serial, serial + 2),
        lock_id: lock_id(&rig.lock_path()).expect("the killed apply's lock stays"),
        bytes: rig.case.state_bytes().unwrap(),
    }
}

/// After the fold: the state file alone, without any journal, says what is
/// true, and with the configuration of what the killed apply got done
/// (green 2 live, blue still 1) a plan finds nothing to do.
#[track_caller]
fn assert_the_file_alone_is_the_truth(rig: &Rig, killed: &Killed) {
    let journal = rig.case.path().join("cutover.state.json.journal");
    assert!(!journal.exists(), "the fold removes the journal");
    let _ = std::fs::remove_file(&journal); // a checkout has none
    let st = rig.state();
    let public = &st["routers"]["public"];
    assert_eq!(
        (&public["live"], &public["previous"]),
        (&"green".into(), &"blue".into()),
        "{st}"
    );
    assert_eq!(st["serial"], killed.serials.1, "{st}");
    assert_eq!(st["environments"]["green"]["release"], "2", "{st}");
    let pid = rig.state_pid("green").unwrap();
    assert_eq!(
        listener_pid(rig.green, &[pid]),
        Some(pid),
        "the recorded green serves"
    );
    assert!(!rig.lock_path().exists());

    rig.write(&config(rig, "1", "2", "green", "60s"));
    rig.run(&["plan", "--detailed-exitcode"]).code(0);
    // And the whole change converges: only blue's update was left.
    rig.write(&config(rig, "2", "2", "green", "60s"));
    let apply = rig.run(&["apply", "--auto-approve"]).code(0);
    assert!(!apply.stdout.contains("cut over"), "{}", apply.stdout);
    rig.run(&["plan", "--detailed-exitcode"]).code(0);
    rig.assert_routes_to("green");
}

/// The folding message of a command.
fn folded(killed: &Killed) -> String {
    format!(
        "serial {} -> {} (environment.green, router.public)",
        killed.serials.0, killed.serials.1
    )
}

#[test]
fn a_journal_left_by_a_kill_after_the_switch_is_folded_by_the_next_plan() {
    let rig = Rig::start();
    let killed = kill_just_after_the_switch(&rig);
    // Its lock removed, as `force-unlock` did before it folded (or by hand).
    std::fs::remove_file(rig.lock_path()).unwrap();

    let plan = rig.run(&["plan"]).code(0);
    assert!(plan.stderr.contains(&folded(&killed)), "{}", plan.stderr);
    assert!(
        !plan.stdout.contains("environment.green"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("cut over"), "{}", plan.stdout);
    assert_the_file_alone_is_the_truth(&rig, &killed);
}

#[test]
fn state_check_reports_the_journal_then_folds_it() {
    let rig = Rig::start();
    let killed = kill_just_after_the_switch(&rig);
    std::fs::remove_file(rig.lock_path()).unwrap();

    let check = rig.run(&["state", "check"]).code(1);
    assert!(
        check.stdout.contains("- unfolded journal: "),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains(&folded(&killed)), "{}", check.stdout);
    assert!(
        check.stdout.contains(&format!(
            "folded now: the state file is at serial {}; commit it",
            killed.serials.1
        )),
        "{}",
        check.stdout
    );
    rig.run(&["state", "check"])
        .code(0)
        .stdout_has("OK: state ");
    assert_the_file_alone_is_the_truth(&rig, &killed);
}

#[test]
fn under_the_dead_run_s_stale_lock_nothing_is_folded_until_force_unlock() {
    let rig = Rig::start();
    let killed = kill_just_after_the_switch(&rig);
    let stale = format!("cutover force-unlock {}", killed.lock_id);

    // plan reads the journal in memory, so it does not plan green again,
    // changes nothing, and says how to clear the lock.
    let plan = rig.run(&["plan"]).code(0);
    assert!(
        plan.stderr.contains("whose process is gone"),
        "{}",
        plan.stderr
    );
    assert!(plan.stderr.contains(&stale), "{}", plan.stderr);
    assert!(
        !plan.stdout.contains("environment.green"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("cut over"), "{}", plan.stdout);
    let check = rig.run(&["state", "check"]).code(1);
    assert!(check.stdout.contains(&folded(&killed)), "{}", check.stdout);
    assert!(
        check.stdout.contains("  not folded: the lock on "),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains(&stale), "{}", check.stdout);
    assert_eq!(
        rig.case.state_bytes().unwrap(),
        killed.bytes,
        "nothing changed"
    );
    assert_in_the_window(&rig, killed.serials.0);
    // A command that needs the lock is refused, naming it stale.
    rig.run(&["apply", "--auto-approve"])
        .code(1)
        .stderr_has(&stale);

    let unlock = rig.run(&["force-unlock", &killed.lock_id]).code(0);
    assert!(
        unlock.stderr.contains(&folded(&killed)),
        "{}",
        unlock.stderr
    );
    assert_the_file_alone_is_the_truth(&rig, &killed);
}

#[test]
fn a_read_while_a_live_apply_holds_the_lock_folds_nothing_and_says_so() {
    let rig = Rig::start();
    // A 4 s drain: the reads below (about 1 s) run while the apply waits in
    // it; `assert_in_the_window` and the holder checks fail if it ended.
    let (mut apply, serial) = apply_until_the_drain(&rig, "4s");
    assert_in_the_window(&rig, serial);
    let bytes = rig.case.state_bytes().unwrap();
    // A temporary file beside the state, as the apply's own write in flight
    // would be: no read may remove it while the apply holds the lock.
    let in_flight = rig
        .case
        .path()
        .join(".cutover-state-cutover.state.json.Fl1ght.tmp");
    std::fs::write(&in_flight, "{\n  \"environments\"").unwrap();
    let holder = format!("an apply (pid {} on host ", apply.child.id());
    let journal = format!(
        "(serial {} -> {}: environment.green, router.public)",
        serial,
        serial + 2
    );

    let plan = rig.run(&["plan"]).code(0);
    assert!(plan.stderr.contains(&holder), "{}", plan.stderr);
    assert!(
        plan.stderr.contains("holds the lock on "),
        "{}",
        plan.stderr
    );
    assert!(plan.stderr.contains(&journal), "{}", plan.stderr);
    assert!(
        plan.stderr.contains("rerun when it finishes"),
        "{}",
        plan.stderr
    );
    assert!(!plan.stdout.contains("cut over"), "{}", plan.stdout);
    let show = rig.run(&["show", "--json"]).code(0);
    let shown: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(
        shown["routers"]["public"]["live"], "green",
        "the journal, in memory"
    );
    assert!(show.stderr.contains(&holder), "{}", show.stderr);
    let check = rig.run(&["state", "check"]).code(1);
    assert!(
        check.stdout.contains("  not folded: an apply (pid "),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("  left alone: an apply (pid "),
        "{}",
        check.stdout
    );
    assert!(
        in_flight.exists(),
        "a temporary file under another run's lock stays"
    );
    assert_eq!(rig.case.state_bytes().unwrap(), bytes, "nothing changed");
    assert!(rig.case.path().join("cutover.state.json.journal").exists());

    // The apply was not disturbed: it drains, updates blue, folds, ends.
    assert_eq!(apply.wait_exit(LIMIT), 0);
    let st = rig.state();
    assert_eq!(st["serial"], serial + 3, "{st}");
    assert_eq!(st["routers"]["public"]["live"], "green");
    // Now the lock is free: the next read removes the leftover.
    let plan = rig.run(&["plan", "--detailed-exitcode"]).code(0);
    assert!(
        plan.stderr.contains(&in_flight.display().to_string()),
        "{}",
        plan.stderr
    );
    assert!(!in_flight.exists());
}

#[test]
fn temporary_files_of_a_killed_write_are_removed_and_nothing_else() {
    let rig = Rig::start();
    rig.write(&config(&rig, "1", "1", "blue", "0s"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    let bytes = rig.case.state_bytes().unwrap();
    let before = rig.files();
    let dir = rig.case.path();
    // A kill during the final write leaves the temporary file, half
    // written; earlier cutovers named theirs and their probe without the
    // state's name.
    let ours = [
        ".cutover-state-cutover.state.json.K1lled.tmp",
        ".cutover-state-0ldFmt.tmp",
        ".cutover-write-check",
    ];
    let half = &bytes[..bytes.len() / 2];
    for name in ours {
        std::fs::write(dir.join(name), half).unwrap();
    }
    // Not ours: another state's temporary file, look-alikes, a symlink.
    let others = [
        ".cutover-state-staging.json.K1lled.tmp",
        ".cutover-state-notes.md",
        "notes.tmp",
    ];
    for name in others {
        std::fs::write(dir.join(name), "keep").unwrap();
    }
    std::os::unix::fs::symlink(dir.join("notes.tmp"), dir.join(".cutover-state-L1nked.tmp"))
        .unwrap();

    let plan = rig.run(&["plan", "--detailed-exitcode"]).code(0);
    let removed: Vec<PathBuf> = ours.iter().map(|n| dir.join(n)).collect();
    for path in &removed {
        assert!(!path.exists(), "{} stays", path.display());
        assert!(
            plan.stderr.contains(&path.display().to_string()),
            "{}",
            plan.stderr
        );
    }
    let mut want = before;
    want.extend(others.iter().map(|s| s.to_string()));
    want.push(".cutover-state-L1nked.tmp".into());
    want.sort();
    assert_eq!(rig.files(), want);
    assert_eq!(rig.case.state_bytes().unwrap(), bytes);
    // Nothing more to do.
    let again = rig.run(&["plan", "--detailed-exitcode"]).code(0);
    assert_eq!(again.stderr, "");
}
