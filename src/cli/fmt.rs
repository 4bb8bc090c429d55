//! `cutover fmt [--check] [--diff] [FILE...]`: rewrite the configuration files
//! in canonical form ([`crate::config::format`]), or, with `--check`, only
//! say which would change (exit 1), for CI.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use super::{Global, EXIT_ERROR, EXIT_OK};
use crate::config::format::format_source;

/// Flags of `cutover fmt`.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Change nothing: list the files that are not formatted and exit 1 if
    /// there are any.
    #[arg(long)]
    pub check: bool,
    /// Print a unified diff of the changes.
    #[arg(long)]
    pub diff: bool,
    /// The files to format (relative to -C DIR); default: every *.hcl file
    /// in the configuration directory.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Run `cutover fmt`. Exit 0 when every file is (now) formatted, 1 when a
/// file does not parse or cannot be written, or, with `--check`, when any
/// file would change.
pub fn run(g: &Global, args: FmtArgs) -> anyhow::Result<u8> {
    let files = if args.files.is_empty() {
        hcl_files(&g.dir)?
    } else {
        args.files.iter().map(|f| g.dir.join(f)).collect()
    };
    let mut failed = false;
    let mut unformatted = false;
    for path in &files {
        let shown = path.strip_prefix(&g.dir).unwrap_or(path);
        let text = match crate::config::read_text(path, shown) {
            Ok(text) => text,
            Err(diag) => {
                err!("{diag}");
                failed = true;
                continue;
            }
        };
        let formatted = match format_source(shown, &text) {
            Ok(f) => f,
            Err(diag) => {
                err!("{diag}");
                failed = true;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        unformatted = true;
        outln!("{}", shown.display());
        if args.diff {
            let name = shown.display().to_string();
            let diff = similar::TextDiff::from_lines(&text, &formatted);
            out!(
                "{}",
                diff.unified_diff()
                    .header(&name, &format!("{name} (formatted)"))
            );
        }
        if !args.check {
            // Keeps the file's mode (a configuration file always exists here).
            crate::state::files::write_atomically(
                path,
                formatted.as_bytes(),
                ".cutover-fmt-",
                0o644,
            )
            .with_context(|| format!("failed to write {}", path.display()))?;
        }
    }
    Ok(if failed || (args.check && unformatted) {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

/// Every `*.hcl` file of `dir`, in name order, as the config loader reads them.
fn hcl_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = fs::read_dir(dir)
        .with_context(|| format!("cannot read the configuration directory {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "hcl"))
        .collect::<Vec<_>>();
    files.sort();
    Ok(files)
}
