//! The `haproxy { ... }` block: its fields, their defaults and their checks.
//!
//! Settings are parsed once into [`Settings`] (what the operator wrote) and then
//! resolved against a router into [`Resolved`] (absolute paths, the map key, a
//! backend name for every colour), so that the rest of the crate never deals
//! with defaults or relative paths.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_provider::{name, parse_settings, ProviderError, RouterSpec};
use serde::Deserialize;
use serde_json::Value;

/// The runtime API timeout when `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The body of a `haproxy { ... }` block, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// Path of the runtime API's unix socket (`stats socket ... level admin`).
    socket: Option<PathBuf>,
    /// `host:port` of a TCP runtime API (`stats socket ipv4@127.0.0.1:9999 ...`).
    address: Option<String>,
    /// Path of the map file, exactly as HAProxy's configuration names it.
    map: PathBuf,
    /// The map key of this router; the router's name when absent.
    key: Option<String>,
    /// The map key of the router's preview listener (`preview = ...`);
    /// `<key>_preview` when absent.
    preview_key: Option<String>,
    /// Colour -> HAProxy backend name; a colour absent here uses its own name.
    #[serde(default)]
    backends: BTreeMap<String, String>,
    /// Timeout of each runtime API exchange, e.g. `5s`, `500ms`.
    timeout: Option<String>,
}

/// Where the runtime API listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "HAProxy runtime API at {}", path.display()),
            Endpoint::Tcp(address) => write!(f, "HAProxy runtime API at {address}"),
        }
    }
}

/// Settings resolved for one router.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// Where to reach the runtime API.
    pub endpoint: Endpoint,
    /// The map file: the runtime API's name for the map, and the file rewritten
    /// so that a reload keeps the switch.
    pub map: PathBuf,
    /// The key of this router in the map.
    pub key: String,
    /// The key of this router's preview listener in the map.
    pub preview_key: String,
    /// Colour -> backend, as written (colours not listed map to themselves).
    backends: BTreeMap<String, String>,
    /// Timeout of each runtime API exchange.
    pub timeout: Duration,
}

impl Resolved {
    /// The HAProxy backend that serves `colour`: as `backends` names it
    /// (by the colour, or by its block for an instance), else the colour's
    /// flat name (`green`, or `green.api` for `green["api"]`).
    pub fn backend_for<'a>(&'a self, colour: &'a str) -> Cow<'a, str> {
        match name::lookup(&self.backends, colour) {
            Some(b) => Cow::Borrowed(b.as_str()),
            None => name::flat(colour),
        }
    }

    /// The colour whose backend is `backend`, among the router's colours
    /// (the first by name if several share it). Looks up the few colours that
    /// can have that backend (those renamed to it in `backends`, and the one
    /// named like it unless renamed) rather than scanning every colour: a
    /// refresh of N routers over N colours would be O(N²). A backend named
    /// for a block (`backends = { blue = "api_blue" }`) is that block's
    /// instance of the router's own key.
    pub fn colour_of(&self, spec: &RouterSpec, backend: &str) -> Option<String> {
        let own_key = name::key_of(spec.name());
        let own = name::unflat(backend)
            .into_iter()
            .filter(|c| spec.colour(c).is_some() && name::lookup(&self.backends, c).is_none());
        let renamed = self
            .backends
            .iter()
            .filter(|(_, b)| b.as_str() == backend)
            .filter_map(|(entry, _)| spec.colours().of_block(entry, own_key.as_ref()))
            .map(|c| c.name.clone())
            .filter(|c| self.backend_for(c) == backend);
        own.chain(renamed).min()
    }
}

/// Parse and check a block's body without a router (for `validate`).
pub(crate) fn parse(body: &Value) -> Result<Settings, ProviderError> {
    let settings: Settings = parse_settings("haproxy", body)?;
    match (&settings.socket, &settings.address) {
        (Some(_), Some(_)) => {
            return Err(field_error(
                "address",
                "set either `socket` or `address`, not both",
            ))
        }
        (None, None) => {
            return Err(field_error(
                "socket",
                "set `socket` (the runtime API's unix socket) or `address` (host:port of a TCP runtime API)",
            ))
        }
        _ => {}
    }
    if let Some(address) = &settings.address {
        check_address(address)?;
    }
    if let Some(socket) = &settings.socket {
        if socket.as_os_str().is_empty() {
            return Err(field_error("socket", "`socket` must not be empty"));
        }
    }
    check_word("map", &settings.map.to_string_lossy())?;
    if let Some(key) = &settings.key {
        check_word("key", key)?;
    }
    for (colour, backend) in &settings.backends {
        check_word("backends", backend).map_err(|_| {
            field_error(
                "backends",
                &format!("backend name {backend:?} for colour `{colour}` must be one word, without spaces or `;`"),
            )
        })?;
    }
    if let Some(timeout) = &settings.timeout {
        parse_duration(timeout).ok_or_else(|| {
            field_error(
                "timeout",
                &format!("{timeout:?} is not a duration; write e.g. \"5s\", \"500ms\" or \"1m\""),
            )
        })?;
    }
    Ok(settings)
}

/// Parse a block's body and resolve it for `spec`.
pub(crate) fn resolve(spec: &RouterSpec) -> Result<Resolved, ProviderError> {
    let settings = parse(spec.settings())?;
    // A colour in `backends` that is no environment is most likely a typo that
    // would silently send that colour to a backend of its own name.
    if let Some(unknown) = settings.backends.keys().find(|colour| {
        spec.colour(colour).is_none() && spec.colours().instances_of(colour).is_empty()
    }) {
        let known: Vec<&str> = spec.colours().iter().map(|c| c.name.as_str()).collect();
        return Err(field_error(
            "backends",
            &format!(
                "`backends` names colour `{unknown}`, which is not an environment (environments: {})",
                known.join(", ")
            ),
        ));
    }
    let key = settings
        .key
        .clone()
        .unwrap_or_else(|| name::flat(spec.name()).into_owned());
    check_word("key", &key)?;
    let preview_key = settings
        .preview_key
        .clone()
        .unwrap_or_else(|| format!("{key}_preview"));
    check_word("preview_key", &preview_key)?;
    if preview_key == key {
        return Err(field_error(
            "preview_key",
            "`preview_key` must differ from `key`",
        ));
    }
    let endpoint = match (settings.socket, settings.address) {
        (Some(socket), _) => Endpoint::Unix(absolute(spec.workdir(), &socket)),
        (None, Some(address)) => Endpoint::Tcp(address),
        (None, None) => unreachable!("parse() requires socket or address"),
    };
    let timeout = settings
        .timeout
        .as_deref()
        .and_then(parse_duration)
        .unwrap_or(DEFAULT_TIMEOUT);
    Ok(Resolved {
        endpoint,
        map: absolute(spec.workdir(), &settings.map),
        key,
        preview_key,
        backends: settings.backends,
        timeout,
    })
}

fn absolute(workdir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        workdir.join(path)
    }
}

fn field_error(field: &str, message: &str) -> ProviderError {
    ProviderError::settings(
        Some(field.to_string()),
        format!("in `haproxy` block: {message}"),
    )
}

/// The runtime API splits commands on spaces and `;`, so names that go into a
/// command must be one word.
fn check_word(field: &str, value: &str) -> Result<(), ProviderError> {
    if value.is_empty() {
        return Err(field_error(field, &format!("`{field}` must not be empty")));
    }
    if value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ';' || c == '\\')
    {
        return Err(field_error(
            field,
            &format!("`{field}` = {value:?} must not contain spaces, `;` or `\\`: HAProxy's runtime API could not name it"),
        ));
    }
    Ok(())
}

fn check_address(address: &str) -> Result<(), ProviderError> {
    let valid = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if valid {
        Ok(())
    } else {
        Err(field_error(
            "address",
            &format!("`address` = {address:?} must be host:port, e.g. \"127.0.0.1:9999\""),
        ))
    }
}

/// Parse a duration such as `5s`, `500ms`, `1m30s` or `2h`.
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
    use cutover_provider::Colour;
    use serde_json::json;

    fn spec(settings: Value) -> RouterSpec {
        let colours = ["blue", "green"]
            .iter()
            .map(|n| Colour {
                name: n.to_string(),
                endpoints: vec![],
            })
            .collect();
        RouterSpec::new("public", colours, settings, "/etc/cutover")
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
    fn defaults_and_relative_paths() {
        let resolved = resolve(&spec(
            json!({"socket": "run/admin.sock", "map": "live.map"}),
        ))
        .unwrap();
        assert_eq!(
            resolved.endpoint,
            Endpoint::Unix("/etc/cutover/run/admin.sock".into())
        );
        assert_eq!(resolved.map, PathBuf::from("/etc/cutover/live.map"));
        assert_eq!(resolved.key, "public");
        assert_eq!(resolved.timeout, Duration::from_secs(5));
        assert_eq!(resolved.backend_for("green"), "green");
    }

    #[test]
    fn backends_translate_both_ways() {
        let s = spec(
            json!({"address": "127.0.0.1:9999", "map": "/m", "backends": {"green": "be_green"}}),
        );
        let resolved = resolve(&s).unwrap();
        assert_eq!(resolved.backend_for("green"), "be_green");
        assert_eq!(resolved.colour_of(&s, "be_green").as_deref(), Some("green"));
        assert_eq!(resolved.colour_of(&s, "blue").as_deref(), Some("blue"));
        assert_eq!(resolved.colour_of(&s, "green"), None);
        assert_eq!(resolved.colour_of(&s, "be_blue"), None);
        // Two colours on one backend: the first by name, as a scan of the
        // (sorted) colours would find.
        let shared = spec(
            json!({"address": "127.0.0.1:9999", "map": "/m", "backends": {"green": "web", "blue": "web"}}),
        );
        let resolved = resolve(&shared).unwrap();
        assert_eq!(resolved.colour_of(&shared, "web").as_deref(), Some("blue"));
        assert_eq!(resolved.colour_of(&shared, "blue"), None);
    }

    /// A router of a `for_each` block over instances `blue["api"]`, ...
    fn instance_spec(router: &str, settings: Value) -> RouterSpec {
        let colours = [
            r#"blue["api"]"#,
            r#"blue["web"]"#,
            r#"green["api"]"#,
            r#"green["web"]"#,
        ]
        .iter()
        .map(|n| Colour {
            name: n.to_string(),
            endpoints: vec![],
        })
        .collect();
        RouterSpec::new(router, colours, settings, "/etc/cutover")
    }

    #[test]
    fn instances_have_flat_names_and_backends_by_block() {
        // Without `backends`: the flat names, both ways; the key too.
        let s = instance_spec(r#"svc["api"]"#, json!({"socket": "/s", "map": "/m"}));
        let resolved = resolve(&s).unwrap();
        assert_eq!(resolved.key, "svc.api");
        assert_eq!(resolved.preview_key, "svc.api_preview");
        assert_eq!(resolved.backend_for(r#"green["api"]"#), "green.api");
        assert_eq!(
            resolved.colour_of(&s, "green.api").as_deref(),
            Some(r#"green["api"]"#)
        );
        assert_eq!(resolved.colour_of(&s, "green.nope"), None);
        // `backends` by block: this router's own instance of the block.
        let s = instance_spec(
            r#"svc["web"]"#,
            json!({"socket": "/s", "map": "/m", "backends": {"blue": "web_blue", "green": "web_green"}}),
        );
        let resolved = resolve(&s).unwrap();
        assert_eq!(resolved.backend_for(r#"blue["web"]"#), "web_blue");
        assert_eq!(
            resolved.colour_of(&s, "web_blue").as_deref(),
            Some(r#"blue["web"]"#)
        );
        assert_eq!(
            resolved.colour_of(&s, "web_green").as_deref(),
            Some(r#"green["web"]"#)
        );
        // A backend renamed by its block is not also its flat name.
        assert_eq!(resolved.colour_of(&s, "blue.web"), None);
        // A block that has no instance is a typo, as a colour is.
        let err = resolve(&instance_spec(
            r#"svc["web"]"#,
            json!({"socket": "/s", "map": "/m", "backends": {"red": "x"}}),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("colour `red`"), "{err}");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({"sockt": "/s", "map": "/m"}), "sockt"),
            (json!({"socket": "/s"}), "map"),
            (json!({"map": "/m"}), "socket"),
            (
                json!({"socket": "/s", "address": "127.0.0.1:1", "map": "/m"}),
                "address",
            ),
            (json!({"address": "localhost", "map": "/m"}), "address"),
            (
                json!({"socket": "/s", "map": "/m", "timeout": "soon"}),
                "timeout",
            ),
            (
                json!({"socket": "/s", "map": "/m", "key": "two words"}),
                "key",
            ),
            (
                json!({"socket": "/s", "map": "/m", "backends": {"green": "a;b"}}),
                "backends",
            ),
            (
                json!({"socket": "/s", "map": "/m", "backends": {"gren": "x"}}),
                "backends",
            ),
        ];
        for (body, field) in cases {
            let err = resolve(&spec(body.clone())).unwrap_err();
            assert_eq!(field_of(err).as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        for bad in ["", "5", "s", "5 s", "0s", "-1s", "5sec"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
