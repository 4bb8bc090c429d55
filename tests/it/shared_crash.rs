//! A kill at any moment leaves a shared state valid, and a rerun converges
//! (issue 13, point 1): an apply whose state is on a git remote (a bare
//! repository over file://) or in PostgreSQL is SIGKILLed the moment it
//! prints its k-th event line, for every line but the summary. After each
//! kill, read from the backend itself: the state parses, keeps its lineage,
//! its serial never goes back; then the recovery the docs give (git:
//! `force-unlock ID`, which folds the dead run's journal; PostgreSQL:
//! nothing, the lock freed itself) and one apply converge: the router on
//! the wanted colour, one demo-app per colour, the one the state records.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::{demo_pids, Rig, LIMIT};
use crate::git_remote_support::BareRepo;
use crate::postgres_support::Postgres;

/// Where the state lives, as the test reads it.
trait Shared {
    /// The `cutover {}` block.
    fn block(&self) -> String;
    /// The state as the backend holds it (the journal not folded in).
    fn state(&self) -> Value;
    /// What the docs say to do after a holder was killed; what it printed.
    fn recover(&self, rig: &Rig) -> String;
}

struct Git(BareRepo);

impl Shared for Git {
    fn block(&self) -> String {
        format!(
            "cutover {{\n  backend \"git\" {{\n    repo = \"{}\"\n  }}\n}}\n",
            self.0.file_url()
        )
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&self.0.show("refs/heads/cutover-state:cutover.state.json"))
            .expect("the state on the branch parses")
    }

    fn recover(&self, rig: &Rig) -> String {
        if self.0.rev("refs/heads/cutover-state-lock").is_none() {
            return String::new();
        }
        let lock: Value =
            serde_json::from_slice(&self.0.show("refs/heads/cutover-state-lock:lock.json"))
                .expect("lock.json parses");
        let id = lock["id"].as_str().unwrap();
        let run = rig.run(&["force-unlock", id]).code(0);
        assert!(
            self.0.rev("refs/heads/cutover-state-lock").is_none(),
            "force-unlock removes the lock:\n{}",
            run.stderr
        );
        run.stderr
    }
}

struct Pg(Postgres);

impl Shared for Pg {
    fn block(&self) -> String {
        format!(
            "cutover {{\n  backend \"pg\" {{\n    conn_str = \"{}\"\n  }}\n}}\n",
            self.0.conn_str("cutover")
        )
    }

    fn state(&self) -> Value {
        let text = self.0.psql(
            "cutover",
            "select state from cutover_states where name = 'default'",
        );
        serde_json::from_str(&text).expect("the state in PostgreSQL parses")
    }

    fn recover(&self, _rig: &Rig) -> String {
        // The killed holder's session ended with it: no lock is left.
        assert_eq!(
            self.0.psql(
                "cutover",
                "select count(*) from pg_locks where locktype = 'advisory' and granted"
            ),
            "0",
            "the advisory lock freed itself"
        );
        String::new()
    }
}

fn write(rig: &Rig, shared: &dyn Shared, releases: &[String; 2], live: &str) {
    rig.write(&format!(
        "{}{}",
        shared.block(),
        rig.simple(&releases[0], &releases[1], live)
    ));
}

/// Converged: the router on `live`, each colour one demo-app, the one the
/// state records, answering its release.
fn converged(rig: &Rig, state: &Value, releases: &[String; 2], live: &str) -> Result<(), String> {
    for (i, colour) in ["blue", "green"].into_iter().enumerate() {
        let recorded = state["environments"][colour]["private"]["pid"].as_i64();
        let pids = demo_pids(rig.port(colour));
        if recorded.map(|p| vec![p as i32]) != Some(pids.clone()) {
            return Err(format!("{colour}: processes {pids:?}, state {recorded:?}"));
        }
        if state["environments"][colour]["release"] != releases[i].as_str() {
            return Err(format!("{colour}: state {}", state["environments"][colour]));
        }
    }
    if rig.map_runtime("public") != live || state["routers"]["public"]["live"] != live {
        return Err(format!(
            "router: {} in HAProxy, {} in the state, wanted {live}",
            rig.map_runtime("public"),
            state["routers"]["public"]
        ));
    }
    Ok(())
}

fn kill_after_every_event(shared: &dyn Shared) {
    let started = Instant::now();
    let rig = Rig::start();
    let mut releases = ["b0".to_string(), "g0".to_string()];
    let mut live = "blue";
    write(&rig, shared, &releases, live);
    rig.run(&["apply", "--auto-approve"]).code(0);
    let lineage = shared.state()["lineage"].clone();
    let mut serial = shared.state()["serial"].as_u64().unwrap();

    // One uninterrupted run of the kind killed below, to count its lines.
    let flip = |run: usize, releases: &mut [String; 2], live: &mut &'static str| {
        *live = if *live == "blue" { "green" } else { "blue" };
        releases[usize::from(*live == "green")] = format!("r{run}");
    };
    flip(0, &mut releases, &mut live);
    write(&rig, shared, &releases, live);
    let mut full = rig.spawn_apply_json("full", &[]);
    assert_eq!(full.wait_exit(LIMIT), 0);
    let lines = full.seen.len() - 1;

    let mut problems = Vec::new();
    let mut landed = 0;
    for k in 1..=lines {
        flip(k, &mut releases, &mut live);
        write(&rig, shared, &releases, live);
        let mut apply = rig.spawn_apply_json(&format!("run{k}"), &[]);
        let mut count = 0;
        apply.wait_for(&format!("event line {k}"), LIMIT, |_| {
            count += 1;
            count == k
        });
        let pid = apply.child.id();
        let killed = apply.kill();
        landed += usize::from(killed);
        // What a SIGKILLed git run cannot remove itself.
        crate::git_backend::remove_scratch_of(pid);
        let at = format!("kill after line {k} ({})", apply.seen[k - 1]["type"]);

        // What the backend holds now, before anything reads it again.
        let state = shared.state();
        let now = state["serial"].as_u64().unwrap_or(0);
        if state["lineage"] != lineage {
            problems.push(format!(
                "{at}: lineage {} is not {lineage}",
                state["lineage"]
            ));
        }
        if now < serial {
            problems.push(format!("{at}: serial went back from {serial} to {now}"));
        }
        serial = serial.max(now);

        let recovered = shared.recover(&rig);
        let run = rig.run(&["apply", "--auto-approve"]);
        let state = shared.state();
        if run.code != 0 {
            problems.push(format!("{at}: the next apply failed: {}", run.stderr));
        } else if let Err(e) = converged(&rig, &state, &releases, live) {
            problems.push(format!("{at} (killed: {killed}; {recovered}): {e}"));
        }
        serial = serial.max(state["serial"].as_u64().unwrap_or(0));
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "too slow at line {k}"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The kills hit running applies (the last lines come just before the
    // end, where a kill may find it finished).
    assert!(
        landed + 2 >= lines,
        "only {landed} of {lines} kills hit a running apply"
    );
}

// Slow by nature (10-15 s each here): a dozen real applies, each killed at
// one more event line, each followed by the recovery and a converging apply.
#[test]
fn git_a_kill_after_any_event_leaves_the_state_valid_and_the_next_apply_converges() {
    kill_after_every_event(&Git(BareRepo::new()));
}

#[test]
fn pg_a_kill_after_any_event_leaves_the_state_valid_and_the_next_apply_converges() {
    let pg = Postgres::start();
    pg.create_db("cutover");
    kill_after_every_event(&Pg(pg));
}
