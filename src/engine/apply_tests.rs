//! The apply driver end to end against the in-memory world: the steps run
//! for real (health gates over HTTP to the test's own server), the state is
//! written to a temporary directory, and the tests assert what happened in
//! what order (the world's log and the events), not only where it ended.

use std::sync::{Arc, Mutex};

use super::*;
use crate::engine::error::ErrorKind;
use crate::engine::observer::{Event, Observer};
use crate::engine::testing::{colour, config, router, World};
use crate::plan::saved::Planned;

/// Collects every event; can wake a test when a step starts.
#[derive(Default)]
struct Events {
    seen: Mutex<Vec<Event>>,
    started: Mutex<Option<tokio::sync::mpsc::UnboundedSender<String>>>,
}

impl Observer for Events {
    fn event(&self, event: &Event) {
        if let Event::StepStarted { id, .. } = event {
            if let Some(tx) = &*self.started.lock().unwrap() {
                let _ = tx.send(id.to_string());
            }
        }
        self.seen.lock().unwrap().push(event.clone());
    }
}

impl Events {
    /// `started X` / `finished X ok|KIND` / `switched back R` lines.
    fn lines(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::StepStarted { id, .. } => Some(format!("started {id}")),
                Event::StepFinished { id, error, .. } => Some(format!(
                    "finished {id} {}",
                    error.as_ref().map_or("ok", |e| e.kind.as_str())
                )),
                Event::SwitchedBack { router, to } => Some(format!("switched back {router} {to}")),
                Event::RouterWaiting { router, .. } => Some(format!("waiting for {router}")),
                Event::SwitchBackRefused { router, .. } => {
                    Some(format!("not switched back {router}"))
                }
                _ => None,
            })
            .collect()
    }
}

/// A world, its health server, a state directory.
struct Case {
    world: World,
    port: u16,
    dir: tempfile::TempDir,
}

impl Case {
    async fn new() -> Case {
        let world = World::default();
        let port = world.serve().await;
        Case {
            world,
            port,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state_path(&self) -> std::path::PathBuf {
        self.dir.path().join("cutover.state.json")
    }

    fn state(&self) -> State {
        crate::state::load(&self.state_path()).unwrap().unwrap()
    }

    /// Plan `hcl` against the world, and apply it; the report and events.
    async fn apply(&self, hcl: &str) -> (ApplyReport, Arc<Events>) {
        let events = Arc::new(Events::default());
        let report = self.apply_with(hcl, events.clone(), never_stop()).await;
        (report, events)
    }

    async fn apply_with(&self, hcl: &str, events: Arc<Events>, stop: StopReceiver) -> ApplyReport {
        let config = config(hcl);
        let engine = self.world.engine();
        let state = crate::state::load(&self.state_path()).unwrap();
        let planned = engine.plan(&config, state.as_ref()).await.unwrap();
        let state = state.unwrap_or_else(crate::state::new_state);
        engine
            .apply_at(&planned, state, &self.state_path(), events, stop)
            .await
            .unwrap()
    }

    fn hcl(&self, colours: &[(&str, &str)], routers: &[(&str, &str)]) -> String {
        let mut hcl = String::new();
        for (c, release) in colours {
            hcl.push_str(&colour(c, release, self.port));
        }
        for (r, live) in routers {
            hcl.push_str(&router(r, live));
        }
        hcl
    }
}

#[tokio::test]
async fn a_cutover_runs_its_gate_first_and_records_the_way_back() {
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.run("green", "1");
    case.world.route("public", "blue");
    let hcl = case.hcl(&[("blue", "1"), ("green", "2")], &[("public", "green")]);
    let (report, events) = case.apply(&hcl).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(case.world.log(), ["deploy green 2", "switch public green"]);
    assert_eq!(
        events.lines(),
        [
            "started environment.green",
            "finished environment.green ok",
            "started health.green",
            "finished health.green ok",
            "started cutover.public",
            "finished cutover.public ok",
        ]
    );
    let state = case.state();
    let public = &state.routers["public"];
    assert_eq!(public.live.as_deref(), Some("green"));
    assert_eq!(public.previous.as_deref(), Some("blue"));
    assert_eq!(state.environments["green"].release, "2");
    assert_eq!(report.serial, state.serial);
}

#[tokio::test]
async fn a_failed_change_of_the_drained_colour_leaves_traffic_on_the_gated_colour() {
    // The acceptance run's outage: blue's new release exits at once after
    // the cut-over took blue's traffic away. Switching back to blue would
    // send users to a stopped process.
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.run("green", "1");
    case.world.route("public", "blue");
    case.world.lock().fail_deploy.insert("blue".into());
    let hcl = case.hcl(&[("blue", "2"), ("green", "1")], &[("public", "green")]);
    let (report, events) = case.apply(&hcl).await;
    // Blue changes once the router counts no stream to it (`settle.blue`).
    assert_eq!(
        case.world.log(),
        [
            "switch public green",
            "sessions public blue 0",
            "deploy blue 2"
        ]
    );
    assert_eq!(case.world.lock().routers["public"], "green");
    let (failed, error) = report.failed.clone().unwrap();
    assert_eq!(failed.to_string(), "environment.blue");
    assert_eq!(error.kind, ErrorKind::Failed);
    assert!(report.reverted.is_empty(), "{report:?}");
    assert!(
        !events.lines().iter().any(|l| l.contains("switched back")),
        "{:?}",
        events.lines()
    );
    assert!(matches!(
        &report.way_back[..],
        [crate::engine::walk::WayBack::Broken { colour, .. }] if colour == "blue"
    ));
    // The state says the truth: green is live, and blue (stopped) is gone.
    let state = case.state();
    assert_eq!(state.routers["public"].live.as_deref(), Some("green"));
    assert!(!state.environments.contains_key("blue"), "{state:?}");
}

#[tokio::test]
async fn a_failed_switch_of_one_router_switches_the_other_back() {
    let case = Case::new().await;
    for c in ["blue", "green", "red"] {
        case.world.run(c, "1");
    }
    case.world.route("a", "blue");
    case.world.route("b", "blue");
    case.world.lock().fail_switch.insert("b".into());
    let hcl = case.hcl(
        &[("blue", "1"), ("green", "1"), ("red", "1")],
        &[("a", "green"), ("b", "red")],
    );
    let (report, events) = case.apply(&hcl).await;
    let switches: Vec<String> = case
        .world
        .log()
        .into_iter()
        .filter(|l| l.starts_with("switch"))
        .collect();
    // The two cut-overs run concurrently; the switch back comes after both.
    let mut both = switches[..2].to_vec();
    both.sort();
    assert_eq!(both, ["switch a green", "switch b red"]);
    assert_eq!(switches[2..], ["switch a blue"]);
    assert_eq!(case.world.lock().routers["a"], "blue");
    assert_eq!(report.reverted, [("a".to_owned(), "blue".to_owned())]);
    assert!(events.lines().contains(&"switched back a blue".to_owned()));
    assert_eq!(case.state().routers["a"].live.as_deref(), Some("blue"));
}

#[tokio::test]
async fn no_switch_back_to_a_colour_that_is_no_longer_what_served() {
    let case = Case::new().await;
    for c in ["blue", "green", "red"] {
        case.world.run(c, "1");
    }
    case.world.route("a", "blue");
    case.world.route("b", "blue");
    let hcl = case.hcl(
        &[("blue", "2"), ("green", "1"), ("red", "1")],
        &[("a", "blue"), ("b", "blue")],
    );
    // A first apply deploys blue and records it (with --allow-live-changes:
    // blue serves both routers).
    let engine = case.world.engine();
    let mut allowing = engine.clone();
    allowing.options.allow_live_changes = true;
    let planned = allowing.plan(&config(&hcl), None).await.unwrap();
    let report = allowing
        .apply_at(
            &planned,
            crate::state::new_state(),
            &case.state_path(),
            Arc::new(Events::default()),
            never_stop(),
        )
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(case.state().environments.contains_key("blue"));
    // Blue is restarted behind cutover's back after the plan was made:
    // its identity is no longer the one that served.
    let config = config(&case.hcl(
        &[("blue", "2"), ("green", "1"), ("red", "1")],
        &[("a", "green"), ("b", "red")],
    ));
    let state = case.state();
    let planned = engine.plan(&config, Some(&state)).await.unwrap();
    case.world.run("blue", "2");
    case.world.lock().fail_switch.insert("b".into());
    let events = Arc::new(Events::default());
    let report = engine
        .apply_at(
            &planned,
            state,
            &case.state_path(),
            events.clone(),
            never_stop(),
        )
        .await
        .unwrap();
    assert_eq!(case.world.lock().routers["a"], "green", "a stays on green");
    assert!(report.reverted.is_empty());
    let (router, why) = &report.revert_failed[0];
    assert_eq!(router, "a");
    assert!(why.contains("no longer what served"), "{why}");
    assert!(events.lines().contains(&"not switched back a".to_owned()));
}

#[tokio::test]
async fn a_panic_in_a_provider_is_a_failed_step_and_the_rules_still_hold() {
    let case = Case::new().await;
    for c in ["blue", "green", "red"] {
        case.world.run(c, "1");
    }
    case.world.route("a", "blue");
    case.world.route("b", "blue");
    case.world.lock().panic_switch.insert("b".into());
    let hcl = case.hcl(
        &[("blue", "1"), ("green", "1"), ("red", "1")],
        &[("a", "green"), ("b", "red")],
    );
    let (report, _) = case.apply(&hcl).await;
    let (failed, error) = report.failed.clone().unwrap();
    assert_eq!(failed.to_string(), "cutover.b");
    assert_eq!(error.kind, ErrorKind::Panicked);
    assert!(
        error.message.contains("the `exec` provider panicked")
            && error.message.contains("panicked on purpose"),
        "{error}"
    );
    assert_eq!(report.reverted, [("a".to_owned(), "blue".to_owned())]);
    assert_eq!(case.world.lock().routers["a"], "blue");
    // The journal was folded: the state file alone says where a is.
    assert_eq!(case.state().routers["a"].live.as_deref(), Some("blue"));
    assert!(!crate::state::journal::path_for(&case.state_path()).exists());
}

#[tokio::test]
async fn a_stop_asked_during_a_gate_stops_it_at_once_and_switches_nothing() {
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.run("green", "1");
    case.world.route("public", "blue");
    case.world.lock().unhealthy.insert("green".into());
    // A gate that would wait a minute: only the stop ends it.
    let hcl = case
        .hcl(&[("blue", "1"), ("green", "1")], &[("public", "green")])
        .replace(r#"timeout  = "300ms""#, r#"timeout  = "60s""#);
    let events = Arc::new(Events::default());
    let (tx_started, mut started) = tokio::sync::mpsc::unbounded_channel();
    *events.started.lock().unwrap() = Some(tx_started);
    let (tx, rx) = tokio::sync::watch::channel(StopRequest::None);
    let apply = case.apply_with(&hcl, events.clone(), rx);
    let signal = async {
        while let Some(id) = started.recv().await {
            if id == "health.green" {
                tx.send(StopRequest::Finish("SIGINT")).unwrap();
                return;
            }
        }
    };
    let (report, ()) = tokio::join!(apply, signal);
    assert_eq!(report.stopped_by, Some("SIGINT"));
    assert_eq!(report.interrupted.len(), 1, "{report:?}");
    assert_eq!(report.interrupted[0].to_string(), "health.green");
    assert_eq!(report.not_run[0].to_string(), "cutover.public");
    assert!(case.world.log().is_empty(), "{:?}", case.world.log());
    assert_eq!(case.world.lock().routers["public"], "blue");
}

#[tokio::test]
async fn a_failed_step_stops_the_gates_that_run_at_once() {
    let case = Case::new().await;
    for colour in ["blue", "green", "red"] {
        case.world.run(colour, "1");
    }
    case.world.route("public", "red");
    // Idle blue's change fails at once; green's gate would wait a minute.
    case.world.lock().unhealthy.insert("green".into());
    case.world.lock().fail_deploy.insert("blue".into());
    let hcl = case
        .hcl(
            &[("blue", "2"), ("green", "1"), ("red", "1")],
            &[("public", "green")],
        )
        .replace(r#"timeout  = "300ms""#, r#"timeout  = "60s""#);
    let started = std::time::Instant::now();
    let (report, _) = case.apply(&hcl).await;
    let failed = report.failed.as_ref().map(|(id, _)| id.to_string());
    assert_eq!(failed.as_deref(), Some("environment.blue"), "{report:?}");
    let interrupted: Vec<String> = report.interrupted.iter().map(|i| i.to_string()).collect();
    assert_eq!(interrupted, ["health.green"], "{report:?}");
    assert_eq!(report.not_run[0].to_string(), "cutover.public");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the apply waited out green's gate after blue failed: {:?}",
        started.elapsed()
    );
    assert_eq!(case.world.lock().routers["public"], "red");
}

#[tokio::test]
async fn rollback_is_a_plan_the_walk_runs_and_marks_the_router() {
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.run("green", "1");
    case.world.route("public", "blue");
    let hcl = case.hcl(&[("blue", "1"), ("green", "1")], &[("public", "green")]);
    let (report, _) = case.apply(&hcl).await;
    assert!(report.is_complete());
    let engine = case.world.engine();
    let state = case.state();
    let config = config(&hcl);
    let planned: Planned = engine
        .rollback_plan(&config, &state, &["public".to_owned()])
        .await
        .unwrap();
    let ids: Vec<String> = planned
        .document
        .steps
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(ids, ["health.blue", "cutover.public"]);
    let events = Arc::new(Events::default());
    let report = engine
        .apply_at(&planned, state, &case.state_path(), events, never_stop())
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(case.world.lock().routers["public"], "blue");
    let public = &case.state().routers["public"];
    assert_eq!(public.live.as_deref(), Some("blue"));
    assert_eq!(public.previous.as_deref(), Some("green"));
    assert!(public.rolled_back);
}

/// Found by the chaos bench (seed 41, step 173): an apply killed between
/// its switch and the state's write leaves the router on green, its
/// persisted copy and the state on blue. The next apply's repair switch
/// (green to green) must record blue, where the traffic came from, as the
/// way back, not green itself.
#[tokio::test]
async fn a_repair_switch_after_a_lost_record_keeps_the_way_back() {
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.run("green", "1");
    case.world.route("public", "green");
    let to_blue = case.hcl(&[("blue", "1"), ("green", "1")], &[("public", "blue")]);
    let (report, _) = case.apply(&to_blue).await;
    assert!(report.is_complete(), "{report:?}");
    let public = &case.state().routers["public"];
    assert_eq!(
        (public.live.as_deref(), public.previous.as_deref()),
        (Some("blue"), Some("green"))
    );
    // The killed apply's switch: the router moved, nothing else did.
    case.world.route("public", "green");
    case.world
        .lock()
        .persisted_differs
        .insert("public".to_owned());
    case.world.lock().log.clear();
    let to_green = case.hcl(&[("blue", "1"), ("green", "1")], &[("public", "green")]);
    let (report, events) = case.apply(&to_green).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(case.world.log(), ["switch public green"]);
    assert_eq!(
        events.lines(),
        [
            "started health.green",
            "finished health.green ok",
            "started cutover.public",
            "finished cutover.public ok",
        ]
    );
    let public = &case.state().routers["public"];
    assert_eq!(
        (public.live.as_deref(), public.previous.as_deref()),
        (Some("green"), Some("blue"))
    );
    // A repair with the state already on green keeps the way back too.
    case.world
        .lock()
        .persisted_differs
        .insert("public".to_owned());
    let (report, _) = case.apply(&to_green).await;
    assert!(report.is_complete(), "{report:?}");
    let public = &case.state().routers["public"];
    assert_eq!(
        (public.live.as_deref(), public.previous.as_deref()),
        (Some("green"), Some("blue"))
    );
}

#[tokio::test]
async fn a_switch_waits_for_the_routers_own_check_then_switches() {
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.run("green", "1");
    case.world.route("public", "blue");
    case.world.lock().not_ready.insert("public".into(), 2);
    let hcl = case.hcl(&[("blue", "1"), ("green", "1")], &[("public", "green")]);
    let (report, events) = case.apply(&hcl).await;
    assert!(report.is_complete(), "{report:?}");
    // The switch is tried (not ready: nothing changes), the read-only
    // preflight asked until the router is ready, then the switch made.
    assert_eq!(
        case.world.log(),
        [
            "not ready: switch public green",
            "preflight public green",
            "preflight public green",
            "switch public green"
        ]
    );
    let lines = events.lines();
    let waited = lines
        .iter()
        .position(|l| l == "waiting for public")
        .unwrap();
    let done = lines
        .iter()
        .position(|l| l == "finished cutover.public ok")
        .unwrap();
    assert!(waited < done, "{lines:?}");
}

#[tokio::test]
async fn a_router_not_ready_within_its_ready_timeout_refuses_the_switch() {
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.run("green", "1");
    case.world.route("public", "blue");
    case.world
        .lock()
        .not_ready
        .insert("public".into(), usize::MAX);
    let hcl = case
        .hcl(&[("blue", "1"), ("green", "1")], &[("public", "green")])
        .replace(
            "live = environment.green",
            "live = environment.green\n  ready_timeout = \"600ms\"",
        );
    let (report, _) = case.apply(&hcl).await;
    let (failed, error) = report.failed.unwrap();
    assert_eq!(failed.to_string(), "cutover.public");
    assert_eq!(error.kind, ErrorKind::NotReady);
    assert!(
        error.message.contains("after waiting") && error.message.contains("green/s1 is DOWN 1/2"),
        "{error}"
    );
    assert!(!case.world.log().iter().any(|l| l.starts_with("switch")));
    assert_eq!(case.world.lock().routers["public"], "blue");
}

#[tokio::test]
async fn a_panic_after_the_switch_keeps_its_record_and_the_rules_switch_it_back() {
    let case = Case::new().await;
    for c in ["blue", "green", "red"] {
        case.world.run(c, "1");
    }
    case.world.route("a", "blue");
    case.world.route("b", "blue");
    case.world.lock().panic_after_switch.insert("b".into());
    let hcl = case.hcl(
        &[("blue", "1"), ("green", "1"), ("red", "1")],
        &[("a", "green"), ("b", "red")],
    );
    let (report, _) = case.apply(&hcl).await;
    assert_eq!(report.failed.unwrap().1.kind, ErrorKind::Panicked);
    let mut back = report.reverted.clone();
    back.sort();
    assert_eq!(
        back,
        [
            ("a".to_owned(), "blue".to_owned()),
            ("b".to_owned(), "blue".to_owned())
        ],
        "b did switch before it panicked: it goes back too"
    );
    assert_eq!(case.world.lock().routers["b"], "blue");
    assert_eq!(case.state().routers["b"].live.as_deref(), Some("blue"));
}

#[tokio::test]
async fn no_secret_in_the_report_of_a_cutover_with_a_drained_change() {
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.run("green", "1");
    case.world.route("public", "blue");
    let hcl = format!(
        "variable \"build\" {{\n  sensitive = true\n  default   = \"s3cr3t-77\"\n}}\n{}",
        case.hcl(&[("blue", "1"), ("green", "1")], &[("public", "green")])
            .replacen(r#"release  = "1""#, r#"release  = "2+${var.build}""#, 1)
    );
    let config = config(&hcl);
    let mut engine = case.world.engine();
    engine.secrets = crate::plan::sensitive::Secrets::new(&config);
    let planned = engine.plan(&config, None).await.unwrap();
    let report = engine
        .apply_at(
            &planned,
            crate::state::new_state(),
            &case.state_path(),
            Arc::new(Events::default()),
            never_stop(),
        )
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(!report.way_back.is_empty());
    let shown = format!("{report:?}");
    assert!(!shown.contains("s3cr3t-77"), "{shown}");
}

#[tokio::test]
async fn a_colour_changed_before_the_switch_while_it_served_is_still_a_way_back() {
    // Blue serves a and c; a moves to green and b to red, c stays on blue,
    // and blue gets a new release in place (--allow-live-changes): blue's
    // new process is what serves (through c) when b fails. a goes back.
    let case = Case::new().await;
    for c in ["blue", "green", "red"] {
        case.world.run(c, "1");
    }
    for r in ["a", "b", "c"] {
        case.world.route(r, "blue");
    }
    let first = case.hcl(
        &[("blue", "1"), ("green", "1"), ("red", "1")],
        &[("a", "blue"), ("b", "blue"), ("c", "blue")],
    );
    let (report, _) = case.apply(&first).await;
    assert!(report.is_complete(), "{report:?}");
    case.world.lock().fail_switch.insert("b".into());
    let next = case.hcl(
        &[("blue", "2"), ("green", "1"), ("red", "1")],
        &[("a", "green"), ("b", "red"), ("c", "blue")],
    );
    let mut engine = case.world.engine();
    engine.options.allow_live_changes = true;
    let state = case.state();
    let planned = engine.plan(&config(&next), Some(&state)).await.unwrap();
    let report = engine
        .apply_at(
            &planned,
            state,
            &case.state_path(),
            Arc::new(Events::default()),
            never_stop(),
        )
        .await
        .unwrap();
    assert_eq!(report.failed.unwrap().0.to_string(), "cutover.b");
    assert_eq!(
        report.reverted,
        [("a".to_owned(), "blue".to_owned())],
        "{:?}",
        report.revert_failed
    );
    assert_eq!(case.world.lock().routers["a"], "blue");
}

#[tokio::test]
async fn rollback_refuses_at_once_when_the_previous_colour_does_not_run() {
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.run("green", "1");
    case.world.route("public", "blue");
    case.world.lock().fail_deploy.insert("blue".into());
    let hcl = case.hcl(&[("blue", "2"), ("green", "1")], &[("public", "green")]);
    let (report, _) = case.apply(&hcl).await;
    assert_eq!(report.failed.unwrap().0.to_string(), "environment.blue");
    let err = case
        .world
        .engine()
        .rollback_plan(&config(&hcl), &case.state(), &[])
        .await
        .expect_err("no way back");
    assert!(
        err.to_string()
            .contains("router.public would roll back to blue, but environment.blue is not running"),
        "{err}"
    );
}

/// The local file, whose [`Backend::confirm`] fails from its `fail_from`-th
/// call on: a shared backend that became unreachable mid-apply.
struct Unreachable {
    file: crate::state::backend::LocalFile,
    calls: std::sync::atomic::AtomicUsize,
    fail_from: usize,
}

impl crate::state::backend::Backend for Unreachable {
    fn kind(&self) -> &'static str {
        "test"
    }
    fn describe(&self) -> String {
        self.file.describe()
    }
    fn journal_name(&self) -> String {
        self.file.journal_name()
    }
    fn read_state(&self) -> Result<Option<State>, StateError> {
        self.file.read_state()
    }
    fn read_journal(&self) -> Result<Option<String>, StateError> {
        self.file.read_journal()
    }
    fn write_state(
        &self,
        lock: &Lock,
        expected: Option<&crate::state::backend::Stamp>,
        state: &State,
    ) -> Result<(), StateError> {
        self.file.write_state(lock, expected, state)
    }
    fn stored_size(&self) -> u64 {
        self.file.stored_size()
    }
    fn append_journal(&self, lock: &Lock, bytes: &[u8], fresh: bool) -> Result<(), StateError> {
        self.file.append_journal(lock, bytes, fresh)
    }
    fn discard_journal(&self, lock: &Lock) -> Result<(), StateError> {
        self.file.discard_journal(lock)
    }
    fn check_writable(&self, lock: &Lock) -> Result<(), String> {
        self.file.check_writable(lock)
    }
    fn confirm(&self, _lock: &Lock) -> Result<(), StateError> {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if call >= self.fail_from {
            return Err(StateError::Backend {
                state: self.describe(),
                message: "unreachable".into(),
            });
        }
        Ok(())
    }
    fn lock(
        &self,
        operation: &str,
        timeout: std::time::Duration,
        waiting: &mut dyn FnMut(&crate::state::LockInfo),
    ) -> Result<Lock, crate::state::LockError> {
        self.file.lock(operation, timeout, waiting)
    }
    fn read_lock(&self) -> Result<Option<crate::state::LockInfo>, crate::state::LockError> {
        self.file.read_lock()
    }
    fn force_unlock(&self, id: &str) -> Result<crate::state::LockInfo, crate::state::LockError> {
        self.file.force_unlock(id)
    }
}

async fn apply_unreachable_from(
    case: &Case,
    hcl: &str,
    fail_from: usize,
) -> (ApplyReport, Arc<Events>) {
    use crate::state::backend::Backend as _;
    let engine = case.world.engine();
    let planned = engine.plan(&config(hcl), None).await.unwrap();
    let backend = Unreachable {
        file: crate::state::backend::LocalFile::new(case.state_path()),
        calls: Default::default(),
        fail_from,
    };
    let lock = backend
        .lock("apply", std::time::Duration::ZERO, &mut |_| {})
        .unwrap();
    let events = Arc::new(Events::default());
    let report = engine
        .apply(
            &planned,
            crate::state::new_state(),
            &backend,
            &lock,
            events.clone(),
            never_stop(),
        )
        .await
        .unwrap();
    (report, events)
}

#[tokio::test]
async fn once_the_state_cannot_be_written_nothing_live_moves() {
    // Unreachable before the first change: nothing is deployed.
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.route("public", "blue");
    let hcl = case.hcl(&[("blue", "1"), ("green", "2")], &[("public", "green")]);
    let (report, events) = apply_unreachable_from(&case, &hcl, 1).await;
    assert!(case.world.log().is_empty(), "{:?}", case.world.log());
    assert!(events.lines().is_empty(), "{:?}", events.lines());
    assert!(report
        .state_error
        .as_deref()
        .unwrap()
        .contains("unreachable"));

    // Unreachable after the deploy and its gate: the cut-over never starts,
    // so traffic stays on blue and nothing is switched back either.
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.route("public", "blue");
    let hcl = case.hcl(&[("blue", "1"), ("green", "2")], &[("public", "green")]);
    let (report, events) = apply_unreachable_from(&case, &hcl, 2).await;
    assert_eq!(case.world.log(), ["deploy green 2"]);
    assert_eq!(
        events.lines(),
        [
            "started environment.green",
            "finished environment.green ok",
            "started health.green",
            "finished health.green ok",
        ]
    );
    let not_run: Vec<String> = report.not_run.iter().map(ToString::to_string).collect();
    assert_eq!(not_run, ["cutover.public"]);
    assert!(report.reverted.is_empty(), "{report:?}");
    assert_eq!(case.world.lock().routers["public"], "blue");
}

/// Blue live on `public`, both colours running release 1, the
/// configuration naming green: the plan a `plan --gates` reviewer sees.
async fn ready_to_switch(case: &Case) -> (Planned, Engine) {
    case.world.run("blue", "1");
    case.world.run("green", "1");
    case.world.route("public", "blue");
    let hcl = case.hcl(&[("blue", "1"), ("green", "1")], &[("public", "green")]);
    let engine = case.world.engine();
    let planned = engine.plan(&config(&hcl), None).await.unwrap();
    (planned, engine)
}

#[tokio::test]
async fn readiness_runs_the_gate_read_only_and_an_unhealthy_colour_is_not_ready() {
    use crate::plan::document::{CheckOutcome, Outcome, Verdict};
    let case = Case::new().await;
    let (mut planned, engine) = ready_to_switch(&case).await;
    engine.check_readiness(&mut planned, &|_| {}).await;
    let r = &planned.document.readiness;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0].router.as_str(), r[0].target.as_str()),
        ("public", "green")
    );
    assert_eq!(r[0].verdict, Verdict::Ready);
    let gate = &r[0].checks[0];
    assert_eq!(
        (gate.step.to_string(), gate.outcome, gate.value.as_deref()),
        ("health.green".to_owned(), CheckOutcome::Passed, Some("1/1"))
    );
    assert_eq!(planned.document.summary.outcome, Outcome::Cutover);

    case.world.lock().unhealthy.insert("green".into());
    let (mut planned, engine) = ready_to_switch(&case).await;
    engine.check_readiness(&mut planned, &|_| {}).await;
    let r = &planned.document.readiness[0];
    assert_eq!(r.verdict, Verdict::NotReady);
    assert_eq!(
        (r.checks[0].outcome, r.checks[0].value.as_deref()),
        (CheckOutcome::Failed, Some("status 500"))
    );
    assert_eq!(planned.document.summary.outcome, Outcome::NotReady);
    // Read-only: nothing deployed, nothing switched.
    assert!(case.world.log().is_empty(), "{:?}", case.world.log());
    assert_eq!(case.world.lock().routers["public"], "blue");
}

#[tokio::test]
async fn a_check_that_passed_at_plan_time_is_run_again_and_its_failure_says_so() {
    let case = Case::new().await;
    let (mut planned, engine) = ready_to_switch(&case).await;
    engine.check_readiness(&mut planned, &|_| {}).await;
    assert!(planned.document.readiness[0].checks[0].passed());
    // Green goes bad between the plan and the apply.
    case.world.lock().unhealthy.insert("green".into());
    let events = Arc::new(Events::default());
    let state = crate::state::new_state();
    let report = engine
        .apply_at(
            &planned,
            state,
            &case.state_path(),
            events.clone(),
            never_stop(),
        )
        .await
        .unwrap();
    let (failed, error) = report.failed.clone().expect("the gate failed");
    assert_eq!(failed.to_string(), "health.green");
    let at = &planned.document.readiness[0].checked_at;
    assert!(
        error
            .message
            .ends_with(&format!("(it passed at plan time, {at}: 1/1)")),
        "{}",
        error.message
    );
    assert_eq!(
        events.lines(),
        ["started health.green", "finished health.green gate_failed"]
    );
    assert!(case.world.log().is_empty(), "{:?}", case.world.log());
    assert_eq!(case.world.lock().routers["public"], "blue");
}

/// A world of routers `a`, `b`, `c` on blue, whose backend switches in
/// batches; the configuration sends them all to green.
async fn batched_case() -> (Case, String) {
    let case = Case::new().await;
    case.world.run("blue", "1");
    case.world.run("green", "1");
    for r in ["a", "b", "c"] {
        case.world.route(r, "blue");
    }
    case.world.lock().batches = true;
    let hcl = case.hcl(
        &[("blue", "1"), ("green", "1")],
        &[("a", "green"), ("b", "green"), ("c", "green")],
    );
    (case, hcl)
}

/// The lines of the world's log that switch or batch.
fn switching(world: &World) -> Vec<String> {
    world
        .log()
        .into_iter()
        .filter(|l| l.starts_with("batch") || l.contains("switch"))
        .collect()
}

#[tokio::test]
async fn cut_overs_ready_together_go_to_the_router_in_one_batch_each_its_own_step() {
    let (case, hcl) = batched_case().await;
    let events = Arc::new(Events::default());
    let mut engine = case.world.engine();
    // Fewer than the batch: the batch is one call to the router.
    engine.parallelism = 2;
    let planned = engine.plan(&config(&hcl), None).await.unwrap();
    let report = engine
        .apply_at(
            &planned,
            crate::state::new_state(),
            &case.state_path(),
            events.clone(),
            never_stop(),
        )
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        switching(&case.world),
        [
            "batch a b c",
            "switch a green",
            "switch b green",
            "switch c green"
        ]
    );
    // Each cut-over is its own step, started after the gate, all before
    // the first one finishes.
    let lines = events.lines();
    let gate = lines
        .iter()
        .position(|l| l == "finished health.green ok")
        .unwrap();
    let started: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("started cutover."))
        .collect();
    assert_eq!(
        started,
        [
            "started cutover.a",
            "started cutover.b",
            "started cutover.c"
        ]
    );
    let first_start = lines
        .iter()
        .position(|l| l.starts_with("started cutover."))
        .unwrap();
    let last_start = lines
        .iter()
        .rposition(|l| l.starts_with("started cutover."))
        .unwrap();
    let first_finish = lines
        .iter()
        .position(|l| l.starts_with("finished cutover."))
        .unwrap();
    assert!(gate < first_start && last_start < first_finish, "{lines:?}");
    let mut finished: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("finished cutover."))
        .collect();
    finished.sort();
    assert_eq!(
        finished,
        [
            "finished cutover.a ok",
            "finished cutover.b ok",
            "finished cutover.c ok"
        ]
    );
    let state = case.state();
    for r in ["a", "b", "c"] {
        assert_eq!(state.routers[r].live.as_deref(), Some("green"), "{r}");
        assert_eq!(state.routers[r].previous.as_deref(), Some("blue"), "{r}");
    }
}

#[tokio::test]
async fn a_refused_switch_in_a_batch_fails_its_step_and_the_others_go_back() {
    let (case, hcl) = batched_case().await;
    case.world.lock().fail_switch.insert("b".into());
    let (report, events) = case.apply(&hcl).await;
    let (failed, error) = report.failed.clone().unwrap();
    assert_eq!(failed.to_string(), "cutover.b");
    assert_eq!(error.kind, ErrorKind::Refused, "{error}");
    // The batch switched a and c; b's refusal sends them back, after it.
    let log = switching(&case.world);
    assert_eq!(
        log[..4],
        [
            "batch a b c",
            "switch a green",
            "switch b green",
            "switch c green"
        ]
    );
    // Back in one batch too.
    let mut batch: Vec<&str> = log[4].split(' ').collect();
    batch.sort();
    assert_eq!(batch, ["a", "batch", "c"], "{log:?}");
    let mut back = log[5..].to_vec();
    back.sort();
    assert_eq!(back, ["switch a blue", "switch c blue"]);
    let mut reverted = report.reverted.clone();
    reverted.sort();
    assert_eq!(
        reverted,
        [
            ("a".to_owned(), "blue".to_owned()),
            ("c".to_owned(), "blue".to_owned())
        ]
    );
    assert!(events
        .lines()
        .contains(&"finished cutover.b refused".to_owned()));
    for r in ["a", "b", "c"] {
        assert_eq!(case.world.lock().routers[r], "blue", "{r}");
    }
    // b never moved, so it has no record yet; a and c are recorded back.
    let state = case.state();
    assert!(!state.routers.contains_key("b"), "{state:?}");
    for r in ["a", "c"] {
        assert_eq!(state.routers[r].live.as_deref(), Some("blue"), "{r}");
    }
}

#[tokio::test]
async fn a_router_not_ready_in_its_batch_waits_then_switches_alone() {
    let (case, hcl) = batched_case().await;
    case.world.lock().not_ready.insert("c".into(), 1);
    let (report, _) = case.apply(&hcl).await;
    assert!(report.is_complete(), "{report:?}");
    let log: Vec<String> = case
        .world
        .log()
        .into_iter()
        .filter(|l| l.starts_with("batch") || l.contains("switch") || l.starts_with("preflight"))
        .collect();
    assert_eq!(
        log,
        [
            "batch a b c",
            "switch a green",
            "switch b green",
            "not ready: switch c green",
            "preflight c green",
            "switch c green"
        ]
    );
    assert_eq!(case.state().routers["c"].live.as_deref(), Some("green"));
}

#[tokio::test]
async fn a_batch_whose_leader_panics_after_switching_sends_every_router_of_it_back() {
    let (case, hcl) = batched_case().await;
    // The leader (a, the first ready) makes the batch's call: it switches
    // a, then panics; b and c never hear the router's answer.
    case.world.lock().panic_after_switch.insert("a".into());
    let (report, events) = case.apply(&hcl).await;
    let (_, error) = report.failed.clone().unwrap();
    assert!(
        matches!(error.kind, ErrorKind::Panicked | ErrorKind::Failed),
        "{error}"
    );
    let lines = events.lines();
    for r in ["a", "b", "c"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("finished cutover.{r} ")) && !l.ends_with(" ok")),
            "{r}: {lines:?}"
        );
    }
    let log = switching(&case.world);
    assert_eq!(log[..2], ["batch a b c", "switch a green"]);
    // Maybe switched, all three: each goes back, in one batch.
    let mut batch: Vec<&str> = log[2].split(' ').collect();
    batch.sort();
    assert_eq!(batch, ["a", "b", "batch", "c"], "{log:?}");
    let mut back = log[3..].to_vec();
    back.sort();
    assert_eq!(back, ["switch a blue", "switch b blue", "switch c blue"]);
    for r in ["a", "b", "c"] {
        assert_eq!(case.world.lock().routers[r], "blue", "{r}");
        assert_eq!(case.state().routers[r].live.as_deref(), Some("blue"), "{r}");
    }
}

#[tokio::test]
async fn a_cut_over_whose_gate_failed_is_in_no_batch() {
    let (case, hcl) = batched_case().await;
    case.world.lock().unhealthy.insert("green".into());
    let (report, _) = case.apply(&hcl).await;
    assert!(report.failed.is_some(), "{report:?}");
    assert_eq!(switching(&case.world), Vec::<String>::new());
}

#[tokio::test]
async fn when_a_verify_in_a_batch_fails_the_cut_overs_waiting_to_verify_stop_at_once() {
    let (case, hcl) = batched_case().await;
    // Every router verifies through red, which does not run: each verify
    // would fail after 300 ms. One verifies at a time (parallelism 1).
    let hcl = hcl.replace(
        "    switch = [\"switch\"]\n  }\n",
        &format!(
            "    switch = [\"switch\"]\n  }}\n  verify {{\n    url      = \"http://127.0.0.1:{}/red\"\n    interval = \"10ms\"\n    timeout  = \"300ms\"\n  }}\n",
            case.port
        ),
    );
    assert_eq!(hcl.matches("verify {").count(), 3, "{hcl}");
    let events = Arc::new(Events::default());
    let mut engine = case.world.engine();
    engine.parallelism = 1;
    let planned = engine.plan(&config(&hcl), None).await.unwrap();
    let report = engine
        .apply_at(
            &planned,
            crate::state::new_state(),
            &case.state_path(),
            events.clone(),
            never_stop(),
        )
        .await
        .unwrap();
    let mut ends: Vec<String> = events
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("finished cutover."))
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect();
    ends.sort();
    // The first verify failed; the two waiting for their turn did not run
    // theirs, one after the other, while traffic sat on green.
    assert_eq!(
        ends,
        ["interrupted", "interrupted", "verify_failed"],
        "{:?}",
        events.lines()
    );
    let mut back = report.reverted.clone();
    back.sort();
    assert_eq!(
        back,
        [
            ("a".to_owned(), "blue".to_owned()),
            ("b".to_owned(), "blue".to_owned()),
            ("c".to_owned(), "blue".to_owned())
        ]
    );
    for r in ["a", "b", "c"] {
        assert_eq!(case.world.lock().routers[r], "blue", "{r}");
    }
}
