//! The plan for machines: `cutover plan --json`.
//!
//! It is the plan document itself, serialized, so that a program reading it
//! sees exactly what the human view was drawn from; the one difference is that
//! sensitive values are replaced by `"(sensitive)"`, because this output ends
//! up in CI logs and pull-request bots. The schema is documented in
//! `docs/plan-json.md`; `format_version` changes when it changes incompatibly.

use serde_json::Value;

use crate::plan::document::{PlanDocument, StepKind};

/// What a sensitive value is replaced with, before and after.
pub const REDACTED: &str = "(sensitive)";

/// The plan document as pretty JSON (two-space indent, fields in a fixed
/// order, map keys sorted), sensitive values redacted, without a final newline
/// (the caller prints it with one).
pub fn plan(doc: &PlanDocument) -> String {
    let mut doc = doc.clone();
    for step in &mut doc.steps {
        if let StepKind::Environment { changes, .. } = &mut step.kind {
            for change in changes.iter_mut().filter(|c| c.sensitive) {
                // Keep "was it set" visible: only values are hidden.
                change.before = change.before.as_ref().map(|_| Value::from(REDACTED));
                change.after = change.after.as_ref().map(|_| Value::from(REDACTED));
            }
        }
    }
    serde_json::to_string_pretty(&doc).expect("a PlanDocument always serializes")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::document::{Action, AttributeChange, Traffic};
    use crate::render::sample::*;

    #[test]
    fn round_trips_into_the_document() {
        let doc = blue_to_green();
        let text = plan(&doc);
        let back: PlanDocument = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
        assert!(text.ends_with("\n}"));
        assert!(
            text.starts_with("{\n  \"format_version\": \"1.1\",\n"),
            "{text}"
        );
    }

    #[test]
    fn sensitive_values_are_redacted() {
        let mut doc = blue_to_green();
        doc.steps.push(env_step(
            Action::Create,
            "canary",
            Traffic::Idle,
            vec![AttributeChange {
                sensitive: true,
                ..change("api_token", None, Some(json!("hunter2")))
            }],
        ));
        let text = plan(&doc);
        assert!(!text.contains("hunter2"), "{text}");
        let back: PlanDocument = serde_json::from_str(&text).unwrap();
        let StepKind::Environment { changes, .. } = &back.steps[3].kind else {
            panic!("expected an environment step");
        };
        assert_eq!(changes[0].before, None);
        assert_eq!(changes[0].after, Some(json!("(sensitive)")));
    }

    #[test]
    fn schema_is_what_the_docs_say() {
        insta::assert_snapshot!(plan(&blue_to_green()));
    }
}
