//! Marks travel with values: through the evaluator, one expression at a time
//! (each case is the marks of an output's value).

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{json, Value as Json};

use super::*;
use crate::config::{load_str, VarInputs};

const PRELUDE: &str = r#"
variable "secret" {
  sensitive = true
  default   = "s3cret"
}
variable "plain" {
  default = "open"
}
locals {
  m = { a = var.secret, b = "x" }
  l = ["a", var.secret, "c"]
  o = [{ a = var.secret }, { a = "x" }]
}
"#;

fn loaded(expr: &str) -> Result<crate::config::Loaded, String> {
    let text = format!("{PRELUDE}\noutput \"x\" {{\n  value = {expr}\n}}\n");
    load_str(&text, &VarInputs::default()).map_err(|e| e.to_string())
}

fn marks(expr: &str) -> Marks {
    let loaded = loaded(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    loaded.config.outputs["x"].marks.clone()
}

fn s() -> Marks {
    Marks::sensitive("var.secret")
}

#[test]
fn a_marked_element_marks_that_element_only() {
    assert_eq!(
        marks(r#"["a", var.secret, "c"]"#),
        Marks::Items(vec![Marks::Clear, s(), Marks::Clear])
    );
    assert_eq!(
        marks(r#"{ API_TOKEN = var.secret, COLOUR = "blue" }"#),
        Marks::fields([("API_TOKEN".to_owned(), s())])
    );
    assert_eq!(marks("local.l[0]"), Marks::Clear);
    assert_eq!(marks("local.l[1]"), s());
    assert_eq!(marks("local.m.b"), Marks::Clear);
    assert_eq!(marks(r#"local.m["a"]"#), s());
    assert_eq!(marks("var.plain"), Marks::Clear);
}

#[test]
fn templates_functions_and_operations_mark_their_result() {
    assert_eq!(marks(r#""x-${var.secret}""#), s());
    assert_eq!(marks(r#""x-${var.plain}-${local.l[0]}""#), Marks::Clear);
    assert_eq!(marks("upper(var.secret)"), s());
    assert_eq!(marks("length(var.secret) + 1"), s());
    assert_eq!(marks(r#""%{ for x in local.l }${x}%{ endfor }""#), s());
    assert_eq!(marks("upper(var.plain)"), Marks::Clear);
}

#[test]
fn functions_that_reorder_or_pick_elements_mark_their_whole_result() {
    // A result computed from a list with one marked element is wholly marked
    // (no element's position is trusted after a reorder or a pick).
    for expr in [
        "reverse(local.l)",
        "sort(local.l)",
        "toset(local.l)",
        "distinct(local.l)",
        "element(local.l, 0)",
        "one([var.secret])",
        "slice(local.l, 0, 1)",
        "sha256(var.secret)",
        "substr(var.secret, 0, 1)",
        "jsondecode(jsonencode(local.m))",
        "zipmap([\"k\"], [var.secret])",
        "formatlist(\"%s\", local.l)",
    ] {
        assert_eq!(marks(expr), s(), "{expr}");
    }
    assert_eq!(marks("reverse([var.plain])"), Marks::Clear);
}

#[test]
fn sensitive_marks_and_nonsensitive_removes() {
    assert_eq!(marks(r#"sensitive("x")"#), Marks::sensitive("sensitive()"));
    assert_eq!(marks("nonsensitive(var.secret)"), Marks::Clear);
    assert_eq!(marks(r#"[nonsensitive(local.l[1]), "b"]"#), Marks::Clear);
}

#[test]
fn merge_and_concat_keep_each_part_its_marks() {
    assert_eq!(
        marks(r#"merge(local.m, { c = "y" })"#),
        Marks::fields([("a".to_owned(), s())])
    );
    // A later map's key wins, with its marks.
    assert_eq!(marks(r#"merge(local.m, { a = "y" })"#), Marks::Clear);
    assert_eq!(
        marks(r#"concat(local.l, ["d"])"#),
        Marks::Items(vec![Marks::Clear, s(), Marks::Clear, Marks::Clear])
    );
}

#[test]
fn a_conditional_has_the_marks_of_the_branch_taken() {
    assert_eq!(marks("true ? var.plain : var.secret"), Marks::Clear);
    assert_eq!(marks("false ? var.plain : var.secret"), s());
    // Which branch is taken depends on the secret: the result is marked.
    assert_eq!(marks(r#"var.secret == "x" ? "a" : "b""#), s());
}

#[test]
fn for_expressions_go_element_by_element() {
    assert_eq!(
        marks("[for x in local.l : upper(x)]"),
        Marks::Items(vec![Marks::Clear, s(), Marks::Clear])
    );
    assert_eq!(
        marks("{ for k, v in local.m : k => v }"),
        Marks::fields([("a".to_owned(), s())])
    );
    assert_eq!(
        marks("[for i, x in local.l : x if i != 0]"),
        Marks::Items(vec![s(), Marks::Clear])
    );
    // A condition on the secret tells whether it is kept: all marked.
    assert_eq!(marks(r#"[for x in local.l : x if x != "a"]"#), s());
    // A key computed from a secret hides the whole map.
    assert_eq!(marks("{ for v in local.l : v => 1 }"), s());
}

#[test]
fn splats_map_over_the_elements() {
    assert_eq!(marks("local.o[*].a"), Marks::Items(vec![s(), Marks::Clear]));
}

#[test]
fn an_output_declared_sensitive_is_marked_whole() {
    let text =
        format!("{PRELUDE}\noutput \"x\" {{\n  value     = \"open\"\n  sensitive = true\n}}\n");
    let config = load_str(&text, &VarInputs::default()).unwrap().config;
    assert_eq!(config.outputs["x"].marks, Marks::sensitive("output.x"));
}

#[test]
fn a_setting_cutover_shows_cannot_be_sensitive() {
    let text = format!(
        "{PRELUDE}\nenvironment \"blue\" {{\n  release  = \"1\"\n  endpoint = \"127.0.0.1:9101\"\n}}\n\
         router \"public\" {{\n  live  = environment.blue\n  drain = var.secret\n  exec {{\n    read   = [\"true\"]\n    switch = [\"true\"]\n  }}\n}}\n"
    );
    let err = load_str(&text, &VarInputs::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`drain` cannot be sensitive: cutover shows it in every plan (it comes from var.secret)"),
        "{err}"
    );
    assert!(err.contains("main.hcl:"), "{err}");
}

#[test]
fn redact_replaces_marked_parts_only_and_twice_is_once() {
    let value = json!({ "command": ["./app", "9102"], "env": { "T": "9102", "C": "blue" } });
    let m = Marks::fields([
        ("command".to_owned(), Marks::Items(vec![Marks::Clear, s()])),
        ("env".to_owned(), Marks::fields([("T".to_owned(), s())])),
    ]);
    let shown = m.redact(&value);
    assert_eq!(
        shown,
        json!({ "command": ["./app", marker("9102")], "env": { "T": marker("9102"), "C": "blue" } })
    );
    assert_eq!(m.redact(&shown), shown);
    assert_ne!(
        marker("hunter22"),
        marker("hunter23"),
        "a rotated secret shows"
    );
}

/// Any JSON value, a few levels deep, whose strings often hold `SECRET`.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z]{0,4}(SECRET)?[a-z]{0,4}".prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map("[a-c]", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// Marks for `value`, each part marked with probability about one in three.
fn marks_for(value: &Json, seed: &mut u64) -> Marks {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    if (*seed >> 33).is_multiple_of(3) {
        return s();
    }
    match value {
        Json::Array(items) => Marks::items(items.iter().map(|v| marks_for(v, seed)).collect()),
        Json::Object(map) => {
            Marks::fields(map.iter().map(|(k, v)| (k.clone(), marks_for(v, seed))))
        }
        _ => Marks::Clear,
    }
}

/// Every part of `shown` is `real`'s unless marked, and a marker if marked.
fn check(marks: &Marks, real: &Json, shown: &Json) -> Result<(), TestCaseError> {
    match (marks, real, shown) {
        (Marks::Clear, _, _) => prop_assert_eq!(real, shown),
        (Marks::Sensitive(_), _, Json::String(m)) => prop_assert_eq!(m, &marker_of(real)),
        (Marks::Items(ms), Json::Array(a), Json::Array(b)) => {
            prop_assert_eq!(a.len(), b.len());
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                check(ms.get(i).unwrap_or(&Marks::Clear), x, y)?;
            }
        }
        (Marks::Fields(ms), Json::Object(a), Json::Object(b)) => {
            prop_assert_eq!(
                a.keys().collect::<BTreeSet<_>>(),
                b.keys().collect::<BTreeSet<_>>()
            );
            for (k, x) in a {
                check(ms.get(k).unwrap_or(&Marks::Clear), x, &b[k])?;
            }
        }
        (m, r, s) => prop_assert!(false, "marks {m:?} do not fit {r} (shown {s})"),
    }
    Ok(())
}

proptest! {
    /// Redacting never changes an unmarked value, whatever text it shares
    /// with a marked one.
    #[test]
    fn redacting_changes_only_what_is_marked(value in json_value(), seed in any::<u64>()) {
        let mut seed = seed;
        let m = marks_for(&value, &mut seed);
        let shown = m.redact(&value);
        check(&m, &value, &shown)?;
        prop_assert_eq!(Marks::Clear.redact(&value), value.clone());
        prop_assert_eq!(m.difference(&shown, &value), Difference::Same);
    }
}

const TWO_COLOURS: &str = r#"
variable "rel" {
  sensitive = true
  default   = "9.9.9"
}
variable "live" {
  default = "green"
}
environment "blue" {
  release  = "1"
  endpoint = "127.0.0.1:9101"
}
environment "green" {
  release  = var.rel
  endpoint = "127.0.0.1:9102"
}
"#;

#[test]
fn a_colour_with_a_sensitive_release_may_be_chosen_by_a_condition() {
    let text = format!(
        "{TWO_COLOURS}router \"public\" {{\n  live = var.live == \"green\" ? environment.green : environment.blue\n  exec {{\n    read   = [\"true\"]\n    switch = [\"true\"]\n  }}\n}}\n"
    );
    let config = load_str(&text, &VarInputs::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    assert_eq!(config.routers["public"].live, "green");
}

#[test]
fn every_sensitive_value_where_none_may_be_is_reported_in_one_run() {
    let text = format!(
        "{PRELUDE}\nenvironment \"blue\" {{\n  release  = \"1\"\n  endpoint = \"127.0.0.1:9101\"\n  health {{\n    interval = var.secret\n  }}\n}}\n\
         router \"public\" {{\n  live          = environment.blue\n  preview       = var.secret\n  drain         = var.secret\n  ready_timeout = var.secret\n  exec {{\n    read   = [\"true\"]\n    switch = [\"true\"]\n  }}\n}}\n"
    );
    let err = load_str(&text, &VarInputs::default())
        .unwrap_err()
        .to_string();
    for key in ["interval", "preview", "drain", "ready_timeout"] {
        assert!(
            err.contains(&format!("`{key}` cannot be sensitive")),
            "{key} not reported:\n{err}"
        );
    }
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn no_error_quotes_a_var_file_or_a_sensitive_value() {
    let dir = tempfile::tempdir().unwrap();
    let var_file = dir.path().join("secrets.tfvars");
    std::fs::write(
        &var_file,
        "rel = [\"not-a-string-SeCrEt\"]\nnope = \"typo-SeCrEt\"\n",
    )
    .unwrap();
    let text = format!(
        "{TWO_COLOURS}variable \"tokens\" {{\n  type      = list\n  sensitive = true\n}}\n"
    );
    let inputs = VarInputs {
        files: vec![var_file],
        cli: vec![("tokens".into(), "[\"LiSt-SeCrEt\", BAD]".into())],
        ..VarInputs::default()
    };
    let err = load_str(&text, &inputs).unwrap_err().to_string();
    assert!(!err.contains("SeCrEt"), "{err}");
    assert!(
        err.contains("secrets.tfvars:"),
        "the place is still given:\n{err}"
    );
    assert!(err.contains("--var tokens=..."), "{err}");
}

#[test]
fn an_evaluation_error_shows_no_sensitive_value_nor_a_var_file_expression() {
    let text = format!("{PRELUDE}\noutput \"x\" {{\n  value = tonumber(var.secret)\n}}\n");
    let err = load_str(&text, &VarInputs::default())
        .unwrap_err()
        .to_string();
    assert!(!err.contains("s3cret"), "{err}");
    assert!(err.contains(&marker("s3cret")), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let var_file = dir.path().join("e.tfvars");
    std::fs::write(&var_file, "rel = \"SEKRIT-20\" + 1\n").unwrap();
    let inputs = VarInputs {
        files: vec![var_file],
        ..VarInputs::default()
    };
    let err = load_str(TWO_COLOURS, &inputs).unwrap_err().to_string();
    assert!(!err.contains("SEKRIT"), "{err}");
    assert!(err.contains("e.tfvars:1:"), "{err}");
}
