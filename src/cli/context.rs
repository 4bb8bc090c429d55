//! What every command needs: the loaded configuration (diagnostics printed
//! when it fails), the state path, and whether to use colour.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context as _};

use super::Global;
use crate::config::{self, Loaded, VarInputs};
use crate::render::Style;
use crate::state::backend::{Backend, Lock};
use crate::state::model::State;
use crate::state::Access;

/// A loaded configuration and where its state lives.
pub struct Context {
    /// The configuration.
    pub loaded: Loaded,
    /// The local state file's path (the state itself when the
    /// configuration names no shared backend).
    pub state_path: PathBuf,
    /// Where the state lives (state/backend.rs).
    pub backend: Box<dyn Backend>,
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

/// Load the configuration; on errors print every diagnostic and fail. A
/// local state file that was never moved to the shared backend the
/// configuration names is refused ([`check_migrated`]).
pub fn load(g: &Global, engine: Option<&crate::engine::Engine>) -> anyhow::Result<Context> {
    let ctx = load_with(g, engine)?;
    check_migrated(&ctx)?;
    Ok(ctx)
}

/// [`load`] for a command that never reads the state (`validate`,
/// `graph`): nothing is asked of a shared backend.
pub fn load_config(g: &Global, engine: Option<&crate::engine::Engine>) -> anyhow::Result<Context> {
    load_with(g, engine)
}

/// [`load`] without the check of a state left to migrate (`state migrate`).
pub fn load_unchecked(g: &Global) -> anyhow::Result<Context> {
    load_with(g, None)
}

/// With a shared backend configured, the local state file must not be the
/// only state: every command would start a new, empty state in the backend
/// (a new lineage) while the real one sits in the file. A file beside a
/// backend that holds the same lineage is a leftover copy: said, not fatal.
fn check_migrated(ctx: &Context) -> anyhow::Result<()> {
    let backend = ctx.backend.as_ref();
    if backend.kind() == "local" || !ctx.state_path.exists() {
        return Ok(());
    }
    let local = crate::state::backend::LocalFile::new(&ctx.state_path);
    let file = crate::state::load(&ctx.state_path)
        .with_context(|| format!("failed to read the state file {}", ctx.state_path.display()))?;
    let shared = backend.read_state()?;
    match (file, shared) {
        (Some(file), None) => bail!(
            "the configuration names {}, which holds no state yet, but the state of this configuration is the local file {} (lineage {}, serial {}): move it there first, keeping its lineage and serial, with\n  cutover state migrate --to {}\n(or remove the `backend` block to keep using the file)",
            backend.describe(),
            local.describe(),
            file.lineage,
            file.serial,
            backend.kind()
        ),
        (Some(file), Some(shared)) => {
            let same = file.lineage == shared.lineage;
            errln!(
                "warning: {} is not used: the configuration keeps its state in {}{}; delete the file (or commit its removal)",
                local.describe(),
                backend.describe(),
                if same {
                    String::new()
                } else {
                    format!(" (another lineage: {} there, {} in the file)", shared.lineage, file.lineage)
                }
            );
            Ok(())
        }
        (None, _) => Ok(()),
    }
}

fn load_with(g: &Global, engine: Option<&crate::engine::Engine>) -> anyhow::Result<Context> {
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
    let backend = crate::state::backend::configured(&loaded.config.settings, &dir, &state_path)?;
    Ok(Context {
        loaded,
        state_path,
        backend,
    })
}

/// Read the state file, if there is one, after folding into it what an
/// interrupted apply left beside it (`state::open`). `lock`: the state lock,
/// when the command holds it; without it the fold takes the lock only if it
/// is free. What was folded, removed or left is said on stderr, so that the
/// views on stdout (`--json`, `--markdown`) stay as they are.
pub fn read_state(backend: &dyn Backend, lock: Option<&Lock>) -> anyhow::Result<Option<State>> {
    let access = match lock {
        Some(lock) => Access::Locked(lock),
        None => Access::Read,
    };
    // Every error of the state layer names the state already.
    let opened = crate::state::open(backend, access)?;
    for message in opened.messages() {
        errln!("{message}");
    }
    Ok(opened.state)
}

/// The state for a command that plans or changes something: [`read_state`],
/// then refused when it is not this configuration's — of another lineage
/// than `cutover { lineage = "..." }` pins, or, without a pin, a state that
/// records environments and routers none of which the configuration
/// declares (two configurations pointed at one shared state: planning would
/// destroy the other's colours).
pub fn state_for(ctx: &Context, lock: Option<&Lock>) -> anyhow::Result<Option<State>> {
    let state = read_state(ctx.backend.as_ref(), lock)?;
    let Some(st) = &state else {
        return Ok(state);
    };
    let config = &ctx.loaded.config;
    let place = ctx.backend.describe();
    if let Some(pinned) = &config.settings.lineage {
        if *pinned != st.lineage {
            bail!(
                "{} has lineage {}, but this configuration manages lineage {pinned} (`cutover {{ lineage = ... }}`): it is another configuration's state; point this configuration at its own state (`name` for pg, `branch` or `path` for git, `state` for a file)",
                crate::state::named(&place),
                st.lineage
            );
        }
        return Ok(state);
    }
    let recorded: Vec<String> = st
        .environments
        .keys()
        .map(|n| format!("environment.{n}"))
        .chain(st.routers.keys().map(|n| format!("router.{n}")))
        .collect();
    // (A record a `moved` block renames counts as declared: its block or
    // instance is the configuration's under another address.)
    let moved_from = |n: &str, of: fn(&crate::addr::Address) -> Option<&str>| {
        config
            .moves
            .iter()
            .filter_map(|m| of(&m.from))
            .any(|f| f == n || f == cutover_provider::name::block_of(n))
    };
    fn env_of(a: &crate::addr::Address) -> Option<&str> {
        match a {
            crate::addr::Address::Environment(n) => Some(n),
            _ => None,
        }
    }
    fn router_of(a: &crate::addr::Address) -> Option<&str> {
        match a {
            crate::addr::Address::Router(n) => Some(n),
            _ => None,
        }
    }
    let declared = |address: &String| match address.split_once('.') {
        Some(("environment", n)) => config.environments.contains_key(n) || moved_from(n, env_of),
        Some(("router", n)) => config.routers.contains_key(n) || moved_from(n, router_of),
        _ => false,
    };
    let configured = !config.environments.is_empty() || !config.routers.is_empty();
    if configured && !recorded.is_empty() && !recorded.iter().any(declared) {
        // A block given `for_each` or `count` since: its records are under
        // the old address, which `moved` blocks carry over.
        let instance_of = |address: &String| {
            let (kind, name) = address.split_once('.')?;
            use cutover_provider::name::instances_in;
            let new = match kind {
                "environment" => instances_in(&config.environments, name).next()?.0,
                "router" => instances_in(&config.routers, name).next()?.0,
                _ => return None,
            };
            Some(format!("moved {{ from = {address}, to = {kind}.{new} }}"))
        };
        let moves: Vec<String> = recorded.iter().filter_map(instance_of).collect();
        if !moves.is_empty() {
            bail!(
                "{} records {} under addresses this configuration no longer has, while blocks of the same names now make instances (`for_each` or `count`): say which instance stands for each with `moved` blocks, e.g.\n  {}\n(without them a plan would destroy what serves now and make it again)",
                crate::state::named(&place),
                recorded.join(", "),
                moves.join("\n  ")
            );
        }
        let shown: Vec<&str> = recorded.iter().take(5).map(String::as_str).collect();
        let more = recorded.len().saturating_sub(shown.len());
        bail!(
            "{} (lineage {}) records {}{} — none of which this configuration declares: it looks like another configuration's state, and a plan would destroy what it records. Point this configuration at its own state (`name` for pg, `branch` or `path` for git, `state` for a file); if it really takes all of this state over, say so with `cutover {{ lineage = \"{}\" }}`",
            crate::state::named(&place),
            st.lineage,
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() },
            st.lineage
        );
    }
    Ok(state)
}

/// Take the state lock for `operation`, waiting up to `timeout` (the
/// command's `--lock-timeout`) and saying on stderr who holds it while it
/// waits.
pub fn lock(
    backend: &dyn Backend,
    operation: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<Lock> {
    let mut waiting = |holder: &crate::state::LockInfo| {
        errln!(
            "waiting up to {} for the state lock held by {}...",
            humantime::format_duration(timeout),
            holder.describe()
        );
    };
    Ok(backend.lock(operation, timeout, &mut waiting)?)
}

/// Release `lock` at the end of a command, saying on stderr when it stays
/// (a shared backend that cannot be reached, a git lock that keeps an
/// unfolded journal) and how to clear it. The command's outcome stands.
pub fn release(lock: Lock) {
    let id = lock.info().id.clone();
    if let Err(e) = lock.release() {
        let e = e.to_string();
        if e.contains("force-unlock") {
            errln!("warning: the state lock was not released: {e}");
        } else {
            errln!(
                "warning: the state lock was not released: {e}. Once the backend answers again, `cutover force-unlock {id}` clears it (and folds what the journal holds)"
            );
        }
    }
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
/// (under the state lock) before anything live changes
/// (`state::files::check_writable`).
pub fn check_state_writable(backend: &dyn Backend, lock: &Lock) -> anyhow::Result<()> {
    match backend.check_writable(lock) {
        Ok(()) => Ok(()),
        Err(e) => bail!(
            "cannot write {} ({e}): refusing to apply, because what the apply does could not be recorded; nothing was changed",
            crate::state::named(&backend.describe())
        ),
    }
}

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
