//! `notify "NAME" {}` blocks: webhooks for an apply's events
//! (docs/notify.md). Checked when the configuration loads, so that
//! `validate` and `plan` report a bad URL, an unknown event or a bad header
//! at its place; sent by `engine::notify` during `apply` and `rollback`.
//!
//! A webhook URL is a credential (Slack's carries its token in the path)
//! and a header is where tokens go: neither is ever put in a message, and
//! their errors point at the block's header, whose line holds neither (as
//! the `conn_str` of a pg backend does).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hcl::Value;
use hcl_edit::expr::Expression;

use super::blocks::{as_string, check_decl, eval_attr, eval_shown_attr, type_name};
use super::environment::duration_attr;
use super::eval::Evaluator;
use super::model::{Marks, Notify, NotifyEvent, NotifyFormat, Span, DEFAULT_NOTIFY_TIMEOUT};
use super::schema::{Decl, Schema};
use super::source::did_you_mean;

/// The longest `timeout`: cutover waits at most this long for notifications
/// when a command finishes, so a longer POST could never end anyway.
pub const MAX_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Build a `notify` block; `None` when it has an error (reported).
pub(crate) fn notify(ev: &mut Evaluator<'_>, decl: &Decl<'_>) -> Option<Notify> {
    let what = format!("notify \"{}\"", decl.name);
    let s = Schema {
        what: &what,
        attrs: &["webhook", "events", "headers", "format", "timeout"],
        required: &["webhook"],
        blocks: &[],
    };
    check_decl(ev, decl, &s);
    // Every attribute is read before any error ends the block, so that one
    // run reports every mistake.
    let webhook = webhook(ev, decl, &what);
    let events = events(ev, decl);
    let headers = headers(ev, decl, &what);
    let format = format(ev, decl);
    let timeout = timeout(ev, decl);
    Some(Notify {
        name: decl.name.clone(),
        webhook: webhook?,
        events: events?,
        headers: headers?,
        format: format?,
        timeout: timeout?,
        span: decl.span.clone(),
    })
}

/// `webhook`: an http(s) URL. It may be sensitive (it is never shown).
fn webhook(ev: &mut Evaluator<'_>, decl: &Decl<'_>, what: &str) -> Option<reqwest::Url> {
    // A missing one is reported by the schema check.
    let (e, _) = eval_attr(ev, decl.file, &decl.block.body, "webhook")?;
    let help = "write the URL the webhook's service gave you: webhook = \"https://...\" (or from a sensitive variable)";
    let Value::String(text) = &e.value else {
        let msg = format!(
            "`webhook` of {what} must be a string, not a {}",
            type_name(&e.value)
        );
        ev.error_help(&decl.span, msg, help);
        return None;
    };
    // The url crate's errors never quote the text they were given.
    let why = match reqwest::Url::parse(text) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            format!(
                "must be an http:// or https:// URL, not {}://",
                url.scheme()
            )
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => "has no host".to_owned(),
        Ok(url) => return Some(url),
        Err(e) => format!("is not a URL: {e}"),
    };
    ev.error_help(&decl.span, format!("`webhook` of {what} {why}"), help);
    None
}

/// `events`: a list of event names (default: all of them).
fn events(ev: &mut Evaluator<'_>, decl: &Decl<'_>) -> Option<BTreeSet<NotifyEvent>> {
    let body = &decl.block.body;
    let Some(attr) = body.get_attribute("events") else {
        return Some(NotifyEvent::ALL.into_iter().collect());
    };
    let (e, span) = eval_shown_attr(ev, decl.file, body, "events")?;
    let names = NotifyEvent::ALL.map(NotifyEvent::as_str);
    let help = format!("the events are: {}", names.join(", "));
    let Value::Array(items) = &e.value else {
        let msg = format!(
            "`events` must be a list of event names, not a {}",
            type_name(&e.value)
        );
        ev.error_help(&span, msg, help);
        return None;
    };
    if items.is_empty() {
        ev.error_help(
            &span,
            "`events` is empty: this block would never be sent anything",
            format!("name some events, or remove the block ({help})"),
        );
        return None;
    }
    let mut out = BTreeSet::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let at = element_span(ev, decl, &attr.value, i).unwrap_or_else(|| span.clone());
        let found = as_string(item).and_then(|name| NotifyEvent::from_name(&name));
        match (found, item) {
            (Some(event), _) => {
                out.insert(event);
            }
            (None, Value::String(name)) => {
                let help = did_you_mean(name, names).unwrap_or_else(|| help.clone());
                ev.error_help(&at, format!("unknown event \"{name}\" in `events`"), help);
                ok = false;
            }
            (None, other) => {
                let msg = format!("`events` must list event names, not a {}", type_name(other));
                ev.error_help(&at, msg, help.clone());
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// The span of element `i` of a list written out (`["a", "b"]`).
fn element_span(ev: &Evaluator<'_>, decl: &Decl<'_>, expr: &Expression, i: usize) -> Option<Span> {
    match expr {
        Expression::Array(items) => items.iter().nth(i).map(|e| ev.span_of(decl.file, e)),
        _ => None,
    }
}

/// `headers`: a map of header names to values, checked as HTTP headers.
/// The values may be sensitive (they are never shown); so may the names,
/// which are shown only when they are not.
fn headers(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    what: &str,
) -> Option<BTreeMap<String, String>> {
    let Some((e, _)) = eval_attr(ev, decl.file, &decl.block.body, "headers") else {
        // Absent, or an error already reported.
        return decl
            .block
            .body
            .get_attribute("headers")
            .is_none()
            .then(BTreeMap::new);
    };
    let help = "write headers = { Authorization = \"Bearer ...\" }";
    let Value::Object(map) = &e.value else {
        let msg = format!(
            "`headers` of {what} must be a map of header names to values, not a {}",
            type_name(&e.value)
        );
        ev.error_help(&decl.span, msg, help);
        return None;
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (name, value) in map {
        // A map marked whole hides its names too; a map with marked
        // values (`{ Authorization = var.token }`) only those values.
        let shown = if matches!(e.marks, Marks::Sensitive(_)) {
            "(a sensitive name)".to_owned()
        } else {
            format!("`{name}`")
        };
        let problem = match as_string(value) {
            _ if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() => {
                Some(format!("the header name {shown} is not a valid HTTP header name"))
            }
            None => Some(format!(
                "the value of header {shown} must be a string, not a {}",
                type_name(value)
            )),
            Some(v) if reqwest::header::HeaderValue::from_str(&v).is_err() => Some(format!(
                "the value of header {shown} is not a valid HTTP header value (a control character or a line break?)"
            )),
            Some(v) => {
                out.insert(name.clone(), v);
                None
            }
        };
        if let Some(problem) = problem {
            ev.error_help(&decl.span, format!("{what}: {problem}"), help);
            ok = false;
        }
    }
    ok.then_some(out)
}

/// `format`: `"json"` (default) or `"slack"`.
fn format(ev: &mut Evaluator<'_>, decl: &Decl<'_>) -> Option<NotifyFormat> {
    let Some((e, span)) = eval_shown_attr(ev, decl.file, &decl.block.body, "format") else {
        return decl
            .block
            .body
            .get_attribute("format")
            .is_none()
            .then_some(NotifyFormat::Json);
    };
    let text = as_string(&e.value).unwrap_or_default();
    match text.as_str() {
        "json" => Some(NotifyFormat::Json),
        "slack" => Some(NotifyFormat::Slack),
        _ => {
            let shown = match &e.value {
                Value::String(s) => format!("\"{s}\""),
                other => format!("a {}", type_name(other)),
            };
            let help = did_you_mean(&text, ["json", "slack"])
                .unwrap_or_else(|| "the formats are \"json\" and \"slack\"".to_owned());
            ev.error_help(
                &span,
                format!("`format` must be \"json\" or \"slack\", not {shown}"),
                help,
            );
            None
        }
    }
}

/// `timeout`: how long one POST may take, more than 0 and at most
/// [`MAX_NOTIFY_TIMEOUT`].
fn timeout(ev: &mut Evaluator<'_>, decl: &Decl<'_>) -> Option<Duration> {
    let body = &decl.block.body;
    let Some(attr) = body.get_attribute("timeout") else {
        return Some(DEFAULT_NOTIFY_TIMEOUT);
    };
    let timeout = duration_attr(ev, decl.file, body, "timeout")?;
    if timeout.is_zero() || timeout > MAX_NOTIFY_TIMEOUT {
        let span = ev.span_of(decl.file, &attr.value);
        ev.error_help(
            &span,
            format!(
                "`timeout` must be more than 0s and at most {}s, not {}",
                MAX_NOTIFY_TIMEOUT.as_secs(),
                humantime::format_duration(timeout)
            ),
            "cutover waits at most 10s for notifications when a command finishes: a longer POST could never end",
        );
        return None;
    }
    Some(timeout)
}

#[cfg(test)]
mod tests {
    use crate::config::model::{NotifyEvent, NotifyFormat};
    use crate::config::{load_str, VarInputs};
    use std::time::Duration;

    fn load(body: &str) -> Result<crate::config::Config, String> {
        let text = format!(
            "variable \"hook\" {{\n  sensitive = true\n  default   = \"https://hooks.example.com/services/T0/B0/s3cr3t\"\n}}\n\n{body}"
        );
        load_str(&text, &VarInputs::default())
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    }

    #[track_caller]
    fn error(body: &str) -> String {
        match load(body) {
            Ok(_) => panic!("expected diagnostics for:\n{body}"),
            Err(e) => {
                assert!(!e.contains("s3cr3t"), "the webhook was shown:\n{e}");
                e
            }
        }
    }

    #[test]
    fn a_block_with_every_attribute_and_one_with_the_defaults() {
        let config = load(
            r#"notify "ops" {
  webhook = var.hook
  events  = ["cutover_done", "failed"]
  headers = { Authorization = "Bearer ${var.hook}", X-Team = "web" }
  format  = "slack"
  timeout = "2s"
}

notify "ci" {
  webhook = "http://127.0.0.1:9/hook"
}
"#,
        )
        .unwrap();
        let ops = &config.notify["ops"];
        assert_eq!(
            ops.webhook.as_str(),
            "https://hooks.example.com/services/T0/B0/s3cr3t"
        );
        assert_eq!(
            ops.events.iter().copied().collect::<Vec<_>>(),
            [NotifyEvent::CutoverDone, NotifyEvent::Failed]
        );
        assert_eq!(ops.headers["X-Team"], "web");
        assert_eq!(ops.format, NotifyFormat::Slack);
        assert_eq!(ops.timeout, Duration::from_secs(2));
        let ci = &config.notify["ci"];
        assert_eq!(ci.events.len(), NotifyEvent::ALL.len());
        assert_eq!(ci.format, NotifyFormat::Json);
        assert_eq!(ci.timeout, Duration::from_secs(5));
        assert!(ci.headers.is_empty());
        // Its Debug form (a panic message, a log line) hides the secrets.
        let debug = format!("{:?}", config.notify);
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("Bearer"),
            "{debug}"
        );
    }

    #[test]
    fn a_bad_webhook_is_an_error_at_the_block_that_never_shows_the_url() {
        let e = error(
            r#"notify "ops" {
  webhook = "ftp://user:s3cr3t@example.com/x"
}
"#,
        );
        assert_eq!(
            e,
            r#"error: `webhook` of notify "ops" must be an http:// or https:// URL, not ftp://
 --> main.hcl:6:1
  |
6 | notify "ops" {
  | ^^^^^^^^^^^^
  = help: write the URL the webhook's service gave you: webhook = "https://..." (or from a sensitive variable)
"#
        );
        let e = error("notify \"ops\" {\n  webhook = \"s3cr3t\"\n}\n");
        assert!(
            e.contains("`webhook` of notify \"ops\" is not a URL: relative URL without a base"),
            "{e}"
        );
        let e = error("notify \"ops\" {\n  webhook = [\"s3cr3t\"]\n}\n");
        assert!(e.contains("must be a string, not a list"), "{e}");
        let e = error("notify \"ops\" {\n  events = [\"failed\"]\n}\n");
        assert!(
            e.contains("missing required argument `webhook` in notify \"ops\""),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_event_is_an_error_at_its_name_with_a_suggestion() {
        let e = error(
            r#"notify "ops" {
  webhook = var.hook
  events  = ["cutover_done", "cutover_dnoe", "deployed"]
}
"#,
        );
        assert_eq!(
            e,
            r#"error: unknown event "cutover_dnoe" in `events`
 --> main.hcl:8:30
  |
8 |   events  = ["cutover_done", "cutover_dnoe", "deployed"]
  |                              ^^^^^^^^^^^^^^
  = help: did you mean `cutover_done`?

error: unknown event "deployed" in `events`
 --> main.hcl:8:46
  |
8 |   events  = ["cutover_done", "cutover_dnoe", "deployed"]
  |                                              ^^^^^^^^^^
  = help: the events are: cutover_done, reverted, failed, awaiting_approval, apply_finished

2 errors found
"#
        );
        let e = error("notify \"ops\" {\n  webhook = var.hook\n  events = []\n}\n");
        assert!(e.contains("`events` is empty"), "{e}");
        let e = error("notify \"ops\" {\n  webhook = var.hook\n  events = \"failed\"\n}\n");
        assert!(
            e.contains("`events` must be a list of event names, not a string"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_format_timeout_or_argument_is_located() {
        let e = error(
            r#"notify "ops" {
  webhook = var.hook
  format  = "slak"
  timeout = "1m"
  evnets  = ["failed"]
}
"#,
        );
        for part in [
            "error: `format` must be \"json\" or \"slack\", not \"slak\"\n --> main.hcl:8:13",
            "= help: did you mean `slack`?",
            "error: `timeout` must be more than 0s and at most 10s, not 1m\n --> main.hcl:9:13",
            "error: unknown argument `evnets` in notify \"ops\"\n  --> main.hcl:10:3",
            "= help: did you mean `events`?",
        ] {
            assert!(e.contains(part), "missing {part:?} in:\n{e}");
        }
    }

    #[test]
    fn bad_headers_name_the_header_but_never_its_value() {
        let e = error(
            r#"notify "ops" {
  webhook = var.hook
  headers = { "Bad Name" = "x", Authorization = "Bearer\ns3cr3t" }
}
"#,
        );
        for part in [
            "notify \"ops\": the header name `Bad Name` is not a valid HTTP header name",
            "notify \"ops\": the value of header `Authorization` is not a valid HTTP header value",
        ] {
            assert!(e.contains(part), "missing {part:?} in:\n{e}");
        }
        let e = error("notify \"ops\" {\n  webhook = var.hook\n  headers = [\"x\"]\n}\n");
        assert!(
            e.contains("must be a map of header names to values, not a list"),
            "{e}"
        );
    }

    #[test]
    fn labels_are_unique_and_the_block_type_is_suggested() {
        let e = error(
            "notify \"ops\" {\n  webhook = var.hook\n}\nnotify \"ops\" {\n  webhook = var.hook\n}\nnotfy \"x\" {}\n",
        );
        assert!(
            e.contains("duplicate notify \"ops\" (the first is at main.hcl:6:1)"),
            "{e}"
        );
        assert!(e.contains("unknown block type `notfy`"), "{e}");
        assert!(e.contains("did you mean `notify`?"), "{e}");
    }
}
