//! Values written as literals (`{ s0 = { health = "/healthz/s0" }, ... }`),
//! built straight from the parsed expression.
//!
//! The objects of hcl-edit and hcl-rs are vectors that find a key by
//! scanning: putting an object literal of N entries in key order
//! (config::key_order) and converting it into an hcl-rs expression to
//! evaluate each cost O(N²), and a `locals` map of 5,000 services — what
//! a `for_each` of 5,000 instances is written over — took seconds. A
//! literal refers to nothing and calls nothing, so its value is built here
//! in one pass, into hcl-rs's `Value` (whose maps are hashed), in key order
//! as Terraform's. Anything else goes the way of every expression.

use hcl::{Map, Value};
use hcl_edit::expr::{Expression, ObjectKey};

/// The value of `expr` when it is a literal: null, a bool, a number, a
/// string without interpolation, or an array or object of literals whose
/// keys are names or strings. `None` for anything else.
pub(crate) fn value(expr: &Expression) -> Option<Value> {
    // Most expressions are not literals: find out before building anything.
    if !is_literal(expr) {
        return None;
    }
    Some(build(expr))
}

fn is_literal(expr: &Expression) -> bool {
    match expr {
        Expression::Null(_)
        | Expression::Bool(_)
        | Expression::Number(_)
        | Expression::String(_) => true,
        Expression::Array(items) => items.iter().all(is_literal),
        Expression::Object(object) => object
            .iter()
            .all(|(k, v)| key(k).is_some() && is_literal(v.expr())),
        _ => false,
    }
}

fn key(key: &ObjectKey) -> Option<&str> {
    match key {
        ObjectKey::Ident(ident) => Some(ident.as_str()),
        ObjectKey::Expression(Expression::String(s)) => Some(s.value().as_str()),
        ObjectKey::Expression(_) => None,
    }
}

/// The value of `expr`, a literal (`is_literal`).
fn build(expr: &Expression) -> Value {
    match expr {
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => Value::Number(*n.value()),
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::Array(items) => Value::Array(items.iter().map(build).collect()),
        Expression::Object(object) => {
            // As hcl-rs evaluates an object: a key written twice (`a` and
            // `"a"`) keeps its first place and its last value.
            let mut map: Map<String, Value> = object
                .iter()
                .map(|(k, v)| (key(k).unwrap_or_default().to_owned(), build(v.expr())))
                .collect();
            map.sort_keys();
            Value::Object(map)
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Expression {
        let body = hcl_edit::parser::parse_body(&format!("x = {s}\n")).unwrap();
        body.get_attribute("x").unwrap().value.clone()
    }

    /// The value of `text` as every expression is evaluated: key order,
    /// conversion, hcl-rs.
    fn evaluated(text: &str) -> Value {
        let mut expr = parse(text);
        crate::config::key_order::sort_literals(&mut expr);
        let converted: hcl::Expression = expr.into();
        let ctx = hcl::eval::Context::new();
        let mut value = hcl::eval::Evaluate::evaluate(&converted, &ctx).unwrap();
        crate::config::key_order::sort_value(&mut value);
        value
    }

    #[test]
    fn a_literal_has_the_value_evaluation_gives_it() {
        for text in [
            "null",
            "true",
            "42",
            "-1",
            "1.5e3",
            "\"a $${not} %%{interpolated}\"",
            "[1, \"two\", [null, false], {}]",
            "{ s10 = { health = \"/h/10\", port = 9010 }, s2 = { health = \"/h/2\" }, \"a b\" = [] }",
            "{ b = 1, a = 2, \"b\" = 3 }",
        ] {
            let fast = value(&parse(text)).unwrap_or_else(|| panic!("{text} is a literal"));
            assert_eq!(fast, evaluated(text), "{text}");
            // In key order, as Terraform's.
            if let Value::Object(map) = &fast {
                let keys: Vec<&String> = map.keys().collect();
                let mut sorted = keys.clone();
                sorted.sort();
                assert_eq!(keys, sorted, "{text}");
            }
        }
    }

    #[test]
    fn anything_else_is_not_a_literal() {
        for text in [
            "\"${1}\"",
            "- 1 + 0",
            "(1)",
            "{ (\"a\") = 1 }",
            "{ a = var.x }",
            "[for x in [] : x]",
            "upper(\"a\")",
            "<<EOT\nx\nEOT",
        ] {
            assert_eq!(value(&parse(text)), None, "{text}");
        }
    }
}
