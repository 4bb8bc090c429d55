//! Views of the plan document and the state, for people and for machines.
//!
//! Every view reads only a [`PlanDocument`](crate::plan::document::PlanDocument),
//! a [`State`](crate::state::model::State) or what the state backend holds
//! beside it (an apply's pause for approval) and returns a `String`: the
//! views never decide anything, so the terminal, `--json` and a saved plan
//! shown later cannot disagree. Printing is the CLI's business.

pub mod approval;
pub mod checks;
pub mod human;
pub mod json;
pub mod markdown;
pub mod readiness;
pub mod state;
pub mod status;

use serde_json::Value;

/// How the human view looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Whether to use ANSI colours (the CLI decides: a terminal, no `NO_COLOR`,
    /// no `--no-color`).
    pub color: bool,
}

/// Values inline up to this width; wider objects and arrays are laid out on
/// several lines.
const INLINE_WIDTH: usize = 72;

/// Formats a JSON value the way HCL would write it: strings quoted, arrays
/// `[a, b]`, objects `{ k = v }`, laid out over several lines (each indented by
/// `indent` plus two spaces) when too wide for one.
pub(crate) fn hcl_value(value: &Value, indent: usize) -> String {
    let inline = hcl_inline(value);
    if inline.len() <= INLINE_WIDTH || !matches!(value, Value::Array(_) | Value::Object(_)) {
        return inline;
    }
    let pad = " ".repeat(indent + 2);
    let close = " ".repeat(indent);
    match value {
        Value::Array(items) => {
            let mut out = String::from("[\n");
            for item in items {
                out.push_str(&format!("{pad}{},\n", hcl_value(item, indent + 2)));
            }
            out.push_str(&format!("{close}]"));
            out
        }
        Value::Object(map) => {
            let width = map.keys().map(|k| hcl_key(k).len()).max().unwrap_or(0);
            let mut out = String::from("{\n");
            for (key, item) in map {
                out.push_str(&format!(
                    "{pad}{:width$} = {}\n",
                    hcl_key(key),
                    hcl_value(item, indent + 2)
                ));
            }
            out.push_str(&format!("{close}}}"));
            out
        }
        _ => inline,
    }
}

/// A value on one line.
fn hcl_inline(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(hcl_inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", hcl_key(k), hcl_inline(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        // JSON's quoting of strings, numbers, booleans and null is HCL's too.
        other => other.to_string(),
    }
}

/// An object key: bare when it is an identifier, quoted otherwise.
fn hcl_key(key: &str) -> String {
    let bare = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        Value::from(key).to_string()
    }
}

/// Plan documents built by hand, shared by the views' tests.
#[cfg(test)]
pub(crate) mod sample {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use cutover_provider::{Colour, EnvironmentSpec, RouterSpec};
    use serde_json::{json, Value};

    use crate::addr::StepId;
    use crate::config::model::Health;
    use crate::plan::document::*;

    pub fn doc(steps: Vec<Step>, summary: Summary, rollback: Vec<RollbackHint>) -> PlanDocument {
        PlanDocument {
            format_version: FORMAT_VERSION.to_owned(),
            cutover_version: "0.1.0".to_owned(),
            lineage: Some("6f1c2b7e-3d4a-4f5e-9a8b-1c2d3e4f5a6b".to_owned()),
            serial: 7,
            drift: vec![],
            steps,
            summary,
            rollback,
            fingerprint: BTreeMap::from([("router.public".to_owned(), "blue".to_owned())]),
            options: Default::default(),
            readiness: vec![],
            moved: Vec::new(),
        }
    }

    fn port(name: &str) -> u16 {
        match name {
            "blue" => 9101,
            "green" => 9102,
            _ => 9103,
        }
    }

    pub fn env_spec(name: &str, release: &str) -> EnvironmentSpec {
        let port = port(name).to_string();
        EnvironmentSpec {
            name: name.to_owned(),
            release: release.to_owned(),
            endpoints: vec![format!("127.0.0.1:{port}")],
            settings: json!({"command": ["./demo-app", "--port", port, "--release", release]}),
            workdir: PathBuf::from("/srv/app"),
            sensitive: Default::default(),
        }
    }

    pub fn change(name: &str, before: Option<Value>, after: Option<Value>) -> AttributeChange {
        AttributeChange {
            name: name.to_owned(),
            before,
            after,
            sensitive: false,
        }
    }

    pub fn env_step(
        action: Action,
        name: &str,
        traffic: Traffic,
        changes: Vec<AttributeChange>,
    ) -> Step {
        Step::new(StepKind::Environment {
            action,
            name: name.to_owned(),
            traffic,
            changes,
            spec: env_spec(name, "1.4.2"),
            backend: "process".to_owned(),
        })
    }

    pub fn gate(name: &str) -> Step {
        Step {
            id: StepId::Health(name.to_owned()),
            depends_on: vec![StepId::Environment(name.to_owned())],
            kind: StepKind::HealthGate {
                environment: name.to_owned(),
                endpoints: vec![format!("127.0.0.1:{}", port(name))],
                health: Health {
                    path: "/healthz".to_owned(),
                    ..Health::default()
                },
                release: None,
            },
        }
    }

    pub fn cutover(router: &str, from: Option<&str>, to: &str) -> Step {
        let colour = |n: &str| Colour {
            name: n.to_owned(),
            endpoints: vec![format!("127.0.0.1:{}", port(n))],
        };
        Step {
            id: StepId::Cutover(router.to_owned()),
            depends_on: vec![StepId::Health(to.to_owned())],
            kind: StepKind::Cutover {
                router: router.to_owned(),
                from: from.map(str::to_owned),
                to: to.to_owned(),
                from_release: from.map(|_| "1.4.1".to_owned()),
                from_identity: None,
                from_raw: None,
                to_release: Some("1.4.2".to_owned()),
                spec: RouterSpec::new(
                    router,
                    vec![colour("blue"), colour("green")].into(),
                    json!({"socket": "/run/haproxy/admin.sock", "map": "/etc/haproxy/live.map"}),
                    PathBuf::from("/srv/app"),
                ),
                target: colour(to),
                backend: "haproxy".to_owned(),
                verify: None,
                reason: None,
                ready_timeout: crate::config::model::DEFAULT_READY_TIMEOUT,
                rollback: false,
                after_checks: vec![],
                instances: vec![],
            },
        }
    }

    /// The example of DESIGN.md §1: update green, gate it, cut over.
    pub fn blue_to_green() -> PlanDocument {
        doc(
            vec![
                env_step(
                    Action::Update,
                    "green",
                    Traffic::Idle,
                    vec![change(
                        "release",
                        Some(json!("1.4.1")),
                        Some(json!("1.4.2")),
                    )],
                ),
                gate("green"),
                cutover("public", Some("blue"), "green"),
            ],
            Summary {
                change: 1,
                cutover: 1,
                health_gates: 1,
                outcome: Outcome::Cutover,
                ..Summary::default()
            },
            vec![RollbackHint {
                router: "public".to_owned(),
                to: "blue".to_owned(),
                release: Some("1.4.1".to_owned()),
                changed_after_cutover: false,
            }],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_like_hcl() {
        assert_eq!(hcl_value(&json!("1.4.2"), 0), r#""1.4.2""#);
        assert_eq!(
            hcl_value(&json!(["a", 1, true, null]), 0),
            r#"["a", 1, true, null]"#
        );
        assert_eq!(
            hcl_value(&json!({"b": 1, "a b": {}}), 0),
            r#"{ "a b" = {}, b = 1 }"#
        );
        let long = json!({"command": ["./demo-app", "--port", "9102", "--release", "1.4.2"], "env": {"LOG_LEVEL": "info"}});
        assert_eq!(
            hcl_value(&long, 2),
            "{\n    command = [\"./demo-app\", \"--port\", \"9102\", \"--release\", \"1.4.2\"]\n    env     = { LOG_LEVEL = \"info\" }\n  }"
        );
    }
}
