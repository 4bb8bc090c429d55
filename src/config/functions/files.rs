//! `file`, `fileexists` and `templatefile`, as Terraform's, with one rule
//! of cutover's: a relative path is read from the configuration directory
//! and may not lead outside it (`../secrets`, or a link to elsewhere);
//! a path outside is read only when it is written absolute (`~/` counts,
//! as in Terraform), so that reading one is always visible in the
//! configuration.

use std::path::{Component, Path, PathBuf};

use hcl::eval::FuncArgs;
use hcl::Value;
use hcl_edit::expr::Expression;
use hcl_edit::template::HeredocTemplate;
use hcl_edit::Ident;

use super::str_arg;
use crate::config::lazy::{self, Frame};
use crate::config::rewrite;

/// The file `path` names, checked against the rule above. `Ok(None)` when
/// nothing is there.
fn locate(path: &str) -> Result<Option<PathBuf>, String> {
    let frame = lazy::current();
    let dir = frame
        .dir
        .as_deref()
        .ok_or("no configuration directory to read files from")?;
    let expanded = match path.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(|home| Path::new(&home).join(rest))
            .ok_or("cannot expand `~`: HOME is not set")?,
        None => PathBuf::from(path),
    };
    if expanded.is_absolute() {
        return Ok(expanded.exists().then_some(expanded));
    }
    let outside = || {
        format!(
            "{path:?} is outside the configuration directory {}; a file outside it is read only when its path is absolute",
            dir.display()
        )
    };
    // Lexically first (the file may not exist), then through links.
    let mut depth = 0i32;
    for c in expanded.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(outside());
        }
    }
    let joined = dir.join(&expanded);
    if !joined.exists() {
        return Ok(None);
    }
    let real = joined
        .canonicalize()
        .map_err(|e| format!("{path:?}: {e}"))?;
    let real_dir = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if !real.starts_with(&real_dir) {
        return Err(outside());
    }
    Ok(Some(joined))
}

/// The text of the file `path` names: UTF-8, or an error at the place of
/// its first bad byte.
fn read(path: &str) -> Result<String, String> {
    let found = locate(path)?.ok_or_else(|| {
        format!("no file exists at {path:?}; it must be there when the configuration is read")
    })?;
    if found.is_dir() {
        return Err(format!("{path:?} is a directory, not a file"));
    }
    crate::config::read_text(&found, Path::new(path)).map_err(|d| match &d.span {
        Some(s) => format!("{}:{}:{}: {}", path, s.line, s.column, d.message),
        None => d.message.clone(),
    })
}

pub(super) fn file(args: FuncArgs) -> Result<Value, String> {
    read(&str_arg(&args, 0)).map(Value::String)
}

/// Whether a regular file is at `path`; something else there (a
/// directory) is an error, as Terraform's.
pub(super) fn fileexists(args: FuncArgs) -> Result<Value, String> {
    let path = &*str_arg(&args, 0);
    match locate(path)? {
        None => Ok(Value::Bool(false)),
        Some(p) if p.is_file() => Ok(Value::Bool(true)),
        Some(_) => Err(format!("{path:?} is not a regular file")),
    }
}

/// The file `path` rendered as a template with the variables of `vars`,
/// and every function but `templatefile` itself.
pub(super) fn templatefile(args: FuncArgs) -> Result<Value, String> {
    let path = &*str_arg(&args, 0);
    let outer = lazy::current();
    if outer.in_template {
        return Err("cannot recursively call templatefile from inside another template".into());
    }
    let vars = match &args[1] {
        Value::Object(map) => map.clone(),
        other => {
            return Err(format!(
                "the variables must be a map, not a {}",
                super::type_name(other)
            ))
        }
    };
    if let Some(bad) = vars.keys().find(|k| !is_variable_name(k)) {
        return Err(format!(
            "invalid template variable name {bad:?}: must start with a letter, followed by zero or more letters, digits, and underscores"
        ));
    }
    let text = read(path)?;
    let template = hcl_edit::parser::parse_template(&text).map_err(|e| {
        let at = e.location();
        format!("{path}:{}:{}: {}", at.line(), at.column(), e.message())
    })?;
    let expr = Expression::from(HeredocTemplate::new(Ident::new("EOT"), template));
    let prepared = rewrite::prepare(expr);
    let frame = Frame {
        vars: vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        thunks: prepared.thunks.clone(),
        dir: outer.dir.clone(),
        in_template: true,
    };
    let names: Vec<(&str, Value)> = vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    lazy::with_frame(frame, || lazy::evaluate(&prepared, names, super::NAMES)).map_err(|f| {
        let place = f.range.map_or(String::new(), |r| {
            let before = &text[..r.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!(":{line}:{column}")
        });
        // Not quoted: the whole template (as the heredoc it is read as).
        let message = f
            .message
            .split(" in expression `<<EOT\n")
            .next()
            .unwrap_or_default();
        let message = match message.strip_prefix("undefined variable `") {
            Some(rest) => format!(
                "the variables have no key {:?}",
                rest.split('`').next().unwrap_or_default()
            ),
            None => message.to_owned(),
        };
        format!("in {path}{place}: {message}")
    })
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic())
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}
