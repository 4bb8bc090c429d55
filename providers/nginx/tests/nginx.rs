//! The nginx router provider against a real nginx (DESIGN.md, "Real parts").

#[path = "../../../tests/support/nginx.rs"]
mod nginx_support;
#[path = "../../../tests/support/ports.rs"]
mod ports_support;

use cutover_nginx::Nginx;
use cutover_provider::{
    Colour, ErrorKind, LiveRouter, RouterDriftKind, RouterProvider, RouterSpec,
};
use nginx_support::{closed_address, ColourServer, NginxGuard, NginxSetup};
use serde_json::{json, Value};

fn colour(name: &str, server: &ColourServer) -> Colour {
    Colour {
        name: name.to_string(),
        endpoints: vec![server.address()],
    }
}

/// The router `public` with colours `colours`, driving `nginx`; `extra` adds
/// or overrides settings.
fn spec(nginx: &NginxGuard, colours: &[Colour], extra: Value) -> RouterSpec {
    let mut settings = json!({
        // Relative: resolved against the workdir, the harness's directory.
        "include": "cutover-live.conf",
        "pid_file": nginx.pid_file(),
        "marker": nginx.marker(),
    });
    for (k, v) in extra.as_object().expect("an object") {
        settings[k] = v.clone();
    }
    RouterSpec::new("public", colours.into(), settings, nginx.dir())
}

fn live(colour: &str) -> LiveRouter {
    LiveRouter {
        live: Some(colour.to_string()),
        raw: Some(colour.to_string()),
        ..Default::default()
    }
}

fn include(nginx: &NginxGuard) -> String {
    std::fs::read_to_string(nginx.include_path()).unwrap()
}

#[tokio::test]
async fn read_then_switch_blue_to_green() {
    let (blue, green) = (ColourServer::start("blue"), ColourServer::start("green"));
    let nginx = NginxGuard::start(&NginxSetup::new("blue", &blue.address()));
    let colours = [colour("blue", &blue), colour("green", &green)];
    let spec = spec(&nginx, &colours, json!({}));
    assert_eq!(nginx.get("/"), (200, "blue".to_string()));
    assert_eq!(Nginx.read(&spec).await.unwrap(), live("blue"));

    let old_workers = nginx.workers();
    Nginx.switch(&spec, &colours[1]).await.unwrap();
    // The switch returned: every worker is new, and traffic is green at once.
    let workers = nginx.workers();
    assert!(
        workers.iter().all(|w| !old_workers.contains(w)),
        "old workers {old_workers:?} still run: {workers:?}"
    );
    for _ in 0..20 {
        assert_eq!(nginx.get("/"), (200, "green".to_string()));
    }
    assert_eq!(Nginx.read(&spec).await.unwrap(), live("green"));
    assert!(include(&nginx).contains(&format!("server {};", green.address())));

    // Switching to what is live changes nothing, not even the workers.
    let workers = nginx.workers();
    Nginx.switch(&spec, &colours[1]).await.unwrap();
    assert_eq!(nginx.workers(), workers);

    // And back.
    Nginx.switch(&spec, &colours[0]).await.unwrap();
    assert_eq!(nginx.get("/"), (200, "blue".to_string()));
    assert_eq!(Nginx.read(&spec).await.unwrap(), live("blue"));
}

#[tokio::test]
async fn a_config_nginx_rejects_is_restored_and_traffic_stays() {
    let (blue, green) = (ColourServer::start("blue"), ColourServer::start("green"));
    let nginx = NginxGuard::start(&NginxSetup::new("blue", &blue.address()));
    let colours = [colour("blue", &blue), colour("green", &green)];
    let spec = spec(&nginx, &colours, json!({}));
    let before = include(&nginx);
    // The operator's part of the configuration breaks: nginx -t must refuse,
    // while the running master (which never re-read it) still serves.
    let main = std::fs::read_to_string(nginx.config_path()).unwrap();
    std::fs::write(
        nginx.config_path(),
        main.replacen("http {", "http {\n    bogus_directive on;", 1),
    )
    .unwrap();
    let workers = nginx.workers();

    let err = Nginx.switch(&spec, &colours[1]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("unknown directive \"bogus_directive\""),
        "{message}"
    );
    assert!(message.contains("was restored"), "{message}");
    assert_eq!(
        include(&nginx),
        before,
        "the include is restored byte for byte"
    );
    assert_eq!(nginx.workers(), workers, "nginx was not reloaded");
    assert_eq!(nginx.get("/"), (200, "blue".to_string()));
    assert_eq!(Nginx.read(&spec).await.unwrap(), live("blue"));
}

#[tokio::test]
async fn a_failed_reload_is_rolled_back() {
    let (blue, green) = (ColourServer::start("blue"), ColourServer::start("green"));
    let nginx = NginxGuard::start(&NginxSetup::new("blue", &blue.address()));
    let colours = [colour("blue", &blue), colour("green", &green)];
    // `nginx -t` checks a different (valid) main file than the master loads:
    // the master then keeps its old workers, which only the marker can tell.
    let main = std::fs::read_to_string(nginx.config_path()).unwrap();
    let checked = nginx.dir().join("checked.conf");
    std::fs::write(&checked, &main).unwrap();
    std::fs::write(
        nginx.config_path(),
        main.replacen("http {", "http {\n    bogus_directive on;", 1),
    )
    .unwrap();
    let spec = spec(
        &nginx,
        &colours,
        json!({"config": checked, "timeout": "1s"}),
    );
    let before = include(&nginx);

    let err = Nginx.switch(&spec, &colours[1]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.to_string().contains("was restored"), "{err}");
    assert_eq!(include(&nginx), before);
    assert_eq!(nginx.get("/"), (200, "blue".to_string()));
}

#[tokio::test]
async fn an_include_edited_without_reload_is_drift() {
    let (blue, green) = (ColourServer::start("blue"), ColourServer::start("green"));
    let nginx = NginxGuard::start(&NginxSetup::new("blue", &blue.address()));
    let colours = [colour("blue", &blue), colour("green", &green)];
    let spec = spec(&nginx, &colours, json!({}));
    let edited = include(&nginx)
        .replace(&blue.address(), &green.address())
        .replace("\"blue ", "\"green ");
    std::fs::write(nginx.include_path(), edited).unwrap();

    let read = Nginx.read(&spec).await.unwrap();
    assert_eq!(read.live.as_deref(), Some("blue"), "what the workers serve");
    assert_eq!(nginx.get("/"), (200, "blue".to_string()));
    assert_eq!(read.drift.len(), 1, "{:?}", read.drift);
    assert_eq!(read.drift[0].kind, RouterDriftKind::PersistedDiffers);
    assert!(
        read.drift[0]
            .message
            .contains("says green but the running nginx serves blue")
            && read.drift[0].message.contains("without a reload"),
        "{:?}",
        read.drift
    );

    // A switch to blue repairs it: the file and nginx agree again.
    Nginx.switch(&spec, &colours[0]).await.unwrap();
    assert_eq!(Nginx.read(&spec).await.unwrap(), live("blue"));
}

#[tokio::test]
async fn preflight_refuses_a_closed_endpoint() {
    let blue = ColourServer::start("blue");
    let nginx = NginxGuard::start(&NginxSetup::new("blue", &blue.address()));
    let green = Colour {
        name: "green".to_string(),
        endpoints: vec![closed_address()],
    };
    let spec = spec(&nginx, &[colour("blue", &blue), green.clone()], json!({}));
    let before = include(&nginx);

    let err = Nginx.preflight(&spec, &green).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err:?}");
    assert!(
        err.to_string().contains("does not accept connections"),
        "{err}"
    );
    let err = Nginx.switch(&spec, &green).await.unwrap_err();
    assert!(
        err.to_string().contains("does not accept connections"),
        "{err}"
    );
    assert_eq!(include(&nginx), before);
    Nginx
        .preflight(&spec, &colour("blue", &blue))
        .await
        .unwrap();
}

#[tokio::test]
async fn preview_moves_without_touching_live_traffic() {
    let (blue, green) = (ColourServer::start("blue"), ColourServer::start("green"));
    let nginx = NginxGuard::start(
        &NginxSetup::new("blue", &blue.address()).with_preview("blue", &blue.address()),
    );
    let colours = [colour("blue", &blue), colour("green", &green)];
    let spec = spec(
        &nginx,
        &colours,
        json!({"preview_include": "cutover-preview.conf"}),
    );
    let read = Nginx.read(&spec).await.unwrap();
    assert_eq!(read.preview.as_deref(), Some("blue"));
    let live_include = include(&nginx);

    Nginx.set_preview(&spec, Some(&colours[1])).await.unwrap();
    assert_eq!(nginx.get_preview("/"), (200, "green".to_string()));
    assert_eq!(nginx.get("/"), (200, "blue".to_string()));
    assert_eq!(
        include(&nginx),
        live_include,
        "the live include is untouched"
    );
    let read = Nginx.read(&spec).await.unwrap();
    assert_eq!(
        (read.live.as_deref(), read.preview.as_deref()),
        (Some("blue"), Some("green"))
    );
    assert!(read.drift.is_empty(), "{:?}", read.drift);

    // Removing the preview: nothing behind it, live traffic unchanged.
    Nginx.set_preview(&spec, None).await.unwrap();
    assert_eq!(nginx.get_preview("/").0, 502);
    assert_eq!(nginx.get("/"), (200, "blue".to_string()));
    assert_eq!(Nginx.read(&spec).await.unwrap().preview, None);

    // Without `preview_include` there is no preview.
    let plain = self::spec(&nginx, &colours, json!({}));
    let err = Nginx
        .set_preview(&plain, Some(&colours[1]))
        .await
        .unwrap_err();
    assert!(
        (err.kind(), err.field()) == (ErrorKind::Settings, Some("preview_include")),
        "{err:?}"
    );
}

/// What nginx's own view of upstream health means for a cut-over
/// (docs/nginx.md, "Readiness"): open-source nginx checks nothing itself;
/// it only counts failed requests (`max_fails`, `fail_timeout`), per worker,
/// unreadable from outside, never against a group's only server, and a
/// switch is a reload whose new workers start with none. So there is
/// nothing to wait for: a colour that failed requests a moment ago (through
/// the preview) is served at once, through the preview and after the switch.
#[tokio::test]
async fn nginx_holds_no_health_verdict_to_wait_for() {
    let blue = ColourServer::start("blue");
    let green_address = closed_address();
    let nginx = NginxGuard::start(
        &NginxSetup::new("blue", &blue.address()).with_preview("green", &green_address),
    );
    let green = Colour {
        name: "green".to_string(),
        endpoints: vec![green_address.clone()],
    };
    let spec = spec(&nginx, &[colour("blue", &blue), green.clone()], json!({}));

    // Down: requests through the preview fail, and nginx counts them.
    for _ in 0..3 {
        assert_eq!(nginx.get_preview("/").0, 502);
    }
    // Deployed: served at once, the failures are not held against the
    // upstream's only server.
    let _green = ColourServer::start_on("green", &green_address);
    assert_eq!(nginx.get_preview("/"), (200, "green".to_string()));
    Nginx.preflight(&spec, &green).await.unwrap();
    Nginx.switch(&spec, &green).await.unwrap();
    assert_eq!(nginx.get("/"), (200, "green".to_string()));
}

#[tokio::test]
async fn settings_errors_name_the_field() {
    let cases = [
        (
            json!({"include": "/i", "marker": "127.0.0.1:1"}),
            "pid_file",
        ),
        (
            json!({"include": "/i", "pid_file": "/p", "marker": "192.0.2.1:80"}),
            "marker",
        ),
        (
            json!({"include": "/i", "pid_file": "/p", "marker": "127.0.0.1:1", "reload": true}),
            "reload",
        ),
    ];
    for (body, field) in cases {
        match Nginx.validate(&body).unwrap_err() {
            err if err.kind() == ErrorKind::Settings => assert_eq!(err.field(), Some(field)),
            other => panic!("{body}: {other:?}"),
        }
    }
    Nginx
        .validate(&json!({"include": "/i", "pid_file": "/p", "marker": "127.0.0.1:1"}))
        .unwrap();
}

#[tokio::test]
async fn a_missing_master_is_unreachable() {
    let blue = ColourServer::start("blue");
    let dir = tempfile::tempdir().unwrap();
    let spec = RouterSpec::new(
        "public",
        vec![colour("blue", &blue)].into(),
        json!({"include": "i.conf", "pid_file": "nginx.pid", "marker": closed_address(), "timeout": "1s"}),
        dir.path(),
    );
    let err = Nginx
        .switch(&spec, &colour("blue", &blue))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err:?}");
    assert!(!dir.path().join("i.conf").exists(), "nothing was written");
}
