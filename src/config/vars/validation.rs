//! A variable's `validation { condition = ..., error_message = "..." }`
//! blocks: conditions on its value, checked once it is known.
//!
//! As in Terraform before 1.9, a condition (and its error message) may
//! refer only to the variable it validates, and the condition must refer to
//! it; both are evaluated by the evaluator every expression of the
//! configuration is (so `can`, `regex`, `contains`, `length` ... work).

use hcl::Value;
use hcl_edit::expr::Expression;

use super::super::eval::Evaluator;
use super::super::functions::primitive_string;
use super::super::model::{Address, Span, VarType};
use super::super::refs;
use super::super::schema::{self, Decl, Schema};
use super::super::types::convert;
use super::{report, Origin};

/// One `validation {}` block.
pub(super) struct Rule<'a> {
    /// `condition`
    condition: &'a Expression,
    /// `error_message`
    message: &'a Expression,
    /// The block's header, named in the message of a failure.
    span: Span,
}

/// The `validation {}` blocks of `decl`, each checked for its shape; those
/// without both arguments are left out (reported).
pub(super) fn rules<'a>(ev: &mut Evaluator<'_>, decl: &Decl<'a>) -> Vec<Rule<'a>> {
    let what = format!("the validation of variable \"{}\"", decl.name);
    let attrs = &["condition", "error_message"];
    let s = Schema {
        what: &what,
        attrs,
        required: attrs,
        blocks: &[],
    };
    let mut out = Vec::new();
    for block in decl.block.body.get_blocks("validation") {
        let span = schema::header_span(ev.map, decl.file, block);
        if !block.labels.is_empty() {
            ev.error_help(
                &span,
                "a `validation` block takes no labels",
                "write: validation { ... }",
            );
        }
        schema::check_body(ev.map, decl.file, &block.body, &s, &span, &mut ev.diags);
        let body = &block.body;
        if let (Some(c), Some(m)) = (
            body.get_attribute("condition"),
            body.get_attribute("error_message"),
        ) {
            out.push(Rule {
                condition: &c.value,
                message: &m.value,
                span,
            });
        }
    }
    out
}

/// Check `rules` against the value of variable `decl` (already in `ev`),
/// which came from `origin`. `false` when one failed (reported).
pub(super) fn check(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    rules: &[Rule<'_>],
    origin: &Origin<'_>,
) -> bool {
    let mut ok = true;
    for rule in rules {
        let refs_ok = refers_to_itself(ev, decl, rule.condition, "condition", true)
            & refers_to_itself(ev, decl, rule.message, "error message", false);
        if !refs_ok {
            ok = false;
            continue;
        }
        let message = ev.eval(decl.file, rule.message);
        let Some(passed) = condition(ev, decl, rule.condition) else {
            ok = false;
            continue;
        };
        if passed {
            continue;
        }
        ok = false;
        let text = match message {
            Some(m) if !m.marks.is_clear() => {
                "(the error message is not shown: it refers to a sensitive value)".to_owned()
            }
            Some(m) => match primitive_string(&m.value) {
                Some(s) => s.trim().to_owned(),
                None => {
                    let span = ev.span_of(decl.file, rule.message);
                    ev.error(&span, "an error message must be a string");
                    "(its error message is not a string)".to_owned()
                }
            },
            None => "(its error message could not be evaluated)".to_owned(),
        };
        let help = format!("checked by the validation at {}", schema::at(&rule.span));
        report(ev, &decl.name, origin, &[], &text, Some(help));
    }
    ok
}

/// Whether `expr` refers to nothing but the variable of `decl` (and, when
/// `must`, to it); what else it refers to is reported.
fn refers_to_itself(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    expr: &Expression,
    what: &str,
    must: bool,
) -> bool {
    let me = Address::Variable(decl.name.clone());
    let scan = refs::scan(expr);
    let mut ok = true;
    for r in scan.refs.iter().filter(|r| r.addr != me) {
        let span = ev.map.span(decl.file, r.range.clone());
        ev.error_help(
            &span,
            format!(
                "a validation's {what} can refer only to the variable it validates, var.{}",
                decl.name
            ),
            "as in Terraform before 1.9, a variable's validation sees no other value",
        );
        ok = false;
    }
    if must && ok && !scan.refs.iter().any(|r| r.addr == me) {
        let span = ev.span_of(decl.file, expr);
        ev.error(
            &span,
            format!(
                "the condition must refer to var.{}, to test its value",
                decl.name
            ),
        );
        ok = false;
    }
    ok
}

/// The value of a condition; `None` when it fails to evaluate or is not
/// true or false (reported at it).
fn condition(ev: &mut Evaluator<'_>, decl: &Decl<'_>, expr: &Expression) -> Option<bool> {
    let value = ev.eval(decl.file, expr)?.value;
    let not = match convert(&value, &VarType::Bool) {
        Ok(Value::Bool(b)) => return Some(b),
        Ok(_) => "null",
        Err(_) => match value {
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            _ => "an object",
        },
    };
    let span = ev.span_of(decl.file, expr);
    ev.error(
        &span,
        format!("a validation condition must be true or false, not {not}"),
    );
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::{with_default, Case};

    const PORT: &str = r#"variable "port" {
  type = number
  validation {
    condition     = var.port > 1024
    error_message = "The port must be above 1024."
  }
  validation {
    condition     = var.port < 65536
    error_message = "The port must be below 65536, not ${var.port}."
  }
}
"#;

    #[test]
    fn a_value_that_passes_every_validation_is_kept() {
        assert_eq!(
            Case::new().var("port", "9101").value(PORT, "port"),
            json!(9101)
        );
    }

    #[test]
    fn a_failed_validation_shows_its_message_where_the_value_came_from() {
        let above =
            "The port must be above 1024. [help: checked by the validation at main.hcl:3:3]";
        let below = "The port must be below 65536, not 70000. [help: checked by the validation at main.hcl:7:3]";
        let invalid = "invalid value for variable \"port\":";
        for (case, problem) in [
            (
                Case::new().var("port", "80"),
                format!("--var port=80: {above}"),
            ),
            (
                Case::new().env("port", "70000"),
                format!("CUTOVER_VAR_port: {below}"),
            ),
            (
                Case::new().file("v.tfvars", "port = 80\n"),
                format!("v.tfvars:1:8: {invalid} {above}"),
            ),
            (
                Case::new().file("v.json", "{\"port\": 80}"),
                format!("--var-file v.json: {invalid} {above}"),
            ),
        ] {
            assert_eq!(case.problems(PORT), [problem]);
        }
        assert_eq!(
            Case::new().problems(&with_default(PORT, "type = number\n", "1")),
            ["main.hcl:3:13: invalid default for variable \"port\": The port must be above 1024. [help: checked by the validation at main.hcl:4:3]"]
        );
    }

    #[test]
    fn a_condition_may_use_every_function() {
        let text = r#"variable "release" {
  type = string
  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.release))
    error_message = "The release must be a version: MAJOR.MINOR.PATCH."
  }
}
variable "colours" {
  type = list(string)
  validation {
    condition     = length(var.colours) == 2 && contains(var.colours, "blue")
    error_message = "Two colours, blue one of them."
  }
}
"#;
        let case = Case::new()
            .var("release", "1.4.2")
            .var("colours", "[\"blue\", \"green\"]");
        assert_eq!(case.value(text, "release"), json!("1.4.2"));
        let case = Case::new()
            .var("release", "1.4")
            .var("colours", "[\"red\", \"green\"]");
        assert_eq!(
            case.problems(text),
            [
                "--var colours=[\"red\", \"green\"]: Two colours, blue one of them. [help: checked by the validation at main.hcl:10:3]",
                "--var release=1.4: The release must be a version: MAJOR.MINOR.PATCH. [help: checked by the validation at main.hcl:3:3]",
            ]
        );
    }

    fn rule(condition: &str) -> String {
        format!("variable \"port\" {{\n  default = 9101\n  validation {{\n    condition     = {condition}\n    error_message = \"Wrong.\"\n  }}\n}}\n")
    }

    #[test]
    fn a_condition_that_is_not_true_or_false_is_an_error_at_it() {
        assert_eq!(
            Case::new().problems(&rule("var.port + 1")),
            ["main.hcl:4:21: a validation condition must be true or false, not a number"]
        );
        assert_eq!(
            Case::new().problems(&rule("var.port == 9101 ? null : true")),
            ["main.hcl:4:21: a validation condition must be true or false, not null"]
        );
        assert_eq!(
            Case::new().value(&rule("var.port > 0 ? \"true\" : \"false\""), "port"),
            json!(9101),
            "a string true is true, as in Terraform"
        );
        let problems = Case::new().problems(&rule("var.port.x > 1"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("main.hcl:4:21: cannot evaluate this expression: "),
            "{problems:?}"
        );
    }

    #[test]
    fn a_condition_refers_to_its_variable_and_nothing_else() {
        let help =
            "[help: as in Terraform before 1.9, a variable's validation sees no other value]";
        assert_eq!(
            Case::new().problems(&format!("{}variable \"other\" {{\n  default = 1\n}}\n", rule("var.port > var.other"))),
            [format!("main.hcl:4:32: a validation's condition can refer only to the variable it validates, var.port {help}")]
        );
        assert_eq!(
            Case::new().problems(&rule("length(local.x) > 0").replace("\"Wrong.\"", "\"Wrong: ${local.y}\"")),
            [
                format!("main.hcl:4:28: a validation's condition can refer only to the variable it validates, var.port {help}"),
                format!("main.hcl:5:31: a validation's error message can refer only to the variable it validates, var.port {help}"),
            ]
        );
        assert_eq!(
            Case::new().problems(&rule("1 > 0")),
            ["main.hcl:4:21: the condition must refer to var.port, to test its value"]
        );
    }

    #[test]
    fn a_validation_block_has_a_condition_and_an_error_message() {
        let text = "variable \"x\" {\n  default = 1\n  validation {\n    condition = var.x > 0\n    message   = \"x\"\n  }\n}\n";
        assert_eq!(
            Case::new().problems(text),
            [
                "main.hcl:3:3: missing required argument `error_message` in the validation of variable \"x\" [help: add `error_message = ...` to the block]",
                "main.hcl:5:5: unknown argument `message` in the validation of variable \"x\" [help: the valid arguments are: condition, error_message]",
            ]
        );
        assert_eq!(
            Case::new().problems(&text.replace("validation {", "validation \"a\" {").replace("message   =", "error_message =")),
            ["main.hcl:3:3: a `validation` block takes no labels [help: write: validation { ... }]"]
        );
        assert_eq!(
            Case::new().problems(&text.replace("validation {", "validaton {").replace("message   =", "error_message =")),
            ["main.hcl:3:3: unknown block `validaton` in variable \"x\" [help: did you mean `validation`?]"]
        );
    }

    #[test]
    fn a_sensitive_value_is_never_shown_by_a_validation() {
        let text = r#"variable "token" {
  type      = string
  sensitive = true
  validation {
    condition     = length(var.token) > 10
    error_message = "The token ${var.token} is too short."
  }
  validation {
    condition     = tonumber(var.token) > 0
    error_message = "A number."
  }
}
"#;
        let problems = Case::new().var("token", "s3cret").problems(text);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0],
            "--var token=...: (the error message is not shown: it refers to a sensitive value) [help: checked by the validation at main.hcl:4:3]"
        );
        assert!(problems[1].starts_with("main.hcl:9:21: "), "{problems:?}");
        assert!(
            problems.iter().all(|p| !p.contains("s3cret")),
            "{problems:?}"
        );
    }
}
