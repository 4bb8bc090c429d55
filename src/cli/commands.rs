//! The small commands: init, validate, show, output, state, graph,
//! force-unlock, completions. Each parses, calls a layer below, prints a view.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::{context, plan, Global, EXIT_ERROR, EXIT_OK};
use crate::plan::saved;
use crate::render;

/// Run `cutover init`.
pub async fn init(g: &Global) -> anyhow::Result<u8> {
    let engine = plan::engine_for(None);
    let ctx = context::load(g, Some(&engine))?;
    let cfg = &ctx.loaded.config;
    let backend = ctx.backend.as_ref();
    let existing = match context::state_for(&ctx, None)? {
        Some(st) => Some(st),
        None => {
            // Created under the lock, as every write of the state is; read
            // again once it is held, in case another run created it since.
            let lock = crate::state::backend::lock_now(backend, "init")?;
            match context::read_state(backend, Some(&lock))? {
                Some(st) => Some(st),
                None => {
                    let st = crate::state::new_state();
                    backend.write_state(&lock, None, &st)?;
                    outln!(
                        "Created state {} (lineage {}).",
                        backend.describe(),
                        st.lineage
                    );
                    None
                }
            }
        }
    };
    if let Some(st) = existing {
        outln!(
            "State {} exists (lineage {}, serial {}).",
            backend.describe(),
            st.lineage,
            st.serial
        );
    }
    outln!(
        "Configuration in {} is valid: {} environment(s), {} router(s).",
        g.dir.display(),
        cfg.environments.len(),
        cfg.routers.len()
    );
    if backend.kind() == "local" {
        outln!(
            "Commit {} with the configuration; the lock file {}.lock is never committed.",
            ctx.state_path.display(),
            ctx.state_path.display()
        );
    } else if cfg.settings.lineage.is_none() {
        // The state is shared: tie this configuration to it, so that a
        // configuration pointed at it by mistake is refused outright.
        if let Some(st) = context::read_state(backend, None)? {
            outln!(
                "To tie this configuration to this state, add `lineage = \"{}\"` to its `cutover {{}}` block.",
                st.lineage
            );
        }
    }
    outln!("Next: cutover plan");
    Ok(EXIT_OK)
}

/// Run `cutover validate`.
pub async fn validate(g: &Global) -> anyhow::Result<u8> {
    let engine = plan::engine_for(None);
    let ctx = context::load_config(g, Some(&engine))?;
    let cfg = &ctx.loaded.config;
    let notify = match cfg.notify.len() {
        0 => String::new(),
        n => format!(", {n} notify block(s)"),
    };
    outln!(
        "The configuration is valid: {} environment(s), {} router(s), {} output(s){notify}.",
        cfg.environments.len(),
        cfg.routers.len(),
        cfg.outputs.len()
    );
    Ok(EXIT_OK)
}

/// Flags of `cutover show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A saved plan to show; without it, the state is shown.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print markdown, for a pull-request comment.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
}

/// Run `cutover show`.
pub async fn show(g: &Global, args: ShowArgs) -> anyhow::Result<u8> {
    if let Some(file) = &args.plan_file {
        let planned = saved::read(file)?;
        if args.json {
            outln!("{}", render::json::plan(&planned.document));
        } else if args.markdown {
            out!("{}", render::markdown::plan(&planned.document));
        } else {
            plan::print_human(&planned, &context::style(g));
        }
        return Ok(EXIT_OK);
    }
    let ctx = context::load(g, None)?;
    let Some(st) = context::read_state(ctx.backend.as_ref(), None)? else {
        outln!(
            "No state yet at {}: nothing has been applied.",
            ctx.backend.describe()
        );
        return Ok(EXIT_OK);
    };
    if args.json {
        out!("{}", String::from_utf8_lossy(&crate::state::to_bytes(&st)));
    } else if args.markdown {
        out!("{}", render::markdown::state(&st));
    } else {
        outln!(
            "# state {} (lineage {}, serial {})",
            ctx.backend.describe(),
            st.lineage,
            st.serial
        );
        for address in render::state::state_list(&st).lines() {
            if let Some(text) = render::state::state_show(&st, address) {
                outln!();
                out!("{text}");
            }
        }
    }
    Ok(EXIT_OK)
}

/// Flags of `cutover output`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print only this output (its raw value).
    pub name: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `cutover output`.
pub async fn output(g: &Global, args: OutputArgs) -> anyhow::Result<u8> {
    let ctx = context::load(g, None)?;
    let outputs = &ctx.loaded.config.outputs;
    // Only what is marked is hidden, each part as its marker.
    let shown = |o: &crate::config::model::Output| o.marks.redact(&o.value);
    if let Some(name) = &args.name {
        let Some(o) = outputs.get(name) else {
            bail!(
                "no output named {name:?}; outputs: {}",
                outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        match shown(o) {
            serde_json::Value::String(s) if !args.json => outln!("{s}"),
            v => outln!("{}", serde_json::to_string_pretty(&v)?),
        }
        return Ok(EXIT_OK);
    }
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> = outputs
            .iter()
            .map(|(k, o)| {
                (
                    k.clone(),
                    serde_json::json!({ "value": shown(o), "sensitive": o.sensitive }),
                )
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&map)?);
    } else {
        for (k, o) in outputs {
            outln!("{k} = {}", serde_json::to_string(&shown(o))?);
        }
    }
    Ok(EXIT_OK)
}

/// `cutover state ...`
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the addresses in the state.
    List,
    /// Show one resource of the state.
    Show {
        /// An address such as `environment.green` or `router.public`.
        address: String,
    },
    /// Check that the state file is one an apply wrote, not a git merge of two.
    Check,
    /// Move the state between the local file and the configured shared
    /// backend, keeping its lineage and serial (docs/backends.md).
    Migrate {
        /// Where to: `pg` or `git` (the backend the configuration names,
        /// from the local file), or `local` (from that backend to the file).
        #[arg(long, value_enum)]
        to: super::migrate::Target,
    },
}

/// Run `cutover state ...`.
pub async fn state(g: &Global, cmd: StateCommand) -> anyhow::Result<u8> {
    if let StateCommand::Migrate { to } = cmd {
        return super::migrate::run(g, to).await;
    }
    let ctx = context::load(g, None)?;
    if let (StateCommand::Check, false) = (&cmd, ctx.backend.kind() == "local") {
        return check_shared(ctx.backend.as_ref());
    }
    if let StateCommand::Check = cmd {
        let report = crate::state::check::check(&ctx.state_path)?;
        out!("{report}");
        return Ok(if report.is_healthy() {
            EXIT_OK
        } else {
            EXIT_ERROR
        });
    }
    let Some(st) = context::read_state(ctx.backend.as_ref(), None)? else {
        bail!(
            "no state at {}: nothing has been applied yet",
            ctx.backend.describe()
        );
    };
    match cmd {
        StateCommand::List => out!("{}", render::state::state_list(&st)),
        StateCommand::Show { address } => match render::state::state_show(&st, &address) {
            Some(text) => out!("{text}"),
            None => {
                errln!("error: {address} is not in the state; `cutover state list` shows what is");
                return Ok(EXIT_ERROR);
            }
        },
        StateCommand::Check | StateCommand::Migrate { .. } => {
            unreachable!("handled above, before the state is loaded")
        }
    }
    Ok(EXIT_OK)
}

/// `state check` of a shared backend: no merge of two branches can happen
/// there (every write is a compare-and-swap), so what is left to check is
/// that the state parses and what an interrupted apply left (its journal),
/// folded as every command does.
fn check_shared(backend: &dyn crate::state::backend::Backend) -> anyhow::Result<u8> {
    let pending = crate::state::inspect(backend)?;
    let opened = crate::state::open(backend, crate::state::Access::Read)?;
    let Some(st) = &opened.state else {
        outln!("{}: no state yet.", backend.describe());
        return Ok(EXIT_OK);
    };
    outln!(
        "{}: lineage {}, serial {}.",
        backend.describe(),
        st.lineage,
        st.serial
    );
    for message in opened.messages() {
        outln!("{message}");
    }
    Ok(if pending.is_clean() {
        outln!("Nothing left by an interrupted apply.");
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

/// Flags of `cutover status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON (for dashboards).
    #[arg(long)]
    pub json: bool,
}

/// Run `cutover status`: exit 1 when something could not be read.
pub async fn status(g: &Global, args: StatusArgs) -> anyhow::Result<u8> {
    let (engine, ctx) = plan::engine_and_config(g, None, &plan::Choices::default())?;
    let state = context::state_for(&ctx, None)?;
    let status = engine.status(&ctx.loaded.config, state.as_ref()).await;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&status).expect("a status always serializes")
        );
    } else {
        out!("{}", render::status::status(&status));
    }
    Ok(if status.has_errors() {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

/// Run `cutover graph`: the configuration's references and the cut-over
/// ordering, in DOT.
pub async fn graph(g: &Global) -> anyhow::Result<u8> {
    let ctx = context::load_config(g, None)?;
    outln!("{}", crate::graph::config::dot(&ctx.loaded.config));
    Ok(EXIT_OK)
}

/// Flags of `cutover force-unlock`.
#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    /// The lock id, as printed by the error that names the holder.
    pub lock_id: String,
}

/// Run `cutover force-unlock`.
pub async fn force_unlock(g: &Global, args: ForceUnlockArgs) -> anyhow::Result<u8> {
    let ctx = context::load(g, None)?;
    let backend = ctx.backend.as_ref();
    let serial = || backend.read_state().ok().flatten().map(|s| s.serial);
    let before = serial();
    let info = backend.force_unlock(&args.lock_id)?;
    outln!(
        "Removed the lock on {} held by pid {} on {} ({}).",
        backend.describe(),
        info.pid,
        info.host,
        info.operation
    );
    // A backend that keeps the journal with its lock (git) folded it first.
    if let (Some(from), Some(to)) = (before, serial()) {
        if from != to {
            outln!("Folded the journal it left into the state: serial {from} -> {to}.");
        }
    }
    // What the holder left beside the state (its journal, a temporary file)
    // can be folded now that nobody holds the lock. The lock is gone either
    // way: a state that cannot be read is for the next command to report.
    if let Err(e) = context::read_state(backend, None) {
        errln!("warning: {e:#}");
    }
    Ok(EXIT_OK)
}

/// Flags of `cutover completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Run `cutover completions SHELL`.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = super::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "cutover", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(EXIT_OK)
}
