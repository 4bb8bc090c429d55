//! Variables: their declarations, and their values from `--var`,
//! `--var-file`, `CUTOVER_VAR_name` and defaults, in that order of
//! precedence, converted to their types (config::types, config::convert),
//! then checked against `nullable` and their `validation {}` blocks.
//!
//! A value that does not fit is reported where it came from: the flag, the
//! var file's line and column, the environment variable, or the default.

mod files;
mod validation;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl::Value;
use hcl_edit::expr::{Expression, ObjectKey};

pub(crate) use files::{read_var_files, VarFile};

use super::diag::Diagnostic;
use super::eval::{to_json, Evaluator};
use super::model::{Address, Marks, Span, VarType, Variable};
use super::schema::{Decl, Decls, Schema};
use super::source::did_you_mean;
use super::types::{self, convert, Step};
use super::{functions, VarInputs};

/// Where a variable's value came from, for messages.
#[derive(Debug, Clone)]
pub(super) enum Origin<'a> {
    /// `--var NAME=VALUE`, with the value as it may be shown (`...` for a
    /// sensitive variable).
    Cli(String),
    /// An HCL var file.
    HclFile(Written<'a>),
    /// A JSON var file, by its path.
    JsonFile(&'a Path),
    /// `CUTOVER_VAR_NAME`.
    Env,
    /// The `default`.
    Default(Written<'a>),
}

/// A value as written in a file: a message about a part of it points at
/// that part.
#[derive(Debug, Clone, Copy)]
pub(super) struct Written<'a> {
    pub file: &'a Path,
    pub expr: &'a Expression,
}

impl Written<'_> {
    /// The span of the part of the value that `steps` lead to (of the
    /// whole, or of the deepest part written out, where the steps lead
    /// into a value computed by a function or a reference).
    fn span(&self, ev: &Evaluator<'_>, steps: &[Step]) -> Span {
        let mut expr = self.expr;
        for step in steps {
            while let Expression::Parenthesis(p) = expr {
                expr = p.inner();
            }
            let next = match (step, expr) {
                (Step::Index(i), Expression::Array(items)) => items.get(*i),
                (Step::Key(k) | Step::Attr(k), Expression::Object(object)) => object
                    .iter()
                    .find(|(key, _)| key_name(key) == Some(k.as_str()))
                    .map(|(_, v)| v.expr()),
                _ => None,
            };
            match next {
                Some(e) => expr = e,
                None => break,
            }
        }
        ev.span_of(self.file, expr)
    }
}

/// The name an object literal's key gives (`name`, `"name"`).
fn key_name(key: &ObjectKey) -> Option<&str> {
    match key {
        ObjectKey::Ident(i) => Some(i.as_str()),
        ObjectKey::Expression(Expression::String(s)) => Some(s.as_str()),
        _ => None,
    }
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
    let from_files = files::file_values(ev, files, &declared);
    let mut out = BTreeMap::new();
    for (name, decl) in &decls.variables {
        if let Some(var) = resolve_one(ev, decl, inputs, from_files.get(name)) {
            out.insert(name.clone(), var);
        }
    }
    out
}

const VAR_SCHEMA: &[&str] = &["default", "description", "type", "sensitive", "nullable"];

/// What a variable's declaration says of its values.
struct Declared<'a> {
    var_type: VarType,
    /// Whether a `--var` or `CUTOVER_VAR_name` string is the value itself,
    /// rather than HCL to evaluate: with no `type`, and for a string,
    /// number or bool (Terraform's rule).
    literal: bool,
    sensitive: bool,
    nullable: bool,
    /// The default, of the variable's type, as written.
    default: Option<(Value, Written<'a>)>,
    /// Where the type is written.
    type_at: Option<Span>,
}

fn resolve_one(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    inputs: &VarInputs,
    from_file: Option<&(Value, Origin<'_>)>,
) -> Option<Variable> {
    let what = format!("variable \"{}\"", decl.name);
    let s = Schema {
        what: &what,
        attrs: VAR_SCHEMA,
        required: &[],
        blocks: &["validation"],
    };
    super::blocks::check_decl(ev, decl, &s);
    let rules = validation::rules(ev, decl);
    let body = &decl.block.body;
    let description = super::blocks::opt_string(ev, decl.file, body, "description");
    let declared = declared(ev, decl)?;
    let name = &decl.name;
    let (value, origin) = match given(ev, decl, &declared, inputs, from_file) {
        Some(Ok(given)) => given,
        Some(Err(())) => return None,
        None => match &declared.default {
            Some((value, written)) => (value.clone(), Origin::Default(*written)),
            None => {
                let help = format!("give it a value with --var {name}=VALUE, a --var-file, CUTOVER_VAR_{name}, or a default");
                ev.error_help(
                    &decl.span,
                    format!("variable \"{name}\" has no value"),
                    help,
                );
                return None;
            }
        },
    };
    let (value, origin) = match (value, &declared.default) {
        // Terraform's rule: a null given for a variable that may not be
        // null takes its default, if it has one.
        (Value::Null, Some((d, written))) if !declared.nullable => {
            (d.clone(), Origin::Default(*written))
        }
        (Value::Null, None) if !declared.nullable => {
            let help = "give it a value other than null, or a default (which a null then takes)";
            report(
                ev,
                name,
                &origin,
                &[],
                "the value is null, and the variable is declared `nullable = false`",
                Some(help.to_owned()),
            );
            return None;
        }
        given => (given.0, origin),
    };
    // The validations see the value as the rest of the configuration will.
    let addr = Address::Variable(name.clone());
    ev.values.insert(addr.clone(), value.clone());
    if declared.sensitive {
        ev.marks_insert(addr.clone(), Marks::sensitive(format!("var.{name}")));
    }
    if !validation::check(ev, decl, &rules, &origin) {
        ev.values.remove(&addr);
        ev.marks.remove(&addr);
        return None;
    }
    Some(Variable {
        name: name.clone(),
        description,
        var_type: declared.var_type,
        sensitive: declared.sensitive,
        nullable: declared.nullable,
        value: to_json(&value),
        span: decl.span.clone(),
    })
}

/// Read the `type`, `sensitive`, `nullable` and `default` of `decl`;
/// `None` when one is wrong (reported).
fn declared<'a>(ev: &mut Evaluator<'_>, decl: &Decl<'a>) -> Option<Declared<'a>> {
    let body = &decl.block.body;
    let type_attr = body.get_attribute("type");
    let var_type = match type_attr {
        Some(attr) => types::parse(ev, decl.file, &attr.value),
        None => Some(VarType::Any),
    };
    let sensitive = super::blocks::opt_bool(ev, decl.file, body, "sensitive").unwrap_or(false);
    let nullable = super::blocks::opt_bool(ev, decl.file, body, "nullable").unwrap_or(true);
    let var_type = var_type?;
    let mut declared = Declared {
        literal: type_attr.is_none() || var_type.is_primitive(),
        var_type,
        sensitive,
        nullable,
        default: None,
        type_at: type_attr.map(|a| ev.span_of(decl.file, &a.value)),
    };
    let Some(attr) = body.get_attribute("default") else {
        return Some(declared);
    };
    let span = ev.span_of(decl.file, &attr.value);
    if !super::refs::scan(&attr.value).refs.is_empty() {
        ev.error(&span, "a variable's default cannot refer to other values");
        return None;
    }
    let e = ev.eval(decl.file, &attr.value)?;
    let value = match convert(&e.value, &declared.var_type) {
        Ok(v) => v,
        Err(m) => {
            // The type is in the same block: no help is needed to find it.
            let origin = Origin::Default(Written {
                file: decl.file,
                expr: &attr.value,
            });
            report(
                ev,
                &decl.name,
                &origin,
                m.steps(),
                &m.shown(sensitive),
                None,
            );
            return None;
        }
    };
    if value.is_null() && !nullable {
        ev.error_help(
            &span,
            "a null default is not valid when the variable is declared `nullable = false`",
            "remove the default (a value must then be given) or give one other than null",
        );
        return None;
    }
    let written = Written {
        file: decl.file,
        expr: &attr.value,
    };
    declared.default = Some((value, written));
    Some(declared)
}

/// The value given for `decl` from outside the configuration, converted to
/// its type: `None` when none is given, `Err` when it is wrong (reported).
fn given<'a>(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    declared: &Declared<'_>,
    inputs: &VarInputs,
    from_file: Option<&(Value, Origin<'a>)>,
) -> Option<Result<(Value, Origin<'a>), ()>> {
    let name = &decl.name;
    let (value, origin) = if let Some((_, raw)) = inputs.cli.iter().rev().find(|(n, _)| n == name) {
        let shown = if declared.sensitive {
            "..."
        } else {
            raw.as_str()
        };
        (from_string(raw, declared), Origin::Cli(shown.to_owned()))
    } else if let Some((value, origin)) = from_file {
        (Ok(value.clone()), origin.clone())
    } else if let Some(raw) = inputs.env.get(name) {
        (from_string(raw, declared), Origin::Env)
    } else {
        return None;
    };
    let converted = value.map_err(|(m, h)| (Vec::new(), m, h)).and_then(|v| {
        convert(&v, &declared.var_type).map_err(|m| {
            let help = type_help(name, declared);
            (m.steps().to_vec(), m.shown(declared.sensitive), help)
        })
    });
    Some(match converted {
        Ok(v) => Ok((v, origin)),
        Err((steps, message, help)) => {
            report(ev, name, &origin, &steps, &message, help);
            Err(())
        }
    })
}

/// For a message about a value given from outside the configuration:
/// where the variable's type is.
fn type_help(name: &str, declared: &Declared<'_>) -> Option<String> {
    let at = declared.type_at.as_ref()?;
    Some(format!(
        "the type of variable \"{name}\" is at {}",
        super::schema::at(at)
    ))
}

/// Report `message`, about the part that `steps` lead to of the value of
/// variable `name`, at `origin`.
pub(super) fn report(
    ev: &mut Evaluator<'_>,
    name: &str,
    origin: &Origin<'_>,
    steps: &[Step],
    message: &str,
    help: Option<String>,
) {
    let mut d = match origin {
        Origin::Default(written) => ev.map.diag(
            &written.span(ev, steps),
            format!("invalid default for variable \"{name}\": {message}"),
        ),
        Origin::HclFile(written) => ev.map.diag(
            &written.span(ev, steps),
            format!("invalid value for variable \"{name}\": {message}"),
        ),
        Origin::JsonFile(path) => Diagnostic::new(format!(
            "--var-file {}: invalid value for variable \"{name}\": {message}",
            path.display()
        )),
        Origin::Cli(shown) => Diagnostic::new(format!("--var {name}={shown}: {message}")),
        Origin::Env => Diagnostic::new(format!("CUTOVER_VAR_{name}: {message}")),
    };
    d.help = help;
    ev.diags.push(d);
}

/// A `--var` or `CUTOVER_VAR_name` string as a value, to be converted to
/// the variable's type: the string itself, or the value of the HCL
/// expression it holds (see [`Declared::literal`]). `Err`: the message and
/// a hint, showing nothing of a sensitive value.
fn from_string(raw: &str, declared: &Declared<'_>) -> Result<Value, (String, Option<String>)> {
    if declared.literal {
        return Ok(Value::String(raw.to_owned()));
    }
    let help = "the value of a variable whose type is not string, number or bool is an HCL expression: [\"a\", \"b\"], { key = \"value\" }, strings in quotes".to_owned();
    let hidden = declared.sensitive;
    let expr = hcl_edit::parser::parse_expr(raw).map_err(|e| {
        let message = match hidden {
            true => "not a valid HCL value (not shown: the variable is sensitive)".to_owned(),
            false => format!("not a valid HCL value: {}", e.message()),
        };
        (message, Some(help.clone()))
    })?;
    let prepared = super::rewrite::prepare(expr);
    let mut value = super::lazy::evaluate_alone(&prepared, functions::NAMES).map_err(|f| {
        let message = match hidden {
            true => "cannot evaluate it (not shown: the variable is sensitive)".to_owned(),
            false => format!("cannot evaluate it: {}", f.message),
        };
        (message, Some(help.clone()))
    })?;
    super::key_order::sort_value(&mut value);
    Ok(value)
}

#[cfg(test)]
mod tests;
