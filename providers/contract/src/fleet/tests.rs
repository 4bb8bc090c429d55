//! The fleet's logic against in-memory instances: every call is logged in
//! order, and faults are injected per instance.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::Colours;

/// One instance as the fake world holds it.
#[derive(Debug, Default)]
struct World {
    /// Instance (its `socket`) -> the colour it serves.
    live: BTreeMap<String, String>,
    /// Every call, in order: `read a`, `preflight a green`, `switch a green`.
    log: Vec<String>,
    /// Instances that cannot be read.
    unreadable: BTreeSet<String>,
    /// Instances whose read breaks off half-way (`failed`: killed while
    /// read).
    read_breaks: BTreeSet<String>,
    /// Instances whose preflight times out.
    preflight_times_out: BTreeSet<String>,
    /// Drain floors by instance, in milliseconds; absent: none.
    floors: BTreeMap<String, u64>,
    /// The preview by instance; `set_preview` sets or removes it.
    previews: BTreeMap<String, String>,
    /// Instances whose preflight refuses.
    refuse: BTreeSet<String>,
    /// Instances whose preflight is not ready.
    not_ready: BTreeSet<String>,
    /// Instances whose switch fails with this kind (a `timeout` or
    /// `failed` one after moving).
    fail_switch: BTreeMap<String, ErrorKind>,
    /// Instances whose switch to this colour fails (a switch back).
    fail_switch_to: BTreeMap<String, String>,
    /// Sessions by instance; absent: cannot tell.
    sessions: BTreeMap<String, u64>,
    /// Switches wait here, so that a fleet switched one instance after the
    /// other never gets past it.
    barrier: Option<Arc<tokio::sync::Barrier>>,
}

#[derive(Debug, Default, Clone)]
struct Fake(Arc<Mutex<World>>);

impl Fake {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note(&self, line: String) {
        self.world().log.push(line);
    }
}

fn socket(spec: &RouterSpec) -> String {
    spec.settings()["socket"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[async_trait::async_trait]
impl RouterProvider for Fake {
    fn validate(&self, settings: &Value) -> Result<(), ProviderError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Settings {
            socket: String,
            map: String,
            key: Option<String>,
            timeout: Option<u64>,
        }
        crate::parse_settings::<Settings>("fake", settings).map(|_| ())
    }

    async fn read(&self, spec: &RouterSpec) -> Result<LiveRouter, ProviderError> {
        let at = socket(spec);
        self.note(format!("read {at}"));
        let w = self.world();
        if w.unreadable.contains(&at) {
            let cause = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            return Err(ProviderError::unreachable(format!("fake at {at}"), cause));
        }
        if w.read_breaks.contains(&at) {
            let cause = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
            return Err(ProviderError::failed(format!("fake at {at} broke off")).with_source(cause));
        }
        let live = w.live.get(&at).cloned();
        Ok(LiveRouter {
            raw: live.clone(),
            live,
            preview: w.previews.get(&at).cloned(),
            ..Default::default()
        })
    }

    async fn preflight(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let at = socket(spec);
        self.note(format!("preflight {at} {}", target.name));
        let w = self.world();
        if w.refuse.contains(&at) {
            return Err(ProviderError::refused("backend in MAINT"));
        }
        if w.not_ready.contains(&at) {
            return Err(ProviderError::not_ready("DOWN 1/2"));
        }
        if w.preflight_times_out.contains(&at) {
            return Err(ProviderError::timeout(
                "fake's check",
                Duration::from_secs(2),
            ));
        }
        Ok(())
    }

    async fn switch(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let at = socket(spec);
        let barrier = self.world().barrier.clone();
        if let Some(barrier) = barrier {
            barrier.wait().await;
        }
        self.note(format!("switch {at} {}", target.name));
        let mut w = self.world();
        if w.fail_switch_to.get(&at) == Some(&target.name) {
            return Err(ProviderError::refused("the switch back was refused"));
        }
        match w.fail_switch.remove(&at) {
            None => {}
            Some(kind @ (ErrorKind::Timeout | ErrorKind::Failed)) => {
                w.live.insert(at, target.name.clone());
                return Err(ProviderError::failed("broke off").into_kind(kind));
            }
            Some(_) => {
                let cause = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                return Err(ProviderError::unreachable(format!("fake at {at}"), cause));
            }
        }
        w.live.insert(at, target.name.clone());
        Ok(())
    }

    fn counts_sessions(&self) -> bool {
        true
    }

    fn has_preview(&self) -> bool {
        true
    }

    async fn set_preview(
        &self,
        spec: &RouterSpec,
        target: Option<&Colour>,
    ) -> Result<(), ProviderError> {
        let at = socket(spec);
        let shown = target.map_or("none", |t| t.name.as_str());
        self.note(format!("preview {at} {shown}"));
        let mut w = self.world();
        match target {
            Some(t) => w.previews.insert(at, t.name.clone()),
            None => w.previews.remove(&at),
        };
        Ok(())
    }

    async fn drain_floor(
        &self,
        spec: &RouterSpec,
        colour: &Colour,
    ) -> Result<Option<DrainFloor>, ProviderError> {
        let at = socket(spec);
        Ok(self.world().floors.get(&at).map(|ms| DrainFloor {
            at_least_ms: *ms,
            why: format!("the delay of {} at {at}", colour.name),
        }))
    }

    async fn open_sessions(
        &self,
        spec: &RouterSpec,
        _: &Colour,
    ) -> Result<Option<u64>, ProviderError> {
        Ok(self.world().sessions.get(&socket(spec)).copied())
    }
}

impl FleetMember for Fake {
    const KIND: &'static str = "fake";
    const INSTANCE_ATTRIBUTES: &'static [&'static str] = &["socket", "map"];
}

fn colour(name: &str) -> Colour {
    Colour {
        name: name.to_string(),
        endpoints: vec![],
    }
}

fn spec(settings: Value) -> RouterSpec {
    let colours = Colours::new(vec![colour("blue"), colour("green")]);
    RouterSpec::new("public", colours, settings, "/etc/cutover")
}

/// A fleet of instances `a`, `b`, ... each on `blue`.
fn fleet(names: &[&str]) -> (Fleet<Fake>, Fake, RouterSpec) {
    let fake = Fake::default();
    let instances: Vec<Value> = names
        .iter()
        .map(|n| json!({"socket": n, "map": format!("/{n}.map")}))
        .collect();
    for n in names {
        fake.world().live.insert(n.to_string(), "blue".into());
    }
    let spec = spec(json!({"key": "public", "instances": instances}));
    (Fleet::new(fake.clone()), fake, spec)
}

fn log(fake: &Fake) -> Vec<String> {
    fake.world().log.clone()
}

fn live(fake: &Fake) -> Vec<(String, String)> {
    fake.world().live.clone().into_iter().collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn a_block_without_instances_is_the_single_provider() {
    let fake = Fake::default();
    fake.world().live.insert("/s".into(), "blue".into());
    let provider = Fleet::new(fake.clone());
    let spec = spec(json!({"socket": "/s", "map": "/m"}));
    let read = provider.read(&spec).await.unwrap();
    assert_eq!(
        (read.live.as_deref(), read.instances.len()),
        (Some("blue"), 0)
    );
    let told = provider
        .switch_instances(&spec, &colour("green"))
        .await
        .unwrap();
    assert!(told.is_empty(), "{told:?}");
    // No read or preflight of its own: the single switch checks itself.
    assert_eq!(log(&fake), ["read /s", "switch /s green"]);
}

#[tokio::test]
async fn instances_that_agree_read_as_one_router() {
    let (provider, _, spec) = fleet(&["a", "b"]);
    let read = provider.read(&spec).await.unwrap();
    assert_eq!(read.live.as_deref(), Some("blue"));
    assert!(read.drift.is_empty(), "{:?}", read.drift);
    let names: Vec<(&str, Option<&str>)> = read
        .instances
        .iter()
        .map(|i| (i.name.as_str(), i.live.as_deref()))
        .collect();
    assert_eq!(names, [("a", Some("blue")), ("b", Some("blue"))]);
}

#[tokio::test]
async fn an_instance_that_disagrees_is_drift_naming_it() {
    let (provider, fake, spec) = fleet(&["a", "b", "c"]);
    fake.world().live.insert("b".into(), "green".into());
    let read = provider.read(&spec).await.unwrap();
    assert_eq!(read.live.as_deref(), Some("blue"), "what most say");
    let drift: Vec<(RouterDriftKind, &str)> = read
        .drift
        .iter()
        .map(|d| (d.kind, d.message.as_str()))
        .collect();
    assert_eq!(
        drift,
        [(
            RouterDriftKind::InstancesDisagree,
            "instance `b` sends traffic to green while instance `a`, instance `c` send it to \
             blue: a switch moves every instance to the router's colour"
        )]
    );
    assert_eq!(read.serving().collect::<Vec<_>>(), ["blue", "green"]);
    // On a tie the first instance's colour is the router's.
    let (provider, fake, spec) = fleet(&["a", "b"]);
    fake.world().live.insert("a".into(), "green".into());
    let read = provider.read(&spec).await.unwrap();
    assert_eq!(read.live.as_deref(), Some("green"));
    assert!(read.drift[0]
        .message
        .starts_with("instance `b` sends traffic to blue"));
}

#[tokio::test]
async fn an_instance_that_cannot_be_read_is_an_error_naming_it() {
    let (provider, fake, spec) = fleet(&["a", "b"]);
    fake.world().unreadable.insert("b".into());
    let e = provider.read(&spec).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable);
    assert_eq!(
        e.describe(),
        "instance `b`: fake at b is unreachable: connection refused"
    );
}

#[tokio::test]
async fn every_instance_is_preflighted_before_any_switches() {
    let (provider, fake, spec) = fleet(&["a", "b"]);
    let told = provider
        .switch_instances(&spec, &colour("green"))
        .await
        .unwrap();
    let names: Vec<&str> = told.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(told.iter().any(|t| t.offset.is_zero()), "{told:?}");
    let log = log(&fake);
    let last_check = log
        .iter()
        .rposition(|l| l.starts_with("preflight"))
        .unwrap();
    let first_switch = log.iter().position(|l| l.starts_with("switch")).unwrap();
    assert!(last_check < first_switch, "{log:?}");
    assert_eq!(log.iter().filter(|l| l.starts_with("preflight")).count(), 2);
    assert_eq!(live(&fake), pairs(&[("a", "green"), ("b", "green")]));
}

#[tokio::test]
async fn instances_switch_concurrently() {
    let (provider, fake, spec) = fleet(&["a", "b"]);
    // Each switch waits for the other: one after the other never returns.
    fake.world().barrier = Some(Arc::new(tokio::sync::Barrier::new(2)));
    let green = colour("green");
    let switch = provider.switch_instances(&spec, &green);
    let told = tokio::time::timeout(Duration::from_secs(10), switch)
        .await
        .expect("both instances switched at once")
        .unwrap();
    assert_eq!(told.len(), 2);
}

#[tokio::test]
async fn a_refusing_instance_stops_the_switch_before_any_moves() {
    let (provider, fake, spec) = fleet(&["a", "b", "c"]);
    fake.world().not_ready.insert("a".into());
    fake.world().refuse.insert("b".into());
    let e = provider
        .switch_instances(&spec, &colour("green"))
        .await
        .unwrap_err();
    // Waiting would not help `b`: refused, naming it (and `a`).
    assert_eq!(e.kind(), ErrorKind::Refused);
    assert_eq!(
        e.describe(),
        "instance `b` (and instance `a`: DOWN 1/2): backend in MAINT"
    );
    assert!(!log(&fake).iter().any(|l| l.starts_with("switch")));
    // Only waiting for one: not ready, so the engine waits for the fleet.
    fake.world().refuse.clear();
    let e = provider
        .preflight(&spec, &colour("green"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.describe().as_str()),
        (ErrorKind::NotReady, "instance `a`: DOWN 1/2")
    );
}

#[tokio::test]
async fn a_failed_instance_sends_the_others_back() {
    let (provider, fake, spec) = fleet(&["a", "b"]);
    fake.world()
        .fail_switch
        .insert("b".into(), ErrorKind::Unreachable);
    let e = provider
        .switch_instances(&spec, &colour("green"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "b did not move");
    assert_eq!(
        e.describe(),
        "instance `b` was not switched to green; switched back: instance `a` to blue; no \
         instance was left on the new colour: fake at b is unreachable: connection refused"
    );
    assert_eq!(live(&fake), pairs(&[("a", "blue"), ("b", "blue")]));
    let log = log(&fake);
    assert_eq!(
        log.last().map(String::as_str),
        Some("switch a blue"),
        "{log:?}"
    );
}

#[tokio::test]
async fn an_instance_that_may_have_moved_goes_back_too() {
    let (provider, fake, spec) = fleet(&["a", "b"]);
    fake.world().live.insert("a".into(), "green".into());
    fake.world()
        .fail_switch
        .insert("b".into(), ErrorKind::Timeout);
    let e = provider
        .switch_instances(&spec, &colour("green"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    // Each goes back to what it served before: `a` was on green already.
    assert_eq!(live(&fake), pairs(&[("a", "green"), ("b", "blue")]));
    assert!(
        e.describe()
            .contains("switched back: instance `a` to green, instance `b` to blue"),
        "{}",
        e.describe()
    );
}

#[tokio::test]
async fn an_instance_left_on_the_new_colour_is_said_and_fails() {
    let (provider, fake, spec) = fleet(&["a", "b"]);
    fake.world()
        .fail_switch
        .insert("b".into(), ErrorKind::Unreachable);
    fake.world()
        .fail_switch_to
        .insert("a".into(), "blue".into());
    let e = provider
        .switch_instances(&spec, &colour("green"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Failed, "part of the fleet moved");
    assert!(
        e.describe().starts_with(
            "instance `b` was not switched to green; instance `a` could not be switched back \
             to blue: the switch back was refused: it may send traffic to green"
        ),
        "{}",
        e.describe()
    );
    assert_eq!(live(&fake), pairs(&[("a", "green"), ("b", "blue")]));
}

#[tokio::test]
async fn open_sessions_are_summed_over_the_instances() {
    let (provider, fake, spec) = fleet(&["a", "b"]);
    fake.world().sessions.insert("a".into(), 2);
    fake.world().sessions.insert("b".into(), 3);
    let blue = colour("blue");
    assert_eq!(provider.open_sessions(&spec, &blue).await.unwrap(), Some(5));
    fake.world().sessions.remove("b");
    assert_eq!(provider.open_sessions(&spec, &blue).await.unwrap(), None);
}

/// An instance whose read before the switch breaks off (killed while it
/// was read) has moved nothing: the error is not one that may have moved
/// traffic (the engine would then switch the router back, and say it
/// could not), names the instance and says no instance was switched; no
/// instance is asked to switch. The same for a preflight that times out.
#[tokio::test]
async fn a_failure_before_any_switch_says_nothing_moved() {
    let (provider, fake, spec) = fleet(&["a", "b"]);
    fake.world().read_breaks.insert("b".into());
    let e = provider
        .switch_instances(&spec, &colour("green"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{}", e.describe());
    assert_eq!(
        e.describe(),
        "instance `b`: no instance was switched, as reading it before the switch failed: fake \
         at b broke off: broken pipe"
    );
    assert_eq!(log(&fake), ["read a", "read b"]);
    assert_eq!(live(&fake), pairs(&[("a", "blue"), ("b", "blue")]));

    let (provider, fake, spec) = fleet(&["a", "b"]);
    fake.world().preflight_times_out.insert("a".into());
    let e = provider
        .switch_instances(&spec, &colour("green"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{}", e.describe());
    assert_eq!(
        e.describe(),
        "instance `a`: no instance was switched, as checking it before the switch failed: \
         fake's check timed out after 2s"
    );
    assert!(!log(&fake).iter().any(|l| l.starts_with("switch")));
    // A read alone that breaks off is said as it is.
    let (provider, fake, spec) = fleet(&["a", "b"]);
    fake.world().read_breaks.insert("b".into());
    let e = provider.read(&spec).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Failed);
}

/// Every method the single-instance provider implements reaches it through
/// the fleet, for a block of one instance and for each instance of a
/// fleet: the drain floor (the longest instance's), the preview.
#[tokio::test]
async fn every_method_is_forwarded_to_the_instances() {
    let blue = colour("blue");
    let fake = Fake::default();
    fake.world().floors.insert("/s".into(), 5_000);
    let single = Fleet::new(fake.clone());
    let one = spec(json!({"socket": "/s", "map": "/m"}));
    assert!(single.has_preview() && single.counts_sessions());
    let floor = single.drain_floor(&one, &blue).await.unwrap();
    assert_eq!(
        floor,
        Some(DrainFloor {
            at_least_ms: 5_000,
            why: "the delay of blue at /s".into()
        })
    );
    single
        .set_preview(&one, Some(&colour("green")))
        .await
        .unwrap();
    assert_eq!(
        single.read(&one).await.unwrap().preview.as_deref(),
        Some("green")
    );

    let (provider, fake, spec) = fleet(&["a", "b", "c"]);
    assert_eq!(provider.drain_floor(&spec, &blue).await.unwrap(), None);
    fake.world().floors.insert("a".into(), 2_000);
    fake.world().floors.insert("b".into(), 7_000);
    fake.world().floors.insert("c".into(), 7_000);
    let floor = provider.drain_floor(&spec, &blue).await.unwrap().unwrap();
    assert_eq!(
        (floor.at_least_ms, floor.why.as_str()),
        (7_000, "the delay of blue at b on instance `b`")
    );

    // The preview: set on every instance, read per instance, and removed
    // from every instance, also from one that alone still has it.
    provider
        .set_preview(&spec, Some(&colour("green")))
        .await
        .unwrap();
    let read = provider.read(&spec).await.unwrap();
    assert_eq!(read.preview.as_deref(), Some("green"));
    fake.world().previews.remove("a");
    let read = provider.read(&spec).await.unwrap();
    assert_eq!(read.preview, None, "the instances disagree");
    let previews: Vec<Option<&str>> = read
        .instances
        .iter()
        .map(|i| i.preview.as_deref())
        .collect();
    assert_eq!(previews, [None, Some("green"), Some("green")]);
    assert_eq!(read.any_preview(), Some("green"));
    provider.set_preview(&spec, None).await.unwrap();
    assert!(fake.world().previews.is_empty());
    assert_eq!(provider.read(&spec).await.unwrap().any_preview(), None);
}

fn field(body: Value) -> (Option<String>, String) {
    let e = Fleet::new(Fake::default()).validate(&body).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Settings, "{e:?}");
    (e.field().map(str::to_string), e.describe())
}

#[test]
fn settings_errors_point_at_the_instance_attribute() {
    let a = json!({"socket": "a", "map": "/a"});
    let cases = [
        (json!({"instances": []}), "instances"),
        (json!({"instances": "a"}), "instances"),
        (json!({"socket": "s", "instances": [a]}), "socket"),
        (
            json!({"instances": [a, {"socket": "b", "key": "k"}]}),
            "instances[1].key",
        ),
        (
            json!({"instances": [a, {"socket": "b"}]}),
            "instances[1].map",
        ),
        (
            json!({"instances": [a, {"socket": "a", "map": "/b"}]}),
            "instances[1]",
        ),
        (
            json!({"instances": [{"name": "x", "socket": "a", "map": "/a"}, {"name": "x", "socket": "b", "map": "/b"}]}),
            "instances[1].name",
        ),
        (
            json!({"instances": [a, {"name": 1, "socket": "b", "map": "/b"}]}),
            "instances[1].name",
        ),
        (json!({"instances": [a, 7]}), "instances[1]"),
        // A shared attribute's error is the block's.
        (json!({"timeout": "soon", "instances": [a]}), "timeout"),
    ];
    for (body, expected) in cases {
        let (got, message) = field(body.clone());
        assert_eq!(got.as_deref(), Some(expected), "{body}: {message}");
    }
    let (_, message) = field(json!({"instances": [a, {"sockt": "b", "map": "/b"}]}));
    assert!(message.contains("did you mean `socket`?"), "{message}");
    let (_, message) = field(json!({"instances": [a, {"socket": "b"}]}));
    assert!(
        message.starts_with("instance `b`: in `fake` block: missing field `map`"),
        "{message}"
    );
    assert!(Fleet::new(Fake::default())
        .validate(&json!({"key": "k", "instances": [a, {"socket": "b", "map": "/b"}]}))
        .is_ok());
}
