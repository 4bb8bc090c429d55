//! Reading a type from the hcl-edit expression of a `type` argument.

use std::collections::BTreeMap;
use std::path::Path;

use hcl_edit::expr::{Expression, FuncCall, ObjectKey};
use hcl_edit::Span as _;

use super::super::eval::{to_json, Evaluator};
use super::super::model::Span;
use super::super::source::did_you_mean;
use super::{ObjectAttr, VarType};

/// The words a type is made of, for suggestions.
const KEYWORDS: &[&str] = &[
    "string", "number", "bool", "any", "list", "set", "map", "object", "tuple",
];

const FORMS: &str =
    "a type is string, number, bool, any, list(T), set(T), map(T), object({ NAME = T, ... }) or tuple([T, ...])";

/// Read the `type` argument `expr` of a variable declared in `file`;
/// `None` when it is wrong (every mistake reported).
pub(crate) fn parse(ev: &mut Evaluator<'_>, file: &Path, expr: &Expression) -> Option<VarType> {
    // Terraform's shorthand for the types of its version 0.11, at the top
    // only.
    if let Expression::Variable(v) = expr {
        match v.as_str() {
            "list" => return Some(VarType::List(Box::new(VarType::Any))),
            "map" => return Some(VarType::Map(Box::new(VarType::Any))),
            _ => {}
        }
    }
    let mut reader = Reader { ev, file, ok: true };
    let t = reader.read(expr);
    reader.ok.then_some(t)
}

/// Reads one type expression, recording whether it had a mistake.
struct Reader<'r, 'm> {
    ev: &'r mut Evaluator<'m>,
    file: &'r Path,
    ok: bool,
}

impl Reader<'_, '_> {
    fn span(&self, range: Option<std::ops::Range<usize>>) -> Span {
        self.ev.map.span(self.file, range.unwrap_or(0..0))
    }

    /// Report a mistake at `range`; the type read goes on (as `any`) so that
    /// every mistake is found.
    fn wrong(
        &mut self,
        range: Option<std::ops::Range<usize>>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> VarType {
        let span = self.span(range);
        self.ev.error_help(&span, message, help);
        self.ok = false;
        VarType::Any
    }

    fn read(&mut self, expr: &Expression) -> VarType {
        match expr {
            Expression::Variable(v) => self.keyword(v.as_str(), expr.span()),
            Expression::FuncCall(call) => self.call(call),
            Expression::String(s) => {
                let help = match KEYWORDS.contains(&s.as_str()) {
                    true => format!("write it without the quotes: {}", s.as_str()),
                    false => FORMS.to_owned(),
                };
                self.wrong(expr.span(), "a type is written without quotes", help)
            }
            _ => self.wrong(expr.span(), "this is not a type", FORMS),
        }
    }

    fn keyword(&mut self, word: &str, range: Option<std::ops::Range<usize>>) -> VarType {
        let needs = |example: &str| format!("`{word}` needs its {example}");
        match word {
            "string" => VarType::String,
            "number" => VarType::Number,
            "bool" => VarType::Bool,
            "any" => VarType::Any,
            "list" | "set" | "map" => self.wrong(
                range,
                needs("element type"),
                format!("write {word}(string), {word}(number), ... or {word}(any)"),
            ),
            "object" => self.wrong(
                range,
                needs("attributes"),
                "write object({ name = string, port = number })",
            ),
            "tuple" => self.wrong(
                range,
                needs("element types"),
                "write tuple([string, number])",
            ),
            "optional" => self.wrong(
                range,
                "`optional` needs the attribute's type",
                "write optional(string), as an attribute of object({...})",
            ),
            _ => {
                let help = did_you_mean(word, KEYWORDS.iter().copied())
                    .unwrap_or_else(|| FORMS.to_owned());
                self.wrong(range, format!("unknown type `{word}`"), help)
            }
        }
    }

    fn call(&mut self, call: &FuncCall) -> VarType {
        let name = call.name.name.as_str();
        let name_range = call.name.name.span();
        let args: Vec<&Expression> = call.args.iter().collect();
        if call.name.is_namespaced() || call.args.expand_final() {
            return self.wrong(call.span(), "this is not a type", FORMS);
        }
        let one = |r: &mut Self, what: &str, example: &str| -> Option<&Expression> {
            if args.len() == 1 {
                return Some(args[0]);
            }
            r.wrong(
                args_range(call),
                format!("`{name}` takes one argument, {what}"),
                format!("write {example}"),
            );
            None
        };
        match name {
            "list" | "set" | "map" => {
                let Some(arg) = one(self, "the element type", &format!("{name}(string)")) else {
                    return VarType::Any;
                };
                let e = Box::new(self.read(arg));
                match name {
                    "list" => VarType::List(e),
                    "set" => VarType::Set(e),
                    _ => VarType::Map(e),
                }
            }
            "object" => match one(self, "its attributes", "object({ name = string })") {
                Some(Expression::Object(attrs)) => self.object(attrs),
                Some(other) => self.wrong(
                    other.span(),
                    "an object type's attributes are written { NAME = TYPE, ... }",
                    "write object({ name = string, port = number })",
                ),
                None => VarType::Any,
            },
            "tuple" => match one(self, "its element types", "tuple([string, number])") {
                Some(Expression::Array(items)) => {
                    VarType::Tuple(items.iter().map(|t| self.read(t)).collect())
                }
                Some(other) => self.wrong(
                    other.span(),
                    "a tuple type's element types are written [TYPE, ...]",
                    "write tuple([string, number])",
                ),
                None => VarType::Any,
            },
            "string" | "number" | "bool" | "any" => self.wrong(
                args_range(call),
                format!("`{name}` takes no arguments"),
                format!("write {name}"),
            ),
            "optional" => self.wrong(
                name_range,
                "`optional` is only for the type of an object's attribute",
                "write object({ name = string, port = optional(number) })",
            ),
            _ => {
                let help = did_you_mean(name, ["list", "set", "map", "object", "tuple"])
                    .unwrap_or_else(|| FORMS.to_owned());
                self.wrong(name_range, format!("unknown type `{name}`"), help)
            }
        }
    }

    fn object(&mut self, attrs: &hcl_edit::expr::Object) -> VarType {
        let mut out = BTreeMap::new();
        for (key, value) in attrs.iter() {
            let ObjectKey::Ident(ident) = key else {
                self.wrong(
                    key.span(),
                    "an object type's attribute is named by an identifier",
                    "write the name without quotes: object({ name = string })",
                );
                continue;
            };
            let name = ident.as_str().to_owned();
            let attr = self.attribute(value.expr());
            if out.contains_key(&name) {
                self.wrong(
                    key.span(),
                    format!("attribute `{name}` is given twice"),
                    "give each attribute once",
                );
                continue;
            }
            out.insert(name, attr);
        }
        VarType::Object(out)
    }

    /// An attribute's type, `optional(T)` or `optional(T, DEFAULT)` too.
    fn attribute(&mut self, expr: &Expression) -> ObjectAttr {
        let Expression::FuncCall(call) = expr else {
            return required(self.read(expr));
        };
        if call.name.name.as_str() != "optional" || call.name.is_namespaced() {
            return required(self.read(expr));
        }
        let args: Vec<&Expression> = call.args.iter().collect();
        if args.is_empty() || args.len() > 2 || call.args.expand_final() {
            self.wrong(
                args_range(call),
                "`optional` takes the attribute's type and, if you like, a default",
                "write optional(number) or optional(number, 9101)",
            );
            return required(VarType::Any);
        }
        let ty = self.read(args[0]);
        let default = args.get(1).and_then(|d| self.default(d, &ty));
        ObjectAttr {
            ty,
            optional: true,
            default,
        }
    }

    /// An optional attribute's default: a value of `ty` that refers to
    /// nothing (a null default is no default).
    fn default(&mut self, expr: &Expression, ty: &VarType) -> Option<serde_json::Value> {
        let span = self.ev.span_of(self.file, expr);
        if !super::super::refs::scan(expr).refs.is_empty() {
            self.ev.error(
                &span,
                "an optional attribute's default cannot refer to other values",
            );
            self.ok = false;
            return None;
        }
        let Some(e) = self.ev.eval(self.file, expr) else {
            self.ok = false;
            return None;
        };
        match super::convert(&e.value, ty) {
            Ok(hcl::Value::Null) => None,
            Ok(v) => Some(to_json(&v)),
            Err(m) => {
                self.ev.error(
                    &span,
                    format!(
                        "this default is not a value of type {ty}: {}",
                        m.shown(false)
                    ),
                );
                self.ok = false;
                None
            }
        }
    }
}

/// The bytes of a call's `(...)` (hcl-edit gives the arguments no span of
/// their own).
fn args_range(call: &FuncCall) -> Option<std::ops::Range<usize>> {
    let name = call.name.name.span()?;
    let whole = call.span()?;
    Some(name.end..whole.end)
}

fn required(ty: VarType) -> ObjectAttr {
    ObjectAttr {
        ty,
        optional: false,
        default: None,
    }
}

/// Read the type written in `text` (for the tests of types and of
/// conversions): the type, or each problem as `COLUMN: MESSAGE (HELP)`.
#[cfg(test)]
pub(crate) fn parse_str(text: &str) -> Result<VarType, Vec<String>> {
    let mut map = super::super::source::SourceMap::default();
    map.add("t.hcl".into(), text.to_owned());
    let expr = hcl_edit::parser::parse_expr(text).expect("an expression");
    let mut ev = Evaluator::new(&map);
    parse(&mut ev, Path::new("t.hcl"), &expr).ok_or_else(|| {
        ev.diags
            .iter()
            .map(|d| {
                let column = d.span.as_ref().map_or(0, |s| s.column);
                let help = d.help.as_deref().unwrap_or("");
                format!("{column}: {} ({help})", d.message)
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text(t: &str) -> String {
        match parse_str(t) {
            Ok(t) => t.to_string(),
            Err(e) => panic!("{t}: {e:?}"),
        }
    }

    fn wrong(t: &str) -> Vec<String> {
        parse_str(t).expect_err(t)
    }

    #[test]
    fn every_form_is_read_and_written_as_terraform_writes_it() {
        for (written, read) in [
            ("string", "string"),
            ("number", "number"),
            ("bool", "bool"),
            ("any", "any"),
            ("list", "list(any)"),
            ("map", "map(any)"),
            ("list(string)", "list(string)"),
            ("set(number)", "set(number)"),
            ("map(bool)", "map(bool)"),
            (
                "object({ name = string, age = number })",
                "object({age=number,name=string})",
            ),
            (
                "tuple([string, number, bool])",
                "tuple([string,number,bool])",
            ),
            ("tuple([])", "tuple([])"),
            ("object({})", "object({})"),
            (
                "map(list(object({\n  tags = set(string)\n  pair = tuple([any, map(number)])\n})))",
                "map(list(object({pair=tuple([any,map(number)]),tags=set(string)})))",
            ),
            (
                "object({ a = string, b = optional(string), c = optional(number, 127) })",
                "object({a=string,b=optional(string),c=optional(number)})",
            ),
        ] {
            assert_eq!(text(written), read, "{written}");
        }
        assert_eq!(
            serde_json::to_value(parse_str("list(string)").unwrap()).unwrap(),
            json!("list(string)")
        );
    }

    #[test]
    fn an_optional_default_is_kept_converted_to_its_type() {
        let t = parse_str(r#"object({ a = optional(string, 5), b = optional(number, "127"), c = optional(list(string), null) })"#).unwrap();
        let VarType::Object(attrs) = t else {
            panic!("{t}")
        };
        let defaults: Vec<_> = attrs
            .values()
            .map(|a| (a.optional, a.default.clone()))
            .collect();
        assert_eq!(
            defaults,
            [
                (true, Some(json!("5"))),
                (true, Some(json!(127))),
                (true, None)
            ]
        );
    }

    #[test]
    fn a_misspelt_type_is_reported_at_its_place_with_a_suggestion() {
        assert_eq!(
            wrong("strng"),
            ["1: unknown type `strng` (did you mean `string`?)"]
        );
        assert_eq!(
            wrong("list(nubmer)"),
            ["6: unknown type `nubmer` (did you mean `number`?)"]
        );
        assert_eq!(
            wrong("lsit(string)"),
            ["1: unknown type `lsit` (did you mean `list`?)"]
        );
        assert_eq!(
            wrong("text"),
            ["1: unknown type `text` (a type is string, number, bool, any, list(T), set(T), map(T), object({ NAME = T, ... }) or tuple([T, ...]))"]
        );
        assert_eq!(
            wrong("object({ a = strng, b = lst(number) })"),
            [
                "14: unknown type `strng` (did you mean `string`?)",
                "25: unknown type `lst` (did you mean `list`?)"
            ],
            "every mistake is found"
        );
    }

    #[test]
    fn a_malformed_type_says_how_to_write_it() {
        assert_eq!(
            wrong("\"string\""),
            ["1: a type is written without quotes (write it without the quotes: string)"]
        );
        assert_eq!(
            wrong("set"),
            ["1: `set` needs its element type (write set(string), set(number), ... or set(any))"]
        );
        assert_eq!(
            wrong("list(map)"),
            ["6: `map` needs its element type (write map(string), map(number), ... or map(any))"],
            "the shorthand is for the whole type only, as in Terraform"
        );
        assert_eq!(
            wrong("object"),
            ["1: `object` needs its attributes (write object({ name = string, port = number }))"]
        );
        assert_eq!(
            wrong("tuple"),
            ["1: `tuple` needs its element types (write tuple([string, number]))"]
        );
        assert_eq!(
            wrong("string(1)"),
            ["7: `string` takes no arguments (write string)"]
        );
        assert_eq!(
            wrong("list(string, number)"),
            ["5: `list` takes one argument, the element type (write list(string))"]
        );
        assert_eq!(
            wrong("map()"),
            ["4: `map` takes one argument, the element type (write map(string))"]
        );
        assert_eq!(
            wrong("object(string)"),
            ["8: an object type's attributes are written { NAME = TYPE, ... } (write object({ name = string, port = number }))"]
        );
        assert_eq!(wrong("tuple(string)"), ["7: a tuple type's element types are written [TYPE, ...] (write tuple([string, number]))"]);
        assert_eq!(
            wrong("object({ \"a b\" = string })"),
            ["10: an object type's attribute is named by an identifier (write the name without quotes: object({ name = string }))"]
        );
        assert!(wrong("1 + 2")[0].starts_with("1: this is not a type ("));
        assert!(wrong("list(x...)")[0].starts_with("1: this is not a type ("));
    }

    #[test]
    fn optional_is_only_for_an_object_attribute() {
        let msg = "`optional` is only for the type of an object's attribute (write object({ name = string, port = optional(number) }))";
        assert_eq!(wrong("optional(string)"), [format!("1: {msg}")]);
        assert_eq!(wrong("list(optional(string))"), [format!("6: {msg}")]);
        assert_eq!(
            wrong("object({ a = list(optional(string)) })"),
            [format!("19: {msg}")]
        );
        assert_eq!(
            wrong("object({ a = optional })"),
            ["14: `optional` needs the attribute's type (write optional(string), as an attribute of object({...}))"]
        );
        assert_eq!(
            wrong("object({ a = optional(string, \"x\", 1) })"),
            ["22: `optional` takes the attribute's type and, if you like, a default (write optional(number) or optional(number, 9101))"]
        );
        assert_eq!(
            wrong("object({ a = optional() })")[0].split(':').next(),
            Some("22")
        );
    }

    #[test]
    fn an_optional_default_must_be_of_its_type_and_refer_to_nothing() {
        assert_eq!(
            wrong("object({ port = optional(number, \"eighty\") })"),
            ["34: this default is not a value of type number: a number is required ()"]
        );
        assert_eq!(
            wrong("object({ o = optional(object({ a = string }), { b = 1 }) })"),
            ["47: this default is not a value of type object({a=string}): attribute \"b\" is not expected; did you mean `a`? ()"]
        );
        assert_eq!(
            wrong("object({ a = optional(string, var.x) })"),
            ["31: an optional attribute's default cannot refer to other values ()"]
        );
    }
}
