//! `cutover rollback [ROUTER...]`: switch routers back to the colour they had
//! before the last cut-over (recorded in the state), after that colour passes
//! its health gate. The plan is made by the planner and run by the apply
//! walk like any other; the configuration is not changed, so the next
//! `plan` shows the difference.

use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::apply::{run_plan, Run};
use super::{context, plan, signals, Global, EXIT_ERROR};

/// Flags of `cutover rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Routers to roll back (`public` or `router.public`); default: every
    /// router with a recorded previous colour.
    pub routers: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How long to wait for the state lock held by another apply.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = context::parse_duration)]
    pub lock_timeout: Duration,
    /// Print progress as JSON lines (docs/events.md) and nothing else on
    /// stdout; needs --auto-approve.
    #[arg(long)]
    pub json: bool,
}

/// Run `cutover rollback`.
pub async fn run(g: &Global, args: RollbackArgs) -> anyhow::Result<u8> {
    if args.json && !args.auto_approve {
        bail!("rollback --json cannot ask for confirmation: pass --auto-approve");
    }
    let mut stop = signals::listen();
    let (engine, ctx) = plan::engine_and_config(g, None, &plan::Choices::default())?;
    let backend = ctx.backend.as_ref();
    let lock = context::lock(backend, "rollback", args.lock_timeout)?;
    let Some(state) = context::state_for(&ctx, Some(&lock))? else {
        bail!(
            "no state at {}: nothing was applied, so there is nothing to roll back",
            backend.describe()
        );
    };
    let planning = engine.rollback_plan(&ctx.loaded.config, &state, &args.routers);
    let planned = match signals::or_stopped(&mut stop, planning).await {
        Ok(planned) => planned?,
        Err(signal) => return Ok(signals::stopped_before_anything_ran(signal, "rollback")),
    };
    if !args.json {
        out!(
            "{}",
            crate::render::human::plan(&planned.document, &context::style(g))
        );
    }
    let question = "Roll back?";
    let no_terminal = "rollback needs confirmation: run it from a terminal or pass --auto-approve";
    if !args.auto_approve && !context::confirm(question, no_terminal, &mut stop).await? {
        outln!("Rollback cancelled: nothing was changed.");
        return Ok(EXIT_ERROR);
    }
    let run = Run {
        json: args.json,
        what: "rollback",
        stop,
        notify: ctx.loaded.config.notify.values().cloned().collect(),
    };
    let code = run_plan(&engine, &planned, Some(state), (backend, &lock), run).await;
    context::release(lock);
    let code = code?;
    if code == super::EXIT_OK && !args.json {
        outln!("The configuration still names the colour you rolled back from: `cutover plan` shows the cut-over it would make again.");
    }
    Ok(code)
}
