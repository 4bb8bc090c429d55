//! The `nginx { ... }` block: its fields, their defaults and their checks.
//!
//! Settings are parsed once into [`Settings`] (what the operator wrote) and
//! then resolved against a router into [`Resolved`] (absolute paths, upstream
//! names, the marker's address), so that the rest of the crate never deals
//! with defaults or relative paths.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_provider::{name, parse_settings, ProviderError, RouterSpec};
use serde::Deserialize;
use serde_json::Value;

/// How long a switch may take (validation, reload, old workers exiting) when
/// `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The body of an `nginx { ... }` block, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// The include file cutover owns (live upstream and marker).
    include: PathBuf,
    /// The live upstream's name; `cutover_<router>` when absent.
    upstream: Option<String>,
    /// The running master's pid file.
    pid_file: PathBuf,
    /// The main configuration file (`nginx -c`); the master's own when absent.
    config: Option<PathBuf>,
    /// The prefix (`nginx -p`); the master's own when absent.
    prefix: Option<PathBuf>,
    /// The nginx binary; `nginx` in PATH or /usr/sbin when absent.
    binary: Option<PathBuf>,
    /// Loopback `host:port` where the include's marker server listens.
    marker: String,
    /// The include file cutover owns for the preview colour.
    preview_include: Option<PathBuf>,
    /// The preview upstream's name; `cutover_<router>_preview` when absent.
    preview_upstream: Option<String>,
    /// How long a switch may take, e.g. `10s`.
    timeout: Option<String>,
}

/// One include file owned by cutover and what it defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owned {
    /// The file.
    pub path: PathBuf,
    /// The upstream it defines.
    pub upstream: String,
    /// The marker server's `server_name` (also the `Host` cutover sends).
    pub server_name: String,
    /// The marker's location path.
    pub location: String,
}

/// How to run `nginx -t` like the running master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// The binary, when the operator named one.
    pub binary: Option<PathBuf>,
    /// `-c`, when the operator named one.
    pub config: Option<PathBuf>,
    /// `-p`, when the operator named one.
    pub prefix: Option<PathBuf>,
}

/// Settings resolved for one router.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The router's name.
    pub router: String,
    /// The live include.
    pub live: Owned,
    /// The preview include, when configured.
    pub preview: Option<Owned>,
    /// The master's pid file.
    pub pid_file: PathBuf,
    /// How to run `nginx -t`.
    pub invocation: Invocation,
    /// Where the marker server listens.
    pub marker: SocketAddr,
    /// How long a switch may take.
    pub timeout: Duration,
}

/// Parse and check a block's body without a router (for `validate`).
pub(crate) fn parse(body: &Value) -> Result<Settings, ProviderError> {
    let settings: Settings = parse_settings("nginx", body)?;
    check_path("include", &settings.include)?;
    check_path("pid_file", &settings.pid_file)?;
    for (field, path) in [
        ("config", &settings.config),
        ("prefix", &settings.prefix),
        ("binary", &settings.binary),
        ("preview_include", &settings.preview_include),
    ] {
        if let Some(path) = path {
            check_path(field, path)?;
        }
    }
    for (field, name) in [
        ("upstream", &settings.upstream),
        ("preview_upstream", &settings.preview_upstream),
    ] {
        if let Some(name) = name {
            check_name(field, name)?;
        }
    }
    if settings.preview_upstream.is_some() && settings.preview_include.is_none() {
        return Err(field_error(
            "preview_upstream",
            "`preview_upstream` needs `preview_include` (the file cutover owns for the preview colour)",
        ));
    }
    if settings.preview_include.as_ref() == Some(&settings.include) {
        return Err(field_error(
            "preview_include",
            "`preview_include` must be another file than `include`: set_preview never touches the live include",
        ));
    }
    parse_marker(&settings.marker)?;
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
    // The name goes into the marker's server_name and location; an
    // instance's as its flat name (`svc.api` for `svc["api"]`).
    let router = &name::flat(spec.name());
    if !router
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ProviderError::settings(
            None,
            format!(
                "router name {router:?} cannot name an nginx upstream: use letters, digits, `_`, `-` and `.`"
            ),
        ));
    }
    let upstream = match settings.upstream {
        Some(name) => name,
        None => check_name("upstream", &format!("cutover_{router}"))?,
    };
    let preview = match settings.preview_include {
        Some(path) => Some(Owned {
            path: absolute(spec.workdir(), &path),
            upstream: match settings.preview_upstream {
                Some(name) => name,
                None => check_name("preview_upstream", &format!("cutover_{router}_preview"))?,
            },
            server_name: format!("cutover-{router}-preview"),
            location: format!("/cutover/{router}/preview"),
        }),
        None => None,
    };
    if preview.as_ref().is_some_and(|p| p.upstream == upstream) {
        return Err(field_error(
            "preview_upstream",
            &format!("the preview upstream must not be the live one (`{upstream}`)"),
        ));
    }
    Ok(Resolved {
        router: router.to_string(),
        live: Owned {
            path: absolute(spec.workdir(), &settings.include),
            upstream,
            server_name: format!("cutover-{router}"),
            location: format!("/cutover/{router}"),
        },
        preview,
        pid_file: absolute(spec.workdir(), &settings.pid_file),
        invocation: Invocation {
            binary: settings.binary.map(|b| {
                // A bare name is looked up in PATH, like a shell would.
                if b.components().count() == 1 {
                    b
                } else {
                    absolute(spec.workdir(), &b)
                }
            }),
            config: settings.config.map(|c| absolute(spec.workdir(), &c)),
            prefix: settings.prefix.map(|p| absolute(spec.workdir(), &p)),
        },
        marker: parse_marker(&settings.marker)?,
        timeout: settings
            .timeout
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(DEFAULT_TIMEOUT),
    })
}

fn absolute(workdir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        workdir.join(path)
    }
}

pub(crate) fn field_error(field: &str, message: &str) -> ProviderError {
    ProviderError::settings(
        Some(field.to_string()),
        format!("in `nginx` block: {message}"),
    )
}

/// Paths go into nginx's configuration (`include`) or onto a command line;
/// characters nginx's parser treats specially would break the file.
fn check_path(field: &str, path: &Path) -> Result<(), ProviderError> {
    let text = path.to_string_lossy();
    if text.is_empty() {
        return Err(field_error(field, &format!("`{field}` must not be empty")));
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ';' | '{' | '}' | '"' | '\''))
    {
        return Err(field_error(
            field,
            &format!("`{field}` = {text:?} must not contain spaces, quotes, `;`, `{{` or `}}`"),
        ));
    }
    Ok(())
}

/// An upstream name appears in `proxy_pass http://<name>;`: a host name's
/// characters only.
fn check_name(field: &str, name: &str) -> Result<String, ProviderError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(name.to_string())
    } else {
        Err(field_error(
            field,
            &format!(
                "`{field}` = {name:?} must be letters, digits, `_`, `-` or `.` (it is the host of `proxy_pass http://...`)"
            ),
        ))
    }
}

/// The marker serves what the running workers loaded, without authentication:
/// it must listen on loopback only.
fn parse_marker(text: &str) -> Result<SocketAddr, ProviderError> {
    match text.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() && addr.port() != 0 => Ok(addr),
        _ => Err(field_error(
            "marker",
            &format!("`marker` = {text:?} must be a loopback address with a port, e.g. \"127.0.0.1:8099\""),
        )),
    }
}

/// Parse a duration such as `10s`, `500ms`, `1m30s` or `2h`.
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

    fn minimal() -> Value {
        json!({"include": "cutover/public.conf", "pid_file": "/run/nginx.pid", "marker": "127.0.0.1:8099"})
    }

    fn with(extra: Value) -> Value {
        let mut body = minimal();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    #[test]
    fn defaults_and_relative_paths() {
        let r = resolve(&spec(with(json!({"preview_include": "p.conf"})))).unwrap();
        assert_eq!(
            r.live.path,
            PathBuf::from("/etc/cutover/cutover/public.conf")
        );
        assert_eq!(r.live.upstream, "cutover_public");
        assert_eq!(r.live.location, "/cutover/public");
        let preview = r.preview.unwrap();
        assert_eq!(preview.upstream, "cutover_public_preview");
        assert_eq!(preview.server_name, "cutover-public-preview");
        assert_eq!(r.timeout, Duration::from_secs(10));
        assert_eq!(r.marker, "127.0.0.1:8099".parse().unwrap());
        assert_eq!(r.invocation.binary, None);
        let r = resolve(&spec(with(json!({"binary": "nginx-debug"})))).unwrap();
        assert_eq!(r.invocation.binary, Some(PathBuf::from("nginx-debug")));
    }

    #[test]
    fn an_instance_is_named_by_its_flat_name() {
        let s = RouterSpec::new(
            r#"svc["api"]"#,
            Default::default(),
            with(json!({"preview_include": "p.conf"})),
            "/etc/cutover",
        );
        let r = resolve(&s).unwrap();
        assert_eq!(r.live.upstream, "cutover_svc.api");
        assert_eq!(r.live.location, "/cutover/svc.api");
        let preview = r.preview.unwrap();
        assert_eq!(preview.upstream, "cutover_svc.api_preview");
        assert_eq!(preview.server_name, "cutover-svc.api-preview");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (with(json!({"includ": "x"})), "includ"),
            (
                json!({"pid_file": "/p", "marker": "127.0.0.1:1"}),
                "include",
            ),
            (
                json!({"include": "/i", "marker": "127.0.0.1:1"}),
                "pid_file",
            ),
            (json!({"include": "/i", "pid_file": "/p"}), "marker"),
            (with(json!({"marker": "10.0.0.1:80"})), "marker"),
            (with(json!({"marker": "localhost:80"})), "marker"),
            (with(json!({"marker": "127.0.0.1"})), "marker"),
            (with(json!({"upstream": "a b"})), "upstream"),
            (with(json!({"include": "/a;b"})), "include"),
            (with(json!({"preview_upstream": "p"})), "preview_upstream"),
            (
                with(json!({"preview_include": "cutover/public.conf"})),
                "preview_include",
            ),
            (with(json!({"timeout": "soon"})), "timeout"),
        ];
        for (body, field) in cases {
            let err = resolve(&spec(body.clone())).unwrap_err();
            assert_eq!(
                (err.kind(), err.field()),
                (cutover_provider::ErrorKind::Settings, Some(field)),
                "{body}: {err:?}"
            );
            assert!(err.message().contains("nginx"), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        for bad in ["", "5", "s", "5 s", "0s", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
