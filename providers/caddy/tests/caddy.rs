//! The Caddy router provider against a real Caddy (DESIGN.md, "Real parts").

#[path = "../../../tests/support/caddy.rs"]
mod caddy_support;
#[path = "../../../tests/support/ports.rs"]
mod ports_support;

use caddy_support::{
    closed_address, proxy_route, static_route, CaddyGuard, CaddySetup, ColourServer,
};
use cutover_caddy::Caddy;
use cutover_provider::{Colour, ErrorKind, LiveRouter, RouterProvider, RouterSpec};
use serde_json::{json, Value};

fn colour(name: &str, server: &ColourServer) -> Colour {
    Colour {
        name: name.to_string(),
        endpoints: vec![server.address()],
    }
}

/// The blue and green colour servers, and the colours naming them.
struct Colours {
    blue: ColourServer,
    green: ColourServer,
}

impl Colours {
    fn start() -> Self {
        Colours {
            blue: ColourServer::start("blue"),
            green: ColourServer::start("green"),
        }
    }

    fn blue(&self) -> Colour {
        colour("blue", &self.blue)
    }

    fn green(&self) -> Colour {
        colour("green", &self.green)
    }
}

/// The router `public` with colours blue and green, driving `caddy`; `extra`
/// adds or overrides settings.
fn spec(caddy: &CaddyGuard, colours: &Colours, extra: Value) -> RouterSpec {
    let mut settings = json!({ "admin": caddy.admin_address(), "timeout": "5s" });
    for (k, v) in extra.as_object().expect("an object") {
        settings[k] = v.clone();
    }
    RouterSpec::new(
        "public",
        vec![colours.blue(), colours.green()].into(),
        settings,
        caddy.dir(),
    )
}

fn live(colour: &Colour) -> LiveRouter {
    LiveRouter {
        live: Some(colour.name.clone()),
        raw: Some(colour.endpoints.join(", ")),
        ..Default::default()
    }
}

#[tokio::test]
async fn read_returns_the_live_colour() {
    let colours = Colours::start();
    let caddy = CaddyGuard::start(&CaddySetup::live_route(&colours.blue.address()));
    assert_eq!(caddy.get("/"), (200, "blue".to_string()));

    let read = Caddy
        .read(&spec(&caddy, &colours, json!({})))
        .await
        .unwrap();
    assert_eq!(read, live(&colours.blue()));

    // Upstreams that are no colour's: raw says what Caddy holds.
    let both = spec(&caddy, &colours, json!({}));
    let unknown = RouterSpec::new(
        both.name(),
        vec![colours.green()].into(),
        both.settings().clone(),
        both.workdir(),
    );
    let read = Caddy.read(&unknown).await.unwrap();
    assert_eq!(read.live, None);
    assert_eq!(read.raw, Some(colours.blue.address()));

    // No such route: nothing is live.
    let read = Caddy
        .read(&spec(&caddy, &colours, json!({"route_id": "absent"})))
        .await
        .unwrap();
    assert_eq!(read, LiveRouter::default());
}

#[tokio::test]
async fn switch_moves_traffic_and_leaves_other_routes() {
    let colours = Colours::start();
    let caddy = CaddyGuard::start(&CaddySetup::live_route(&colours.blue.address()));
    let spec = spec(&caddy, &colours, json!({}));
    let other_before = caddy.routes("srv0")[0].clone();

    Caddy.preflight(&spec, &colours.green()).await.unwrap();
    assert_eq!(
        caddy.get("/"),
        (200, "blue".to_string()),
        "preflight changes nothing"
    );
    Caddy.switch(&spec, &colours.green()).await.unwrap();

    assert_eq!(caddy.get("/"), (200, "green".to_string()));
    assert_eq!(caddy.get("/other"), (200, "other".to_string()));
    assert_eq!(caddy.routes("srv0")[0], other_before);
    assert_eq!(Caddy.read(&spec).await.unwrap(), live(&colours.green()));

    // Switching to the colour that is live already changes nothing and succeeds.
    Caddy.switch(&spec, &colours.green()).await.unwrap();
    assert_eq!(caddy.get("/"), (200, "green".to_string()));
}

#[tokio::test]
async fn first_run_creates_the_route_after_the_operators_routes() {
    let colours = Colours::start();
    let caddy = CaddyGuard::start(&CaddySetup::with_routes(vec![static_route(
        "/other", "other",
    )]));
    let spec = spec(&caddy, &colours, json!({}));
    assert_eq!(Caddy.read(&spec).await.unwrap(), LiveRouter::default());

    Caddy.switch(&spec, &colours.green()).await.unwrap();

    let routes = caddy.routes("srv0");
    assert_eq!(routes[0], static_route("/other", "other"));
    assert_eq!(
        routes[1],
        proxy_route("cutover-public", &[colours.green.address()])
    );
    assert_eq!(caddy.get("/"), (200, "green".to_string()));
    assert_eq!(caddy.get("/other"), (200, "other".to_string()));
    assert_eq!(Caddy.read(&spec).await.unwrap(), live(&colours.green()));
}

#[tokio::test]
async fn first_run_with_a_host_matcher_goes_first() {
    let colours = Colours::start();
    // The operator's catch-all would swallow the host if cutover appended.
    let catch_all = json!({"handle": [{"handler": "static_response", "body": "operator"}]});
    let caddy = CaddyGuard::start(&CaddySetup::with_routes(vec![catch_all.clone()]));
    let spec = spec(&caddy, &colours, json!({"match_host": ["app.test"]}));

    Caddy.switch(&spec, &colours.blue()).await.unwrap();

    let routes = caddy.routes("srv0");
    assert_eq!(routes[0]["match"], json!([{"host": ["app.test"]}]));
    assert_eq!(routes[1], catch_all);
    assert_eq!(caddy.get_host("app.test", "/"), (200, "blue".to_string()));
    assert_eq!(
        caddy.get_host("else.test", "/"),
        (200, "operator".to_string())
    );
}

#[tokio::test]
async fn a_target_that_is_down_is_refused() {
    let colours = Colours::start();
    let caddy = CaddyGuard::start(&CaddySetup::live_route(&colours.blue.address()));
    let spec = spec(&caddy, &colours, json!({}));
    let down = Colour {
        name: "green".to_string(),
        endpoints: vec![closed_address()],
    };
    let before = caddy.config();

    for result in [
        Caddy.preflight(&spec, &down).await,
        Caddy.switch(&spec, &down).await,
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Refused, "{err:?}");
        let err = err.to_string();
        assert!(
            err.contains(&down.endpoints[0]) && err.contains("does not answer"),
            "{err}"
        );
    }
    assert_eq!(caddy.config(), before);
    assert_eq!(caddy.get("/"), (200, "blue".to_string()));
}

#[tokio::test]
async fn a_concurrent_edit_is_detected_not_overwritten() {
    let colours = Colours::start();
    let caddy = CaddyGuard::start(&CaddySetup::live_route(&colours.blue.address()));
    let spec = spec(&caddy, &colours, json!({}));

    let snapshot = Caddy.snapshot(&spec).await.unwrap();
    assert!(
        snapshot.etag().starts_with("\"/config/ "),
        "{}",
        snapshot.etag()
    );
    // Someone else edits the config between cutover's read and its change.
    let (status, body) = caddy.admin(
        "POST",
        "/config/apps/http/servers/srv0/routes/0/handle/0/body",
        Some(&json!("edited")),
    );
    assert_eq!(status, 200, "{body}");
    let edited = caddy.config();

    let err = Caddy
        .switch_from(&spec, &colours.green(), &snapshot)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains("ETag mismatch") && err.contains("nothing was changed"),
        "{err}"
    );
    assert!(
        err.contains("run plan again") && err.contains("router `public`"),
        "{err}"
    );
    assert_eq!(caddy.config(), edited, "the other edit is kept");
    assert_eq!(caddy.get("/"), (200, "blue".to_string()));
    assert_eq!(caddy.get("/other"), (200, "edited".to_string()));

    // A fresh switch, from a fresh read, goes through.
    Caddy.switch(&spec, &colours.green()).await.unwrap();
    assert_eq!(caddy.get("/"), (200, "green".to_string()));
}

/// Routers that share one Caddy switch at the same moment (the engine runs
/// independent cut-overs in parallel): each change is guarded by the ETag
/// of the whole config, so they must queue, not take one another for a
/// concurrent edit and fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_switches_of_routers_sharing_a_caddy_all_succeed() {
    let colours = Colours::start();
    let routers = ["a", "b", "c", "d", "e", "f"];
    let routes = routers
        .iter()
        .map(|r| {
            let mut route = proxy_route(&format!("cutover-{r}"), &[colours.blue.address()]);
            route["match"] = json!([{"host": [format!("{r}.test")]}]);
            route
        })
        .collect();
    let caddy = CaddyGuard::start(&CaddySetup::with_routes(routes));
    let mut switches = tokio::task::JoinSet::new();
    for r in routers {
        let base = spec(&caddy, &colours, json!({}));
        let router = RouterSpec::new(
            r,
            base.colours().clone(),
            base.settings().clone(),
            base.workdir(),
        );
        let green = colours.green();
        switches.spawn(async move { (r, Caddy.switch(&router, &green).await) });
    }
    while let Some(done) = switches.join_next().await {
        let (r, result) = done.unwrap();
        if let Err(e) = result {
            panic!("router {r}: {}", e.describe());
        }
    }
    for r in routers {
        assert_eq!(
            caddy.get_host(&format!("{r}.test"), "/"),
            (200, "green".to_string()),
            "router {r}"
        );
    }
}

/// What Caddy 2.6.2's own health checks mean for a cut-over (docs/caddy.md,
/// "Readiness"): before the switch Caddy may hold a bad verdict on the
/// target's address (here its passive check, through a preview route, while
/// the colour was down), but the switch is a config load that starts every
/// `reverse_proxy` with a fresh view, and a new upstream counts as healthy.
/// So there is nothing to wait for: preflight is ready, and the first
/// request after the switch is served by the target.
#[tokio::test]
async fn caddys_health_verdict_does_not_outlive_the_switch() {
    let colours = Colours::start();
    let green_address = closed_address();
    // The operator's checks: passive on both routes, active on the live one.
    let passive = json!({"fail_duration": "30s", "max_fails": 1});
    let mut live = proxy_route("cutover-public", &[colours.blue.address()]);
    live["handle"][0]["health_checks"] = json!({
        "passive": passive,
        "active": {"uri": "/", "interval": "30s", "timeout": "1s"},
    });
    let mut preview = proxy_route(
        "cutover-public-preview",
        std::slice::from_ref(&green_address),
    );
    preview["handle"][0]["health_checks"] = json!({ "passive": passive });
    preview["match"] = json!([{"host": ["preview.test"]}]);
    let caddy = CaddyGuard::start(&CaddySetup::with_routes(vec![preview, live]));
    let green = Colour {
        name: "green".to_string(),
        endpoints: vec![green_address.clone()],
    };
    let spec = RouterSpec::new(
        "public",
        vec![colours.blue(), green.clone()].into(),
        json!({ "admin": caddy.admin_address(), "timeout": "5s" }),
        caddy.dir(),
    );

    // The colour is down: a request through the preview fails, and Caddy
    // counts it against the address.
    assert_ne!(caddy.get_host("preview.test", "/").0, 200);
    let (status, upstreams) = caddy.admin("GET", "/reverse_proxy/upstreams", None);
    assert_eq!(status, 200, "{upstreams}");
    let fails = |upstreams: &str| -> u64 {
        let all: Value = serde_json::from_str(upstreams).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|u| u["address"] == green_address.as_str())
            .map_or(0, |u| u["fails"].as_u64().unwrap())
    };
    assert!(fails(&upstreams) >= 1, "{upstreams}");

    // Deployed: the colour serves. Caddy's verdict on its address stands
    // (30s), so the preview still refuses it...
    let _green = caddy_support::ColourServer::start_on("green", &green_address);
    assert_eq!(caddy.get_host("preview.test", "/").0, 503);
    // ... yet the switch starts afresh: no waiting, served at once.
    Caddy.preflight(&spec, &green).await.unwrap();
    Caddy.switch(&spec, &green).await.unwrap();
    assert_eq!(caddy.get("/"), (200, "green".to_string()));
    let (_, upstreams) = caddy.admin("GET", "/reverse_proxy/upstreams", None);
    assert_eq!(fails(&upstreams), 0, "{upstreams}");
    assert_eq!(
        caddy.get_host("preview.test", "/"),
        (200, "green".to_string())
    );
}

#[tokio::test]
async fn a_restart_without_resume_loses_the_route() {
    let colours = Colours::start();
    let mut caddy = CaddyGuard::start(&CaddySetup::with_routes(vec![static_route(
        "/other", "other",
    )]));
    let spec = spec(&caddy, &colours, json!({}));
    Caddy.switch(&spec, &colours.green()).await.unwrap();
    assert_eq!(Caddy.read(&spec).await.unwrap(), live(&colours.green()));
    let pid = caddy.pid();

    caddy.restart();

    assert_ne!(caddy.pid(), pid);
    assert_eq!(Caddy.read(&spec).await.unwrap(), LiveRouter::default());
}

#[tokio::test]
async fn preview_route_gets_preview_traffic_only() {
    let colours = Colours::start();
    let caddy = CaddyGuard::start(&CaddySetup::live_route(&colours.blue.address()));
    let spec = spec(&caddy, &colours, json!({"preview_host": "preview.test"}));

    Caddy
        .set_preview(&spec, Some(&colours.green()))
        .await
        .unwrap();

    assert_eq!(
        caddy.get_host("preview.test", "/"),
        (200, "green".to_string())
    );
    assert_eq!(caddy.get("/"), (200, "blue".to_string()));
    assert_eq!(caddy.get("/other"), (200, "other".to_string()));
    let read = Caddy.read(&spec).await.unwrap();
    assert_eq!(read.live.as_deref(), Some("blue"));
    assert_eq!(read.preview.as_deref(), Some("green"));

    // Point it elsewhere, then remove it.
    Caddy
        .set_preview(&spec, Some(&colours.blue()))
        .await
        .unwrap();
    assert_eq!(
        caddy.get_host("preview.test", "/"),
        (200, "blue".to_string())
    );
    Caddy.set_preview(&spec, None).await.unwrap();
    let read = Caddy.read(&spec).await.unwrap();
    assert_eq!(read, live(&colours.blue()));
    assert_eq!(caddy.routes("srv0").as_array().unwrap().len(), 2);

    // Without `preview_host` there is no preview route to set.
    let plain = self::spec(&caddy, &colours, json!({}));
    let err = Caddy
        .set_preview(&plain, Some(&colours.green()))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ErrorKind::Settings, Some("preview_host")),
        "{err:?}"
    );

    // A preview route left in place when `preview_host` (and `preview`)
    // left the block: read by its `@id`, and removed by it.
    Caddy
        .set_preview(&spec, Some(&colours.green()))
        .await
        .unwrap();
    assert_eq!(
        Caddy.read(&plain).await.unwrap().preview.as_deref(),
        Some("green")
    );
    Caddy.set_preview(&plain, None).await.unwrap();
    assert_eq!(Caddy.read(&plain).await.unwrap(), live(&colours.blue()));
    assert_eq!(caddy.routes("srv0").as_array().unwrap().len(), 2);
    assert_ne!(
        caddy.get_host("preview.test", "/"),
        (200, "green".to_string())
    );
}

#[tokio::test]
async fn unix_admin_socket() {
    let colours = Colours::start();
    let mut setup = CaddySetup::live_route(&colours.blue.address());
    setup.unix_admin = true;
    let caddy = CaddyGuard::start(&setup);
    let spec = spec(&caddy, &colours, json!({}));
    assert!(caddy.admin_address().starts_with("unix//"));

    assert_eq!(Caddy.read(&spec).await.unwrap(), live(&colours.blue()));
    Caddy.switch(&spec, &colours.green()).await.unwrap();
    assert_eq!(caddy.get("/"), (200, "green".to_string()));
}

#[tokio::test]
async fn a_missing_server_is_named() {
    let colours = Colours::start();
    let caddy = CaddyGuard::start(&CaddySetup::live_route(&colours.blue.address()));
    let spec = spec(
        &caddy,
        &colours,
        json!({"server": "web", "route_id": "new"}),
    );
    let before = caddy.config();
    let err = Caddy
        .switch(&spec, &colours.green())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no HTTP server `web`") && err.contains("srv0"),
        "{err}"
    );
    assert_eq!(caddy.config(), before);
}

#[tokio::test]
async fn settings_errors_name_the_field() {
    let cases = [
        (json!({}), "admin"),
        (json!({"admin": "127.0.0.1:2019", "route": "x"}), "route"),
        (
            json!({"admin": "127.0.0.1:2019", "timeout": "later"}),
            "timeout",
        ),
        (json!({"admin": "localhost"}), "admin"),
    ];
    for (body, field) in cases {
        let err = Caddy.validate(&body).unwrap_err();
        assert_eq!(
            (err.kind(), err.field()),
            (ErrorKind::Settings, Some(field)),
            "{body}: {err:?}"
        );
        assert!(err.message().contains("`caddy` block"), "{err}");
    }
}

#[tokio::test]
async fn an_unreachable_admin_api_is_named() {
    let colours = Colours::start();
    let address = closed_address();
    let spec = RouterSpec::new(
        "public",
        vec![colours.blue(), colours.green()].into(),
        json!({ "admin": address }),
        std::env::temp_dir(),
    );
    for result in [
        Caddy.read(&spec).await.map(|_| ()),
        Caddy.switch(&spec, &colours.green()).await,
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unreachable, "{err:?}");
        assert!(err.message().contains(&address), "{err}");
        assert!(
            err.describe()
                .contains("(is Caddy running with `admin.listen`"),
            "{}",
            err.describe()
        );
    }
}
