//! The HAProxy router provider against a real HAProxy (DESIGN.md, "Real parts").

#[path = "../../../tests/support/haproxy.rs"]
mod haproxy_support;
#[path = "../../../tests/support/ports.rs"]
mod ports_support;

use std::time::{Duration, Instant};

use cutover_haproxy::Haproxy;
use cutover_provider::{Colour, ErrorKind, LiveRouter, RouterProvider, RouterSpec};
use haproxy_support::{
    closed_address, http_get, ColourServer, HaproxyGuard, HaproxySetup, Immutable,
};
use serde_json::{json, Value};

fn colour(name: &str) -> Colour {
    Colour {
        name: name.to_string(),
        endpoints: vec![],
    }
}

/// The router `public` with colours blue and green, driving `haproxy`; `extra`
/// adds or overrides settings.
fn spec(haproxy: &HaproxyGuard, extra: Value) -> RouterSpec {
    let mut settings = json!({
        "socket": haproxy.socket(),
        // Relative: resolved against the workdir, the harness's directory.
        "map": "live.map",
    });
    for (k, v) in extra.as_object().expect("an object") {
        settings[k] = v.clone();
    }
    RouterSpec::new(
        "public",
        vec![colour("blue"), colour("green")].into(),
        settings,
        haproxy.dir(),
    )
}

fn live(colour: &str) -> LiveRouter {
    LiveRouter {
        live: Some(colour.to_string()),
        raw: Some(colour.to_string()),
        ..Default::default()
    }
}

/// GET / from a colour server directly, as cutover's health gate would.
fn colour_get(address: &str) -> (u16, String) {
    http_get(address.parse().expect("a socket address"), "/")
}

fn map_file(haproxy: &HaproxyGuard) -> String {
    std::fs::read_to_string(haproxy.map_path()).unwrap()
}

/// Blue and green colour servers, and HAProxy routing to blue with `adjust`
/// applied to the setup first. The servers must outlive the test's requests.
fn blue_green(
    adjust: impl FnOnce(&mut HaproxySetup),
) -> (ColourServer, ColourServer, HaproxyGuard) {
    let (blue, green) = (ColourServer::start("blue"), ColourServer::start("green"));
    let mut setup = HaproxySetup::blue_green(&blue.address(), &green.address(), "blue");
    adjust(&mut setup);
    let haproxy = HaproxyGuard::start(&setup);
    (blue, green, haproxy)
}

#[tokio::test]
async fn read_returns_the_live_colour() {
    let (_blue, _green, haproxy) = blue_green(|_| {});
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));

    let read = Haproxy.read(&spec(&haproxy, json!({}))).await.unwrap();
    assert_eq!(read, live("blue"));

    // The key `other` also holds `blue`.
    let read = Haproxy
        .read(&spec(&haproxy, json!({"key": "other"})))
        .await
        .unwrap();
    assert_eq!(read, live("blue"));

    // An absent key: nothing is live.
    let read = Haproxy
        .read(&spec(&haproxy, json!({"key": "absent"})))
        .await
        .unwrap();
    assert_eq!(read, LiveRouter::default());

    // A backend that is no colour's: raw says what HAProxy holds.
    let renamed = json!({"backends": {"blue": "be_blue"}});
    let read = Haproxy.read(&spec(&haproxy, renamed)).await.unwrap();
    assert_eq!(
        read,
        LiveRouter {
            live: None,
            raw: Some("blue".to_string()),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn switch_moves_traffic_and_survives_a_restart() {
    let (_blue, _green, mut haproxy) = blue_green(|_| {});
    let router = spec(&haproxy, json!({}));
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));

    Haproxy.preflight(&router, &colour("green")).await.unwrap();
    Haproxy.switch(&router, &colour("green")).await.unwrap();

    assert_eq!(haproxy.get("/"), (200, "green".to_string()));
    assert_eq!(Haproxy.read(&router).await.unwrap(), live("green"));
    // Only the router's key changed; the comment and other keys are kept.
    assert_eq!(
        map_file(&haproxy),
        "# managed by cutover's tests\nother blue\npublic green\n"
    );

    let old_pid = haproxy.pid();
    haproxy.restart();
    assert_ne!(haproxy.pid(), old_pid, "a new HAProxy process");
    assert_eq!(haproxy.get("/"), (200, "green".to_string()));
    assert_eq!(Haproxy.read(&router).await.unwrap(), live("green"));

    // And back: switching is symmetric and idempotent.
    Haproxy.switch(&router, &colour("blue")).await.unwrap();
    Haproxy.switch(&router, &colour("blue")).await.unwrap();
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));
    assert_eq!(
        map_file(&haproxy),
        "# managed by cutover's tests\nother blue\npublic blue\n"
    );
}

#[tokio::test]
async fn a_map_file_its_rewrite_would_refuse_stops_the_switch_before_haproxy_changes() {
    let (_blue, _green, haproxy) = blue_green(|_| {});
    let router = spec(&haproxy, json!({}));
    // A Latin-1 comment: not UTF-8, so the rewrite could not read the file.
    let mut bytes = std::fs::read(haproxy.map_path()).unwrap();
    bytes.extend_from_slice(b"# caf\xe9\n");
    std::fs::write(haproxy.map_path(), &bytes).unwrap();

    let err = Haproxy
        .switch(&router, &colour("green"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read the map file"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    // Nothing was: the traffic, HAProxy's map and the file are as before.
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));
    assert_eq!(
        Haproxy.read(&router).await.unwrap().live.as_deref(),
        Some("blue")
    );
    assert_eq!(std::fs::read(haproxy.map_path()).unwrap(), bytes);
}

#[tokio::test]
async fn a_map_file_that_cannot_be_replaced_stops_the_switch_before_haproxy_changes() {
    // The operator trial's defect: HAProxy switched, the rewrite failed, the
    // step failed with traffic moved and the state on the old colour.
    let (_blue, _green, haproxy) = blue_green(|_| {});
    let router = spec(&haproxy, json!({}));
    let before = std::fs::read(haproxy.map_path()).unwrap();
    let _immutable = Immutable::set(&haproxy.map_path());
    let err = Haproxy.switch(&router, &colour("green")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err:?}");
    assert!(
        err.describe()
            .contains("cannot be written, so nothing was changed"),
        "{}",
        err.describe()
    );
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));
    assert_eq!(
        Haproxy.read(&router).await.unwrap().live.as_deref(),
        Some("blue")
    );
    assert_eq!(std::fs::read(haproxy.map_path()).unwrap(), before);
}

#[tokio::test]
async fn switch_adds_an_absent_key() {
    let (_blue, _green, mut haproxy) = blue_green(|setup| {
        setup.map = "# nothing yet
"
        .to_string()
    });
    let router = spec(&haproxy, json!({}));
    // The frontend's default is blue.
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));
    assert_eq!(Haproxy.read(&router).await.unwrap(), LiveRouter::default());

    Haproxy.switch(&router, &colour("green")).await.unwrap();
    assert_eq!(haproxy.get("/"), (200, "green".to_string()));
    assert_eq!(map_file(&haproxy), "# nothing yet\npublic green\n");
    haproxy.restart();
    assert_eq!(haproxy.get("/"), (200, "green".to_string()));
}

#[tokio::test]
async fn preflight_refuses_a_backend_that_does_not_exist() {
    let (_blue, _green, haproxy) = blue_green(|_| {});
    let router = spec(&haproxy, json!({"backends": {"green": "nope"}}));
    let before = map_file(&haproxy);

    let err = Haproxy
        .preflight(&router, &colour("green"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err:?}");
    assert!(err.to_string().contains("no backend `nope`"), "{err}");

    let err = Haproxy.switch(&router, &colour("green")).await.unwrap_err();
    assert!(err.to_string().contains("no backend `nope`"), "{err}");
    // Nothing moved: not the file, not HAProxy's map, not the traffic.
    assert_eq!(map_file(&haproxy), before);
    assert!(haproxy
        .runtime(&format!("show map {}", haproxy.map_path().display()))
        .contains(" public blue\n"));
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));
}

/// A server HAProxy checks and sees DOWN may come up by itself: that is not
/// ready (the engine waits), not refused, and nothing changes.
#[tokio::test]
async fn a_backend_whose_checked_server_is_down_is_not_ready() {
    let blue = ColourServer::start("blue");
    let setup =
        HaproxySetup::blue_green(&blue.address(), &closed_address(), "blue").with_check("green");
    let haproxy = HaproxyGuard::start(&setup);
    haproxy.wait_for_server("green", "s1", "DOWN", Duration::from_secs(10));
    let router = spec(&haproxy, json!({}));
    let before = map_file(&haproxy);

    // blue's server is not checked: `no check` counts as up.
    Haproxy.preflight(&router, &colour("blue")).await.unwrap();

    for result in [
        Haproxy.preflight(&router, &colour("green")).await,
        Haproxy.switch(&router, &colour("green")).await,
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotReady, "{err:?}");
        assert!(
            err.message()
                .starts_with("HAProxy's own check has not yet seen backend `green`"),
            "{err}"
        );
        assert!(err.message().contains("green/s1 is DOWN"), "{err}");
        assert!(err.message().contains("last check L4CON"), "{err}");
    }
    assert_eq!(map_file(&haproxy), before);
    assert_eq!(Haproxy.read(&router).await.unwrap(), live("blue"));
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));
}

/// The first cut-over after a deploy, with HAProxy's default check (`check`:
/// every 2s, up after 2 passes, as the README configures it): cutover's gate
/// passes the moment the colour serves, HAProxy sees it up seconds later.
/// preflight says not ready until then, and ready after, without a change.
#[tokio::test]
async fn preflight_is_not_ready_until_haproxys_own_check_rose() {
    let blue = ColourServer::start("blue");
    let green_address = closed_address();
    let setup = HaproxySetup::blue_green(&blue.address(), &green_address, "blue")
        .with_server_options("green", "check");
    let haproxy = HaproxyGuard::start(&setup);
    haproxy.wait_for_server("green", "s1", "DOWN", Duration::from_secs(15));
    let router = spec(&haproxy, json!({}));
    let before = map_file(&haproxy);

    // The colour is deployed: it serves, as cutover's health gate would see.
    let _green = ColourServer::start_on("green", &green_address);
    assert_eq!(
        colour_get(&green_address),
        (200, "green".to_string()),
        "the green server answers"
    );
    // HAProxy needs two passing checks 2s apart: not yet.
    let err = Haproxy
        .preflight(&router, &colour("green"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotReady, "{err:?}");
    assert!(err.message().contains("green/s1 is DOWN"), "{err}");
    assert!(err.message().contains("rise 2"), "{err}");
    let err = Haproxy.switch(&router, &colour("green")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotReady, "{err:?}");
    assert_eq!(
        map_file(&haproxy),
        before,
        "a switch that is not ready changes nothing"
    );
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));

    // Ask again, as the engine does, until HAProxy's check has risen.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = err.describe();
    loop {
        match Haproxy.preflight(&router, &colour("green")).await {
            Ok(()) => break,
            Err(e) if e.kind() == ErrorKind::NotReady && Instant::now() < deadline => {
                last = e.describe();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("not ready after 15s ({last}), then: {}", e.describe()),
        }
    }
    Haproxy.switch(&router, &colour("green")).await.unwrap();
    assert_eq!(haproxy.get("/"), (200, "green".to_string()));
}

/// A server in maintenance or draining, or a backend HAProxy does not have,
/// will not come up by waiting: refused at once.
#[tokio::test]
async fn maintenance_drain_and_missing_backends_are_refused_at_once() {
    let (blue, green) = (ColourServer::start("blue"), ColourServer::start("green"));
    let setup = HaproxySetup::blue_green(&blue.address(), &green.address(), "blue")
        .with_server_options("green", "check disabled");
    let haproxy = HaproxyGuard::start(&setup);
    let router = spec(&haproxy, json!({}));
    let before = map_file(&haproxy);

    let refused = |err: cutover_provider::ProviderError, status: &str| {
        assert_eq!(err.kind(), ErrorKind::Refused, "{err:?}");
        assert!(
            err.message().contains(&format!("green/s1 is {status}")),
            "{err}"
        );
        assert!(err.message().contains("state ready"), "{err}");
    };
    let started = Instant::now();
    refused(
        Haproxy
            .preflight(&router, &colour("green"))
            .await
            .unwrap_err(),
        "MAINT",
    );
    refused(
        Haproxy.switch(&router, &colour("green")).await.unwrap_err(),
        "MAINT",
    );

    // Out of maintenance, but draining: still no new traffic.
    assert_eq!(
        haproxy.runtime("set server green/s1 state ready").trim(),
        ""
    );
    Haproxy.preflight(&router, &colour("green")).await.unwrap();
    assert_eq!(
        haproxy.runtime("set server green/s1 state drain").trim(),
        ""
    );
    refused(
        Haproxy
            .preflight(&router, &colour("green"))
            .await
            .unwrap_err(),
        "DRAIN",
    );

    let missing = spec(&haproxy, json!({"backends": {"green": "nope"}}));
    let err = Haproxy
        .preflight(&missing, &colour("green"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "no waiting");
    assert_eq!(map_file(&haproxy), before);
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));
}

#[tokio::test]
async fn a_map_haproxy_has_not_loaded_is_named() {
    let (_blue, _green, haproxy) = blue_green(|_| {});
    let router = spec(&haproxy, json!({"map": "other.map"}));
    let err = Haproxy.read(&router).await.unwrap_err().to_string();
    assert!(
        err.contains("has not loaded the map") && err.contains("other.map"),
        "{err}"
    );
    assert!(
        err.contains(&haproxy.map_path().display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_socket_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("missing.sock");
    let router = RouterSpec::new(
        "public",
        vec![colour("blue"), colour("green")].into(),
        json!({"socket": socket, "map": "live.map"}),
        dir.path(),
    );
    let err = Haproxy.read(&router).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err:?}");
    assert!(
        err.message().contains(&socket.display().to_string()),
        "{err}"
    );
    // The cause is said once, after the message, with the hint.
    assert_eq!(
        err.describe().matches("is unreachable").count(),
        1,
        "{}",
        err.describe()
    );
    assert!(
        err.describe()
            .contains("(is HAProxy running with `stats socket"),
        "{}",
        err.describe()
    );
    let err = Haproxy.switch(&router, &colour("green")).await.unwrap_err();
    assert!(err.to_string().contains("missing.sock"), "{err}");
}

#[test]
fn settings_errors_name_the_field() {
    let err = Haproxy
        .validate(&json!({"sockt": "/run/haproxy/admin.sock", "map": "/etc/haproxy/live.map"}))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Settings, "{err:?}");
    assert_eq!(err.field(), Some("sockt"));
    assert!(err.message().contains("sockt"), "{err}");
    Haproxy
        .validate(&json!({"socket": "/run/haproxy/admin.sock", "map": "/etc/haproxy/live.map", "timeout": "2s"}))
        .unwrap();
}

#[tokio::test]
async fn the_tcp_runtime_api_works_too() {
    let (_blue, _green, haproxy) = blue_green(|setup| setup.tcp_api = true);
    let address = haproxy.api_address().unwrap();
    let blue_green = spec(&haproxy, json!({}));
    let router = RouterSpec::new(
        blue_green.name(),
        blue_green.colours().clone(),
        json!({"address": address, "map": haproxy.map_path()}),
        blue_green.workdir(),
    );
    assert_eq!(Haproxy.read(&router).await.unwrap(), live("blue"));
    Haproxy.switch(&router, &colour("green")).await.unwrap();
    assert_eq!(haproxy.get("/"), (200, "green".to_string()));
}

#[tokio::test]
async fn a_silent_runtime_api_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    // Accepts connections and never answers.
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let router = RouterSpec::new(
        "public",
        vec![colour("blue"), colour("green")].into(),
        json!({"socket": socket, "map": "live.map", "timeout": "300ms"}),
        dir.path(),
    );
    let started = std::time::Instant::now();
    let err = Haproxy.read(&router).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(
        err.message().contains("silent.sock") && err.message().ends_with("after 300ms"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    server.abort();
}

#[tokio::test]
async fn preview_key_is_set_and_removed_without_touching_live() {
    let (_blue, _green, haproxy) = blue_green(|_| {});
    let spec = spec(&haproxy, json!({}));
    Haproxy
        .set_preview(&spec, Some(&colour("green")))
        .await
        .unwrap();
    let read = Haproxy.read(&spec).await.unwrap();
    assert_eq!(read.live.as_deref(), Some("blue"), "live traffic moved");
    assert_eq!(read.preview.as_deref(), Some("green"));
    let file = std::fs::read_to_string(haproxy.map_path()).unwrap();
    assert!(file.contains("public_preview green"), "{file}");
    assert!(file.contains("public blue"), "{file}");
    assert_eq!(haproxy.get("/"), (200, "blue".to_string()));

    Haproxy.set_preview(&spec, None).await.unwrap();
    let read = Haproxy.read(&spec).await.unwrap();
    assert_eq!(read.preview, None);
    assert_eq!(read.live.as_deref(), Some("blue"));
    let file = std::fs::read_to_string(haproxy.map_path()).unwrap();
    assert!(!file.contains("public_preview"), "{file}");
}

/// Routers that share one map file and switch at the same moment must all
/// end up in the file, not only in HAProxy's memory (a reload would undo
/// the ones a racing rewrite dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_switches_sharing_a_map_keep_every_key_in_the_file() {
    // Half the keys exist in the file, half are new (`add map`).
    let (_blue, _green, haproxy) = blue_green(|setup| {
        setup.map = (0..40)
            .filter(|i| i % 2 == 0)
            .map(|i| format!("r{i} blue\n"))
            .collect()
    });
    // As many at once as the engine's default parallelism allows: HAProxy
    // serves only a few runtime-API connections at a time (its stats socket
    // `maxconn`), so many more would only wait in its queue.
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(10));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let spec = spec(&haproxy, json!({ "key": format!("r{i}") }));
        let permits = permits.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            Haproxy.switch(&spec, &colour("green")).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let file = std::fs::read_to_string(haproxy.map_path()).unwrap();
    for i in 0..40 {
        assert!(
            file.lines().any(|l| l == format!("r{i} green")),
            "r{i} missing from the map file:\n{file}"
        );
    }
}

/// Reads share recent `show map` results (scale), but never one from before
/// a change this process made: a read right after a switch or a preview
/// change sees it.
#[tokio::test]
async fn a_read_right_after_a_switch_sees_the_switch() {
    let (_blue, _green, haproxy) = blue_green(|_| {});
    let spec = spec(&haproxy, json!({}));
    for _ in 0..3 {
        assert_eq!(Haproxy.read(&spec).await.unwrap(), live("blue"));
        Haproxy.switch(&spec, &colour("green")).await.unwrap();
        assert_eq!(Haproxy.read(&spec).await.unwrap(), live("green"));
        Haproxy
            .set_preview(&spec, Some(&colour("blue")))
            .await
            .unwrap();
        assert_eq!(
            Haproxy.read(&spec).await.unwrap().preview.as_deref(),
            Some("blue")
        );
        Haproxy.set_preview(&spec, None).await.unwrap();
        assert_eq!(Haproxy.read(&spec).await.unwrap().preview, None);
        Haproxy.switch(&spec, &colour("blue")).await.unwrap();
    }
}
