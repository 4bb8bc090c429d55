//! The patched hcl-edit (vendor/hcl-edit, CUTOVER.md): an object literal's
//! keys are checked through hash sets. These pin what upstream's linear
//! check did: every kind of duplicate key is refused, at the second key;
//! distinct keys that look alike are kept; items keep their source order.

use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::parser::parse_body;

fn keys(src: &str) -> Vec<String> {
    let body = parse_body(&format!("x = {src}\n")).unwrap();
    let attr = body.get_attribute("x").unwrap();
    let Expression::Object(object) = &attr.value else {
        panic!("not an object: {src}");
    };
    object
        .iter()
        .map(|(k, _)| match k {
            ObjectKey::Ident(i) => format!("ident {}", i.as_str()),
            ObjectKey::Expression(Expression::String(s)) => format!("string {}", s.value()),
            ObjectKey::Expression(e) => format!("expr {}", e.to_string().trim()),
        })
        .collect()
}

/// Where the parse of `x = SRC` is refused: line and column.
fn refused_at(src: &str) -> (usize, usize) {
    let err = parse_body(&format!("x = {src}\n")).unwrap_err();
    assert!(
        err.message().contains("redefined object key"),
        "{src}: {}",
        err.message()
    );
    (err.location().line(), err.location().column())
}

#[test]
fn every_kind_of_duplicate_key_is_refused_at_the_second() {
    // `x = ` comes first: columns count from it.
    assert_eq!(refused_at("{ a = 1, b = 2, a = 3 }"), (1, 21));
    assert_eq!(refused_at(r#"{ "a-b" = 1, c = 2, "a-b" = 3 }"#), (1, 25));
    assert_eq!(refused_at("{ (k) = 1, a = 2, (k) = 3 }"), (1, 23));
    assert_eq!(refused_at(r#"{ "${k}" = 1, "${k}" = 3 }"#), (1, 19));
    assert_eq!(refused_at("{\n  a = 1\n  a = 2\n}"), (3, 3));
}

#[test]
fn keys_that_only_look_alike_are_distinct_and_keep_their_order() {
    // An identifier and the string of its name are different keys to
    // hcl-edit (both are kept; the evaluator decides what they mean).
    assert_eq!(
        keys(r#"{ b = 1, "b" = 2, (b) = 3, "${b}" = 4, a = 5 }"#),
        [
            "ident b",
            "string b",
            "expr (b)",
            "expr \"${b}\"",
            "ident a"
        ]
    );
}

#[test]
fn a_literal_of_many_keys_is_read_whole_and_in_order() {
    let src = format!(
        "{{\n{}}}",
        (0..20_000)
            .map(|i| format!("  s{i} = {{ health = \"/h/{i}\" }}\n"))
            .collect::<String>()
    );
    let keys = keys(&src);
    assert_eq!(keys.len(), 20_000);
    assert_eq!(keys[0], "ident s0");
    assert_eq!(keys[19_999], "ident s19999");
}
