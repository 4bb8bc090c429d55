//! The drain against the in-memory router, whose count of open sessions is
//! scripted read by read: when the loop ends (idle, at its maximum, by
//! time), what it told the observer, in what order, and, through a whole
//! apply, that the drained colour changes only after the drain.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover_provider::Colours;

use super::*;
use crate::engine::testing::{colour, config, World};

/// Every event, in order.
#[derive(Default)]
struct Seen(Mutex<Vec<Event>>);

impl Observer for Seen {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Seen {
    /// `waiting N`, `unreadable ERROR`, `ended END`, `started ID`,
    /// `finished ID`, in order.
    fn lines(&self) -> Vec<String> {
        let line = |e: &Event| match e {
            Event::DrainWaiting { sessions, .. } => Some(format!("waiting {sessions}")),
            Event::DrainUnreadable { error, .. } => Some(format!("unreadable {error}")),
            Event::DrainEnded { end, .. } => Some(format!("ended {}", end.as_str())),
            Event::StepStarted { id, .. } => Some(format!("started {id}")),
            Event::StepFinished { id, .. } => Some(format!("finished {id}")),
            _ => None,
        };
        self.0.lock().unwrap().iter().filter_map(line).collect()
    }
}

fn spec() -> RouterSpec {
    let blue = Colour {
        name: "blue".into(),
        endpoints: vec!["127.0.0.1:1".into()],
    };
    RouterSpec::new(
        "public",
        Colours::new(vec![blue]),
        serde_json::json!({}),
        "/",
    )
}

/// Drain blue of router `public` for at most `most`: how it ended, what it
/// told, how long it took.
async fn drain(world: &World, most: Duration) -> (DrainEnd, Vec<String>, Duration) {
    let provider = world.engine().providers.router("exec").unwrap();
    let seen = Seen::default();
    let started = Instant::now();
    let drained = ("public", "blue");
    let step = StepId::Drain("public".into());
    let end = until_idle_or(provider.as_ref(), &spec(), &step, drained, most, &seen).await;
    (end, seen.lines(), started.elapsed())
}

#[tokio::test]
async fn a_drain_ends_as_soon_as_the_colour_has_no_open_sessions() {
    let world = World::default();
    world.sessions("blue", &[Ok(3), Ok(3), Ok(2), Ok(0)]);
    let (end, told, took) = drain(&world, Duration::from_secs(30)).await;
    assert_eq!(end, DrainEnd::Idle);
    // Told as the count changes, not at every read.
    assert_eq!(told, ["waiting 3", "waiting 2"]);
    assert_eq!(
        world.log(),
        [
            "sessions public blue 3",
            "sessions public blue 3",
            "sessions public blue 2",
            "sessions public blue 0",
        ]
    );
    // Three pauses between four reads, and nowhere near the maximum.
    assert!(took >= DRAIN_POLL * 3, "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn a_drain_with_no_open_session_ends_at_once() {
    let world = World::default();
    world.sessions("blue", &[Ok(0)]);
    let (end, told, took) = drain(&world, Duration::from_secs(30)).await;
    assert_eq!((end, told), (DrainEnd::Idle, vec![]));
    assert_eq!(world.log(), ["sessions public blue 0"]);
    assert!(took < DRAIN_POLL, "it paused: {took:?}");
}

#[tokio::test]
async fn a_drain_ends_at_its_maximum_with_sessions_still_open() {
    let world = World::default();
    world.sessions("blue", &[Ok(1)]);
    let most = Duration::from_millis(1300);
    let (end, told, took) = drain(&world, most).await;
    assert_eq!(
        end,
        DrainEnd::Maximum {
            sessions: Some(1),
            error: None
        }
    );
    // An unchanged count is told again about every second, no more often.
    assert!(
        (1..=2).contains(&told.len()) && told.iter().all(|l| l == "waiting 1"),
        "{told:?}"
    );
    assert!(
        took >= most && took < most + Duration::from_secs(2),
        "{took:?}"
    );
    assert!(world.log().len() >= 2, "asked once only: {:?}", world.log());
    let warning = end
        .warning(&StepId::Drain("public".into()), "blue")
        .unwrap();
    assert_eq!(
        warning,
        "1 session was still open to blue at the drain's maximum; going on, so a change of blue may cut it"
    );
}

#[tokio::test]
async fn a_count_that_cannot_be_read_is_asked_again_until_the_maximum() {
    let world = World::default();
    let gone = Err("the runtime API is gone");
    world.sessions("blue", &[gone, Ok(2), gone]);
    let (end, told, took) = drain(&world, Duration::from_millis(1200)).await;
    let DrainEnd::Maximum {
        sessions: None,
        error: Some(error),
    } = &end
    else {
        panic!("{end:?}")
    };
    assert!(error.contains("the runtime API is gone"), "{error}");
    // A new failure is told at once; the same one again only after a second.
    assert_eq!(
        told,
        [
            format!("unreadable {error}"),
            "waiting 2".to_owned(),
            format!("unreadable {error}"),
        ]
    );
    assert!(took >= Duration::from_millis(1200), "{took:?}");
    assert!(end
        .warning(&StepId::Drain("public".into()), "blue")
        .unwrap()
        .contains("could not be counted"));
    // A read that works again ends the drain as usual.
    let world = World::default();
    world.sessions("blue", &[gone, Ok(0)]);
    let (end, told, _) = drain(&world, Duration::from_secs(30)).await;
    assert_eq!(end, DrainEnd::Idle);
    assert_eq!(told.len(), 1, "{told:?}");
}

fn drain_step(until_idle: bool, counts_sessions: bool, duration_ms: u64) -> StepKind {
    StepKind::Drain {
        router: "public".into(),
        colour: "blue".into(),
        duration_ms,
        until_idle,
        counts_sessions,
        backend: Some("exec".into()),
        spec: Some(spec()),
        floor: None,
    }
}

#[tokio::test]
async fn a_router_that_cannot_count_is_waited_for_by_time() {
    let world = World::default();
    world.sessions("blue", &[Ok(0)]);
    let engine = world.engine();
    // The plan knew: no read at all, the whole duration.
    let seen = Seen::default();
    let started = Instant::now();
    let outcome = engine.drain(&drain_step(true, false, 400), &seen).await;
    assert!(outcome.error.is_none() && started.elapsed() >= Duration::from_millis(400));
    assert_eq!(seen.lines(), ["ended by_time"]);
    assert!(world.log().is_empty(), "{:?}", world.log());
    // The router says so only when asked: the rest of the duration.
    world.lock().uncounted = true;
    let seen = Seen::default();
    let started = Instant::now();
    engine.drain(&drain_step(true, true, 400), &seen).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(seen.lines(), ["ended by_time"]);
    // A drain without `drain_until_idle` waits as before, telling nothing.
    world.lock().uncounted = false;
    let seen = Seen::default();
    let started = Instant::now();
    engine.drain(&drain_step(false, true, 300), &seen).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((seen.lines(), world.log()), (vec![], vec![]));
}

#[tokio::test]
async fn the_drained_colour_changes_only_once_it_has_no_open_sessions() {
    let world = World::default();
    let port = world.serve().await;
    world.run("blue", "1");
    world.run("green", "1");
    world.route("public", "blue");
    world.sessions("blue", &[Ok(2), Ok(1), Ok(0)]);
    let hcl = format!(
        "{}{}router \"public\" {{\n  live = environment.green\n  drain = \"20s\"\n  drain_until_idle = true\n  exec {{\n    read   = [\"read\"]\n    switch = [\"switch\"]\n  }}\n}}\n",
        colour("blue", "2", port),
        colour("green", "1", port),
    );
    let config = config(&hcl);
    let engine = world.engine();
    let planned = engine.plan(&config, None).await.unwrap();
    let drain = planned
        .document
        .steps
        .iter()
        .find(|s| s.id.to_string() == "drain.public");
    assert!(
        matches!(
            drain.map(|s| &s.kind),
            Some(StepKind::Drain {
                until_idle: true,
                counts_sessions: true,
                spec: Some(_),
                ..
            })
        ),
        "{drain:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let state = crate::state::new_state();
    let path = dir.path().join("cutover.state.json");
    let stop = super::super::apply::never_stop();
    let started = Instant::now();
    let report = engine
        .apply_at(&planned, state, &path, seen.clone(), stop)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited the maximum"
    );
    assert_eq!(
        world.log(),
        [
            "switch public green",
            "sessions public blue 2",
            "sessions public blue 1",
            "sessions public blue 0",
            "deploy blue 2",
        ]
    );
    let lines = seen.lines();
    let after_switch = lines
        .iter()
        .skip_while(|l| *l != "finished cutover.public")
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(
        after_switch,
        [
            "finished cutover.public",
            "started drain.public",
            "waiting 2",
            "waiting 1",
            "ended idle",
            "finished drain.public",
            "started environment.blue",
            "finished environment.blue",
        ]
    );
}

/// Blue live on `public`, which last switched from green (still counted
/// with open streams by `answers`); the configuration bumps idle green.
async fn green_bumped(
    world: &World,
    answers: &[Result<u64, &str>],
) -> (crate::plan::saved::Planned, crate::state::model::State) {
    let port = world.serve().await;
    world.run("blue", "1");
    world.run("green", "1");
    world.route("public", "blue");
    world.sessions("green", answers);
    let hcl = format!(
        "{}{}{}",
        colour("blue", "1", port),
        colour("green", "2", port),
        crate::engine::testing::router("public", "blue"),
    );
    let state = left_green(&["public"]);
    let planned = world
        .engine()
        .plan(&config(&hcl), Some(&state))
        .await
        .unwrap();
    (planned, state)
}

/// The plan's first step, a settle, waiting at most `ms`.
fn settle_at_most(planned: &crate::plan::saved::Planned, ms: u64) -> StepKind {
    let mut kind = planned.document.steps[0].kind.clone();
    match &mut kind {
        StepKind::Settle { most_ms, .. } => *most_ms = ms,
        other => panic!("{other:?}"),
    }
    kind
}

/// A state in which each of `routers` last switched from green to blue.
fn left_green(routers: &[&str]) -> crate::state::model::State {
    let mut state = crate::state::new_state();
    for router in routers {
        state.routers.insert(
            (*router).into(),
            crate::state::model::RouterState {
                backend: "exec".into(),
                live: Some("blue".into()),
                previous: Some("green".into()),
                preview: None,
                rolled_back: false,
            },
        );
    }
    state
}

#[tokio::test]
async fn an_idle_colour_changes_only_once_the_router_holds_no_streams_to_it() {
    let world = World::default();
    let (planned, state) = green_bumped(&world, &[Ok(1), Ok(1), Ok(0)]).await;
    let ids: Vec<String> = planned
        .document
        .steps
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(ids, ["settle.green", "environment.green"]);
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let path = dir.path().join("cutover.state.json");
    let stop = super::super::apply::never_stop();
    let report = world
        .engine()
        .apply_at(&planned, state, &path, seen.clone(), stop)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    // The count is read until the router holds nothing, then green changes.
    assert_eq!(
        world.log(),
        [
            "sessions public green 1",
            "sessions public green 1",
            "sessions public green 0",
            "deploy green 2",
        ]
    );
    let lines = seen.lines();
    assert_eq!(
        lines,
        [
            "started settle.green",
            "waiting 1",
            "ended idle",
            "finished settle.green",
            "started environment.green",
            "finished environment.green",
        ]
    );
    // The events name the settle, and the router they count on.
    let ended = seen.0.lock().unwrap().iter().find_map(|e| match e {
        Event::DrainEnded {
            step,
            router,
            colour,
            ..
        } => Some((step.to_string(), router.clone(), colour.clone())),
        _ => None,
    });
    assert_eq!(
        ended,
        Some(("settle.green".into(), "public".into(), "green".into()))
    );
}

#[tokio::test]
async fn a_settle_at_its_maximum_lets_the_change_go_ahead_with_a_warning() {
    let world = World::default();
    let (planned, _) = green_bumped(&world, &[Ok(2)]).await;
    let kind = settle_at_most(&planned, 600);
    let seen = Seen::default();
    let started = Instant::now();
    let outcome = world.engine().settle(&kind, &seen).await;
    assert!(outcome.error.is_none(), "a settle never fails the apply");
    assert!(started.elapsed() >= Duration::from_millis(600));
    let end = seen.0.lock().unwrap().iter().find_map(|e| match e {
        Event::DrainEnded { end, .. } => Some(end.clone()),
        _ => None,
    });
    let end = end.expect("a drain_ended event");
    assert_eq!(
        end.warning(&StepId::Settle("green".into()), "green").as_deref(),
        Some("2 sessions were still open to green at the wait's maximum; going on, so a change of green may cut them")
    );
}

#[tokio::test]
async fn a_settle_asks_its_routers_at_once_so_one_held_stream_leaves_the_others_read() {
    // Two routers last switched away from green. `one` holds a stream to
    // green for the whole wait; `two` holds none: `two` is read and idle at
    // once, not left unread behind `one`.
    let world = World::default();
    let port = world.serve().await;
    world.run("blue", "1");
    world.run("green", "1");
    world.route("one", "blue");
    world.route("two", "blue");
    world.sessions("one/green", &[Ok(1)]);
    world.sessions("two/green", &[Ok(0)]);
    let hcl = format!(
        "{}{}{}{}",
        colour("blue", "1", port),
        colour("green", "2", port),
        crate::engine::testing::router("one", "blue"),
        crate::engine::testing::router("two", "blue"),
    );
    let state = left_green(&["one", "two"]);
    let planned = world
        .engine()
        .plan(&config(&hcl), Some(&state))
        .await
        .unwrap();
    let kind = settle_at_most(&planned, 600);
    assert!(matches!(&kind, StepKind::Settle { routers, .. } if routers.len() == 2));
    let seen = Seen::default();
    world.engine().settle(&kind, &seen).await;
    let ends: Vec<(String, String)> = seen
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::DrainEnded { router, end, .. } => {
                Some((router.clone(), end.as_str().to_owned()))
            }
            _ => None,
        })
        .collect();
    // `two` ends first, idle; `one` at the maximum, still counted.
    assert_eq!(
        ends,
        [
            ("two".to_owned(), "idle".to_owned()),
            ("one".to_owned(), "maximum".to_owned())
        ]
    );
}
