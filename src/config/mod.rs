//! The config layer: HCL files -> typed desired state ([`model::Config`]).
//!
//! Every `*.hcl` file of the configuration directory is read in name order,
//! parsed with hcl-edit (which keeps spans), and evaluated attribute by
//! attribute with hcl-rs, so every mistake can be reported at its place.

mod blocks;
pub mod ca;
pub mod checks;
mod deps;
pub mod diag;
mod environment;
mod eval;
pub mod format;
mod functions;
mod instances;
mod key_order;
mod lazy;
mod literal;
pub mod marks;
mod moved;
pub use parse::read_text;
pub mod model;
mod notify;
pub use notify::MAX_NOTIFY_TIMEOUT;
mod parse;
mod refs;
mod rewrite;
mod router_checks;
mod schema;
mod source;
mod types;
mod vars;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics, Sources};
pub use model::Config;

use eval::Evaluator;
use model::Address;
use schema::Decls;
use source::SourceMap;

/// Variable values from outside the configuration, by precedence:
/// `--var` over `--var-file` over `CUTOVER_VAR_name` over the default.
#[derive(Debug, Clone, Default)]
pub struct VarInputs {
    /// `--var name=value`, in the order given (later wins).
    pub cli: Vec<(String, String)>,
    /// `--var-file FILE`, in the order given (later wins).
    pub files: Vec<PathBuf>,
    /// `CUTOVER_VAR_name` values from the process environment.
    pub env: BTreeMap<String, String>,
}

impl VarInputs {
    /// Collect `CUTOVER_VAR_*` from the process environment.
    pub fn with_process_env(mut self) -> Self {
        for (k, v) in std::env::vars() {
            if let Some(name) = k.strip_prefix("CUTOVER_VAR_") {
                self.env.insert(name.to_string(), v);
            }
        }
        self
    }
}

/// A loaded configuration with the sources it came from (kept for
/// diagnostics found after loading, e.g. by a provider's validation).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The desired state.
    pub config: Config,
    /// The text of every file read.
    pub sources: Sources,
}

/// Load and evaluate every `*.hcl` file in `dir`.
///
/// Every problem that can be found in one run is reported: evaluation goes
/// on after an error, skipping only what depends on a value that failed.
pub fn load(dir: &Path, inputs: &VarInputs) -> Result<Loaded, Diagnostics> {
    let mut diags = Vec::new();
    let texts = parse::read_dir(dir, &mut diags);
    load_texts(dir, texts, diags, inputs)
}

/// Parse and evaluate configuration files already in memory, as [`load`]
/// does after reading them: `files` are (name relative to `dir`, text), in
/// the order they are to be read; `dir` is only recorded in the [`Config`].
/// Lets the config layer be checked (and fuzzed) without a file system.
pub fn load_sources(
    dir: &Path,
    files: Vec<(PathBuf, String)>,
    inputs: &VarInputs,
) -> Result<Loaded, Diagnostics> {
    load_texts(dir, files, Vec::new(), inputs)
}

/// One file, `main.hcl`, in memory (for tests).
#[cfg(test)]
pub(crate) fn load_str(text: &str, inputs: &VarInputs) -> Result<Loaded, Diagnostics> {
    let files = vec![(PathBuf::from("main.hcl"), text.to_owned())];
    load_sources(Path::new("."), files, inputs)
}

/// [`load_sources`] with the problems already met while reading the files.
fn load_texts(
    dir: &Path,
    texts: Vec<(PathBuf, String)>,
    mut diags: Vec<Diagnostic>,
    inputs: &VarInputs,
) -> Result<Loaded, Diagnostics> {
    let mut map = SourceMap::default();
    let files = parse::parse_all(texts, &mut map, &mut diags);
    let var_files = vars::read_var_files(inputs, &mut map, &mut diags);
    let decls = schema::classify(&files, &map, &mut diags);
    let mut ev = Evaluator::new(&map);
    ev.diags = diags;
    ev.dir = dir.to_path_buf();
    ev.declared = deps::declared(&decls);
    let mut config = Config {
        dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.variables = vars::resolve(&mut ev, &decls, inputs, &var_files);
    let graph = deps::build(&decls, &map);
    ev.diags.extend(graph.cycles);
    for addr in &graph.order {
        evaluate_block(&mut ev, &decls, addr, &mut config);
    }
    config.references = instances::instance_edges(&graph.edges, &ev.expanded);
    config.settings = blocks::settings(&mut ev, decls.settings.as_ref());
    // Nothing refers to a `notify` block, and it may refer to anything
    // evaluated above.
    for (name, decl) in &decls.notify {
        if let Some(block) = notify::notify(&mut ev, decl) {
            config.notify.insert(name.clone(), block);
        }
    }
    config.moves = moved::moves(&mut ev, &decls.moved, &config);
    repeated_endpoints(&mut ev, &config);
    let mut diags = std::mem::take(&mut ev.diags);
    drop(ev);
    if diags.is_empty() {
        return Ok(Loaded {
            config,
            sources: map.into_sources(),
        });
    }
    // Flag problems first, then in file order; the sort is stable, so two
    // problems at one place keep the order they were found in.
    diags.sort_by_key(|d| d.span.as_ref().map(|s| (s.file.clone(), s.start)));
    diags.dedup();
    Err(Diagnostics(diags))
}

/// Evaluate one block (already-resolved variables are skipped).
fn evaluate_block(ev: &mut Evaluator<'_>, decls: &Decls<'_>, addr: &Address, config: &mut Config) {
    match addr {
        Address::Variable(_) => {}
        Address::Local(name) => {
            let Some(local) = decls.locals.get(name) else {
                return;
            };
            if let Some(e) = ev.eval(local.file, &local.attr.value) {
                config.locals.insert(name.clone(), eval::to_json(&e.value));
                ev.values.insert(addr.clone(), e.value);
                ev.marks_insert(addr.clone(), e.marks);
            }
        }
        Address::Environment(name) => {
            let Some(decl) = decls.environments.get(name) else {
                return;
            };
            instances::build_each(ev, decl, Address::Environment, |ev, d| {
                if let Some(env) = environment::build(ev, d) {
                    config.environments.insert(env.name.clone(), env);
                }
            });
        }
        Address::Router(name) => {
            let Some(decl) = decls.routers.get(name) else {
                return;
            };
            instances::build_each(ev, decl, Address::Router, |ev, d| {
                if let Some(router) = blocks::router(ev, d) {
                    config.routers.insert(router.name.clone(), router);
                }
            });
        }
        Address::Output(name) => {
            if let Some(output) = decls.outputs.get(name).and_then(|d| blocks::output(ev, d)) {
                config.outputs.insert(name.clone(), output);
            }
        }
    }
}

// The tests of `load` as a whole live apart: they are most of the config
// layer's tests and would drown this file.
#[cfg(test)]
mod backtracking_tests;
#[cfg(test)]
mod object_keys_tests;
#[cfg(test)]
mod tests;

/// An endpoint listed twice by one colour is a mistake (its checks and a
/// router's servers would count it twice). (Two colours on one endpoint are
/// not refused: the scale benchmark serves thousands of colours from one
/// server; see docs/config-language.md.)
fn repeated_endpoints(ev: &mut Evaluator<'_>, config: &Config) {
    for env in config.environments.values() {
        let mut seen = std::collections::BTreeSet::new();
        for endpoint in &env.endpoints {
            if !seen.insert(endpoint.as_str()) {
                ev.error(
                    &env.span,
                    format!(
                        "environment \"{}\" lists the endpoint {endpoint} twice",
                        env.name
                    ),
                );
            }
        }
    }
}
