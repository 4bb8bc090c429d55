//! What every command needs: the loaded configuration (diagnostics printed
//! when it fails), the state path, and whether to use colour.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use super::Global;
use crate::config::{self, Loaded, VarInputs};
use crate::render::Style;
use crate::state::model::State;

/// A loaded configuration and where its state lives.
pub struct Context {
    /// The configuration.
    pub loaded: Loaded,
    /// The state file's path.
    pub state_path: PathBuf,
}

/// Why a command stops after printing its own diagnostics.
#[derive(Debug, thiserror::Error)]
#[error("{count} error(s) in the configuration")]
pub struct ReportedErrors {
    /// How many were printed.
    pub count: usize,
}

/// Parse `--var name=value` flags.
pub fn var_inputs(g: &Global) -> anyhow::Result<VarInputs> {
    let mut cli = Vec::new();
    for v in &g.vars {
        let Some((name, value)) = v.split_once('=') else {
            bail!("--var {v}: expected NAME=VALUE");
        };
        if name.trim().is_empty() {
            bail!("--var {v}: the variable name is empty");
        }
        cli.push((name.trim().to_string(), value.to_string()));
    }
    Ok(VarInputs {
        cli,
        files: g.var_files.clone(),
        env: Default::default(),
    }
    .with_process_env())
}

/// Load the configuration; on errors print every diagnostic and fail.
pub fn load(g: &Global, engine: Option<&crate::engine::Engine>) -> anyhow::Result<Context> {
    if !g.dir.is_dir() {
        bail!("-C {}: no such directory", g.dir.display());
    }
    let inputs = var_inputs(g)?;
    // Providers resolve relative paths against the config directory and
    // HAProxy names maps by absolute path: use the canonical directory.
    let dir = g
        .dir
        .canonicalize()
        .with_context(|| format!("-C {}: cannot resolve the directory", g.dir.display()))?;
    let loaded = match config::load(&dir, &inputs) {
        Ok(l) => l,
        Err(diags) => {
            err!("{diags}");
            return Err(ReportedErrors {
                count: diags.0.len(),
            }
            .into());
        }
    };
    if let Some(engine) = engine {
        let diags = engine.validate(&loaded);
        if !diags.0.is_empty() {
            err!("{diags}");
            return Err(ReportedErrors {
                count: diags.0.len(),
            }
            .into());
        }
    }
    let state_path = dir.join(&loaded.config.settings.state_path);
    Ok(Context { loaded, state_path })
}

/// Read the state file, if there is one.
pub fn read_state(path: &Path) -> anyhow::Result<Option<State>> {
    crate::state::load(path)
        .with_context(|| format!("failed to read state file {}", path.display()))
}

/// Colour only on a terminal, and never with `--no-color` or `NO_COLOR`.
pub fn style(g: &Global) -> Style {
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    Style {
        color: !g.no_color && !no_color_env && std::io::stdout().is_terminal(),
    }
}

/// Refuse to start an apply whose state could not be recorded: a state file
/// that cannot be written would lose what the apply did, so this is checked
/// before anything live changes. Creates, syncs and removes a probe file
/// beside the state, as the atomic write will. The probe has one fixed name,
/// so a probe left by a run killed at that moment is removed by the next run
/// rather than piling up; it is created exclusively (never through a symlink
/// or into someone else's file), and when a leftover cannot be removed a
/// probe of a random name is used instead.
pub fn check_state_writable(path: &Path) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fixed = dir.join(WRITE_PROBE);
    // A leftover (or a symlink planted there): remove the name itself.
    let _ = std::fs::remove_file(&fixed);
    let created = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&fixed)
    {
        Ok(file) => Ok((file, fixed)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => tempfile::Builder::new()
            .prefix(WRITE_PROBE)
            .tempfile_in(dir)
            .and_then(|f| f.keep().map_err(|e| e.error)),
        Err(e) => Err(e),
    };
    let probe = created.and_then(|(mut file, probe_path)| {
        let written = (|| {
            std::io::Write::write_all(&mut file, b"x")?;
            file.sync_all()?;
            // The file itself must be replaceable too: an immutable file or a
            // read-only bind mount of just the file refuses an open for
            // writing (opening to append changes nothing).
            if path.exists() {
                std::fs::OpenOptions::new().append(true).open(path)?;
            }
            Ok(())
        })();
        let removed = std::fs::remove_file(&probe_path);
        written.and(removed)
    });
    match probe {
        Ok(()) => Ok(()),
        Err(e) => bail!(
            "cannot write the state file {} ({e}): refusing to apply, because what the apply does could not be recorded; nothing was changed",
            path.display()
        ),
    }
}

/// The probe file of [`check_state_writable`], beside the state.
const WRITE_PROBE: &str = ".cutover-write-check";

/// Ask `question` on the terminal; only `yes` confirms. Without a terminal,
/// refuse to guess: fail with `no_terminal` (which says how to approve). A
/// signal while waiting for the answer is a no.
pub async fn confirm(
    question: &str,
    no_terminal: &str,
    stop: &mut crate::engine::StopReceiver,
) -> anyhow::Result<bool> {
    use std::io::BufRead;
    if !std::io::stdin().is_terminal() {
        bail!("{no_terminal}");
    }
    out!("\n{question} Only 'yes' will be accepted: ");
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    });
    match super::signals::or_stopped(stop, read).await {
        Ok(line) => Ok(line??.trim() == "yes"),
        Err(_) => {
            outln!();
            Ok(false)
        }
    }
}

/// A duration flag (`--lock-timeout 30s`), in the grammar every duration of
/// cutover uses (`500ms`, `1.5s`, `1m30s`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    cutover_provider::parse_duration(text).map_err(|e| format!("{e} (e.g. 30s, 500ms, 1m30s)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`.
    fn names_in(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    #[test]
    fn a_probe_left_by_a_killed_run_is_removed_by_the_next_check() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("cutover.state.json");
        std::fs::write(&state, "{}").unwrap();
        // What a run killed between writing and removing its probe leaves.
        std::fs::write(dir.path().join(WRITE_PROBE), "x").unwrap();
        check_state_writable(&state).unwrap();
        assert_eq!(names_in(dir.path()), ["cutover.state.json"]);
        assert_eq!(std::fs::read_to_string(&state).unwrap(), "{}");
    }

    #[test]
    fn a_symlink_in_the_probe_s_place_is_removed_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("cutover.state.json");
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(WRITE_PROBE)).unwrap();
        check_state_writable(&state).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        assert!(std::fs::symlink_metadata(dir.path().join(WRITE_PROBE)).is_err());
    }

    #[test]
    fn a_probe_name_that_cannot_be_cleared_falls_back_to_a_random_name() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("cutover.state.json");
        // remove_file cannot remove a directory: the fixed name stays taken.
        std::fs::create_dir(dir.path().join(WRITE_PROBE)).unwrap();
        check_state_writable(&state).unwrap();
        assert_eq!(
            names_in(dir.path()),
            [WRITE_PROBE],
            "only the directory is left"
        );
    }

    #[test]
    fn a_state_that_cannot_be_opened_for_writing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the state file should be: it cannot be opened
        // for writing, whoever runs the test (root included).
        let state = dir.path().join("cutover.state.json");
        std::fs::create_dir(&state).unwrap();
        let err = check_state_writable(&state).unwrap_err().to_string();
        assert!(err.contains("cannot write the state file"), "{err}");
        assert!(!dir.path().join(WRITE_PROBE).exists());
    }
}
