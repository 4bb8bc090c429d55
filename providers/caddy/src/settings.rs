//! The `caddy { ... }` block: its fields, their defaults and their checks.
//!
//! Settings are parsed once into [`Settings`] (what the operator wrote) and then
//! resolved against a router into [`Resolved`] (the admin endpoint, route ids
//! with their defaults, the timeout), so that the rest of the crate never deals
//! with defaults or relative paths.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_provider::{name, parse_settings, ProviderError, RouterSpec};
use serde::Deserialize;
use serde_json::Value;

/// The timeout of each admin API request and endpoint probe when `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP server holding the managed routes when `server` is not set: the
/// name Caddy gives the first server of an adapted Caddyfile.
const DEFAULT_SERVER: &str = "srv0";

/// The body of a `caddy { ... }` block, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// The admin endpoint: `host:port`, or `unix//path/to/admin.sock`.
    admin: String,
    /// The name of the server under `apps.http.servers`.
    server: Option<String>,
    /// The `@id` of the live route.
    route_id: Option<String>,
    /// Hosts matched by the live route when cutover creates it.
    #[serde(default)]
    match_host: Vec<String>,
    /// The `@id` of the preview route.
    preview_route_id: Option<String>,
    /// The host matched by the preview route.
    preview_host: Option<String>,
    /// Timeout of each admin request and endpoint probe, e.g. `10s`.
    timeout: Option<String>,
}

/// Where the admin API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admin {
    /// A unix socket (`unix//path`).
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

impl std::fmt::Display for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Admin::Unix(path) => write!(f, "Caddy admin API at unix/{}", path.display()),
            Admin::Tcp(address) => write!(f, "Caddy admin API at {address}"),
        }
    }
}

/// A route cutover manages: its `@id` and the hosts it matches when created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManagedRoute {
    /// The route's `@id`.
    pub id: String,
    /// Hosts of the `host` matcher given to the route when cutover creates it.
    pub hosts: Vec<String>,
}

/// Settings resolved for one router.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// Where to reach the admin API.
    pub admin: Admin,
    /// The server under `apps.http.servers` where routes are created.
    pub server: String,
    /// The live route.
    pub live: ManagedRoute,
    /// The preview route, when `preview_host` is set.
    pub preview: Option<ManagedRoute>,
    /// The `@id` the preview route has or would have (also without `preview_host`,
    /// so that `read` can report a preview route left in place).
    pub preview_id: String,
    /// Timeout of each admin request and endpoint probe.
    pub timeout: Duration,
}

/// Parse and check a block's body without a router (for `validate`).
pub(crate) fn parse(body: &Value) -> Result<Settings, ProviderError> {
    check_types(body)?;
    let settings: Settings = parse_settings("caddy", body)?;
    parse_admin(&settings.admin, Path::new("/"))?;
    if let Some(server) = &settings.server {
        check_word("server", server)?;
    }
    if let Some(id) = &settings.route_id {
        check_word("route_id", id)?;
    }
    if let Some(id) = &settings.preview_route_id {
        check_word("preview_route_id", id)?;
    }
    for host in &settings.match_host {
        check_word("match_host", host)?;
    }
    if let Some(host) = &settings.preview_host {
        check_word("preview_host", host)?;
        if settings.match_host.contains(host) {
            return Err(field_error(
                "preview_host",
                &format!("`preview_host` = {host:?} is also in `match_host`: preview and live traffic need different hosts"),
            ));
        }
    }
    if let Some(timeout) = &settings.timeout {
        parse_duration(timeout).ok_or_else(|| {
            field_error(
                "timeout",
                &format!("{timeout:?} is not a duration; write e.g. \"10s\", \"500ms\" or \"1m\""),
            )
        })?;
    }
    Ok(settings)
}

/// Parse a block's body and resolve it for `spec`.
pub(crate) fn resolve(spec: &RouterSpec) -> Result<Resolved, ProviderError> {
    let settings = parse(spec.settings())?;
    let live_id = settings
        .route_id
        .clone()
        .unwrap_or_else(|| format!("cutover-{}", name::flat(spec.name())));
    let preview_id = settings
        .preview_route_id
        .clone()
        .unwrap_or_else(|| format!("cutover-{}-preview", name::flat(spec.name())));
    check_word("route_id", &live_id)?;
    check_word("preview_route_id", &preview_id)?;
    if live_id == preview_id {
        return Err(field_error(
            "preview_route_id",
            &format!("`preview_route_id` and `route_id` are both {live_id:?}: the preview needs a route of its own"),
        ));
    }
    let timeout = settings
        .timeout
        .as_deref()
        .and_then(parse_duration)
        .unwrap_or(DEFAULT_TIMEOUT);
    Ok(Resolved {
        admin: parse_admin(&settings.admin, spec.workdir())?,
        server: settings
            .server
            .unwrap_or_else(|| DEFAULT_SERVER.to_string()),
        live: ManagedRoute {
            id: live_id,
            hosts: settings.match_host,
        },
        preview: settings.preview_host.map(|host| ManagedRoute {
            id: preview_id.clone(),
            hosts: vec![host],
        }),
        preview_id,
        timeout,
    })
}

/// `host:port`, or Caddy's own `unix//abs/path` / `unix/relative/path` syntax.
fn parse_admin(admin: &str, workdir: &Path) -> Result<Admin, ProviderError> {
    if let Some(path) = admin.strip_prefix("unix/") {
        if path.is_empty() {
            return Err(field_error(
                "admin",
                "`admin` = \"unix/\" names no socket; write e.g. \"unix//run/caddy/admin.sock\"",
            ));
        }
        let path = Path::new(path);
        return Ok(Admin::Unix(if path.is_absolute() {
            path.to_path_buf()
        } else {
            workdir.join(path)
        }));
    }
    let valid = admin.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    if valid {
        Ok(Admin::Tcp(admin.to_string()))
    } else {
        Err(field_error(
            "admin",
            &format!(
                "`admin` = {admin:?} must be host:port (e.g. \"127.0.0.1:2019\", Caddy's `admin.listen`) or unix//path/to/admin.sock"
            ),
        ))
    }
}

/// serde's "invalid type" errors do not name the field (and
/// `parse_settings` would take the offending value for its name), so check
/// the types of the known fields first.
fn check_types(body: &Value) -> Result<(), ProviderError> {
    let Some(fields) = body.as_object() else {
        return Ok(());
    };
    for (field, value) in fields {
        let expected = match field.as_str() {
            "match_host" => {
                let strings = value
                    .as_array()
                    .is_some_and(|items| items.iter().all(Value::is_string));
                if strings {
                    continue;
                }
                "a list of strings, e.g. [\"app.example.com\"]"
            }
            "admin" | "server" | "route_id" | "preview_route_id" | "preview_host" | "timeout" => {
                if value.is_string() {
                    continue;
                }
                "a string"
            }
            // Unknown fields are reported by `parse_settings`.
            _ => continue,
        };
        return Err(field_error(
            field,
            &format!("`{field}` must be {expected}, not {value}"),
        ));
    }
    Ok(())
}

fn field_error(field: &str, message: &str) -> ProviderError {
    ProviderError::settings(
        Some(field.to_string()),
        format!("in `caddy` block: {message}"),
    )
}

/// Ids, server names and hosts go into admin API paths and JSON keys, where
/// `/`, spaces and URL syntax would address something else.
fn check_word(field: &str, value: &str) -> Result<(), ProviderError> {
    if value.is_empty() {
        return Err(field_error(field, &format!("`{field}` must not be empty")));
    }
    if value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/?#%\"\\".contains(c))
    {
        return Err(field_error(
            field,
            &format!(
                "`{field}` = {value:?} must not contain spaces, `/`, `?`, `#`, `%`, quotes or `\\`"
            ),
        ));
    }
    Ok(())
}

/// Parse a duration such as `10s`, `500ms`, `1m30s` or `2h`.
///
/// The contract's parser (shared by every layer); zero is refused.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    cutover_provider::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(settings: Value) -> RouterSpec {
        RouterSpec::new("public", Default::default(), settings, "/etc/cutover")
    }

    fn field_of(err: ProviderError) -> Option<String> {
        assert_eq!(
            err.kind(),
            cutover_provider::ErrorKind::Settings,
            "not a settings error: {err:?}"
        );
        err.field().map(str::to_string)
    }

    #[test]
    fn defaults() {
        let r = resolve(&spec(json!({"admin": "127.0.0.1:2019"}))).unwrap();
        assert_eq!(r.admin, Admin::Tcp("127.0.0.1:2019".into()));
        assert_eq!(r.server, "srv0");
        assert_eq!(r.live.id, "cutover-public");
        assert!(r.live.hosts.is_empty());
        assert_eq!(r.preview, None);
        assert_eq!(r.preview_id, "cutover-public-preview");
        assert_eq!(r.timeout, Duration::from_secs(10));
    }

    #[test]
    fn an_instance_routes_by_its_flat_name() {
        let s = RouterSpec::new(
            r#"svc["api"]"#,
            Default::default(),
            json!({"admin": "127.0.0.1:2019"}),
            "/etc/cutover",
        );
        let r = resolve(&s).unwrap();
        assert_eq!(r.live.id, "cutover-svc.api");
        assert_eq!(r.preview_id, "cutover-svc.api-preview");
    }

    #[test]
    fn unix_sockets_absolute_and_relative() {
        let r = resolve(&spec(json!({"admin": "unix//run/caddy.sock"}))).unwrap();
        assert_eq!(r.admin, Admin::Unix("/run/caddy.sock".into()));
        let r = resolve(&spec(json!({"admin": "unix/run/caddy.sock"}))).unwrap();
        assert_eq!(r.admin, Admin::Unix("/etc/cutover/run/caddy.sock".into()));
        assert_eq!(
            r.admin.to_string(),
            "Caddy admin API at unix//etc/cutover/run/caddy.sock"
        );
    }

    #[test]
    fn preview_and_hosts() {
        let r = resolve(&spec(json!({
            "admin": "127.0.0.1:2019", "server": "web", "route_id": "app",
            "match_host": ["app.test"], "preview_host": "preview.test",
            "preview_route_id": "app-preview", "timeout": "2s"
        })))
        .unwrap();
        assert_eq!(r.server, "web");
        assert_eq!(r.live.hosts, vec!["app.test".to_string()]);
        let preview = r.preview.unwrap();
        assert_eq!(
            (preview.id.as_str(), preview.hosts),
            ("app-preview", vec!["preview.test".to_string()])
        );
        assert_eq!(r.timeout, Duration::from_secs(2));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({}), "admin"),
            (json!({"admin": "127.0.0.1:2019", "servr": "x"}), "servr"),
            (json!({"admin": "localhost"}), "admin"),
            (json!({"admin": "http://127.0.0.1:2019"}), "admin"),
            (json!({"admin": "unix/"}), "admin"),
            (json!({"admin": 2019}), "admin"),
            (
                json!({"admin": "127.0.0.1:2019", "server": "a/b"}),
                "server",
            ),
            (
                json!({"admin": "127.0.0.1:2019", "route_id": ""}),
                "route_id",
            ),
            (
                json!({"admin": "127.0.0.1:2019", "route_id": "a b"}),
                "route_id",
            ),
            (
                json!({"admin": "127.0.0.1:2019", "match_host": "a.test"}),
                "match_host",
            ),
            (
                json!({"admin": "127.0.0.1:2019", "match_host": ["a test"]}),
                "match_host",
            ),
            (
                json!({"admin": "127.0.0.1:2019", "preview_host": "a/"}),
                "preview_host",
            ),
            (
                json!({"admin": "127.0.0.1:2019", "match_host": ["a.test"], "preview_host": "a.test"}),
                "preview_host",
            ),
            (
                json!({"admin": "127.0.0.1:2019", "route_id": "x", "preview_route_id": "x"}),
                "preview_route_id",
            ),
            (
                json!({"admin": "127.0.0.1:2019", "timeout": "soon"}),
                "timeout",
            ),
        ];
        for (body, field) in cases {
            let err = resolve(&spec(body.clone())).unwrap_err();
            assert_eq!(field_of(err).as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        for bad in ["", "5", "s", "5 s", "0s", "-1s", "5sec"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
