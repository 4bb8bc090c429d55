//! Converting a value to a variable's type, as Terraform does (go-cty's
//! `convert` package, with the defaults of `optional` applied as hcl's
//! `typeexpr.Defaults` applies them).
//!
//! A number or bool becomes a string where a string is wanted, a string
//! that holds a number or bool becomes one, a list becomes a set (distinct
//! elements, sorted), an object becomes a map or an object of fewer
//! attributes' types. A collection whose element type holds `any` must find
//! one type for all its elements (go-cty's unification), so `list(any)` of
//! `["a", 1]` is `["a", "1"]`. One thing is stricter than Terraform: an
//! attribute that an object type does not have is an error, not dropped
//! (a misspelt optional attribute would otherwise take its default without
//! a word; docs/config-language.md says so).

use std::collections::BTreeMap;

use hcl::{Map, Value};

use super::super::eval::from_json;
use super::super::functions::{parse_number, primitive_string};
use super::super::source::did_you_mean;
use super::unify::one_type;
use super::{ObjectAttr, VarType};

/// One step into a value, for naming where a conversion failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// An element of a list, set or tuple.
    Index(usize),
    /// An element of a map: its key is part of the value.
    Key(String),
    /// An attribute of an object type: its name is the type's.
    Attr(String),
}

/// Why a value does not convert, and where in it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mismatch {
    /// The steps into the value, outermost first.
    path: Vec<Step>,
    /// What is wrong; it quotes nothing of the value.
    message: String,
    /// An attribute the value has and the object type has not, with the
    /// type's attribute names (the name is part of the value).
    unexpected: Option<(String, Vec<String>)>,
}

impl Mismatch {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Mismatch {
            path: Vec::new(),
            message: message.into(),
            unexpected: None,
        }
    }

    fn at(mut self, step: Step) -> Self {
        self.path.insert(0, step);
        self
    }

    /// The steps into the value to the part that is wrong.
    pub(crate) fn steps(&self) -> &[Step] {
        &self.path
    }

    /// `[1].port: a number is required`. A `sensitive` value's own parts
    /// (map keys, attribute names it has and the type has not) are not
    /// shown.
    pub(crate) fn shown(&self, sensitive: bool) -> String {
        let mut path = String::new();
        for step in &self.path {
            match step {
                Step::Index(i) => path.push_str(&format!("[{i}]")),
                Step::Key(_) if sensitive => path.push_str("[...]"),
                Step::Key(k) => path.push_str(&format!("[{k:?}]")),
                Step::Attr(a) if path.is_empty() => path.push_str(a),
                Step::Attr(a) => path.push_str(&format!(".{a}")),
            }
        }
        let message = match &self.unexpected {
            Some(_) if sensitive => {
                "an attribute that the type does not have (its name is not shown: the variable is sensitive)".to_owned()
            }
            Some((name, names)) => {
                let hint = did_you_mean(name, names.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("the attributes are: {}", names.join(", ")));
                format!("attribute \"{name}\" is not expected; {hint}")
            }
            None => self.message.clone(),
        };
        match path.is_empty() {
            true => message,
            false => format!("{path}: {message}"),
        }
    }
}

/// `value` as a value of type `ty`. Null converts to null (an object's
/// optional attribute left null takes its default).
pub(crate) fn convert(value: &Value, ty: &VarType) -> Result<Value, Mismatch> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        VarType::Any => Ok(value.clone()),
        VarType::String => match value {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                Ok(Value::String(primitive_string(value).unwrap_or_default()))
            }
            _ => Err(wanted(ty, value)),
        },
        VarType::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            // As go-cty, no space around the digits.
            Value::String(s) if s.trim() == s => {
                parse_number(s).ok_or_else(|| Mismatch::new("a number is required"))
            }
            Value::String(_) => Err(Mismatch::new("a number is required")),
            _ => Err(wanted(ty, value)),
        },
        VarType::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) => to_bool(s),
            _ => Err(wanted(ty, value)),
        },
        VarType::List(e) | VarType::Set(e) => match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(convert(item, e).map_err(|m| m.at(Step::Index(i)))?);
                }
                let out = one_type(out, e, ty)?;
                Ok(Value::Array(match ty {
                    VarType::Set(_) => as_set(out),
                    _ => out,
                }))
            }
            _ => Err(wanted(ty, value)),
        },
        VarType::Map(e) => match value {
            Value::Object(entries) => {
                let mut keys: Vec<&String> = entries.keys().collect();
                keys.sort();
                let mut out = Vec::with_capacity(keys.len());
                for k in &keys {
                    out.push(convert(&entries[*k], e).map_err(|m| m.at(Step::Key((*k).clone())))?);
                }
                let out = one_type(out, e, ty)?;
                Ok(Value::Object(
                    keys.into_iter().cloned().zip(out).collect::<Map<_, _>>(),
                ))
            }
            _ => Err(wanted(ty, value)),
        },
        VarType::Object(attrs) => match value {
            Value::Object(entries) => object(entries, attrs),
            _ => Err(wanted(ty, value)),
        },
        VarType::Tuple(types) => match value {
            Value::Array(items) if items.len() == types.len() => items
                .iter()
                .zip(types)
                .enumerate()
                .map(|(i, (item, t))| convert(item, t).map_err(|m| m.at(Step::Index(i))))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Array(items) => Err(Mismatch::new(format!(
                "a tuple of {} elements is required, but have {}",
                types.len(),
                items.len()
            ))),
            _ => Err(wanted(ty, value)),
        },
    }
}

/// go-cty's string-to-bool conversion.
fn to_bool(s: &str) -> Result<Value, Mismatch> {
    match s {
        "true" | "1" => Ok(Value::Bool(true)),
        "false" | "0" => Ok(Value::Bool(false)),
        _ => match s.to_lowercase().as_str() {
            lower @ ("true" | "false") => Err(Mismatch::new(format!(
                "a bool is required; to convert from string, use lowercase \"{lower}\""
            ))),
            _ => Err(Mismatch::new("a bool is required")),
        },
    }
}

/// `{want} required, but have {got}`, as go-cty says it where the kinds
/// differ.
fn wanted(ty: &VarType, value: &Value) -> Mismatch {
    Mismatch::new(format!(
        "{} required, but have {}",
        ty.friendly(),
        kind(value)
    ))
}

/// The kind of a value, as go-cty names the type of a literal.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "tuple",
        Value::Object(_) => "object",
    }
}

/// An object of the attributes `attrs`: each converted, a missing optional
/// one null or its default, a missing required one an error.
fn object(
    entries: &Map<String, Value>,
    attrs: &BTreeMap<String, ObjectAttr>,
) -> Result<Value, Mismatch> {
    let mut extra: Vec<&String> = entries.keys().filter(|k| !attrs.contains_key(*k)).collect();
    extra.sort();
    if let Some(name) = extra.first() {
        let mut m = Mismatch::new("");
        m.unexpected = Some(((*name).clone(), attrs.keys().cloned().collect()));
        return Err(m);
    }
    let missing: Vec<&String> = attrs
        .iter()
        .filter(|(name, a)| !a.optional && !entries.contains_key(*name))
        .map(|(name, _)| name)
        .collect();
    if !missing.is_empty() {
        return Err(Mismatch::new(required_message(&missing)));
    }
    let mut out = Map::new();
    for (name, attr) in attrs {
        let given = entries.get(name).filter(|v| !v.is_null());
        let value = match (given, &attr.default) {
            (Some(v), _) => convert(v, &attr.ty),
            // The default goes through the type too, so that the defaults
            // of its own attributes apply (Terraform applies them top-down).
            (None, Some(d)) => convert(&from_json(d), &attr.ty),
            (None, None) => Ok(Value::Null),
        };
        out.insert(
            name.clone(),
            value.map_err(|m| m.at(Step::Attr(name.clone())))?,
        );
    }
    Ok(Value::Object(out))
}

/// go-cty's words for missing attributes: `attribute "a" is required`,
/// `attributes "a" and "b" are required`, `attributes "a", "b", and "c"
/// are required`.
fn required_message(missing: &[&String]) -> String {
    let quoted: Vec<String> = missing.iter().map(|m| format!("\"{m}\"")).collect();
    match quoted.as_slice() {
        [one] => format!("attribute {one} is required"),
        [a, b] => format!("attributes {a} and {b} are required"),
        [init @ .., last] => format!("attributes {}, and {last} are required", init.join(", ")),
        [] => String::new(),
    }
}

/// The distinct elements, sorted when they are strings, numbers or bools
/// (as go-cty orders a set of them), else in the order first seen.
fn as_set(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    let key = |v: &Value| match v {
        Value::String(s) => Some((0, 0.0, s.clone())),
        Value::Number(n) => Some((1, n.as_f64().unwrap_or(0.0), String::new())),
        Value::Bool(b) => Some((2, f64::from(u8::from(*b)), String::new())),
        _ => None,
    };
    if out.iter().all(|v| key(v).is_some()) {
        out.sort_by(|a, b| {
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::{json, Value as Json};

    use super::super::super::eval::to_json;
    use super::*;

    /// The value of the HCL expression `text`.
    fn value(text: &str) -> Value {
        let expr = hcl_edit::parser::parse_expr(text).expect("an expression");
        let prepared = super::super::super::rewrite::prepare(expr);
        super::super::super::lazy::evaluate_alone(&prepared, super::super::super::functions::NAMES)
            .expect("a value")
    }

    fn ty(text: &str) -> VarType {
        super::super::parse_str(text).expect("a type")
    }

    /// `v` converted to `t`, as JSON.
    pub(in super::super) fn ok(v: &str, t: &str) -> Json {
        match convert(&value(v), &ty(t)) {
            Ok(v) => to_json(&v),
            Err(m) => panic!("{v} as {t}: {}", m.shown(false)),
        }
    }

    /// Why `v` does not convert to `t`.
    pub(in super::super) fn fails(v: &str, t: &str) -> String {
        convert(&value(v), &ty(t)).expect_err(v).shown(false)
    }

    #[test]
    fn primitives_convert_as_in_terraform() {
        // The examples of Terraform's "Conversion of Primitive Types".
        assert_eq!(ok("true", "string"), json!("true"));
        assert_eq!(ok("false", "string"), json!("false"));
        assert_eq!(ok("15", "string"), json!("15"));
        assert_eq!(ok("6.283185", "string"), json!("6.283185"));
        assert_eq!(ok("\"true\"", "bool"), json!(true));
        assert_eq!(ok("\"false\"", "bool"), json!(false));
        assert_eq!(ok("\"15\"", "number"), json!(15));
        // And go-cty's rules around them.
        assert_eq!(ok("\"1\"", "bool"), json!(true));
        assert_eq!(ok("\"0\"", "bool"), json!(false));
        assert_eq!(ok("\"-2.5\"", "number"), json!(-2.5));
        assert_eq!(ok("\"1e3\"", "number"), json!(1000));
        assert_eq!(fails("\"abc\"", "number"), "a number is required");
        assert_eq!(fails("\" 5\"", "number"), "a number is required");
        assert_eq!(fails("\"yes\"", "bool"), "a bool is required");
        assert_eq!(
            fails("\"FALSE\"", "bool"),
            "a bool is required; to convert from string, use lowercase \"false\""
        );
        assert_eq!(fails("true", "number"), "number required, but have bool");
        assert_eq!(fails("1", "bool"), "bool required, but have number");
        assert_eq!(fails("[1]", "string"), "string required, but have tuple");
        assert_eq!(fails("{}", "bool"), "bool required, but have object");
        assert_eq!(ok("null", "number"), Json::Null);
        assert_eq!(
            ok("[1, \"a\", { b = true }]", "any"),
            json!([1, "a", {"b": true}])
        );
    }

    #[test]
    fn collections_convert_each_element() {
        // "if a module argument requires a value of type list(string) and
        // a user provides the tuple ["a", 15, true], Terraform will
        // internally transform the value to ["a", "15", "true"]".
        assert_eq!(
            ok("[\"a\", 15, true]", "list(string)"),
            json!(["a", "15", "true"])
        );
        assert_eq!(ok("[\"3\", 1]", "list(number)"), json!([3, 1]));
        assert_eq!(
            fails("[1, \"x\"]", "list(number)"),
            "[1]: a number is required"
        );
        assert_eq!(
            fails("\"a\"", "list(string)"),
            "list of string required, but have string"
        );
        assert_eq!(
            fails("{}", "set(number)"),
            "set of number required, but have object"
        );
        assert_eq!(
            ok("{ a = 1, b = true }", "map(string)"),
            json!({"a": "1", "b": "true"})
        );
        // "If an argument requires a type of map(string) and a user provides
        // the object {name = ["Kristy", ...], age = 12}, Terraform will raise
        // a type mismatch error".
        assert_eq!(
            fails(
                "{ name = [\"Kristy\", \"Claudia\", \"Mary Anne\", \"Stacey\"], age = 12 }",
                "map(string)"
            ),
            "[\"name\"]: string required, but have tuple"
        );
        assert_eq!(
            fails("[]", "map(string)"),
            "map of string required, but have tuple"
        );
        assert_eq!(ok("[]", "list(string)"), json!([]));
        assert_eq!(ok("[null, \"a\"]", "list(string)"), json!([null, "a"]));
    }

    #[test]
    fn a_set_holds_each_element_once_in_order() {
        assert_eq!(
            ok("[\"c\", \"b\", \"b\", \"a\"]", "set(string)"),
            json!(["a", "b", "c"])
        );
        assert_eq!(ok("[3, 1, \"3\", 20]", "set(number)"), json!([1, 3, 20]));
        assert_eq!(ok("[1, \"1\"]", "set(string)"), json!(["1"]));
        assert_eq!(ok("[true, false, true]", "set(bool)"), json!([false, true]));
        assert_eq!(
            ok(
                "[{ a = 2 }, { a = 1 }, { a = 2 }]",
                "set(object({ a = number }))"
            ),
            json!([{"a": 2}, {"a": 1}]),
            "objects in the order first seen"
        );
    }

    #[test]
    fn objects_and_tuples_convert_attribute_by_attribute() {
        let person = "object({ name = string, age = number })";
        assert_eq!(
            ok("{ name = \"John\", age = 52 }", person),
            json!({"age": 52, "name": "John"})
        );
        assert_eq!(
            ok("{ name = \"John\", age = \"52\" }", person),
            json!({"age": 52, "name": "John"})
        );
        assert_eq!(
            ok("{ name = null, age = 1 }", person),
            json!({"age": 1, "name": null})
        );
        assert_eq!(
            fails("{ name = \"John\" }", person),
            "attribute \"age\" is required"
        );
        assert_eq!(
            fails("{}", person),
            "attributes \"age\" and \"name\" are required"
        );
        assert_eq!(
            fails("{}", "object({ a = string, b = string, c = string })"),
            "attributes \"a\", \"b\", and \"c\" are required"
        );
        assert_eq!(
            fails("{ name = \"John\", age = 52, nmae = \"x\" }", person),
            "attribute \"nmae\" is not expected; did you mean `name`?"
        );
        assert_eq!(
            fails("{ name = \"John\", age = 52, zzz = 1 }", person),
            "attribute \"zzz\" is not expected; the attributes are: age, name"
        );
        assert_eq!(fails("[]", person), "object required, but have tuple");
        let t = "tuple([string, number, bool])";
        assert_eq!(ok("[\"a\", 15, true]", t), json!(["a", 15, true]));
        assert_eq!(ok("[1, \"15\", \"true\"]", t), json!(["1", 15, true]));
        assert_eq!(
            fails("[\"a\"]", t),
            "a tuple of 3 elements is required, but have 1"
        );
        assert_eq!(
            fails("[\"a\", \"x\", true]", t),
            "[1]: a number is required"
        );
        assert_eq!(fails("\"a\"", t), "tuple required, but have string");
    }

    #[test]
    fn a_failure_names_its_path_in_the_value() {
        let t = "map(list(object({ port = number, tags = optional(set(string)) })))";
        assert_eq!(
            fails("{ api = [{ port = 1 }, { port = \"x\" }] }", t),
            "[\"api\"][1].port: a number is required"
        );
        assert_eq!(
            fails("{ api = [{ port = 1, tags = [[]] }] }", t),
            "[\"api\"][0].tags[0]: string required, but have tuple"
        );
        let m = convert(
            &value("{ s3cret = [{ port = \"x\", s3cret2 = 1 }] }"),
            &ty(t),
        )
        .unwrap_err();
        assert_eq!(
            m.shown(true),
            "[...][0]: an attribute that the type does not have (its name is not shown: the variable is sensitive)"
        );
        let m = convert(&value("{ s3cret = [{ port = \"x\" }] }"), &ty(t)).unwrap_err();
        assert_eq!(m.shown(true), "[...][0].port: a number is required");
        assert_eq!(
            fails("{ a = { b = 1 } }", "object({ a = object({ b = bool }) })"),
            "a.b: bool required, but have number"
        );
    }

    #[test]
    fn optional_attributes_take_null_or_their_default() {
        // The example of Terraform's "Optional Object Type Attributes".
        let t = "object({ a = string, b = optional(string), c = optional(number, 127) })";
        assert_eq!(
            ok("{ a = \"x\" }", t),
            json!({"a": "x", "b": null, "c": 127})
        );
        assert_eq!(
            ok("{ a = \"x\", c = null }", t),
            json!({"a": "x", "b": null, "c": 127}),
            "a null takes the default too"
        );
        assert_eq!(
            ok("{ a = \"x\", b = 1, c = \"5\" }", t),
            json!({"a": "x", "b": "1", "c": 5})
        );
        assert_eq!(fails("{ b = \"y\" }", t), "attribute \"a\" is required");
        // Terraform's `convert` function examples.
        assert_eq!(
            ok(
                "{ test = {} }",
                "map(object({ attr = optional(string), with_default = optional(string, \"default\") }))"
            ),
            json!({"test": {"attr": null, "with_default": "default"}})
        );
        assert_eq!(
            ok("{}", "object({ name = optional(string, \"OpenTofu\") })"),
            json!({"name": "OpenTofu"})
        );
        // Defaults apply top-down: a default object takes the defaults of
        // its own attributes.
        let nested = "object({ w = optional(object({ i = optional(string, \"index.html\"), e = optional(string) }), {}) })";
        assert_eq!(
            ok("{}", nested),
            json!({"w": {"e": null, "i": "index.html"}})
        );
        assert_eq!(
            ok("{ w = { e = \"x\" } }", nested),
            json!({"w": {"e": "x", "i": "index.html"}})
        );
        assert_eq!(ok("null", nested), Json::Null, "a null whole stays null");
    }
}
