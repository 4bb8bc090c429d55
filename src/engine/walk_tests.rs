//! The walk's rules, one test each (DESIGN.md §3), on plans the planner
//! made from HCL, with outcomes handed in by hand: no provider runs here.

use super::*;
use crate::engine::testing::{colour, config, router};
use crate::plan::Live;
use crate::state::model::EnvironmentState;
use cutover_provider::{LiveEnvironment, LiveRouter};

/// A store that only logs: `record ...` and `sync` lines.
#[derive(Default)]
struct LogStore(Vec<String>);

impl Store for LogStore {
    fn record(&mut self, entry: Entry, state: &mut State) -> bool {
        self.0.push(format!("record {entry:?}"));
        entry.apply_to(state)
    }
    fn sync(&mut self, _: &mut State) -> Result<bool, StateError> {
        self.0.push("sync".into());
        Ok(true)
    }
}

/// The plan of `hcl` against colours running `running` and routers on
/// `routed`, with no state.
fn plan(hcl: &str, running: &[(&str, &str)], routed: &[(&str, &str)]) -> PlanDocument {
    let config = config(hcl);
    let mut live = Live::default();
    for (i, (c, release)) in running.iter().enumerate() {
        let env = LiveEnvironment {
            exists: true,
            release: Some((*release).into()),
            identity: Some(i.to_string()),
            ..Default::default()
        };
        live.environments.insert((*c).into(), env);
    }
    for (r, c) in routed {
        let router = LiveRouter {
            live: Some((*c).into()),
            ..Default::default()
        };
        live.routers.insert((*r).into(), router);
    }
    crate::plan::plan(&config, None, &live).expect("the test's plan")
}

/// Green (release 2) goes live on `public`; blue, drained, gets release 2
/// after the cut-over.
fn blue_to_green() -> PlanDocument {
    let hcl = [
        colour("blue", "2", 1),
        colour("green", "2", 2),
        router("public", "green"),
    ]
    .concat();
    plan(
        &hcl,
        &[("blue", "1"), ("green", "1")],
        &[("public", "blue")],
    )
}

/// Two routers switch: `a` from blue to green, `b` from blue to red.
fn two_routers() -> PlanDocument {
    let hcl = [
        colour("blue", "1", 1),
        colour("green", "2", 2),
        colour("red", "2", 3),
        router("a", "green"),
        router("b", "red"),
    ]
    .concat();
    plan(
        &hcl,
        &[("blue", "1"), ("green", "1"), ("red", "1")],
        &[("a", "blue"), ("b", "blue")],
    )
}

fn id(text: &str) -> StepId {
    text.parse().unwrap()
}

fn new_walk(doc: &PlanDocument) -> Walk {
    Walk::new(doc, crate::state::new_state()).unwrap()
}

/// Start the next step, which must be `expected`.
#[track_caller]
fn start(walk: &mut Walk, expected: &str) -> usize {
    let s = walk
        .start_next()
        .unwrap_or_else(|| panic!("{expected} should start"));
    assert_eq!(s.step.id.to_string(), expected);
    s.index
}

fn switched(router: &str, to: &str) -> Outcome {
    let rec = RouterState {
        backend: "exec".into(),
        live: Some(to.into()),
        previous: Some("blue".into()),
        preview: None,
        rolled_back: false,
    };
    Outcome {
        records: vec![Entry::Router(router.into(), Some(rec))],
        switched: true,
        error: None,
    }
}

fn failure(kind: ErrorKind) -> Outcome {
    Outcome::failed(StepError::new(kind, "it failed"))
}

#[test]
fn the_planner_orders_blue_to_green_as_the_rules_say() {
    let ids: Vec<String> = blue_to_green()
        .steps
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "environment.green",
            "health.green",
            "cutover.public",
            "environment.blue"
        ]
    );
}

#[test]
fn a_step_starts_only_after_the_records_it_depends_on_are_durable() {
    let doc = blue_to_green();
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    let green = start(&mut walk, "environment.green");
    assert!(walk.start_next().is_none(), "the gate waits for the change");
    let deployed = EnvironmentState {
        backend: "process".into(),
        release: "2".into(),
        endpoints: vec![],
        settings: Value::Null,
        identity: None,
        private: Value::Null,
    };
    walk.complete(
        green,
        Outcome::ok(vec![Entry::Environment("green".into(), Some(deployed))]),
    );
    assert!(
        walk.start_next().is_none(),
        "finished is not enough: its record is not durable yet"
    );
    walk.persist(&mut store).unwrap();
    assert_eq!(store.0.len(), 2);
    assert!(store.0[0].starts_with("record Environment(\"green\""));
    assert_eq!(store.0[1], "sync");
    start(&mut walk, "health.green");
}

#[test]
fn a_switch_waits_for_every_step_before_the_switches() {
    let doc = two_routers();
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    let green = start(&mut walk, "environment.green");
    let red = start(&mut walk, "environment.red");
    walk.complete(green, Outcome::ok(vec![]));
    walk.persist(&mut store).unwrap();
    let gate = start(&mut walk, "health.green");
    walk.complete(gate, Outcome::ok(vec![]));
    walk.persist(&mut store).unwrap();
    assert!(
        walk.start_next().is_none(),
        "cutover.a must not start while environment.red is still changing"
    );
    walk.complete(red, Outcome::ok(vec![]));
    walk.persist(&mut store).unwrap();
    let gate = start(&mut walk, "health.red");
    walk.complete(gate, Outcome::ok(vec![]));
    walk.persist(&mut store).unwrap();
    start(&mut walk, "cutover.a");
    start(&mut walk, "cutover.b");
}

#[test]
fn a_drained_colour_changes_only_after_every_switch() {
    let hcl = [
        colour("blue", "2", 1),
        colour("green", "1", 2),
        colour("red", "1", 3),
        router("a", "green"),
        router("b", "red"),
    ]
    .concat();
    let doc = plan(
        &hcl,
        &[("blue", "1"), ("green", "1"), ("red", "1")],
        &[("a", "blue"), ("b", "blue")],
    );
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    for gate in ["health.green", "health.red"] {
        let i = start(&mut walk, gate);
        walk.complete(i, Outcome::ok(vec![]));
    }
    walk.persist(&mut store).unwrap();
    let a = start(&mut walk, "cutover.a");
    let b = start(&mut walk, "cutover.b");
    walk.complete(a, switched("a", "green"));
    walk.persist(&mut store).unwrap();
    assert!(
        walk.start_next().is_none(),
        "environment.blue must wait for cutover.b too"
    );
    walk.complete(b, switched("b", "red"));
    walk.persist(&mut store).unwrap();
    start(&mut walk, "environment.blue");
}

#[test]
fn a_switch_whose_gate_did_not_pass_in_this_apply_is_refused_at_the_switch() {
    // A plan whose cut-over lost its gate (edited by hand): validate()
    // refuses it, and the walk itself refuses the switch even so.
    let mut doc = blue_to_green();
    doc.steps.retain(|s| s.id != id("health.green"));
    for s in &mut doc.steps {
        s.depends_on.retain(|d| *d != id("health.green"));
    }
    assert!(matches!(
        Walk::new(&doc, crate::state::new_state()),
        Err(Invalid {
            problem: crate::plan::validate::Problem::UngatedCutover(_),
            ..
        })
    ));
    let mut walk = Walk::unchecked(&doc, crate::state::new_state());
    let mut store = LogStore::default();
    let green = start(&mut walk, "environment.green");
    walk.complete(green, Outcome::ok(vec![]));
    walk.persist(&mut store).unwrap();
    assert!(walk.start_next().is_none(), "the switch must not start");
    let (report, _) = walk.finish(Default::default());
    let (failed, error) = report.failed.unwrap();
    assert_eq!(failed, id("cutover.public"));
    assert_eq!(error.kind, ErrorKind::Invalid);
    assert!(error
        .message
        .contains("health.green has not passed in this apply"));
    assert_eq!(report.not_run, [id("environment.blue")]);
}

#[test]
fn nothing_new_starts_after_a_failure() {
    let doc = two_routers();
    let mut walk = new_walk(&doc);
    // Only green started (as with --parallelism 1): red is ready too.
    let green = start(&mut walk, "environment.green");
    walk.complete(green, failure(ErrorKind::Failed));
    walk.persist(&mut LogStore::default()).unwrap();
    assert!(
        walk.start_next().is_none(),
        "red must not start after the failure"
    );
    assert!(walk.reverts().is_empty(), "no switch happened");
    let (report, _) = walk.finish(Default::default());
    assert!(report.not_run.contains(&id("environment.red")));
}

#[test]
fn a_failed_switch_switches_back_the_routers_this_apply_moved() {
    let doc = two_routers();
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    for step in ["environment.green", "environment.red"] {
        let i = start(&mut walk, step);
        walk.complete(i, Outcome::ok(vec![]));
    }
    walk.persist(&mut store).unwrap();
    for step in ["health.green", "health.red"] {
        let i = start(&mut walk, step);
        walk.complete(i, Outcome::ok(vec![]));
    }
    walk.persist(&mut store).unwrap();
    let a = start(&mut walk, "cutover.a");
    let b = start(&mut walk, "cutover.b");
    walk.complete(a, switched("a", "green"));
    walk.complete(b, failure(ErrorKind::Refused));
    walk.persist(&mut store).unwrap();
    let reverts = walk.reverts();
    assert_eq!(reverts.len(), 1, "{reverts:?}");
    assert_eq!(
        (
            reverts[0].router.as_str(),
            reverts[0].from.as_str(),
            reverts[0].to.as_str()
        ),
        ("a", "green", "blue")
    );
    walk.reverted(&reverts[0], Ok(vec![]));
    assert!(walk.reverts().is_empty(), "a router goes back once");
    let (report, _) = walk.finish(Default::default());
    assert_eq!(report.reverted, [("a".to_owned(), "blue".to_owned())]);
    assert!(
        report.way_back.is_empty(),
        "nothing is left on a new colour"
    );
}

#[test]
fn a_failed_verify_switches_its_own_router_back() {
    let doc = blue_to_green();
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    for step in ["environment.green", "health.green"] {
        let i = start(&mut walk, step);
        walk.complete(i, Outcome::ok(vec![]));
        walk.persist(&mut store).unwrap();
    }
    let cut = start(&mut walk, "cutover.public");
    let mut outcome = switched("public", "green");
    outcome.error = Some(StepError::new(ErrorKind::VerifyFailed, "verify failed"));
    walk.complete(cut, outcome);
    walk.persist(&mut store).unwrap();
    let reverts = walk.reverts();
    assert_eq!(reverts.len(), 1);
    assert_eq!(reverts[0].to, "blue");
    assert!(
        walk.start_next().is_none(),
        "environment.blue does not change"
    );
}

#[test]
fn a_failure_after_the_switch_never_sends_traffic_back() {
    // The outage the acceptance run found: blue's change fails after the
    // cut-over took its traffic away; switching back to blue, just
    // stopped, would send users to nothing.
    let doc = blue_to_green();
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    for step in ["environment.green", "health.green"] {
        let i = start(&mut walk, step);
        walk.complete(i, Outcome::ok(vec![]));
        walk.persist(&mut store).unwrap();
    }
    let cut = start(&mut walk, "cutover.public");
    walk.complete(cut, switched("public", "green"));
    walk.persist(&mut store).unwrap();
    let blue = start(&mut walk, "environment.blue");
    walk.complete(blue, failure(ErrorKind::Failed));
    walk.persist(&mut store).unwrap();
    assert!(walk.reverts().is_empty());
    let (report, _) = walk.finish(Default::default());
    assert_eq!(report.failed.unwrap().0, id("environment.blue"));
    assert!(report.reverted.is_empty());
    assert!(matches!(
        &report.way_back[..],
        [WayBack::Broken { router, colour, .. }] if router == "public" && colour == "blue"
    ));
}

#[test]
fn a_stop_asked_by_a_signal_starts_nothing_new_and_switches_nothing_back() {
    let doc = two_routers();
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    let green = start(&mut walk, "environment.green");
    walk.stop("SIGINT", false);
    walk.complete(green, Outcome::ok(vec![]));
    walk.persist(&mut store).unwrap();
    assert!(walk.start_next().is_none());
    assert!(walk.reverts().is_empty());
    let (report, _) = walk.finish(Default::default());
    assert_eq!(report.stopped_by, Some("SIGINT"));
    assert_eq!(report.done, [id("environment.green")]);
    assert!(report.not_run.contains(&id("cutover.a")));
    assert!(!report.is_complete());
}

#[test]
fn a_step_whose_dependency_never_finishes_is_reported_not_run() {
    let mut doc = blue_to_green();
    doc.steps[1].depends_on.push(id("environment.nowhere"));
    assert!(Walk::new(&doc, crate::state::new_state()).is_err());
    let mut walk = Walk::unchecked(&doc, crate::state::new_state());
    let green = start(&mut walk, "environment.green");
    walk.complete(green, Outcome::ok(vec![]));
    walk.persist(&mut LogStore::default()).unwrap();
    assert!(walk.start_next().is_none());
    assert!(!walk.is_complete());
    let (report, _) = walk.finish(Default::default());
    assert!(report.failed.is_none());
    assert_eq!(
        report.not_run,
        [
            id("health.green"),
            id("cutover.public"),
            id("environment.blue")
        ]
    );
    assert!(
        !report.is_complete(),
        "an apply that skipped steps is not complete"
    );
}

#[test]
fn the_way_back_names_the_release_the_drained_colour_runs_after_the_apply() {
    let doc = blue_to_green();
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    for step in ["environment.green", "health.green"] {
        let i = start(&mut walk, step);
        walk.complete(i, Outcome::ok(vec![]));
        walk.persist(&mut store).unwrap();
    }
    let cut = start(&mut walk, "cutover.public");
    walk.complete(cut, switched("public", "green"));
    walk.persist(&mut store).unwrap();
    let blue = start(&mut walk, "environment.blue");
    walk.complete(blue, Outcome::ok(vec![]));
    walk.persist(&mut store).unwrap();
    assert!(walk.is_complete());
    let (report, _) = walk.finish(Default::default());
    assert_eq!(
        report.way_back,
        [WayBack::To {
            router: "public".into(),
            colour: "blue".into(),
            release: Some("2".into())
        }]
    );
}

/// Blue drained by both a (with a drain) and b; the drain depends on a
/// only, so only the phase barrier keeps it from starting while b switches.
fn two_routers_one_drain() -> PlanDocument {
    let hcl = [
        colour("blue", "2", 1),
        colour("green", "1", 2),
        colour("red", "1", 3),
        router("a", "green").replace(
            "live = environment.green",
            "live = environment.green\n  drain = \"5s\"",
        ),
        router("b", "red"),
    ]
    .concat();
    plan(
        &hcl,
        &[("blue", "1"), ("green", "1"), ("red", "1")],
        &[("a", "blue"), ("b", "blue")],
    )
}

#[test]
fn nothing_after_the_switches_starts_while_a_switch_still_runs() {
    let doc = two_routers_one_drain();
    let drain = doc.steps.iter().find(|s| s.id == id("drain.a")).unwrap();
    assert_eq!(
        drain.depends_on,
        [id("cutover.a")],
        "only a's cut-over by its edges"
    );
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    for gate in ["health.green", "health.red"] {
        let i = start(&mut walk, gate);
        walk.complete(i, Outcome::ok(vec![]));
    }
    walk.persist(&mut store).unwrap();
    let a = start(&mut walk, "cutover.a");
    let b = start(&mut walk, "cutover.b");
    walk.complete(a, switched("a", "green"));
    walk.persist(&mut store).unwrap();
    assert!(
        walk.start_next().is_none(),
        "drain.a must wait for cutover.b"
    );
    walk.complete(b, switched("b", "red"));
    walk.persist(&mut store).unwrap();
    start(&mut walk, "drain.a");
}

/// The walk of two_routers() up to both cut-overs started.
fn at_the_switches(doc: &PlanDocument) -> (Walk, LogStore, usize, usize) {
    let mut walk = new_walk(doc);
    let mut store = LogStore::default();
    for step in ["environment.green", "environment.red"] {
        let i = start(&mut walk, step);
        walk.complete(i, Outcome::ok(vec![]));
    }
    walk.persist(&mut store).unwrap();
    for step in ["health.green", "health.red"] {
        let i = start(&mut walk, step);
        walk.complete(i, Outcome::ok(vec![]));
    }
    walk.persist(&mut store).unwrap();
    let a = start(&mut walk, "cutover.a");
    let b = start(&mut walk, "cutover.b");
    (walk, store, a, b)
}

#[test]
fn a_signal_during_the_switches_switches_back_those_that_moved_unless_it_is_the_second() {
    let doc = two_routers();
    let (mut walk, mut store, a, b) = at_the_switches(&doc);
    walk.complete(a, switched("a", "green"));
    walk.stop("SIGINT", false);
    walk.complete(
        b,
        Outcome::failed(StepError::new(ErrorKind::Interrupted, "stopped")),
    );
    walk.persist(&mut store).unwrap();
    let reverts = walk.reverts();
    assert_eq!(reverts.len(), 1, "all routers or none: a goes back");
    assert_eq!(
        (reverts[0].router.as_str(), reverts[0].to.as_str()),
        ("a", "blue")
    );

    let (mut walk, mut store, a, b) = at_the_switches(&doc);
    walk.complete(a, switched("a", "green"));
    walk.stop("SIGINT", true);
    walk.complete(
        b,
        Outcome::failed(StepError::new(ErrorKind::Interrupted, "stopped")),
    );
    walk.persist(&mut store).unwrap();
    assert!(walk.reverts().is_empty(), "a second signal stops at once");
}

#[test]
fn a_state_that_cannot_be_written_after_the_switches_moves_nothing_live() {
    let doc = two_routers();
    let (mut walk, mut store, a, b) = at_the_switches(&doc);
    walk.complete(a, switched("a", "green"));
    walk.stop_for_state();
    walk.complete(b, switched("b", "red"));
    walk.persist(&mut store).unwrap();
    assert!(walk.start_next().is_none(), "nothing new starts");
    // Both routers are on the colours that passed their gates: all moved,
    // so nothing is switched back for a state that cannot record it.
    assert!(walk.reverts().is_empty(), "{:?}", walk.reverts());
}

#[test]
fn a_state_that_cannot_be_written_between_the_switches_sends_the_moved_ones_back() {
    let doc = two_routers();
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    for step in ["environment.green", "environment.red"] {
        let i = start(&mut walk, step);
        walk.complete(i, Outcome::ok(vec![]));
    }
    walk.persist(&mut store).unwrap();
    for step in ["health.green", "health.red"] {
        let i = start(&mut walk, step);
        walk.complete(i, Outcome::ok(vec![]));
    }
    walk.persist(&mut store).unwrap();
    let a = start(&mut walk, "cutover.a");
    walk.complete(a, switched("a", "green"));
    walk.stop_for_state();
    walk.persist(&mut store).unwrap();
    // cutover.b never starts: one router moved and the other cannot, so
    // the one that moved goes back (all or nothing, rule 4).
    assert!(walk.start_next().is_none());
    let back: Vec<String> = walk.reverts().iter().map(|r| r.router.clone()).collect();
    assert_eq!(back, ["a"]);
}

#[test]
fn a_cutover_cut_short_after_its_switch_keeps_its_record_and_is_switched_back() {
    let doc = two_routers();
    let (mut walk, mut store, a, b) = at_the_switches(&doc);
    walk.complete(a, switched("a", "green"));
    // b switched, then panicked in its verify: its slot holds the record.
    let slot = SwitchSlot::default();
    *slot.lock().unwrap() = Switching {
        attempted: true,
        record: switched("b", "red").records.pop(),
    };
    let error = StepError::new(ErrorKind::Panicked, "the provider panicked");
    walk.complete(b, Outcome::cut_short(error, Some(&slot)));
    walk.persist(&mut store).unwrap();
    assert_eq!(
        walk.state().routers["b"].live.as_deref(),
        Some("red"),
        "recorded"
    );
    let mut back: Vec<String> = walk.reverts().iter().map(|r| r.router.clone()).collect();
    back.sort();
    assert_eq!(back, ["a", "b"]);
}

/// Two routers switch (as [`two_routers`]); `a` has a test, a `before`
/// analysis, an approval and an `after` analysis.
fn two_routers_with_checks() -> PlanDocument {
    let checked = r#"
router "a" {
  live = environment.green
  exec {
    read   = ["read"]
    switch = ["switch"]
  }
  test "smoke" {
    command = ["smoke"]
    workdir = "/"
  }
  analysis "errors" {
    prometheus = "http://127.0.0.1:9090"
    query      = "errors"
    max        = 0.01
  }
  analysis "after" {
    prometheus = "http://127.0.0.1:9090"
    query      = "errors"
    max        = 0.01
    when       = "after"
  }
  pause_before_cutover = true
}
"#;
    let hcl = [
        colour("blue", "1", 1),
        colour("green", "2", 2),
        colour("red", "2", 3),
        checked.to_owned(),
        router("b", "red"),
    ]
    .concat();
    plan(
        &hcl,
        &[("blue", "1"), ("green", "1"), ("red", "1")],
        &[("a", "blue"), ("b", "blue")],
    )
}

/// Run the walk wave by wave, every started step ending as `outcome`
/// says, until a cut-over starts (returned, still running) or nothing
/// more starts.
fn run_until_a_switch(
    walk: &mut Walk,
    store: &mut LogStore,
    outcome: &dyn Fn(&str) -> Outcome,
) -> Vec<(String, usize)> {
    loop {
        let mut started = Vec::new();
        while let Some(s) = walk.start_next() {
            started.push((s.step.id.to_string(), s.index));
        }
        if started.is_empty() || started.iter().any(|(id, _)| id.starts_with("cutover.")) {
            return started;
        }
        for (id, i) in &started {
            walk.complete(*i, outcome(id));
        }
        walk.persist(store).unwrap();
    }
}

fn ok(_: &str) -> Outcome {
    Outcome::ok(vec![])
}

#[test]
fn a_switch_whose_test_or_approval_did_not_pass_in_this_apply_is_refused_at_the_switch() {
    // A plan whose cut-over lost its edge to one of its router's checks
    // (edited by hand): validate() refuses it, and the walk refuses the
    // switch even so when that check did not pass (stopped half-way).
    for check in ["test.a.smoke", "approve.a", "analysis.a.errors"] {
        let mut doc = two_routers_with_checks();
        for s in &mut doc.steps {
            s.depends_on.retain(|d| *d != id(check));
        }
        assert!(
            Walk::new(&doc, crate::state::new_state()).is_err(),
            "{check}"
        );
        let mut walk = Walk::unchecked(&doc, crate::state::new_state());
        let mut store = LogStore::default();
        let started = run_until_a_switch(&mut walk, &mut store, &|step| {
            if step == check {
                Outcome::failed(StepError::new(ErrorKind::Interrupted, "stopped"))
            } else {
                Outcome::ok(vec![])
            }
        });
        let names: Vec<&str> = started.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["cutover.b"], "{check}: cutover.a must not start");
        let (report, _) = walk.finish(Default::default());
        let (failed, error) = report.failed.unwrap();
        assert_eq!(failed, id("cutover.a"), "{check}");
        assert_eq!(error.kind, ErrorKind::Invalid);
        assert!(
            error
                .message
                .contains(&format!("{check} has not passed in this apply")),
            "{check}: {}",
            error.message
        );
    }
}

#[test]
fn a_failed_test_or_before_analysis_keeps_every_router_where_it_was() {
    for failing in ["test.a.smoke", "analysis.a.errors"] {
        let doc = two_routers_with_checks();
        let mut walk = new_walk(&doc);
        let mut store = LogStore::default();
        let started = run_until_a_switch(&mut walk, &mut store, &|step| {
            if step == failing {
                failure(ErrorKind::TestFailed)
            } else {
                Outcome::ok(vec![])
            }
        });
        assert!(started.is_empty(), "{failing}: nothing switches");
        assert!(
            walk.reverts().is_empty(),
            "{failing}: nothing to switch back"
        );
        let (report, _) = walk.finish(Default::default());
        assert_eq!(report.failed.unwrap().0, id(failing));
        for never in ["approve.a", "cutover.a", "cutover.b", "analysis.a.after"] {
            assert!(report.not_run.contains(&id(never)), "{failing}: {never}");
        }
    }
}

/// Run the plan with checks up to its two switches, made.
fn switched_with_checks() -> (Walk, LogStore) {
    let doc = two_routers_with_checks();
    let mut walk = new_walk(&doc);
    let mut store = LogStore::default();
    let mut started = run_until_a_switch(&mut walk, &mut store, &ok);
    started.sort();
    let names: Vec<&str> = started.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["cutover.a", "cutover.b"]);
    walk.complete(started[0].1, switched("a", "green"));
    walk.persist(&mut store).unwrap();
    assert!(
        walk.start_next().is_none(),
        "the after analysis waits for every switch, b's too"
    );
    walk.complete(started[1].1, switched("b", "red"));
    walk.persist(&mut store).unwrap();
    (walk, store)
}

#[test]
fn an_after_analysis_starts_once_every_switch_is_made_and_its_failure_sends_all_back() {
    let (mut walk, mut store) = switched_with_checks();
    let after = start(&mut walk, "analysis.a.after");
    assert!(
        walk.reverts().is_empty(),
        "nothing goes back while it measures"
    );
    walk.complete(after, failure(ErrorKind::GateFailed));
    walk.persist(&mut store).unwrap();
    let mut back: Vec<(String, String)> = walk
        .reverts()
        .iter()
        .map(|r| (r.router.clone(), r.to.clone()))
        .collect();
    back.sort();
    assert_eq!(
        back,
        [("a".into(), "blue".into()), ("b".into(), "blue".into())],
        "all or nothing (rule 4)"
    );
    // Both targets got their release in this apply: once left, neither is
    // a way back.
    assert!(walk.reverts().iter().all(|r| r.target_changed));
}

#[test]
fn a_signal_while_an_after_analysis_measures_sends_the_moved_routers_back() {
    let (mut walk, _) = switched_with_checks();
    let after = start(&mut walk, "analysis.a.after");
    walk.stop("SIGTERM", false);
    walk.complete(
        after,
        Outcome::failed(StepError::new(ErrorKind::Interrupted, "stopped")),
    );
    assert_eq!(walk.reverts().len(), 2, "the switch is not found right yet");
}

#[test]
fn a_cut_over_taken_into_a_batch_is_refused_when_its_gate_did_not_pass() {
    // cutover.b lost its gate (a plan edited by hand): taken with cutover.a
    // into one batch (`start_next_if`, engine::batch), it is refused all
    // the same, and nothing more joins the batch.
    let mut doc = two_routers();
    doc.steps.retain(|s| s.id != id("health.red"));
    for s in &mut doc.steps {
        s.depends_on.retain(|d| *d != id("health.red"));
    }
    let mut walk = Walk::unchecked(&doc, crate::state::new_state());
    let mut store = LogStore::default();
    let green = start(&mut walk, "environment.green");
    let red = start(&mut walk, "environment.red");
    walk.complete(green, Outcome::ok(vec![]));
    walk.persist(&mut store).unwrap();
    let gate = start(&mut walk, "health.green");
    walk.complete(gate, Outcome::ok(vec![]));
    walk.persist(&mut store).unwrap();
    // cutover.a is ready first; cutover.b once red is done.
    walk.complete(red, Outcome::ok(vec![]));
    walk.persist(&mut store).unwrap();
    start(&mut walk, "cutover.a");
    let cutover = |s: &Step| matches!(s.kind, StepKind::Cutover { .. });
    assert!(
        walk.start_next_if(cutover).is_none(),
        "cutover.b must not join"
    );
    let (report, _) = walk.finish(Default::default());
    let (failed, error) = report.failed.unwrap();
    assert_eq!(failed, id("cutover.b"));
    assert_eq!(error.kind, ErrorKind::Invalid);
    assert!(
        error
            .message
            .contains("health.red has not passed in this apply"),
        "{error}"
    );
}
