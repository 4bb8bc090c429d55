//! `environment` blocks: one colour each, with its release, endpoints,
//! health check and optional backend.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hcl::Value;
use hcl_edit::structure::Body;

use super::blocks::{
    self, as_string, eval_attr, opt_marked_string, opt_string, opt_uint, type_name,
};
use super::ca::read_ca_file;
use super::eval::Evaluator;
use super::model::{Address, Environment, EnvironmentMarks, Health, Marks};
use super::schema::{self, Decl, Schema};

/// Build an environment, recording its value (`{ name, release, endpoint,
/// endpoints }`) for references.
pub(crate) fn build(ev: &mut Evaluator<'_>, decl: &Decl<'_>) -> Option<Environment> {
    let what = schema::what("environment", &decl.name);
    // The backend blocks are the registry's (one list for the whole build).
    let backends = crate::registry::environment_kinds();
    let blocks: Vec<&str> = std::iter::once("health")
        .chain(backends.iter().copied())
        .collect();
    let s = Schema {
        what: &what,
        attrs: &["release", "endpoint", "endpoints", "for_each", "count"],
        required: &["release"],
        blocks: &blocks,
    };
    let (file, body) = (decl.file, &decl.block.body);
    schema::check_body(ev.map, file, body, &s, &decl.span, &mut ev.diags);
    let release = release(ev, file, body);
    let endpoints = endpoints(ev, decl, &what);
    let health = health(ev, file, body, &what, "health");
    let backend = match blocks::single_backend(ev, file, body, backends, &what) {
        (Some(block), _) => blocks::backend(ev, file, block).map(Some),
        (None, true) => Some(None),
        (None, false) => None,
    };
    let ((release, release_marks), (endpoints, endpoint_marks), (health, health_marks), backend) =
        (release?, endpoints?, health?, backend?);
    let addr = Address::Environment(decl.name.clone());
    let endpoint_values: Vec<Value> = endpoints.iter().map(|e| Value::String(e.clone())).collect();
    let value = hcl::Map::from_iter([
        ("name".to_string(), Value::String(decl.name.clone())),
        ("release".to_string(), Value::String(release.clone())),
        (
            "endpoint".to_string(),
            endpoint_values.first().cloned().unwrap_or(Value::Null),
        ),
        ("endpoints".to_string(), Value::Array(endpoint_values)),
    ]);
    ev.values.insert(addr.clone(), Value::Object(value));
    let marks = EnvironmentMarks {
        release: release_marks,
        endpoints: endpoint_marks,
        health: health_marks,
    };
    // What `environment.X.release` and `.endpoints` refer to is as marked.
    if !marks.release.is_clear() || !marks.endpoints.is_clear() {
        ev.marks_insert(
            addr,
            Marks::fields([
                ("release".to_owned(), marks.release.clone()),
                ("endpoint".to_owned(), marks.endpoints.index(0)),
                ("endpoints".to_owned(), marks.endpoints.clone()),
            ]),
        );
    }
    Some(Environment {
        name: decl.name.clone(),
        release,
        endpoints,
        health,
        backend,
        marks,
        span: decl.span.clone(),
    })
}

fn release(ev: &mut Evaluator<'_>, file: &Path, body: &Body) -> Option<(String, Marks)> {
    let (e, span) = eval_attr(ev, file, body, "release")?;
    match (&e.value, as_string(&e.value)) {
        (Value::Null, _) | (_, None) => {
            ev.error(
                &span,
                format!("`release` must be a string, not a {}", type_name(&e.value)),
            );
            None
        }
        (_, Some(s)) => Some((s, e.marks)),
    }
}

fn endpoints(ev: &mut Evaluator<'_>, decl: &Decl<'_>, what: &str) -> Option<(Vec<String>, Marks)> {
    let (file, body) = (decl.file, &decl.block.body);
    match (
        body.get_attribute("endpoint"),
        body.get_attribute("endpoints"),
    ) {
        (None, None) => {
            let help = "add `endpoint = \"host:port\"` or `endpoints = [\"host:port\", ...]`";
            ev.error_help(
                &decl.span,
                format!("{what} needs `endpoint` or `endpoints`"),
                help,
            );
            None
        }
        (Some(_), Some(second)) => {
            let span = schema::key_span(ev.map, file, second);
            ev.error_help(
                &span,
                format!("{what} sets both `endpoint` and `endpoints`"),
                "keep only one of them",
            );
            None
        }
        (Some(_), None) => {
            let (e, span) = eval_attr(ev, file, body, "endpoint")?;
            match e.value {
                Value::String(s) => check_endpoint(ev, &span, s, &e.marks)
                    .map(|s| (vec![s], Marks::items(vec![e.marks]))),
                other => {
                    ev.error(
                        &span,
                        format!(
                            "`endpoint` must be a string \"host:port\", not a {}",
                            type_name(&other)
                        ),
                    );
                    None
                }
            }
        }
        (None, Some(_)) => {
            let (e, span) = eval_attr(ev, file, body, "endpoints")?;
            let items = match e.value {
                Value::Array(items) if !items.is_empty() => items,
                other => {
                    let got = if other.is_array() {
                        "an empty list".to_string()
                    } else {
                        format!("a {}", type_name(&other))
                    };
                    ev.error(&span, format!("`endpoints` must be a non-empty list of \"host:port\" strings, not {got}"));
                    return None;
                }
            };
            let mut out = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(s) => out.push(check_endpoint(ev, &span, s, &e.marks.index(i))?),
                    other => {
                        ev.error(
                            &span,
                            format!("`endpoints` must hold strings, not a {}", type_name(&other)),
                        );
                        return None;
                    }
                }
            }
            Some((out, e.marks))
        }
    }
}

fn check_endpoint(
    ev: &mut Evaluator<'_>,
    span: &super::model::Span,
    s: String,
    marks: &Marks,
) -> Option<String> {
    // A host has no scheme or path: `http://127.0.0.1:9101` would make
    // checks of `http://http://...`.
    let valid = s.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    if valid {
        Some(s)
    } else {
        let help = if s.contains("://") {
            "an endpoint is \"host:port\", with no scheme: e.g. \"127.0.0.1:9101\" (a health check's `url` takes a full URL)"
        } else {
            "an endpoint is \"host:port\", e.g. \"127.0.0.1:9101\""
        };
        // An error must not show a secret either.
        let shown = marks.redact_text(&s);
        ev.error_help(span, format!("invalid endpoint \"{shown}\""), help);
        None
    }
}

const HEALTH_ATTRS: &[&str] = &[
    "path",
    "url",
    "status",
    "interval",
    "timeout",
    "request_timeout",
    "successes",
    "release_path",
    "ca_file",
];

/// A `health {}` block (or a router's `verify {}`, which has the same
/// arguments); the defaults when the block is absent.
pub(crate) fn health(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    what: &str,
    name: &str,
) -> Option<(Health, Marks)> {
    let mut found = body.get_blocks(name);
    let Some(block) = found.next() else {
        return Some((Health::default(), Marks::Clear));
    };
    if let Some(second) = found.next() {
        let span = ev
            .map
            .span(file, hcl_edit::Span::span(&second.ident).unwrap_or(0..0));
        ev.error(&span, format!("{what} has more than one `{name}` block"));
    }
    let header = schema::header_span(ev.map, file, block);
    let s = Schema {
        what: &format!("the {name} block of {what}"),
        attrs: HEALTH_ATTRS,
        required: &[],
        blocks: &[],
    };
    schema::check_body(ev.map, file, &block.body, &s, &header, &mut ev.diags);
    let body = &block.body;
    let before = ev.diags.len();
    let mut h = Health::default();
    let mut marks = Vec::new();
    if let Some((path, m)) = opt_marked_string(ev, file, body, "path") {
        h.path = path;
        marks.push(("path".to_owned(), m));
    }
    if let Some((url, m)) = opt_marked_string(ev, file, body, "url") {
        h.url = Some(url);
        marks.push(("url".to_owned(), m));
    }
    if let Some((path, m)) = opt_marked_string(ev, file, body, "release_path") {
        h.release_path = Some(path);
        marks.push(("release_path".to_owned(), m));
    }
    h.ca_file = ca_file(ev, file, body);
    if let Some(status) = opt_uint(ev, file, body, "status", 100, 599) {
        h.status = status as u16;
    }
    if let Some(n) = opt_uint(ev, file, body, "successes", 1, 1000) {
        h.successes = n as u32;
    }
    for (key, slot) in [
        ("interval", &mut h.interval),
        ("timeout", &mut h.timeout),
        ("request_timeout", &mut h.request_timeout),
    ] {
        if let Some(d) = duration_attr(ev, file, body, key) {
            *slot = d;
        }
    }
    (ev.diags.len() == before).then(|| (h, Marks::fields(marks)))
}

/// `ca_file`, resolved against the configuration directory and read, so
/// that a bundle that is missing or holds no usable certificate is reported
/// at the attribute now rather than failing a health gate during an apply.
fn ca_file(ev: &mut Evaluator<'_>, file: &Path, body: &Body) -> Option<PathBuf> {
    let written = opt_string(ev, file, body, "ca_file")?;
    let span = ev.span_of(file, &body.get_attribute("ca_file")?.value);
    let path = ev.dir.join(&written);
    match read_ca_file(&path) {
        Ok(_) => Some(path),
        Err(e) => {
            ev.error_help(
                &span,
                format!("`ca_file` \"{written}\" cannot be used: {e}"),
                format!(
                    "`ca_file` names a PEM file of CA certificates, relative to the configuration directory ({})",
                    ev.dir.display()
                ),
            );
            None
        }
    }
}

pub(crate) fn duration_attr(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    key: &str,
) -> Option<Duration> {
    let (e, span) = blocks::eval_shown_attr(ev, file, body, key)?;
    let parsed = match &e.value {
        Value::String(s) => parse_duration(s),
        other => Err(format!(
            "must be a duration string such as \"2s\", not a {}",
            type_name(other)
        )),
    };
    match parsed {
        Ok(d) => Some(d),
        Err(msg) => {
            ev.error_help(
                &span,
                format!("`{key}` {msg}"),
                "durations are written like \"500ms\", \"2s\", \"1m30s\" or \"1h\"",
            );
            None
        }
    }
}

/// Parse a duration (the one parser every layer shares).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    cutover_provider::parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
    }
}

#[cfg(test)]
mod ca_file_tests {
    use crate::config::{load, VarInputs};

    const CA: &str = "-----BEGIN CERTIFICATE-----\n";

    fn ca_pem() -> String {
        rcgen::generate_simple_self_signed(["ca.test".to_string()])
            .unwrap()
            .cert
            .pem()
    }

    fn config(health: &str) -> String {
        format!(
            "environment \"green\" {{\n  release  = \"1\"\n  endpoint = \"127.0.0.1:9102\"\n  health {{\n{health}  }}\n}}\n\n\
             router \"public\" {{\n  live = environment.green\n  verify {{\n    url     = \"https://127.0.0.1:8443/\"\n    ca_file = \"certs/router-ca.pem\"\n  }}\n  exec {{\n    read   = [\"true\"]\n    switch = [\"true\"]\n  }}\n}}\n"
        )
    }

    fn load_dir(
        text: &str,
        files: &[(&str, String)],
    ) -> (
        tempfile::TempDir,
        Result<crate::config::Loaded, crate::config::Diagnostics>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        std::fs::write(dir.path().join("main.hcl"), text).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let loaded = load(dir.path(), &VarInputs::default());
        (dir, loaded)
    }

    #[test]
    fn ca_file_resolves_against_the_configuration_directory() {
        let text =
            config("    url     = \"https://127.0.0.1:9102/healthz\"\n    ca_file = \"ca.pem\"\n");
        let files = [("ca.pem", ca_pem()), ("certs/router-ca.pem", ca_pem())];
        let (dir, loaded) = load_dir(&text, &files);
        let config = loaded.unwrap_or_else(|e| panic!("{e}")).config;
        assert_eq!(
            config.environments["green"].health.ca_file,
            Some(dir.path().join("ca.pem"))
        );
        let verify = config.routers["public"].verify.as_ref().unwrap();
        assert_eq!(verify.ca_file, Some(dir.path().join("certs/router-ca.pem")));
    }

    #[test]
    fn a_missing_or_unusable_ca_file_is_an_error_at_the_attribute() {
        let text =
            config("    url     = \"https://127.0.0.1:9102/healthz\"\n    ca_file = \"ca.pem\"\n");
        let (dir, loaded) = load_dir(&text, &[]);
        let err = loaded.unwrap_err().to_string();
        // Both missing files are found in one run, each at its value.
        let help = format!(
            "`ca_file` names a PEM file of CA certificates, relative to the configuration directory ({})",
            dir.path().display()
        );
        assert_eq!(
            err,
            format!(
                "error: `ca_file` \"ca.pem\" cannot be used: cannot read it: No such file or directory (os error 2)\n \
                 --> main.hcl:6:15\n  |\n\
                 6 |     ca_file = \"ca.pem\"\n  |               ^^^^^^^^\n  = help: {help}\n\n\
                 error: `ca_file` \"certs/router-ca.pem\" cannot be used: cannot read it: No such file or directory (os error 2)\n  \
                 --> main.hcl:14:15\n   |\n\
                 14 |     ca_file = \"certs/router-ca.pem\"\n   |               ^^^^^^^^^^^^^^^^^^^^^\n   = help: {help}\n\n\
                 2 errors found\n"
            )
        );

        let files = [
            ("ca.pem", "not a certificate\n".to_string()),
            ("certs/router-ca.pem", format!("{CA}MIIB\n")),
        ];
        let (_dir, loaded) = load_dir(&text, &files);
        let err = loaded.unwrap_err().to_string();
        assert!(
            err.contains("`ca_file` \"ca.pem\" cannot be used: it holds no PEM certificate"),
            "{err}"
        );
        assert!(
            err.contains("`ca_file` \"certs/router-ca.pem\" cannot be used: it is not valid PEM"),
            "{err}"
        );
    }
}
