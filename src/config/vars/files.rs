//! `--var-file` files: HCL `name = value` arguments, or a JSON object.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hcl::Value;
use hcl_edit::structure::Body;

use super::super::diag::Diagnostic;
use super::super::eval::{from_json, Evaluator};
use super::super::schema;
use super::super::source::{did_you_mean, SourceMap};
use super::super::{parse, VarInputs};
use super::{Origin, Written};

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

/// The value of each variable named in the var-files (later files win).
pub(super) fn file_values<'f>(
    ev: &mut Evaluator<'_>,
    files: &'f [(PathBuf, VarFile)],
    declared: &[&str],
) -> BTreeMap<String, (Value, Origin<'f>)> {
    let mut out = BTreeMap::new();
    for (path, file) in files {
        match file {
            VarFile::Json(obj) => {
                for (name, value) in obj {
                    if !declared.contains(&name.as_str()) {
                        let mut d = Diagnostic::new(format!(
                            "--var-file {}: no variable \"{name}\" is declared",
                            path.display()
                        ));
                        d.help = did_you_mean(name, declared.iter().copied());
                        ev.diags.push(d);
                        continue;
                    }
                    out.insert(name.clone(), (from_json(value), Origin::JsonFile(path)));
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
                    if let Some(e) = ev.eval(path, &attr.value) {
                        let written = Written {
                            file: path,
                            expr: &attr.value,
                        };
                        out.insert(name.to_string(), (e.value, Origin::HclFile(written)));
                    }
                }
            }
        }
    }
    out
}
