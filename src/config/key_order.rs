//! Maps and objects in key order, as Terraform keeps them: a `for`
//! expression, `%{ for }` or `keys()` sees `{ b = 1, a = 2 }` as `a`, then
//! `b`. hcl-rs keeps the order an object was written in, so object
//! literals with static keys are put in key order before they are
//! evaluated, and every evaluated value is, before anything refers to it.

use hcl_edit::expr::{Expression, Object, ObjectKey, ObjectValue};
use hcl_edit::visit_mut::{visit_object_mut, VisitMut};

/// The key of an object literal's entry, when it is written as a name or a
/// string (`a = 1`, `"a" = 1`).
fn static_key(key: &ObjectKey) -> Option<String> {
    match key {
        ObjectKey::Ident(ident) => Some(ident.as_str().to_owned()),
        ObjectKey::Expression(Expression::String(s)) => Some(s.value().clone()),
        ObjectKey::Expression(_) => None,
    }
}

struct Sorter;

impl VisitMut for Sorter {
    fn visit_object_mut(&mut self, node: &mut Object) {
        visit_object_mut(self, node);
        let keys: Option<Vec<(String, ObjectKey)>> = node
            .iter()
            .map(|(k, _)| static_key(k).map(|s| (s, k.clone())))
            .collect();
        // A key computed by an expression: its order is only known once
        // evaluated (the value is sorted then).
        let Some(keys) = keys else { return };
        if keys.windows(2).all(|w| w[0].0 <= w[1].0) {
            return;
        }
        // Every entry put back in order at once (the object keeps its
        // span and decor). Removing each from its place in turn moved all
        // the entries after it every time (the object is a vector): O(N²)
        // moves of whole entries, seconds for a literal of 5,000. Each
        // insert still compares the keys before it (hcl-edit finds a key by
        // scanning); a literal that refers to nothing does not come here
        // (config::literal).
        let mut entries: Vec<(String, ObjectKey, ObjectValue)> = keys
            .into_iter()
            .zip(node.iter())
            .map(|((s, k), (_, v))| (s, k, v.clone()))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        node.clear();
        for (_, k, v) in entries {
            node.insert(k, v);
        }
    }
}

/// `expr` with every object literal of static keys in key order.
pub(crate) fn sort_literals(expr: &mut Expression) {
    Sorter.visit_expr_mut(expr);
}

/// `value` with every object in it in key order.
pub(crate) fn sort_value(value: &mut hcl::Value) {
    match value {
        hcl::Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_value);
        }
        hcl::Value::Array(items) => items.iter_mut().for_each(sort_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_values_are_put_in_key_order() {
        let mut expr: Expression = r#"[for k, v in { b = 1, "a" = { d = 1, c = 2 } } : k]"#
            .parse()
            .unwrap();
        sort_literals(&mut expr);
        let converted: hcl::Expression = expr.into();
        let ctx = hcl::eval::Context::new();
        let value = hcl::eval::Evaluate::evaluate(&converted, &ctx).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), r#"["a","b"]"#);
        let mut v: hcl::Value =
            hcl::from_str::<hcl::Value>("x = { b = [{ z = 1, y = 2 }], a = 1 }").unwrap();
        sort_value(&mut v);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"x":{"a":1,"b":[{"y":2,"z":1}]}}"#
        );
    }
}
