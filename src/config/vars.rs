//! Variables: their declarations, and their values from `--var`,
//! `--var-file`, `CUTOVER_VAR_name` and defaults, in that order of precedence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl::Value;
use hcl_edit::structure::Body;

use super::diag::Diagnostic;
use super::eval::{from_json, to_json, Evaluator};
use super::model::{Address, Marks, Span, VarType, Variable};
use super::schema::{self, Decl, Decls, Schema};
use super::source::{did_you_mean, SourceMap};
use super::{functions, parse, VarInputs};

/// The contents of one `--var-file`.
pub(crate) enum VarFile {
    /// `name = value` attributes.
    Hcl(Body),
    /// A JSON object.
    Json(serde_json::Map<String, serde_json::Value>),
}

/// Read every `--var-file`, recording HCL ones in `map` for diagnostics.
pub(crate) fn read_var_files(
    inputs: &VarInputs,
    map: &mut SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(PathBuf, VarFile)> {
    let mut out = Vec::new();
    for path in &inputs.files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::new(format!(
                    "--var-file {}: cannot read it: {e}",
                    path.display()
                )));
                continue;
            }
        };
        if path.extension().is_some_and(|e| e == "json") {
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(obj)) => out.push((path.clone(), VarFile::Json(obj))),
                Ok(_) => diags.push(Diagnostic::new(format!(
                    "--var-file {}: must hold a JSON object",
                    path.display()
                ))),
                Err(e) => diags.push(Diagnostic::new(format!(
                    "--var-file {}: invalid JSON: {e}",
                    path.display()
                ))),
            }
        } else if let Some(body) = {
            // A var file holds values, sensitive ones too: its lines are
            // never quoted in a diagnostic.
            map.unquoted(path.clone());
            parse::parse_text(path, text, map, diags)
        } {
            out.push((path.clone(), VarFile::Hcl(body)));
        }
    }
    out
}

/// Where a variable's value came from, for messages.
enum Origin {
    Cli,
    File(Option<Span>, PathBuf),
    Env,
    Default(Span),
}

/// Resolve every declared variable, recording values in `ev`.
pub(crate) fn resolve(
    ev: &mut Evaluator<'_>,
    decls: &Decls<'_>,
    inputs: &VarInputs,
    files: &[(PathBuf, VarFile)],
) -> BTreeMap<String, Variable> {
    let declared: Vec<&str> = decls.variables.keys().map(String::as_str).collect();
    for (name, _) in &inputs.cli {
        if !decls.variables.contains_key(name) {
            let mut d = Diagnostic::new(format!(
                "--var {name}=...: no variable \"{name}\" is declared"
            ));
            d.help = did_you_mean(name, declared.iter().copied());
            ev.diags.push(d);
        }
    }
    let from_files = file_values(ev, files, &declared);
    let mut out = BTreeMap::new();
    for (name, decl) in &decls.variables {
        if let Some(var) = resolve_one(ev, decl, inputs, from_files.get(name)) {
            let addr = Address::Variable(name.clone());
            ev.values.insert(addr.clone(), from_json(&var.value));
            if var.sensitive {
                ev.marks_insert(addr, Marks::sensitive(format!("var.{name}")));
            }
            out.insert(name.clone(), var);
        }
    }
    out
}

/// The value of each variable named in the var-files (later files win).
fn file_values(
    ev: &mut Evaluator<'_>,
    files: &[(PathBuf, VarFile)],
    declared: &[&str],
) -> BTreeMap<String, (Value, Origin)> {
    let mut out = BTreeMap::new();
    for (path, file) in files {
        match file {
            VarFile::Json(obj) => {
                for (name, value) in obj {
                    if !declared.contains(&name.as_str()) {
                        ev.diags.push(Diagnostic::new(format!(
                            "--var-file {}: no variable \"{name}\" is declared",
                            path.display()
                        )));
                        continue;
                    }
                    out.insert(
                        name.clone(),
                        (from_json(value), Origin::File(None, path.clone())),
                    );
                }
            }
            VarFile::Hcl(body) => {
                for attr in body.attributes() {
                    let name = attr.key.as_str();
                    let span = schema::key_span(ev.map, path, attr);
                    if !declared.contains(&name) {
                        let help = did_you_mean(name, declared.iter().copied());
                        let mut d = ev
                            .map
                            .diag(&span, format!("no variable \"{name}\" is declared"));
                        d.help = help;
                        ev.diags.push(d);
                        continue;
                    }
                    let vspan = ev.span_of(path, &attr.value);
                    if let Some(e) = ev.eval(path, &attr.value) {
                        out.insert(
                            name.to_string(),
                            (e.value, Origin::File(Some(vspan), path.clone())),
                        );
                    }
                }
            }
        }
    }
    out
}

const VAR_SCHEMA: &[&str] = &["default", "description", "type", "sensitive"];

fn resolve_one(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    inputs: &VarInputs,
    from_file: Option<&(Value, Origin)>,
) -> Option<Variable> {
    let what = format!("variable \"{}\"", decl.name);
    let s = Schema {
        what: &what,
        attrs: VAR_SCHEMA,
        required: &[],
        blocks: &[],
    };
    super::blocks::check_decl(ev, decl, &s);
    let body = &decl.block.body;
    let var_type = body
        .get_attribute("type")
        .map_or(Some(VarType::Any), |a| parse_type(ev, decl.file, &a.value))?;
    let description = super::blocks::opt_string(ev, decl.file, body, "description");
    let sensitive = super::blocks::opt_bool(ev, decl.file, body, "sensitive").unwrap_or(false);
    let name = &decl.name;
    // The message of a value that does not convert must not show a
    // sensitive one.
    let hide = |raw: &str, e: String| {
        if !sensitive {
            e
        } else if matches!(var_type, VarType::List | VarType::Map) {
            // The parser's message quotes the value, reformatted.
            format!("not a valid {var_type:?} value (not shown: the variable is sensitive)")
                .to_lowercase()
        } else {
            e.replace(raw, "(sensitive value)")
        }
    };
    let (value, origin) = if let Some((_, raw)) = inputs.cli.iter().rev().find(|(n, _)| n == name) {
        let shown = if sensitive { "..." } else { raw.as_str() };
        (
            from_string(var_type, raw)
                .map_err(|e| format!("--var {name}={shown}: {}", hide(raw, e))),
            Origin::Cli,
        )
    } else if let Some((value, origin)) = from_file {
        let origin = match origin {
            Origin::File(span, path) => Origin::File(span.clone(), path.clone()),
            _ => Origin::Env,
        };
        (Ok(value.clone()), origin)
    } else if let Some(raw) = inputs.env.get(name) {
        (
            from_string(var_type, raw).map_err(|e| format!("CUTOVER_VAR_{name}: {}", hide(raw, e))),
            Origin::Env,
        )
    } else if let Some(attr) = body.get_attribute("default") {
        let span = ev.span_of(decl.file, &attr.value);
        if !super::refs::scan(&attr.value).refs.is_empty() {
            ev.error(&span, "a variable's default cannot refer to other values");
            return None;
        }
        (
            Ok(ev.eval(decl.file, &attr.value)?.value),
            Origin::Default(span),
        )
    } else {
        let help = format!("give it a value with --var {name}=VALUE, a --var-file, CUTOVER_VAR_{name}, or a default");
        ev.error_help(
            &decl.span,
            format!("variable \"{name}\" has no value"),
            help,
        );
        return None;
    };
    let value = value.and_then(|v| check_type(var_type, v));
    let value = match value {
        Ok(v) => v,
        Err(e) => {
            wrong_value(ev, name, e, origin);
            return None;
        }
    };
    Some(Variable {
        name: name.clone(),
        description,
        var_type,
        sensitive,
        value: to_json(&value),
        span: decl.span.clone(),
    })
}

/// Report the value of variable `name` that could not be used, where it
/// came from.
fn wrong_value(ev: &mut Evaluator<'_>, name: &str, e: String, origin: Origin) {
    let message = match origin {
        Origin::Default(span) | Origin::File(Some(span), _) => {
            ev.error(&span, format!("wrong type for variable \"{name}\": {e}"));
            return;
        }
        Origin::File(None, path) => {
            format!("--var-file {}: variable \"{name}\": {e}", path.display())
        }
        Origin::Cli if !e.starts_with("--var ") => format!("--var {name}: {e}"),
        Origin::Env if !e.starts_with("CUTOVER_VAR_") => format!("CUTOVER_VAR_{name}: {e}"),
        Origin::Cli | Origin::Env => e,
    };
    ev.diags.push(Diagnostic::new(message));
}

fn parse_type(
    ev: &mut Evaluator<'_>,
    file: &Path,
    expr: &hcl_edit::expr::Expression,
) -> Option<VarType> {
    let word = match expr {
        hcl_edit::expr::Expression::Variable(v) => v.as_str().to_string(),
        hcl_edit::expr::Expression::String(s) => s.value().clone(),
        _ => String::new(),
    };
    let t = match word.as_str() {
        "string" => VarType::String,
        "number" => VarType::Number,
        "bool" => VarType::Bool,
        "list" => VarType::List,
        "map" => VarType::Map,
        "any" => VarType::Any,
        _ => {
            let span = ev.span_of(file, expr);
            let help = did_you_mean(&word, ["string", "number", "bool", "list", "map", "any"])
                .unwrap_or_else(|| "the types are: string, number, bool, list, map, any".into());
            ev.error_help(&span, "unknown variable type", help);
            return None;
        }
    };
    Some(t)
}

/// Convert a `--var` or `CUTOVER_VAR_name` string to a value of `t`.
pub(crate) fn from_string(t: VarType, raw: &str) -> Result<Value, String> {
    match t {
        VarType::String | VarType::Any => Ok(Value::String(raw.to_string())),
        VarType::Number => {
            functions::parse_number(raw).ok_or_else(|| format!("\"{raw}\" is not a number"))
        }
        VarType::Bool => match raw.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("\"{raw}\" is not a bool (true or false)")),
        },
        VarType::List | VarType::Map => {
            let expr = hcl_edit::parser::parse_expr(raw)
                .map_err(|e| format!("not a valid HCL value: {}", e.message()))?;
            let prepared = super::rewrite::prepare(expr);
            super::lazy::evaluate_alone(&prepared, functions::NAMES)
                .map_err(|f| format!("cannot evaluate it: {}", f.message))
        }
    }
}

/// Check `value` against `t`; a number or bool given for a string becomes
/// its string form.
pub(crate) fn check_type(t: VarType, value: Value) -> Result<Value, String> {
    let ok = match (&t, &value) {
        (_, Value::Null) | (VarType::Any, _) => true,
        (VarType::String, Value::Number(n)) => return Ok(Value::String(n.to_string())),
        (VarType::String, Value::Bool(b)) => return Ok(Value::String(b.to_string())),
        (VarType::String, Value::String(_))
        | (VarType::Number, Value::Number(_))
        | (VarType::Bool, Value::Bool(_))
        | (VarType::List, Value::Array(_))
        | (VarType::Map, Value::Object(_)) => true,
        _ => false,
    };
    if ok {
        Ok(value)
    } else {
        let t = serde_json::to_value(t)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Err(format!(
            "expected a {t}, got {}",
            super::blocks::type_name(&value)
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::model::Config;
    use super::super::{load, Diagnostics, Loaded, VarInputs};

    fn load_files(files: &[(&str, &str)], inputs: &VarInputs) -> Result<Loaded, Diagnostics> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        load(dir.path(), inputs)
    }

    fn errors_with(text: &str, inputs: &VarInputs) -> String {
        load_files(&[("main.hcl", text)], inputs)
            .unwrap_err()
            .to_string()
    }

    fn errors(text: &str) -> String {
        errors_with(text, &VarInputs::default())
    }

    fn assert_has(rendered: &str, parts: &[&str]) {
        for part in parts {
            assert!(rendered.contains(part), "missing {part:?} in:\n{rendered}");
        }
    }

    const VARS: &str = r#"variable "a" {
      type    = string
      default = "default"
    }
    variable "n" {
      type    = number
      default = 1
    }
    variable "l" {
      type    = list
      default = []
    }
    variable "m" {
      type = map
      default = {}
    }
    variable "b" {
      type    = bool
      default = false
    }
    "#;

    fn var_values(inputs: &VarInputs, extra: &[(&str, &str)]) -> Config {
        let mut files = vec![("main.hcl", VARS)];
        files.extend_from_slice(extra);
        match load_files(&files, inputs) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn variable_precedence_cli_file_env_default() {
        let dir = tempfile::tempdir().unwrap();
        let hcl_file = dir.path().join("one.hcl");
        let json_file = dir.path().join("two.json");
        std::fs::write(&hcl_file, "a = \"file\"\nl = [\"x\", upper(\"y\")]\n").unwrap();
        std::fs::write(&json_file, r#"{"n": 7, "m": {"k": "v"}}"#).unwrap();
        let value = |c: &Config, n: &str| c.variables[n].value.clone();

        let mut inputs = VarInputs::default();
        assert_eq!(value(&var_values(&inputs, &[]), "a"), json!("default"));
        inputs.env.insert("a".into(), "env".into());
        inputs.env.insert("n".into(), "3".into());
        inputs.env.insert("b".into(), "true".into());
        let c = var_values(&inputs, &[]);
        assert_eq!(
            (value(&c, "a"), value(&c, "n"), value(&c, "b")),
            (json!("env"), json!(3), json!(true))
        );
        inputs.files = vec![hcl_file, json_file];
        let c = var_values(&inputs, &[]);
        assert_eq!((value(&c, "a"), value(&c, "n")), (json!("file"), json!(7)));
        assert_eq!(
            (value(&c, "l"), value(&c, "m")),
            (json!(["x", "Y"]), json!({"k": "v"}))
        );
        inputs.cli = vec![
            ("a".into(), "first".into()),
            ("a".into(), "cli".into()),
            ("l".into(), "[1, 2]".into()),
        ];
        inputs.cli.push(("n".into(), "2.5".into()));
        let c = var_values(&inputs, &[]);
        assert_eq!(
            (value(&c, "a"), value(&c, "n"), value(&c, "l")),
            (json!("cli"), json!(2.5), json!([1, 2]))
        );
    }

    #[test]
    fn variable_input_mistakes() {
        let inputs = VarInputs {
            cli: vec![
                ("nope".into(), "1".into()),
                ("n".into(), "abc".into()),
                ("l".into(), "[1,".into()),
            ],
            env: [("b".to_string(), "yes".to_string())].into(),
            ..VarInputs::default()
        };
        let out = errors_with(VARS, &inputs);
        assert_has(
            &out,
            &[
                "--var nope=...: no variable \"nope\" is declared",
                "--var n=abc: \"abc\" is not a number",
                "--var l=[1,: not a valid HCL value",
                "CUTOVER_VAR_b: \"yes\" is not a bool",
            ],
        );
    }

    #[test]
    fn variable_declaration_mistakes() {
        let out = errors(
            "variable \"a\" {}\nvariable \"b\" {\n  type    = number\n  default = \"x\"\n}\nvariable \"c\" {\n  default = var.b\n}\nvariable \"d\" {\n  type = text\n}\n",
        );
        assert_has(
            &out,
            &[
                "variable \"a\" has no value\n --> main.hcl:1:1",
                "wrong type for variable \"b\": expected a number, got string\n --> main.hcl:4:13",
                "a variable's default cannot refer to other values\n --> main.hcl:7:13",
                "unknown variable type\n  --> main.hcl:10:10",
            ],
        );
    }

    #[test]
    fn var_file_mistakes_point_into_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vars.hcl");
        std::fs::write(&file, "a = \"ok\"\nnope = 1\n").unwrap();
        let inputs = VarInputs {
            files: vec![file.clone()],
            ..VarInputs::default()
        };
        let out = errors_with(VARS, &inputs);
        assert_has(
            &out,
            &[
                "no variable \"nope\" is declared",
                &format!("--> {}:2:1", file.display()),
            ],
        );
    }
}

#[cfg(test)]
mod hcl_values {
    use super::*;

    #[test]
    fn a_list_given_in_hcl_is_evaluated_as_the_configuration_is() {
        assert_eq!(
            from_string(VarType::List, "[try(1 / 0, 9101), \"9\" + 1]"),
            Ok(Value::Array(vec![Value::from(9101u64), Value::from(10u64)]))
        );
        let err = from_string(VarType::List, "[1 / 0]").unwrap_err();
        assert!(err.contains("division by zero"), "{err}");
    }
}
