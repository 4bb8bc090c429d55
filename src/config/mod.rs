//! The config layer: HCL files -> typed desired state ([`model::Config`]).
//!
//! Every `*.hcl` file of the configuration directory is read in name order,
//! parsed with hcl-edit (which keeps spans), and evaluated attribute by
//! attribute with hcl-rs, so every mistake can be reported at its place.

pub mod diag;
pub mod model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics, Sources};
pub use model::Config;

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
pub fn load(dir: &Path, inputs: &VarInputs) -> Result<Loaded, Diagnostics> {
    let _ = (dir, inputs);
    Err(Diagnostics(vec![Diagnostic::new("config loading is not implemented yet")]))
}
