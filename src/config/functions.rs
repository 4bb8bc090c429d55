//! The built-in functions of the configuration language.
//!
//! hcl-rs evaluates function calls but ships no functions, so cutover defines
//! the small set an operator needs to build strings, lists and maps. Every
//! function checks its arguments and returns an error message instead of
//! panicking; docs/config-language.md describes each one.

use std::sync::OnceLock;

mod collections;
#[cfg(test)]
mod conformance;
mod decimal;
mod encoding;
mod files;
mod format;
mod numbers;
pub(crate) mod operators;
mod regex;
mod strings;
mod yaml;
mod yamlencode;

use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::{Map, Number, Value};

/// The names of every built-in function.
pub(crate) const NAMES: &[&str] = &[
    "abs",
    "alltrue",
    "anytrue",
    "base64decode",
    "base64encode",
    "can",
    "ceil",
    "chunklist",
    "coalesce",
    "compact",
    "concat",
    "contains",
    "distinct",
    "element",
    "endswith",
    "file",
    "fileexists",
    "flatten",
    "floor",
    "format",
    "formatlist",
    "index",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lookup",
    "lower",
    "max",
    "merge",
    "min",
    "nonsensitive",
    "one",
    "parseint",
    "range",
    "regex",
    "regexall",
    "replace",
    "reverse",
    "sensitive",
    "sha256",
    "slice",
    "sort",
    "split",
    "startswith",
    "strcontains",
    "substr",
    "sum",
    "templatefile",
    "title",
    "tolist",
    "tomap",
    "tonumber",
    "toset",
    "tostring",
    "trim",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "try",
    "upper",
    "values",
    "yamldecode",
    "yamlencode",
    "zipmap",
];

/// The functions that config::rewrite turns into calls of internal ones
/// (`try` into `__try`): they are not declared under their own names.
#[cfg(test)]
const REWRITTEN: &[&str] = &["can", "try"];

/// Declare every built-in function in `ctx` (the internal ones too).
pub(crate) fn declare(ctx: &mut Context<'_>) {
    for (name, def) in defs() {
        ctx.declare_func(*name, def.clone());
    }
}

/// Declare the built-in functions named in `names` in `ctx`.
pub(crate) fn declare_only(ctx: &mut Context<'_>, names: &[&str]) {
    for (name, def) in defs().iter().filter(|(n, _)| names.contains(n)) {
        ctx.declare_func(*name, def.clone());
    }
}

/// Every function's definition, by name: those of `NAMES` (sorted, but for
/// `REWRITTEN`), then the internal ones.
fn defs() -> &'static [(&'static str, FuncDef)] {
    static DEFS: OnceLock<Vec<(&'static str, FuncDef)>> = OnceLock::new();
    DEFS.get_or_init(|| {
        use collections as c;
        use encoding as e;
        use numbers as n;
        use strings as s;
        use ParamType::Any;
        // A string parameter takes a number or a bool too, converted to its
        // string form as Terraform converts (`trimspace(1)` is "1").
        let text = || ParamType::one_of([ParamType::String, ParamType::Number, ParamType::Bool]);
        let list = || ParamType::array_of(Any);
        let map = || ParamType::object_of(Any);
        let of = |ps: Vec<ParamType>, f| FuncDef::builder().params(ps).build(f);
        let one = |p: ParamType, f| of(vec![p], f);
        let many = |p: ParamType, f| FuncDef::builder().variadic_param(p).build(f);
        let str1 = |f| one(text(), f);
        let str2 = |f| of(vec![text(), text()], f);
        vec![
            ("abs", one(Any, n::abs)),
            ("alltrue", one(list(), c::alltrue)),
            ("anytrue", one(list(), c::anytrue)),
            ("base64decode", str1(e::base64decode)),
            ("base64encode", str1(e::base64encode)),
            ("ceil", one(Any, n::ceil)),
            ("chunklist", of(vec![list(), Any], c::chunklist)),
            ("coalesce", many(Any, coalesce)),
            ("compact", one(list(), c::compact)),
            ("concat", many(list(), concat)),
            ("contains", of(vec![list(), Any], contains)),
            ("distinct", one(list(), c::distinct)),
            ("element", of(vec![list(), Any], c::element)),
            ("endswith", str2(s::endswith)),
            ("file", str1(files::file)),
            ("fileexists", str1(files::fileexists)),
            ("flatten", one(list(), c::flatten)),
            ("floor", one(Any, n::floor)),
            (
                "format",
                FuncDef::builder()
                    .param(text())
                    .variadic_param(Any)
                    .build(format::format),
            ),
            (
                "formatlist",
                FuncDef::builder()
                    .param(text())
                    .variadic_param(Any)
                    .build(format::formatlist),
            ),
            ("index", of(vec![list(), Any], c::index)),
            ("join", of(vec![text(), list()], join)),
            ("jsondecode", str1(e::jsondecode)),
            ("jsonencode", one(Any, jsonencode)),
            ("keys", one(map(), keys)),
            ("length", one(Any, length)),
            (
                "lookup",
                FuncDef::builder()
                    .params([map(), text()])
                    .variadic_param(Any)
                    .build(lookup),
            ),
            (
                "lower",
                str1(|a| Ok(Value::String(str_arg(&a, 0).to_lowercase()))),
            ),
            ("max", many(Any, n::max)),
            ("merge", many(ParamType::nullable(map()), merge)),
            ("min", many(Any, n::min)),
            // The value as it is: marking it, or taking its mark away, is
            // config::marks's work.
            ("nonsensitive", one(Any, identity)),
            ("one", one(list(), c::one)),
            ("parseint", of(vec![text(), Any], n::parseint)),
            ("range", many(Any, c::range)),
            ("regex", str2(regex::regex)),
            ("regexall", str2(regex::regexall)),
            ("replace", of(vec![text(), text(), text()], s::replace)),
            ("reverse", one(list(), c::reverse)),
            ("sensitive", one(Any, identity)),
            ("sha256", str1(e::sha256)),
            ("slice", of(vec![list(), Any, Any], c::slice)),
            ("sort", one(list(), c::sort)),
            ("split", str2(split)),
            ("startswith", str2(s::startswith)),
            ("strcontains", str2(s::strcontains)),
            ("substr", of(vec![text(), Any, Any], s::substr)),
            ("sum", one(list(), n::sum)),
            ("templatefile", of(vec![text(), Any], files::templatefile)),
            ("title", str1(s::title)),
            ("tolist", one(Any, c::tolist)),
            ("tomap", one(Any, c::tomap)),
            ("tonumber", one(Any, tonumber)),
            ("toset", one(Any, c::toset)),
            ("tostring", one(Any, tostring)),
            ("trim", str2(s::trim)),
            ("trimprefix", str2(s::trimprefix)),
            ("trimspace", str1(s::trimspace)),
            ("trimsuffix", str2(s::trimsuffix)),
            (
                "upper",
                str1(|a| Ok(Value::String(str_arg(&a, 0).to_uppercase()))),
            ),
            ("values", one(map(), values)),
            ("yamldecode", str1(yaml::yamldecode)),
            ("yamlencode", one(Any, yamlencode::yamlencode)),
            ("zipmap", of(vec![list(), list()], c::zipmap)),
            // Internal: what config::rewrite turns operators, `try` and
            // `can` into.
            ("__add", of(vec![Any; 6], operators::add)),
            ("__sub", of(vec![Any; 6], operators::sub)),
            ("__mul", of(vec![Any; 6], operators::mul)),
            ("__div", of(vec![Any; 6], operators::div)),
            ("__mod", of(vec![Any; 6], operators::rem)),
            ("__lt", of(vec![Any; 6], operators::lt)),
            ("__le", of(vec![Any; 6], operators::le)),
            ("__gt", of(vec![Any; 6], operators::gt)),
            ("__ge", of(vec![Any; 6], operators::ge)),
            ("__neg", of(vec![Any; 5], operators::neg)),
            ("__try", many(Any, super::lazy::try_)),
            ("__can", many(Any, super::lazy::can)),
        ]
    })
}

fn identity(args: FuncArgs) -> Result<Value, String> {
    Ok(args.into_values().into_iter().next().unwrap_or(Value::Null))
}

/// A string argument already checked by the parameter types (a number or
/// a bool given for one in its string form, as Terraform converts).
fn str_arg(args: &FuncArgs, i: usize) -> std::borrow::Cow<'_, str> {
    match args.get(i) {
        Some(Value::String(s)) => std::borrow::Cow::Borrowed(s),
        Some(v) => primitive_string(v).unwrap_or_default().into(),
        None => std::borrow::Cow::Borrowed(""),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// The string form of a primitive value, as `tostring` and `%s` give it:
/// a number with every digit and no exponent, as Terraform writes one.
pub(crate) fn primitive_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) => numbers::num_arg(v, "").ok().map(decimal::number_string),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn coalesce(args: FuncArgs) -> Result<Value, String> {
    args.iter()
        .find(|v| !v.is_null() && v.as_str() != Some(""))
        .cloned()
        .ok_or_else(|| "no non-null, non-empty argument".to_string())
}

fn concat(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Array(
        args.iter()
            .filter_map(Value::as_array)
            .flatten()
            .cloned()
            .collect(),
    ))
}

fn contains(args: FuncArgs) -> Result<Value, String> {
    let list = args[0].as_array().map(Vec::as_slice).unwrap_or_default();
    Ok(Value::Bool(list.contains(&args[1])))
}

fn join(args: FuncArgs) -> Result<Value, String> {
    let items = args[1].as_array().map(Vec::as_slice).unwrap_or_default();
    let parts = items
        .iter()
        .map(|v| primitive_string(v).ok_or_else(|| format!("cannot join a {}", type_name(v))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::String(parts.join(&*str_arg(&args, 0))))
}

fn split(args: FuncArgs) -> Result<Value, String> {
    let (sep, s) = (&*str_arg(&args, 0), &*str_arg(&args, 1));
    if sep.is_empty() {
        return Err("the separator must not be empty".into());
    }
    if s.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    Ok(Value::Array(
        s.split(sep).map(|p| Value::String(p.into())).collect(),
    ))
}

fn jsonencode(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(json_text(&args[0])))
}

/// A value as compact JSON, as Terraform writes it (Go's encoder): object
/// keys sorted (serde_json's map is ordered by key), and `<`, `>`, `&`,
/// U+2028 and U+2029 written as `\u` escapes. Those characters can only
/// be inside strings, so replacing them in the text is exact.
fn json_text(v: &Value) -> String {
    let sorted = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    let text = sorted.to_string();
    if !text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return text;
    }
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn keys(args: FuncArgs) -> Result<Value, String> {
    let mut keys: Vec<&String> = args[0]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    keys.sort();
    Ok(Value::Array(
        keys.into_iter().map(|k| Value::String(k.clone())).collect(),
    ))
}

fn values(args: FuncArgs) -> Result<Value, String> {
    let mut entries: Vec<(&String, &Value)> = args[0]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    Ok(Value::Array(
        entries.into_iter().map(|(_, v)| v.clone()).collect(),
    ))
}

fn length(args: FuncArgs) -> Result<Value, String> {
    let n = match &args[0] {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        other => return Err(format!("cannot take the length of a {}", type_name(other))),
    };
    Ok(Value::Number(Number::from(n as u64)))
}

fn lookup(args: FuncArgs) -> Result<Value, String> {
    let key = &*str_arg(&args, 1);
    let default: Vec<&Value> = args.variadic_args().collect();
    if default.len() > 1 {
        return Err("takes at most one default".into());
    }
    match (
        args[0].as_object().and_then(|m| m.get(key)),
        default.first(),
    ) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(d)) => Ok((*d).clone()),
        (None, None) => Err(format!("no key `{key}` in the map, and no default")),
    }
}

fn merge(args: FuncArgs) -> Result<Value, String> {
    let mut out = Map::new();
    for map in args.iter().filter_map(Value::as_object) {
        out.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    // A map's keys are in key order, whatever order the maps came in.
    out.sort_keys();
    Ok(Value::Object(out))
}

fn tostring(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        v => primitive_string(v)
            .map(Value::String)
            .ok_or_else(|| format!("cannot convert a {} to a string", type_name(v))),
    }
}

fn tonumber(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::Number(n) => Ok(Value::Number(*n)),
        Value::String(s) => {
            parse_number(s).ok_or_else(|| format!("cannot convert \"{s}\" to a number"))
        }
        v => Err(format!("cannot convert a {} to a number", type_name(v))),
    }
}

/// Parse a decimal number, as `tonumber` and `--var` for a number do.
pub(crate) fn parse_number(s: &str) -> Option<Value> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::Number(Number::from(i)));
    }
    if let Ok(u) = s.parse::<u64>() {
        return Some(Value::Number(Number::from(u)));
    }
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

/// Evaluate `expr` with only the built-in functions, as config::eval does
/// (rewritten, in a frame of its own).
#[cfg(test)]
fn eval(expr: &str) -> Result<serde_json::Value, String> {
    let parsed = hcl_edit::parser::parse_expr(expr).map_err(|e| e.to_string())?;
    let prepared = super::rewrite::prepare(parsed);
    let value = super::lazy::evaluate_alone(&prepared, NAMES).map_err(|f| f.message)?;
    serde_json::to_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_and_defined() {
        assert!(NAMES.windows(2).all(|w| w[0] < w[1]));
        let defined: Vec<&str> = defs().iter().map(|(n, _)| *n).collect();
        let public: Vec<&str> = defined
            .iter()
            .copied()
            .filter(|n| !n.starts_with("__"))
            .collect();
        let named: Vec<&str> = NAMES
            .iter()
            .copied()
            .filter(|n| !REWRITTEN.contains(n))
            .collect();
        assert_eq!(public, named);
        for op in operators::OPERATORS {
            assert!(defined.contains(&op.0), "{op:?}");
        }
    }

    fn ok(expr: &str) -> String {
        eval(expr).unwrap().to_string()
    }

    fn err(expr: &str) -> String {
        eval(expr).unwrap_err()
    }

    #[test]
    fn format_verbs() {
        assert_eq!(
            ok(r#"format("%s-%d %v %q 100%%", "a", 42, true, "x")"#),
            r#""a-42 true \"x\" 100%""#
        );
        assert_eq!(ok(r#"format("%v", [1, "a"])"#), r#""[1,\"a\"]""#);
        assert!(err(r#"format("%d", "x")"#).contains("number required"));
        assert!(err(r#"format("%s %s", "x")"#).contains("not enough arguments"));
        assert!(err(r#"format("%s", "x", "y")"#).contains("too many"));
        assert!(err(r#"format([1])"#).contains("format"));
        // A number or bool is converted for a string parameter, as Terraform.
        assert_eq!(ok("format(1)"), r#""1""#);
    }

    #[test]
    fn join_and_split() {
        assert_eq!(ok(r#"join(",", ["a", "b", 3])"#), r#""a,b,3""#);
        assert_eq!(ok(r#"split(",", "a,b")"#), r#"["a","b"]"#);
        assert_eq!(ok(r#"split(",", "")"#), "[]");
        assert!(err(r#"join(",", [[1]])"#).contains("cannot join a list"));
        assert!(err(r#"join(",", "a")"#).contains("join"));
        assert!(err(r#"split("", "a")"#).contains("separator"));
    }

    #[test]
    fn upper_and_lower() {
        assert_eq!(ok(r#"upper("blue")"#), r#""BLUE""#);
        assert_eq!(ok(r#"lower("GREEN")"#), r#""green""#);
        assert!(err("upper([1])").contains("upper"));
        assert_eq!(ok("upper(true)"), r#""TRUE""#);
        assert!(err("lower([])").contains("lower"));
    }

    #[test]
    fn length_of_each_kind() {
        assert_eq!(ok(r#"length("héllo")"#), "5");
        assert_eq!(ok("length([1, 2])"), "2");
        assert_eq!(ok("length({a = 1})"), "1");
        assert!(err("length(true)").contains("cannot take the length of a bool"));
    }

    #[test]
    fn keys_and_values_are_sorted() {
        assert_eq!(ok("keys({b = 1, a = 2})"), r#"["a","b"]"#);
        assert_eq!(ok("values({b = 1, a = 2})"), "[2,1]");
        assert!(err("keys([1])").contains("keys"));
        assert!(err(r#"values("x")"#).contains("values"));
    }

    #[test]
    fn lookup_with_and_without_default() {
        assert_eq!(ok(r#"lookup({a = 1}, "a", 0)"#), "1");
        assert_eq!(ok(r#"lookup({a = 1}, "b", 0)"#), "0");
        assert!(err(r#"lookup({a = 1}, "b")"#).contains("no key `b`"));
        assert!(err(r#"lookup([1], "b", 0)"#).contains("lookup"));
    }

    #[test]
    fn merge_and_concat() {
        assert_eq!(ok("merge({a = 1, b = 1}, {b = 2})"), r#"{"a":1,"b":2}"#);
        assert_eq!(ok("concat([1], [], [2, 3])"), "[1,2,3]");
        assert!(err("merge(1)").contains("merge"));
        assert!(err("concat(1)").contains("concat"));
    }

    #[test]
    fn contains_and_coalesce() {
        assert_eq!(ok(r#"contains(["a", "b"], "b")"#), "true");
        assert_eq!(ok(r#"contains(["a"], "c")"#), "false");
        assert_eq!(ok(r#"coalesce(null, "", "x")"#), r#""x""#);
        assert!(err(r#"contains("a", "a")"#).contains("contains"));
        assert!(err("coalesce(null)").contains("no non-null"));
    }

    #[test]
    fn conversions() {
        assert_eq!(ok("tostring(12)"), r#""12""#);
        assert_eq!(ok("tostring(true)"), r#""true""#);
        assert_eq!(ok(r#"tonumber("1.5")"#), "1.5");
        assert_eq!(ok(r#"tonumber("7")"#), "7");
        assert!(err("tostring([1])").contains("cannot convert a list to a string"));
        assert!(err(r#"tonumber("x")"#).contains("cannot convert \"x\" to a number"));
    }

    #[test]
    fn jsonencode_values() {
        assert_eq!(
            ok(r#"jsonencode({a = [1, "x"]})"#),
            r#""{\"a\":[1,\"x\"]}""#
        );
        assert!(err("jsonencode()").contains("jsonencode"));
        // Keys sorted, as Terraform's.
        assert_eq!(
            ok(r#"jsonencode({b = 1, a = { d = 2, c = 3 }})"#),
            r#""{\"a\":{\"c\":3,\"d\":2},\"b\":1}""#
        );
    }
}
