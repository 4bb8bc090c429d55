//! Each planner pass alone, on configurations written in HCL and live
//! worlds written by hand; then the ordering passes and `validate()`.

use cutover_provider::{LiveEnvironment, LiveRouter};

use super::*;
use crate::engine::testing::{colour, config, router};
use crate::graph::GraphError;
use crate::plan::validate::{validate, Problem};
use crate::plan::{Live, PlanError, PlanOptions};
use crate::state::model::{EnvironmentState, RouterState, State};

/// A configuration, a state and a live world to plan from.
struct Fixture {
    config: Config,
    state: State,
    live: Live,
    options: PlanOptions,
}

impl Fixture {
    /// `colours` (name, release) and `routers` (name, live) in HCL.
    fn new(colours: &[(&str, &str)], routers: &[(&str, &str)]) -> Fixture {
        let mut hcl: String = colours.iter().map(|(c, r)| colour(c, r, 1)).collect();
        hcl.extend(routers.iter().map(|(r, l)| router(r, l)));
        Fixture {
            config: config(&hcl),
            state: crate::state::empty_state(),
            live: Live::default(),
            options: PlanOptions::default(),
        }
    }

    /// `colour` runs `release`, with identity `id-COLOUR`.
    fn running(mut self, colour: &str, release: &str) -> Self {
        let env = LiveEnvironment {
            exists: true,
            release: Some(release.into()),
            identity: Some(format!("id-{colour}")),
            ..Default::default()
        };
        self.live.environments.insert(colour.into(), env);
        self
    }

    /// `router` sends traffic to `colour`.
    fn routed(mut self, router: &str, colour: &str) -> Self {
        let r = LiveRouter {
            live: Some(colour.into()),
            ..Default::default()
        };
        self.live.routers.insert(router.into(), r);
        self
    }

    /// The state records `colour` as deployed with `release`.
    fn recorded(mut self, colour: &str, release: &str) -> Self {
        let env = EnvironmentState {
            backend: "process".into(),
            release: release.into(),
            endpoints: vec!["127.0.0.1:1".into()],
            settings: serde_json::json!({"command": ["app", release]}),
            identity: Some(format!("id-{colour}")),
            private: Value::Null,
        };
        self.state.environments.insert(colour.into(), env);
        self
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            config: &self.config,
            state: &self.state,
            live: &self.live,
            options: &self.options,
            secrets: crate::plan::sensitive::Secrets::new(&self.config),
        }
    }

    /// The draft after the step passes up to and including `last`.
    fn draft_until(&self, last: &str) -> Result<Draft, PlanError> {
        let mut d = Draft::default();
        for (name, pass) in steps().into_iter().chain(super::super::edges::steps()) {
            pass(&self.inputs(), &mut d)?;
            if name == last {
                return Ok(d);
            }
        }
        panic!("no pass named {last}");
    }

    fn plan(&self) -> Result<PlanDocument, PlanError> {
        crate::plan::plan_with(&self.config, Some(&self.state), &self.live, &self.options)
    }
}

fn ids(d: &Draft) -> Vec<String> {
    d.steps.keys().map(ToString::to_string).collect()
}

fn env_step(d: &Draft, name: &str) -> (Action, Traffic) {
    match &d.environment(name).expect("an environment step").kind {
        StepKind::Environment {
            action, traffic, ..
        } => (*action, *traffic),
        _ => unreachable!(),
    }
}

/// Blue live on `public` and running 1, green running 1; the config names
/// green live with `green_release` and gives blue `blue_release`.
fn blue_live(blue_release: &str, green_release: &str) -> Fixture {
    Fixture::new(
        &[("blue", blue_release), ("green", green_release)],
        &[("public", "green")],
    )
    .running("blue", "1")
    .running("green", "1")
    .routed("public", "blue")
    .recorded("blue", "1")
    .recorded("green", "1")
}

#[test]
fn intents_are_the_routers_not_where_the_configuration_says_and_those_with_drift() {
    let f = blue_live("1", "1");
    let d = f.draft_until("cut-over intents").unwrap();
    assert_eq!(
        d.intents["public"],
        Intent {
            from: Some("blue".into()),
            to: "green".into()
        }
    );
    assert_eq!(d.intents["public"].drains(), Some("blue"));

    let f = Fixture::new(&[("blue", "1")], &[("public", "blue")]).routed("public", "blue");
    assert!(f
        .draft_until("cut-over intents")
        .unwrap()
        .intents
        .is_empty());

    // On the right colour, but the router reports drift: a repair.
    let mut f = Fixture::new(&[("blue", "1")], &[("public", "blue")]).routed("public", "blue");
    f.live.routers.get_mut("public").unwrap().drift = vec![cutover_provider::RouterDrift::new(
        cutover_provider::RouterDriftKind::PersistedDiffers,
        "the map file differs",
    )];
    let d = f.draft_until("cut-over intents").unwrap();
    assert_eq!(
        d.intents["public"].drains(),
        None,
        "a repair drains nothing"
    );
}

#[test]
fn traffic_tells_idle_live_and_drained_colours_apart() {
    let names: Vec<String> = ["a", "b"].map(String::from).to_vec();
    let one: Vec<&String> = names[..1].iter().collect();
    let two: Vec<&String> = names.iter().collect();
    let moving = BTreeMap::from([(
        "a".to_owned(),
        Intent {
            from: Some("blue".into()),
            to: "green".into(),
        },
    )]);
    assert_eq!(traffic("green", &moving, &[]), Traffic::Idle);
    assert_eq!(traffic("blue", &moving, &one), Traffic::Drained);
    assert_eq!(
        traffic("blue", &moving, &two),
        Traffic::Live,
        "b keeps sending blue traffic"
    );
    assert_eq!(traffic("blue", &BTreeMap::new(), &one), Traffic::Live);
}

#[test]
fn environment_changes_are_created_updated_replaced_or_adopted() {
    let f = Fixture::new(&[("blue", "1"), ("green", "2")], &[]).running("green", "1");
    let d = f.draft_until("environment changes").unwrap();
    assert_eq!(env_step(&d, "blue"), (Action::Create, Traffic::Idle));
    assert_eq!(env_step(&d, "green"), (Action::Update, Traffic::Idle));

    // Running the configured release, never deployed by cutover: adopted.
    let f = Fixture::new(&[("green", "2")], &[]).running("green", "2");
    assert!(f
        .draft_until("environment changes")
        .unwrap()
        .steps
        .is_empty());

    // A recorded colour whose endpoints moved is replaced.
    let mut f = Fixture::new(&[("green", "1")], &[])
        .running("green", "1")
        .recorded("green", "1");
    f.state.environments.get_mut("green").unwrap().endpoints = vec!["10.0.0.1:1".into()];
    let d = f.draft_until("environment changes").unwrap();
    assert_eq!(env_step(&d, "green").0, Action::Replace);
}

#[test]
fn a_change_to_the_colour_that_stays_live_is_refused_unless_allowed() {
    let f = Fixture::new(&[("blue", "2"), ("green", "1")], &[("public", "blue")])
        .running("blue", "1")
        .running("green", "1")
        .routed("public", "blue")
        .recorded("blue", "1");
    let err = f.draft_until("live-colour protection").unwrap_err();
    let PlanError::LiveChange(lines) = err else {
        panic!("{err}")
    };
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("environment.blue serves live traffic through router.public and would be updated in place")
            && lines[0].contains("deploy the change to the idle colour green"),
        "{}",
        lines[0]
    );
    let mut f = f;
    f.options.allow_live_changes = true;
    let d = f.draft_until("health gates").unwrap();
    assert_eq!(env_step(&d, "blue"), (Action::Update, Traffic::Live));
    assert!(
        d.steps.contains_key(&StepId::Health("blue".into())),
        "a live change is gated after it"
    );
}

/// Green recorded live on `public`, whose read under its name shows no
/// entry; green's release changes. `moved_from`: `public` was renamed from
/// `old` in this plan.
fn renamed_router(moved_from: Option<&str>) -> Fixture {
    let mut f = Fixture::new(&[("blue", "1"), ("green", "2")], &[("public", "green")])
        .running("blue", "1")
        .running("green", "1")
        .recorded("blue", "1")
        .recorded("green", "1");
    f.live
        .routers
        .insert("public".into(), LiveRouter::default());
    f.state.routers.insert(
        "public".into(),
        RouterState {
            backend: "haproxy".into(),
            live: Some("green".into()),
            previous: Some("blue".into()),
            preview: None,
            rolled_back: false,
        },
    );
    if let Some(old) = moved_from {
        f.live.moved_from.insert("public".into(), old.into());
    }
    f
}

#[test]
fn a_colour_a_renamed_router_still_served_under_its_old_name_counts_as_live() {
    // Renamed by `moved`: its entry of the old name may still route to
    // green, so green's change in place is refused, and says why.
    let f = renamed_router(Some("old"));
    assert_eq!(f.inputs().serving("green"), vec!["public"]);
    let err = f.draft_until("live-colour protection").unwrap_err();
    let PlanError::LiveChange(lines) = err else {
        panic!("{err}")
    };
    assert!(
        lines[0].starts_with("environment.green serves live traffic through router.public (router.public was router.old (a `moved` block)")
            && lines[0].contains("deploy the change to the idle colour blue"),
        "{}",
        lines[0]
    );
    let said = |f: &Fixture| {
        crate::plan::drift::drift(&f.config, &f.state, &f.live)
            .into_iter()
            .map(|d| d.message)
            .collect::<Vec<_>>()
    };
    assert_eq!(said(&f).len(), 1);
    assert!(
        said(&f)[0].starts_with(
            "router.public was router.old (a `moved` block) and shows no entry of its new name"
        ),
        "{:?}",
        said(&f)
    );
    // The same router not renamed lost its entry: nothing routes to green,
    // which may change.
    let f = renamed_router(None);
    assert!(said(&f)[0].starts_with("router.public no longer holds cutover's switch"));
    assert!(f.inputs().serving("green").is_empty());
    let d = f.draft_until("live-colour protection").unwrap();
    assert_eq!(env_step(&d, "green"), (Action::Update, Traffic::Idle));
}

#[test]
fn a_renamed_router_that_shows_its_colour_under_the_new_name_is_read_as_it_is() {
    // The router keeps its names (`key` set to the old one): the read shows
    // green, as recorded; green is live through it once, and blue is idle.
    let mut f = renamed_router(Some("old"));
    f = f.routed("public", "green");
    assert_eq!(f.inputs().serving("green"), vec!["public"]);
    assert!(f.inputs().serving("blue").is_empty());
    assert!(!f.inputs().still_under_old_name("public", "green"));
}

#[test]
fn the_idle_colour_offered_instead_is_of_the_same_service() {
    // Services a and b, each blue and green; b's green is live and
    // changes. The way out names b's blue, not the first idle colour.
    let hcl = r#"
environment "blue" {
  for_each = toset(["a", "b"])
  release  = "1"
  endpoint = "127.0.0.1:1"
  process { command = ["app"] }
  health { path = "/" }
}
environment "green" {
  for_each = { a = "1", b = "2" }
  release  = each.value
  endpoint = "127.0.0.1:2"
  process { command = ["app"] }
  health { path = "/" }
}
router "svc" {
  for_each = toset(["a", "b"])
  live     = environment.green[each.key]
  exec {
    read   = ["read"]
    switch = ["switch"]
  }
}
"#;
    let mut f = Fixture::new(&[], &[]);
    f.config = config(hcl);
    let f = ["blue[\"a\"]", "blue[\"b\"]", "green[\"a\"]", "green[\"b\"]"]
        .into_iter()
        .fold(f, |f, c| f.running(c, "1").recorded(c, "1"))
        .routed("svc[\"a\"]", "green[\"a\"]")
        .routed("svc[\"b\"]", "green[\"b\"]");
    let err = f.draft_until("live-colour protection").unwrap_err();
    assert!(
        err.to_string()
            .contains("deploy the change to the idle colour blue[\"b\"]"),
        "{err}"
    );
}

#[test]
fn colours_that_left_the_configuration_are_destroyed_if_cutover_deployed_them() {
    let mut f = Fixture::new(&[("green", "1")], &[])
        .running("green", "1")
        .recorded("green", "1")
        .recorded("old", "1");
    let mut unmanaged = f.state.environments["old"].clone();
    unmanaged.backend = crate::state::model::UNMANAGED_BACKEND.into();
    f.state.environments.insert("elsewhere".into(), unmanaged);
    let d = f.draft_until("environment removals").unwrap();
    assert_eq!(ids(&d), ["environment.old"]);
    assert_eq!(env_step(&d, "old").0, Action::Delete);
}

#[test]
fn every_colour_switched_to_gets_a_gate_and_every_switch_a_cutover() {
    let f = blue_live("1", "2");
    let d = f.draft_until("cut-overs").unwrap();
    assert_eq!(
        ids(&d),
        ["cutover.public", "environment.green", "health.green"]
    );
    let StepKind::Cutover {
        from_identity,
        to_release,
        ready_timeout,
        ..
    } = &d.steps[&StepId::Cutover("public".into())].kind
    else {
        unreachable!()
    };
    assert_eq!(from_identity.as_deref(), Some("id-blue"));
    assert_eq!(
        to_release.as_deref(),
        Some("2"),
        "the release after the apply"
    );
    assert_eq!(*ready_timeout, crate::config::model::DEFAULT_READY_TIMEOUT);
}

#[test]
fn a_router_rolled_back_says_why_it_cuts_over_again() {
    let mut f = blue_live("1", "1");
    f.state.routers.insert(
        "public".into(),
        RouterState {
            backend: "exec".into(),
            live: Some("blue".into()),
            previous: Some("green".into()),
            preview: None,
            rolled_back: true,
        },
    );
    let d = f.draft_until("cut-overs").unwrap();
    let StepKind::Cutover { reason, .. } = &d.steps[&StepId::Cutover("public".into())].kind else {
        unreachable!()
    };
    assert!(reason
        .as_deref()
        .unwrap()
        .contains("because of `cutover rollback`"));
}

#[test]
fn a_drain_waits_only_before_a_change_of_the_drained_colour() {
    let with_drain = |blue: &str| {
        let mut f = blue_live(blue, "1");
        f.config.routers.get_mut("public").unwrap().drain = std::time::Duration::from_secs(2);
        f.draft_until("drains").unwrap()
    };
    assert!(!with_drain("1")
        .steps
        .contains_key(&StepId::Drain("public".into())));
    let d = with_drain("2");
    let StepKind::Drain {
        colour,
        duration_ms,
        ..
    } = &d.steps[&StepId::Drain("public".into())].kind
    else {
        unreachable!()
    };
    assert_eq!((colour.as_str(), *duration_ms), ("blue", 2000));
}

#[test]
fn a_drain_until_idle_waits_on_the_count_where_the_router_can_count() {
    let drain_of = |counts: bool| {
        let mut f = blue_live("2", "1");
        let public = f.config.routers.get_mut("public").unwrap();
        public.drain = std::time::Duration::from_secs(30);
        public.drain_until_idle = true;
        if counts {
            f.live.counts_sessions.insert("public".into());
        }
        let d = f.draft_until("drains").unwrap();
        d.steps[&StepId::Drain("public".into())].kind.clone()
    };
    let StepKind::Drain {
        colour,
        duration_ms,
        until_idle: true,
        counts_sessions: true,
        backend: Some(backend),
        spec: Some(spec),
        ..
    } = drain_of(true)
    else {
        panic!("{:?}", drain_of(true))
    };
    assert_eq!(
        (colour.as_str(), duration_ms, backend.as_str()),
        ("blue", 30_000, "exec")
    );
    // The count is read with the router's own spec, which knows the colour.
    assert_eq!(spec.name(), "public");
    assert!(spec.colour("blue").is_some());
    // A router that cannot count: waits by time, and the plan says so.
    assert!(matches!(
        drain_of(false),
        StepKind::Drain {
            until_idle: true,
            counts_sessions: false,
            backend: Some(_),
            spec: None,
            ..
        }
    ));
}

#[test]
fn a_routers_drain_floor_longer_than_its_drain_is_what_the_drain_waits() {
    let drain_of = |drain_s: u64, floor_ms: Option<u64>| {
        let mut f = blue_live("2", "1");
        let public = f.config.routers.get_mut("public").unwrap();
        public.drain = std::time::Duration::from_secs(drain_s);
        public.drain_until_idle = drain_s > 0;
        f.live.counts_sessions.insert("public".into());
        if let Some(at_least_ms) = floor_ms {
            let why = "the deregistration delay of target group tg/blue".to_string();
            let floor = cutover_provider::DrainFloor { at_least_ms, why };
            f.live.drain_floors.insert("public".into(), floor);
        }
        let d = f.draft_until("drains").unwrap();
        d.steps
            .get(&StepId::Drain("public".into()))
            .map(|s| s.kind.clone())
    };
    // No drain, no floor: no step. A floor alone makes one, by time.
    assert_eq!(drain_of(0, None), None);
    let Some(StepKind::Drain {
        duration_ms,
        until_idle,
        counts_sessions,
        floor: Some(floor),
        ..
    }) = drain_of(0, Some(300_000))
    else {
        panic!("{:?}", drain_of(0, Some(300_000)))
    };
    assert_eq!(
        (duration_ms, until_idle, counts_sessions),
        (300_000, false, false)
    );
    assert_eq!(
        floor.why,
        "the deregistration delay of target group tg/blue"
    );
    // A floor longer than drain_until_idle's maximum: the floor, by time.
    assert!(matches!(
        drain_of(30, Some(300_000)),
        Some(StepKind::Drain {
            duration_ms: 300_000,
            until_idle: false,
            floor: Some(_),
            ..
        })
    ));
    // A floor shorter than the drain changes nothing.
    assert!(matches!(
        drain_of(30, Some(1_000)),
        Some(StepKind::Drain {
            duration_ms: 30_000,
            until_idle: true,
            counts_sessions: true,
            floor: None,
            ..
        })
    ));
}

#[test]
fn a_drain_by_time_reads_and_writes_as_before() {
    // A saved plan of an older cutover, and the JSON of a drain without
    // `drain_until_idle`: the new fields neither appear nor are needed.
    let old = r#"{"id":"drain.public","depends_on":["cutover.public"],"type":"drain","router":"public","colour":"blue","duration_ms":2000}"#;
    let step: Step = serde_json::from_str(old).unwrap();
    assert!(matches!(
        step.kind,
        StepKind::Drain {
            until_idle: false,
            counts_sessions: false,
            backend: None,
            spec: None,
            ..
        }
    ));
    let written: serde_json::Value = serde_json::to_value(&step).unwrap();
    assert_eq!(
        written,
        serde_json::from_str::<serde_json::Value>(old).unwrap()
    );
}

#[test]
fn a_preview_moved_to_the_colour_just_drained_runs_after_the_cutover() {
    let mut f = blue_live("1", "1");
    f.config.routers.get_mut("public").unwrap().preview = Some("blue".into());
    let doc = f.plan().unwrap();
    let order: Vec<String> = doc.steps.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(order, ["health.green", "cutover.public", "preview.public"]);
    assert!(matches!(
        doc.steps[2].kind,
        StepKind::Preview {
            after_cutover: true,
            ..
        }
    ));
    assert_eq!(doc.steps[2].depends_on, [StepId::Cutover("public".into())]);
}

/// A router whose preview shows `preview` now, everything else settled:
/// blue live and configured live, both colours running as recorded.
fn previewed(preview: &str) -> Fixture {
    let mut f = Fixture::new(&[("blue", "1"), ("green", "1")], &[("public", "blue")])
        .running("blue", "1")
        .running("green", "1")
        .routed("public", "blue")
        .recorded("blue", "1")
        .recorded("green", "1");
    f.live.routers.get_mut("public").unwrap().preview = Some(preview.into());
    f.state.routers.insert(
        "public".into(),
        RouterState {
            backend: "haproxy".into(),
            live: Some("blue".into()),
            previous: None,
            preview: Some(preview.into()),
            rolled_back: false,
        },
    );
    f
}

#[test]
fn a_preview_taken_out_of_the_configuration_is_removed() {
    // Still configured, and showing what it says: nothing to do.
    let mut kept = previewed("green");
    kept.config.routers.get_mut("public").unwrap().preview = Some("green".into());
    assert_eq!(kept.plan().unwrap().steps, []);

    // `preview` removed from the block: one step removes it, before the
    // switches, and the summary counts it apart from a repoint.
    let doc = previewed("green").plan().unwrap();
    let [step] = doc.steps.as_slice() else {
        panic!("{:#?}", doc.steps)
    };
    assert_eq!(step.id, StepId::Preview("public".into()));
    let StepKind::RemovePreview {
        router,
        from,
        spec,
        backend,
    } = &step.kind
    else {
        panic!("{:?}", step.kind)
    };
    assert_eq!((router.as_str(), from.as_str()), ("public", "green"));
    assert!(spec.colour("green").is_some(), "{spec:?}");
    assert_eq!(
        backend,
        &previewed("green").config.routers["public"].backend.kind
    );
    assert_eq!(step.kind.phase(), Phase::BeforeSwitch);
    assert_eq!(
        (
            doc.summary.preview,
            doc.summary.previews_removed,
            doc.summary.outcome
        ),
        (0, 1, Outcome::Changes)
    );
    let json = serde_json::to_value(&doc.steps[0]).unwrap();
    assert_eq!(
        (&json["type"], &json["id"], &json["from"]),
        (
            &"remove_preview".into(),
            &"preview.public".into(),
            &"green".into()
        )
    );

    // No preview now: nothing to remove.
    let mut none = previewed("green");
    none.live.routers.get_mut("public").unwrap().preview = None;
    assert_eq!(none.plan().unwrap().steps, []);
}

/// A fleet whose instances disagree on the preview reads as no preview;
/// one instance still showing one is enough to remove it.
#[test]
fn a_preview_left_on_one_instance_of_a_fleet_is_removed() {
    use cutover_provider::LiveInstance;
    let mut f = previewed("green");
    let live = f.live.routers.get_mut("public").unwrap();
    live.preview = None;
    live.instances = ["a", "b"]
        .map(|name| LiveInstance {
            name: name.into(),
            live: Some("blue".into()),
            raw: Some("blue".into()),
            preview: (name == "b").then(|| "green".into()),
        })
        .into();
    let doc = f.plan().unwrap();
    assert!(
        matches!(
            doc.steps.as_slice(),
            [Step { kind: StepKind::RemovePreview { from, .. }, .. }] if from == "green"
        ),
        "{:#?}",
        doc.steps
    );
}

/// A preview removed stops showing its colour before that colour is
/// destroyed.
#[test]
fn a_preview_is_removed_before_its_colour_is_destroyed() {
    let mut f = previewed("green");
    f.config.environments.remove("green");
    f.state.environments.get_mut("green").unwrap().private = Value::Null;
    let doc = f.plan().unwrap();
    let order: Vec<String> = doc.steps.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(order, ["preview.public", "environment.green"], "{doc:#?}");
    assert_eq!(doc.steps[1].depends_on, [StepId::Preview("public".into())]);
}

#[test]
fn routers_that_left_the_configuration_are_forgotten() {
    let mut f = Fixture::new(&[("blue", "1")], &[]).running("blue", "1");
    f.state.routers.insert(
        "old".into(),
        RouterState {
            backend: "exec".into(),
            live: Some("blue".into()),
            previous: None,
            preview: None,
            rolled_back: false,
        },
    );
    let d = f.draft_until("forgotten routers").unwrap();
    assert_eq!(ids(&d), ["forget.router.old"]);
}

#[test]
fn a_cutover_without_its_gate_stops_the_planner_instead_of_being_dropped() {
    let f = blue_live("1", "1");
    let mut d = f.draft_until("previews").unwrap();
    d.steps.remove(&StepId::Health("green".into()));
    let i = f.inputs();
    super::super::edges::graph(&i, &mut d).unwrap();
    let err = super::super::edges::cutover_edges(&i, &mut d).unwrap_err();
    assert!(
        matches!(err, PlanError::Graph(GraphError::MissingStep(ref m)) if m.missing == StepId::Health("green".into())),
        "{err}"
    );
}

#[test]
fn the_order_is_before_the_switch_then_switches_then_after() {
    let f = blue_live("2", "2");
    let doc = f.plan().unwrap();
    let order: Vec<(String, Phase)> = doc
        .steps
        .iter()
        .map(|s| (s.id.to_string(), s.kind.phase()))
        .collect();
    assert_eq!(
        order,
        [
            ("environment.green".into(), Phase::BeforeSwitch),
            ("health.green".into(), Phase::BeforeSwitch),
            ("cutover.public".into(), Phase::Switch),
            ("environment.blue".into(), Phase::AfterSwitch),
        ]
    );
    assert_eq!(doc.steps[3].depends_on, [StepId::Cutover("public".into())]);
}

#[test]
fn the_way_back_is_the_drained_colour_as_it_will_be_after_the_apply() {
    // The standby's release is bumped in the same plan: rolling back goes
    // to the new release, and the hint says so.
    let doc = blue_live("2", "1").plan().unwrap();
    assert_eq!(
        doc.rollback,
        [RollbackHint {
            router: "public".into(),
            to: "blue".into(),
            release: Some("2".into()),
            changed_after_cutover: true,
        }]
    );
    assert_eq!(
        doc.rollback[0].describe(str::to_owned),
        "switches back to blue, which will run 2 (this apply changes it after the cut-over)"
    );
    let doc = blue_live("1", "1").plan().unwrap();
    assert_eq!(
        doc.rollback[0].describe(str::to_owned),
        "switches back to blue, which keeps running 1"
    );
    // Blue leaves the configuration: destroyed after the cut-over, no way back.
    let f = Fixture::new(&[("green", "1")], &[("public", "green")])
        .running("blue", "1")
        .running("green", "1")
        .routed("public", "blue")
        .recorded("blue", "1");
    assert!(f.plan().unwrap().rollback.is_empty());
}

#[test]
fn validate_names_the_step_that_breaks_a_rule() {
    let doc = blue_live("2", "2").plan().unwrap();
    let check = |edit: &dyn Fn(&mut PlanDocument)| {
        let mut d = doc.clone();
        edit(&mut d);
        validate(&d).unwrap_err()
    };
    let gate = StepId::Health("green".into());
    let err = check(&|d| d.steps[2].depends_on.retain(|x| *x != gate));
    assert_eq!(err.problem, Problem::UngatedCutover(gate.clone()));
    assert_eq!(
        err.to_string(),
        "step cutover.public: it switches live traffic without depending on health.green, its target's health gate"
    );
    let err = check(&|d| d.steps[1].depends_on.clear());
    assert_eq!(
        err.problem,
        Problem::GateBeforeChange(StepId::Environment("green".into()))
    );
    let err = check(&|d| d.steps[3].depends_on.clear());
    assert_eq!(
        err.problem,
        Problem::BeforeItsCutover(StepId::Cutover("public".into()))
    );
    let err = check(&|d| d.steps[2].depends_on.push(StepId::Health("nope".into())));
    assert_eq!(
        err.problem,
        Problem::MissingDependency(StepId::Health("nope".into()))
    );
    let err = check(&|d| d.steps.swap(0, 1));
    assert_eq!(err.step, "health.green");
    assert_eq!(
        err.problem,
        Problem::OutOfOrder(StepId::Environment("green".into()))
    );
    let err = check(&|d| d.steps[0].id = StepId::Environment("red".into()));
    assert_eq!(
        err.problem,
        Problem::WrongId(StepId::Environment("green".into()))
    );
    let err = check(&|d| {
        let blue = d.steps[3].clone();
        d.steps.push(blue);
    });
    assert_eq!(err.problem, Problem::Duplicate);
    // Payload edits: the target, the gate's endpoints, traffic, from.
    let err = check(&|d| {
        if let StepKind::Cutover { target, .. } = &mut d.steps[2].kind {
            target.name = "blue".into();
        }
    });
    assert!(matches!(err.problem, Problem::WrongTarget(_)), "{err}");
    let err = check(&|d| {
        // (The fixture's checks name a URL; a gate by endpoints here.)
        if let StepKind::HealthGate {
            endpoints, health, ..
        } = &mut d.steps[1].kind
        {
            health.url = None;
            *endpoints = vec!["127.0.0.1:9".into()];
        }
    });
    assert!(
        err.to_string()
            .contains("its gate checks 127.0.0.1:9 but it sends traffic to 127.0.0.1:1"),
        "{err}"
    );
    // Blue, drained by the cut-over, passed off as idle and moved first: it
    // would change before the switch while it still serves.
    let err = check(&|d| {
        let mut blue = d.steps.remove(3);
        if let StepKind::Environment { traffic, .. } = &mut blue.kind {
            *traffic = Traffic::Idle;
        }
        blue.depends_on.clear();
        d.steps.insert(0, blue);
    });
    assert_eq!(err.step, "environment.blue");
    assert_eq!(err.problem, Problem::WrongTraffic(Traffic::Drained));
    let err = check(&|d| {
        if let StepKind::Cutover { from, .. } = &mut d.steps[2].kind {
            *from = Some("red".into());
        }
    });
    assert_eq!(err.problem, Problem::WrongFrom("blue".into()));
    let err = check(&|d| {
        let dep = d.steps[3].id.clone();
        d.steps.swap(2, 3);
        d.steps[3].depends_on.push(dep);
        d.steps[2].depends_on.clear();
    });
    assert!(
        matches!(
            err.problem,
            Problem::BeforeItsCutover(_) | Problem::PhaseInversion(_)
        ),
        "{err}"
    );
}

#[test]
fn an_environment_that_refers_to_another_changes_after_it() {
    let hcl = format!(
        "{}{}",
        colour("blue", "2", 1),
        colour("green", "1", 1).replace(
            r#"release  = "1""#,
            r#"release  = "${environment.blue.release}-next""#
        )
    );
    let f = Fixture {
        config: config(&hcl),
        state: crate::state::empty_state(),
        live: Live::default(),
        options: PlanOptions::default(),
    };
    let doc = f.plan().unwrap();
    let green = doc
        .steps
        .iter()
        .find(|s| s.id == StepId::Environment("green".into()))
        .unwrap();
    assert_eq!(green.depends_on, [StepId::Environment("blue".into())]);
    let order: Vec<String> = doc.steps.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(order, ["environment.blue", "environment.green"]);
}

#[test]
fn a_router_leaving_the_configuration_still_serves_its_colour() {
    // The operator trial: the router and its colours removed in one change
    // destroyed the colour the real load balancer still sent users to, as
    // if it were idle.
    let mut f = Fixture::new(&[("green", "1")], &[])
        .running("blue", "1")
        .running("green", "1")
        .recorded("blue", "1");
    f.state.routers.insert(
        "old".into(),
        RouterState {
            backend: "exec".into(),
            live: Some("blue".into()),
            previous: None,
            preview: None,
            rolled_back: false,
        },
    );
    let err = f.plan().unwrap_err().to_string();
    assert!(
        err.starts_with(
            "environment.blue serves live traffic through router.old and would be destroyed"
        ),
        "{err}"
    );
    f.options.allow_live_changes = true;
    let doc = f.plan().unwrap();
    let blue = doc
        .steps
        .iter()
        .find(|s| s.id == StepId::Environment("blue".into()))
        .unwrap();
    assert!(matches!(
        blue.kind,
        StepKind::Environment {
            traffic: Traffic::Live,
            ..
        }
    ));
}

/// A fleet router whose instances disagree (`a` on blue, `b` switched to
/// green by hand): green serves live traffic through `b`, so an in-place
/// change of green is refused as a live change, though the router's
/// colour is blue; the switch that repairs `b` names both instances.
#[test]
fn a_colour_one_instance_of_a_fleet_serves_is_live() {
    use cutover_provider::{LiveInstance, RouterDrift, RouterDriftKind};
    let instance = |name: &str, colour: &str| LiveInstance {
        name: name.into(),
        live: Some(colour.into()),
        raw: Some(colour.into()),
        preview: None,
    };
    let fleet = LiveRouter {
        live: Some("blue".into()),
        raw: Some("blue".into()),
        drift: vec![RouterDrift::new(
            RouterDriftKind::InstancesDisagree,
            "instance `b` sends traffic to green while instance `a` sends it to blue",
        )],
        instances: vec![instance("a", "blue"), instance("b", "green")],
        ..Default::default()
    };
    let fixture = |green: &str| {
        let mut f = Fixture::new(&[("blue", "1"), ("green", green)], &[("public", "blue")])
            .running("blue", "1")
            .running("green", "1")
            .recorded("blue", "1")
            .recorded("green", "1");
        f.live.routers.insert("public".into(), fleet.clone());
        f
    };
    let f = fixture("2");
    let err = f.draft_until("live-colour protection").unwrap_err();
    let PlanError::LiveChange(lines) = err else {
        panic!("{err}")
    };
    assert!(
        lines[0].starts_with("environment.green serves live traffic through router.public"),
        "{lines:?}"
    );
    // Allowed, it runs before the switch as a live change, and the plan's
    // own check (validate, from the fingerprint) agrees.
    let mut allowed = fixture("2");
    allowed.options.allow_live_changes = true;
    let doc = allowed.plan().unwrap();
    let green = doc.steps.iter().find_map(|s| match &s.kind {
        StepKind::Environment { name, traffic, .. } if name == "green" => Some(*traffic),
        _ => None,
    });
    assert_eq!(green, Some(Traffic::Live));
    // Without the change of green: the repair switch, on both instances.
    let doc = fixture("1").plan().unwrap();
    let cutover = doc
        .steps
        .iter()
        .find_map(|s| match &s.kind {
            StepKind::Cutover {
                from,
                to,
                instances,
                ..
            } => Some((from.clone(), to.clone(), instances.clone())),
            _ => None,
        })
        .expect("a repair switch");
    assert_eq!(
        cutover,
        (
            Some("blue".into()),
            "blue".into(),
            vec!["a".into(), "b".into()]
        )
    );
    assert_eq!(doc.fingerprint["router.public"], "blue");
    assert_eq!(
        doc.fingerprint["instances.router.public"],
        r#"[["a","blue"],["b","green"]]"#
    );
    let shown = crate::render::human::plan(&doc, &crate::render::Style { color: false });
    assert!(
        shown.contains("on its 2 instances (a, b), all or none"),
        "{shown}"
    );
}

#[test]
fn a_live_colour_given_for_each_without_a_moved_block_is_not_destroyed() {
    // green served `public`; the configuration now makes green["web"].
    let mut f = Fixture::new(&[("blue", "1")], &[])
        .running("blue", "1")
        .running("green", "1")
        .routed("public", "green")
        .recorded("blue", "1")
        .recorded("green", "1");
    f.config = config(&format!(
        "{}{}",
        colour("blue", "1", 1),
        r#"
environment "green" {
  for_each = toset(["web"])
  release  = "1"
  endpoint = "127.0.0.1:2"
  process {
    command = ["app", "1"]
  }
}
router "public" {
  live = environment.green["web"]
  exec {
    read   = ["read"]
    switch = ["switch"]
  }
}
"#
    ));
    let err = f.draft_until("live-colour protection").unwrap_err();
    let PlanError::LiveChange(lines) = err else {
        panic!("{err}")
    };
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "environment.green serves live traffic through router.public and would be destroyed"
        ) && lines[0].contains(
            r#"say so with `moved { from = environment.green, to = environment.green["web"] }`"#
        ),
        "{}",
        lines[0]
    );
}

/// Blue live on `public`, which counts sessions and last switched from
/// green; the configuration keeps blue live and bumps idle green to 2.
fn green_was_live() -> Fixture {
    let mut f = Fixture::new(&[("blue", "1"), ("green", "2")], &[("public", "blue")])
        .running("blue", "1")
        .running("green", "1")
        .routed("public", "blue")
        .recorded("blue", "1")
        .recorded("green", "1");
    f.state.routers.insert(
        "public".into(),
        RouterState {
            backend: "exec".into(),
            live: Some("blue".into()),
            previous: Some("green".into()),
            preview: None,
            rolled_back: false,
        },
    );
    f.live.counts_sessions.insert("public".into());
    f
}

/// [`blue_live`] with blue bumped (so drained), on a router that counts.
fn counting_blue_live() -> Fixture {
    let mut f = blue_live("2", "1");
    f.live.counts_sessions.insert("public".into());
    f
}

fn step_in<'a>(doc: &'a PlanDocument, id: &StepId) -> &'a Step {
    doc.steps.iter().find(|s| s.id == *id).expect("the step")
}

fn settle_of(d: &Draft, env: &str) -> Option<(Vec<String>, u64, bool)> {
    d.steps
        .get(&StepId::Settle(env.into()))
        .map(|s| match &s.kind {
            StepKind::Settle {
                routers,
                most_ms,
                after_cutover,
                ..
            } => (
                routers.iter().map(|r| r.router.clone()).collect(),
                *most_ms,
                *after_cutover,
            ),
            other => panic!("{other:?}"),
        })
}

#[test]
fn a_colour_a_counting_router_sent_traffic_to_settles_before_it_changes() {
    let f = green_was_live();
    let d = f.draft_until("settles").unwrap();
    assert_eq!(
        settle_of(&d, "green"),
        Some((vec!["public".to_owned()], 5_000, false))
    );
    let StepKind::Settle { routers, .. } = &d.steps[&StepId::Settle("green".into())].kind else {
        unreachable!()
    };
    // The count is read with the router's spec, which knows the colour.
    assert!(routers[0].spec.colour("green").is_some());
    assert_eq!(routers[0].backend, "exec");
    // Blue does not change: nothing to settle.
    assert_eq!(settle_of(&d, "blue"), None);
    // The router's `drain`, when longer, is the most it waits.
    let mut long = green_was_live();
    long.config.routers.get_mut("public").unwrap().drain = std::time::Duration::from_secs(30);
    let d = long.draft_until("settles").unwrap();
    assert_eq!(settle_of(&d, "green").map(|s| s.1), Some(30_000));
    // Before the switches, right before the change, in the plan.
    let doc = f.plan().unwrap();
    let ids: Vec<String> = doc.steps.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(ids, ["settle.green", "environment.green"]);
    assert_eq!(doc.steps[1].depends_on, [StepId::Settle("green".into())]);
    assert_eq!(doc.steps[0].kind.phase(), Phase::BeforeSwitch);
    assert!(doc.steps[0].kind.is_read_only());
}

#[test]
fn only_counting_routers_that_had_the_colour_are_waited_for() {
    // A router that cannot count: no settle (a drain by time is the
    // operator's choice, `drain`).
    let mut f = green_was_live();
    f.live.counts_sessions.clear();
    assert_eq!(settle_of(&f.draft_until("settles").unwrap(), "green"), None);
    // A router that never sent green traffic (nothing recorded, not
    // routed there, no preview of it): no settle.
    let mut f = green_was_live();
    f.state.routers.clear();
    assert_eq!(settle_of(&f.draft_until("settles").unwrap(), "green"), None);
    // Nothing recorded, but the router's preview shows green now: streams
    // through the preview count too.
    let mut f = green_was_live();
    f.state.routers.clear();
    f.live.routers.get_mut("public").unwrap().preview = Some("green".into());
    assert_eq!(
        settle_of(&f.draft_until("settles").unwrap(), "green"),
        Some((vec!["public".to_owned()], 5_000, false))
    );
}

#[test]
fn the_colour_a_cutover_drains_settles_after_the_switch_unless_its_drain_counts() {
    // Blue live, green the target, blue bumped: blue is drained.
    let mut f = counting_blue_live();
    let d = f.draft_until("settles").unwrap();
    assert_eq!(
        settle_of(&d, "blue"),
        Some((vec!["public".to_owned()], 5_000, true))
    );
    let doc = f.plan().unwrap();
    let settle = step_in(&doc, &StepId::Settle("blue".into()));
    assert_eq!(settle.kind.phase(), Phase::AfterSwitch);
    assert!(settle
        .depends_on
        .contains(&StepId::Cutover("public".into())));
    let blue = doc.steps.last().unwrap();
    assert_eq!(blue.id, StepId::Environment("blue".into()));
    assert!(blue.depends_on.contains(&StepId::Settle("blue".into())));
    // A drain that counts waits for that router already.
    let public = f.config.routers.get_mut("public").unwrap();
    public.drain = std::time::Duration::from_secs(20);
    public.drain_until_idle = true;
    let d = f.draft_until("settles").unwrap();
    assert_eq!(settle_of(&d, "blue"), None);
    assert!(d.steps.contains_key(&StepId::Drain("public".into())));
}

#[test]
fn validate_refuses_a_change_that_skips_its_settle() {
    let doc = green_was_live().plan().unwrap();
    let mut skipped = doc.clone();
    skipped.steps[1].depends_on.clear();
    let err = validate(&skipped).unwrap_err();
    assert_eq!(err.step, "environment.green");
    assert_eq!(
        err.problem,
        Problem::Unsettled(StepId::Settle("green".into()))
    );
    assert_eq!(
        err.to_string(),
        "step environment.green: it changes the colour without waiting for settle.green, which waits until no router holds streams to it"
    );
    // A settle after the switches must wait for the cut-over that drains.
    let f = counting_blue_live();
    let mut doc = f.plan().unwrap();
    let at = doc
        .steps
        .iter()
        .position(|s| s.id == StepId::Settle("blue".into()))
        .unwrap();
    doc.steps[at].depends_on.clear();
    let err = validate(&doc).unwrap_err();
    assert_eq!(err.step, "settle.blue");
    assert_eq!(
        err.problem,
        Problem::BeforeItsCutover(StepId::Cutover("public".into()))
    );
}

#[test]
fn a_counting_drain_shorter_than_a_retry_is_followed_by_a_settle() {
    // Blue drained by a counting drain of 1s: a stream in HAProxy's retry
    // can outlive it, so blue also settles (after the drain).
    let mut f = counting_blue_live();
    let public = f.config.routers.get_mut("public").unwrap();
    public.drain = std::time::Duration::from_secs(1);
    public.drain_until_idle = true;
    let d = f.draft_until("settles").unwrap();
    assert!(d.steps.contains_key(&StepId::Drain("public".into())));
    assert_eq!(
        settle_of(&d, "blue"),
        Some((vec!["public".to_owned()], 5_000, true))
    );
    let doc = f.plan().unwrap();
    let settle = step_in(&doc, &StepId::Settle("blue".into()));
    assert!(settle.depends_on.contains(&StepId::Drain("public".into())));
}

#[test]
fn a_preview_moved_away_from_a_colour_stops_showing_it_before_its_settle() {
    // Green is on public's preview; the configuration moves the preview to
    // red and bumps green: the settle waits for the repoint, then green's
    // streams.
    let mut f = Fixture::new(
        &[("blue", "1"), ("green", "2"), ("red", "1")],
        &[("public", "blue")],
    )
    .running("blue", "1")
    .running("green", "1")
    .running("red", "1")
    .routed("public", "blue")
    .recorded("blue", "1")
    .recorded("green", "1")
    .recorded("red", "1");
    f.live.routers.get_mut("public").unwrap().preview = Some("green".into());
    f.live.counts_sessions.insert("public".into());
    f.config.routers.get_mut("public").unwrap().preview = Some("red".into());
    let doc = f.plan().unwrap();
    let ids: Vec<String> = doc.steps.iter().map(|s| s.id.to_string()).collect();
    let at = |id: &str| {
        ids.iter()
            .position(|i| i == id)
            .unwrap_or_else(|| panic!("{ids:?}"))
    };
    assert!(at("preview.public") < at("settle.green"), "{ids:?}");
    assert!(at("settle.green") < at("environment.green"), "{ids:?}");
    assert!(doc.steps[at("settle.green")]
        .depends_on
        .contains(&StepId::Preview("public".into())));
}
