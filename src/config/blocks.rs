//! Turning evaluated blocks into the typed model: attribute helpers, backend
//! bodies, routers, outputs and the `cutover {}` settings block.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl::Value;
use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::structure::{Block, Body};
use hcl_edit::Span as _;

use super::eval::{to_json, Evaluated, Evaluator};
use super::model::{Address, Backend, Marks, Output, Router, Settings, Span};
use super::schema::{self, Decl, Schema};

/// The name of a value's type, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// Check a top-level block's body against `schema`, reporting what is
/// missing or unknown at the block's header.
pub(crate) fn check_decl(ev: &mut Evaluator<'_>, decl: &Decl<'_>, schema: &Schema<'_>) {
    let body = &decl.block.body;
    schema::check_body(ev.map, decl.file, body, schema, &decl.span, &mut ev.diags);
}

/// Evaluate the attribute `key` of `body`, if present, with its value's span.
pub(crate) fn eval_attr(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    key: &str,
) -> Option<(Evaluated, Span)> {
    let attr = body.get_attribute(key)?;
    let span = ev.span_of(file, &attr.value);
    ev.eval(file, &attr.value).map(|e| (e, span))
}

/// Evaluate the attribute `key`, which cutover shows in every plan or uses
/// to decide what to do (a duration, a colour, a path): a sensitive value
/// there is an error at the attribute, naming where it came from.
pub(crate) fn eval_shown_attr(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    key: &str,
) -> Option<(Evaluated, Span)> {
    let (e, span) = eval_attr(ev, file, body, key)?;
    shown(ev, &span, key, e).map(|e| (e, span))
}

/// `e`, unless it is sensitive (then an error at `span`).
pub(crate) fn shown(
    ev: &mut Evaluator<'_>,
    span: &Span,
    key: &str,
    e: Evaluated,
) -> Option<Evaluated> {
    if e.marks.is_clear() {
        return Some(e);
    }
    let from: Vec<String> = e.marks.origins().into_iter().collect();
    ev.error_help(
        span,
        format!(
            "`{key}` cannot be sensitive: cutover shows it in every plan (it comes from {})",
            from.join(", ")
        ),
        "only values given to an environment or router backend, a release, endpoints, a check's url, path or release_path, and a notify block's webhook and headers may be sensitive; wrap the value in nonsensitive() if it may be shown",
    );
    None
}

/// The optional string attribute `key` and its marks (a release, an
/// endpoint, a check's url); a wrong type is reported.
pub(crate) fn opt_marked_string(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    key: &str,
) -> Option<(String, super::marks::Marks)> {
    let (e, span) = eval_attr(ev, file, body, key)?;
    let s = as_string(&e.value);
    if s.is_none() {
        ev.error(
            &span,
            format!("`{key}` must be a string, not a {}", type_name(&e.value)),
        );
    }
    s.map(|s| (s, e.marks))
}

/// A string from a value: numbers and bools convert to their string form.
pub(crate) fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The optional string attribute `key`; a wrong type is reported.
pub(crate) fn opt_string(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    key: &str,
) -> Option<String> {
    let (e, span) = eval_shown_attr(ev, file, body, key)?;
    let s = as_string(&e.value);
    if s.is_none() {
        ev.error(
            &span,
            format!("`{key}` must be a string, not a {}", type_name(&e.value)),
        );
    }
    s
}

/// The optional bool attribute `key`; a wrong type is reported.
pub(crate) fn opt_bool(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    key: &str,
) -> Option<bool> {
    let (e, span) = eval_shown_attr(ev, file, body, key)?;
    match e.value {
        Value::Bool(b) => Some(b),
        other => {
            ev.error(
                &span,
                format!("`{key}` must be true or false, not a {}", type_name(&other)),
            );
            None
        }
    }
}

/// The optional whole-number attribute `key`, between `min` and `max`.
pub(crate) fn opt_uint(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    key: &str,
    min: u64,
    max: u64,
) -> Option<u64> {
    let (e, span) = eval_shown_attr(ev, file, body, key)?;
    let n = match &e.value {
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            let got = match &e.value {
                Value::Number(n) => n.to_string(),
                other => format!("a {}", type_name(other)),
            };
            ev.error(
                &span,
                format!("`{key}` must be a whole number from {min} to {max}, not {got}"),
            );
            None
        }
    }
}

/// Evaluate a backend block (`process {}`, `haproxy {}`, ...) to a JSON
/// object. Its attributes are not checked here: the provider does that, and
/// maps its errors back through `attribute_spans`.
pub(crate) fn backend(ev: &mut Evaluator<'_>, file: &Path, block: &Block) -> Option<Backend> {
    let kind = block.ident.as_str().to_string();
    let span = ev.map.span(file, block.ident.span().unwrap_or(0..0));
    let mut spans = BTreeMap::new();
    let (body, marks) = body_object(ev, file, &block.body, "", &mut spans)?;
    Some(Backend {
        kind,
        body: to_json(&body),
        span,
        attribute_spans: spans,
        marks,
    })
}

/// What is written in quotes is a string: `"${each.value.port}"` is the
/// number itself by HCL's rule for a lone interpolation, but a backend's
/// settings take it as the string Terraform's typed arguments would make of
/// it (`command = ["app", "--port", "${each.value}"]`). Only quoted
/// templates are changed, and only their numbers and bools; so are the
/// elements and attributes of a list or object written out literally.
fn quoted_as_strings(expr: &Expression, value: &mut Value) {
    match (expr, value) {
        (Expression::Parenthesis(inner), value) => quoted_as_strings(inner.inner(), value),
        (
            Expression::String(_) | Expression::StringTemplate(_) | Expression::HeredocTemplate(_),
            value @ (Value::Number(_) | Value::Bool(_)),
        ) => {
            let text = match &*value {
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return,
            };
            *value = Value::String(text);
        }
        (Expression::Array(items), Value::Array(values)) if items.len() == values.len() => {
            for (item, v) in items.iter().zip(values.iter_mut()) {
                quoted_as_strings(item, v);
            }
        }
        (Expression::Object(object), Value::Object(values)) => {
            for (key, item) in object.iter() {
                let name = match key {
                    ObjectKey::Ident(i) => i.as_str().to_owned(),
                    ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                    ObjectKey::Expression(_) => continue,
                };
                if let Some(v) = values.get_mut(&name) {
                    quoted_as_strings(item.expr(), v);
                }
            }
        }
        _ => {}
    }
}

fn body_object(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
    prefix: &str,
    spans: &mut BTreeMap<String, Span>,
) -> Option<(Value, Marks)> {
    let mut out = hcl::Map::new();
    let mut marks = BTreeMap::new();
    let mut ok = true;
    for attr in body.attributes() {
        let key = attr.key.as_str();
        spans.insert(
            format!("{prefix}{key}"),
            ev.map.span(file, attr.span().unwrap_or(0..0)),
        );
        element_spans(ev, file, &format!("{prefix}{key}"), &attr.value, spans);
        match ev.eval(file, &attr.value) {
            Some(mut e) => {
                if !e.marks.is_clear() {
                    marks.insert(key.to_string(), e.marks);
                }
                quoted_as_strings(&attr.value, &mut e.value);
                out.insert(key.to_string(), e.value);
            }
            None => ok = false,
        }
    }
    for block in body.blocks() {
        let mut path = vec![block.ident.as_str().to_string()];
        path.extend(block.labels.iter().map(|l| l.as_str().to_string()));
        let nested_prefix = format!("{prefix}{}.", path.join("."));
        let Some((value, inner)) = body_object(ev, file, &block.body, &nested_prefix, spans) else {
            ok = false;
            continue;
        };
        // A nested block with a sensitive value inside hides all the blocks
        // of its type (repeated ones become a list, labelled ones a map).
        if !inner.is_clear() {
            let top = marks.remove(&path[0]).unwrap_or_default();
            marks.insert(path[0].clone(), top.union(&inner));
        }
        insert_block(&mut out, &path, value);
    }
    ok.then(|| (Value::Object(out), Marks::fields(marks)))
}

/// The spans of a list of objects written out (`instances = [{ socket =
/// ... }, ...]`): `NAME[i]` for each element and `NAME[i].KEY` for each of
/// its attributes, the names a provider's error gives (`instances[1].map`),
/// so that it points at the element. A list made by an expression (`for`,
/// a variable) has no such spans: its errors point at the attribute.
fn element_spans(
    ev: &Evaluator<'_>,
    file: &Path,
    name: &str,
    value: &Expression,
    spans: &mut BTreeMap<String, Span>,
) {
    let Expression::Array(items) = value else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("{name}[{i}]");
        spans.insert(at.clone(), ev.map.span(file, item.span().unwrap_or(0..0)));
        let Expression::Object(object) = item else {
            continue;
        };
        for (key, value) in object.iter() {
            let text = match key {
                ObjectKey::Ident(ident) => ident.as_str().to_string(),
                ObjectKey::Expression(Expression::String(s)) => s.as_str().to_string(),
                ObjectKey::Expression(_) => continue,
            };
            let start = key.span().map_or(0, |r| r.start);
            let end = value.expr().span().map_or(start, |r| r.end);
            spans.insert(format!("{at}.{text}"), ev.map.span(file, start..end));
        }
    }
}

/// Put a nested block's object under its type and labels; a repeated
/// unlabelled block becomes a list.
fn insert_block(out: &mut hcl::Map<String, Value>, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        match out.get_mut(first) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let prev = std::mem::take(existing);
                *existing = Value::Array(vec![prev, value]);
            }
            None => {
                out.insert(first.clone(), value);
            }
        }
        return;
    }
    let entry = out
        .entry(first.clone())
        .or_insert_with(|| Value::Object(hcl::Map::new()));
    if let Value::Object(inner) = entry {
        insert_block(inner, rest, value);
    }
}

/// The backend blocks of `body` whose type is in `kinds`; more than one is
/// reported at the second.
pub(crate) fn single_backend<'b>(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &'b Body,
    kinds: &[&str],
    what: &str,
) -> (Option<&'b Block>, bool) {
    let found: Vec<&Block> = body
        .blocks()
        .filter(|b| kinds.contains(&b.ident.as_str()))
        .collect();
    if let [first, second, ..] = found.as_slice() {
        let span = ev.map.span(file, second.ident.span().unwrap_or(0..0));
        let first_span = ev.map.span(file, first.ident.span().unwrap_or(0..0));
        ev.error_help(
            &span,
            format!(
                "{what} has more than one backend block (the first is `{}` at {})",
                first.ident.as_str(),
                schema::at(&first_span)
            ),
            "keep exactly one backend block",
        );
        return (None, false);
    }
    (found.first().copied(), true)
}

/// Build a router, recording its value (`{ name, live }`) for references.
pub(crate) fn router(ev: &mut Evaluator<'_>, decl: &Decl<'_>) -> Option<Router> {
    let what = schema::what("router", &decl.name);
    // The backend blocks are the registry's (one list for the whole build).
    let backends = crate::registry::router_kinds();
    let blocks: Vec<&str> = backends
        .iter()
        .copied()
        .chain(["verify", "test", "analysis"])
        .collect();
    let s = Schema {
        what: &what,
        attrs: &[
            "live",
            "preview",
            "preview_url",
            "drain",
            "drain_until_idle",
            "ready_timeout",
            "pause_before_cutover",
            "approval_timeout",
            "for_each",
            "count",
        ],
        required: &["live"],
        blocks: &blocks,
    };
    check_decl(ev, decl, &s);
    let body = &decl.block.body;
    let live = body
        .get_attribute("live")
        .and_then(|a| live_environment(ev, decl.file, &a.value, "live"));
    // `preview = environment.X`: the idle colour's own listener or route.
    // Every attribute is evaluated before any error ends the block, so that
    // one run reports every mistake.
    let preview = match body.get_attribute("preview") {
        Some(a) => live_environment(ev, decl.file, &a.value, "preview").map(Some),
        None => Some(None),
    };
    let backend = match single_backend(ev, decl.file, body, backends, &what) {
        (Some(block), _) => backend(ev, decl.file, block),
        (None, true) => {
            let help = format!(
                "add one of: {}",
                backends
                    .iter()
                    .map(|k| format!("{k} {{ ... }}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            ev.error_help(&decl.span, format!("{what} has no backend block"), help);
            None
        }
        (None, false) => None,
    };
    // `verify {}`: checked through the router after the cut-over.
    let verify = verify(ev, decl, &what);
    let drain = match body.get_attribute("drain") {
        Some(_) => crate::config::environment::duration_attr(ev, decl.file, body, "drain"),
        None => Some(std::time::Duration::ZERO),
    };
    let ready_timeout = match body.get_attribute("ready_timeout") {
        Some(_) => crate::config::environment::duration_attr(ev, decl.file, body, "ready_timeout"),
        None => Some(crate::config::model::DEFAULT_READY_TIMEOUT),
    };
    let drain_until_idle = drain_until_idle(ev, decl, drain);
    let tests = super::router_checks::tests(ev, decl, &what);
    let analyses = super::router_checks::analyses(ev, decl, &what);
    let preview_url = match body.get_attribute("preview_url") {
        Some(_) => super::router_checks::url(ev, decl.file, body, "preview_url").map(Some),
        None => Some(None),
    };
    let pause_before_cutover = opt_bool(ev, decl.file, body, "pause_before_cutover");
    let approval_timeout = super::router_checks::positive(
        ev,
        decl.file,
        body,
        "approval_timeout",
        super::router_checks::DEFAULT_APPROVAL_TIMEOUT,
    );
    let ((live, live_span), backend, preview) = (live?, backend?, preview?);
    let ((verify, verify_marks), drain, ready_timeout) = (verify?, drain?, ready_timeout?);
    let (tests, analyses, preview_url) = (tests?, analyses?, preview_url?);
    let approval_timeout = approval_timeout?;
    let drain_until_idle = drain_until_idle?;
    let value = hcl::Map::from_iter([
        ("name".to_string(), Value::String(decl.name.clone())),
        ("live".to_string(), Value::String(live.clone())),
    ]);
    ev.values
        .insert(Address::Router(decl.name.clone()), Value::Object(value));
    let (preview, preview_span) = match preview {
        Some((p, s)) => (Some(p), Some(s)),
        None => (None, None),
    };
    Some(Router {
        name: decl.name.clone(),
        live,
        live_span,
        preview,
        preview_span,
        verify,
        verify_marks,
        drain,
        drain_until_idle,
        ready_timeout,
        preview_url,
        tests,
        analyses,
        pause_before_cutover: pause_before_cutover.unwrap_or(false),
        approval_timeout,
        backend,
        span: decl.span.clone(),
    })
}

/// `drain_until_idle = true`: the drain ends once the drained colour has no
/// open sessions, `drain` being its maximum, so a `drain` is required
/// (`drain`: the router's, when it was read).
fn drain_until_idle(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    drain: Option<std::time::Duration>,
) -> Option<bool> {
    let body = &decl.block.body;
    let Some(attr) = body.get_attribute("drain_until_idle") else {
        return Some(false);
    };
    let until_idle = opt_bool(ev, decl.file, body, "drain_until_idle")?;
    if until_idle && drain.is_some_and(|d| d.is_zero()) {
        let span = ev.span_of(decl.file, &attr.value);
        ev.error_help(
            &span,
            format!(
                "router \"{}\" has `drain_until_idle = true` but no `drain`: the drain needs a maximum",
                decl.name
            ),
            "add `drain = \"30s\"` (the longest the drained colour may keep its open sessions), or remove `drain_until_idle`",
        );
        return None;
    }
    Some(until_idle)
}

/// A router's `verify {}` block, if it has one (`None`: an error, reported).
fn verify(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    what: &str,
) -> Option<(Option<crate::config::model::Health>, Marks)> {
    let body = &decl.block.body;
    if body.get_blocks("verify").next().is_none() {
        return Some((None, Marks::Clear));
    }
    let (v, marks) = crate::config::environment::health(ev, decl.file, body, what, "verify")?;
    if v.url.is_none() {
        let span = body
            .get_blocks("verify")
            .next()
            .map(|b| schema::header_span(ev.map, decl.file, b))
            .unwrap_or_else(|| decl.span.clone());
        ev.error_help(
            &span,
            format!("the verify block of {what} needs a `url`"),
            "verify checks through the router: url = \"http://ROUTER_ADDRESS/PATH\"",
        );
        return None;
    }
    Some((Some(v), marks))
}

/// The environment named by `live`: `environment.X`, or any expression
/// giving an environment object or its name.
fn live_environment(
    ev: &mut Evaluator<'_>,
    file: &Path,
    expr: &Expression,
    attribute: &str,
) -> Option<(String, Span)> {
    let span = ev.span_of(file, expr);
    let name = match static_environment(expr) {
        Some(name) => name,
        None => {
            let mut e = ev.eval(file, expr)?;
            // Only the name is used: an environment whose release or
            // endpoints are sensitive may be chosen, not by a secret.
            if e.value.is_object() {
                e.marks = e.marks.attr("name");
            }
            let value = shown(ev, &span, attribute, e)?.value;
            match &value {
                Value::String(s) => s.clone(),
                Value::Object(o) if o.get("name").is_some_and(Value::is_string) => {
                    as_string(&o["name"]).unwrap_or_default()
                }
                other => {
                    let msg = format!(
                        "`{attribute}` must be an environment, not a {}",
                        type_name(other)
                    );
                    ev.error_help(
                        &span,
                        msg,
                        format!("write `{attribute} = environment.NAME`"),
                    );
                    return None;
                }
            }
        }
    };
    let addr = Address::Environment(name.clone());
    if !ev.declared.contains(&addr) {
        ev.undefined(&span, &addr);
        return None;
    }
    if let Some(keys) = ev.expanded.get(&addr) {
        // A block of instances is no colour: one of them is.
        let example = keys.first().map_or_else(
            || format!("environment.{name}[KEY]"),
            |k| {
                format!(
                    "environment.{}",
                    cutover_provider::name::instance_name(&name, k)
                )
            },
        );
        ev.error_help(
            &span,
            format!("`{attribute}` names environment.{name}, which makes several instances"),
            format!("name one of them: `{attribute} = {example}` (or `environment.{name}[each.key]` in a router with the same for_each)"),
        );
        return None;
    }
    Some((name, span))
}

/// `environment.X` (or a literal `"X"`) names an environment without
/// evaluating it, so a router still gets its name when X failed to build.
pub(crate) fn static_environment(expr: &Expression) -> Option<String> {
    use cutover_provider::name::instance_name;
    match expr {
        Expression::String(s) => Some(s.value().clone()),
        Expression::Traversal(t) => match (&t.expr, t.operators.as_slice()) {
            (Expression::Variable(v), [op]) if v.as_str() == "environment" => match op.value() {
                TraversalOperator::GetAttr(name) => Some(name.as_str().to_string()),
                _ => None,
            },
            // `environment.green["api"]`, `environment.canary[0]`.
            (Expression::Variable(v), [op, index]) if v.as_str() == "environment" => {
                let TraversalOperator::GetAttr(name) = op.value() else {
                    return None;
                };
                let key = super::instances::literal_key(index.value())?;
                Some(instance_name(name.as_str(), &key))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Build an output.
pub(crate) fn output(ev: &mut Evaluator<'_>, decl: &Decl<'_>) -> Option<Output> {
    let what = format!("output \"{}\"", decl.name);
    let s = Schema {
        what: &what,
        attrs: &["value", "description", "sensitive"],
        required: &["value"],
        blocks: &[],
    };
    check_decl(ev, decl, &s);
    let body = &decl.block.body;
    let description = opt_string(ev, decl.file, body, "description");
    let declared_sensitive = opt_bool(ev, decl.file, body, "sensitive").unwrap_or(false);
    let (value, _) = eval_attr(ev, decl.file, body, "value")?;
    let marks = if declared_sensitive {
        value
            .marks
            .union(&Marks::sensitive(format!("output.{}", decl.name)))
    } else {
        value.marks
    };
    Some(Output {
        name: decl.name.clone(),
        value: to_json(&value.value),
        description,
        sensitive: !marks.is_clear(),
        marks,
        span: decl.span.clone(),
    })
}

/// Read the `cutover {}` block.
pub(crate) fn settings(ev: &mut Evaluator<'_>, decl: Option<&Decl<'_>>) -> Settings {
    let mut settings = Settings::default();
    let Some(decl) = decl else { return settings };
    let s = Schema {
        what: "the `cutover` block",
        attrs: &["state", "parallelism", "lineage", "plan_gates"],
        required: &[],
        blocks: &["backend"],
    };
    check_decl(ev, decl, &s);
    let body = &decl.block.body;
    if let Some(state) = opt_string(ev, decl.file, body, "state") {
        settings.state_path = PathBuf::from(state);
    }
    if let Some(n) = opt_uint(ev, decl.file, body, "parallelism", 1, 1024) {
        settings.parallelism = n as usize;
    }
    settings.backend = state_backend(ev, decl.file, body);
    settings.lineage = opt_string(ev, decl.file, body, "lineage");
    settings.plan_gates = plan_gates(ev, decl.file, body);
    settings
}

/// `plan_gates = true | false | "ci"`.
fn plan_gates(ev: &mut Evaluator<'_>, file: &Path, body: &Body) -> super::model::PlanGates {
    use super::model::PlanGates;
    let Some((e, span)) = eval_shown_attr(ev, file, body, "plan_gates") else {
        return PlanGates::Off;
    };
    match &e.value {
        Value::Bool(true) => PlanGates::On,
        Value::Bool(false) => PlanGates::Off,
        Value::String(s) if s == "ci" => PlanGates::InCi,
        other => {
            let shown = match other {
                Value::String(s) => format!("\"{s}\""),
                other => format!("a {}", type_name(other)),
            };
            ev.error_help(
                &span,
                format!("`plan_gates` must be true, false or \"ci\", not {shown}"),
                "\"ci\" runs the checks at plan time when the environment variable CI is set (as CI services set it)",
            );
            PlanGates::Off
        }
    }
}

/// The `backend "pg" {}` or `backend "git" {}` block of `cutover {}`.
fn state_backend(
    ev: &mut Evaluator<'_>,
    file: &Path,
    body: &Body,
) -> Option<super::model::BackendSettings> {
    use super::model::{BackendSettings, GitSettings, PgSettings};
    let mut found = body.get_blocks("backend");
    let block = found.next()?;
    let header = schema::header_span(ev.map, file, block);
    if let Some(second) = found.next() {
        let span = schema::header_span(ev.map, file, second);
        ev.error(
            &span,
            "the `cutover` block has more than one `backend` block",
        );
    }
    let kind = match block.labels.as_slice() {
        [label] => label.as_str().to_owned(),
        _ => {
            ev.error_help(
                &header,
                "a `backend` block takes one label, its kind",
                "backend \"pg\" { ... } or backend \"git\" { ... }",
            );
            return None;
        }
    };
    let (attrs, required): (&[&str], &[&str]) = match kind.as_str() {
        "pg" => (&["conn_str", "name", "schema", "ca_file"], &[]),
        "git" => (&["repo", "branch", "path"], &["repo"]),
        other => {
            let help = crate::config::source::did_you_mean(other, ["pg", "git"])
                .unwrap_or_else(|| "the state backends are \"pg\" and \"git\"".to_owned());
            ev.error_help(&header, format!("unknown state backend \"{other}\""), help);
            return None;
        }
    };
    let what = format!("the backend \"{kind}\" block");
    let s = Schema {
        what: &what,
        attrs,
        required,
        blocks: &[],
    };
    schema::check_body(ev.map, file, &block.body, &s, &header, &mut ev.diags);
    let body = &block.body;
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    match kind.as_str() {
        "pg" => {
            // A password may sit in it: a sensitive value is fine here,
            // since cutover never shows it.
            let conn_str = opt_marked_string(ev, file, body, "conn_str").map(|(s, _)| s);
            if let Some(conn) = &conn_str {
                // Its syntax now (`validate`), never its text: it may hold
                // a password.
                if let Err(e) = conn.parse::<tokio_postgres::Config>() {
                    let why = match std::error::Error::source(&e) {
                        Some(cause) => format!("{e}: {cause}"),
                        None => e.to_string(),
                    };
                    // At the block, whose line holds no password.
                    ev.error(
                        &header,
                        format!(
                            "`conn_str` of this block is not a PostgreSQL connection string: {why}"
                        ),
                    );
                }
            }
            let name = opt_string(ev, file, body, "name").unwrap_or_else(|| "default".into());
            let schema = opt_string(ev, file, body, "schema").unwrap_or_else(|| "public".into());
            for (key, value) in [("name", &name), ("schema", &schema)] {
                if !name_ok(value) {
                    let span = body
                        .get_attribute(key)
                        .map(|a| schema::key_span(ev.map, file, a))
                        .unwrap_or_else(|| header.clone());
                    ev.error(
                        &span,
                        format!("`{key}` must be letters, digits, `_`, `-` or `.`, not {value:?}"),
                    );
                }
            }
            let ca_file = opt_string(ev, file, body, "ca_file").map(PathBuf::from);
            Some(BackendSettings::Pg(PgSettings {
                conn_str,
                name,
                schema,
                ca_file,
                span: header,
            }))
        }
        _ => {
            let repo = opt_string(ev, file, body, "repo")?;
            let branch =
                opt_string(ev, file, body, "branch").unwrap_or_else(|| "cutover-state".into());
            let path =
                opt_string(ev, file, body, "path").unwrap_or_else(|| "cutover.state.json".into());
            Some(BackendSettings::Git(GitSettings {
                repo,
                branch,
                path,
                span: header,
            }))
        }
    }
}
