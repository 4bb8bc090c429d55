//! A router's `test "NAME" {}` and `analysis "NAME" {}` blocks, and its
//! approval settings, turned into their specs ([`super::checks`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hcl::Value;
use hcl_edit::structure::{Block, Body};

use super::blocks::{eval_shown_attr, opt_bool, opt_string, opt_uint, type_name};
use super::checks::{AnalysisSpec, NoData, TestSpec, When, DEFAULT_TEST_TIMEOUT};
use super::environment::duration_attr;
use super::eval::Evaluator;
use super::model::Span;
use super::schema::{self, Decl, Schema};

const TEST_ATTRS: &[&str] = &["command", "env", "timeout", "workdir", "at_plan"];
const ANALYSIS_ATTRS: &[&str] = &[
    "prometheus",
    "query",
    "min",
    "max",
    "when",
    "interval",
    "count",
    "failure_limit",
    "initial_delay",
    "no_data",
    "timeout",
];

/// The default of a router's `approval_timeout`.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(3600);

/// The router's labelled blocks of type `kind`, each checked against
/// `attrs`, by name: a missing, repeated or malformed name is reported.
fn labelled<'b>(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &'b Body,
    kind: &'b str,
    attrs: &[&str],
    required: &[&str],
    what: &str,
) -> Option<BTreeMap<String, (&'b Block, Span)>> {
    let mut out: BTreeMap<String, (&'b Block, Span)> = BTreeMap::new();
    let mut ok = true;
    for block in body.get_blocks(kind) {
        let header = schema::header_span(ev.map, file, block);
        let name = match block.labels.as_slice() {
            [label] => label.as_str().to_owned(),
            _ => {
                ev.error_help(
                    &header,
                    format!("a `{kind}` block of {what} takes exactly one label, its name"),
                    format!("write: {kind} \"NAME\" {{ ... }}"),
                );
                ok = false;
                continue;
            }
        };
        if !is_identifier(&name) {
            ev.error_help(
                &header,
                format!("`{name}` is not a valid name for a `{kind}` block"),
                "a name starts with a letter or `_` and holds letters, digits, `_` and `-`",
            );
            ok = false;
            continue;
        }
        let s = Schema {
            what: &format!("{kind} \"{name}\" of {what}"),
            attrs,
            required,
            blocks: &[],
        };
        let before = ev.diags.len();
        schema::check_body(ev.map, file, &block.body, &s, &header, &mut ev.diags);
        // Its values are still read, so that one run reports every mistake.
        ok &= ev.diags.len() == before;
        if let Some((_, first)) = out.get(&name) {
            let msg = format!(
                "duplicate {kind} \"{name}\" in {what} (the first is at {})",
                schema::at(first)
            );
            ev.error(&header, msg);
            ok = false;
            continue;
        }
        out.insert(name, (block, header));
    }
    let _ = ok;
    Some(out)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The router's `test` blocks, by name (`None`: an error, reported).
pub(crate) fn tests(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    what: &str,
) -> Option<BTreeMap<String, TestSpec>> {
    let found = labelled(
        ev,
        decl.file,
        &decl.block.body,
        "test",
        TEST_ATTRS,
        &["command"],
        what,
    );
    let mut out = BTreeMap::new();
    let mut ok = found.is_some();
    for (name, (block, header)) in found.unwrap_or_default() {
        match test(ev, decl.file, &block.body, &header) {
            Some(spec) => {
                out.insert(name, spec);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn test(ev: &mut Evaluator<'_>, file: &Path, body: &Body, header: &Span) -> Option<TestSpec> {
    let before = ev.diags.len();
    let command = string_list(ev, file, body, "command");
    let env = body
        .get_attribute("env")
        .map_or(Some(BTreeMap::new()), |_| string_map(ev, file, body, "env"));
    let timeout = positive(ev, file, body, "timeout", DEFAULT_TEST_TIMEOUT);
    let workdir = opt_string(ev, file, body, "workdir");
    let at_plan = opt_bool(ev, file, body, "at_plan").unwrap_or(false);
    let workdir = workdir.map_or_else(|| ev.dir.clone(), |w| ev.dir.join(w));
    let problem = command.as_ref().and_then(|c| runnable(&workdir, &c[0]));
    if let Some((at_workdir, message, help)) = problem {
        let span = body
            .get_attribute(if at_workdir { "workdir" } else { "command" })
            .map_or_else(|| header.clone(), |a| ev.span_of(file, &a.value));
        ev.error_help(&span, message, help);
    }
    if ev.diags.len() != before {
        return None;
    }
    let command = command?;
    Some(TestSpec {
        command,
        env: env?,
        timeout: timeout?,
        workdir,
        at_plan,
    })
}

/// Why a test cannot start, found now rather than after the deploy:
/// (whether it is the workdir, the message, the hint). A program named
/// without a `/` is looked up on PATH when it runs, and not checked.
fn runnable(workdir: &Path, program: &str) -> Option<(bool, String, String)> {
    if !workdir.is_dir() {
        return Some((
            true,
            format!("`workdir` {} is not a directory", workdir.display()),
            "`workdir` is relative to the configuration directory".to_owned(),
        ));
    }
    if !program.contains('/') {
        return None;
    }
    let path = workdir.join(program);
    let executable = std::fs::metadata(&path).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt as _;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    });
    (!executable).then(|| {
        (
            false,
            format!("the test's program {} is not an executable file", path.display()),
            "a program with a `/` is relative to the test's `workdir` (default: the configuration directory); make it executable (chmod +x)".to_owned(),
        )
    })
}

/// The optional duration `key`, more than zero, with `default` when absent.
pub(crate) fn positive(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    key: &str,
    default: Duration,
) -> Option<Duration> {
    let d = optional(body, key, default, |k| duration_attr(ev, file, body, k))?;
    if d.is_zero() {
        let span = ev.span_of(file, &body.get_attribute(key)?.value);
        ev.error(&span, format!("`{key}` must be more than 0s"));
        return None;
    }
    Some(d)
}

/// The router's `analysis` blocks, by name (`None`: an error, reported).
pub(crate) fn analyses(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    what: &str,
) -> Option<BTreeMap<String, AnalysisSpec>> {
    let found = labelled(
        ev,
        decl.file,
        &decl.block.body,
        "analysis",
        ANALYSIS_ATTRS,
        &["prometheus", "query"],
        what,
    );
    let mut out = BTreeMap::new();
    let mut ok = found.is_some();
    for (name, (block, header)) in found.unwrap_or_default() {
        match analysis(ev, decl.file, &block.body, &header) {
            Some(spec) => {
                out.insert(name, spec);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn analysis(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    header: &Span,
) -> Option<AnalysisSpec> {
    let before = ev.diags.len();
    let prometheus = url(ev, file, body, "prometheus");
    let query = opt_string(ev, file, body, "query");
    if let (Some(q), Some(attr)) = (&query, body.get_attribute("query")) {
        if q.trim().is_empty() {
            let span = ev.span_of(file, &attr.value);
            ev.error(&span, "`query` is empty");
        }
    }
    let min = number(ev, file, body, "min");
    let max = number(ev, file, body, "max");
    let when = choice(
        ev,
        file,
        body,
        "when",
        &[("before", When::Before), ("after", When::After)],
    );
    let no_data = choice(
        ev,
        file,
        body,
        "no_data",
        &[("fail", NoData::Fail), ("pass", NoData::Pass)],
    );
    if let (Some(q), Some(attr)) = (&query, body.get_attribute("query")) {
        if let Some(unknown) = unknown_placeholder(q) {
            let span = ev.span_of(file, &attr.value);
            ev.error_help(
                &span,
                format!(
                    "`query` has the placeholder `{{{{{unknown}}}}}`, which cutover does not know"
                ),
                "the placeholders are {{target}}, {{target_release}}, {{previous}} and {{router}}",
            );
        }
    }
    let interval = positive(ev, file, body, "interval", Duration::from_secs(10));
    let initial_delay = optional(body, "initial_delay", Duration::ZERO, |k| {
        duration_attr(ev, file, body, k)
    });
    let timeout = positive(ev, file, body, "timeout", Duration::from_secs(10));
    let count = opt_uint(ev, file, body, "count", 1, 10_000).unwrap_or(1);
    let failure_limit = opt_uint(ev, file, body, "failure_limit", 0, 10_000).unwrap_or(0);
    if ev.diags.len() != before {
        return None;
    }
    let (min, max) = (min.flatten(), max.flatten());
    let problem = match (min, max) {
        (None, None) => Some("an analysis needs `min`, `max` or both: the bounds a value must keep".to_owned()),
        (Some(lo), Some(hi)) if lo > hi => Some(format!("`min` ({lo}) is above `max` ({hi}): no value could pass")),
        _ if failure_limit >= count => Some(format!(
            "`failure_limit` ({failure_limit}) must be below `count` ({count}): with as many failures allowed as measurements, the analysis could never fail"
        )),
        _ => None,
    };
    if let Some(message) = problem {
        ev.error(header, message);
        return None;
    }
    Some(AnalysisSpec {
        prometheus: prometheus?,
        query: query?,
        min,
        max,
        when: when.unwrap_or(When::Before),
        interval: interval?,
        count: u32::try_from(count).unwrap_or(u32::MAX),
        failure_limit: u32::try_from(failure_limit).unwrap_or(u32::MAX),
        initial_delay: initial_delay?,
        no_data: no_data.unwrap_or(NoData::Fail),
        timeout: timeout?,
    })
}

/// The first `{{NAME}}` of `query` that is no placeholder cutover replaces.
fn unknown_placeholder(query: &str) -> Option<&str> {
    const KNOWN: [&str; 4] = ["target", "target_release", "previous", "router"];
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let name = after[..end].trim();
        if !KNOWN.contains(&name) {
            return Some(name);
        }
        rest = &after[end + 2..];
    }
    None
}

/// The optional attribute `key`, with `default` when absent (`None`: an
/// error, reported).
fn optional<T>(
    body: &Body,
    key: &str,
    default: T,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Option<T> {
    match body.get_attribute(key) {
        Some(_) => parse(key),
        None => Some(default),
    }
}

/// An http or https URL (`None` when absent or wrong, reported).
pub(crate) fn url(ev: &mut Evaluator<'_>, file: &Path, body: &Body, key: &str) -> Option<String> {
    let text = opt_string(ev, file, body, key)?;
    let span = ev.span_of(file, &body.get_attribute(key)?.value);
    match reqwest::Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(text),
        Ok(u) => {
            ev.error(
                &span,
                format!(
                    "`{key}` must be an http or https URL, not a {} URL",
                    u.scheme()
                ),
            );
            None
        }
        Err(e) => {
            ev.error_help(
                &span,
                format!("`{key}` is not a URL: {e}"),
                "write it like \"http://127.0.0.1:9090\"",
            );
            None
        }
    }
}

/// The optional number `key`: `Some(None)` when absent, `None` when wrong.
fn number(ev: &mut Evaluator<'_>, file: &Path, body: &Body, key: &str) -> Option<Option<f64>> {
    if body.get_attribute(key).is_none() {
        return Some(None);
    }
    let (e, span) = eval_shown_attr(ev, file, body, key)?;
    let n = match &e.value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n.is_finite() => Some(Some(n)),
        _ => {
            ev.error(
                &span,
                format!("`{key}` must be a number, not a {}", type_name(&e.value)),
            );
            None
        }
    }
}

/// The optional string `key`, one of `choices`.
fn choice<T: Copy>(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    key: &str,
    choices: &[(&str, T)],
) -> Option<T> {
    let text = opt_string(ev, file, body, key)?;
    if let Some((_, v)) = choices.iter().find(|(name, _)| *name == text) {
        return Some(*v);
    }
    let span = ev.span_of(file, &body.get_attribute(key)?.value);
    let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    ev.error(
        &span,
        format!("`{key}` must be {}, not \"{text}\"", names.join(" or ")),
    );
    None
}

/// The required list of strings `key`, not empty.
fn string_list(ev: &mut Evaluator<'_>, file: &Path, body: &Body, key: &str) -> Option<Vec<String>> {
    let (e, span) = eval_shown_attr(ev, file, body, key)?;
    let items: Option<Vec<String>> = match &e.value {
        Value::Array(items) => items.iter().map(super::blocks::as_string).collect(),
        _ => None,
    };
    match items {
        Some(items) if !items.is_empty() && !items[0].is_empty() => Some(items),
        Some(_) => {
            ev.error_help(
                &span,
                format!("`{key}` is empty"),
                format!("write {key} = [\"PROGRAM\", \"ARG\", ...]"),
            );
            None
        }
        None => {
            ev.error_help(
                &span,
                format!("`{key}` must be a list of strings, not a {}", type_name(&e.value)),
                format!("write {key} = [\"PROGRAM\", \"ARG\", ...] (no shell: use [\"sh\", \"-c\", \"...\"] for one)"),
            );
            None
        }
    }
}

/// The optional map of strings `key`.
fn string_map(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    key: &str,
) -> Option<BTreeMap<String, String>> {
    let (e, span) = eval_shown_attr(ev, file, body, key)?;
    let map: Option<BTreeMap<String, String>> = match &e.value {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| super::blocks::as_string(v).map(|v| (k.clone(), v)))
            .collect(),
        _ => None,
    };
    if map.is_none() {
        ev.error(
            &span,
            format!(
                "`{key}` must be a map of strings, not a {}",
                type_name(&e.value)
            ),
        );
    }
    map
}
