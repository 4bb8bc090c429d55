//! `cutover plan`: refresh, diff, print; optionally save the plan.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::{context, Global, EXIT_CHANGES, EXIT_OK};
use crate::engine::Engine;
use crate::plan::saved::{self, Planned};
use crate::render;

/// Flags of `cutover plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Save the plan to FILE, for `cutover apply FILE`.
    #[arg(long = "out", short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the plan document as JSON instead of the human view.
    #[arg(long)]
    pub json: bool,
    /// Print the plan as markdown for a pull-request comment.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on errors and
    /// when a cut-over is not ready (`--gates`).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// How many live reads may run at once (default: the `cutover {}`
    /// block's `parallelism`, or 10).
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
    /// The operator's explicit planning choices.
    #[command(flatten)]
    pub choices: Choices,
    /// Only record the live world (routers switched by hand, processes that
    /// died) in the state; change nothing live.
    #[arg(long)]
    pub refresh_only: bool,
    /// Run each cut-over's checks read-only now: the target's health gate,
    /// its tests marked `at_plan = true`, its `before` analyses. Nothing
    /// switches or deploys, and the state is not written; a failure makes
    /// the outcome `not_ready` (and `--detailed-exitcode` exit 1).
    #[arg(long, conflicts_with_all = ["no_gates", "refresh_only"])]
    pub gates: bool,
    /// Do not run the checks at plan time, whatever the `cutover {}`
    /// block's `plan_gates` says.
    #[arg(long)]
    pub no_gates: bool,
}

/// The operator's explicit planning choices, the same for `plan` and
/// `apply` (a saved plan keeps those it was made with).
#[derive(Debug, Clone, Default, Args)]
pub struct Choices {
    /// Allow in-place changes to a colour that serves live traffic and keeps
    /// serving it (refused otherwise: deploy to the idle colour and cut over).
    #[arg(long)]
    pub allow_live_changes: bool,
    /// Pause before every cut-over, once its checks passed, until `cutover
    /// approve` (as a router's `pause_before_cutover = true` does).
    #[arg(long)]
    pub pause_before_cutover: bool,
    /// How long a pause waits for approval (default: the router's
    /// `approval_timeout`, or 1h), e.g. 30m.
    #[arg(long, value_name = "DURATION", value_parser = context::parse_duration)]
    pub approval_timeout: Option<std::time::Duration>,
}

impl Choices {
    /// As the planner takes them.
    pub fn options(&self) -> crate::plan::PlanOptions {
        crate::plan::PlanOptions {
            allow_live_changes: self.allow_live_changes,
            pause_before_cutover: self.pause_before_cutover,
            approval_timeout: self.approval_timeout,
        }
    }
}

/// The engine for a command, with `--parallelism` or the config's default.
pub fn engine_for(parallelism: Option<usize>) -> Engine {
    Engine::new(parallelism.unwrap_or(10))
}

/// The engine and the loaded configuration of a command: `--parallelism`
/// (else the config's), the planning choices, and the configuration's
/// sensitive values.
pub fn engine_and_config(
    g: &Global,
    parallelism: Option<usize>,
    choices: &Choices,
) -> anyhow::Result<(Engine, context::Context)> {
    let mut engine = engine_for(parallelism);
    engine.options = choices.options();
    let ctx = context::load(g, Some(&engine))?;
    engine.secrets = crate::plan::sensitive::Secrets::new(&ctx.loaded.config);
    if parallelism.is_none() {
        engine.parallelism = ctx.loaded.config.settings.parallelism.max(1);
    }
    Ok((engine, ctx))
}

/// Print a plan in the human view, with the state-only records.
pub fn print_human(planned: &Planned, style: &render::Style) {
    out!("{}", render::human::plan(&planned.document, style));
    if !planned.records.is_empty() {
        outln!();
        for rec in &planned.records {
            outln!(
                "cutover will record in the state that router.{} sends traffic to {}.",
                rec.router,
                rec.live.as_deref().unwrap_or("nothing")
            );
        }
    }
    if !planned.hide_in_state.is_empty() {
        outln!();
        for name in &planned.hide_in_state {
            outln!(
                "cutover will rewrite the state's record of environment.{name} with markers in place of values the configuration now marks sensitive (nothing live changes)."
            );
        }
    }
}

/// Run `cutover plan`.
pub async fn run(g: &Global, args: PlanArgs) -> anyhow::Result<u8> {
    if args.refresh_only {
        return super::refresh::run(g, false, std::time::Duration::ZERO, args.detailed_exitcode)
            .await;
    }
    let (engine, ctx) = engine_and_config(g, args.parallelism, &args.choices)?;
    let state = context::state_for(&ctx, None)?;
    let mut planned = engine.plan(&ctx.loaded.config, state.as_ref()).await?;
    let ci = std::env::var("CI").ok();
    let gates = args.gates
        || (!args.no_gates && ctx.loaded.config.settings.plan_gates.applies(ci.as_deref()));
    if gates {
        let n = crate::plan::readiness::checks(&planned.document).len();
        if n > 0 {
            errln!("Checking the readiness of {n} cut-over{} read-only (nothing switches, nothing deploys)...", if n == 1 { "" } else { "s" });
        } else {
            errln!("plan --gates: no cut-over in this plan, so no check to run.");
        }
        // A signal stops the checks at once: a test's whole process group
        // goes with it; nothing was changed, nothing is printed.
        let mut stop = super::signals::listen();
        let progress = |line: String| errln!("  {line}");
        let checks = engine.check_readiness(&mut planned, &progress);
        if let Err(signal) = super::signals::or_stopped(&mut stop, checks).await {
            errln!("plan --gates stopped by {signal} while it checked readiness: the checks that ran were stopped (a test with its process group); nothing was changed.");
            return Ok(super::signals::exit_status(signal));
        }
    }
    if args.json {
        outln!("{}", render::json::plan(&planned.document));
    } else if args.markdown {
        out!("{}", render::markdown::plan(&planned.document));
    } else {
        print_human(&planned, &context::style(g));
    }
    if let Some(out) = &args.out {
        saved::write(out, &planned)
            .with_context(|| format!("failed to save the plan to {}", out.display()))?;
        if !args.json && !args.markdown {
            outln!(
                "\nSaved the plan to {}. To apply exactly this plan: cutover apply {}",
                out.display(),
                out.display()
            );
        }
    }
    let changes = planned.writes_anything();
    let not_ready = planned.document.summary.outcome == crate::plan::document::Outcome::NotReady;
    Ok(if args.detailed_exitcode && not_ready {
        super::EXIT_ERROR
    } else if args.detailed_exitcode && changes {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
