//! The patched hcl-edit (vendor/hcl-edit, CUTOVER.md): interpolations and
//! directives are parsed once per offset, and a chain of binary operations
//! that ends at a failing operation is not parsed again. Every input the
//! config fuzzer found slow is refused within a second, with the error
//! upstream 0.10.0 gives after seconds or minutes (its times, from
//! vendor/hcl-edit-diff, in the table); small shapes of the same kind keep
//! upstream's answers too.

use std::path::Path;

use hcl_edit::expr::{BinaryOperator, Expression};
use hcl_edit::template::Element;
use std::time::Duration;

use super::diag::Diagnostics;
use super::parse::parse_text_within;
use super::source::SourceMap;

/// Parse `text` as main.hcl within `limit`: the rendered diagnostics, or
/// "ok" when it parsed.
fn parsed_within(text: &str, limit: Duration) -> String {
    let mut map = SourceMap::default();
    let mut diags = Vec::new();
    let body = parse_text_within(
        Path::new("main.hcl"),
        text.to_owned(),
        &mut map,
        &mut diags,
        limit,
    );
    match body {
        Some(_) => "ok".into(),
        None => Diagnostics(diags).to_string(),
    }
}

#[test]
fn every_input_the_fuzzer_found_slow_is_refused_at_once_with_upstreams_error() {
    // (file, upstream's time on this machine, where and what it refused)
    let cases: [(&str, &[u8], &str, &str); 4] = [
        (
            "slow-parse.hcl (upstream 9.2 s)",
            include_bytes!("testdata/slow-parse.hcl"),
            "main.hcl:1:9",
            "syntax error: expected `]`",
        ),
        (
            "slow-binary-ops.hcl (upstream 4.0 s)",
            include_bytes!("testdata/slow-binary-ops.hcl"),
            "main.hcl:1:9",
            "syntax error: expected `]`",
        ),
        (
            "slow-directives.hcl (upstream 313 s)",
            include_bytes!("testdata/slow-directives.hcl"),
            "main.hcl:1:9",
            "syntax error: expected `]`",
        ),
        (
            "slow-heredocs.hcl (upstream 1.8 s)",
            include_bytes!("testdata/slow-heredocs.hcl"),
            "main.hcl:5:1",
            "syntax error: unexpected token",
        ),
    ];
    for (name, bytes, at, message) in cases {
        let text = String::from_utf8_lossy(bytes);
        let rendered = parsed_within(&text, Duration::from_secs(1));
        assert!(
            rendered.contains(message) && rendered.contains(&format!("--> {at}")),
            "{name}: {rendered}"
        );
        assert!(!rendered.contains("did not finish"), "{name}: {rendered}");
    }
}

#[test]
fn chains_of_operations_keep_upstreams_answers() {
    // Each answer is upstream 0.10.0's, line:column and message (or "ok").
    let cases = [
        ("x = a + b < \"${\n", "1:1 unexpected token"),
        ("x = a + b !x\n", "1:1 unexpected token"),
        ("x = a < b < <<EOT\nEOT<\"\n", "1:1 unexpected token"),
        ("x = a + b +\n", "1:12 invalid expression"),
        ("x = a + b % {d\n", "1:16 invalid object value assignment"),
        ("x = [a + b, c - (d\n", "1:20 expected `)`"),
        (
            "x = \"${a + b %{ if c }d%{ endif }\"\n",
            "1:21 invalid object value",
        ),
        (
            "x = \"%{ if a }${b + }%{ endif }\"\n",
            "1:21 invalid expression",
        ),
        ("x = a + b ? c : d\n", "ok"),
        ("x = a * -b - !c\n", "ok"),
        ("x = 1 + 2 * 3 == 7 && !false || null\n", "ok"),
        ("x = \"%{ if a + b < c }x%{ else }y%{ endif }\"\n", "ok"),
        (
            "x = <<EOT\n${a}%{ for k in b + c }${k}%{ endfor }\nEOT\n",
            "ok",
        ),
    ];
    for (text, answer) in cases {
        let rendered = parsed_within(text, Duration::from_secs(10));
        match answer.split_once(' ') {
            None => assert_eq!(rendered, "ok", "{text:?}"),
            Some((at, message)) => assert!(
                rendered.contains(&format!("syntax error: {message}"))
                    && rendered.contains(&format!("--> main.hcl:{at}\n")),
                "{text:?}: {rendered}"
            ),
        }
    }
}

#[test]
fn the_same_directive_in_a_heredoc_and_after_it_parses_the_same() {
    // `<<EOT` followed by a line starting with `EOT<` is first tried as a
    // heredoc body holding the directive, then as an empty heredoc followed
    // by `< "..."`, a string template holding the same directive: a
    // remembered element must give the same value in both places.
    let text = "x = <<EOT\nEOT<\"%{ if a }b%{ endif }\"\n";
    assert_eq!(parsed_within(text, Duration::from_secs(10)), "ok");
    let body = hcl_edit::parser::parse_body(text).unwrap();
    let Expression::BinaryOp(op) = &body.get_attribute("x").unwrap().value else {
        panic!("not a binary operation");
    };
    assert_eq!(*op.operator.value(), BinaryOperator::Less);
    let Expression::HeredocTemplate(heredoc) = &op.lhs_expr else {
        panic!("not a heredoc: {}", op.lhs_expr);
    };
    assert!(heredoc.template.is_empty());
    let Expression::StringTemplate(template) = &op.rhs_expr else {
        panic!("not a string template: {}", op.rhs_expr);
    };
    let elements: Vec<_> = template.iter().collect();
    assert!(
        matches!(elements[..], [Element::Directive(_)]),
        "{elements:?}"
    );
}
