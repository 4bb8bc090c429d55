//! One type for the elements of a collection whose element type holds
//! `any`, as go-cty's `unify` finds it: `list(any)` of `["a", 1]` is a
//! list of strings, `["a", "1"]`.

use std::collections::BTreeMap;

use hcl::Value;

use super::convert::{convert, Mismatch};
use super::{ObjectAttr, VarType};

/// The elements of a collection of `ty`, whose element type `e` holds
/// `any`, converted to the one type they all can take; unchanged when `e`
/// holds no `any`.
pub(super) fn one_type(
    items: Vec<Value>,
    e: &VarType,
    ty: &VarType,
) -> Result<Vec<Value>, Mismatch> {
    if !e.has_any() || items.len() < 2 {
        return Ok(items);
    }
    let types: Vec<VarType> = items.iter().map(type_of).collect();
    let Some(common) = unify(&types) else {
        let what = match ty {
            VarType::Set(_) => "set",
            VarType::Map(_) => "map",
            _ => "list",
        };
        return Err(Mismatch::new(format!(
            "all {what} elements must have the same type"
        )));
    };
    items.iter().map(|v| convert(v, &common)).collect()
}

/// The type of a value as written: a tuple or object of its elements'
/// types; null's is `any`.
fn type_of(value: &Value) -> VarType {
    match value {
        Value::Null => VarType::Any,
        Value::Bool(_) => VarType::Bool,
        Value::Number(_) => VarType::Number,
        Value::String(_) => VarType::String,
        Value::Array(items) => VarType::Tuple(items.iter().map(type_of).collect()),
        Value::Object(entries) => VarType::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let attr = ObjectAttr {
                        ty: type_of(v),
                        optional: false,
                        default: None,
                    };
                    (k.clone(), attr)
                })
                .collect(),
        ),
    }
}

/// The one type that every one of `types` converts to, as go-cty's
/// `unify` finds it: mixed primitives are strings (a number and a bool
/// have none), tuples of one length a tuple and of several a list,
/// objects of the same attributes an object and of others a map. `None`:
/// there is none.
fn unify(types: &[VarType]) -> Option<VarType> {
    let known: Vec<&VarType> = types.iter().filter(|t| **t != VarType::Any).collect();
    let Some(first) = known.first() else {
        return Some(VarType::Any);
    };
    if known.iter().all(|t| t == first) {
        return Some((*first).clone());
    }
    if known.iter().all(|t| t.is_primitive()) {
        return known.contains(&&VarType::String).then_some(VarType::String);
    }
    let tuples: Option<Vec<&Vec<VarType>>> = known
        .iter()
        .map(|t| match t {
            VarType::Tuple(items) => Some(items),
            _ => None,
        })
        .collect();
    if let Some(tuples) = tuples {
        if tuples.iter().all(|t| t.len() == tuples[0].len()) {
            let columns = (0..tuples[0].len())
                .map(|i| unify(&tuples.iter().map(|t| t[i].clone()).collect::<Vec<_>>()))
                .collect::<Option<Vec<_>>>()?;
            return Some(VarType::Tuple(columns));
        }
        let all: Vec<VarType> = tuples.into_iter().flatten().cloned().collect();
        return unify(&all).map(|e| VarType::List(Box::new(e)));
    }
    let objects: Option<Vec<&BTreeMap<String, ObjectAttr>>> = known
        .iter()
        .map(|t| match t {
            VarType::Object(attrs) => Some(attrs),
            _ => None,
        })
        .collect();
    let objects = objects?;
    let same_names = objects.iter().all(|o| o.keys().eq(objects[0].keys()));
    if same_names {
        let mut attrs = BTreeMap::new();
        for name in objects[0].keys() {
            let column: Vec<VarType> = objects.iter().map(|o| o[name].ty.clone()).collect();
            let attr = ObjectAttr {
                ty: unify(&column)?,
                optional: false,
                default: None,
            };
            attrs.insert(name.clone(), attr);
        }
        return Some(VarType::Object(attrs));
    }
    let all: Vec<VarType> = objects
        .into_iter()
        .flat_map(|o| o.values().map(|a| a.ty.clone()))
        .collect();
    unify(&all).map(|e| VarType::Map(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::convert::tests::{fails, ok};

    #[test]
    fn any_in_a_collection_finds_one_type_for_its_elements() {
        // Terraform's "any with Collection Types" examples.
        assert_eq!(
            ok("[\"a\", \"b\", \"c\"]", "list(any)"),
            json!(["a", "b", "c"])
        );
        assert_eq!(ok("[\"a\", 1, \"b\"]", "list(any)"), json!(["a", "1", "b"]));
        assert_eq!(
            fails("[\"a\", [], \"b\"]", "list(any)"),
            "all list elements must have the same type"
        );
        assert_eq!(
            fails("[1, true]", "set(any)"),
            "all set elements must have the same type"
        );
        assert_eq!(
            fails("{ a = 1, b = {} }", "map(any)"),
            "all map elements must have the same type"
        );
        assert_eq!(
            ok("{ a = 1, b = \"x\" }", "map(any)"),
            json!({"a": "1", "b": "x"})
        );
        assert_eq!(
            ok("[{ p = 1 }, { p = \"x\" }]", "list(any)"),
            json!([{"p": "1"}, {"p": "x"}]),
            "objects of the same attributes: each attribute of one type"
        );
        assert_eq!(
            ok("[{ p = 1 }, { q = \"x\" }]", "list(any)"),
            json!([{"p": "1"}, {"q": "x"}]),
            "objects of other attributes: maps of one element type"
        );
        assert_eq!(
            ok("[[1], [2, \"3\"]]", "list(any)"),
            json!([["1"], ["2", "3"]])
        );
        assert_eq!(ok("[null, 1]", "list(any)"), json!([null, 1]));
        assert_eq!(
            ok("[{ a = 1 }, { a = \"b\" }]", "list(object({ a = any }))"),
            json!([{"a": "1"}, {"a": "b"}])
        );
    }
}
