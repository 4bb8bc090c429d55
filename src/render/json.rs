//! The plan for machines: `cutover plan --json`.
//!
//! It is the plan document itself, serialized, so that a program reading it
//! sees exactly what the human view was drawn from, sensitive values as their
//! markers (plan::sensitive) as everywhere. The schema is documented in
//! `docs/plan-json.md`; `format_version` changes when it changes incompatibly.

use crate::plan::document::PlanDocument;

/// The plan document as pretty JSON (two-space indent, fields in a fixed
/// order, map keys sorted), without a final newline (the caller prints it
/// with one). Its sensitive values are markers already (plan::sensitive).
pub fn plan(doc: &PlanDocument) -> String {
    serde_json::to_string_pretty(doc).expect("a PlanDocument always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sample::*;

    #[test]
    fn round_trips_into_the_document() {
        let doc = blue_to_green();
        let text = plan(&doc);
        let back: PlanDocument = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
        assert!(text.ends_with("\n}"));
        assert!(
            text.starts_with("{\n  \"format_version\": \"1.6\",\n"),
            "{text}"
        );
    }

    #[test]
    fn schema_is_what_the_docs_say() {
        insta::assert_snapshot!(plan(&blue_to_green()));
    }
}
