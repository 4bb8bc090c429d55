//! `cutover apply [PLANFILE]`: plan (or read the saved plan), confirm, run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::{context, notify, plan, progress, signals, Global, EXIT_ERROR, EXIT_OK};
use crate::engine::Engine;
use crate::plan::saved::{self, Planned};
use crate::state::backend::{Backend, Lock};
use crate::state::model::State;

/// Flags of `cutover apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `cutover plan --out FILE`: apply exactly it.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many steps may start at once (default: the config's, or 10);
    /// the cut-overs a router switches in one batch (HAProxy's, of one map)
    /// start together whatever it is, and their verifies run at most N at
    /// once.
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
    /// The operator's explicit planning choices (refused with a PLANFILE:
    /// it keeps those it was made with).
    #[command(flatten)]
    pub choices: plan::Choices,
    /// Only record the live world (routers switched by hand, processes that
    /// died) in the state; change nothing live.
    #[arg(long)]
    pub refresh_only: bool,
    /// How long to wait for the state lock held by another apply (e.g. 30s).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = context::parse_duration)]
    pub lock_timeout: Duration,
    /// Print progress as JSON lines (docs/events.md) and nothing else on
    /// stdout; needs --auto-approve or a PLANFILE.
    #[arg(long)]
    pub json: bool,
}

/// Run `cutover apply`.
pub async fn run(g: &Global, args: ApplyArgs) -> anyhow::Result<u8> {
    if args.refresh_only {
        return super::refresh::run(g, true, args.lock_timeout, false).await;
    }
    if args.json && !args.auto_approve && args.plan_file.is_none() {
        bail!("apply --json cannot ask for confirmation: pass --auto-approve, or apply a reviewed saved plan (cutover plan --out FILE; cutover apply --json FILE)");
    }
    // From here on a signal stops the command cleanly (the lock released).
    let mut stop = signals::listen();
    if args.plan_file.is_some() {
        let c = &args.choices;
        let flag = [
            (c.allow_live_changes, "--allow-live-changes"),
            (c.pause_before_cutover, "--pause-before-cutover"),
            (c.approval_timeout.is_some(), "--approval-timeout"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag));
        if let Some(flag) = flag {
            bail!("{flag} cannot change a saved plan: pass it to `cutover plan --out FILE`, which records what it asks for");
        }
    }
    let (engine, ctx) = plan::engine_and_config(g, args.parallelism, &args.choices)?;
    let backend = ctx.backend.as_ref();
    let lock = context::lock(backend, "apply", args.lock_timeout)?;
    let state = context::state_for(&ctx, Some(&lock))?;
    let planning = async {
        match &args.plan_file {
            Some(file) => saved_plan(&engine, &ctx, state.as_ref(), file).await,
            None => Ok(engine.plan(&ctx.loaded.config, state.as_ref()).await?),
        }
    };
    let planned = match signals::or_stopped(&mut stop, planning).await {
        Ok(planned) => planned?,
        Err(signal) => return Ok(signals::stopped_before_anything_ran(signal, "apply")),
    };
    if args.plan_file.is_none() {
        if !args.json {
            plan::print_human(&planned, &context::style(g));
        }
        if !planned.writes_anything() {
            if args.json {
                progress::print_json_line(&progress::plan_line(&planned.document));
                let serial = state.as_ref().map_or(0, |s| s.serial);
                progress::print_json_line(&progress::nothing_to_do(serial));
            }
            return Ok(EXIT_OK);
        }
        let question = "Do you want to perform these actions?";
        let no_terminal = "apply needs confirmation: run it from a terminal, pass --auto-approve, or apply a saved plan (cutover plan --out FILE; cutover apply FILE)";
        if !args.auto_approve && !context::confirm(question, no_terminal, &mut stop).await? {
            outln!("Apply cancelled: nothing was changed.");
            return Ok(EXIT_ERROR);
        }
    }
    let run = Run {
        json: args.json,
        what: "apply",
        stop,
        notify: ctx.loaded.config.notify.values().cloned().collect(),
    };
    let code = run_plan(&engine, &planned, state, (backend, &lock), run).await;
    context::release(lock);
    code
}

/// A saved plan, checked against the state and the live world and given
/// its sensitive values from the configuration.
async fn saved_plan(
    engine: &Engine,
    ctx: &context::Context,
    state: Option<&State>,
    file: &Path,
) -> anyhow::Result<Planned> {
    let mut planned = saved::read(file)?;
    let config = &ctx.loaded.config;
    let refused =
        |e: &dyn std::fmt::Display| anyhow::anyhow!("{} cannot be applied: {e}", file.display());
    // A sensitive value changed since the plan was made is named as such,
    // before the fresh plan it also changes is compared.
    saved::rehydrate(&mut planned, config)
        .map_err(|e| refused(&format!("{e}; make a new plan")))?;
    engine
        .check_saved(&planned, config, state)
        .await
        .map_err(|e| refused(&e))?;
    Ok(planned)
}

/// How a plan is run: its views and its stop signals.
pub struct Run {
    /// JSON lines instead of human lines.
    pub json: bool,
    /// `apply` or `rollback`, for messages.
    pub what: &'static str,
    /// Where signals ask to stop.
    pub stop: crate::engine::StopReceiver,
    /// The `notify` blocks its events are sent to.
    pub notify: Vec<crate::config::model::Notify>,
}

/// Run `planned` (an apply's or a rollback's) and print what happened; the
/// exit status.
pub async fn run_plan(
    engine: &Engine,
    planned: &Planned,
    state: Option<State>,
    (backend, lock): (&dyn Backend, &Lock),
    run: Run,
) -> anyhow::Result<u8> {
    if let Some(signal) = signals::requested(&run.stop) {
        return Ok(signals::stopped_before_anything_ran(signal, run.what));
    }
    context::check_state_writable(backend, lock)?;
    let state = state.unwrap_or_else(crate::state::new_state);
    if run.json {
        progress::print_json_line(&progress::plan_line(&planned.document));
    } else {
        outln!();
    }
    let view = progress::observer(run.json, &planned.document);
    let doc = &planned.document;
    let (observer, notifications) = notify::start(view, doc, &run.notify, &engine.health, run.what);
    // The notifications' wait at the end ends at a signal too.
    let mut stop = run.stop.clone();
    let report = engine
        .apply(planned, state, backend, lock, observer, run.stop)
        .await;
    // A signal the apply saw does not end the wait; one from now on does.
    stop.borrow_and_update();
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            notifications.finish(&mut stop).await;
            return Err(e.into());
        }
    };
    notifications.send(&progress::summary_line(&report));
    // `--json`'s summary stays the last line: the warnings of notifications
    // that failed come before it. People read the outcome first.
    if run.json {
        notifications.finish(&mut stop).await;
    }
    let code = progress::finished(&report, run.json, &backend.describe(), run.what);
    if !run.json {
        notifications.finish(&mut stop).await;
    }
    Ok(code)
}
